import DurableTask
import DurableTaskPostgres
import DurableTaskSQLite
import Foundation

/// Which backend a run uses, and its durability setting.
struct BackendChoice {
    /// `memory`, `sqlite` or `postgres`.
    enum Kind: String {
        case memory, sqlite, postgres
    }

    let kind: Kind
    let synchronous: SQLiteBackend.Synchronous
    /// The server of `--backend postgres` (`--url`, or `DURABLETASK_POSTGRES_URL`).
    var postgresURL: String?

    /// The `sync` figure in reports: `full`/`every-step`/`normal` for SQLite, `none` for the in-memory backend.
    var syncLabel: String {
        switch kind {
        case .memory: return "none"
        case .sqlite:
            switch synchronous {
            case .full: return "full"
            case .fullEveryStep: return "every-step"
            case .normal: return "normal"
            }
        // The server's synchronous_commit decides (on by default) for what waits for the disk.
        case .postgres: return synchronous == .fullEveryStep ? "server-every-step" : "server"
        }
    }

    /// Reads `--backend` (default `defaultKind`) and `--sync` (default `full`, the library's default).
    /// - Throws: ``BenchError`` for unknown values, `--sync` with the in-memory backend, or `--sync
    ///   normal` with PostgreSQL.
    init(_ arguments: inout Arguments, defaultKind: Kind = .memory) throws {
        let backend = arguments.string("backend", default: defaultKind.rawValue)
        guard let kind = Kind(rawValue: backend) else {
            throw BenchError("--backend must be 'memory', 'sqlite' or 'postgres', got '\(backend)'")
        }
        if kind == .memory, arguments.has("sync") {
            throw BenchError("--sync applies to --backend sqlite or postgres only")
        }
        if kind == .postgres {
            let url = arguments.string("url", default: ProcessInfo.processInfo.environment["DURABLETASK_POSTGRES_URL"] ?? "")
            if url.isEmpty { throw BenchError("--backend postgres needs --url URL (or DURABLETASK_POSTGRES_URL)") }
            postgresURL = url
        } else if arguments.has("url") {
            throw BenchError("--url applies to --backend postgres only")
        }
        switch arguments.string("sync", default: "full") {
        case "full": synchronous = .full
        case "every-step": synchronous = .fullEveryStep
        case "normal": synchronous = .normal
        case let other: throw BenchError("--sync must be 'full', 'every-step' or 'normal', got '\(other)'")
        }
        if kind == .postgres, synchronous == .normal {
            throw BenchError("--sync normal applies to --backend sqlite only (the server's synchronous_commit decides)")
        }
        self.kind = kind
    }
}

/// A backend for one run: the in-memory backend, or SQLite on a fresh temporary file that
/// ``dispose()`` deletes (with its `-wal` and `-shm` companions).
final class BenchStore {
    let choice: BackendChoice
    /// The database file, for SQLite.
    let path: String?
    /// The open backend; ``reopen()`` replaces it (SQLite) to measure a cold start.
    private(set) var backend: any Backend

    /// Creates the backend; for SQLite a new file under the temporary directory.
    /// - Throws: whatever opening the SQLite database throws.
    init(_ choice: BackendChoice) throws {
        self.choice = choice
        switch choice.kind {
        case .memory:
            path = nil
            backend = InMemoryBackend()
        case .sqlite:
            let file = FileManager.default.temporaryDirectory
                .appendingPathComponent("durabletask-bench-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8)).sqlite").path
            path = file
            backend = try BenchStore.openSQLite(file, choice)
        case .postgres:
            // A fresh schema (task hub) per run; `path` holds its name so `reopen()` finds it again.
            let schema = "bench_\(ProcessInfo.processInfo.processIdentifier)_\(UUID().uuidString.prefix(8).lowercased())"
            path = schema
            backend = try BenchStore.openPostgres(schema, choice)
        }
    }

    private static func openPostgres(_ schema: String, _ choice: BackendChoice) throws -> PostgresBackend {
        try PostgresBackend(url: choice.postgresURL ?? "", options: .init(schema: schema, syncEveryStep: choice.synchronous == .fullEveryStep))
    }

