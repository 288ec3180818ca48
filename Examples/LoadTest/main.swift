// The microservices load test: an orchestration service that creates load-test orchestrations and
// reports their status, and a worker service that runs them, over one task hub: a SQLite file, or a
// PostgreSQL database that services on several machines can share.
//
// FanOutFanInTest.swift holds the orchestrator and the activity; this file is the two services (and
// both in one process). Run `swift run LoadTest --help` for the modes.

// `@preconcurrency` for `stdout`, a C global that Swift 6 treats as shared mutable state: its one use,
// `setvbuf` below, runs before this process has any other thread. (It must come before the imports
// that bring the C library in without it.)
#if canImport(Glibc)
    @preconcurrency import Glibc
#elseif canImport(Darwin)
    @preconcurrency import Darwin
#endif
import DurableTask
import DurableTaskPostgres
import DurableTaskSQLite
import Foundation

/// The task hub a process opened: the backend and how to name it in what it prints.
struct TaskHub {
    /// The backend on the task hub.
    var backend: any Backend
    /// Which backend, and where: the line "Backend: …" of the one-process mode.
    var description: String
    /// Where the task hub is: a file path, or the server and schema.
    var location: String
    /// The options that name this task hub again, for the commands printed for the user to run.
    var options: String
    /// Closes the backend (and, for a temporary file, deletes it).
    var close: @Sendable () async -> Void

    /// Opens the PostgreSQL task hub of `--postgres URL` (schema `loadtest`), or the SQLite file of `--db PATH`.
    /// - Throws: the backend's error when the task hub cannot be opened.
    static func open(_ arguments: Arguments) throws -> TaskHub {
        if let url = arguments.postgresURL {
            let backend = try PostgresBackend(url: url, options: .init(schema: "loadtest"))
            let location = "\(backend.serverName), schema \(backend.options.schema)"
            return TaskHub(
                backend: backend, description: "PostgresBackend: \(location)", location: location, options: "--postgres \(url)",
                close: { await backend.close() })
        }
        return try sqlite(arguments.databasePath ?? "")
    }

    /// Opens the SQLite task hub file at `path`.
    /// - Parameter temporary: delete the file when the hub is closed.
    static func sqlite(_ path: String, temporary: Bool = false) throws -> TaskHub {
        let database = try SQLiteBackend(path: path)
        return TaskHub(
            backend: database, description: "SQLiteBackend at \(path)", location: path, options: "--db \(path)",
            close: {
                await database.close()
                if temporary { removeDatabase(path) }
            })
    }
}

/// Creates the worker service's worker on `backend`.
func makeWorker(backend: any Backend, arguments: Arguments) -> DurableTaskWorker {
    let worker = DurableTaskWorker(backend: backend)
    worker.addOrchestrator(FanOutFanInTest())
    worker.addActivity(SimulatedWork(milliseconds: arguments.millisecondsPerActivity))
    return worker
}

