import DurableTask
import Foundation

/// The processes the torture kills.
enum ChildModes {
    /// Runs one fan-out to completion on the hub (scheduling it if it does not exist yet).
    static func fanOut(_ arguments: Arguments) async throws {
        let hub = TortureHub.forChild(arguments)
        let backend = try hub.open()
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
        await TortureHub.close(backend)
        print("DONE \(metadata.status.rawValue) \(metadata.output?.json ?? "-")")
    }

    /// Runs a worker until SIGTERM, then prints its statistics to standard error.
    ///
    /// With `--log-times`, the backend's and the worker's messages go to standard error with the
    /// wall-clock time, and ledger lines carry the time of each execution (for `.ci/multihost`).
    static func worker(_ arguments: Arguments) async throws {
        let hub = TortureHub.forChild(arguments)
        let logTimes = arguments.flag("log-times")
        let backend = try hub.open(log: logTimes ? timestampedLog : nil)
        let worker = try makeWorker(backend: backend, arguments: arguments)
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM)
        source.setEventHandler { worker.stop() }
        source.resume()
        FileHandle.standardError.write(Data("READY pid=\(getpid()) \(hub.label)\n".utf8))
        await worker.run()
        let stats = worker.statistics
        await TortureHub.close(backend)
        FileHandle.standardError.write(
            Data(
                "STATS fenced=\(stats.activityCompletionsFenced) executed=\(stats.activitiesExecuted) episodes=\(stats.episodes) replayed=\(stats.eventsReplayed)\n"
                    .utf8))
    }

    private static func makeWorker(backend: any Backend, arguments: Arguments) throws -> DurableTaskWorker {
        let ledger = try Ledger(path: arguments.string("ledger", "/dev/null"))
        var options = childWorkerOptions(arguments)
        let workerID = arguments.string("worker-id", "")
        if !workerID.isEmpty { options.workerID = workerID }
        if arguments.flag("log-times") { options.logHandler = timestampedLog }
        let worker = DurableTaskWorker(backend: backend, options: options)
        worker.addOrchestrator(TortureFanOut())
        worker.addOrchestrator(TortureTimer())
        worker.addOrchestrator(TortureRounds())
        worker.addActivity(
            TortureWork(
                ledger: ledger, delay: .milliseconds(arguments.int("delay-ms", 3)), timestamps: arguments.flag("log-times")))
        return worker
    }
}
