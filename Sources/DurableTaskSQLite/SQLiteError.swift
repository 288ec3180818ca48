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

    /// Whether the file is not a database or is damaged (as opposed to unreachable).
    var isDamage: Bool { resultCode == SQLITE_NOTADB || resultCode == SQLITE_CORRUPT }

    public var description: String {
        var text = "SQLite error \(resultCode)"
        if extendedResultCode != resultCode { text += " (extended \(extendedResultCode))" }
        text += ": \(message)"
        if let sql { text += " — while executing `\(sql)`" }
        return text
    }
}

extension SQLiteError {
    /// The error a backend caller sees for this one.
    ///
    /// Failures a user's environment causes — the storage itself, not the data or our code: locked
    /// beyond the busy timeout, disk or quota full, I/O errors, a read-only file system or missing
    /// permissions, a file that cannot be opened or was moved away, no memory — become
    /// `DurableTaskError(.storage)`, which the worker retries with back-off and never counts toward
    /// parking an item as poisoned: the item is not at fault, and it works again once the cause is
    /// gone. A damaged file (`SQLITE_CORRUPT`, `SQLITE_NOTADB`) becomes `DurableTaskError(.corruptData)`.
    /// Other codes (bugs, constraint violations) stay `SQLiteError`s.
    ///
    /// Each message says what happened to the write and what to do, and keeps SQLite's own text
    /// (`database is locked`, `attempt to write a readonly database`), so a log search for it still
    /// finds the line.
    /// - Parameters:
    ///   - path: the database file, named in the message.
    ///   - busyTimeout: the timeout that ran out, for BUSY.
    ///   - maxDatabaseBytes: the quota in force, for FULL.
    func storageError(path: String, busyTimeout: Duration, maxDatabaseBytes: Int?) -> any Error {
        let detail = " [\(self)]"
        switch resultCode {
        case SQLITE_BUSY, SQLITE_LOCKED:
            let milliseconds = Int64(busyTimeout.timeInterval * 1000)
            return DurableTaskError(
                .storage,
                "the database \(path) is locked by another process for longer than the busy timeout (\(milliseconds) ms); "
                    + "nothing was written, retry later" + detail)
        case SQLITE_FULL:
            let quota = maxDatabaseBytes.map { "the quota maxDatabaseBytes (\($0) bytes) is reached or " } ?? ""
            return DurableTaskError(
                .storage,
                "cannot write to \(path): database or disk is full (\(quota)the file system has no space left); "
                    + "the transaction was rolled back and nothing was lost; free space or raise the quota and it resumes" + detail)
        case SQLITE_IOERR:
            return DurableTaskError(
                .storage,
                "I/O error on \(path) (\(Self.ioErrorKind(extendedResultCode))): the disk or file system failed; "
                    + "the transaction was rolled back and nothing was lost" + detail)
        case SQLITE_READONLY where extendedResultCode == Self.readOnlyDatabaseMoved:
            return DurableTaskError(
                .storage,
                "the database file \(path) was deleted, moved or replaced while it was open; nothing was written. "
                    + "Stop this process; put the file back, or start again on the new file" + detail)
        case SQLITE_READONLY:
            return DurableTaskError(
                .storage,
                "cannot write to \(path): the database file is read-only (a read-only file system, or no write permission "
                    + "on the file, its -wal and -shm files or its directory); nothing was written" + detail)
        case SQLITE_CANTOPEN:
            return DurableTaskError(
                .storage,
                "cannot open the database file \(path): its directory may not exist, or the file (or its -wal or -shm file) "
                    + "cannot be created or opened (permissions, a read-only file system, a directory at that path)" + detail)
        case SQLITE_PERM:
            return DurableTaskError(
                .storage,
                "access to \(path) was denied (permissions, or a security policy); nothing was written" + detail)
        case SQLITE_NOMEM:
            return DurableTaskError(.storage, "out of memory while using \(path); nothing was written" + detail)
        case SQLITE_PROTOCOL:
            return DurableTaskError(
                .storage,
                "file locking on \(path) does not work as SQLite needs (a network file system?); "
                    + "nothing was written. Keep the database on a local disk" + detail)
        case SQLITE_NOLFS:
            return DurableTaskError(
                .storage,
                "the file system of \(path) does not support files this large; nothing was written" + detail)
        case SQLITE_CORRUPT, SQLITE_NOTADB:
            return DurableTaskError(
                .corruptData,
                "the database \(path) is damaged (\(message)); restore it from a backup" + detail)
        default:
            return self
        }
    }

    /// `SQLITE_READONLY_DBMOVED`: the file was unlinked or renamed since it was opened.
    static let readOnlyDatabaseMoved: Int32 = SQLITE_READONLY | (4 << 8)

    /// A few words for the common extended I/O codes.
    static func ioErrorKind(_ extended: Int32) -> String {
        switch extended >> 8 {
        case 1: "read failed"
        case 2: "short read: the file is shorter than expected"
        case 3: "write failed"
        case 4, 5: "fsync failed"
        case 6: "truncate failed"
        case 7: "fstat failed"
        case 8, 9, 14, 15: "file lock failed"
        case 10, 23: "delete failed"
        case 12: "out of memory"
        case 13: "access check failed"
        case 18, 19, 20, 21: "the shared-memory file -shm failed"
        case 32: "checksum mismatch"
        case 33: "the file system reports corruption"
        default: "SQLite I/O code \(extended)"
        }
    }
}
