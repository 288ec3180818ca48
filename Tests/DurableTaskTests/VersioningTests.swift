import DurableTask
import DurableTaskTesting
import Foundation
import Testing

/// Changing an orchestrator while instances run: `isPatched` keeps old instances on the old path and
/// puts new ones on the new path; the replayer finds the change that lacks it before it is deployed.
@Suite struct VersioningTests {
    let quiet = DurableTaskWorker.Options(logHandler: { _, _ in })

    struct OrderInput: Codable, Sendable {
        var id: Int
        /// Whether the charges wait on the test's gate (instances caught mid-fan-out).
        var gated: Bool
    }

    /// The code before the change: charge (a fan-out of three), wait a minute, then reserve stock.
    static func version1(_ context: OrchestrationContext, _ input: OrderInput) async throws -> String {
        try await chargeThenReserve(context, input)
    }

    static func chargeThenReserve(_ context: OrchestrationContext, _ input: OrderInput) async throws -> String {
        let charges = (0..<3).map { context.callActivity(input.gated ? "GatedCharge" : "Charge", input: $0, returning: Int.self) }
        _ = try await context.whenAll(charges)
        try await context.createTimer(after: .seconds(60)).value
        _ = try await context.callActivity("Reserve", input: input.id, returning: Int.self).value
        return "charged, then reserved"
    }

    static func reserveThenCharge(_ context: OrchestrationContext, _ input: OrderInput) async throws -> String {
        _ = try await context.callActivity("Reserve", input: input.id, returning: Int.self).value
        let charges = (0..<3).map { context.callActivity("Charge", input: $0, returning: Int.self) }
        _ = try await context.whenAll(charges)
        try await context.createTimer(after: .seconds(60)).value
        return "reserved, then charged"
    }

    /// The change, behind `isPatched`: reserve stock first.
    static func version2(_ context: OrchestrationContext, _ input: OrderInput) async throws -> String {
        if context.isPatched("reserve-first") {
            return try await reserveThenCharge(context, input)
        }
        return try await chargeThenReserve(context, input)
    }

    /// The same change made without `isPatched`.
    static func version2Unguarded(_ context: OrchestrationContext, _ input: OrderInput) async throws -> String {
        try await reserveThenCharge(context, input)
    }

    static func activities(_ worker: DurableTaskWorker, gate: AsyncGate) {
        worker.addActivity(name: "Charge") { (_: ActivityContext, input: Int) in input }
        worker.addActivity(name: "Reserve") { (_: ActivityContext, input: Int) in input }
        worker.addActivity(name: "GatedCharge") { (_: ActivityContext, input: Int) in
            // Cancellable, so that stopping the worker hands the charge back instead of waiting for it.
            while await !gate.isOpen { try await Task.sleep(for: .milliseconds(5)) }
            return input
        }
    }

