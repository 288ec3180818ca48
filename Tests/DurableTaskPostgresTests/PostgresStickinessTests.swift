@_spi(Backend) import DurableTask
import Foundation
import Testing

@testable import DurableTaskPostgres

/// An instance is left to the worker that ran its last episode (which has it cached) for
/// `PostgresSchema.stickyFor`, then goes to anybody; at once when that worker stops or the instance ends.
@Suite(
    "Postgres sticky instances", .tags(.postgres),
    .enabled(if: PostgresTestServer.url != nil, PostgresTestServer.howToRun))
struct PostgresStickinessTests {
    private static func raise(_ backend: PostgresBackend, _ instanceID: String) async throws {
        try await backend.addOrchestrationEvent(instanceID: instanceID, event: HistoryEvent(timestamp: Date(), kind: .eventRaised(name: "go", input: nil)))
    }

    private static func lease(_ backend: PostgresBackend, as owner: String) async throws -> OrchestrationWorkItem? {
        try await backend.getOrchestrationWorkItems(owner: owner, maxCount: 10, maxRedelivered: 0, leaseDuration: .seconds(30)).first
    }

    private static func commit(_ backend: PostgresBackend, _ item: OrchestrationWorkItem, _ status: OrchestrationStatus = .running) async throws {
        try await backend.completeOrchestrationWorkItem(item, result: OrchestrationWorkItemResult(newHistory: item.newEvents, status: status))
    }

