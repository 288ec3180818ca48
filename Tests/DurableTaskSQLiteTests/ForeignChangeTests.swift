@_spi(Backend) import DurableTask
import DurableTaskSQLite
import Foundation
import Testing

/// A client's waits see the commits of another backend on the same file (as of another process)
/// without polling.
@Suite("SQLite waits woken by other processes' commits")
struct ForeignChangeTests {
    /// A watch that nothing in its own backend wakes returns after its timeout (30 s) unless the
    /// backend noticed the other backend's commit in the file.
    @Test func anotherBackendsCommitWakesAWatch() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("shared.sqlite")
        let quiet: @Sendable (LogLevel, String) -> Void = { _, _ in }
        let watching = try SQLiteBackend(path: path, options: .init(logHandler: quiet))
        let writing = try SQLiteBackend(path: path, options: .init(logHandler: quiet))
        let start = HistoryEvent(timestamp: Date(), kind: .executionStarted(name: "O", executionID: "e", input: nil, parent: nil, scheduledStart: nil))
        try await writing.createOrchestrationInstance(NewOrchestrationInstance(instanceID: "a", startEvent: start))
        let watch = watching.watchInstance("a")
        #expect(watch.seesOtherProcesses)
        #expect(try await watching.getOrchestrationMetadata(instanceID: "a")?.status == .pending)
        let started = ContinuousClock.now
        let terminate = Task {
            try await Task.sleep(for: .milliseconds(200))
            let item = try #require(try await writing.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(60)))
            try await writing.completeOrchestrationWorkItem(
                item, result: OrchestrationWorkItemResult(newHistory: item.newEvents, status: .running))
        }
        await watch.wait(timeout: .seconds(30))
        let elapsed = ContinuousClock.now - started
        try await terminate.value
        #expect(elapsed < .seconds(10), "the watch woke after \(elapsed), by its timeout")
        #expect(try await watching.getOrchestrationMetadata(instanceID: "a")?.status == .running)
        await watching.close()
        await writing.close()
    }

    /// Many waits through one backend on instances another backend runs: each ends with its result.
    @Test func waitsOnAnotherBackendsInstancesEndWithTheirResults() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("shared.sqlite")
        let quiet: @Sendable (LogLevel, String) -> Void = { _, _ in }
        let clientSide = try SQLiteBackend(path: path, options: .init(logHandler: quiet))
        let workerSide = try SQLiteBackend(path: path, options: .init(logHandler: quiet))
        let worker = DurableTaskWorker(backend: workerSide, options: .init(logHandler: quiet))
        worker.addOrchestrator(name: "Increment") { (_: OrchestrationContext, n: Int) async throws -> Int in n + 1 }
        let running = Task { await worker.run() }
        let client = DurableTaskClient(backend: clientSide, pollInterval: .seconds(60))

        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<50 {
                group.addTask {
                    let id = try await client.scheduleNewOrchestration(name: "Increment", input: n)
                    let metadata = try await client.waitForCompletion(id, timeout: .seconds(30))
                    #expect(metadata.output == Payload(json: "\(n + 1)"))
                }
            }
            try await group.waitForAll()
        }

        worker.stop()
        await running.value
        await clientSide.close()
        await workerSide.close()
    }
}
