@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing

/// What only the SQLite backend does: durability across reopen, refusing files that are not ours,
/// the schema version, the event encoding.
@Suite("SQLite backend")
struct SQLiteBackendTests {
    @Test func reopenedFileHasTheSameState() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let clock = ManualClock()
        let history: [HistoryEvent]
        do {
            let backend = try SQLiteBackend(path: path, clock: clock)
            try await backend.createOrchestrationInstance(
                NewOrchestrationInstance(
                    instanceID: "a",
                    startEvent: HistoryEvent(
                        timestamp: clock.now(),
                        kind: .executionStarted(
                            name: "Orch", executionID: "e1", input: Payload(json: "[1,2]"), parent: nil, scheduledStart: nil))))
            let item = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(30)))
            history =
                [HistoryEvent(timestamp: clock.now(), kind: .orchestratorStarted)] + item.newEvents
                + [HistoryEvent(eventID: 0, timestamp: clock.now(), kind: .taskScheduled(name: "Act", input: nil))]
            try await backend.completeOrchestrationWorkItem(
                item,
                result: OrchestrationWorkItemResult(
                    newHistory: history, activities: [ActivityRequest(taskID: 0, name: "Act", input: nil)],
                    status: .running, customStatus: Payload(json: "\"half\"")))
            await backend.close()
        }
        let reopened = try SQLiteBackend(path: path, clock: clock)
        #expect(try await reopened.getOrchestrationHistory(instanceID: "a") == history)
        let metadata = try #require(try await reopened.getOrchestrationMetadata(instanceID: "a"))
        #expect(metadata.status == .running)
        #expect(metadata.customStatus == Payload(json: "\"half\""))
        #expect(metadata.input == Payload(json: "[1,2]"))
        let activities = try await reopened.getActivityWorkItems(owner: "w", maxCount: 5, leaseDuration: .seconds(30))
        #expect(activities.map(\.name) == ["Act"])
        await reopened.close()
    }

    @Test func newDatabaseHasSchemaVersionAndApplicationID() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path)
        await backend.close()
        let connection = try Connection(path: path, create: false)
        #expect(try connection.scalarInt("PRAGMA user_version") == Int64(Schema.version))
        #expect(try connection.scalarInt("PRAGMA application_id") == Int64(Schema.applicationID))
        #expect(try connection.scalarText("PRAGMA journal_mode") == "wal")
    }

    @Test func versionOneDatabaseIsMigratedWithItsWork() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        do {
            // A file as version 1 of the library left it: one instance with a pending activity.
            let connection = try Connection(path: path)
            try connection.execute("PRAGMA journal_mode = WAL")
            try connection.execute(Schema.v1)
            try connection.execute("PRAGMA application_id = \(Schema.applicationID); PRAGMA user_version = 1")
            try connection.execute(
                """
                INSERT INTO instances (instance_id, name, execution_id, status, created_at, updated_at) VALUES ('a', 'Orch', 'e', 'running', 0, 0);
                INSERT INTO activities (instance_id, execution_id, task_id, name, visible_at) VALUES ('a', 'e', 0, 'Act', 0);
                """)
            connection.close()
        }
        let backend = try SQLiteBackend(path: path)
        let leased = try await backend.getActivityWorkItems(owner: "w", maxCount: 5, leaseDuration: .seconds(30))
        #expect(leased.map(\.name) == ["Act"])
        await backend.close()
        let connection = try Connection(path: path, create: false)
        #expect(try connection.scalarInt("PRAGMA user_version") == Int64(Schema.version))
        let indexes = try connection.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        var names: [String] = []
        try indexes.forEachRow { names.append(indexes.text(0)) }
        #expect(
            names == [
                "activities_fresh", "activities_redelivered", "inbox_instance", "instances_created", "instances_locked_by",
                "instances_ready"
            ])
        connection.close()
    }

    @Test func textFileIsRefusedAndLeftUnchanged() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("notes.txt")
        let bytes = Data(String(repeating: "These are my notes, not a database.\n", count: 100).utf8)
        try bytes.write(to: URL(fileURLWithPath: path))
        try expectRefused(path: path, mentioning: "not an SQLite database")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
    }

    @Test func truncatedDatabaseIsRefusedAndLeftUnchanged() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path, options: .init(synchronous: .normal))
        let clock = backend.clock
        for i in 0..<300 {
            try await backend.createOrchestrationInstance(
                NewOrchestrationInstance(
                    instanceID: "instance-\(i)",
                    startEvent: HistoryEvent(
                        timestamp: clock.now(),
                        kind: .executionStarted(
                            name: "Orch", executionID: "e", input: Payload(json: String(repeating: "x", count: 200)),
                            parent: nil, scheduledStart: nil))))
        }
        await backend.close()
        let url = URL(fileURLWithPath: path)
        // Closing the last connection checkpoints the WAL into the main file.
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        let full = try Data(contentsOf: url)
        #expect(full.count > 16 * 4096)
        let half = full.prefix(full.count / 2)
        try half.write(to: url)
        try expectRefused(path: path, mentioning: "truncated")
        #expect(try Data(contentsOf: url) == half)
    }

    @Test func damagedPagesAreFoundAtOpen() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path, options: .init(synchronous: .normal))
        for i in 0..<300 {
            try await backend.createOrchestrationInstance(
                NewOrchestrationInstance(
                    instanceID: "instance-\(i)",
                    startEvent: HistoryEvent(
                        timestamp: Date(),
                        kind: .executionStarted(
                            name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
        }
        await backend.close()
        let url = URL(fileURLWithPath: path)
        var bytes = try Data(contentsOf: url)
        // Overwrite the middle pages with garbage, keeping the size and the header intact.
        let start = bytes.count / 3
        for i in start..<(start + 3 * 4096) { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
        try bytes.write(to: url)
        try expectRefused(path: path, mentioning: "damaged")
        #expect(try Data(contentsOf: url) == bytes)
    }

    @Test func databaseOfAnotherApplicationIsRefusedAndLeftUnchanged() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("other.sqlite")
        do {
            let connection = try Connection(path: path)
            try connection.execute("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO foo (name) VALUES ('bar')")
            connection.close()
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try expectRefused(path: path, mentioning: "another application")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)

        let other = directory.path("other-id.sqlite")
        do {
            let connection = try Connection(path: other)
            try connection.execute("PRAGMA application_id = 1234; CREATE TABLE bar (x)")
            connection.close()
        }
        let otherBytes = try Data(contentsOf: URL(fileURLWithPath: other))
        try expectRefused(path: other, mentioning: "application_id 1234")
        #expect(try Data(contentsOf: URL(fileURLWithPath: other)) == otherBytes)
    }

    @Test func newerSchemaVersionIsRefused() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        await (try SQLiteBackend(path: path)).close()
        do {
            let connection = try Connection(path: path)
            try connection.execute("PRAGMA user_version = \(Schema.version + 1)")
            connection.close()
        }
        try expectRefused(path: path, mentioning: "newer")
    }

    @Test func emptyFileBecomesADatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("empty.sqlite")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let backend = try SQLiteBackend(path: path)
        #expect(try await backend.queryOrchestrations(OrchestrationQuery()).instances.isEmpty)
        await backend.close()
    }

    @Test func eventCodecRoundTripsEveryKind() throws {
        let date = Date(timeIntervalSinceReferenceDate: 123_456.789_012_345)
        let failure = FailureDetails(
            errorType: "E", message: "m ü", isRetriable: false,
            inner: FailureDetails(errorType: "I", message: ""))
        let parent = HistoryEvent.ParentInstance(instanceID: "p", executionID: "pe", taskID: -7, name: "P")
        let kinds: [HistoryEvent.Kind] = [
            .orchestratorStarted,
            .executionStarted(name: "O", executionID: "x", input: Payload(json: "{\"a\":1}"), parent: parent, scheduledStart: date),
            .executionStarted(name: "", executionID: "", input: nil, parent: nil, scheduledStart: nil),
            .taskScheduled(name: "A", input: Payload(json: "")),
            .taskCompleted(scheduledID: Int.max, result: nil),
            .taskFailed(scheduledID: Int.min, failure: failure),
            .timerCreated(fireAt: date),
            .timerFired(scheduledID: 3, fireAt: date),
            .eventRaised(name: "ev", input: Payload(json: "\"😀\"")),
            .eventSent(targetInstanceID: "t", name: "n", input: nil),
            .subOrchestrationCreated(name: "S", instanceID: "s", input: Payload(json: "null")),
            .subOrchestrationCompleted(scheduledID: 0, result: Payload(json: "1")),
            .subOrchestrationFailed(scheduledID: 1, failure: failure),
            .executionSuspended(reason: nil),
            .executionResumed(reason: "r"),
            .executionTerminated(reason: "stop", recursive: true),
            .continuedAsNew(input: Payload(json: "2")),
            .executionCompleted(status: .failed, result: nil, failure: failure),
            .executionCompleted(status: .completed, result: Payload(json: "3"), failure: nil),
            .orchestratorCompleted
        ]
        for (i, kind) in kinds.enumerated() {
            let event = HistoryEvent(eventID: i - 5, timestamp: date.addingTimeInterval(Double(i)), kind: kind)
            let bytes = HistoryEventCodec.encode(event)
            let decoded = try bytes.withUnsafeBytes { buffer in try HistoryEventCodec.decode(buffer) }
            #expect(decoded == event)
            // Every strict prefix is rejected rather than misread.
            for cut in 0..<bytes.count {
                #expect(throws: CodecError.self) {
                    _ = try bytes.prefix(cut).withUnsafeBytes { buffer in try HistoryEventCodec.decode(buffer) }
                }
            }
        }
    }

    @Test func undecodableRowIsReportedAsCorruptData() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: "broken",
                startEvent: HistoryEvent(
                    timestamp: Date(),
                    kind: .executionStarted(
                        name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
        do {
            let connection = try Connection(path: path)
            try connection.execute("UPDATE inbox SET event = x'01FF' WHERE instance_id = 'broken'")
            connection.close()
        }
        do {
            _ = try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(5))
            Issue.record("expected corruptData")
        } catch let error as DurableTaskError {
            #expect(error.code == .corruptData)
            #expect(error.message.contains("broken"))
        }
        await backend.close()
    }

    @Test func twoBackendsOnOneFileShareWorkWithoutBusyErrors() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let first = try SQLiteBackend(path: path)
        let second = try SQLiteBackend(path: path)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (b, backend) in [first, second].enumerated() {
                group.addTask {
                    for i in 0..<50 {
                        try await backend.createOrchestrationInstance(
                            NewOrchestrationInstance(
                                instanceID: "i-\(b)-\(i)",
                                startEvent: HistoryEvent(
                                    timestamp: Date(),
                                    kind: .executionStarted(
                                        name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
                    }
                }
            }
            try await group.waitForAll()
        }
        // Both lease concurrently; every instance is leased exactly once.
        let leased = try await withThrowingTaskGroup(of: [String].self) { group in
            for backend in [first, second] {
                group.addTask {
                    var ids: [String] = []
                    while let item = try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(60)) {
                        ids.append(item.instanceID)
                        try await backend.completeOrchestrationWorkItem(
                            item,
                            result: OrchestrationWorkItemResult(
                                newHistory: item.newEvents, status: .completed))
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(leased.count == 100)
        #expect(Set(leased).count == 100)
        let done = try await first.queryOrchestrations(OrchestrationQuery(statuses: [.completed], pageSize: 1000))
        #expect(done.instances.count == 100)
        await first.close()
        await second.close()
    }

    @Test(arguments: [SQLiteBackend.Synchronous.full, .fullEveryStep])
    func acknowledgedStepsWaitForTheDiskAndStepsBetweenNeedNot(synchronous: SQLiteBackend.Synchronous) async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let backend = try SQLiteBackend(path: directory.path("hub.sqlite"), options: .init(synchronous: synchronous), clock: clock)
        // Each step's transactions: how many waited for the disk, how many did not.
        var last = backend.writeTransactionCounts
        func step() -> (synced: Int, relaxed: Int) {
            let now = backend.writeTransactionCounts
            defer { last = now }
            return (now.synced - last.synced, now.relaxed - last.relaxed)
        }
        let everyStep = synchronous == .fullEveryStep

        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: "a",
                startEvent: HistoryEvent(
                    timestamp: clock.now(), kind: .executionStarted(name: "Orch", executionID: "e1", input: nil, parent: nil, scheduledStart: nil))))
        #expect(step() == (1, 0), "creating an instance is acknowledged")
        let first = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(30)))
        #expect(step() == (0, 1), "a lease is never synced")
        let scheduled =
            [HistoryEvent(timestamp: clock.now(), kind: .orchestratorStarted)] + first.newEvents + [
                HistoryEvent(eventID: 0, timestamp: clock.now(), kind: .taskScheduled(name: "Act", input: nil))
            ]
        try await backend.completeOrchestrationWorkItem(
            first,
            result: OrchestrationWorkItemResult(
                newHistory: scheduled, activities: [ActivityRequest(taskID: 0, name: "Act", input: nil)], status: .running))
        #expect(step() == (everyStep ? 1 : 0, everyStep ? 0 : 1), "an episode that does not end the instance")
        let activities = try await backend.getActivityWorkItems(owner: "w", maxCount: 5, leaseDuration: .seconds(30))
        #expect(activities.count == 1)
        #expect(step() == (0, 1))
        let recorded = try await backend.completeActivityWorkItems(
            activities.map { ActivityCompletion(item: $0, event: HistoryEvent(timestamp: clock.now(), kind: .taskCompleted(scheduledID: 0, result: nil))) })
        #expect(recorded == [true])
        #expect(step() == (everyStep ? 1 : 0, everyStep ? 0 : 1), "an activity result")
        let second = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(30)))
        #expect(step() == (0, 1))
        try await backend.completeOrchestrationWorkItem(
            second, result: OrchestrationWorkItemResult(newHistory: second.newEvents, status: .completed))
        #expect(step() == (1, 0), "the episode that ends the instance is acknowledged")
        #expect(try await backend.getOrchestrationMetadata(instanceID: "a")?.status == .completed)
        #expect(try await backend.purgeOrchestration(instanceID: "a"))
        #expect(step() == (1, 0), "a purge is acknowledged")
        await backend.close()
    }

    @Test func theEpisodeThatSchedulesAnActivityLeasesItToItsWorker() async throws {
        // A one-activity orchestration costs six write transactions — create, lease, the first episode
        // with the activity's lease (eager dispatch), the result, lease, the last episode — and no
        // empty leases (it took eleven before).
        let directory = try TemporaryDirectory()
        let backend = try SQLiteBackend(path: directory.path("hub.sqlite"))
        // Idle loops poll (an empty lease is a transaction too) only after a minute.
        let worker = DurableTaskWorker(backend: backend, options: .init(pollInterval: .seconds(60), logHandler: { _, _ in }))
        worker.addOrchestrator(name: "Double") { (context: OrchestrationContext, value: Int) in
            try await context.callActivity("Times2", input: value, returning: Int.self).value
        }
        worker.addActivity(name: "Times2") { (_: ActivityContext, value: Int) in value * 2 }
        let running = Task { await worker.run() }
        let client = DurableTaskClient(backend: backend)
        // Counted per orchestration, one after another. The loops' first looks (an empty lease each)
        // fall into one of them, so the least of them is the cost. On a loaded machine the previous
        // orchestration's last episode may still be ending when the next one's first commits, which
        // then leaves its activity to the fetch loop: seven.
        var counts: [Int] = []
        for index in 1...4 {
            let before = backend.writeTransactionCounts
            let id = try await client.scheduleNewOrchestration(name: "Double", input: index)
            #expect(try await client.waitForCompletion(id, timeout: .seconds(20)).output(as: Int.self) == 2 * index)
            let after = backend.writeTransactionCounts
            counts.append(after.synced + after.relaxed - before.synced - before.relaxed)
        }
        #expect((counts.min() ?? 0) <= 7, "write transactions per orchestration: \(counts)")
        running.cancel()
        await running.value
        await backend.close()
    }

    private func expectRefused(path: String, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        do {
            let backend = try SQLiteBackend(path: path)
            _ = backend
            Issue.record("opening \(path) succeeded", sourceLocation: sourceLocation)
        } catch let error as DurableTaskError {
            #expect(error.code == .corruptData, sourceLocation: sourceLocation)
            #expect(error.message.contains(path), "\(error)", sourceLocation: sourceLocation)
            #expect(
                error.message.contains("not a DurableTask database") || error.message.contains("newer"),
                "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }
}
