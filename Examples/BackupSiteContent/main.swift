// The backup example: the fan-out/fan-in tutorial's "backup site content" on the local file system.
//
// BackupSiteContentOrchestrator.swift holds the orchestrator, GetFileList.swift and
// CopyFileToBackup.swift the activities; this file wires them to a backend, a worker and a client, and
// checks the backup. Run `swift run BackupSiteContent --help` for the modes.

// `@preconcurrency` for `stdout`, a C global that Swift 6 treats as shared mutable state: its one use,
// `setvbuf` below, runs before this process has any other thread. (It must come before the imports
// that bring the C library in without it.)
#if canImport(Glibc)
    @preconcurrency import Glibc
#elseif canImport(Darwin)
    @preconcurrency import Darwin
#endif
import DurableTask
import DurableTaskSQLite
import Foundation

/// A directory argument that cannot be backed up; exits with status 1.
struct InputError: Error, CustomStringConvertible {
    /// What is wrong.
    var description: String
}

/// Creates a worker that runs the example's orchestrator and activities on `backend`.
func makeWorker(backend: any Backend, arguments: Arguments, verbose: Bool) -> DurableTaskWorker {
    var options = DurableTaskWorker.Options()
    if verbose {
        // Also the orchestrator's own `context.logger.info` lines, which the default handler leaves out.
        options.logHandler = { level, message in
            if level >= .info { print("  \(level): \(message)") }
        }
    }
    let worker = DurableTaskWorker(backend: backend, options: options)
    worker.addOrchestrator(BackupSiteContentOrchestrator())
    worker.addActivity(GetFileList())
    worker.addActivity(
        CopyFileToBackup(
            announce: verbose, millisecondsPerFile: arguments.millisecondsPerFile,
            crashSwitch: arguments.crashAfter.map { .init(after: $0) }))
    return worker
}

/// SOURCE_DIR and BACKUP_DIR, made absolute (a worker in another directory must find them) and checked.
/// - Throws: ``InputError`` when the source is not a directory or the backup would go inside it.
func backupRequest(_ arguments: Arguments) throws -> BackupRequest {
    let source = URL(fileURLWithPath: arguments.directories[0]).standardizedFileURL.path
    let backup = URL(fileURLWithPath: arguments.directories[1]).standardizedFileURL.path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw InputError(description: "no such directory: \(arguments.directories[0])")
    }
    // A backup inside its source would be listed, and copied into itself, on the next run.
    if backup == source || backup.hasPrefix(source.hasSuffix("/") ? source : source + "/") {
        throw InputError(description: "the backup directory \(backup) is inside the source directory \(source)")
    }
    return BackupRequest(sourceDirectory: source, backupDirectory: backup)
}

/// Schedules a backup, prints its progress while it runs, then prints and checks the result.
/// - Returns: the exit status: 0 when the backup completed and passed the check.
func backUp(_ request: BackupRequest, client: DurableTaskClient, workerHint: String? = nil) async throws -> Int32 {
    let clock = ContinuousClock()
    let start = clock.now
    let instanceID = "backup-\(UUID().uuidString.prefix(8).lowercased())"
    try await client.scheduleNewOrchestration(BackupSiteContentOrchestrator.self, input: request, instanceID: instanceID)
    print("Scheduled \(instanceID): back up \(request.sourceDirectory) to \(request.backupDirectory)")

    let metadata = try await waitShowingProgress(instanceID, client: client, workerHint: workerHint)
    let elapsed = start.duration(to: clock.now)
    guard metadata.status == .completed else {
        print("The backup \(metadata.status.rawValue): \(metadata.failure.map { "\($0)" } ?? "no details")")
        return 1
    }
    let report = try metadata.output(as: BackupReport.self)
    print("Copied \(report.files) files, \(report.bytes) bytes in total.")
    let passed = checkBackup(request, report: report)
    print(String(format: "Done in %.2f s.", seconds(elapsed)))
    return passed ? 0 : 1
}

