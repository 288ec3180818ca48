@_spi(Backend) import DurableTask
import DurableTaskPostgres
import Foundation
import Synchronization
import Testing

/// Faults of a real server: sessions killed, the server restarted, statements timing out, a schema
/// that is not ours, a worker that goes away, another process's changes. After each the work goes on
/// and every activity result is recorded exactly once.
/// Counts activity runs across the worker's tasks.
final class RunCounter: Sendable {
    let count = Atomic<Int>(0)
}

@Suite(
    "Postgres faults", .tags(.postgres), .serialized,
    .enabled(if: PostgresTestServer.url != nil, PostgresTestServer.howToRun))
struct PostgresFaultTests {
    /// Sum of squares over a fan-out; each activity takes a few milliseconds, so a run spans the fault.
    static func register(_ worker: DurableTaskWorker, runs: RunCounter) {
        worker.addOrchestrator(name: "SumOfSquares") { (context: OrchestrationContext, count: Int) async throws -> Int in
            let squares = (1...count).map { context.callActivity("Square", input: $0, returning: Int.self) }
            return try await context.whenAll(squares).reduce(0, +)
        }
        worker.addActivity(name: "Square") { (_: ActivityContext, n: Int) async throws -> Int in
            runs.count.add(1, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(3))
            return n * n
        }
    }

    static func expectedSum(_ n: Int) -> Int { n * (n + 1) * (2 * n + 1) / 6 }

    /// A request for a new instance of orchestrator "O", for tests that drive the backend directly.
    static func newInstance(_ id: String) -> NewOrchestrationInstance {
        NewOrchestrationInstance(
            instanceID: id,
            startEvent: HistoryEvent(timestamp: Date(), kind: .executionStarted(name: "O", executionID: "e", input: nil, parent: nil, scheduledStart: nil)))
    }

    /// Checks that the history records each of `count` activities exactly once.
    static func expectEachResultOnce(_ client: DurableTaskClient, _ id: String, count: Int) async throws {
        let history = try await client.getHistory(id)
        var completed: [Int: Int] = [:]
        for event in history {
            if case let .taskCompleted(scheduledID, _) = event.kind { completed[scheduledID, default: 0] += 1 }
        }
        #expect(completed.count == count, "results recorded: \(completed.count) of \(count)")
        #expect(completed.values.allSatisfy { $0 == 1 }, "a result recorded twice")
    }

    /// Runs a fan-out of `count` on one worker while `fault` runs, and checks the exact result.
    func runThrough(
        count: Int, url: String? = PostgresTestServer.url, configure: (inout PostgresBackend.Options) -> Void = { _ in },
        fault: @Sendable () async throws -> Void
    ) async throws {
        let backend = try PostgresTestServer.backend(url: url, configure: configure)
        let runs = RunCounter()
        let worker = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
        Self.register(worker, runs: runs)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        let client = DurableTaskClient(backend: backend)
        let id = try await client.scheduleNewOrchestration(name: "SumOfSquares", input: count)
        // Wait until the fan-out is under way, so the fault hits it mid-run.
        let deadline = ContinuousClock.now + .seconds(30)
        while runs.count.load(ordering: .relaxed) < count / 10 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try await fault()
        let metadata = try await client.waitForCompletion(id, timeout: .seconds(120))
        #expect(metadata.status == .completed, "\(metadata.failure.map { "\($0)" } ?? "")")
        #expect(metadata.output == Payload(json: "\(Self.expectedSum(count))"))
        try await Self.expectEachResultOnce(client, id, count: count)
        worker.stop()
        await running.value
        await backend.close()
    }

