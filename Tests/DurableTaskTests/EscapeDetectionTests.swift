@_spi(Backend) @testable import DurableTask
import Foundation
import Synchronization
import Testing

/// What the engine notices when an orchestrator awaits something that is not a durable operation —
/// and the one case it cannot see, which the README states.
@Suite struct EscapeDetectionTests {
    actor Counter {
        var value = 0
        func increment() -> Int {
            value += 1
            return value
        }
        /// Keeps the actor busy without suspending (a suspension would let other callers in), until
        /// `release` is set.
        func hold(started: Flag, release: Flag) {
            _ = started.trySet()
            while !release.isSet {}
        }
    }

    static func run(_ body: @escaping @Sendable (OrchestrationContext) async throws -> Void) -> OrchestrationWorkItemResult {
        let entry = OrchestratorEntry(name: "Escapes") { context, _ in
            try await body(context)
            return nil
        }
        return EngineTests.run([entry], old: [], new: [EngineTests.started("Escapes", input: "0")])
    }

    @Test func aContinuationResumedElsewhereIsDetected() async {
        // Nothing in the engine will ever resume it: the stand-in for I/O or a callback API.
        let parked = Parked()
        let result = Self.run { _ in
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in parked.keep(continuation) }
        }
        #expect(result.status == .failed)
        #expect(result.failure?.errorType == "DurableTaskError.orchestratorEscaped")
        parked.resume()
    }

    /// Holds a continuation until the test resumes it.
    final class Parked: Sendable {
        private let continuation = Mutex<CheckedContinuation<Void, Never>?>(nil)
        func keep(_ c: CheckedContinuation<Void, Never>) { continuation.withLock { $0 = c } }
        func resume() { continuation.withLock { $0.take() }?.resume() }
    }

    @Test func awaitingABusyActorIsDetected() async {
        // The call waits in the actor's queue, off the orchestration's executor.
        let counter = Counter()
        let started = Flag()
        let release = Flag()
        let holding = Task.detached { await counter.hold(started: started, release: release) }
        while !started.isSet { await Task.yield() }
        let result = Self.run { _ in _ = await counter.increment() }
        _ = release.trySet()
        #expect(result.status == .failed)
        #expect(result.failure?.message.contains("not a durable operation") == true)
        await holding.value
    }

    @Test func anIdleDefaultActorRunsInlineAndIsNotDetected() {
        // Documented limitation (README, "Rules for orchestrator code"): a call into a default actor
        // that is free runs on the orchestration's own executor (task executor preference), so the
        // engine sees no suspension. The actor's state lives outside history, so the call is still
        // not allowed; this test pins what the README says.
        let counter = Counter()
        let result = Self.run { _ in _ = await counter.increment() }
        #expect(result.status == .completed)
    }
}
