import CSQLite
import DurableTask

/// An error reported by libsqlite3, with enough context to debug from one log line.
///
/// As GRDB's `DatabaseError`: the primary result code (`SQLITE_BUSY`, `SQLITE_CORRUPT`, ...), the
/// extended code that refines it, SQLite's own message and the SQL that failed.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The primary result code (the low byte of the extended code), e.g. `SQLITE_BUSY` (5).
    public var resultCode: Int32
    /// The extended result code, e.g. `SQLITE_BUSY_SNAPSHOT`.
    public var extendedResultCode: Int32
    /// SQLite's message (`sqlite3_errmsg`) or a message of our own.
    public var message: String
    /// The statement that failed, if any.
    public var sql: String?

    /// Creates an error.
    public init(resultCode: Int32, extendedResultCode: Int32? = nil, message: String, sql: String? = nil) {
        self.resultCode = resultCode & 0xFF
        self.extendedResultCode = extendedResultCode ?? resultCode
        self.message = message
        self.sql = sql
    }

    /// Whether another connection held a lock for longer than the busy timeout.
    public var isBusy: Bool { resultCode == SQLITE_BUSY || resultCode == SQLITE_LOCKED }

    public var description: String {
        var text = "SQLite error \(resultCode)"
        if extendedResultCode != resultCode { text += " (extended \(extendedResultCode))" }
        text += ": \(message)"
        if let sql { text += " — while executing `\(sql)`" }
        return text
    }
}

extension SQLiteError {
    /// The error a backend caller sees for this one: failures of the storage itself (locked beyond the
    /// busy timeout, disk or quota full, I/O error) become `DurableTaskError(.storage)` with a message
    /// that says what happened to the write and what to do; other codes (bugs, constraint violations)
    /// stay `SQLiteError`s.
    ///
    /// Each message keeps SQLite's own text (`database is locked`, `database or disk is full`), so a
    /// log search for it still finds the line.
    /// - Parameters:
    ///   - path: the database file, named in the message.
    ///   - busyTimeout: the timeout that ran out, for BUSY.
    ///   - maxDatabaseBytes: the quota in force, for FULL.
    func storageError(path: String, busyTimeout: Duration, maxDatabaseBytes: Int?) -> any Error {
        switch resultCode {
        case SQLITE_BUSY, SQLITE_LOCKED:
            let milliseconds = Int64(busyTimeout.timeInterval * 1000)
            return DurableTaskError(.storage,
                "the database \(path) is locked by another process for longer than the busy timeout (\(milliseconds) ms); "
                + "nothing was written, retry later [\(self)]")
        case SQLITE_FULL:
            let quota = maxDatabaseBytes.map { "the quota maxDatabaseBytes (\($0) bytes) is reached or " } ?? ""
            return DurableTaskError(.storage,
                "cannot write to \(path): database or disk is full (\(quota)the file system has no space left); "
                + "the transaction was rolled back and nothing was lost; free space or raise the quota and it resumes [\(self)]")
        case SQLITE_IOERR:
            return DurableTaskError(.storage,
                "I/O error on \(path); the transaction was rolled back and nothing was lost [\(self)]")
        default:
            return self
        }
    }
}
