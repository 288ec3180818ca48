@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// Leases of a worker whose process is gone are taken over at once; a live worker's never are.
///
/// A dead process is stood in for by its owner file left behind unlocked (which is what the OS leaves
/// when a process dies holding the lock); the torture tool's `recovery` mode and the reliability tests
/// SIGKILL a real worker process.
@Suite("SQLite lease owners' liveness")
struct LivenessTests {
    /// A fixture: a file with one instance "a" whose episode scheduled `activities` activities, and
    /// a second instance "b" with an event waiting.
    struct Fixture {
        let directory: TemporaryDirectory
        let path: String
        let clock = ManualClock()

        init(activities: Int = 3) async throws {
            directory = try TemporaryDirectory()
            path = directory.path("hub.sqlite")
            let backend = try SQLiteBackend(path: path, clock: clock)
            try await backend.createOrchestrationInstance(start("a"))
            let item = try #require(try await backend.getOrchestrationWorkItem(owner: "setup", leaseDuration: .seconds(60)))
            try await backend.completeOrchestrationWorkItem(
                item,
                result: OrchestrationWorkItemResult(
                    newHistory: item.newEvents, activities: (0..<activities).map { ActivityRequest(taskID: $0, name: "Act", input: nil) },
                    status: .running))
            try await backend.createOrchestrationInstance(start("b"))
            await backend.close()
        }

        func start(_ id: String) -> NewOrchestrationInstance {
            NewOrchestrationInstance(
                instanceID: id,
                startEvent: HistoryEvent(
                    timestamp: clock.now(),
                    kind: .executionStarted(
                        name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil)))
        }

        func open() throws -> SQLiteBackend {
            try SQLiteBackend(path: path, clock: clock)
        }

        func ownerFile(_ owner: String) -> String {
            OwnerLiveness.directory(forDatabase: path) + "/" + OwnerLiveness.fileName(owner)
        }

        /// Leases everything as `owner` through a backend that is then closed, and leaves the owner's
        /// file behind unlocked, as a process SIGKILLed while holding those leases would.
        func leaseEverythingAndDie(as owner: String) async throws {
            let backend = try open()
            let activities = try await backend.getActivityWorkItems(owner: owner, maxCount: 100, leaseDuration: .seconds(60))
            #expect(!activities.isEmpty)
            #expect(try await backend.getOrchestrationWorkItem(owner: owner, leaseDuration: .seconds(60))?.instanceID == "b")
            await backend.close()
            #expect(!FileManager.default.fileExists(atPath: ownerFile(owner)), "a clean close deletes the owner's file")
            #expect(FileManager.default.createFile(atPath: ownerFile(owner), contents: Data(owner.utf8)))
        }

        /// Whether some process (this one included) holds the lock on the owner's file.
        func isHeld(_ owner: String) throws -> Bool {
            let descriptor = Glibc.open(ownerFile(owner), O_RDWR | O_CLOEXEC)
            try #require(descriptor >= 0)
            defer { close(descriptor) }
            return flock(descriptor, LOCK_EX | LOCK_NB) != 0
        }
    }

    @Test func leasesOfAWorkerWhoseProcessIsGoneAreTakenOverAtOnce() async throws {
        let fixture = try await Fixture()
        try await fixture.leaseEverythingAndDie(as: "crashed")
        let log = LogRecorder()
        let backend = try SQLiteBackend(path: fixture.path, options: .init(logHandler: log.handler), clock: fixture.clock)
        // No time passes: the 60 s leases are far from expiring.
        let activities = try await backend.getActivityWorkItems(owner: "next", maxCount: 100, leaseDuration: .seconds(60))
        #expect(activities.map(\.taskID) == [0, 1, 2])
        // The crash counts as a delivery: the process may have died of the item.
        #expect(activities.allSatisfy { $0.deliveryCount == 2 })
        let instance = try #require(try await backend.getOrchestrationWorkItem(owner: "next", leaseDuration: .seconds(60)))
        #expect(instance.instanceID == "b")
        #expect(instance.deliveryCount == 2)
        #expect(!FileManager.default.fileExists(atPath: fixture.ownerFile("crashed")))
        #expect(log.lines(containing: "'crashed' is gone", "1 instance(s) and 3 activities").count == 1, "\(log.lines(containing: ""))")
        // The lock tokens of the dead worker's leases no longer count.
        await backend.close()
    }

    /// A gone worker's activities are leased before work that became ready after they were scheduled.
    @Test func aGoneWorkersActivitiesGoToTheFrontOfTheQueue() async throws {
        let fixture = try await Fixture(activities: 4)
        let doomed = try fixture.open()
        let leased = try await doomed.getActivityWorkItems(owner: "crashed", maxCount: 2, leaseDuration: .seconds(60))
        #expect(leased.map(\.taskID) == [0, 1])
        await doomed.close()
        #expect(FileManager.default.createFile(atPath: fixture.ownerFile("crashed"), contents: Data("crashed".utf8)))
        fixture.clock.advance(by: 1)
        let backend = try fixture.open()
        // Tasks 2 and 3 were ready all along; the crashed worker's 0 and 1 still come first.
        let next = try await backend.getActivityWorkItems(owner: "next", maxCount: 2, leaseDuration: .seconds(60))
        #expect(next.map(\.taskID).sorted() == [0, 1], "leased \(next.map(\.taskID)) first")
        #expect(next.allSatisfy { $0.deliveryCount == 2 })
        await backend.close()
    }