    private static func openSQLite(_ path: String, _ choice: BackendChoice) throws -> SQLiteBackend {
        // The integrity check at open is a start-up cost, not part of what the benchmark measures;
        // `replay` times the open separately.
        try SQLiteBackend(path: path, options: .init(synchronous: choice.synchronous, verifyIntegrityOnOpen: false))
    }

    /// Closes the SQLite backend and opens a new instance on the same file: nothing cached in this
    /// process survives (connections, statement caches, SQLite's page cache). The in-memory backend
    /// cannot be reopened and is kept.
    /// - Throws: whatever opening the database throws.
    func reopen() async throws {
        guard let path else { return }
        await close()
        backend = choice.kind == .postgres ? try BenchStore.openPostgres(path, choice) : try BenchStore.openSQLite(path, choice)
    }

    /// Closes the SQLite connections (a no-op for the in-memory backend).
    func close() async {
        if let sqlite = backend as? SQLiteBackend { await sqlite.close() }
        if let postgres = backend as? PostgresBackend { await postgres.close() }
    }

    /// Closes the backend and deletes the database files.
    func dispose() async {
        await close()
        guard let path, choice.kind == .sqlite else { return }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            try? FileManager.default.removeItem(atPath: path + suffix)
        }
    }

    /// The size of the database file plus its WAL, in bytes (0 for the in-memory backend).
    func fileBytes() -> Int {
        guard let path, choice.kind == .sqlite else { return 0 }
        return ["", "-wal"].reduce(0) { total, suffix in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + suffix)
            return total + ((attributes?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }
}

/// A worker running in the background of the benchmark process.
struct RunningWorker {
    let worker: DurableTaskWorker
    private let task: Task<Void, Never>

    /// Registers the benchmark's orchestrators and activities on a new worker and starts it.
    init(backend: any Backend, common: CommonOptions) {
        var options = DurableTaskWorker.Options(
            maxConcurrentActivities: common.activities,
            logHandler: { level, message in
                // Info and debug would print per episode and distort the timing; warnings and errors matter.
                guard level >= .warning else { return }
                FileHandle.standardError.write(Data("[worker] \(level): \(message)\n".utf8))
            })
        if let episodes = common.maxOrchestrations { options.maxConcurrentOrchestrations = episodes }
        let worker = DurableTaskWorker(backend: backend, options: options)
        worker.addOrchestrator(WordCountFanOut())
        worker.addOrchestrator(WordCountFanOutThenWait())
        worker.addOrchestrator(WordCountRounds())
        worker.addOrchestrator(SingleWordCount())
        worker.addActivity(CountWords())
        self.worker = worker
        task = Task { await worker.run() }
    }

    /// Cancels the worker and waits until it has stopped (in-flight episodes finish first).
    func stop() async {
        // Cancelling the task rather than `worker.stop()`: `run()` may not have registered its task yet.
        task.cancel()
        await task.value
    }
}

/// Settings every mode shares.
struct CommonOptions {
    /// The worker's `maxConcurrentActivities`.
    let activities: Int
    /// The worker's `maxConcurrentOrchestrations`, when given; the library's default otherwise.
    let maxOrchestrations: Int?
    /// How long to wait for one instance before giving up.
    let timeout: Duration
    /// The client's `pollInterval` (how often a waiter re-reads its instance when the backend cannot
    /// tell about other processes' changes), when given; the library's default otherwise. A diagnostic: the default is what users get.
    let clientPoll: Duration?

    /// Reads `--activities`, `--max-orchestrations`, `--timeout` and `--client-poll-ms`.
    init(_ arguments: inout Arguments) throws {
        activities = try arguments.int("activities", default: 64)
        maxOrchestrations = arguments.has("max-orchestrations") ? try arguments.int("max-orchestrations", default: 1) : nil
        timeout = .seconds(try arguments.int("timeout", default: 900))
        clientPoll = arguments.has("client-poll-ms") ? .milliseconds(try arguments.int("client-poll-ms", default: 200)) : nil
    }

    /// A client on `backend` with these options.
    func client(_ backend: any Backend) -> DurableTaskClient {
        if let clientPoll { return DurableTaskClient(backend: backend, pollInterval: clientPoll) }
        return DurableTaskClient(backend: backend)
    }
}
