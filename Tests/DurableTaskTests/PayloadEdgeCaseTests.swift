import DurableTask
import Foundation
import Testing

/// Returns its input plus one: an orchestrator whose input is `Int`.
private struct IncrementsInput: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int { input + 1 }
}

/// Waits for one `number` event, decoded as `Int`, and returns it.
private struct WaitsForNumber: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.waitForExternalEvent("number", as: Int.self).value
    }
}

/// Returns its `UInt64` input: an output that does not fit in `Int`.
private struct EchoesUnsigned: Orchestrator {
    func run(context: OrchestrationContext, input: UInt64) async throws -> UInt64 { input }
}

/// Payloads a user can produce that do not decode as the type that reads them: only the decode that
/// reads one fails, with `.payloadInvalid`; the worker and every other instance carry on.
///
/// 9 999 999 999 999 999 999 is a valid `UInt64` of 19 digits, above `Int.max`: it used to trap in the
/// `Int` fast path and take the whole process down (on SQLite, again on every restart).
@Suite struct PayloadEdgeCaseTests {
    static let tooBigForInt = UInt64(9_999_999_999_999_999_999)

    private func register(_ worker: DurableTaskWorker) {
        worker.addOrchestrator(IncrementsInput())
        worker.addOrchestrator(WaitsForNumber())
        worker.addOrchestrator(EchoesUnsigned())
    }

    @Test(arguments: TestBackend.allCases)
    func anInputTooBigForIntFailsOnlyItsInstance(backend kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: register) { client, _ in
            let before = try await client.scheduleNewOrchestration(IncrementsInput.self, input: 1)
            let bad = try await client.scheduleNewOrchestration(name: "IncrementsInput", input: Self.tooBigForInt)
            let failed = try await client.waitForCompletion(bad, timeout: .seconds(20))
            #expect(failed.status == .failed)
            #expect(failed.failure?.errorType == "DurableTaskError.payloadInvalid")
            #expect(failed.failure?.message.contains("9999999999999999999") == true)
            #expect(failed.failure?.isRetriable == false)
            #expect(throws: DurableTaskError.self) { try failed.input(as: Int.self) }
            #expect(try failed.input(as: UInt64.self) == Self.tooBigForInt)

            // The worker is still running: an instance scheduled before and one scheduled after complete.
            let after = try await client.scheduleNewOrchestration(IncrementsInput.self, input: 41)
            #expect(try await client.waitForCompletion(IncrementsInput.self, instanceID: before, timeout: .seconds(20)) == 2)
            #expect(try await client.waitForCompletion(IncrementsInput.self, instanceID: after, timeout: .seconds(20)) == 42)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func anEventTooBigForIntFailsTheWaitingInstance(backend kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: register) { client, _ in
            let bad = try await client.scheduleNewOrchestration(WaitsForNumber.self, input: 0)
            let good = try await client.scheduleNewOrchestration(WaitsForNumber.self, input: 0)
            _ = try await client.waitForStart(bad, timeout: .seconds(20))
            try await client.raiseEvent(bad, name: "number", data: Self.tooBigForInt)
            try await client.raiseEvent(good, name: "number", data: 7)

            let failed = try await client.waitForCompletion(bad, timeout: .seconds(20))
            #expect(failed.status == .failed)
            #expect(failed.failure?.errorType == "DurableTaskError.payloadInvalid")
            #expect(failed.failure?.message.contains("event 'number'") == true)
            #expect(try await client.waitForCompletion(WaitsForNumber.self, instanceID: good, timeout: .seconds(20)) == 7)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func anOutputTooBigForIntFailsOnlyTheClientsDecode(backend kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: register) { client, _ in
            let id = try await client.scheduleNewOrchestration(EchoesUnsigned.self, input: Self.tooBigForInt)
            let metadata = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(metadata.status == .completed)
            let error = try #require(throws: DurableTaskError.self) { try metadata.output(as: Int.self) }
            #expect(error.code == .payloadInvalid)
            #expect(try metadata.output(as: UInt64.self) == Self.tooBigForInt)
        }
    }
}
