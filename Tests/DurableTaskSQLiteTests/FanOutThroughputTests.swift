@_spi(Backend) import DurableTask
import DurableTaskSQLite
import Foundation
import Testing

/// A rough throughput check of the backend's side of a large fan-out, run on demand only
/// (`DURABLETASK_SQLITE_PERF=1`): tests assert behaviour, the benchmark executable reports figures.
@Suite("SQLite fan-out throughput", .enabled(if: ProcessInfo.processInfo.environment["DURABLETASK_SQLITE_PERF"] != nil))
struct FanOutThroughputTests {
    @Test func hundredThousandActivities() async throws {
        let directory = try TemporaryDirectory()
        let backend = try SQLiteBackend(path: directory.path("hub.sqlite"))
        let n = 100_000
        let batch = 500
        let clock = ContinuousClock()
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: "fan",
                startEvent: HistoryEvent(
                    timestamp: Date(),
                    kind: .executionStarted(
                        name: "FanOut", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
        let item = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(300)))
        let t0 = clock.now
        let scheduled = (0..<n).map { HistoryEvent(eventID: $0, timestamp: Date(), kind: .taskScheduled(name: "Count", input: Payload(json: "\($0)"))) }
        try await backend.completeOrchestrationWorkItem(
            item,
            result: OrchestrationWorkItemResult(
                newHistory: item.newEvents + scheduled,
                activities: (0..<n).map { ActivityRequest(taskID: $0, name: "Count", input: Payload(json: "\($0)")) },
                status: .running))
        let t1 = clock.now
        var done = 0
        while done < n {
            let items = try await backend.getActivityWorkItems(owner: "w", maxCount: batch, leaseDuration: .seconds(300))
            let accepted = try await backend.completeActivityWorkItems(
                items.map {
                    ActivityCompletion(
                        item: $0, event: HistoryEvent(timestamp: Date(), kind: .taskCompleted(scheduledID: $0.taskID, result: Payload(json: "1"))))
                })
            #expect(accepted.allSatisfy { $0 })
            done += items.count
        }
        let t2 = clock.now
        let fanIn = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(300)))
        #expect(fanIn.newEvents.count == n)
        try await backend.completeOrchestrationWorkItem(
            fanIn,
            result: OrchestrationWorkItemResult(
                newHistory: fanIn.newEvents, status: .completed, output: Payload(json: "\(n)")))
        let t3 = clock.now
        let history = try await backend.getOrchestrationHistory(instanceID: "fan")
        let t4 = clock.now
        #expect(history.count == 2 * n + 1)
        func rate(_ d: Duration) -> Int { Int(Double(n) / (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)) }
        print(
            "schedule \(n): \(t1 - t0) (\(rate(t1 - t0))/s); lease+complete: \(t2 - t1) (\(rate(t2 - t1))/s); "
                + "fan-in episode: \(t3 - t2); history read: \(t4 - t3); total \(rate(t4 - t0)) items/s")
        await backend.close()
    }
}
