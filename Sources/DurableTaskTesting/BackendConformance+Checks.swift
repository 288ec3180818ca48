@_spi(Backend) import DurableTask
import Foundation
import Testing

// The conformance checks: every rule of the `Backend` contract a backend must keep, each run on a
// fresh backend with a manual clock.
extension BackendConformance {
    static func createdInstanceIsPendingAndDuplicateIsRejected(_ h: BackendHarness) async throws {
        try await h.create("a", input: "\"hi\"")
        let metadata = try #require(try await h.backend.getOrchestrationMetadata(instanceID: "a"))
        #expect(metadata.status == .pending)
        #expect(metadata.name == "Orch")
        #expect(metadata.executionID == "exec-1")
        #expect(metadata.input == Payload(json: "\"hi\""))
        #expect(metadata.createdAt == h.now)
        #expect(metadata.completedAt == nil)
        await expectError(.instanceAlreadyExists) { try await h.create("a") }
        await expectError(.instanceAlreadyExists) { try await h.create("a", replace: true) }
        #expect(try await h.backend.getOrchestrationMetadata(instanceID: "missing") == nil)
    }

    static func replaceIfFinishedReplacesAFinishedInstance(_ h: BackendHarness) async throws {
        try await h.create("a")
        try await h.finish("a")
        #expect(try await h.backend.getOrchestrationHistory(instanceID: "a").count == 1)
        await expectError(.instanceAlreadyExists) { try await h.create("a") }
        try await h.create("a", executionID: "exec-2", replace: true)
        let metadata = try #require(try await h.backend.getOrchestrationMetadata(instanceID: "a"))
        #expect(metadata.status == .pending)
        #expect(metadata.executionID == "exec-2")
        #expect(metadata.output == nil)
        #expect(try await h.backend.getOrchestrationHistory(instanceID: "a").isEmpty)
        let item = try #require(try await h.lease())
        #expect(item.newEvents.count == 1)
        #expect(item.executionID == "exec-2")
    }

    static func workItemCarriesAllInboxEvents(_ h: BackendHarness) async throws {
        try await h.create("a")
        try await h.backend.addOrchestrationEvent(instanceID: "a", event: h.event("e1", "1"))
        try await h.backend.addOrchestrationEvent(instanceID: "a", event: h.event("e2", "2"))
        let item = try #require(try await h.lease())
        #expect(item.instanceID == "a")
        #expect(item.executionID == "exec-1")
        #expect(item.newEvents.map(\.kindName) == ["executionStarted", "eventRaised", "eventRaised"])
        #expect(item.newEvents[2] == h.event("e2", "2"))
        #expect(item.historyLength == 0)
        #expect(item.deliveryCount == 1)
        #expect(try await h.lease("w2") == nil)
    }

    static func completeAppendsHistoryAndEnqueuesActivities(_ h: BackendHarness) async throws {
        try await h.create("a")
        let started = HistoryEvent(timestamp: h.now, kind: .orchestratorStarted)
        let scheduled = (0..<3).map {
            HistoryEvent(eventID: $0, timestamp: h.now, kind: .taskScheduled(name: "Act\($0)", input: Payload(json: "\($0)")))
        }
        let item = try await h.runEpisode("a") { item in
            OrchestrationWorkItemResult(
                newHistory: [started] + item.newEvents + scheduled,
                activities: (0..<3).map { ActivityRequest(taskID: $0, name: "Act\($0)", input: Payload(json: "\($0)")) },
                status: .running, customStatus: Payload(json: "\"busy\""))
        }
        let history = try await h.backend.getOrchestrationHistory(instanceID: "a")
        #expect(history == [started] + item.newEvents + scheduled)
        let metadata = try #require(try await h.backend.getOrchestrationMetadata(instanceID: "a"))
        #expect(metadata.status == .running)
        #expect(metadata.customStatus == Payload(json: "\"busy\""))
        #expect(try await h.lease() == nil, "the consumed inbox events are gone")

        let activities = try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 10, leaseDuration: .seconds(30))
        #expect(activities.map(\.name) == ["Act0", "Act1", "Act2"])
        #expect(activities.map(\.taskID) == [0, 1, 2])
        #expect(activities.allSatisfy { $0.instanceID == "a" && $0.executionID == "exec-1" && $0.deliveryCount == 1 })
        #expect(activities[1].input == Payload(json: "1"))
        #expect(try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, leaseDuration: .seconds(30)).isEmpty)