    @Test func theLastOwnerGoesFirstUntilItStopsOrTheWindowPasses() async throws {
        let clock = ManualClock()
        let name = PostgresTestServer.freshSchema("sticky")
        let backend = try PostgresTestServer.backend(schema: name, clock: clock)
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: "s",
                startEvent: HistoryEvent(
                    timestamp: Date(), kind: .executionStarted(name: "O", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
        // A new instance goes to whoever asks first.
        try await Self.commit(backend, try #require(try await Self.lease(backend, as: "A")))

        // Ready again: within the window only A, which ran it, takes it.
        try await Self.raise(backend, "s")
        #expect(try await Self.lease(backend, as: "B") == nil)
        try await Self.commit(backend, try #require(try await Self.lease(backend, as: "A")))

        // Past the window anybody does: A may be busy, or gone without a word.
        try await Self.raise(backend, "s")
        #expect(try await Self.lease(backend, as: "B") == nil)
        clock.advance(by: PostgresSchema.stickyFor + 0.01)
        try await Self.commit(backend, try #require(try await Self.lease(backend, as: "B")))

        // A worker that stopped hands its instances over at once.
        try await Self.raise(backend, "s")
        #expect(try await Self.lease(backend, as: "C") == nil)
        await backend.ownerStopped("B")
        let taken = try #require(try await Self.lease(backend, as: "C"))

        // An ended instance keeps no owner (the index holds running instances only).
        try await Self.commit(backend, taken, .completed)
        let schema = PostgresSchema(name: name)
        #expect(try await PostgresTestServer.admin("SELECT count(*) FROM \(schema.s).instances WHERE last_owner IS NOT NULL") == "0")
        await backend.close()
        _ = try await PostgresTestServer.admin("DROP SCHEMA \(schema.s) CASCADE")
    }

    /// Two processes on one task hub: each a backend of its own, with its own session.
    private static func twoProcesses(_ label: String, clock: ManualClock) throws -> (PostgresBackend, PostgresBackend, PostgresSchema) {
        let name = PostgresTestServer.freshSchema(label)
        let first = try PostgresTestServer.backend(schema: name, clock: clock)
        return (first, try PostgresTestServer.backend(schema: name, clock: clock), PostgresSchema(name: name))
    }

    private static func create(_ backend: PostgresBackend, _ instanceID: String) async throws {
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: instanceID,
                startEvent: HistoryEvent(
                    timestamp: Date(), kind: .executionStarted(name: "O", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
    }

    @Test func theInstancesOfADeadOwnerAreTakenOverWithinTheWindow() async throws {
        let clock = ManualClock()
        let (first, second, schema) = try Self.twoProcesses("stickydead", clock: clock)
        try await Self.create(first, "s")
        try await Self.commit(first, try #require(try await Self.lease(first, as: "A")))
        try await Self.raise(first, "s")
        // A holds no lease, only the instance's stickiness; its process dies without a word.
        await first.close()
        // The others are not woken for A's instances, so they must not wait for the window to pass
        // either: B takes it at once, the clock not moved.
        // (The server ends the session a moment after the close; the backend clock does not move, so
        // the window never passes while this retries.)
        var taken: OrchestrationWorkItem?
        let deadline = ContinuousClock.now + .seconds(20)
        while taken == nil && ContinuousClock.now < deadline {
            taken = try await Self.lease(second, as: "B")
            if taken == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(taken?.instanceID == "s")
        await second.close()
        _ = try await PostgresTestServer.admin("DROP SCHEMA \(schema.s) CASCADE")
    }

    @Test func orchestrationWorkWakesOnlyTheProcessWhoseWorkItIs() async throws {
        let clock = ManualClock()
        let (first, second, schema) = try Self.twoProcesses("stickywake", clock: clock)
        // A lease waits for the process's session to hold its owner lock, so it is listening from now on.
        #expect(try await Self.lease(second, as: "B") == nil)
        try await Self.create(first, "s")
        let item = try #require(try await Self.lease(first, as: "A"))
        // The episode schedules an activity that A runs; its result makes the instance ready for A.
        let leased = try await first.completeOrchestrationWorkItem(
            item,
            result: OrchestrationWorkItemResult(
                newHistory: item.newEvents, activities: [ActivityRequest(taskID: 0, name: "Act", input: nil)], status: .running),
            leasing: ActivityLeaseRequest(owner: "A", taskIDs: [0], leaseDuration: .seconds(30)))
        let activity = try #require(leased.first)
        let before = second.changeGeneration(.orchestrationWork)
        let recorded = try await first.completeActivityWorkItems([
            ActivityCompletion(item: activity, event: HistoryEvent(timestamp: Date(), kind: .taskCompleted(scheduledID: 0, result: nil)))
        ])
        #expect(recorded == [true])
        // Then work for anybody (a new instance). Notifications arrive in commit order, so once the
        // second process has seen this one, it has seen the result's too — and must not have woken for it.
        try await Self.create(first, "t")
        let deadline = ContinuousClock.now + .seconds(20)
        while second.changeGeneration(.orchestrationWork) == before && ContinuousClock.now < deadline {
            await second.waitForChange(.orchestrationWork, since: before, timeout: .seconds(1))
        }
        #expect(second.changeGeneration(.orchestrationWork) == before + 1)
        await first.close()
        await second.close()
        _ = try await PostgresTestServer.admin("DROP SCHEMA \(schema.s) CASCADE")
    }

    /// The commit of results leases the instances they make ready to their writer when it ran them
    /// last, and leaves the others (and the wake-up for them) to the worker that did.
    @Test func aResultCommitLeasesTheInstancesItsWriterRanLast() async throws {
        let clock = ManualClock()
        let (first, second, schema) = try Self.twoProcesses("stickyresults", clock: clock)
        // A runs "s", B runs "t"; both episodes schedule an activity, and A runs both activities.
        for (id, backend, owner) in [("s", first, "A"), ("t", second, "B")] {
            try await Self.create(backend, id)
            let item = try #require(try await Self.lease(backend, as: owner))
            #expect(item.instanceID == id)
            try await backend.completeOrchestrationWorkItem(
                item,
                result: OrchestrationWorkItemResult(
                    newHistory: item.newEvents, activities: [ActivityRequest(taskID: 0, name: "Act", input: nil)], status: .running))
        }
        let activities = try await first.getActivityWorkItems(owner: "A", maxCount: 10, leaseDuration: .seconds(30))
        #expect(activities.count == 2)
        let recorded = try await first.completeActivityWorkItems(
            activities.map { ActivityCompletion(item: $0, event: HistoryEvent(timestamp: Date(), kind: .taskCompleted(scheduledID: 0, result: nil))) },
            leasing: OrchestrationLeaseRequest(owner: "A", maxCount: 10, leaseDuration: .seconds(30)))
        #expect(recorded.accepted == [true, true])
        let leased = try #require(recorded.leased.first)
        #expect(recorded.leased.count == 1)
        #expect(leased.instanceID == "s")
        #expect(leased.newEvents.map(\.kindName) == ["taskCompleted"])
        // Under A's lease: nobody else takes it, even after the window; "t" is B's.
        clock.advance(by: PostgresSchema.stickyFor + 0.01)
        #expect(try await Self.lease(second, as: "C")?.instanceID == "t")
        #expect(try await Self.lease(second, as: "C") == nil)
        try await Self.commit(first, leased)
        #expect(try await first.getOrchestrationHistory(instanceID: "s").map(\.kindName) == ["executionStarted", "taskCompleted"])
        await first.close()
        await second.close()
        _ = try await PostgresTestServer.admin("DROP SCHEMA \(schema.s) CASCADE")
    }
}