/// Compares the two trees byte for byte and the report's total with the sizes of the source files,
/// and prints the outcome.
/// - Returns: whether the backup passed.
func checkBackup(_ request: BackupRequest, report: BackupReport) -> Bool {
    var problems: [String] = []
    var sourceBytes = 0
    do {
        let sourceFiles = try GetFileList.regularFiles(under: request.sourceDirectory)
        let backupFiles = try GetFileList.regularFiles(under: request.backupDirectory)
        let missing = Set(sourceFiles).subtracting(backupFiles)
        let extra = Set(backupFiles).subtracting(sourceFiles)
        problems += missing.sorted().map { "missing from the backup: \($0)" }
        problems += extra.sorted().map { "in the backup but not in the source: \($0)" }
        for path in sourceFiles where !missing.contains(path) {
            let source = request.sourceDirectory + "/" + path
            sourceBytes += (try? FileManager.default.attributesOfItem(atPath: source)[.size] as? Int) ?? 0
            if !(try sameContents(source, request.backupDirectory + "/" + path)) {
                problems.append("differs: \(path)")
            }
        }
        if report.files != sourceFiles.count {
            problems.append("the orchestrator copied \(report.files) files, the source has \(sourceFiles.count)")
        }
        if report.bytes != sourceBytes {
            problems.append("the orchestrator summed \(report.bytes) bytes, the source files hold \(sourceBytes)")
        }
    } catch {
        problems.append("\(error)")
    }
    if problems.isEmpty {
        print(
            "Check passed: the backup holds the \(report.files) source files, byte-identical, and nothing else; "
                + "\(report.bytes) bytes = the sum of the source file sizes.")
        return true
    }
    print("Check FAILED:")
    for problem in problems.prefix(20) { print("  \(problem)") }
    if problems.count > 20 { print("  ... \(problems.count - 20) more") }
    return false
}

/// Whether two files hold the same bytes, read in 1 MiB blocks.
func sameContents(_ first: String, _ second: String) throws -> Bool {
    let a = try FileHandle(forReadingFrom: URL(fileURLWithPath: first))
    defer { try? a.close() }
    let b = try FileHandle(forReadingFrom: URL(fileURLWithPath: second))
    defer { try? b.close() }
    while true {
        let blockA = try a.read(upToCount: 1 << 20) ?? Data()
        let blockB = try b.read(upToCount: 1 << 20) ?? Data()
        if blockA != blockB { return false }
        if blockA.isEmpty { return true }
    }
}

/// Polls the instance every 100 ms, printing its custom status when it changes, until it finishes.
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

/// A duration in seconds, for printing.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Deletes a database file and its WAL companions.
func removeDatabase(_ path: String) {
    for suffix in ["", "-wal", "-shm"] {
        try? FileManager.default.removeItem(atPath: path + suffix)
    }
}

/// The default mode: a worker and a client in this process, sharing one backend.
func runInOneProcess(_ arguments: Arguments) async throws -> Int32 {
    let request = try backupRequest(arguments)
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
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("backup-\(getpid()).sqlite").path
                removeDatabase(path)
                temporaryPath = path
                return path
            }()
        let opened = try SQLiteBackend(path: path)
        database = opened
        backend = opened
        print("Backend: SQLiteBackend at \(path)")
    }
    let worker = makeWorker(backend: backend, arguments: arguments, verbose: false)
    let running = Task { await worker.run() }
    let outcome = await Result { try await backUp(request, client: DurableTaskClient(backend: backend)) }
    worker.stop()
    await running.value
    await database?.close()
    if let temporaryPath { removeDatabase(temporaryPath) }
    return try outcome.get()
}

/// `worker --db FILE`: runs a worker on the file until Ctrl-C.
func runWorker(_ arguments: Arguments) async throws -> Int32 {
    let path = arguments.databasePath ?? ""
    let database = try SQLiteBackend(path: path)
    let worker = makeWorker(backend: database, arguments: arguments, verbose: true)

    // Ctrl-C stops the worker gently (it finishes the copies it is running and records them) instead
    // of killing the process: ignore the signal's default action and handle it on a dispatch source.
    signal(SIGINT, SIG_IGN)
    let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    interrupt.setEventHandler {
        print("\nStopping the worker...")
        worker.stop()
    }
    interrupt.resume()

    print("Worker running on \(path)\(arguments.crashAfter.map { ", to be killed after \($0) copies" } ?? ""). Press Ctrl-C to stop.")
    await worker.run()
    interrupt.cancel()
    await database.close()
    print("Worker stopped.")
    return 0
}

/// `client --db FILE SOURCE_DIR BACKUP_DIR`: schedules a backup on the file and waits for a worker to do it.
func runClient(_ arguments: Arguments) async throws -> Int32 {
    let path = arguments.databasePath ?? ""
    let request = try backupRequest(arguments)
    let database = try SQLiteBackend(path: path)
    let outcome = await Result {
        try await backUp(
            request, client: DurableTaskClient(backend: database),
            workerHint: "swift run BackupSiteContent worker --db \(path)")
    }
    await database.close()
    return try outcome.get()
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing body, so cleanup can run before it is rethrown.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}

/// Writes `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("BackupSiteContent: \(message)\n".utf8))
}

// Line by line, even into a pipe: a worker that is killed must not take its last lines with it.
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
    }
} catch {
    printError("\(error)")
    exit(1)
}
