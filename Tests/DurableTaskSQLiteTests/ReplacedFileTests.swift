@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing

/// A database file deleted or replaced while a backend has it open: the backend stops with a clear
/// storage error instead of writing on into a file nobody else sees, and a new opener never applies
/// the old file's `-wal` to the new one.
@Suite("SQLite database file deleted or replaced")
struct ReplacedFileTests {
    func start(_ id: String) -> NewOrchestrationInstance {
        NewOrchestrationInstance(
            instanceID: id,
            startEvent: HistoryEvent(
                timestamp: Date(),
                kind: .executionStarted(
                    name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil)))
    }

    func expectReplacedError(
        _ what: String, path: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("the call succeeded on a \(what) file", sourceLocation: sourceLocation)
        } catch let error as DurableTaskError {
            #expect(error.code == .storage, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains("the database file \(path) was \(what)"), "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains("nothing was written"), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected DurableTaskError(.storage), got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A second task hub with one instance, "other-1", closed (its WAL checkpointed away).
    func makeOtherHub(_ path: String) async throws {
        let other = try SQLiteBackend(path: path)
        try await other.createOrchestrationInstance(start("other-1"))
        await other.close()
        for suffix in ["-dtlock", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    @Test func aDeletedDatabaseFileFailsEveryCallWithAClearStorageError() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(start("a"))
        // rm hub.sqlite*
        for suffix in ["", "-wal", "-shm", "-dtlock"] { try? FileManager.default.removeItem(atPath: path + suffix) }

        await expectReplacedError("deleted", path: path) { try await backend.createOrchestrationInstance(start("b")) }
        await expectReplacedError("deleted", path: path) {
            _ = try await backend.getActivityWorkItems(owner: "w", maxCount: 10, leaseDuration: .seconds(30))
        }
        await expectReplacedError("deleted", path: path) { _ = try await backend.getOrchestrationMetadata(instanceID: "a") }

        // A new process on the path gets a new, empty task hub, and the old backend never wrote into it.
        let fresh = try SQLiteBackend(path: path)
        #expect(try await fresh.getOrchestrationMetadata(instanceID: "a") == nil)
        #expect(try await fresh.getOrchestrationMetadata(instanceID: "b") == nil)
        await fresh.close()
        await backend.close()
    }

    @Test func aReplacedDatabaseFileFailsWritesAndOpeningTheNewFileWaitsForTheOldProcesses() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let otherPath = directory.path("other.sqlite")
        try await makeOtherHub(otherPath)
        let running = try SQLiteBackend(path: path)
        try await running.createOrchestrationInstance(start("a"))
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))

