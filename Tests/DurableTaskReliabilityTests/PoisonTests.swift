import Foundation
import Testing

// In the torture suite, so that it runs alone: it spawns and kills processes too.
extension TortureTests {
    /// User code that kills the process (`fatalError` in an orchestrator, an activity and a
    /// sub-orchestration), run in child processes that are restarted after every crash.
    @Test func codeThatKillsTheProcessIsParkedWhileOtherInstancesComplete() async throws {
        let outcome = try await TortureTests.torture(["poison", "--max-deliveries", "5", "--others", "20"])
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(outcome.json["poisoned_orchestration"] as? Bool == true, "\(outcome.output)")
        #expect(outcome.json["poisoned_activity"] as? Bool == true, "\(outcome.output)")
        #expect(outcome.json["parent_told"] as? Bool == true, "\(outcome.output)")
        #expect((outcome.json["others_completed"] as? NSNumber)?.intValue == 20, "\(outcome.output)")
        // Each crashing item crashes the process on each of its 5 deliveries (one crash may end two).
        #expect(((outcome.json["crashes"] as? NSNumber)?.intValue ?? 0) >= 5, "\(outcome.output)")
    }
}
