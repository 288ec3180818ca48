// The word-count example: a fan-out/fan-in orchestration.
//
// WordCountOrchestrator.swift holds the orchestrator, CountWords.swift the activity; this file wires
// them to a backend, a worker and a client. Run `swift run WordCount --help` for the modes.

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

/// Creates a worker that runs the example's orchestrator and activity on `backend`.
/// - Parameters:
///   - verbose: print what the worker does (the worker terminal of the two-terminal mode).
///   - millisecondsPerWord: how slow the activity pretends to be.
func makeWorker(backend: any Backend, verbose: Bool, millisecondsPerWord: Int) -> DurableTaskWorker {
    var options = DurableTaskWorker.Options()
    if verbose {
        // Also show the orchestrator's own log lines (`context.logger.info`), which the default handler
        // leaves out. The logger drops them while replaying, so each appears once.
        options.logHandler = { level, message in
            if level >= .info { print("  \(level): \(message)") }
        }
    }
    let worker = DurableTaskWorker(backend: backend, options: options)
    worker.addOrchestrator(WordCountOrchestrator())
    worker.addActivity(CountWords(announce: verbose, millisecondsPerWord: millisecondsPerWord))
    return worker
}

/// Schedules a word count of `documents`, prints its progress while it runs, then prints the report.
/// - Parameters:
///   - workerHint: what to suggest if no worker starts the instance (client mode).
///   - reattachCommand: the command that waits for the instance from another client, printed next to
///     its ID so a client that is stopped can be replaced without counting everything again (client mode).
/// - Returns: the exit status: 0 when every document was counted, 1 otherwise.
func count(
    _ documents: [Document], client: DurableTaskClient, workerHint: String? = nil,
    reattachCommand: ((String) -> String)? = nil
) async throws -> Int32 {
    let clock = ContinuousClock()
    let start = clock.now
    // A short readable ID instead of the default UUID, to spot the instance in logs.
    let instanceID = "wordcount-\(UUID().uuidString.prefix(8).lowercased())"
    try await client.scheduleNewOrchestration(WordCountOrchestrator.self, input: documents, instanceID: instanceID)
    print("Scheduled \(instanceID) to count \(documents.count) document\(documents.count == 1 ? "" : "s")")
    if let reattachCommand {
        print("  (if this client stops, the count goes on; see it with `\(reattachCommand(instanceID))`)")
    }

    let metadata = try await waitShowingProgress(instanceID, client: client, workerHint: workerHint)
    let elapsed = start.duration(to: clock.now)
    return try printOutcome(metadata, timing: String(format: "Done in %.2f s.", seconds(elapsed)))
}

/// `client --db FILE --instance ID`: waits for a word count scheduled earlier, by this or another
/// client, and prints its report; schedules nothing.
/// - Returns: the exit status: 0 when every document was counted, 1 otherwise or when there is no
///   word count with that ID.
func reattach(to instanceID: String, path: String, client: DurableTaskClient, hubOption: String? = nil) async throws -> Int32 {
    let hubOption = hubOption ?? "--db \(path)"
    guard let metadata = try await client.getInstance(instanceID), metadata.name == WordCountOrchestrator.name else {
        printError("there is no word count '\(instanceID)' in \(path); `swift run WordCount status --db \(path)` lists them")
        return 1
    }
    let documents = (try? metadata.input(as: [Document].self))?.count
    print(
        "Attached to \(instanceID) (\(metadata.status.rawValue)), counting \(documents.map(String.init) ?? "?") "
            + "document\(documents == 1 ? "" : "s"), scheduled \(timestamp(metadata.createdAt))")
    let final = try await waitShowingProgress(instanceID, client: client, workerHint: "swift run WordCount worker \(hubOption)")
    // This client did not see the start: time it from the instance's own record.
    let elapsed = (final.completedAt ?? Date()).timeIntervalSince(final.createdAt)
    return try printOutcome(final, timing: String(format: "Done %.2f s after it was scheduled.", elapsed))
}

/// Prints the report of a finished word count, or why it did not complete.
/// - Returns: the exit status: 0 when every document was counted, 1 otherwise.
func printOutcome(_ metadata: OrchestrationMetadata, timing: String) throws -> Int32 {
    guard metadata.status == .completed else {
        print("The orchestration \(metadata.status.rawValue): \(metadata.failure.map { "\($0)" } ?? "no details")")
        return 1
    }
    let report = try metadata.output(as: WordCountReport.self)
    printReport(report)
    print(timing)
    return report.failureCount == 0 ? 0 : 1
}

/// A duration in seconds, for printing.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// A date as local time, to the second.
func timestamp(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: date)
}

