@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing

/// Faults of the storage and of stored data: each gives a specific error, loses nothing else, and
/// the backend or worker carries on once the fault is gone.
@Suite("SQLite bad input and storage faults")
struct BadInputTests {
    func start(_ id: String, input: String? = nil) -> NewOrchestrationInstance {
        NewOrchestrationInstance(
            instanceID: id,
            startEvent: HistoryEvent(
                timestamp: Date(),
                kind: .executionStarted(
                    name: "Orch", executionID: "e", input: input.map(Payload.init(json:)), parent: nil, scheduledStart: nil)))
    }

    /// Expects `DurableTaskError(.storage)` whose message contains every one of `parts`.
    func expectStorageError(
        _ parts: String..., sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            Issue.record("expected DurableTaskError(.storage), nothing was thrown", sourceLocation: sourceLocation)
        } catch let error as DurableTaskError {
            #expect(error.code == .storage, "\(error)", sourceLocation: sourceLocation)
            for part in parts {
                #expect(error.message.contains(part), "\(error)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected DurableTaskError(.storage), got \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Locked beyond the busy timeout

    @Test func databaseLockedBeyondTheBusyTimeoutIsAClearErrorAndTheBackendRecovers() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path, options: .init(busyTimeout: .milliseconds(200)))
        try await backend.createOrchestrationInstance(start("before"))

        // Another connection (as another process would) takes the write lock and keeps it.
        let other = try Connection(path: path)
        other.setBusyTimeout(.zero)
        try other.execute("BEGIN EXCLUSIVE")

        await expectStorageError(
            path, "is locked by another process for longer than the busy timeout (200 ms)",
            "database is locked"
        ) {
            try await backend.createOrchestrationInstance(start("during"))
        }
        // WAL: readers are not blocked by the writer's lock.
        #expect(try await backend.getOrchestrationMetadata(instanceID: "before")?.status == .pending)
        #expect(try await backend.getOrchestrationMetadata(instanceID: "during") == nil)

        try other.execute("ROLLBACK")
        other.close()

        // The same backend works again, and nothing was lost.
        try await backend.createOrchestrationInstance(start("during"))
        let all = try await backend.queryOrchestrations(OrchestrationQuery(pageSize: 10))
        #expect(all.instances.map(\.instanceID) == ["before", "during"])
        await backend.close()
    }

    // MARK: Disk full