/// The orchestration service: creates the orchestrations, prints the status of all of them (one
/// `getInstances` call) whenever it changes, then the status of each, and checks every result.
/// - Returns: the exit status: 0 when every orchestration passed the check.
func runLoadTest(_ arguments: Arguments, client: DurableTaskClient, statusCommand: String?) async throws -> Int32 {
    let input = LoadTestInput(iterations: arguments.iterations, parallelActivities: arguments.parallelActivities)
    let activities = input.iterations * input.parallelActivities
    let expectedTotal = activities * (activities + 1) / 2
    let clock = ContinuousClock()
    let start = clock.now

    let run = UUID().uuidString.prefix(8).lowercased()
    var ids: [String] = []
    for number in 1...arguments.orchestrations {
        ids.append(try await client.scheduleNewOrchestration(FanOutFanInTest.self, input: input, instanceID: "loadtest-\(run)-\(number)"))
    }
    print(
        "Created \(ids.count) orchestration\(ids.count == 1 ? "" : "s") of \(input.iterations) iterations × "
            + "\(input.parallelActivities) parallel activities: \(ids.count == 1 ? ids[0] : "\(ids[0]) … \(ids[ids.count - 1])")")
    if let statusCommand {
        print("  (status of one: `\(statusCommand) \(ids[0])`; of many: `\(statusCommand) \(ids.prefix(3).joined(separator: " "))`)")
    }

    // The status of many at once: one call for all of them, like the sample's POST …/status.
    var last = ""
    var instances: [OrchestrationMetadata?]
    while true {
        instances = try await client.getInstances(ids)
        let summary = statusSummary(instances)
        if summary != last {
            print("  status of all \(ids.count): \(summary)")
            last = summary
        }
        if instances.allSatisfy({ $0?.status.isTerminal ?? false }) { break }
        try await Task.sleep(for: .milliseconds(100))
    }
    let elapsed = start.duration(to: clock.now)

    print("Status of each orchestration:")
    var passed = 0
    let width = ids.map(\.count).max() ?? 0
    for (id, instance) in zip(ids, instances) {
        let id = id.padding(toLength: width, withPad: " ", startingAt: 0)
        guard let instance else {
            print("  \(id)  not found")
            continue
        }
        let seconds = (instance.completedAt ?? instance.lastUpdatedAt).timeIntervalSince(instance.createdAt)
        let line = "  \(id)  \(instance.status.rawValue)  " + String(format: "%.2f s", seconds)
        guard instance.status == .completed, let output = try? instance.output(as: LoadTestOutput.self) else {
            print("\(line)  \(instance.failure.map { "\($0)" } ?? "")")
            continue
        }
        print("\(line)  \(output.activities) activities, total \(output.total)")
        if output.activities == activities && output.total == expectedTotal { passed += 1 }
    }
    let allActivities = activities * ids.count
    print(String(format: "Done in %.2f s: %d activities, %.0f activities/s.", seconds(elapsed), allActivities, Double(allActivities) / seconds(elapsed)))
    if passed == ids.count {
        print(
            "Check passed: \(passed) of \(ids.count) orchestrations completed, each with \(input.iterations) × "
                + "\(input.parallelActivities) = \(activities) activities and total 1 + … + \(activities) = \(expectedTotal).")
        return 0
    }
    print("Check FAILED: \(passed) of \(ids.count) orchestrations completed with \(activities) activities and total \(expectedTotal).")
    return 1
}

/// "3 running, 1 completed": how many instances are in each status, in a fixed order.
func statusSummary(_ instances: [OrchestrationMetadata?]) -> String {
    var counts: [String: Int] = [:]
    for instance in instances { counts[instance?.status.rawValue ?? "not found", default: 0] += 1 }
    let order = ["pending", "running", "suspended", "completed", "failed", "terminated", "not found"]
    return (order.filter { counts[$0] != nil } + counts.keys.filter { !order.contains($0) }.sorted())
        .map { "\(counts[$0] ?? 0) \($0)" }.joined(separator: ", ")
}

/// `status --db FILE ID...` (or `--postgres URL`): one ID in detail (the sample's GET …/{instanceId}); several in one
/// `getInstances` call (its POST …/status).
/// - Returns: 0 when every ID exists, 1 otherwise.
func printStatus(of ids: [String], client: DurableTaskClient) async throws -> Int32 {
    let instances = try await client.getInstances(ids)
    if ids.count == 1 {
        guard let instance = instances[0] else {
            print("\(ids[0]): not found")
            return 1
        }
        print("instance:      \(instance.instanceID)")
        print("name:          \(instance.name)")
        print("status:        \(instance.status.rawValue)")
        print("created:       \(timestamp(instance.createdAt))")
        print("last updated:  \(timestamp(instance.lastUpdatedAt))")
        if let completedAt = instance.completedAt { print("completed:     \(timestamp(completedAt))") }
        if let input = try? instance.input(as: LoadTestInput.self) {
            print("input:         \(input.iterations) iterations × \(input.parallelActivities) parallel activities")
        }
        if let progress = try? instance.customStatus(as: String.self) { print("custom status: \(progress)") }
        if let output = try? instance.output(as: LoadTestOutput.self) {
            print("output:        \(output.activities) activities, total \(output.total)")
        }
        if let failure = instance.failure { print("failure:       \(failure)") }
        return 0
    }
    for (id, instance) in zip(ids, instances) {
        guard let instance else {
            print("\(id)  not found")
            continue
        }
        let progress = (try? instance.customStatus(as: String.self)) ?? nil
        print("\(id)  \(instance.status.rawValue)  \(progress ?? "")")
    }
    return instances.contains { $0 == nil } ? 1 : 0
}

