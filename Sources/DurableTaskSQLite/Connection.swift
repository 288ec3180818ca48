import CSQLite
import Foundation

/// One libsqlite3 connection, used from one thread only (the ``DatabaseThread`` that owns it).
///
/// Deliberately not `Sendable`: the connection is opened with `SQLITE_OPEN_NOMUTEX`, so every call
/// must come from the thread that owns it.
final class Connection {
    /// The raw handle; valid until `close()`.
    private(set) var handle: OpaquePointer?
    /// The path given at open, for error messages.
    let path: String
    /// Prepared statements kept for the connection's lifetime, keyed by SQL text.
    private var cache: [String: Statement] = [:]
    /// How long a transaction may wait for another connection's lock in all, including our own
    /// retries of SQLITE_BUSY; see ``setBusyTimeout(_:)``.
    private(set) var busyTimeout: Duration = .seconds(10)

    /// Opens (or creates) a database file.
    /// - Parameter create: whether a missing file is created.
    init(path: String, create: Bool = true) throws {
        self.path = path
        var flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        if create { flags |= SQLITE_OPEN_CREATE }
        if path.hasPrefix("file:") { flags |= SQLITE_OPEN_URI }
        _ = Connection.processSetup
        var db: OpaquePointer?
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            let extended = db.map { sqlite3_extended_errcode($0) } ?? code
            sqlite3_close_v2(db)
            throw SQLiteError(
                resultCode: code, extendedResultCode: extended,
                message: "cannot open database at \(path): \(message)")
        }
        handle = db
        // Extended codes tell SQLITE_BUSY_SNAPSHOT and SQLITE_CORRUPT_* apart in errors.
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { close() }

    /// Runs once, before the process's first connection: libsqlite3 keeps memory statistics by default,
    /// which takes a global mutex around every allocation of every connection — several per cent of a
    /// busy worker's CPU. Nothing here reads them. When something else in the process initialized
    /// libsqlite3 first, the call fails and the statistics stay on; that is only slower.
    private static let processSetup: Void = { _ = csqlite_disable_memory_statistics() }()

    /// Sets libsqlite3's busy handler and the deadline of our own BUSY retries to `timeout`.
    func setBusyTimeout(_ timeout: Duration) {
        busyTimeout = max(.zero, timeout)
        sqlite3_busy_timeout(handle, Int32(clamping: Int64(busyTimeout.timeInterval * 1000)))
    }

    /// Finalizes the cached statements and closes the handle. Idempotent.
    func close() {
        cache.removeAll()
        if let handle {
            sqlite3_close_v2(handle)
            self.handle = nil
        }
    }

