@_spi(Backend) import DurableTask
import Foundation
import Testing

/// A sub-orchestration a client terminates before its first episode: the terminate and the
/// `executionStarted` arrive in one batch, the code never runs, and the parent must still hear of it
/// as it does of a child terminated while it runs.
@Suite struct TerminatedChildTests {
    let quiet = DurableTaskWorker.Options(logHandler: { _, _ in })

    /// Calls ``WaitsForGo`` under the given instance ID and reports how it ended.
    struct ParentOfTerminated: Orchestrator {
        func run(context: OrchestrationContext, input childID: String) async throws -> String {
            do {
                let answer = try await context.callSubOrchestrator(WaitsForGo.self, input: 0, instanceID: childID).value
                return "child returned \(answer)"
            } catch let error as TaskFailedError {
                return "\(error.details.errorType): \(error.details.message)"
            }
        }
    }

    /// Runs until it is told to end, so that a test can terminate it while it runs.
    struct WaitsForGo: Orchestrator {
        func run(context: OrchestrationContext, input: Int) async throws -> Int {
            try await context.waitForExternalEvent("go", as: Int.self).value
        }
    }

    @Test func aChildTerminatedInItsFirstBatchTellsItsParent() throws {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let parent = HistoryEvent.ParentInstance(instanceID: "the-parent", executionID: "p1", taskID: 4, name: "ParentOfTerminated")
        let result = ReplayEngine.execute(
            instanceID: "the-child", orchestrators: [OrchestratorEntry(WaitsForGo())], oldEvents: [],
            newEvents: [
                HistoryEvent(
                    timestamp: t0,
                    kind: .executionStarted(name: "WaitsForGo", executionID: "c1", input: Payload(json: "0"), parent: parent, scheduledStart: nil)),
                HistoryEvent(timestamp: t0, kind: .executionTerminated(reason: "not wanted", recursive: true))
            ],
            now: t0)
        #expect(result.status == .terminated)
        let message = try #require(result.messages.first)
        #expect(result.messages.count == 1)
        #expect(message.targetInstanceID == "the-parent")
        guard case let .subOrchestrationFailed(scheduledID, failure) = message.event.kind else {
            Issue.record("expected subOrchestrationFailed, got \(message.event.kind)")
            return
        }
        #expect(scheduledID == 4)
        #expect(failure.errorType == "Terminated")
        #expect(failure.message == "sub-orchestration 'the-child' was terminated: not wanted")
    }

    @Test(arguments: TestBackend.allCases)
    func aChildTerminatedBeforeItsFirstEpisodeEndsItsParentAsALaterTerminationDoes(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let earlyParent = try await client.scheduleNewOrchestration(ParentOfTerminated.self, input: "early-child")
        // The parent's first episode, run by hand as a worker would: no worker exists yet, so none can
        // start the child before the terminate joins its `executionStarted` in the inbox.
        let item = try #require(try await backend.getOrchestrationWorkItem(owner: "by-hand", leaseDuration: .seconds(60)))
        #expect(item.instanceID == earlyParent)
        let episode = ReplayEngine.execute(
            instanceID: item.instanceID, orchestrators: [OrchestratorEntry(ParentOfTerminated())], oldEvents: [],
            newEvents: item.newEvents, now: backend.clock.now())
        #expect(episode.newInstances.map(\.instanceID) == ["early-child"])
        try await backend.completeOrchestrationWorkItem(item, result: episode)
        try await client.terminate("early-child", reason: "not wanted")

        try await withWorker(
            backend: backend, options: quiet,
            register: { worker in
                worker.addOrchestrator(ParentOfTerminated())
                worker.addOrchestrator(WaitsForGo())
            }
        ) { client, _ in
            // The ending to match: the same parent, whose child is terminated while it runs.
            let lateParent = try await client.scheduleNewOrchestration(ParentOfTerminated.self, input: "late-child")
            try await eventually("the late child runs") { try await client.getInstance("late-child")?.status == .running }
            try await client.terminate("late-child", reason: "not wanted")
            let late = try await client.waitForCompletion(ParentOfTerminated.self, instanceID: lateParent, timeout: .seconds(20))
            #expect(late == "Terminated: sub-orchestration 'late-child' was terminated: not wanted")

            let early = try await client.waitForCompletion(ParentOfTerminated.self, instanceID: earlyParent, timeout: .seconds(20))
            #expect(early == late.replacingOccurrences(of: "late-child", with: "early-child"))
            let child = try #require(try await client.getInstance("early-child"))
            #expect(child.status == .terminated)
        }
    }
}