    @Test func writeBeyondTheQuotaFailsAsDiskFullAndSucceedsOnceTheQuotaIsRaised() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path, options: .init(maxDatabaseBytes: 64 * 1024))
        try await backend.createOrchestrationInstance(start("small"))
        let big = "\"" + String(repeating: "x", count: 256 * 1024) + "\""

        await expectStorageError(path, "database or disk is full", "maxDatabaseBytes (65536 bytes)", "nothing was lost") {
            try await backend.createOrchestrationInstance(start("big", input: big))
        }
        #expect(try await backend.getOrchestrationMetadata(instanceID: "big") == nil)
        #expect(try await backend.getOrchestrationMetadata(instanceID: "small") != nil)

        try await backend.setMaxDatabaseBytes(nil)
        try await backend.createOrchestrationInstance(start("big", input: big))
        #expect(try await backend.getOrchestrationMetadata(instanceID: "big")?.input?.count == big.utf8.count)
        await backend.close()

        // The quota is a setting of the connection: reopening without it has none, with it enforces it.
        let reopened = try SQLiteBackend(path: path, options: .init(maxDatabaseBytes: 64 * 1024))
        await expectStorageError("database or disk is full") {
            try await reopened.createOrchestrationInstance(start("big2", input: big))
        }
        await reopened.close()
    }

    @Test func fanOutThatCannotBeCommittedOnAFullDatabaseCompletesOnceThereIsRoom() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        // Room for the schema and the instance, not for the episode that schedules the fan-out.
        let backend = try SQLiteBackend(path: path, options: .init(maxDatabaseBytes: 64 * 1024))
        let log = LogRecorder()
        // A high delivery limit: disk full must not park the instance as poisoned while we wait.
        let worker = DurableTaskWorker(
            backend: backend,
            options: .init(
                pollInterval: .milliseconds(50), maxDeliveryCount: 1_000, logHandler: log.handler))
        let fanOut = 40
        let padding = 4_000
        worker.addOrchestrator(name: "BigFanOut") { (context: OrchestrationContext, count: Int) in
            let futures = (0..<count).map { index in
                context.callActivity("Measure", input: String(repeating: "x", count: padding) + "\(index)", returning: Int.self)
            }
            return try await context.whenAll(futures).reduce(0, +)
        }
        worker.addActivity(name: "Measure") { (_: ActivityContext, text: String) in text.count }
        let running = Task { await worker.run() }
        defer { running.cancel() }

        let client = DurableTaskClient(backend: backend)
        let id = try await client.scheduleNewOrchestration(name: "BigFanOut", input: fanOut, instanceID: "fan")
        // The episode fails to commit, is retried with back-off, and the worker keeps running.
        let failedTwice = await eventually {
            log.lines(containing: "instance 'fan'", "database or disk is full").count >= 2
        }
        #expect(failedTwice, "\(log.lines(containing: ""))")
        let waiting = try #require(try await client.getInstance(id))
        #expect(!waiting.status.isTerminal, "the instance is neither lost nor parked: \(waiting.status)")
        #expect(try await client.getHistory(id).isEmpty, "nothing of the failed episode was committed")

        // Space is back: the same worker finishes the orchestration with the exact result.
        try await backend.setMaxDatabaseBytes(nil)
        let done = try await client.waitForCompletion(id, timeout: .seconds(20))
        #expect(done.status == .completed, "\(String(describing: done.failure))")
        let expected = (0..<fanOut).map { padding + String($0).count }.reduce(0, +)
        #expect(done.output?.json == "\(expected)")
        let completions = try await client.getHistory(id).filter {
            if case .taskCompleted = $0.kind { true } else { false }
        }
        #expect(completions.count == fanOut)

        running.cancel()
        await running.value
        await backend.close()
    }

    // MARK: Undecodable history

    @Test func undecodableHistoryRowIsCorruptDataAndLaterReadsSeeNewWrites() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(start("broken"))
        let item = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(30)))
        let events = item.newEvents + [HistoryEvent(timestamp: Date(), kind: .orchestratorCompleted)]
        try await backend.completeOrchestrationWorkItem(item, result: OrchestrationWorkItemResult(newHistory: events, status: .running))
        do {
            let connection = try Connection(path: path)
            try connection.execute("UPDATE history SET event = x'01FF' WHERE instance_id = 'broken' AND seq = 0")
            connection.close()
        }
        await expectError(.corruptData) { _ = try await backend.getOrchestrationHistory(instanceID: "broken") }
        // The failed read stopped part-way through its rows; it must not leave the reader connection
        // on an old snapshot.
        try await backend.createOrchestrationInstance(start("later"))
        #expect(try await backend.getOrchestrationMetadata(instanceID: "later") != nil)
        await backend.close()
    }

    @Test func undecodableHistoryRowParksTheInstanceAfterTheDeliveryLimitAndOthersCarryOn() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        func register(_ worker: DurableTaskWorker) {
            worker.addOrchestrator(name: "Waiter") { (context: OrchestrationContext, input: Int) in
                let doubled = try await context.callActivity("Double", input: input, returning: Int.self).value
                let extra = try await context.waitForExternalEvent("go", as: Int.self).value
                return doubled + extra
            }
            worker.addActivity(name: "Double") { (_: ActivityContext, value: Int) in value * 2 }
        }

        // A first worker takes the instance half-way: the activity done, waiting for an event.
        do {
            let backend = try SQLiteBackend(path: path)
            let worker = DurableTaskWorker(backend: backend, options: .init(pollInterval: .milliseconds(50), logHandler: { _, _ in }))
            register(worker)
            let running = Task { await worker.run() }
            let client = DurableTaskClient(backend: backend)
            _ = try await client.scheduleNewOrchestration(name: "Waiter", input: 20, instanceID: "damaged")
            let halfWay = try await eventually {
                try await client.getHistory("damaged").contains { if case .taskCompleted = $0.kind { true } else { false } }
            }
            #expect(halfWay)
            running.cancel()
            await running.value
            await backend.close()
        }
        do {
            let connection = try Connection(path: path)
            // The last row: the episode that recorded the activity's result.
            try connection.execute(
                "UPDATE history SET event = x'01FF' WHERE instance_id = 'damaged' AND seq = (SELECT max(seq) FROM history WHERE instance_id = 'damaged')"
            )
            #expect(connection.changes == 1)
            connection.close()
        }

        // A fresh worker (nothing cached) must load the history from the file.
        let backend = try SQLiteBackend(path: path)
        let log = LogRecorder()
        let worker = DurableTaskWorker(
            backend: backend,
            options: .init(
                pollInterval: .milliseconds(50), maxDeliveryCount: 3, logHandler: log.handler))
        register(worker)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        let client = DurableTaskClient(backend: backend)
        try await client.raiseEvent("damaged", name: "go", data: 2)
        _ = try await client.scheduleNewOrchestration(name: "Waiter", input: 5, instanceID: "healthy")
        try await client.raiseEvent("healthy", name: "go", data: 1)

        let healthy = try await client.waitForCompletion("healthy", timeout: .seconds(10))
        #expect(healthy.status == .completed)
        #expect(healthy.output?.json == "11")

        let damaged = try await client.waitForCompletion("damaged", timeout: .seconds(10))
        #expect(damaged.status == .failed)
        let failure = try #require(damaged.failure)
        #expect("\(failure.errorType) \(failure.message)".contains("poisoned"), "\(failure)")
        #expect(failure.message.contains("'damaged'"), "\(failure)")
        #expect(failure.message.contains("corruptData"), "\(failure)")
        #expect(failure.message.contains("undecodable history row"), "\(failure)")
        #expect(failure.innerFailure?.errorType == "DurableTaskError.corruptData", "\(failure)")

        // Bounded: exactly maxDeliveryCount attempts, then nothing more (no hot loop). Once the worker
        // has stopped, every attempt it made is logged; and the parked instance has nothing left that
        // could be delivered again, here or in any other worker.
        running.cancel()
        await running.value
        #expect(log.lines(containing: "instance 'damaged'", "episode failed").count == 3, "\(log.lines(containing: "damaged"))")
        #expect(log.lines(containing: "instance 'healthy'").isEmpty)
        await backend.close()
        let connection = try Connection(path: path, create: false)
        #expect(try connection.scalarInt("SELECT count(*) FROM inbox WHERE instance_id = 'damaged'") == 0)
        #expect(try connection.scalarInt("SELECT count(*) FROM instances WHERE instance_id = 'damaged' AND ready_at IS NULL AND lock_token IS NULL") == 1)
        connection.close()
    }
}