    /// The error for the last failed call on this connection.
    func lastError(_ code: Int32, sql: String?) -> SQLiteError {
        guard let handle else { return SQLiteError(resultCode: SQLITE_MISUSE, message: "connection is closed", sql: sql) }
        return SQLiteError(
            resultCode: code, extendedResultCode: sqlite3_extended_errcode(handle),
            message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements that return no rows we need (DDL, pragmas, BEGIN/COMMIT).
    func execute(_ sql: String) throws {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        if code != SQLITE_OK { throw lastError(code, sql: sql) }
    }

    /// Prepares a statement used once (not cached).
    func prepare(_ sql: String) throws -> Statement {
        try Statement(connection: self, sql: sql, persistent: false)
    }

    /// A prepared statement from the cache, reset and with its bindings cleared.
    ///
    /// Statements run in hot loops (one per activity completion) are prepared once with
    /// `SQLITE_PREPARE_PERSISTENT` and reused, which saves the parse on every row.
    func cached(_ sql: String) throws -> Statement {
        if let statement = cache[sql] {
            statement.reset()
            return statement
        }
        let statement = try Statement(connection: self, sql: sql, persistent: true)
        cache[sql] = statement
        return statement
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last INSERT.
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// The first column of the first row of a query, as an integer (0 when there is no row).
    func scalarInt(_ sql: String) throws -> Int64 {
        let statement = try prepare(sql)
        return try statement.firstRow { statement.int64(0) } ?? 0
    }

    /// The first column of the first row of a query, as text.
    func scalarText(_ sql: String) throws -> String? {
        let statement = try prepare(sql)
        return try statement.firstRow { statement.optionalText(0) } ?? nil
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws and rethrows
    /// the first error (a failing ROLLBACK never hides the error that caused it).
    ///
    /// - Parameter immediate: `BEGIN IMMEDIATE` takes the write lock up front, so a writer never fails
    ///   half-way with SQLITE_BUSY when another process wrote in between.
    ///
    /// SQLITE_BUSY on BEGIN or COMMIT is retried, but only until ``busyTimeout`` has passed since the
    /// call: some BUSY results return at once without the busy handler, and those are transient, but a
    /// lock another process holds for longer than the timeout must become an error the caller sees
    /// instead of a write that hangs forever.
    func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        let deadline = ContinuousClock.now + busyTimeout
        try begin(immediate: immediate, deadline: deadline)
        let result: T
        do {
            result = try body()
        } catch {
            resetActiveStatements()
            try? execute("ROLLBACK")
            throw error
        }
        resetActiveStatements()
        do {
            try commit(deadline: deadline)
        } catch {
            // After SQLITE_FULL or an I/O error libsqlite3 may already have rolled back; then this
            // ROLLBACK fails harmlessly.
            try? execute("ROLLBACK")
            throw error
        }
        return result
    }

    /// Whether a transaction is open: libsqlite3 rolls a whole transaction back by itself after some
    /// errors (SQLITE_FULL, I/O errors), and a batch of writes must then not go on as if it were open.
    var isInTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Runs `body` inside a savepoint of the open transaction: its changes are kept when it returns and
    /// undone alone when it throws, so one write of a batch can fail without failing the others.
    /// - Throws: the body's error; a failing ROLLBACK TO or RELEASE never hides it.
    func savepoint<T>(_ body: () throws -> T) throws -> T {
        // Prepared once: a batch runs these three statements for every write it holds.
        try cached("SAVEPOINT write").run()
        let result: T
        do {
            result = try body()
        } catch {
            resetActiveStatements()
            if isInTransaction {
                try? cached("ROLLBACK TO write").run()
                try? cached("RELEASE write").run()
            }
            throw error
        }
        try cached("RELEASE write").run()
        return result
    }

    /// Resets every statement left part-way through its rows (a body that threw while reading, or
    /// stopped early).
    ///
    /// An active statement keeps its read snapshot past COMMIT or ROLLBACK: a reader connection would
    /// then see the database as it was at that moment for good, e.g. after one undecodable row.
    private func resetActiveStatements() {
        guard let handle else { return }
        var statement = sqlite3_next_stmt(handle, nil)
        while let current = statement {
            if sqlite3_stmt_busy(current) != 0 { sqlite3_reset(current) }
            statement = sqlite3_next_stmt(handle, current)
        }
    }

    /// Runs `body` again while it fails with SQLITE_BUSY or SQLITE_LOCKED, until `deadline`.
    ///
    /// For the statements of opening a file, where another process may be creating the same database:
    /// some of them (switching the journal mode, reading while a first writer sets up WAL) get BUSY at
    /// once, without libsqlite3's busy handler waiting first.
    func retryingBusy<T>(until deadline: ContinuousClock.Instant, _ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch let error as SQLiteError where error.isBusy {
                resetActiveStatements()
                if ContinuousClock.now >= deadline { throw error }
                attempt += 1
                usleep(UInt32(min(attempt, 50)) * 1_000)
            }
        }
    }

    private func begin(immediate: Bool, deadline: ContinuousClock.Instant) throws {
        let sql = immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"
        var attempt = 0
        while true {
            do {
                try execute(sql)
                return
            } catch let error as SQLiteError where error.isBusy {
                // The busy handler has usually waited already; a BUSY that came back at once (WAL
                // recovery, a snapshot race) is retried with a short back-off until the deadline.
                if ContinuousClock.now >= deadline { throw error }
                attempt += 1
                usleep(UInt32(min(attempt, 50)) * 1_000)
            }
        }
    }

    private func commit(deadline: ContinuousClock.Instant) throws {
        var attempt = 0
        while true {
            do {
                try execute("COMMIT")
                return
            } catch let error as SQLiteError where error.isBusy {
                // COMMIT can report BUSY (a reader blocking a checkpoint); the transaction stays open
                // and COMMIT may be retried. A few tries are allowed even past the deadline, since the
                // work is done and giving it up costs more than a few milliseconds.
                attempt += 1
                if attempt > 10 && ContinuousClock.now >= deadline { throw error }
                usleep(1_000)
            }
        }
    }
}

/// A prepared statement. Owns its `sqlite3_stmt` and finalizes it in `deinit`.
final class Statement {
    private let handle: OpaquePointer
    private unowned let connection: Connection
    /// The SQL text, for error messages.
    let sql: String

    init(connection: Connection, sql: String, persistent: Bool) throws {
        var statement: OpaquePointer?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sqlite3_prepare_v3(connection.handle, sql, -1, flags, &statement, nil)
        guard code == SQLITE_OK, let statement else { throw connection.lastError(code, sql: sql) }
        self.handle = statement
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    /// The raw handle, for resetting from extensions.
    var handleForReset: OpaquePointer { handle }

    /// Resets the statement so it can run again, and clears the bindings.
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    // MARK: Binding (1-based indices, as in SQL's ?1, ?2...)

    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    func bind(_ index: Int32, _ value: Int) { sqlite3_bind_int64(handle, index, Int64(value)) }
    func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(handle, index, value) }
    func bind(_ index: Int32, _ value: Date) { sqlite3_bind_double(handle, index, value.timeIntervalSinceReferenceDate) }
    func bindNull(_ index: Int32) { sqlite3_bind_null(handle, index) }

    func bind(_ index: Int32, _ value: String) {
        sqlite3_bind_text(handle, index, value, -1, csqlite_transient())
    }

    func bind(_ index: Int32, _ value: String?) {
        if let value { bind(index, value) } else { bindNull(index) }
    }

    func bind(_ index: Int32, _ value: Date?) {
        if let value { bind(index, value) } else { bindNull(index) }
    }

    /// Binds bytes; an empty value is a zero-length blob, distinct from NULL.
    func bind(_ index: Int32, _ value: [UInt8]) {
        if value.isEmpty {
            sqlite3_bind_zeroblob(handle, index, 0)
            return
        }
        value.withUnsafeBytes { buffer in
            _ = sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), csqlite_transient())
        }
    }

