import DurableTask
import DurableTaskSQLite
import Foundation

/// The processes the torture kills.
enum ChildModes {
    /// Runs one fan-out to completion on the database (scheduling it if it does not exist yet).
    static func fanOut(_ arguments: Arguments) async throws {
        let backend = try SQLiteBackend(path: arguments.string("db", ""))
        let instanceID = arguments.string("instance", "fanout")
        let items = arguments.int("items", 200)
        let worker = try makeWorker(backend: backend, arguments: arguments)
        let client = DurableTaskClient(backend: backend)
        if try await client.getInstance(instanceID) == nil {
            try await client.scheduleNewOrchestration(TortureFanOut.self, input: items, instanceID: instanceID)
        }
        let running = Task { await worker.run() }
        let metadata = try await client.waitForCompletion(instanceID, timeout: .seconds(600))
        worker.stop()
        await running.value
        print("DONE \(metadata.status.rawValue) \(metadata.output?.json ?? "-")")
    }

    /// Runs a worker until SIGTERM, then prints its statistics to standard error.
    static func worker(_ arguments: Arguments) async throws {
        let backend = try SQLiteBackend(path: arguments.string("db", ""))
        let worker = try makeWorker(backend: backend, arguments: arguments)
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM)
        source.setEventHandler { worker.stop() }
        source.resume()
        await worker.run()
        let stats = worker.statistics
        FileHandle.standardError.write(Data("STATS fenced=\(stats.activityCompletionsFenced) executed=\(stats.activitiesExecuted)\n".utf8))
    }

    private static func makeWorker(backend: SQLiteBackend, arguments: Arguments) throws -> DurableTaskWorker {
        let ledger = try Ledger(path: arguments.string("ledger", "/dev/null"))
        let worker = DurableTaskWorker(backend: backend, options: childWorkerOptions(arguments))
        worker.addOrchestrator(TortureFanOut())
        worker.addOrchestrator(TortureTimer())
        worker.addActivity(TortureWork(ledger: ledger, delay: .milliseconds(arguments.int("delay-ms", 3))))
        return worker
    }
}