    @Test func workGoesOnAfterTheConnectionsAreKilled() async throws {
        let schema = PostgresTestServer.freshSchema("kill")
        try await runThrough(count: 400, configure: { $0.schema = schema }) {
            for _ in 0..<3 {
                let killed = try await PostgresTestServer.admin(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'DurableTask \(schema)'")
                #expect(Int(killed) ?? 0 > 0, "no session was killed: \(killed)")
                try await Task.sleep(for: .milliseconds(150))
            }
        }
    }

    /// On a cluster of its own: a restart of the shared server would cut the other tests' sessions.
    @Test(.tags(.slow)) func workGoesOnAfterTheServerRestarts() async throws {
        let cluster = try await PrivateCluster.start()
        do {
            try await runThrough(count: 400, url: cluster.url) {
                let started = "SELECT pg_postmaster_start_time()"
                let before = try await PostgresTestServer.admin(started, url: cluster.url)
                try await cluster.restart()
                let after = try await PostgresTestServer.admin(started, url: cluster.url)
                #expect(before != after, "the server did not restart: started at \(before), then \(after)")
            }
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    @Test func aStatementTimeoutIsAStorageErrorAndTheNextCallWorks() async throws {
        let schema = PostgresTestServer.freshSchema("timeout")
        let backend = try PostgresTestServer.backend(schema: schema) { $0.statementTimeout = .milliseconds(200) }
        // Another session holds the instances table for a second: the create waits, and times out.
        let locker = Task {
            await PostgresTestServer.shell(
                "/usr/bin/psql '\(PostgresTestServer.url ?? "")' -X -q -c 'BEGIN; LOCK TABLE \(schema).instances IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT;'"
            )
        }
        let locked = ContinuousClock.now + .seconds(10)
        while try await PostgresTestServer.admin(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
                + "WHERE n.nspname = '\(schema)' AND c.relname = 'instances' AND l.mode = 'AccessExclusiveLock' AND l.granted"
        ) == "0" {
            guard ContinuousClock.now < locked else { throw DurableTaskError(.timeout, "the lock was never taken") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let request = Self.newInstance("a")
        do {
            try await backend.createOrchestrationInstance(request)
            Issue.record("the create did not time out")
        } catch let error as DurableTaskError {
            #expect(error.code == .storage)
            #expect(error.message.contains("statement timeout"), "\(error.message)")
        }
        _ = await locker.value
        try await backend.createOrchestrationInstance(request)
        #expect(try await backend.getOrchestrationMetadata(instanceID: "a")?.status == .pending)
        await backend.close()
    }

    @Test func aForeignOrNewerSchemaIsRefusedAndLeftAlone() async throws {
        let schema = PostgresTestServer.freshSchema("foreign")
        _ = try await PostgresTestServer.admin("CREATE SCHEMA \(schema); CREATE TABLE \(schema).orders (id int); INSERT INTO \(schema).orders VALUES (7)")
        do {
            _ = try PostgresTestServer.backend(schema: schema)
            Issue.record("a foreign schema was opened")
        } catch let error as DurableTaskError {
            #expect(error.code == .corruptData)
            #expect(error.message.contains("is not a DurableTask task hub"), "\(error.message)")
        }
        #expect(
            try await PostgresTestServer.admin("SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = '\(schema)'") == "orders"
        )

        let newer = PostgresTestServer.freshSchema("newer")
        _ = try PostgresTestServer.backend(schema: newer)
        _ = try await PostgresTestServer.admin("UPDATE \(newer).durabletask_meta SET value = '99' WHERE key = 'version'")
        do {
            _ = try PostgresTestServer.backend(schema: newer)
            Issue.record("a newer schema was opened")
        } catch let error as DurableTaskError {
            #expect(error.code == .corruptData)
            #expect(error.message.contains("version 99"), "\(error.message)")
        }
        #expect(throws: DurableTaskError.self) { _ = try PostgresTestServer.backend(schema: "Bad-Name") }
    }

    @Test func anUnreachableServerIsAStorageErrorThatSaysSo() throws {
        do {
            _ = try PostgresBackend(url: "postgresql://nobody@127.0.0.1:1/none", options: .init(connectTimeout: .seconds(2)))
            Issue.record("connected to port 1")
        } catch let error as DurableTaskError {
            #expect(error.code == .storage)
            #expect(error.message.contains("127.0.0.1"), "\(error.message)")
        }
    }

    @Test func aGoneWorkersLeasesAreTakenOverAtOnceAndALiveOnesAreKept() async throws {
        let schema = PostgresTestServer.freshSchema("owner")
        let first = try PostgresTestServer.backend(schema: schema)
        let second = try PostgresTestServer.backend(schema: schema)
        let request = Self.newInstance("a")
        try await first.createOrchestrationInstance(request)
        let item = try #require(try await first.getOrchestrationWorkItem(owner: "first", leaseDuration: .seconds(3600)))
        #expect(item.instanceID == "a")
        // The first worker is alive: however often the second looks, the lease stays.
        for _ in 0..<3 {
            #expect(try await second.getOrchestrationWorkItem(owner: "second", leaseDuration: .seconds(60)) == nil)
            try await Task.sleep(for: .milliseconds(300))
        }
        await first.close()
        let closed = ContinuousClock.now
        var taken: OrchestrationWorkItem?
        while taken == nil && ContinuousClock.now - closed < .seconds(10) {
            taken = try await second.getOrchestrationWorkItem(owner: "second", leaseDuration: .seconds(60))
            if taken == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let elapsed = ContinuousClock.now - closed
        #expect(taken?.instanceID == "a", "the gone worker's lease was not taken over within 10 s")
        #expect(taken?.deliveryCount == 2)
        #expect(elapsed < .seconds(5), "took \(elapsed); the lease had an hour to run")
        await second.close()
    }

    /// Work a gone worker had leased ahead runs first, not after everything that became ready meanwhile.
    @Test func aGoneWorkersActivitiesGoToTheFrontOfTheQueue() async throws {
        let schema = PostgresTestServer.freshSchema("front")
        let first = try PostgresTestServer.backend(schema: schema)
        let second = try PostgresTestServer.backend(schema: schema)
        let request = Self.newInstance("a")
        try await first.createOrchestrationInstance(request)
        let item = try #require(try await first.getOrchestrationWorkItem(owner: "first", leaseDuration: .seconds(3600)))
        try await first.completeOrchestrationWorkItem(
            item,
            result: OrchestrationWorkItemResult(
                newHistory: item.newEvents, activities: (0..<4).map { ActivityRequest(taskID: $0, name: "Act", input: nil) }, status: .running))
        let leased = try await first.getActivityWorkItems(owner: "first", maxCount: 2, leaseDuration: .seconds(3600))
        #expect(leased.map(\.taskID) == [0, 1])
        await first.close()
        // Tasks 2 and 3 were ready before the first worker went; its 0 and 1 still come first. (The
        // lease releases a gone owner's leases first; the first backend's session ended with close.)
        let taken = try await second.getActivityWorkItems(owner: "second", maxCount: 2, leaseDuration: .seconds(60))
        #expect(taken.map(\.taskID).sorted() == [0, 1], "leased \(taken.map(\.taskID)) first")
        #expect(taken.allSatisfy { $0.deliveryCount == 2 })
        await second.close()
    }

    /// A client's watch on an instance sees another backend's episode commit through `NOTIFY`, so waits
    /// need no polling: without it the watch would return after its 30 s timeout.
    @Test func anotherProcessesEpisodeWakesAWatchOnItsInstance() async throws {
        let schema = PostgresTestServer.freshSchema("watch")
        let watching = try PostgresTestServer.backend(schema: schema)
        let writing = try PostgresTestServer.backend(schema: schema)
        try await writing.createOrchestrationInstance(Self.newInstance("a"))
        // The listener subscribes as the backend opens; a lease round trip makes sure it has.
        _ = try await watching.getActivityWorkItems(owner: "watcher", maxCount: 1, leaseDuration: .seconds(60))
        let watch = watching.watchInstance("a")
        #expect(watch.seesOtherProcesses)
        #expect(try await watching.getOrchestrationMetadata(instanceID: "a")?.status == .pending)
        let started = ContinuousClock.now
        let commit = Task {
            try await Task.sleep(for: .milliseconds(100))
            let item = try #require(try await writing.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(60)))
            try await writing.completeOrchestrationWorkItem(item, result: OrchestrationWorkItemResult(newHistory: item.newEvents, status: .running))
        }
        await watch.wait(timeout: .seconds(30))
        let elapsed = ContinuousClock.now - started
        try await commit.value
        #expect(elapsed < .seconds(10), "the watch woke after \(elapsed), by its timeout")
        #expect(try await watching.getOrchestrationMetadata(instanceID: "a")?.status == .running)
        await watching.close()
        await writing.close()
    }

    @Test func anotherProcessesChangeWakesAWaiterAtOnce() async throws {
        let schema = PostgresTestServer.freshSchema("notify")
        let waiter = try PostgresTestServer.backend(schema: schema)
        let writer = try PostgresTestServer.backend(schema: schema)
        // The listener subscribes as the backend opens; a lease round trip makes sure it has.
        _ = try await waiter.getOrchestrationWorkItem(owner: "waiter", leaseDuration: .seconds(60))
        let generation = waiter.changeGeneration(.orchestrationWork)
        let started = ContinuousClock.now
        let create = Task {
            try await Task.sleep(for: .milliseconds(100))
            try await writer.createOrchestrationInstance(
                NewOrchestrationInstance(
                    instanceID: "x",
                    startEvent: HistoryEvent(
                        timestamp: Date(), kind: .executionStarted(name: "O", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
        }
        await waiter.waitForChange(.orchestrationWork, since: generation, timeout: .seconds(30))
        let elapsed = ContinuousClock.now - started
        try await create.value
        #expect(elapsed < .seconds(5), "the wake-up took \(elapsed)")
        #expect(try await waiter.getOrchestrationWorkItem(owner: "waiter", leaseDuration: .seconds(60))?.instanceID == "x")
        await waiter.close()
        await writer.close()
    }
}
