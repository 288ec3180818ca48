@_spi(Backend) @testable import DurableTask
import Foundation
import Testing

/// The nondeterminism corpus: histories recorded from original orchestrators (JSON files under
/// Fixtures/Nondeterminism), replayed against changed code. Every mutation must be detected with a
/// message naming the instance, the position, what history holds and what the code did; the original
/// code must replay every fixture without a false positive.
///
/// Re-record the fixtures with `DT_RECORD_FIXTURES=1 swift test --filter NondeterminismCorpusTests`.
@Suite(.serialized) struct NondeterminismCorpusTests {
    typealias Body = @Sendable (OrchestrationContext, Int) async throws -> String

    static func step(_ context: OrchestrationContext, _ name: String, _ input: Int) async throws -> Int {
        try await context.callActivity(name, input: input, returning: Int.self).value
    }

    // MARK: Originals

    static let sequence: Body = { context, input in
        let a = try await step(context, "Step1", input)
        let b = try await step(context, "Step2", a)
        let c = try await step(context, "Step3", b)
        return "\(c)"
    }

    static let fanOut: Body = { context, input in
        let parts = try await context.whenAll((0..<5).map { context.callActivity("Work", input: $0, returning: Int.self) })
        return "\(try await step(context, "Aggregate", parts.reduce(input, +)))"
    }

    static let approval: Body = { context, _ in
        let timer = context.createTimer(after: .seconds(3600))
        let approved = context.waitForExternalEvent("approve", as: Int.self)
        let winner = await context.whenAny(timer, approved)
        return winner == 1 ? "\(try await step(context, "Approved", 1))" : "\(try await step(context, "Escalate", 1))"
    }

    static let parent: Body = { context, input in
        let child = try await context.callSubOrchestrator("Child", input: input, returning: String.self).value
        return "\(child)-\(try await step(context, "Step1", 1))"
    }

    static let sender: Body = { context, input in
        context.sendEvent("target", name: "ping", data: input)
        return "\(try await step(context, "Step1", input))"
    }

    static let originals: [(fixture: String, body: Body)] = [
        ("sequence", sequence), ("fanout", fanOut), ("approval", approval), ("parent", parent), ("sender", sender)
    ]

    // MARK: Mutations

    struct Mutation: CustomTestStringConvertible, Sendable {
        var name: String
        var fixture: String
        var body: Body
        /// Text the message must contain: the position and both sides.
        var sequence: Int
        var expected: String
        var actual: String
        var testDescription: String { name }
    }

