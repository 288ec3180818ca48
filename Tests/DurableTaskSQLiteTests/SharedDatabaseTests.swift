@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// The warning about several processes sharing a WAL database on a libsqlite3 with the WAL-reset bug:
/// given only when another process really holds the file.
///
/// Another process is stood in for by a second open file description of the side file `-dtlock`
/// holding a shared `flock`, which conflicts exactly as another process's would. The torture tool's
/// `competing` mode checks the real thing across processes.
@Suite(
    "SQLite backend shared between processes",
    .enabled(
        if: DatabaseSetup.libraryHasWALResetBug && !DatabaseSetup.walWarningSilenced,
        "the warning applies only to libsqlite3 < 3.51.3 without DURABLETASK_SQLITE_NO_WAL_WARNING"))
struct SharedDatabaseTests {
    /// What another process does on open: its own descriptor of the side file, with a shared lock.
    final class OtherProcessLock {
        let descriptor: Int32

        init(databasePath: String) throws {
            descriptor = open(SharedLockFile.path(forDatabase: databasePath), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            try #require(descriptor >= 0)
            try #require(flock(descriptor, LOCK_SH) == 0)
        }

        deinit { close(descriptor) }
    }

    /// Whether nobody holds the side file at all (an exclusive lock can be taken at once).
    func nobodyHolds(_ databasePath: String) throws -> Bool {
        let descriptor = open(SharedLockFile.path(forDatabase: databasePath), O_RDWR | O_CLOEXEC)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        return flock(descriptor, LOCK_EX | LOCK_NB) == 0
    }

    static let warningText = "is shared by several processes"

    @Test func twoBackendsInOneProcessDoNotCountAsSharing() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let log = LogRecorder()
        let first = try SQLiteBackend(path: path, options: .init(logHandler: log.handler))
        let second = try SQLiteBackend(path: path, options: .init(logHandler: log.handler))
        #expect(FileManager.default.fileExists(atPath: path + "-dtlock"))
        #expect(await first.checkForSharingNow() == false)
        #expect(await second.checkForSharingNow() == false)
        // Both work on the file, and the open-time checks have run on the writer threads by now.
        try await first.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: "a",
                startEvent: HistoryEvent(
                    timestamp: Date(),
                    kind: .executionStarted(
                        name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
        #expect(try await second.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(5))?.instanceID == "a")
        #expect(log.lines(containing: Self.warningText).isEmpty)

        // The process's lock is shared by both backends: it lasts until the last one closes.
        await first.close()
        #expect(try nobodyHolds(path) == false)
        await second.close()
        #expect(try nobodyHolds(path))
        // Never deleted: another process may hold it.
        #expect(FileManager.default.fileExists(atPath: path + "-dtlock"))
    }

    @Test func anotherProcessOnTheFileIsWarnedAboutOnce() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let log = LogRecorder()
        let backend = try SQLiteBackend(path: path, options: .init(logHandler: log.handler))
        #expect(await backend.checkForSharingNow() == false)

        let other = try OtherProcessLock(databasePath: path)
        #expect(await backend.checkForSharingNow() == true)
        #expect(await backend.checkForSharingNow() == false, "warned once already")
        // Periodic checks from polling do not repeat it either.
        await backend.waitForChange(.orchestrationWork, since: backend.changeGeneration(.orchestrationWork), timeout: .milliseconds(10))
        let warnings = log.lines(containing: "warning", Self.warningText, path, "3.51.3", "DURABLETASK_SQLITE_NO_WAL_WARNING")
        #expect(warnings.count == 1, "\(log.lines(containing: ""))")
        // The check gives back the shared lock it upgraded: the other process still sees this one.
        #expect(flock(other.descriptor, LOCK_EX | LOCK_NB) != 0)
        await backend.close()
        _ = other
    }

    @Test func anotherProcessAlreadyOnTheFileIsWarnedAboutAtOpen() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        // The other process created the database and holds it.
        let creator = try SQLiteBackend(path: path)
        await creator.close()
        let other = try OtherProcessLock(databasePath: path)

        let log = LogRecorder()
        let backend = try SQLiteBackend(path: path, options: .init(logHandler: log.handler))
        // Any write runs after the open-time check, queued on the same writer thread.
        _ = try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(5))
        #expect(log.lines(containing: Self.warningText, path).count == 1)
        await backend.close()
        _ = other
    }

    @Test func warningIsNoticedWhileIdleWhenAnotherProcessJoinsLater() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let log = LogRecorder()
        let backend = try SQLiteBackend(path: path, options: .init(logHandler: log.handler))
        // Let the open-time check run (queued on the writer thread) while the backend is alone.
        _ = try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(5))
        #expect(log.lines(containing: Self.warningText).isEmpty)
        let other = try OtherProcessLock(databasePath: path)
        // An idle worker polls through waitForChange, which checks at most once a second.
        let warned = await eventually(timeout: .seconds(5)) {
            await backend.waitForChange(.activityWork, since: backend.changeGeneration(.activityWork), timeout: .milliseconds(50))
            return !log.lines(containing: Self.warningText).isEmpty
        }
        #expect(warned)
        #expect(log.lines(containing: Self.warningText).count == 1)
        await backend.close()
        _ = other
    }

    @Test func inMemoryDatabaseHasNoSideFile() async throws {
        let before = FileManager.default.fileExists(atPath: ":memory:-dtlock")
        let backend = try SQLiteBackend.inMemory()
        #expect(await backend.checkForSharingNow() == false)
        await backend.close()
        #expect(FileManager.default.fileExists(atPath: ":memory:-dtlock") == before)
    }

    @Test func refusedFileGetsNoSideFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("notes.txt")
        try Data("not a database\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: DurableTaskError.self) { _ = try SQLiteBackend(path: path) }
        #expect(!FileManager.default.fileExists(atPath: path + "-dtlock"))
    }
}
