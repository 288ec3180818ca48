import Foundation

/// The orchestrators and activities a worker runs, by name.
struct Registry {
    var orchestrators: [String: OrchestratorEntry] = [:]
    var activities: [String: ActivityEntry] = [:]
}

/// A registered orchestrator, type-erased to payloads.
package struct OrchestratorEntry: Sendable {
    package let name: String
    package let run: @Sendable (OrchestrationContext, Payload?) async throws -> Payload?

    package init(name: String, run: @escaping @Sendable (OrchestrationContext, Payload?) async throws -> Payload?) {
        self.name = name
        self.run = run
    }

    /// The one decode-run-encode wrapper: the input is decoded as `Input`, the output encoded within
    /// the payload limit, each failure naming the orchestrator and the instance.
    package static func decoding<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        name: String, _ body: @escaping @Sendable (OrchestrationContext, Input) async throws -> Output
    ) -> OrchestratorEntry {
        OrchestratorEntry(name: name) { context, input in
            let typedInput = try PayloadCodec.decode(Input.self, from: input, what: "input of orchestrator '\(name)' (instance '\(context.instanceID)')")
            let output = try await body(context, typedInput)
            return try PayloadCodec.encode(
                output, limit: context.options.maxPayloadBytes,
                what: "output of orchestrator '\(name)' (instance '\(context.instanceID)')")
        }
    }

    /// Wraps a typed orchestrator.
    package init<O: Orchestrator>(_ orchestrator: O) {
        self = .decoding(name: O.name) { (context: OrchestrationContext, input: O.Input) in
            try await orchestrator.run(context: context, input: input)
        }
    }
}

/// A registered activity, type-erased to payloads.
struct ActivityEntry: Sendable {
    let name: String
    /// Runs the activity on a payload; the `Int` is the payload limit for its output.
    let run: @Sendable (ActivityContext, Payload?, Int) async throws -> Payload?

    /// The one decode-run-encode wrapper for activities, as for orchestrators.
    init<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        decoding name: String, _ body: @escaping @Sendable (ActivityContext, Input) async throws -> Output
    ) {
        self.name = name
        self.run = { context, input, limit in
            let value = try PayloadCodec.decode(
                Input.self, from: input,
                what: "input of activity '\(name)' (instance '\(context.instanceID)', task #\(context.taskID))")
            let output = try await body(context, value)
            return try PayloadCodec.encode(
                output, limit: limit,
                what: "output of activity '\(name)' (instance '\(context.instanceID)', task #\(context.taskID))")
        }
    }

    /// Wraps a typed activity.
    init<A: Activity>(_ activity: A) {
        self.init(decoding: A.name) { (context: ActivityContext, input: A.Input) in
            try await activity.run(context: context, input: input)
        }
    }
}
