@_spi(Backend) import DurableTask
import Foundation
import Testing

/// The feature set (timers, events, sub-orchestrations, retries, continue-as-new, management), through worker + client, on every backend.
@Suite struct FeatureTests {
    let quiet = DurableTaskWorker.Options(logHandler: { _, _ in })

    // MARK: Core behaviour end to end

    @Test(arguments: TestBackend.allCases)
    func activityFailureReachesTheOrchestrator(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(CatchesFailure.self, input: 1)
            let output = try await client.waitForCompletion(CatchesFailure.self, instanceID: id, timeout: .seconds(20))
            #expect(output.contains("Fail failed"))
            #expect(output.contains("boom"))
        }
    }

    @Test(arguments: TestBackend.allCases)
    func customStatusIsVisibleWhileRunning(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let gate = AsyncGate()
        try await withWorker(backend: backend, register: { registerAll($0, gate: gate) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(ProgressOrchestrator.self, input: 3)
            try await eventually("custom status 1/2") {
                try await client.getInstance(id)?.customStatus(as: String.self) == "1/2 counted"
            }
            #expect(try await client.getInstance(id)?.status == .running)
            await gate.release()
            let done = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(try done.output(as: Int.self) == 9)
            #expect(try done.customStatus(as: String.self) == "2/2 counted")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func userErrorsFailTheInstanceNotTheWorker(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let unknown = try await client.scheduleNewOrchestration(name: "NoSuchOrchestrator", input: 1)
            let badInput = try await client.scheduleNewOrchestration(name: SumOfSquares.name, input: "not a number")
            let throwing = try await client.scheduleNewOrchestration(Throws.self, input: 0)
            let unknownActivity = try await client.scheduleNewOrchestration(CallsUnknownActivity.self, input: 0)

            let a = try await client.waitForCompletion(unknown, timeout: .seconds(20))
            #expect(a.status == .failed)
            #expect(a.failure?.message.contains("no orchestrator named 'NoSuchOrchestrator'") == true)
            let b = try await client.waitForCompletion(badInput, timeout: .seconds(20))
            #expect(b.status == .failed)
            #expect(b.failure?.message.contains("could not be decoded as Int") == true)
            let c = try await client.waitForCompletion(throwing, timeout: .seconds(20))
            #expect(c.status == .failed)
            #expect(c.failure?.message == "oops from the orchestrator")
            let d = try await client.waitForCompletion(CallsUnknownActivity.self, instanceID: unknownActivity, timeout: .seconds(20))
            #expect(d.contains("no activity named 'NoSuchActivity'"))

            // The worker is still healthy.
            let ok = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 3)
            #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: ok, timeout: .seconds(20)) == 14)
        }
    }

    // MARK: Timers

    @Test(arguments: TestBackend.allCases)
    func durableTimerFiresOnTimeNeverEarly(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(TimerOrchestrator.self, input: 3600)
            try await eventually("timer created") { try await historyContains(client, id, "timerCreated") }
            clock.advance(by: 3599)
            // An event makes the worker run an episode at this time: had the timer been due, it would
            // have been delivered in that episode or an earlier one.
            try await client.raiseEvent(id, name: "probe", data: 0)
            try await eventually("probe recorded") { try await historyContains(client, id, "eventRaised") }
            #expect(try await !historyContains(client, id, "timerFired"), "the timer must not fire early")
            #expect(try await client.getInstance(id)?.status == .running)
            clock.advance(by: 1)
            let result = try await client.waitForCompletion(TimerOrchestrator.self, instanceID: id, timeout: .seconds(20))
            #expect(result[1] >= result[0])
        }
    }

    @Test(arguments: TestBackend.allCases)
    func whenAnyOfTimerAndEventWorksAsATimeout(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        let approved = "approved-\(kind)"
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let timedOut = try await client.scheduleNewOrchestration(TimeoutRace.self, input: 60)
            try await client.scheduleNewOrchestration(TimeoutRace.self, input: 60, instanceID: approved)
            try await eventually("timers created") {
                let a = try await historyContains(client, timedOut, "timerCreated")
                let b = try await historyContains(client, approved, "timerCreated")
                return a && b
            }
            try await client.raiseEvent(approved, name: "approval", data: "alice")
            #expect(try await client.waitForCompletion(TimeoutRace.self, instanceID: approved, timeout: .seconds(20)) == "approved by alice")
            clock.advance(by: 61)
            #expect(try await client.waitForCompletion(TimeoutRace.self, instanceID: timedOut, timeout: .seconds(20)) == "timed out")
        }
        // The approved instance's timer came due after it finished: it must not run or complete again.
        // With the worker stopped (every episode it leased has committed), nothing may be left to lease.
        #expect(try await backend.getOrchestrationWorkItem(owner: "probe", leaseDuration: .seconds(60)) == nil)
        let history = try await DurableTaskClient(backend: backend).getHistory(approved)
        #expect(history.filter { $0.kindName == "executionCompleted" }.count == 1)
        #expect(!history.contains { $0.kindName == "timerFired" })
    }

    // MARK: External events

    @Test(arguments: TestBackend.allCases)
    func eventsWithTheSameNameArriveInOrder(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(EventCollector.self, input: 5)
            for value in 1...5 { try await client.raiseEvent(id, name: "item", data: value) }
            #expect(try await client.waitForCompletion(EventCollector.self, instanceID: id, timeout: .seconds(20)) == [1, 2, 3, 4, 5])
        }
    }

    @Test(arguments: TestBackend.allCases)
    func eventRaisedBeforeTheWaitIsBuffered(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(EventAfterTimer.self, input: 10)
            try await eventually("timer created") { try await historyContains(client, id, "timerCreated") }
            try await client.raiseEvent(id, name: "greeting", data: "hello")
            try await eventually("event recorded") { try await historyContains(client, id, "eventRaised") }
            clock.advance(by: 10)
            #expect(try await client.waitForCompletion(EventAfterTimer.self, instanceID: id, timeout: .seconds(20)) == "hello")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func waitForExternalEventTimesOutWithACatchableError(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(EventWithTimeout.self, input: 30)
            try await eventually("timer created") { try await historyContains(client, id, "timerCreated") }
            clock.advance(by: 30)
            let output = try await client.waitForCompletion(EventWithTimeout.self, instanceID: id, timeout: .seconds(20))
            #expect(output.hasPrefix("timeout: "))
            #expect(output.contains("no event 'never'"))
        }
    }

    @Test(arguments: TestBackend.allCases)
    func eventForAFinishedInstanceIsReported(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 2)
            try await client.waitForCompletion(id, timeout: .seconds(20))
            await #expect(throws: DurableTaskError.self) {
                try await client.raiseEvent(id, name: "late", data: 1)
            }
            await #expect(throws: DurableTaskError.self) {
                try await client.raiseEvent("no-such-instance", name: "late", data: 1)
            }
        }
    }

    @Test(arguments: TestBackend.allCases)
    func raiseEventRacingCompletionIsEitherRecordedOrRejected(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let ids = (0..<20).map { "race-\($0)" }
            for id in ids { try await client.scheduleNewOrchestration(EventCollector.self, input: 1, instanceID: id) }
            // Two events each: the first completes the instance; the second races the completion.
            var accepted: [String: Int] = [:]
            for round in 0..<2 {
                for id in ids {
                    do {
                        try await client.raiseEvent(id, name: "item", data: round)
                        accepted[id, default: 0] += 1
                    } catch let error as DurableTaskError {
                        #expect(error.code == .invalidState)
                    }
                }
            }
            for id in ids {
                let done = try await client.waitForCompletion(id, timeout: .seconds(20))
                #expect(try done.output(as: [Int].self) == [0])
                let raisedInHistory = try await client.getHistory(id).filter { $0.kindName == "eventRaised" }.count
                #expect(raisedInHistory == accepted[id], "every accepted event is in history, none silently dropped")
            }
        }
    }

    // MARK: Sub-orchestrations

    @Test(arguments: TestBackend.allCases)
    func subOrchestrationResultAndParentLink(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(Parent.self, input: 3, instanceID: "parent-1")
            #expect(try await client.waitForCompletion(Parent.self, instanceID: id, timeout: .seconds(20)) == 15)
            let child = try #require(try await client.getInstance("parent-1-child"))
            #expect(child.parentInstanceID == "parent-1")
            #expect(child.status == .completed)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func subOrchestrationFailurePropagates(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(ParentOfFailingChild.self, input: 1)
            let output = try await client.waitForCompletion(ParentOfFailingChild.self, instanceID: id, timeout: .seconds(20))
            #expect(output.hasPrefix("child failed: "))
            #expect(output.contains("boom"))
        }
    }

    // MARK: Retries

    @Test(arguments: TestBackend.allCases)
    func retryPolicyRetriesUntilSuccessOnDurableTimers(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let ledger = Ledger()
        try await withWorker(backend: backend, register: { registerAll($0, ledger: ledger) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(
                RetryingOrchestrator.self, input: .init(failures: 2, maxAttempts: 5))
            #expect(try await client.waitForCompletion(RetryingOrchestrator.self, instanceID: id, timeout: .seconds(20)) == "succeeded on attempt 3")
            let timers = try await client.getHistory(id).filter { $0.kindName == "timerCreated" }.count
            #expect(timers == 2)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func retryPolicyGivesUpAfterMaxAttemptsOrWhenThePredicateSaysNo(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let ledger = Ledger()
        try await withWorker(backend: backend, register: { registerAll($0, ledger: ledger) }) { client, _ in
            let exhausted = try await client.scheduleNewOrchestration(RetryingOrchestrator.self, input: .init(failures: 10, maxAttempts: 3))
            let filtered = try await client.scheduleNewOrchestration(
                RetryingOrchestrator.self, input: .init(failures: 10, maxAttempts: 3, retryOnlyIfMessageContains: "transient"))
            #expect(try await client.waitForCompletion(RetryingOrchestrator.self, instanceID: exhausted, timeout: .seconds(20)) == "gave up: boom")
            #expect(try await client.waitForCompletion(RetryingOrchestrator.self, instanceID: filtered, timeout: .seconds(20)) == "gave up: boom")
            #expect(await ledger.count(exhausted) == 3)
            #expect(await ledger.count(filtered) == 1)

        }
    }

    // MARK: Continue-as-new

    @Test(arguments: TestBackend.allCases)
    func continueAsNewRestartsWithFreshHistory(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(Counter.self, input: 0)
            #expect(try await client.waitForCompletion(Counter.self, instanceID: id, timeout: .seconds(20)) == 5)
            let history = try await client.getHistory(id)
            #expect(history.filter { $0.kindName == "executionStarted" }.count == 1)
            #expect(history.count < 10, "history of the last generation only")
            #expect(try await client.getInstance(id)?.input(as: Int.self) == 5)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func continueAsNewCarriesUnprocessedEvents(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(EternalAccumulator.self, input: 0)
            for value in 1...3 { try await client.raiseEvent(id, name: "inc", data: value) }
            #expect(try await client.waitForCompletion(EternalAccumulator.self, instanceID: id, timeout: .seconds(20)) == 6)
        }
    }

    // MARK: Instance management

    @Test(arguments: TestBackend.allCases)
    func terminateEndsTheInstanceAndItsChildren(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(ParentOfWaiter.self, input: 0, instanceID: "p-term")
            try await eventually("child started") { try await client.getInstance("p-term-child")?.status == .running }
            try await client.terminate(id, reason: "no longer needed")
            let parent = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(parent.status == .terminated)
            #expect(try parent.output(as: String.self) == "no longer needed")
            let child = try await client.waitForCompletion("p-term-child", timeout: .seconds(20))
            #expect(child.status == .terminated)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func suspendedInstanceKeepsEventsUntilResumed(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(EventCollector.self, input: 1)
            try await client.waitForStart(id, timeout: .seconds(20))
            try await client.suspend(id, reason: "maintenance")
            try await eventually("suspended") { try await client.getInstance(id)?.status == .suspended }
            try await client.raiseEvent(id, name: "item", data: 42)
            // Recorded in an episode that kept the instance suspended, not delivered to the code.
            try await eventually("event recorded") { try await historyContains(client, id, "eventRaised") }
            #expect(try await client.getInstance(id)?.status == .suspended)
            try await client.resume(id)
            #expect(try await client.waitForCompletion(EventCollector.self, instanceID: id, timeout: .seconds(20)) == [42])
        }
    }

    @Test(arguments: TestBackend.allCases)
    func purgeQueryAndDuplicateIDs(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, register: { registerAll($0) }) { client, _ in
            for i in 0..<5 { try await client.scheduleNewOrchestration(SumOfSquares.self, input: i + 1, instanceID: "q-\(i)") }
            try await client.scheduleNewOrchestration(WaitsForever.self, input: 0, instanceID: "w-0")
            for i in 0..<5 { try await client.waitForCompletion("q-\(i)", timeout: .seconds(20)) }
            try await client.waitForStart("w-0", timeout: .seconds(20))

            await #expect(throws: DurableTaskError.self) {
                try await client.scheduleNewOrchestration(SumOfSquares.self, input: 1, instanceID: "w-0")
            }
            await #expect(throws: DurableTaskError.self) {
                try await client.scheduleNewOrchestration(SumOfSquares.self, input: 1, instanceID: "q-0")
            }
            try await client.scheduleNewOrchestration(SumOfSquares.self, input: 2, instanceID: "q-0", replaceIfFinished: true)
            #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: "q-0", timeout: .seconds(20)) == 5)

            let completed = try await client.query(OrchestrationQuery(statuses: [.completed], instanceIDPrefix: "q-"))
            #expect(completed.instances.map(\.instanceID) == ["q-0", "q-1", "q-2", "q-3", "q-4"])
            let page1 = try await client.query(OrchestrationQuery(instanceIDPrefix: "q-", pageSize: 2))
            let page2 = try await client.query(OrchestrationQuery(instanceIDPrefix: "q-", pageSize: 2, continuationToken: page1.continuationToken))
            #expect(page1.instances.map(\.instanceID) == ["q-0", "q-1"])
            #expect(page2.instances.map(\.instanceID) == ["q-2", "q-3"])
            let running = try await client.query(OrchestrationQuery(statuses: [.running], name: WaitsForever.name))
            #expect(running.instances.map(\.instanceID) == ["w-0"])
            let created = try #require(try await client.getInstance("w-0")).createdAt
            let fromW0 = try await client.query(OrchestrationQuery(createdFrom: created, instanceIDPrefix: "w-"))
            #expect(fromW0.instances.map(\.instanceID) == ["w-0"])
            let beforeW0 = try await client.query(OrchestrationQuery(createdTo: created, instanceIDPrefix: "w-"))
            #expect(beforeW0.instances.isEmpty)

            await #expect(throws: DurableTaskError.self) { try await client.purge("w-0") }
            #expect(try await client.purge("q-0"))
            #expect(try await client.getInstance("q-0") == nil)
            let purged = try await client.purge(PurgeFilter(createdBefore: Date().addingTimeInterval(60), statuses: [.completed]))
            #expect(purged == 4)
            #expect(try await client.query(OrchestrationQuery(instanceIDPrefix: "q-")).instances.isEmpty)
            #expect(try await client.getInstance("w-0")?.status == .running)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func oversizedPayloadsFailAtTheCallThatProducedThem(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let options = DurableTaskWorker.Options(maxPayloadBytes: 1000, logHandler: { _, _ in })
        try await withWorker(backend: backend, options: options, register: { registerAll($0) }) { client, _ in
            let id = try await client.scheduleNewOrchestration(BigPayload.self, input: 5000)
            let output = try await client.waitForCompletion(BigPayload.self, instanceID: id, timeout: .seconds(20))
            #expect(output.hasPrefix("payloadTooLarge: input of activity 'Echo'"))
            // An activity whose output is too large fails with a non-retriable TaskFailedError.
            let bigOutput = try await client.scheduleNewOrchestration(EchoesBack.self, input: 5000)
            let echoed = try await client.waitForCompletion(EchoesBack.self, instanceID: bigOutput, timeout: .seconds(20))
            #expect(echoed.hasPrefix("failed, retriable false: output of activity 'Inflate'"), "\(echoed)")
            // An orchestrator whose output is too large fails the instance.
            let bigResult = try await client.scheduleNewOrchestration(ReturnsBig.self, input: 5000)
            let failed = try await client.waitForCompletion(bigResult, timeout: .seconds(20))
            #expect(failed.status == .failed)
            #expect(failed.failure?.message.contains("output of orchestrator 'ReturnsBig'") == true)
            #expect(failed.failure?.errorType == "DurableTaskError.payloadTooLarge")
            // The client refuses oversized inputs and event data before anything is stored.
            let small = DurableTaskClient(backend: backend, maxPayloadBytes: 100)
            try await small.scheduleNewOrchestration(BigPayload.self, input: 1, instanceID: "too-big")
            await #expect(throws: DurableTaskError.self) {
                try await small.scheduleNewOrchestration(name: "BigPayload", input: String(repeating: "z", count: 500))
            }
            await #expect(throws: DurableTaskError.self) {
                try await small.raiseEvent("too-big", name: "x", data: String(repeating: "y", count: 500))
            }
        }
    }

    // MARK: Restarts

    @Test(arguments: TestBackend.allCases)
    func timersEventsAndSubOrchestrationsSurviveAWorkerRestart(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let timer = try await client.scheduleNewOrchestration(TimerOrchestrator.self, input: 100)
        let event = try await client.scheduleNewOrchestration(EventAfterTimer.self, input: 5)
        let parent = try await client.scheduleNewOrchestration(ParentOfWaiter.self, input: 0, instanceID: "restart-parent")

        let first = DurableTaskWorker(backend: backend, options: quiet)
        registerAll(first)
        let running = Task { await first.run() }
        try await eventually("first worker made progress") {
            let a = try await historyContains(client, timer, "timerCreated")
            let b = try await historyContains(client, event, "timerCreated")
            let c = try await client.getInstance("restart-parent-child")?.status == .running
            return a && b && c
        }
        first.stop()
        await running.value

        try await client.raiseEvent(event, name: "greeting", data: "after restart")
        try await client.raiseEvent("restart-parent-child", name: "never", data: 7)
        clock.advance(by: 100)

        try await withWorker(backend: backend, register: { registerAll($0) }) { client, worker in
            let times = try await client.waitForCompletion(TimerOrchestrator.self, instanceID: timer, timeout: .seconds(20))
            #expect(times[1] >= times[0])
            #expect(try await client.waitForCompletion(EventAfterTimer.self, instanceID: event, timeout: .seconds(20)) == "after restart")
            #expect(try await client.waitForCompletion(ParentOfWaiter.self, instanceID: parent, timeout: .seconds(20)) == 7)
            #expect(worker.statistics.eventsReplayed > 0, "the new worker replayed from history")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func aLongActivityKeepsItsLeaseAndRunsOnce(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let ledger = Ledger()
        // Two workers compete; the activity runs 4 s with 2 s leases (renewed every 2/3 s), so only
        // renewal keeps the second worker from taking it over and running it again.
        let options = DurableTaskWorker.Options(
            orchestrationLeaseDuration: .seconds(2), activityLeaseDuration: .seconds(2),
            pollInterval: .milliseconds(50), logHandler: { _, _ in })
        let other = DurableTaskWorker(backend: backend, options: options)
        other.addOrchestrator(CallsSlow())
        other.addActivity(Slow(ledger: ledger))
        let otherRun = Task { await other.run() }
        defer { otherRun.cancel() }
        try await withWorker(
            backend: backend, options: options,
            register: {
                $0.addOrchestrator(CallsSlow())
                $0.addActivity(Slow(ledger: ledger))
            }
        ) { client, _ in
            let id = try await client.scheduleNewOrchestration(CallsSlow.self, input: 5)
            #expect(try await client.waitForCompletion(CallsSlow.self, instanceID: id, timeout: .seconds(20)) == 5)
            #expect(await ledger.count("slow-\(id)") == 1, "the lease was renewed, so nobody ran it twice")
        }
        other.stop()
        await otherRun.value
    }

    @Test(arguments: TestBackend.allCases)
    func retryPolicyStopsAtItsOverallTimeout(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        let ledger = Ledger()
        try await withWorker(backend: backend, register: { registerAll($0, ledger: ledger) }) { client, _ in
            // Attempt 1 fails; the 10 ms retry fits a 15 ms overall timeout, the next one (20 ms later) does not.
            let id = try await client.scheduleNewOrchestration(
                RetryingOrchestrator.self, input: .init(failures: 10, maxAttempts: 10, overallTimeoutMilliseconds: 15))
            try await eventually("retry timer created") { try await historyContains(client, id, "timerCreated") }
            clock.advance(by: 0.010)
            #expect(try await client.waitForCompletion(RetryingOrchestrator.self, instanceID: id, timeout: .seconds(20)) == "gave up: boom")
            #expect(await ledger.count(id) == 2)
        }
    }
}
