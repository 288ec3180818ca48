import CSQLite
@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// Every libsqlite3 failure a user's environment can cause is `DurableTaskError(.storage)` — retried,
/// never counted toward parking an item as poisoned — with a message for a person.
@Suite("SQLite storage errors")
struct StorageErrorTests {
    static let path = "/data/hub.sqlite"

    static func classify(_ extended: Int32, message: String = "sqlite says so") -> any Error {
        SQLiteError(resultCode: extended & 0xFF, extendedResultCode: extended, message: message, sql: "COMMIT")
            .storageError(path: path, busyTimeout: .seconds(10), maxDatabaseBytes: nil)
    }

    /// Result codes a user can hit through the machine, the disk or the file system, with a phrase
    /// each message must contain.
    static let environmentCodes: [(Int32, String)] = [
        (SQLITE_BUSY, "locked by another process"), (SQLITE_BUSY | (3 << 8), "locked by another process"),
        (SQLITE_LOCKED, "locked by another process"),
        (SQLITE_FULL, "database or disk is full"),
        (SQLITE_IOERR, "I/O error"), (SQLITE_IOERR | (3 << 8), "write failed"), (SQLITE_IOERR | (4 << 8), "fsync failed"),
        (SQLITE_IOERR | (2 << 8), "short read"), (SQLITE_IOERR | (19 << 8), "-shm"),
        (SQLITE_READONLY, "read-only"), (SQLITE_READONLY | (1 << 8), "read-only"), (SQLITE_READONLY | (2 << 8), "read-only"),
        (SQLITE_READONLY | (3 << 8), "read-only"), (SQLITE_READONLY | (5 << 8), "read-only"), (SQLITE_READONLY | (6 << 8), "read-only"),
        (SQLITE_READONLY | (4 << 8), "deleted, moved or replaced"),
        (SQLITE_CANTOPEN, "cannot open the database file"), (SQLITE_CANTOPEN | (2 << 8), "cannot open the database file"),
        (SQLITE_CANTOPEN | (3 << 8), "cannot open the database file"),
        (SQLITE_PERM, "denied"), (SQLITE_NOMEM, "out of memory"), (SQLITE_PROTOCOL, "local disk"), (SQLITE_NOLFS, "large")
    ]

    @Test(arguments: environmentCodes)
    func environmentFailuresAreStorageErrorsWithAMessageForAPerson(code: Int32, phrase: String) throws {
        let error = try #require(Self.classify(code) as? DurableTaskError, "code \(code) stayed \(Self.classify(code))")
        #expect(error.code == .storage)
        #expect(error.message.contains(phrase), "\(error.message)")
        #expect(error.message.contains(Self.path), "\(error.message)")
        // SQLite's own words and code stay in the line, for log searches.
        #expect(error.message.contains("sqlite says so"), "\(error.message)")
        #expect(error.message.contains("SQLite error \(code & 0xFF)"), "\(error.message)")
    }

    @Test(arguments: [SQLITE_CORRUPT, SQLITE_CORRUPT | (1 << 8), SQLITE_NOTADB])
    func aDamagedFileIsCorruptData(code: Int32) throws {
        let error = try #require(Self.classify(code) as? DurableTaskError)
        #expect(error.code == .corruptData)
        #expect(error.message.contains("is damaged"), "\(error.message)")
    }

    @Test(arguments: [SQLITE_ERROR, SQLITE_CONSTRAINT, SQLITE_MISUSE, SQLITE_TOOBIG, SQLITE_RANGE])
    func bugsAndBadStatementsStaySQLiteErrors(code: Int32) {
        #expect(Self.classify(code) is SQLiteError)
    }

    @Test func aReadOnlyDatabaseFailsWritesAsStorageAndTheyResumeOnceWritable() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path)
        // What a read-only file does to the writer connection (root ignores file modes, so chmod
        // cannot stand in for it).
        try await backend.withWriterConnection { c in try c.execute("PRAGMA query_only = 1") }
        do {
            try await backend.createOrchestrationInstance(start("a"))
            Issue.record("the write succeeded")
        } catch let error as DurableTaskError {
            #expect(error.code == .storage, "\(error)")
            #expect(error.message.contains("is read-only"), "\(error)")
            #expect(error.message.contains(path), "\(error)")
            #expect(error.message.contains("nothing was written"), "\(error)")
        }
        try await backend.withWriterConnection { c in try c.execute("PRAGMA query_only = 0") }
        try await backend.createOrchestrationInstance(start("a"))
        #expect(try await backend.getOrchestrationMetadata(instanceID: "a") != nil)
        await backend.close()
    }

    @Test(.enabled(if: ReadOnlyMount.isPossible, "needs permission to mount a tmpfs (root with CAP_SYS_ADMIN)"))
    func aDatabaseOnAReadOnlyFileSystemIsAStorageErrorAtOpen() async throws {
        let mount = try ReadOnlyMount()
        defer { mount.unmount() }
        let path = mount.directory + "/hub.sqlite"
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(start("a"))
        await backend.close()
        try mount.makeReadOnly()
        do {
            _ = try SQLiteBackend(path: path)
            Issue.record("opening a database on a read-only file system succeeded")
        } catch let error as DurableTaskError {
            #expect(error.code == .storage, "\(error)")
            #expect(error.message.contains(path), "\(error)")
            #expect(error.message.contains("read-only file system"), "\(error)")
        }
    }

    func start(_ id: String) -> NewOrchestrationInstance {
        NewOrchestrationInstance(
            instanceID: id,
            startEvent: HistoryEvent(
                timestamp: Date(),
                kind: .executionStarted(
                    name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil)))
    }
}

/// A small tmpfs mounted on a temporary directory, which a test can remount read-only.
final class ReadOnlyMount {
    let directory: String
    private var mounted = true

    /// Whether this process may mount (tried once, on a throwaway directory).
    static let isPossible: Bool = {
        guard let probe = try? ReadOnlyMount() else { return false }
        probe.unmount()
        return true
    }()

    init() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("DurableTaskSQLiteTests-ro-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        directory = url.path
        guard Glibc.mount("tmpfs", directory, "tmpfs", 0, "size=4m") == 0 else {
            try? FileManager.default.removeItem(at: url)
            throw CocoaError(.fileWriteNoPermission)
        }
    }

    /// Remounts read-only. The kernel refuses (EBUSY) while any process has a file of it open for
    /// writing — also a child that a test running beside this one forked and has not yet exec'd,
    /// which holds every descriptor of this process for that moment — so EBUSY is retried for a while.
    func makeReadOnly() throws {
        for _ in 0..<100 {
            if Glibc.mount("tmpfs", directory, "tmpfs", UInt(MS_REMOUNT | MS_RDONLY), "size=4m") == 0 { return }
            guard errno == EBUSY else { break }
            usleep(20_000)
        }
        throw CocoaError(.fileWriteNoPermission, userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(errno))])
    }

    func unmount() {
        guard mounted else { return }
        mounted = false
        _ = umount2(directory, Int32(MNT_DETACH))
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { unmount() }
}