    @Test func leasesOfALiveWorkerAreNeverTakenOver() async throws {
        let fixture = try await Fixture()
        let live = try fixture.open()
        let leased = try await live.getActivityWorkItems(owner: "live", maxCount: 100, leaseDuration: .seconds(60))
        #expect(leased.count == 3)
        #expect(try await live.getOrchestrationWorkItem(owner: "live", leaseDuration: .seconds(60))?.instanceID == "b")
        #expect(try fixture.isHeld("live"))

        // Another backend in the same process (its own descriptor, as another process would have): each
        // first lease for a new owner sweeps the owner files, and none may take the live worker's leases.
        let other = try fixture.open()
        for owner in ["other-1", "other-2", "other-3"] {
            #expect(try await other.getActivityWorkItems(owner: owner, maxCount: 100, leaseDuration: .seconds(60)).isEmpty)
            #expect(try await other.getOrchestrationWorkItem(owner: owner, leaseDuration: .seconds(60)) == nil)
        }
        #expect(try fixture.isHeld("live"))
        // The live worker still holds its leases: its completions are recorded.
        let recorded = try await live.completeActivityWorkItems(
            leased.map { item in
                ActivityCompletion(
                    item: item,
                    event: HistoryEvent(
                        timestamp: fixture.clock.now(),
                        kind: .taskCompleted(scheduledID: item.taskID, result: nil)))
            })
        #expect(recorded == [true, true, true])
        await live.close()
        await other.close()
    }

    @Test func expiredLeasesAreStillTakenOverFromALiveButStuckWorker() async throws {
        // A live worker that stops renewing (paused, stuck) loses its leases when they run out, as
        // before; fencing rejects its late results.
        let fixture = try await Fixture()
        let stuck = try fixture.open()
        let leased = try await stuck.getActivityWorkItems(owner: "stuck", maxCount: 100, leaseDuration: .seconds(10))
        let other = try fixture.open()
        #expect(try await other.getActivityWorkItems(owner: "other", maxCount: 100, leaseDuration: .seconds(10)).isEmpty)
        fixture.clock.advance(by: 11)
        #expect(try await other.getActivityWorkItems(owner: "other", maxCount: 100, leaseDuration: .seconds(10)).count == 3)
        let late = try await stuck.completeActivityWorkItems(
            leased.map { item in
                ActivityCompletion(
                    item: item,
                    event: HistoryEvent(
                        timestamp: fixture.clock.now(),
                        kind: .taskCompleted(scheduledID: item.taskID, result: nil)))
            })
        #expect(late == [false, false, false])
        await stuck.close()
        await other.close()
    }

    @Test func aWorkerRestartedWithTheSameIDTakesOverItsPredecessorsLeases() async throws {
        let fixture = try await Fixture()
        try await fixture.leaseEverythingAndDie(as: "fixed-id")
        let backend = try fixture.open()
        // The file is there but unlocked: the earlier process with this ID is gone.
        let activities = try await backend.getActivityWorkItems(owner: "fixed-id", maxCount: 100, leaseDuration: .seconds(60))
        #expect(activities.map(\.taskID) == [0, 1, 2])
        #expect(try fixture.isHeld("fixed-id"))
        await backend.close()
    }

    @Test func backendsOfOneProcessWithTheSameOwnerShareItsLock() async throws {
        let fixture = try await Fixture()
        let first = try fixture.open()
        let second = try fixture.open()
        #expect(try await first.getActivityWorkItems(owner: "shared", maxCount: 1, leaseDuration: .seconds(60)).count == 1)
        #expect(try await second.getActivityWorkItems(owner: "shared", maxCount: 1, leaseDuration: .seconds(60)).count == 1)
        await first.close()
        // Still held by the second backend: its leases are a live worker's.
        #expect(try fixture.isHeld("shared"))
        let third = try fixture.open()
        #expect(try await third.getActivityWorkItems(owner: "third", maxCount: 100, leaseDuration: .seconds(60)).count == 1)
        await second.close()
        #expect(!FileManager.default.fileExists(atPath: fixture.ownerFile("shared")))
        await third.close()
    }

    @Test func anOwnerFileWithoutAnOwnerNameIsRemoved() async throws {
        // A process that died between creating its file and writing its name had leased nothing.
        let fixture = try await Fixture()
        let directory = OwnerLiveness.directory(forDatabase: fixture.path)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let empty = directory + "/" + OwnerLiveness.fileName("half-started")
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        let backend = try fixture.open()
        #expect(try await backend.getActivityWorkItems(owner: "w", maxCount: 100, leaseDuration: .seconds(60)).count == 3)
        #expect(!FileManager.default.fileExists(atPath: empty))
        await backend.close()
    }

    @Test func ownerFileNamesAreSafeAndDistinct() {
        let names = ["w", "host-1234-abcd", "../../etc/passwd", "a/b", "a_b", "ü", String(repeating: "x", count: 500), ""]
        let files = names.map(OwnerLiveness.fileName)
        #expect(Set(files).count == names.count)
        for file in files {
            #expect(!file.contains("/"))
            #expect(file.hasPrefix("owner-"))
            #expect(file.utf8.count < 100)
        }
        #expect(OwnerLiveness.fileName("a/b") != OwnerLiveness.fileName("a_b"))
    }

    @Test func inMemoryDatabasesHaveNoOwnerFiles() async throws {
        let backend = try SQLiteBackend.inMemory()
        _ = try await backend.getActivityWorkItems(owner: "w", maxCount: 1, leaseDuration: .seconds(60))
        #expect(!FileManager.default.fileExists(atPath: OwnerLiveness.directory(forDatabase: ":memory:")))
        await backend.close()
    }
}
