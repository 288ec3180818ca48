import DurableTask
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
}
