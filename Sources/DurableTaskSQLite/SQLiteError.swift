import CSQLite

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