    @Test(arguments: TestBackend.allCases)
    func oldInstancesFinishOnTheOldPathAndNewOnesTakeTheNewPath(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let gate = AsyncGate()

        // Version 1 runs: two instances wait on their timer, two are in the middle of their fan-out.
        try await withWorker(
            backend: backend, options: quiet,
            register: { worker in
                worker.addOrchestrator(name: "PlaceOrder", Self.version1)
                Self.activities(worker, gate: gate)
            }
        ) { _, _ in
            for id in 0..<4 {
                try await client.scheduleNewOrchestration(name: "PlaceOrder", input: OrderInput(id: id, gated: id >= 2), instanceID: "old-\(id)")
            }
            try await eventually("old-0 and old-1 wait on their timer") {
                let a = try await historyContains(client, "old-0", "timerCreated")
                let b = try await historyContains(client, "old-1", "timerCreated")
                return a && b
            }
            try await eventually("old-2 and old-3 scheduled their charges") {
                let a = try await client.getHistory("old-2").filter { $0.kindName == "taskScheduled" }.count == 3
                let b = try await client.getHistory("old-3").filter { $0.kindName == "taskScheduled" }.count == 3
                return a && b
            }
        }

        // Before deploying version 2, the replayer checks it against the instances in flight.
        var unguarded = OrchestrationReplayer()
        unguarded.addOrchestrator(name: "PlaceOrder", Self.version2Unguarded)
        let flagged = try await unguarded.replay(backend: backend)
        #expect(flagged.count == 4)
        for report in flagged {
            let error = try #require(report.nondeterminism, "\(report)")
            #expect(error.instanceID == report.instanceID)
            #expect(error.sequenceNumber == 0)
            #expect(error.expected.contains("taskScheduled('\(report.instanceID >= "old-2" ? "GatedCharge" : "Charge")')"), "\(error.expected)")
            #expect(error.actual == "call activity 'Reserve'")
        }
        var guarded = OrchestrationReplayer()
        guarded.addOrchestrator(name: "PlaceOrder", Self.version2)
        #expect(try await guarded.replay(backend: backend).allSatisfy(\.succeeded))

        // Version 2 is deployed: the old instances finish as they began, new ones take the new path.
        await gate.release()
        try await withWorker(
            backend: backend, options: quiet,
            register: { worker in
                worker.addOrchestrator(name: "PlaceOrder", Self.version2)
                Self.activities(worker, gate: gate)
            }
        ) { _, _ in
            for id in 0..<2 {
                try await client.scheduleNewOrchestration(name: "PlaceOrder", input: OrderInput(id: id, gated: false), instanceID: "new-\(id)")
            }
            try await eventually("every instance waits on its timer") {
                for id in ["old-0", "old-1", "old-2", "old-3", "new-0", "new-1"] where try await !historyContains(client, id, "timerCreated") {
                    return false
                }
                return true
            }
            clock.advance(by: 61)
            for id in 0..<4 {
                let output = try await client.waitForCompletion("old-\(id)", timeout: .seconds(20))
                #expect(output.status == .completed, "\(String(describing: output.failure))")
                #expect(try output.output(as: String.self) == "charged, then reserved")
            }
            for id in 0..<2 {
                let output = try await client.waitForCompletion("new-\(id)", timeout: .seconds(20))
                #expect(try output.output(as: String.self) == "reserved, then charged")
                #expect(try await client.getHistory("new-\(id)").contains { $0.kindName == "versionMarker" })
            }
        }
        // Every finished history replays against version 2, exported to JSON and read back too.
        #expect(try await guarded.replay(backend: backend).allSatisfy(\.succeeded))
        for id in ["old-2", "new-1"] {
            let document = HistoryExport.Document(instanceID: id, events: try await client.getHistory(id))
            let data = try HistoryExport.encode(document)
            #expect(try HistoryExport.decode(data) == document)
            #expect(try guarded.replay(export: data).succeeded)
        }
    }

    @Test func aDeprecatedPatchReplaysMarkedInstancesAndRecordsNoMarker() throws {
        // Step 2 of removing the change: old instances are gone, the old branch is deleted.
        let entry: @Sendable (OrchestrationContext, Int) async throws -> String = { context, _ in
            context.deprecatePatch("reserve-first")
            _ = try await context.callActivity("Reserve", input: 0, returning: Int.self).value
            return "done"
        }
        var replayer = OrchestrationReplayer()
        replayer.addOrchestrator(name: "PlaceOrder", entry)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        let start = HistoryEvent(
            timestamp: t, kind: .executionStarted(name: "PlaceOrder", executionID: "e", input: Payload(json: "0"), parent: nil, scheduledStart: nil))
        let marked: [HistoryEvent] = [
            HistoryEvent(timestamp: t, kind: .orchestratorStarted), start,
            HistoryEvent(eventID: 0, timestamp: t, kind: .versionMarker(changeID: "reserve-first")),
            HistoryEvent(eventID: 1, timestamp: t, kind: .taskScheduled(name: "Reserve", input: Payload(json: "0"))),
            HistoryEvent(timestamp: t, kind: .orchestratorCompleted)
        ]
        let unmarked: [HistoryEvent] = [
            HistoryEvent(timestamp: t, kind: .orchestratorStarted), start,
            HistoryEvent(eventID: 0, timestamp: t, kind: .taskScheduled(name: "Reserve", input: Payload(json: "0"))),
            HistoryEvent(timestamp: t, kind: .orchestratorCompleted)
        ]
        #expect(replayer.replay(marked, instanceID: "marked").succeeded)
        #expect(replayer.replay(unmarked, instanceID: "unmarked").succeeded)
        // Deleting the call too early (instances with the marker still run) is what the replayer catches.
        var removed = OrchestrationReplayer()
        removed.addOrchestrator(name: "PlaceOrder") { (context: OrchestrationContext, _: Int) -> String in
            _ = try await context.callActivity("Reserve", input: 0, returning: Int.self).value
            return "done"
        }
        let report = removed.replay(marked, instanceID: "marked")
        #expect(report.nondeterminism?.sequenceNumber == 0)
        #expect(report.nondeterminism?.expected.contains("versionMarker") == true, "\(report)")
    }
}
