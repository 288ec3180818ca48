import CSQLite
import DurableTask
import Foundation
import Synchronization

/// Opening a database file safely: recognize files that are not ours before writing a single byte,
/// then configure the connection and create or migrate the schema.
enum DatabaseSetup {
    /// The first libsqlite3 version with the fix for the WAL-reset bug (3.51.3).
    static let walResetFixVersion: Int32 = 3_051_003

    /// Whether the linked libsqlite3 has the WAL-reset bug, so sharing a file between processes is risky.
    static var libraryHasWALResetBug: Bool { sqlite3_libversion_number() < walResetFixVersion }

    /// Whether `DURABLETASK_SQLITE_NO_WAL_WARNING` is set (read each time: programs set it at run time).
    static var walWarningSilenced: Bool { getenv("DURABLETASK_SQLITE_NO_WAL_WARNING") != nil }

    static func isInMemory(_ path: String) -> Bool {
        path.isEmpty || path == ":memory:" || (path.hasPrefix("file:") && path.contains("mode=memory"))
    }

    /// Opens the writer connection: validates the file, configures the connection, creates or
    /// migrates the schema.
    /// - Throws: `DurableTaskError(.corruptData)` naming the path when the file is not a DurableTask
    ///   database (not SQLite, damaged, or another application's); the file is left untouched then.
    static func openWriter(path: String, options: SQLiteBackend.Options) throws -> Connection {
        let inMemory = isInMemory(path)
        if !inMemory {
            try checkNotReplacedUnderItsWAL(path: path)
            try checkHeader(path: path)
        }
        let c = try Connection(path: path)
        do {
            c.setBusyTimeout(options.busyTimeout)
            // Another process may be creating or migrating this very file at the same moment. Each
            // decision below is taken on one consistent snapshot, and every step waits for that
            // process's locks (up to the busy timeout) instead of failing: some of these statements get
            // SQLITE_BUSY at once, without libsqlite3's busy handler waiting. The schema itself is
            // created in one write transaction that re-reads the version inside the write lock, so two
            // openers never both create it and nobody sees it half-made.
            let deadline = ContinuousClock.now + c.busyTimeout
            let state = try c.retryingBusy(until: deadline) { try inspect(c, path: path) }
            if !state.isEmpty && options.verifyIntegrityOnOpen {
                try c.retryingBusy(until: deadline) { try quickCheck(c, path: path) }
            }
            // Only now, with the file known to be ours (or empty), may anything be written.
            try configure(c, options: options, inMemory: inMemory, deadline: deadline)
            try migrate(c, from: state.isEmpty ? 0 : state.version, path: path)
            // After the migration, which may grow the file: a quota below the schema's size would
            // otherwise refuse to create it.
            try setQuota(c, bytes: options.maxDatabaseBytes)
            return c
        } catch {
            c.close()
            throw error
        }
    }