    static let mutations: [Mutation] = [
        Mutation(
            name: "activity renamed", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i); let b = try await step(c, "StepTwo", a); return "\(try await step(c, "Step3", b))"
            }, sequence: 1, expected: "taskScheduled('Step2')", actual: "call activity 'StepTwo'"),
        Mutation(
            name: "activities reordered", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i); let b = try await step(c, "Step3", a); return "\(try await step(c, "Step2", b))"
            }, sequence: 1, expected: "taskScheduled('Step2')", actual: "call activity 'Step3'"),
        Mutation(
            name: "activity removed in the middle", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i); return "\(try await step(c, "Step3", a))"
            }, sequence: 1, expected: "taskScheduled('Step2')", actual: "call activity 'Step3'"),
        Mutation(
            name: "last activity removed", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i); return "\(try await step(c, "Step2", a))"
            }, sequence: 2, expected: "taskScheduled('Step3')", actual: "nothing at this position"),
        Mutation(
            name: "activity inserted in the middle", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i); let x = try await step(c, "Audit", a)
                let b = try await step(c, "Step2", x); return "\(try await step(c, "Step3", b))"
            }, sequence: 1, expected: "taskScheduled('Step2')", actual: "call activity 'Audit'"),
        Mutation(
            name: "activity inserted first", fixture: "sequence",
            body: { c, i in
                let x = try await step(c, "Audit", i); let a = try await step(c, "Step1", x)
                let b = try await step(c, "Step2", a); return "\(try await step(c, "Step3", b))"
            }, sequence: 0, expected: "taskScheduled('Step1')", actual: "call activity 'Audit'"),
        Mutation(
            name: "timer added", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i); try await c.createTimer(after: .seconds(5)).value
                let b = try await step(c, "Step2", a); return "\(try await step(c, "Step3", b))"
            }, sequence: 1, expected: "taskScheduled('Step2')", actual: "create a timer"),
        Mutation(
            name: "activity replaced by a timer", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i); try await c.createTimer(after: .seconds(5)).value
                return "\(try await step(c, "Step3", a))"
            }, sequence: 1, expected: "taskScheduled('Step2')", actual: "create a timer"),
        Mutation(
            name: "activity replaced by a sub-orchestration", fixture: "sequence",
            body: { c, i in
                let a = try await step(c, "Step1", i)
                let b = try await c.callSubOrchestrator("Step2", input: a, returning: Int.self).value
                return "\(try await step(c, "Step3", b))"
            }, sequence: 1, expected: "taskScheduled('Step2')", actual: "call sub-orchestrator 'Step2'"),
        Mutation(
            name: "fan-out grew", fixture: "fanout",
            body: { c, i in
                let parts = try await c.whenAll((0..<6).map { c.callActivity("Work", input: $0, returning: Int.self) })
                return "\(try await step(c, "Aggregate", parts.reduce(i, +)))"
            }, sequence: 5, expected: "taskScheduled('Aggregate')", actual: "call activity 'Work'"),
        Mutation(
            name: "fan-out shrank", fixture: "fanout",
            body: { c, i in
                let parts = try await c.whenAll((0..<4).map { c.callActivity("Work", input: $0, returning: Int.self) })
                return "\(try await step(c, "Aggregate", parts.reduce(i, +)))"
            }, sequence: 4, expected: "taskScheduled('Work')", actual: "nothing at this position"),
        Mutation(
            name: "event name changed", fixture: "approval",
            body: { c, _ in
                let timer = c.createTimer(after: .seconds(3600))
                let approved = c.waitForExternalEvent("approval", as: Int.self)
                let winner = await c.whenAny(timer, approved)
                return winner == 1 ? "\(try await step(c, "Approved", 1))" : "\(try await step(c, "Escalate", 1))"
            }, sequence: 1, expected: "taskScheduled('Approved')", actual: "nothing at this position"),
        Mutation(
            name: "whenAny winner changed", fixture: "approval",
            body: { c, _ in
                let timer = c.createTimer(after: .seconds(3600))
                let approved = c.waitForExternalEvent("approve", as: Int.self)
                let winner = await c.whenAny(approved, timer)
                return winner == 1 ? "\(try await step(c, "Approved", 1))" : "\(try await step(c, "Escalate", 1))"
            }, sequence: 1, expected: "taskScheduled('Approved')", actual: "call activity 'Escalate'"),
        Mutation(
            name: "timer removed", fixture: "approval",
            body: { c, _ in
                _ = try await c.waitForExternalEvent("approve", as: Int.self).value
                return "\(try await step(c, "Approved", 1))"
            }, sequence: 0, expected: "timerCreated", actual: "nothing at this position"),
        Mutation(
            name: "sub-orchestrator renamed", fixture: "parent",
            body: { c, i in
                let child = try await c.callSubOrchestrator("Kid", input: i, returning: String.self).value
                return "\(child)-\(try await step(c, "Step1", 1))"
            }, sequence: 0, expected: "subOrchestrationCreated('Child'", actual: "call sub-orchestrator 'Kid'"),
        Mutation(
            name: "sub-orchestration replaced by an activity", fixture: "parent",
            body: { c, i in
                let child = try await step(c, "Child", i)
                return "\(child)-\(try await step(c, "Step1", 1))"
            }, sequence: 0, expected: "subOrchestrationCreated('Child'", actual: "call activity 'Child'"),
        Mutation(
            name: "event target changed", fixture: "sender",
            body: { c, i in
                c.sendEvent("other", name: "ping", data: i)
                return "\(try await step(c, "Step1", i))"
            }, sequence: 0, expected: "eventSent('ping' to 'target')", actual: "send event 'ping' to 'other'"),
        Mutation(
            name: "sent event renamed", fixture: "sender",
            body: { c, i in
                c.sendEvent("target", name: "pong", data: i)
                return "\(try await step(c, "Step1", i))"
            }, sequence: 0, expected: "eventSent('ping' to 'target')", actual: "send event 'pong' to 'target'")
    ]

    // MARK: Fixtures

    static let fixtureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/Nondeterminism")

    /// A fixture's history. The files are `HistoryExport` documents, the format users are told to keep
    /// their own fixtures in (`durabletask export`), so the corpus also exercises that reader.
    static func fixture(_ name: String) throws -> [HistoryEvent] {
        try HistoryExport.decode(Data(contentsOf: fixtureDirectory.appendingPathComponent("\(name).json"))).events
    }

    static func entry(_ body: @escaping Body) -> OrchestratorEntry {
        OrchestratorEntry(name: "Corpus") { context, input in
            try PayloadCodec.encode(try await body(context, try PayloadCodec.decode(Int.self, from: input)))
        }
    }

    /// Records the original orchestrators' histories through worker + client.
    @Test func recordFixturesWhenAsked() async throws {
        guard ProcessInfo.processInfo.environment["DT_RECORD_FIXTURES"] == "1" else { return }
        let backend = InMemoryBackend()
        let worker = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
        for name in ["Step1", "Step2", "Step3", "Work", "Aggregate", "Approved", "Escalate"] {
            worker.addActivity(name: name) { (_: ActivityContext, input: Int) in input + 1 }
        }
        worker.addOrchestrator(name: "Child") { (_: OrchestrationContext, input: Int) in "child\(input)" }
        let running = Task { await worker.run() }
        defer { running.cancel() }
        let client = DurableTaskClient(backend: backend)
        try FileManager.default.createDirectory(at: Self.fixtureDirectory, withIntermediateDirectories: true)
        for (fixture, body) in Self.originals {
            worker.addOrchestrator(name: "Corpus-\(fixture)", body)
        }
        // Registration is read when the worker starts: restart it with every orchestrator registered.
        running.cancel()
        await running.value
        let restarted = Task { await worker.run() }
        defer { restarted.cancel() }
        for (fixture, _) in Self.originals {
            let id = "corpus-\(fixture)"
            try await client.scheduleNewOrchestration(name: "Corpus-\(fixture)", input: 10, instanceID: id)
            if fixture == "approval" {
                try await client.waitForStart(id, timeout: .seconds(10))
                try await client.raiseEvent(id, name: "approve", data: 1)
            }
            let done = try await client.waitForCompletion(id, timeout: .seconds(10))
            #expect(done.status == .completed)
            let history = try await client.getHistory(id).map { event -> HistoryEvent in
                var event = event
                // One orchestrator name in every fixture, so mutants register under the same name.
                if case let .executionStarted(_, executionID, input, parent, start) = event.kind {
                    event.kind = .executionStarted(name: "Corpus", executionID: executionID, input: input, parent: parent, scheduledStart: start)
                }
                return event
            }
            try HistoryExport.encode(HistoryExport.Document(instanceID: id, events: history))
                .write(to: Self.fixtureDirectory.appendingPathComponent("\(fixture).json"))
        }
    }

    @Test func originalCodeReplaysEveryFixtureWithoutFalsePositives() throws {
        for (fixture, body) in Self.originals {
            let history = try Self.fixture(fixture)
            let result = ReplayEngine.execute(
                instanceID: "corpus-\(fixture)", orchestrators: [Self.entry(body)],
                oldEvents: history, newEvents: [], now: Date())
            #expect(result.failure == nil, "\(fixture): \(result.failure?.message ?? "")")
            #expect(result.status == .completed, "\(fixture)")
            #expect(result.activities.isEmpty && result.timers.isEmpty, "\(fixture): replay must not schedule anything")
            let recordedOutput = history.compactMap { event -> Payload? in
                if case let .executionCompleted(_, output, _) = event.kind { return output }
                return nil
            }.first
            #expect(result.output == recordedOutput, "\(fixture)")
        }
    }

    @Test(arguments: mutations)
    func mutationIsDetected(mutation: Mutation) throws {
        let history = try Self.fixture(mutation.fixture)
        let result = ReplayEngine.execute(
            instanceID: "corpus-\(mutation.fixture)", orchestrators: [Self.entry(mutation.body)],
            oldEvents: history, newEvents: [], now: Date())
        #expect(result.status == .failed)
        let failure = try #require(result.failure)
        #expect(failure.errorType == "NonDeterminismError")
        #expect(!failure.isRetriable)
        let message = failure.message
        #expect(message.contains("instance 'corpus-\(mutation.fixture)'"), "\(message)")
        #expect(message.contains("sequence number \(mutation.sequence)"), "\(message)")
        #expect(message.contains(mutation.expected), "\(message)")
        #expect(message.contains(mutation.actual), "\(message)")
        #expect(result.activities.isEmpty, "a nondeterministic episode schedules nothing")
    }
}