        // mv other.sqlite hub.sqlite, while `running` has hub.sqlite open.
        _ = rename(otherPath, path)
        await expectReplacedError("replaced", path: path) { try await running.createOrchestrationInstance(start("b")) }
        await expectReplacedError("replaced", path: path) {
            _ = try await running.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(30))
        }

        // hub.sqlite-wal still belongs to the old file, which `running` has open: applying it to the new
        // file would damage it, so the open is refused and nothing is touched.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            _ = try SQLiteBackend(path: path)
            Issue.record("opened the new file while the old one's -wal was in use")
        } catch let error as DurableTaskError {
            #expect(error.code == .storage, "\(error)")
            #expect(error.message.contains("\(path)-wal belongs to the previous file"), "\(error)")
            #expect(error.message.contains("Stop the processes that still use the previous file"), "\(error)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)

        // libsqlite3 leaves the -wal behind when the old file's last user closes (its file has no name
        // any more): still refused, until the -wal is moved away as the message says.
        await running.close()
        #expect(throws: DurableTaskError.self) { _ = try SQLiteBackend(path: path) }
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let reopened = try SQLiteBackend(path: path)
        #expect(try await reopened.getOrchestrationMetadata(instanceID: "other-1") != nil)
        #expect(try await reopened.getOrchestrationMetadata(instanceID: "a") == nil)
        try await reopened.createOrchestrationInstance(start("c"))
        await reopened.close()
        #expect(Verification.quickCheck(path) == "ok")
    }

    @Test func aWALLeftByAKilledProcessIsNeverAppliedToTheFileThatReplacedItsDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let otherPath = directory.path("other.sqlite")
        try await makeOtherHub(otherPath)
        // A process writes hub.sqlite and is killed: its -wal (with committed pages) stays behind. A
        // clean close deletes the -wal; a second name for it keeps the file, as a kill would.
        let backend = try SQLiteBackend(path: path)
        for index in 0..<50 { try await backend.createOrchestrationInstance(start("a-\(index)")) }
        #expect(link(path + "-wal", path + "-wal-kept") == 0)
        await backend.close()
        #expect(rename(path + "-wal-kept", path + "-wal") == 0)
        let wal = try Data(contentsOf: URL(fileURLWithPath: path + "-wal"))
        #expect(!wal.isEmpty)

        // mv other.sqlite hub.sqlite
        _ = rename(otherPath, path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            _ = try SQLiteBackend(path: path)
            Issue.record("opened the new file with the old file's -wal next to it")
        } catch let error as DurableTaskError {
            #expect(error.code == .storage, "\(error)")
            #expect(error.message.contains("The -wal file was left behind"), "\(error)")
            #expect(error.message.contains("move \(path)-wal and \(path)-shm away"), "\(error)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "-wal")) == wal)

        // Doing what the message says opens the new file intact.
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let reopened = try SQLiteBackend(path: path)
        #expect(try await reopened.getOrchestrationMetadata(instanceID: "other-1") != nil)
        #expect(try await reopened.getOrchestrationMetadata(instanceID: "a-0") == nil)
        await reopened.close()
    }

    @Test func aFileReplacedWhileNothingUsedItOpensNormally() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let otherPath = directory.path("other.sqlite")
        try await makeOtherHub(otherPath)
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(start("a"))
        await backend.close()
        // Another hub put in its place after every process stopped: nothing of the old one is left.
        _ = rename(otherPath, path)
        let reopened = try SQLiteBackend(path: path)
        #expect(try await reopened.getOrchestrationMetadata(instanceID: "other-1") != nil)
        try await reopened.createOrchestrationInstance(start("b"))
        await reopened.close()
    }

    @Test func aSetOfFilesCopiedOrRestoredTogetherOpensWithItsOwnWAL() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(start("a"))
        let backup = try TemporaryDirectory()
        let copy = backup.path("hub.sqlite")
        // A copy of the files while the backend runs (the -wal holds the instance; -shm is rebuilt).
        for suffix in ["", "-wal", "-dtlock"] { try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + suffix) }
        let copied = try SQLiteBackend(path: copy)
        #expect(try await copied.getOrchestrationMetadata(instanceID: "a") != nil)
        await copied.close()
        await backend.close()

        // Restored in place of the original after it was deleted.
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: copy + suffix) }
        for suffix in ["", "-wal", "-shm", "-dtlock"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        for suffix in ["", "-dtlock"] { try FileManager.default.copyItem(atPath: copy + suffix, toPath: path + suffix) }
        let restored = try SQLiteBackend(path: path)
        #expect(try await restored.getOrchestrationMetadata(instanceID: "a") != nil)
        await restored.close()
    }

    @Test func theFileMovedBackResumesWrites() async throws {
        // Transient, as storage errors are: nothing was parked or lost meanwhile.
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let aside = directory.path("aside.sqlite")
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(start("a"))
        _ = rename(path, aside)
        await expectReplacedError("deleted", path: path) { try await backend.createOrchestrationInstance(start("b")) }
        _ = rename(aside, path)
        try await backend.createOrchestrationInstance(start("b"))
        #expect(try await backend.getOrchestrationMetadata(instanceID: "b") != nil)
        await backend.close()
    }
}

enum Verification {
    /// `PRAGMA quick_check` through a connection of its own.
    static func quickCheck(_ path: String) -> String {
        guard let connection = try? Connection(path: path, create: false),
            let statement = try? connection.prepare("PRAGMA quick_check")
        else { return "cannot open" }
        var lines: [String] = []
        try? statement.forEachRow { lines.append(statement.text(0)) }
        return lines.joined(separator: "; ")
    }
}