    /// Runs an opening step, turning libsqlite3's errors into the ones callers can act on (see
    /// ``SQLiteError/storageError(path:busyTimeout:maxDatabaseBytes:)``).
    static func classifyingErrors<T>(path: String, options: SQLiteBackend.Options, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            throw error.storageError(path: path, busyTimeout: options.busyTimeout, maxDatabaseBytes: options.maxDatabaseBytes)
        }
    }

    /// Opens a reader connection on a file another connection has already set up.
    static func openReader(path: String, options: SQLiteBackend.Options) throws -> Connection {
        let c = try Connection(path: path, create: false)
        c.setBusyTimeout(options.busyTimeout)
        // A reader never writes; query_only turns a bug into an error instead of a second writer.
        try c.execute("PRAGMA mmap_size = 0; PRAGMA query_only = 1")
        return c
    }

    /// Refuses a database file that replaced the one its `-wal` file belongs to.
    ///
    /// libsqlite3 ties the `-wal` and `-shm` files to the database by name only. After `mv other.sqlite
    /// hub.sqlite` (or `rm hub.sqlite`) with processes still on the old file, or after one of them was
    /// killed, `hub.sqlite-wal` holds pages of the old file, and opening the new one would apply them
    /// to it: damage that `quick_check` does not always see. The side file `-dtlock` records which
    /// database and `-wal` files the processes on it opened. When the path names another database now
    /// while a process of the old one still runs, or while the very `-wal` file of the old one is still
    /// there with pages in it, nothing is opened. A whole set of files copied or restored together
    /// (database, `-wal`, `-dtlock`) has a `-wal` of its own and opens normally.
    /// - Throws: `DurableTaskError(.storage)` saying what to do; the files are left unchanged.
    static func checkNotReplacedUnderItsWAL(path: String) throws {
        guard let recorded = SharedLockFile.recorded(databasePath: path),
            DatabaseFileIdentity.of(path: path) != recorded.database
        else { return }
        let walBytes = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)??.int64Value ?? 0
        let oldWAL = walBytes > 0 && recorded.wal != nil && DatabaseFileIdentity.of(path: path + "-wal") == recorded.wal
        let inUse = SharedLockFile.isHeld(databasePath: path)
        guard oldWAL || inUse else { return }
        let state =
            inUse
            ? "Stop the processes that still use the previous file, then move \(path)-wal and \(path)-shm away and open again"
            : "The -wal file was left behind by a process that used the previous file and ended without closing it (killed?); "
                + "if the previous file is gone for good, move \(path)-wal and \(path)-shm away, then open again"
        throw DurableTaskError(
            .storage,
            "\(path) was deleted or replaced by another file while the previous file was in use, and \(path)-wal belongs to "
                + "the previous file: opening now would write its pages into this one and damage it, so nothing was opened or changed. "
                + state)
    }

    private static func notOurs(_ path: String, _ reason: String) -> DurableTaskError {
        DurableTaskError(.corruptData, "\(path) is not a DurableTask database: \(reason); the file was left unchanged")
    }

    /// Reads the 100-byte header ourselves: a text file, or a database cut short, is recognized
    /// before libsqlite3 touches the file.
    private static func checkHeader(path: String) throws {
        let url = URL(fileURLWithPath: path)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = (attributes[.size] as? NSNumber)?.int64Value, size > 0
        else {
            return  // missing or empty: a new database
        }
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw DurableTaskError(.storage, "cannot read \(path)")
        }
        defer { try? handle.close() }
        let header = [UInt8]((try? handle.read(upToCount: 100)) ?? Data())
        let magic = Array("SQLite format 3\0".utf8)
        guard header.count == 100, Array(header[0..<16]) == magic else {
            throw notOurs(path, "it is not an SQLite database file (no SQLite header)")
        }
        func be32(_ offset: Int) -> UInt32 {
            header[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        var pageSize = Int64(UInt16(header[16]) << 8 | UInt16(header[17]))
        if pageSize == 1 { pageSize = 65_536 }
        let pageCount = Int64(be32(28))
        // The in-header size is valid only when the change counter matches "version-valid-for";
        // and while a WAL file holds frames, a checkpoint may be mid-way, so only judge a quiet file.
        let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)??.int64Value ?? 0
        // The size is read again, last: another process's checkpoint writes page 1 (the header) before
        // the pages that extend the file and empties the WAL after them, so a size read before the
        // header could be from mid-checkpoint (a process opening a new file beside it saw 4,096 bytes
        // against a header's 53,248 once in 20 runs), while one read after an empty WAL is final.
        let finalSize = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? size
        if be32(24) == be32(92), pageCount > 0, walSize == 0, finalSize < pageSize * pageCount {
            throw notOurs(path, "the file is truncated or damaged (\(finalSize) bytes, the header says \(pageSize * pageCount))")
        }
    }

    private struct FileState {
        var isEmpty: Bool
        var version: Int
    }

    /// Reads application_id, user_version and the list of tables: an empty database is ours to set
    /// up; a database with our application ID is migrated; anything else is refused.
    private static func inspect(_ c: Connection, path: String) throws -> FileState {
        let applicationID: Int64
        let version: Int64
        let tables: Int64
        do {
            // In one read transaction: read one by one, the three could straddle another process's
            // creation of the schema and show its tables without its application_id.
            (applicationID, version, tables) = try c.transaction(immediate: false) {
                (
                    try c.scalarInt("PRAGMA application_id"), try c.scalarInt("PRAGMA user_version"),
                    try c.scalarInt(Schema.countUserTables)
                )
            }
        } catch let error as SQLiteError where error.isDamage {
            // Only "not a database" or "malformed" says something about the file; a file that cannot
            // be opened or read (a read-only file system, permissions, I/O) is a storage error.
            throw notOurs(path, "\(error.message) (SQLite code \(error.extendedResultCode))")
        }
        if applicationID == 0 && version == 0 && tables == 0 {
            return FileState(isEmpty: true, version: 0)
        }
        guard applicationID == Int64(Schema.applicationID) else {
            if applicationID != 0 {
                throw notOurs(path, "it belongs to another application (application_id \(applicationID))")
            }
            throw notOurs(path, "it is an SQLite database of another application (\(tables) tables, no DurableTask application_id)")
        }
        guard version <= Schema.version else {
            throw DurableTaskError(
                .corruptData,
                "\(path) has DurableTask schema version \(version), newer than this library's \(Schema.version); upgrade the library")
        }
        return FileState(isEmpty: false, version: Int(version))
    }

    /// `PRAGMA quick_check`: makes damage show up at open, not in the middle of a workload.
    private static func quickCheck(_ c: Connection, path: String) throws {
        var problems: [String] = []
        do {
            let check = try c.prepare("PRAGMA quick_check(5)")
            try check.forEachRow { problems.append(check.text(0)) }
        } catch let error as SQLiteError where error.isDamage {
            throw notOurs(path, "the database is damaged: \(error.message)")
        }
        guard problems == ["ok"] else {
            throw notOurs(path, "the database is damaged: " + problems.joined(separator: "; "))
        }
    }

    private static func configure(
        _ c: Connection, options: SQLiteBackend.Options, inMemory: Bool,
        deadline: ContinuousClock.Instant
    ) throws {
        if !inMemory {
            // Switching a new file to WAL needs it to itself for a moment; another opener reading it
            // makes the switch fail with BUSY at once.
            let mode = try c.retryingBusy(until: deadline) { try c.scalarText("PRAGMA journal_mode = WAL") }
            guard mode?.lowercased() == "wal" else {
                throw DurableTaskError(.storage, "\(c.path): cannot switch to WAL journal mode (got \(mode ?? "nothing"))")
            }
        }
        let synchronous = options.synchronous == .normal ? "NORMAL" : "FULL"
        try c.execute(
            """
            PRAGMA synchronous = \(synchronous); PRAGMA mmap_size = 0; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY; \
            PRAGMA wal_autocheckpoint = \(walCheckpointPages)
            """)
    }

    /// The WAL size, in pages, at which a commit checkpoints it into the database (libsqlite3's
    /// default is 1,000, 4 MiB). The writer's commits re-dirty the same pages — an instance's row,
    /// the tails of the indexes — and a checkpoint copies each page once however often it changed
    /// since the last, so a longer interval copies less: the rounds shape 0.96× the time and a
    /// 100,000-item fan-out 0.93× at 4,000 pages. The cost is a `-wal` file of up to 16 MiB. A
    /// background checkpoint, off the writer's thread, would be cheaper still, but two connections
    /// writing and checkpointing at once is the WAL-reset bug of libsqlite3 before 3.51.3.
    static let walCheckpointPages = 4_000

    private static func migrate(_ c: Connection, from version: Int, path: String) throws {
        guard version < Schema.version else { return }
        try c.transaction {
            // Re-read inside the write lock: another process may have migrated meanwhile.
            let current = Int(try c.scalarInt("PRAGMA user_version"))
            guard current < Schema.version else { return }
            if current == 0, try c.scalarInt(Schema.countUserTables) != 0 {
                throw notOurs(path, "another process created tables that are not DurableTask's")
            }
            for step in current..<Schema.version {
                try c.execute(Schema.migrations[step])
            }
            try c.execute("PRAGMA application_id = \(Schema.applicationID); PRAGMA user_version = \(Schema.version)")
        }
    }

    /// The page count libsqlite3 allows when no quota is set, read once from a fresh connection.
    private static let unlimitedPageCount = Mutex<Int64?>(nil)

    /// Applies `maxDatabaseBytes` as `PRAGMA max_page_count` (a per-connection setting, so it is
    /// applied on every open and by ``SQLiteBackend/setMaxDatabaseBytes(_:)``); `nil` lifts the quota.
    ///
    /// libsqlite3 never sets the limit below the current size: a quota smaller than the file stops
    /// any further growth instead.
    static func setQuota(_ c: Connection, bytes: Int?) throws {
        let current = try c.scalarInt("PRAGMA max_page_count")
        let unlimited = unlimitedPageCount.withLock { value -> Int64 in
            if let value { return value }
            value = current
            return current
        }
        let pages: Int64
        if let bytes {
            let pageSize = max(512, try c.scalarInt("PRAGMA page_size"))
            pages = max(1, Int64(max(0, bytes)) / pageSize)
        } else {
            pages = unlimited
        }
        _ = try c.scalarInt("PRAGMA max_page_count = \(pages)")
    }

    /// The warning logged when another process is found on a WAL database with an affected library.
    static func walSharingWarning(path: String) -> String {
        "the WAL database \(path) is shared by several processes, and libsqlite3 \(String(cString: sqlite3_libversion())) "
            + "has the WAL-reset bug fixed in 3.51.3: two processes writing and checkpointing at the same moment may "
            + "corrupt the database. Use one process per database file or upgrade libsqlite3. "
            + "(Set DURABLETASK_SQLITE_NO_WAL_WARNING=1 to silence this.)"
    }
}
