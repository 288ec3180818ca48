// The word-count example: a fan-out/fan-in orchestration.
//
// WordCountOrchestrator.swift holds the orchestrator, CountWords.swift the activity; this file wires
// them to a backend, a worker and a client. Run `swift run WordCount --help` for the modes.

import DurableTask
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
/// - Parameter workerHint: what to suggest if no worker starts the instance (client mode).
/// - Returns: the exit status: 0 when every document was counted, 1 otherwise.
func count(_ documents: [Document], client: DurableTaskClient, workerHint: String? = nil) async throws -> Int32 {
    let clock = ContinuousClock()
    let start = clock.now
    // A short readable ID instead of the default UUID, to spot the instance in logs.
    let instanceID = "wordcount-\(UUID().uuidString.prefix(8).lowercased())"
    try await client.scheduleNewOrchestration(WordCountOrchestrator.self, input: documents, instanceID: instanceID)
    print("Scheduled \(instanceID) to count \(documents.count) document\(documents.count == 1 ? "" : "s")")

    let metadata = try await waitShowingProgress(instanceID, client: client, workerHint: workerHint)
    let elapsed = start.duration(to: clock.now)
    guard metadata.status == .completed else {
        print("The orchestration \(metadata.status.rawValue): \(metadata.failure.map { "\($0)" } ?? "no details")")
        return 1
    }
    let report = try metadata.output(as: WordCountReport.self)
    printReport(report)
    print(String(format: "Done in %.2f s.", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
    return report.failureCount == 0 ? 0 : 1
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
}

/// Opens the SQLite task hub at `path`.
func openDatabase(_ path: String) throws -> SQLiteBackend {
    try SQLiteBackend(path: path)
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
        let path = arguments.databasePath ?? {
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

/// `worker --db FILE`: runs a worker on the file until Ctrl-C.
func runWorker(_ arguments: Arguments) async throws -> Int32 {
    let path = arguments.databasePath ?? ""
    let database = try openDatabase(path)
    let worker = makeWorker(backend: database, verbose: true, millisecondsPerWord: arguments.millisecondsPerWord)

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
    await database.close()
    print("Worker stopped.")
    return 0
}

/// `client --db FILE [...]`: schedules a word count on the file and waits for a worker to finish it.
func runClient(_ arguments: Arguments) async throws -> Int32 {
    let path = arguments.databasePath ?? ""
    let documents = try arguments.documents()
    let database = try openDatabase(path)
    let outcome: Result<Int32, any Error>
    do {
        outcome = .success(try await count(documents, client: DurableTaskClient(backend: database),
                                           workerHint: "swift run WordCount worker --db \(path)"))
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
    }
} catch {
    printError("\(error)")
    exit(1)
}