        let results = try await h.backend.completeActivityWorkItems(
            activities.map { activity in
                ActivityCompletion(
                    item: activity,
                    event: HistoryEvent(
                        timestamp: h.now,
                        kind: .taskCompleted(
                            scheduledID: activity.taskID, result: Payload(json: "\(activity.taskID * 10)"))))
            })
        #expect(results == [true, true, true])
        let next = try #require(try await h.lease())
        #expect(next.historyLength == history.count)
        #expect(next.newEvents.count == 3)
        #expect(next.newEvents.first?.kind == .taskCompleted(scheduledID: 0, result: Payload(json: "0")))
    }

    static func episodeCommitLeasesTheActivitiesAskedFor(_ h: BackendHarness) async throws {
        try await h.create("a")
        let item = try #require(try await h.lease())
        let scheduled = (0..<3).map { HistoryEvent(eventID: $0, timestamp: h.now, kind: .taskScheduled(name: "Act\($0)", input: nil)) }
        let generation = h.backend.changeGeneration(.activityWork)
        // Activities 0 and 2 for this worker; 1 (say, not registered here) and 7 (not scheduled) not.
        let leased = try await h.backend.completeOrchestrationWorkItem(
            item,
            result: OrchestrationWorkItemResult(
                newHistory: item.newEvents + scheduled,
                activities: (0..<3).map { ActivityRequest(taskID: $0, name: "Act\($0)", input: Payload(json: "\($0)")) },
                status: .running),
            leasing: ActivityLeaseRequest(owner: "w1", taskIDs: [2, 0, 7], leaseDuration: .seconds(10)))
        // Backends that do not lease in the commit (the protocol's default) return nothing, and every
        // activity is leased the usual way; those that do hand over exactly the ones asked for.
        guard !leased.isEmpty else {
            #expect(try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, leaseDuration: .seconds(10)).count == 3)
            return
        }
        #expect(leased.map(\.taskID) == [0, 2])
        #expect(leased.allSatisfy { $0.instanceID == "a" && $0.executionID == "exec-1" && $0.deliveryCount == 1 })
        #expect(leased.map(\.input) == [Payload(json: "0"), Payload(json: "2")])
        #expect(h.backend.changeGeneration(.activityWork) != generation, "activity 1 is left for the others, who are woken")
        let others = try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, leaseDuration: .seconds(10))
        #expect(others.map(\.taskID) == [1], "the leased ones are nobody else's")
        // Leased like any other: renewed, fenced once the lease ran out and was taken over, recorded once.
        #expect(try await h.backend.renewActivityWorkItemLeases(leased, leaseDuration: .seconds(10)) == [true, true])
        h.clock.advance(by: 11)
        let retaken = try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, leaseDuration: .seconds(10))
        #expect(retaken.map(\.taskID).sorted() == [0, 1, 2])
        #expect(retaken.first { $0.taskID == 0 }?.deliveryCount == 2)
        let completion = { (item: ActivityWorkItem) in
            ActivityCompletion(item: item, event: HistoryEvent(timestamp: h.now, kind: .taskCompleted(scheduledID: item.taskID, result: nil)))
        }
        #expect(try await h.backend.completeActivityWorkItems(leased.map(completion)) == [false, false])
        #expect(try await h.backend.completeActivityWorkItems(retaken.map(completion)) == [true, true, true])
        let next = try #require(try await h.lease())
        #expect(next.newEvents.map(\.kindName) == ["taskCompleted", "taskCompleted", "taskCompleted"])

        // All of an episode's activities taken: nobody else is woken for them.
        try await h.create("b")
        let itemB = try #require(try await h.lease())
        let quiet = h.backend.changeGeneration(.activityWork)
        let all = try await h.backend.completeOrchestrationWorkItem(
            itemB,
            result: OrchestrationWorkItemResult(
                newHistory: itemB.newEvents + [HistoryEvent(eventID: 0, timestamp: h.now, kind: .taskScheduled(name: "Act0", input: nil))],
                activities: [ActivityRequest(taskID: 0, name: "Act0", input: nil)], status: .running),
            leasing: ActivityLeaseRequest(owner: "w1", taskIDs: [0], leaseDuration: .seconds(10)))
        #expect(all.map(\.taskID) == [0])
        #expect(h.backend.changeGeneration(.activityWork) == quiet)
        #expect(try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, leaseDuration: .seconds(10)).isEmpty)
        #expect(try await h.backend.completeActivityWorkItems(all.map(completion)) == [true])
    }

    static func expiredLeaseIsTakenOverAndTheFirstOwnerLosesIt(_ h: BackendHarness) async throws {
        try await h.create("a")
        let first = try #require(try await h.lease("w1", seconds: 10))
        #expect(try await h.lease("w2") == nil)
        h.clock.advance(by: 11)
        let second = try #require(try await h.lease("w2"))
        #expect(second.leaseToken != first.leaseToken)
        #expect(second.deliveryCount == 2)
        #expect(second.newEvents == first.newEvents)

        await expectError(.leaseLost) {
            try await h.backend.completeOrchestrationWorkItem(
                first,
                result: OrchestrationWorkItemResult(
                    newHistory: first.newEvents, activities: [ActivityRequest(taskID: 0, name: "X", input: nil)],
                    status: .completed))
        }
        await expectError(.leaseLost) { try await h.backend.abandonOrchestrationWorkItem(first, delay: .zero) }
        #expect(try await h.backend.getOrchestrationHistory(instanceID: "a").isEmpty)
        #expect(try await h.backend.getOrchestrationMetadata(instanceID: "a")?.status == .pending)
        #expect(try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 10, leaseDuration: .seconds(30)).isEmpty)

        try await h.backend.completeOrchestrationWorkItem(
            second,
            result: OrchestrationWorkItemResult(
                newHistory: second.newEvents, status: .running))
        #expect(try await h.backend.getOrchestrationHistory(instanceID: "a").count == 1)
    }

    static func activityResultIsRecordedOnce(_ h: BackendHarness) async throws {
        try await h.create("a")
        try await h.scheduleOneActivity("a")
        let leased = try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 10, leaseDuration: .seconds(10))
        let activity = try #require(leased.first)
        // The lease expires and another worker takes the activity over: the first result is fenced off.
        h.clock.advance(by: 11)
        let retaken = try #require(try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, leaseDuration: .seconds(10)).first)
        #expect(retaken.deliveryCount == 2)
        #expect(try await h.backend.renewActivityWorkItemLeases([activity, retaken], leaseDuration: .seconds(10)) == [false, true])
        let completion = { (item: ActivityWorkItem) in
            ActivityCompletion(item: item, event: HistoryEvent(timestamp: h.now, kind: .taskCompleted(scheduledID: 0, result: nil)))
        }
        #expect(try await h.backend.completeActivityWorkItems([completion(activity)]) == [false])
        #expect(try await h.backend.completeActivityWorkItems([completion(retaken)]) == [true])
        #expect(try await h.backend.completeActivityWorkItems([completion(retaken)]) == [false])
        let item = try #require(try await h.lease())
        #expect(item.newEvents.map(\.kindName) == ["taskCompleted"])
    }

    /// Results recorded with a lease request: recorded exactly as without one; what the commit leases
    /// (a backend may lease nothing) is within the request, made ready by these results, with their
    /// events, and leased as any lease is — nobody else's until completed, fenced when lost.
    static func resultCommitLeasesOnlyWhatItMadeReady(_ h: BackendHarness) async throws {
        for id in ["a", "b", "c"] {
            try await h.create(id)
            try await h.scheduleOneActivity(id)
        }
        try await h.create("fresh")
        let activities = try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 10, leaseDuration: .seconds(30))
        #expect(activities.map(\.instanceID).sorted() == ["a", "b", "c"])
        let completion = { (item: ActivityWorkItem) in
            ActivityCompletion(item: item, event: HistoryEvent(timestamp: h.now, kind: .taskCompleted(scheduledID: 0, result: Payload(json: "7"))))
        }
        // "c" is leased by another worker (for an event) while its result is recorded: not leasable.
        try await h.backend.addOrchestrationEvent(instanceID: "c", event: h.event("go"))
        h.clock.advance(by: 1)
        var byOthers: [String] = []
        while let item = try await h.lease("w2") { byOthers.append(item.instanceID) }
        #expect(byOthers.sorted() == ["c", "fresh"], "only the new instance and c are ready before the results")
        let recorded = try await h.backend.completeActivityWorkItems(
            activities.map(completion) + [completion(activities[0])],
            leasing: OrchestrationLeaseRequest(owner: "w1", maxCount: 1, leaseDuration: .seconds(10)))
        #expect(recorded.accepted == [true, true, true, false], "recorded once each, as without a lease request")
        #expect(recorded.leased.count <= 1, "no more than asked for")
        for item in recorded.leased {
            #expect(["a", "b"].contains(item.instanceID), "only instances these results made ready, not one under another lease")
            #expect(item.deliveryCount == 1)
            #expect(item.historyLength == 1)
            #expect(item.newEvents.map(\.kind) == [.taskCompleted(scheduledID: 0, result: Payload(json: "7"))])
        }
        // What the commit did not lease is leased the usual way; what it leased, by nobody else.
        h.clock.advance(by: 1)
        var rest: [String] = []
        while let item = try await h.lease("w2", seconds: 30) { rest.append(item.instanceID) }
        #expect(Set(rest + recorded.leased.map(\.instanceID)) == ["a", "b"])
        #expect(rest.count + recorded.leased.count == 2)
        guard let leased = recorded.leased.first else { return }
        // Fenced like any lease once it ran out and another worker took the instance.
        h.clock.advance(by: 11)
        let retaken = try #require(try await h.lease("w2"))
        #expect(retaken.instanceID == leased.instanceID)
        #expect(retaken.deliveryCount == 2)
        await expectError(.leaseLost) {
            try await h.backend.completeOrchestrationWorkItem(leased, result: OrchestrationWorkItemResult(newHistory: leased.newEvents, status: .running))
        }
        try await h.backend.completeOrchestrationWorkItem(retaken, result: OrchestrationWorkItemResult(newHistory: retaken.newEvents, status: .running))
        #expect(try await h.backend.getOrchestrationHistory(instanceID: leased.instanceID).count == 2)
    }

    static func completionForAStaleExecutionIsFencedOff(_ h: BackendHarness) async throws {
        try await h.create("a")
        try await h.scheduleOneActivity("a")
        let activity = try #require(try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 1, leaseDuration: .seconds(30)).first)
        try await h.backend.addOrchestrationEvent(instanceID: "a", event: h.event("restart"))
        try await h.runEpisode("a") { _ in
            OrchestrationWorkItemResult(
                status: .continuedAsNew,
                continueAsNew: (h.startEvent(executionID: "exec-2"), []))
        }
        let accepted = try await h.backend.completeActivityWorkItems([
            ActivityCompletion(
                item: activity, event: HistoryEvent(timestamp: h.now, kind: .taskCompleted(scheduledID: 0, result: nil)))
        ])
        #expect(accepted == [false])
        let item = try #require(try await h.lease())
        #expect(item.executionID == "exec-2")
        #expect(item.newEvents.map(\.kindName) == ["executionStarted"])
    }

    static func abandonRedeliversTheEvents(_ h: BackendHarness) async throws {
        try await h.create("a")
        let first = try #require(try await h.lease())
        try await h.backend.abandonOrchestrationWorkItem(first, delay: .zero)
        let second = try #require(try await h.lease())
        #expect(second.newEvents == first.newEvents)
        #expect(second.deliveryCount == 2)
        try await h.backend.abandonOrchestrationWorkItem(second, delay: .seconds(5))
        #expect(try await h.lease() == nil, "an abandoned item with a delay waits")
        h.clock.advance(by: 6)
        let third = try #require(try await h.lease())
        #expect(third.newEvents == first.newEvents)
    }

    static func abandonedActivityIsRedeliveredAfterTheDelay(_ h: BackendHarness) async throws {
        try await h.create("a")
        try await h.scheduleOneActivity("a")
        let activity = try #require(try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 1, leaseDuration: .seconds(30)).first)
        try await h.backend.abandonActivityWorkItem(activity, delay: .seconds(5))
        #expect(try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 1, leaseDuration: .seconds(30)).isEmpty)
        h.clock.advance(by: 6)
        let again = try #require(try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 1, leaseDuration: .seconds(30)).first)
        #expect(again.taskID == 0)
        // A hand-back (the worker stopping) is not a failed delivery: the count stays where it was.
        #expect(again.deliveryCount == 1)
    }

    static func handingActivitiesBackDoesNotCountTowardTheDeliveryLimit(_ h: BackendHarness) async throws {
        try await h.create("a")
        try await h.scheduleOneActivity("a")
        for _ in 0..<5 {
            let item = try #require(try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 1, leaseDuration: .seconds(30)).first)
            #expect(item.deliveryCount == 1)
            try await h.backend.abandonActivityWorkItem(item, delay: .zero)
        }
        // A lease that ran out does count: its worker may have died of the item.
        _ = try #require(try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 1, leaseDuration: .seconds(30)).first)
        h.clock.advance(by: 31)
        let expired = try #require(try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 1, leaseDuration: .seconds(30)).first)
        #expect(expired.deliveryCount == 2)
    }

    static func orchestrationHandBackIsUncountedAndAFailedDeliveryCounts(_ h: BackendHarness) async throws {
        try await h.create("a")
        let first = try #require(try await h.lease())
        #expect(first.deliveryCount == 1)
        try await h.backend.abandonOrchestrationWorkItem(first, delay: .zero, countsAsDelivery: false)
        let second = try #require(try await h.lease())
        #expect(second.deliveryCount == 1)
        try await h.backend.abandonOrchestrationWorkItem(second, delay: .zero, countsAsDelivery: true)
        let third = try #require(try await h.lease())
        #expect(third.deliveryCount == 2)
    }

    static func redeliveriesAreLeasedOnlyWhenAsked(_ h: BackendHarness) async throws {
        try await h.create("redelivered")
        let lost = try #require(try await h.lease(seconds: 10))
        h.clock.advance(by: 11)  // the lease ran out without a result
        // After one lost delivery the item is leased like fresh work (one crash redelivers in parallel).
        let first = try #require(
            try await h.backend.getOrchestrationWorkItem(
                owner: "w2", leaseDuration: .seconds(10),
                includeRedelivered: false))
        #expect(first.instanceID == lost.instanceID)
        h.clock.advance(by: 11)  // and its second lease ran out too: now it is a redelivery
        try await h.create("fresh")
        let fresh = try #require(
            try await h.backend.getOrchestrationWorkItem(
                owner: "w2", leaseDuration: .seconds(10),
                includeRedelivered: false))
        #expect(fresh.instanceID == "fresh")
        #expect(try await h.backend.getOrchestrationWorkItem(owner: "w2", leaseDuration: .seconds(10), includeRedelivered: false) == nil)
        let again = try #require(
            try await h.backend.getOrchestrationWorkItem(
                owner: "w2", leaseDuration: .seconds(10),
                includeRedelivered: true))
        #expect(again.instanceID == lost.instanceID)
        #expect(again.deliveryCount == 3)
    }

    static func activityLeaseTakesAtMostTheAskedNumberOfRedeliveries(_ h: BackendHarness) async throws {
        try await h.create("a")
        try await h.runEpisode("a") { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents,
                activities: (0..<6).map { ActivityRequest(taskID: $0, name: "Act", input: nil) }, status: .running)
        }
        // Tasks 0-2 lose two leases (redeliveries), tasks 3-5 one (leased like fresh work).
        let lost = try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 3, leaseDuration: .seconds(10))
        #expect(lost.map(\.taskID) == [0, 1, 2])
        h.clock.advance(by: 11)
        // One lost delivery is leased like fresh work; this lease (of all six) runs out as well.
        let lostAgain = try await h.backend.getActivityWorkItems(owner: "w1", maxCount: 10, maxRedelivered: 0, leaseDuration: .seconds(10))
        #expect(lostAgain.map(\.taskID).sorted() == [0, 1, 2, 3, 4, 5])
        h.clock.advance(by: 11)
        let none = try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, maxRedelivered: 0, leaseDuration: .seconds(10))
        #expect(none.map(\.taskID).sorted() == [3, 4, 5])
        #expect(none.allSatisfy { $0.deliveryCount == 2 })
        let one = try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, maxRedelivered: 1, leaseDuration: .seconds(10))
        #expect(one.count == 1)
        #expect(one.allSatisfy { $0.deliveryCount == 3 && [0, 1, 2].contains($0.taskID) })
        let rest = try await h.backend.getActivityWorkItems(owner: "w2", maxCount: 10, leaseDuration: .seconds(10))
        #expect(rest.count == 2)
    }

    static func orchestrationBatchLeasesDistinctInstancesWithinItsLimits(_ h: BackendHarness) async throws {
        for id in ["r1", "r2"] { try await h.create(id) }
        // Two leases run out on r1 and r2 without a result: both are redeliveries now.
        for _ in 0..<2 {
            let lost = try await h.backend.getOrchestrationWorkItems(owner: "w1", maxCount: 10, maxRedelivered: 10, leaseDuration: .seconds(10))
            #expect(Set(lost.map(\.instanceID)) == ["r1", "r2"])
            h.clock.advance(by: 11)
        }
        for index in 0..<5 { try await h.create("f\(index)") }
        let first = try await h.backend.getOrchestrationWorkItems(owner: "w2", maxCount: 4, maxRedelivered: 1, leaseDuration: .seconds(10))
        #expect(first.count == 4)
        #expect(Set(first.map(\.instanceID)).count == 4, "an instance leased twice in one batch")
        #expect(first.filter { $0.deliveryCount > 2 }.count <= 1, "more redeliveries than asked: \(first.map(\.deliveryCount))")
        // The rest: nothing leased above again, and at most one more redelivery when asked for one.
        let second = try await h.backend.getOrchestrationWorkItems(owner: "w2", maxCount: 10, maxRedelivered: 0, leaseDuration: .seconds(10))
        #expect(Set(second.map(\.instanceID)).isDisjoint(with: first.map(\.instanceID)))
        #expect(second.allSatisfy { $0.deliveryCount == 1 })
        let third = try await h.backend.getOrchestrationWorkItems(owner: "w2", maxCount: 10, maxRedelivered: 1, leaseDuration: .seconds(10))
        let all = first + second + third
        #expect(Set(all.map(\.instanceID)).count == all.count)
        #expect(third.count <= 1)
        let last = try await h.backend.getOrchestrationWorkItems(owner: "w2", maxCount: 10, maxRedelivered: 10, leaseDuration: .seconds(10))
        #expect(Set((all + last).map(\.instanceID)) == ["r1", "r2", "f0", "f1", "f2", "f3", "f4"])
        #expect(try await h.backend.getOrchestrationWorkItems(owner: "w2", maxCount: 10, maxRedelivered: 10, leaseDuration: .seconds(10)).isEmpty)
    }

    static func timersAreInvisibleUntilDue(_ h: BackendHarness) async throws {
        try await h.create("a")
        let fired = try await h.scheduleTimer("a", after: 60)
        #expect(try await h.lease() == nil)
        h.clock.advance(by: 59)
        #expect(try await h.lease() == nil)
        h.clock.advance(by: 1)
        let item = try #require(try await h.lease())
        #expect(item.newEvents == [fired])
    }

    static func eventIsNotHeldBackByAPendingTimer(_ h: BackendHarness) async throws {
        try await h.create("a")
        let fired = try await h.scheduleTimer("a", after: 60)
        try await h.backend.addOrchestrationEvent(instanceID: "a", event: h.event("now"))
        let item = try #require(try await h.lease(), "an event that is visible now is delivered before the timer")
        #expect(item.newEvents.map(\.kindName) == ["eventRaised"])
        try await h.backend.completeOrchestrationWorkItem(
            item,
            result: OrchestrationWorkItemResult(
                newHistory: item.newEvents, status: .running))
        h.clock.advance(by: 61)
        let timer = try #require(try await h.lease(), "completing the event did not consume the timer")
        #expect(timer.newEvents == [fired])
    }

    static func scheduledStartIsInvisibleUntilDue(_ h: BackendHarness) async throws {
        try await h.create("a", scheduledStart: h.now.addingTimeInterval(30))
        #expect(try await h.lease() == nil)
        h.clock.advance(by: 31)
        #expect(try await h.lease() != nil)
    }

    static func addingEventsChecksTheInstance(_ h: BackendHarness) async throws {
        await expectError(.instanceNotFound) {
            try await h.backend.addOrchestrationEvent(instanceID: "missing", event: h.event("x"))
        }
        await expectError(.instanceNotFound) { _ = try await h.backend.getOrchestrationHistory(instanceID: "missing") }
        try await h.create("a")
        try await h.finish("a")
        await expectError(.invalidState) {
            try await h.backend.addOrchestrationEvent(instanceID: "a", event: h.event("x"))
        }
    }

    static func queryFiltersAndPages(_ h: BackendHarness) async throws {
        let start = h.now
        for i in 0..<5 {
            try await h.create("order-\(i)", name: i % 2 == 0 ? "Even" : "Odd")
            h.clock.advance(by: 10)
        }
        try await h.create("other", name: "Even")
        // Finish order-0 (the first created, so the first leased).
        try await h.finish("order-0")

        var ids: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let page = try await h.backend.queryOrchestrations(OrchestrationQuery(pageSize: 2, continuationToken: token))
            ids += page.instances.map(\.instanceID)
            token = page.continuationToken
            pages += 1
        } while token != nil && pages < 10
        #expect(ids == ["order-0", "order-1", "order-2", "order-3", "order-4", "other"])
        #expect(pages == 3)

        func query(_ q: OrchestrationQuery) async throws -> [String] {
            try await h.backend.queryOrchestrations(q).instances.map(\.instanceID)
        }
        #expect(try await query(OrchestrationQuery(name: "Even")) == ["order-0", "order-2", "order-4", "other"])
        #expect(try await query(OrchestrationQuery(instanceIDPrefix: "order-")).count == 5)
        #expect(try await query(OrchestrationQuery(statuses: [.completed])) == ["order-0"])
        #expect(try await query(OrchestrationQuery(statuses: [.pending, .running])).count == 5)
        #expect(
            try await query(
                OrchestrationQuery(
                    createdFrom: start.addingTimeInterval(10),
                    createdTo: start.addingTimeInterval(30))) == ["order-1", "order-2"])
        #expect(try await query(OrchestrationQuery(name: "Even", instanceIDPrefix: "order", pageSize: 2)) == ["order-0", "order-2"])
        let last = try await h.backend.queryOrchestrations(OrchestrationQuery(pageSize: 10))
        #expect(last.continuationToken == nil)
    }

    static func purgeDeletesOnlyFinishedInstances(_ h: BackendHarness) async throws {
        try await h.create("running")
        await expectError(.invalidState) { _ = try await h.backend.purgeOrchestration(instanceID: "running") }
        #expect(try await h.backend.getOrchestrationMetadata(instanceID: "running") != nil)
        #expect(try await h.backend.purgeOrchestration(instanceID: "missing") == false)

        try await h.finish("running")
        #expect(try await h.backend.purgeOrchestration(instanceID: "running") == true)
        #expect(try await h.backend.getOrchestrationMetadata(instanceID: "running") == nil)
        await expectError(.instanceNotFound) { _ = try await h.backend.getOrchestrationHistory(instanceID: "running") }
        #expect(try await h.backend.purgeOrchestration(instanceID: "running") == false)

        for id in ["f1", "f2", "f3"] {
            try await h.create(id)
        }
        try await h.finish("f1")
        try await h.finish("f2", status: .failed, output: nil)
        #expect(try await h.backend.purgeOrchestrations(PurgeFilter(statuses: [.failed])) == 1)
        #expect(try await h.backend.purgeOrchestrations(PurgeFilter(createdBefore: h.now)) == 0)
        #expect(try await h.backend.purgeOrchestrations(PurgeFilter()) == 1)
        let left = try await h.backend.queryOrchestrations(OrchestrationQuery()).instances.map(\.instanceID)
        #expect(left == ["f3"])
    }

    static func metadataRecordsTheOutcome(_ h: BackendHarness) async throws {
        let created = h.now
        try await h.create("a", input: "7")
        h.clock.advance(by: 5)
        let failure = FailureDetails(
            errorType: "MyError", message: "boom", isRetriable: false,
            inner: FailureDetails(errorType: "Inner", message: "cause"))
        try await h.runEpisode("a") { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents, status: .failed, failure: failure,
                customStatus: Payload(json: "{\"step\":3}"))
        }
        let metadata = try #require(try await h.backend.getOrchestrationMetadata(instanceID: "a"))
        #expect(metadata.status == .failed)
        #expect(metadata.failure == failure)
        #expect(metadata.output == nil)
        #expect(metadata.input == Payload(json: "7"))
        #expect(metadata.customStatus == Payload(json: "{\"step\":3}"))
        #expect(metadata.createdAt == created)
        #expect(metadata.lastUpdatedAt == h.now)
        #expect(metadata.completedAt == h.now)
        #expect(metadata.parentInstanceID == nil)
    }

    static func continueAsNewResetsHistory(_ h: BackendHarness) async throws {
        try await h.create("a", input: "1")
        let carried = h.event("carried", "true")
        try await h.runEpisode("a") { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents, status: .continuedAsNew,
                continueAsNew: (h.startEvent(executionID: "exec-2", input: "2"), [carried]))
        }
        #expect(try await h.backend.getOrchestrationHistory(instanceID: "a").isEmpty)
        let metadata = try #require(try await h.backend.getOrchestrationMetadata(instanceID: "a"))
        #expect(metadata.executionID == "exec-2")
        #expect(metadata.input == Payload(json: "2"))
        #expect(!metadata.status.isTerminal)
        let item = try #require(try await h.lease())
        #expect(item.historyLength == 0)
        #expect(item.executionID == "exec-2")
        #expect(item.newEvents == [h.startEvent(executionID: "exec-2", input: "2"), carried])
    }

    static func subOrchestrationsAndMessages(_ h: BackendHarness) async throws {
        try await h.create("busy")
        try await h.create("parent")
        _ = try #require(try await h.lease())  // "busy" stays leased and running
        let parent = HistoryEvent.ParentInstance(instanceID: "parent", executionID: "exec-1", taskID: 4, name: "Orch")
        let child = NewOrchestrationInstance(instanceID: "child", startEvent: h.startEvent("Child", parent: parent))
        let clash = NewOrchestrationInstance(
            instanceID: "busy",
            startEvent: h.startEvent(
                "Child",
                parent:
                    HistoryEvent.ParentInstance(instanceID: "parent", executionID: "exec-1", taskID: 5, name: "Orch")))
        try await h.runEpisode("parent") { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents,
                messages: [
                    OrchestrationMessage(targetInstanceID: "nobody", event: h.event("lost")),
                    OrchestrationMessage(targetInstanceID: "child", event: h.event("hello"))
                ],
                newInstances: [child, clash], status: .running)
        }
        let childMetadata = try #require(try await h.backend.getOrchestrationMetadata(instanceID: "child"))
        #expect(childMetadata.parentInstanceID == "parent")
        #expect(childMetadata.name == "Child")
        #expect(try await h.backend.getOrchestrationMetadata(instanceID: "nobody") == nil)

        var items: [String: OrchestrationWorkItem] = [:]
        while let item = try await h.lease() { items[item.instanceID] = item }
        #expect(Set(items.keys) == ["child", "parent"])
        #expect(items["child"]?.newEvents.map(\.kindName) == ["executionStarted", "eventRaised"])
        let failed = try #require(items["parent"]?.newEvents.first)
        guard case let .subOrchestrationFailed(scheduledID, failure) = failed.kind else {
            Issue.record("expected subOrchestrationFailed, got \(failed)")
            return
        }
        #expect(scheduledID == 5)
        #expect(failure.errorType.contains("instanceAlreadyExists"))
    }

    static func waitForChangeWakesOnNewWorkAndTimesOut(_ h: BackendHarness) async throws {
        let generation = h.backend.changeGeneration(.orchestrationWork)
        try await h.create("a")
        // The generation moved, so this returns at once.
        await h.backend.waitForChange(.orchestrationWork, since: generation, timeout: .seconds(30))
        #expect(h.backend.changeGeneration(.orchestrationWork) != generation)

        let activityGeneration = h.backend.changeGeneration(.activityWork)
        let clock = ContinuousClock()
        let started = clock.now
        await h.backend.waitForChange(.activityWork, since: activityGeneration, timeout: .milliseconds(50))
        // Far below the 30 s of the wait below, far above 50 ms: on a loaded 2-core machine running the
        // whole suite at once, this 50 ms wait once returned after 5.08 s.
        #expect(clock.now - started < .seconds(20))

        let backend = h.backend
        let waiting = clock.now
        let waiter = Task {
            await backend.waitForChange(.activityWork, since: activityGeneration, timeout: .seconds(30))
            return ContinuousClock().now
        }
        try await Task.sleep(for: .milliseconds(20))
        try await h.scheduleOneActivity("a")
        let woke = await waiter.value
        // Woken by the new work, not by the 30 s timeout.
        #expect(woke - waiting < .seconds(20))
    }

    static func finishingEpisodeIsRejectedWhenEventsArrivedMeanwhile(_ h: BackendHarness) async throws {
        try await h.create("a")
        let item = try #require(try await h.lease())
        try await h.backend.addOrchestrationEvent(instanceID: "a", event: h.event("late"))
        let finished = OrchestrationWorkItemResult(newHistory: item.newEvents, status: .completed)
        await #expect(throws: DurableTaskError.self) {
            try await h.backend.completeOrchestrationWorkItem(item, result: finished)
        }
        #expect(try await h.backend.getOrchestrationMetadata(instanceID: "a")?.status == .pending, "nothing was committed")
        // A non-finishing episode may leave the late event for the next one.
        try await h.backend.completeOrchestrationWorkItem(item, result: OrchestrationWorkItemResult(newHistory: item.newEvents, status: .running))
        let next = try #require(try await h.lease())
        #expect(next.newEvents.map(\.kindName) == ["eventRaised"])
        try await h.backend.completeOrchestrationWorkItem(next, result: OrchestrationWorkItemResult(newHistory: next.newEvents, status: .completed))
        #expect(try await h.backend.getOrchestrationMetadata(instanceID: "a")?.status == .completed)
    }
}
