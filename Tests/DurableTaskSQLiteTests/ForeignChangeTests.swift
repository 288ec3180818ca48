import DurableTask
import DurableTaskSQLite
import Foundation
import Testing

/// A client's waits see the commits of another backend on the same file (as of another process)
/// without polling: the client's poll interval is a minute here, and the backends' safety re-read
/// five seconds, so only the backend's own watch of the file can wake the waits in time.
@Suite("SQLite waits woken by other processes' commits")
struct ForeignChangeTests {
    @Test func anotherBackendsCommitsWakeTheWaitsAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("shared.sqlite")
        let quiet: @Sendable (LogLevel, String) -> Void = { _, _ in }
        let clientSide = try SQLiteBackend(path: path, options: .init(logHandler: quiet))
        let workerSide = try SQLiteBackend(path: path, options: .init(logHandler: quiet))
        let worker = DurableTaskWorker(backend: workerSide, options: .init(logHandler: quiet))
        worker.addOrchestrator(name: "Increment") { (_: OrchestrationContext, n: Int) async throws -> Int in n + 1 }
        let running = Task { await worker.run() }
        let client = DurableTaskClient(backend: clientSide, pollInterval: .seconds(60))

        let started = ContinuousClock.now
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
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(3), "the waits took \(elapsed): woken by the safety re-read, not by the commits")

        worker.stop()
        await running.value
        await clientSide.close()
        await workerSide.close()
    }
}