    func bind(_ index: Int32, _ value: Data) {
        if value.isEmpty {
            sqlite3_bind_zeroblob(handle, index, 0)
            return
        }
        value.withUnsafeBytes { buffer in
            _ = sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), csqlite_transient())
        }
    }

    func bind(_ index: Int32, _ value: Data?) {
        if let value { bind(index, value) } else { bindNull(index) }
    }

    // MARK: Stepping

    /// Advances to the next row: `true` for a row, `false` when done.
    @discardableResult
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let error = connection.lastError(code, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Runs the statement to completion, ignoring rows.
    func run() throws {
        while try step() {}
    }

    /// Runs the statement and returns how many rows it changed.
    func runChanges() throws -> Int {
        try run()
        return connection.changes
    }

    /// Calls `body` for each row. When `body` throws, the statement is reset, so it does not keep
    /// its read snapshot.
    func forEachRow(_ body: () throws -> Void) throws {
        do {
            while try step() { try body() }
        } catch {
            sqlite3_reset(handle)
            throw error
        }
    }

    // MARK: Columns (0-based)

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func date(_ column: Int32) -> Date { Date(timeIntervalSinceReferenceDate: double(column)) }
    func optionalDate(_ column: Int32) -> Date? { isNull(column) ? nil : date(column) }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    /// The column as text, returning `previous` itself when the bytes are equal: rows of one batch
    /// repeat the same instance and execution IDs, and sharing one string saves an allocation per row.
    func text(_ column: Int32, reusing previous: String?) -> String {
        guard var previous, let pointer = sqlite3_column_text(handle, column) else { return text(column) }
        let count = Int(sqlite3_column_bytes(handle, column))
        let same = previous.withUTF8 { utf8 -> Bool in
            guard utf8.count == count else { return false }
            guard let base = utf8.baseAddress else { return count == 0 }
            return memcmp(base, pointer, count) == 0
        }
        return same ? previous : text(column)
    }

    /// The column's bytes; `nil` for NULL, empty for a zero-length blob.
    func data(_ column: Int32) -> Data? {
        if isNull(column) { return nil }
        guard let pointer = sqlite3_column_blob(handle, column) else { return Data() }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Data(bytes: pointer, count: count)
    }

    /// Calls `body` with the column's bytes without copying them (valid only inside `body`).
    func withBytes<T>(_ column: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let pointer = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return try body(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }
}

extension Statement {
    /// Reads the first row with `body`, then resets the statement so it holds no read lock.
    func firstRow<T>(_ body: () throws -> T) throws -> T? {
        defer { sqlite3_reset(handleForReset) }
        return try step() ? body() : nil
    }
}