/// A date as local time, to the millisecond.
func timestamp(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
    return formatter.string(from: date)
}

/// A duration in seconds, for printing.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Deletes a database file, its WAL companions and the SQLite backend's side files (`-dtlock`, and
/// the `-dtowners` directory), so a temporary task hub leaves nothing behind.
func removeDatabase(_ path: String) {
    for suffix in ["", "-wal", "-shm", "-dtlock", "-dtowners"] {
        try? FileManager.default.removeItem(atPath: path + suffix)
    }
}

/// The default mode: both services in this process, sharing one backend.
func runInOneProcess(_ arguments: Arguments) async throws -> Int32 {
    let hub: TaskHub
    if arguments.inMemory {
        hub = TaskHub(backend: InMemoryBackend(), description: "InMemoryBackend", location: "memory", options: "--memory", close: {})
    } else if arguments.databasePath == nil && arguments.postgresURL == nil {
        // A fresh file per run, so an earlier run's instances do not get in the way.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("loadtest-\(getpid()).sqlite").path
        removeDatabase(path)
        hub = try TaskHub.sqlite(path, temporary: true)
    } else {
        hub = try TaskHub.open(arguments)
    }
    print("Backend: \(hub.description)")
    let worker = makeWorker(backend: hub.backend, arguments: arguments)
    let running = Task { await worker.run() }
    let outcome: Result<Int32, any Error>
    do {
        outcome = .success(try await runLoadTest(arguments, client: DurableTaskClient(backend: hub.backend), statusCommand: nil))
    } catch {
        outcome = .failure(error)
    }
    worker.stop()
    await running.value
    await hub.close()
    return try outcome.get()
}

/// `worker --db FILE` or `worker --postgres URL`: the worker service, until Ctrl-C.
func runWorker(_ arguments: Arguments) async throws -> Int32 {
    let hub = try TaskHub.open(arguments)
    let worker = makeWorker(backend: hub.backend, arguments: arguments)

    // Ctrl-C stops the worker gently (it records the activities it is running) instead of killing the
    // process: ignore the signal's default action and handle it on a dispatch source.
    signal(SIGINT, SIG_IGN)
    let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    interrupt.setEventHandler {
        print("Stopping the worker...")
        worker.stop()
    }
    interrupt.resume()

    print("Worker service running on \(hub.location). Press Ctrl-C to stop.")
    await worker.run()
    interrupt.cancel()
    let statistics = worker.statistics
    await hub.close()
    print("Worker stopped after \(statistics.activitiesExecuted) activities and \(statistics.episodes) orchestration episodes.")
    return 0
}

/// `run` and `status`: the client side, on the task hub.
func runClient(_ arguments: Arguments) async throws -> Int32 {
    // Opening a missing file would create an empty task hub, which only hides a typo in the path.
    if arguments.mode == .status, arguments.postgresURL == nil, let path = arguments.databasePath, !FileManager.default.fileExists(atPath: path) {
        printError("there is no task hub at \(path)")
        return 1
    }
    let hub = try TaskHub.open(arguments)
    let client = DurableTaskClient(backend: hub.backend)
    let outcome: Result<Int32, any Error>
    do {
        if arguments.mode == .status {
            outcome = .success(try await printStatus(of: arguments.instanceIDs, client: client))
        } else {
            outcome = .success(try await runLoadTest(arguments, client: client, statusCommand: "swift run LoadTest status \(hub.options)"))
        }
    } catch {
        outcome = .failure(error)
    }
    await hub.close()
    return try outcome.get()
}

/// Writes `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("LoadTest: \(message)\n".utf8))
}

// Line by line, even into a pipe: the services' logs are read as they run.
setvbuf(stdout, nil, _IOLBF, 0)

let arguments: Arguments
do {
    arguments = try Arguments.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    printError("\(error)\n\n\(Arguments.usage)")
    exit(2)
}
if arguments.showHelp {
    print(Arguments.usage)
    exit(0)
}
do {
    switch arguments.mode {
    case .oneProcess: exit(try await runInOneProcess(arguments))
    case .worker: exit(try await runWorker(arguments))
    case .run, .status: exit(try await runClient(arguments))
    }
} catch {
    printError("\(error)")
    exit(1)
}
