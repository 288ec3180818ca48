import CLibPQ
import DurableTask
import DurableTaskPostgres
import DurableTaskSQLite
import Foundation

/// Where a torture run keeps its task hub: an SQLite file (the default) or a schema of its own on a
/// PostgreSQL server (`--postgres URL`), so that the parent, its children and the checks all open the
/// same hub by the same arguments.
enum TortureHub {
    case sqlite(path: String)
    case postgres(url: String, schema: String)

    /// The hub a parent mode uses: `--postgres URL` gives a fresh schema `torture_<random>` (runs never
    /// see each other's leftovers), otherwise the SQLite file `hub.sqlite` in the run's directory.
    static func forParent(_ arguments: Arguments, directory: URL) -> TortureHub {
        let url = arguments.string("postgres", "")
        if url.isEmpty { return .sqlite(path: directory.appendingPathComponent("hub.sqlite").path) }
        return .postgres(url: url, schema: "torture_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))
    }

    /// The hub a child mode was given: `--postgres URL --schema NAME`, or `--db FILE`.
    static func forChild(_ arguments: Arguments) -> TortureHub {
        let url = arguments.string("postgres", "")
        if url.isEmpty { return .sqlite(path: arguments.string("db", "")) }
        return .postgres(url: url, schema: arguments.string("schema", "durabletask"))
    }

    /// The arguments that make a child open this hub (see ``forChild(_:)``).
    var childArguments: [String] {
        switch self {
        case .sqlite(let path): return ["--db", path]
        case .postgres(let url, let schema): return ["--postgres", url, "--schema", schema]
        }
    }

    /// A name for summaries: the file, or the schema on its server (never a password).
    var label: String {
        switch self {
        case .sqlite(let path): return "sqlite \(path)"
        case .postgres(_, let schema): return "postgres schema \(schema)"
        }
    }

    var isPostgres: Bool {
        if case .postgres = self { return true }
        return false
    }

    /// Opens the hub.
    /// - Parameter log: receives the Postgres backend's messages (reconnects, dead workers' leases
    ///   taken over); SQLite's backend has no log handler.
    /// - Throws: the backend's open errors.
    func open(log: (@Sendable (LogLevel, String) -> Void)? = nil) throws -> any Backend {
        switch self {
        case .sqlite(let path):
            return try SQLiteBackend(path: path)
        case .postgres(let url, let schema):
            var options = PostgresBackend.Options(schema: schema)
            if let log { options.logHandler = log }
            return try PostgresBackend(url: url, options: options)
        }
    }

    /// Closes a backend that ``open(log:)`` returned.
    static func close(_ backend: any Backend) async {
        if let postgres = backend as? PostgresBackend { await postgres.close() }
        if let sqlite = backend as? SQLiteBackend { await sqlite.close() }
    }

    /// SQLite's `PRAGMA integrity_check`; a PostgreSQL server checks its own pages, so `ok` there.
    func integrityCheck() -> String {
        switch self {
        case .sqlite(let path): return Verification.integrityCheck(path: path)
        case .postgres: return "ok"
        }
    }

    /// Drops a Postgres run's schema (the SQLite file goes with the run's directory), so a shared
    /// server does not fill up with finished runs.
    func drop() {
        guard case .postgres(let url, let schema) = self else { return }
        guard let connection = PQconnectdb(url) else { return }
        defer { PQfinish(connection) }
        guard PQstatus(connection) == CONNECTION_OK else { return }
        // The schema name was generated above from letters and digits only, so it needs no quoting.
        // Without the SET, the server lists every dropped table as a NOTICE that libpq prints.
        if let result = PQexec(connection, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS \(schema) CASCADE") { PQclear(result) }
    }
}

/// A log handler for child processes: every message with the wall-clock time, so a script can tell
/// when a dead worker's leases were taken over (`LOG <unix seconds> <level>: <message>`).
let timestampedLog: @Sendable (LogLevel, String) -> Void = { level, message in
    // Debug messages are per episode and would bury the few that matter.
    guard level >= .info else { return }
    let line = String(format: "LOG %.3f ", Date().timeIntervalSince1970) + "\(level): \(message)\n"
    FileHandle.standardError.write(Data(line.utf8))
}
