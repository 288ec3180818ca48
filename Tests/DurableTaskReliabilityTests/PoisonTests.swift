import Foundation
import Testing

/// User code that kills the process (`fatalError` in an orchestrator, an activity and a
/// sub-orchestration), run in child processes that are restarted after every crash.
@Suite(.serialized) struct PoisonTests {
    /// Runs the torture on a thread of its own: waiting for a child process blocks, and the
    /// cooperative pool has only as many threads as cores, which the other suites need.
    static func tortureOffThePool(_ arguments: [String]) async throws -> TortureTests.Outcome {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try TortureTests.torture(arguments) }) }
        }
    }

    @Test func codeThatKillsTheProcessIsParkedWhileOtherInstancesComplete() async throws {
        let outcome = try await Self.tortureOffThePool(["poison", "--max-deliveries", "5", "--others", "20"])
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(outcome.json["poisoned_orchestration"] as? Bool == true, "\(outcome.output)")
        #expect(outcome.json["poisoned_activity"] as? Bool == true, "\(outcome.output)")
        #expect(outcome.json["parent_told"] as? Bool == true, "\(outcome.output)")
        #expect((outcome.json["others_completed"] as? NSNumber)?.intValue == 20, "\(outcome.output)")
        // Each crashing item is delivered max-deliveries times before it is parked.
        #expect(((outcome.json["crashes"] as? NSNumber)?.intValue ?? 0) >= 15, "\(outcome.output)")
    }
}