/// Polls the instance every 100 ms, printing its custom status ("k/N counted") when it changes,
/// until it finishes.
func waitShowingProgress(_ instanceID: String, client: DurableTaskClient, workerHint: String?) async throws -> OrchestrationMetadata {
    let clock = ContinuousClock()
    let start = clock.now
    var lastProgress: String?
    var hinted = workerHint == nil
    while true {
        guard let metadata = try await client.getInstance(instanceID) else {
            throw DurableTaskError(.instanceNotFound, "instance '\(instanceID)' disappeared while waiting for it")
        }
        if let progress = try? metadata.customStatus(as: String.self), progress != lastProgress {
            print("  progress: \(progress)")
            lastProgress = progress
        }
        if metadata.status.isTerminal { return metadata }
        if !hinted, let workerHint, metadata.status == .pending, start.duration(to: clock.now) > .seconds(3) {
            print("  still pending: is a worker running? Start one with `\(workerHint)`.")
            hinted = true
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// Prints one line per document and the total, laid out like `wc -w`, so the two are easy to compare.
func printReport(_ report: WordCountReport) {
    // Thousands of generated sentences would bury the total: show the first ones only.
    let shown = report.lines.count > 30 ? 20 : report.lines.count
    func column(_ text: String) -> String { String(repeating: " ", count: max(0, 8 - text.count)) + text }
    print("")
    for line in report.lines.prefix(shown) {
        if let words = line.words {
            print("\(column(String(words))) \(line.name)")
        } else {
            print("\(column("failed")) \(line.name): \(line.error ?? "unknown error")")
        }
    }
    if shown < report.lines.count {
        print("\(column("...")) \(report.lines.count - shown) more")
    }
    print("\(column(String(report.total))) total")
    if report.failureCount > 0 {
        print("\(report.failureCount) of \(report.lines.count) documents could not be counted; the total leaves them out.")
    }
    printSummary(report)
}

/// Prints the summary statistics the Python fan-out/fan-in sample's aggregate step returns (items, sum,
/// average), over the documents that could be counted.
func printSummary(_ report: WordCountReport) {
    let counted = report.lines.count - report.failureCount
    let average = counted > 0 ? Double(report.total) / Double(counted) : 0
    print(
        String(
            format: "Summary: %d item%@, total %d words, average %.2f words per item",
            counted, counted == 1 ? "" : "s", report.total, average))
}

/// Opens the SQLite task hub at `path`.
/// - Parameter mustExist: refuse a missing file instead of creating an empty task hub (for the
///   commands that only read what an earlier run left, where an empty file would only hide a typo).
func openDatabase(_ path: String, mustExist: Bool = false) throws -> SQLiteBackend {
    if mustExist && !FileManager.default.fileExists(atPath: path) {
        throw Arguments.InputError(description: "there is no task hub at \(path)")
    }
    return try SQLiteBackend(path: path)
}

/// Deletes a database file and its WAL companions.
func removeDatabase(_ path: String) {
    for suffix in ["", "-wal", "-shm"] {
        try? FileManager.default.removeItem(atPath: path + suffix)
    }
}

/// The default mode: a worker and a client in this process, sharing one backend.
func runInOneProcess(_ arguments: Arguments) async throws -> Int32 {
    let documents = try arguments.documents()
    let backend: any Backend
    var database: SQLiteBackend?
    var temporaryPath: String?
    if arguments.inMemory {
        backend = InMemoryBackend()
        print("Backend: InMemoryBackend")
    } else {
        // Without --db, a fresh file per run, so an earlier run's instances do not get in the way.
        let path =
            arguments.databasePath
            ?? {
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("wordcount-\(getpid()).sqlite").path
                removeDatabase(path)
                temporaryPath = path
                return path
            }()
        database = try openDatabase(path)
        backend = database ?? InMemoryBackend()
        print("Backend: SQLiteBackend at \(path)")
    }

    let worker = makeWorker(backend: backend, verbose: false, millisecondsPerWord: arguments.millisecondsPerWord)
    let running = Task { await worker.run() }
    let outcome: Result<Int32, any Error>
    do {
        outcome = .success(try await count(documents, client: DurableTaskClient(backend: backend)))
    } catch {
        outcome = .failure(error)
    }
    worker.stop()
    await running.value
    await database?.close()
    if let temporaryPath { removeDatabase(temporaryPath) }
    return try outcome.get()
}

/// The PostgreSQL task hub of `--postgres URL` (schema `wordcount`).
func openPostgres(_ url: String) throws -> PostgresBackend {
    try PostgresBackend(url: url, options: .init(schema: "wordcount"))
}

/// `worker --db FILE` or `worker --postgres URL`: runs a worker on the task hub until Ctrl-C.
func runWorker(_ arguments: Arguments) async throws -> Int32 {
    if let url = arguments.postgresURL {
        let backend = try openPostgres(url)
        return await runWorker(arguments, backend: backend, name: backend.serverName) { await backend.close() }
    }
    let path = arguments.databasePath ?? ""
    let database = try openDatabase(path)
    return await runWorker(arguments, backend: database, name: path) { await database.close() }
}

func runWorker(_ arguments: Arguments, backend: any Backend, name path: String, close: () async -> Void) async -> Int32 {
    let worker = makeWorker(backend: backend, verbose: true, millisecondsPerWord: arguments.millisecondsPerWord)

    // Ctrl-C stops the worker instead of killing the process, so it finishes the episode it is in and
    // closes the database: ignore the signal's default action and handle it on a dispatch source.
    signal(SIGINT, SIG_IGN)
    let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    interrupt.setEventHandler {
        print("\nStopping the worker...")
        worker.stop()
    }
    interrupt.resume()

    print("Worker running on \(path). Press Ctrl-C to stop.")
    await worker.run()
    interrupt.cancel()
    await close()
    print("Worker stopped.")
    return 0
}

/// `client --db FILE [...]`: schedules a word count on the file and waits for a worker to finish it;
/// with `--instance ID`, waits for one scheduled earlier instead.
func runClient(_ arguments: Arguments) async throws -> Int32 {
    if let url = arguments.postgresURL {
        let backend = try openPostgres(url)
        let client = DurableTaskClient(backend: backend)
        let outcome: Result<Int32, any Error>
        do {
            if let instanceID = arguments.instanceID {
                outcome = .success(try await reattach(to: instanceID, path: backend.serverName, client: client, hubOption: "--postgres \(url)"))
            } else {
                outcome = .success(
                    try await count(
                        try arguments.documents(), client: client, workerHint: "swift run WordCount worker --postgres \(url)",
                        reattachCommand: { "swift run WordCount client --postgres \(url) --instance \($0)" }))
            }
        } catch {
            outcome = .failure(error)
        }
        await backend.close()
        return try outcome.get()
    }
    let path = arguments.databasePath ?? ""
    if let instanceID = arguments.instanceID {
        let database = try openDatabase(path, mustExist: true)
        return try await closing(database) { try await reattach(to: instanceID, path: path, client: DurableTaskClient(backend: $0)) }
    }
    let documents = try arguments.documents()
    let database = try openDatabase(path)
    return try await closing(database) { database in
        try await count(
            documents, client: DurableTaskClient(backend: database),
            workerHint: "swift run WordCount worker --db \(path)",
            reattachCommand: { "swift run WordCount client --db \(path) --instance \($0)" })
    }
}

/// `status --db FILE`: lists the word counts in the file, oldest first.
func runStatus(_ arguments: Arguments) async throws -> Int32 {
    let path = arguments.databasePath ?? ""
    let database = try openDatabase(path, mustExist: true)
    return try await closing(database) { database in
        let client = DurableTaskClient(backend: database)
        var instances: [OrchestrationMetadata] = []
        var query = OrchestrationQuery(name: WordCountOrchestrator.name)
        repeat {
            let page = try await client.query(query)
            instances += page.instances
            query.continuationToken = page.continuationToken
        } while query.continuationToken != nil
        guard !instances.isEmpty else {
            print("No word counts in \(path).")
            return 0
        }
        for metadata in instances.sorted(by: { $0.createdAt < $1.createdAt }) {
            let progress = (try? metadata.customStatus(as: String.self)) ?? nil
            let id = metadata.instanceID.padding(toLength: max(20, metadata.instanceID.count), withPad: " ", startingAt: 0)
            let status = metadata.status.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)
            print("\(id) \(status) scheduled \(timestamp(metadata.createdAt))  \(progress ?? "")")
        }
        print("Wait for one and print its result with `swift run WordCount client --db \(path) --instance ID`.")
        return 0
    }
}

/// Runs `body` on `database`, then closes it whether `body` returned or threw.
func closing(_ database: SQLiteBackend, _ body: (SQLiteBackend) async throws -> Int32) async throws -> Int32 {
    let outcome: Result<Int32, any Error>
    do {
        outcome = .success(try await body(database))
    } catch {
        outcome = .failure(error)
    }
    await database.close()
    return try outcome.get()
}

/// Writes `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("WordCount: \(message)\n".utf8))
}

// Line by line, even into a pipe (`| tee log`): a client or worker that is stopped or killed must not
// take its last lines with it, and the two-terminal mode is about watching them appear.
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
    case .client: exit(try await runClient(arguments))
    case .status: exit(try await runStatus(arguments))
    }
} catch {
    printError("\(error)")
    exit(1)
}
