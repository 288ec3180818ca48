@_spi(Backend) import DurableTask
import Foundation
import Synchronization
import Testing

/// Defects found by trying the library as a new user and as an attacker would: each test failed
/// before its fix.
@Suite struct HardeningTests {
    let quiet = DurableTaskWorker.Options(logHandler: { _, _ in })

    // MARK: Terminate before the first episode

    @Test(arguments: TestBackend.allCases)
    func terminateBeforeTheFirstEpisodeEndsTheInstanceWithoutRunningIt(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let id = try await client.scheduleNewOrchestration(name: "AddsOne", input: 1)
        try await client.terminate(id, reason: "not wanted")
        let runs = Atomic<Int>(0)
        try await withWorker(
            backend: backend, options: quiet,
            register: { worker in
                worker.addOrchestrator(name: "AddsOne") { (_: OrchestrationContext, input: Int) -> Int in
                    runs.add(1, ordering: .relaxed)
                    return input + 1
                }
            }
        ) { client, _ in
            let metadata = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(metadata.status == .terminated)
            #expect(try metadata.output(as: String.self) == "not wanted")
            let ends = try await client.getHistory(id).compactMap { event -> OrchestrationStatus? in
                if case let .executionCompleted(status, _, _) = event.kind { return status }
                return nil
            }
            #expect(ends == [.terminated])
        }
        #expect(runs.load(ordering: .relaxed) == 0, "the orchestrator must not run")
    }

    // MARK: Poisoned work items

    @Test(arguments: TestBackend.allCases)
    func aParkedSubOrchestrationTellsItsParent(kind: TestBackend) async throws {
        let (inner, cleanup) = try kind.make()
        defer { cleanup() }
        // Every episode of the child fails to commit (the process survives), until it is parked.
        let backend = InstrumentedBackend(inner) { item, result in
            item.instanceID == "poisoned-child" && result.status != .failed
        }
        var options = quiet
        options.maxDeliveryCount = 2
        try await withWorker(
            backend: backend, options: options,
            register: { worker in
                registerAll(worker)
                worker.addOrchestrator(name: "ParentOfPoisoned") { (context: OrchestrationContext, input: Int) -> String in
                    do {
                        _ = try await context.callSubOrchestrator(SumOfSquares.self, input: input, instanceID: "poisoned-child").value
                        return "no failure"
                    } catch let error as TaskFailedError {
                        return "child failed: \(error.details.errorType): \(error.details.message)"
                    }
                }
            }
        ) { client, _ in
            let id = try await client.scheduleNewOrchestration(name: "ParentOfPoisoned", input: 2)
            let parent = try await client.waitForCompletion(id, timeout: .seconds(20))
            let output = try parent.output(as: String.self)
            #expect(output.contains("DurableTaskError.poisoned"), "\(output)")
            #expect(output.contains("after 2 failed attempts"), "\(output)")
            let child = try #require(try await client.getInstance("poisoned-child"))
            #expect(child.status == .failed)
            #expect(child.failure?.innerFailure?.message.contains("injected") == true)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func anOrchestrationDeliveredTooOftenIsParkedWithoutRunningItsCode(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let id = try await client.scheduleNewOrchestration(name: "KillsTheProcess", input: 0)
        // Three workers lease it and die before completing (their leases run out).
        for attempt in 1...3 {
            let item = try #require(try await backend.getOrchestrationWorkItem(owner: "dead-\(attempt)", leaseDuration: .seconds(60)))
            #expect(item.deliveryCount == attempt)
            clock.advance(by: 61)
        }
        var options = quiet
        options.maxDeliveryCount = 2
        let ordinary = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 3)
        try await withWorker(
            backend: backend, options: options,
            register: { worker in
                registerAll(worker)
                worker.addOrchestrator(name: "KillsTheProcess") { (_: OrchestrationContext, _: Int) -> Int in
                    fatalError("must not run: the item is past its delivery limit")
                }
            }
        ) { client, _ in
            let metadata = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(metadata.status == .failed)
            #expect(metadata.failure?.errorType == "DurableTaskError.poisoned")
            #expect(metadata.failure?.message.contains("after 4 deliveries") == true, "\(String(describing: metadata.failure))")
            #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: ordinary, timeout: .seconds(20)) == 14)
        }
    }

    // MARK: Waiting

    @Test(arguments: TestBackend.allCases)
    func waitingOnManyInstancesCostsReadsLinearInTheirNumber(kind: TestBackend) async throws {
        let (inner, cleanup) = try kind.make()
        defer { cleanup() }
        let backend = InstrumentedBackend(inner)
        let count = 300
        // A long poll interval: the reads counted are those that changes in this process cause.
        let client = DurableTaskClient(backend: backend, pollInterval: .seconds(60))
        try await withWorker(backend: backend, options: quiet, register: { registerAll($0) }) { _, _ in
            let ids = try await (0..<count).asyncMap { try await client.scheduleNewOrchestration(SumOfSquares.self, input: 2, instanceID: "wait-\($0)") }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in ids { group.addTask { try await client.waitForCompletion(id, timeout: .seconds(60)) } }
                try await group.waitForAll()
            }
        }
        // Each waiter reads once, then once per change of its own instance (started, finished): about
        // three reads each. A task-hub-wide wake-up made it one read per waiter per change: ~N² = 90,000.
        #expect(backend.metadataReads <= 5 * count, "\(backend.metadataReads) reads to wait for \(count) instances")
    }

    @Test(arguments: TestBackend.allCases)
    func waitingForTheEndIsNotWokenByTheEpisodesBefore(kind: TestBackend) async throws {
        let (inner, cleanup) = try kind.make()
        defer { cleanup() }
        let backend = InstrumentedBackend(inner)
        let client = DurableTaskClient(backend: backend, pollInterval: .seconds(60))
        try await withWorker(backend: backend, options: quiet, register: { registerAll($0) }) { _, _ in
            // Ten episodes (five activities, continued as new four times), none of them the end but the last.
            let id = try await client.scheduleNewOrchestration(Counter.self, input: 0)
            let before = backend.metadataReads
            let start = ContinuousClock.now
            #expect(try await client.waitForCompletion(Counter.self, instanceID: id, timeout: .seconds(30)) == 5)
            // One read before the wait, one after the end; each episode between woke it once before.
            // On a loaded machine the wait also re-reads every 5 s, as a guard against a lost wake-up.
            let rereads = Int((ContinuousClock.now - start) / .seconds(5))
            #expect(backend.metadataReads - before <= 2 + rereads, "\(backend.metadataReads - before) reads")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func anEpisodeLeasesItsActivitiesAloneOrNotAndLeavesUnregisteredOnesAlone(kind: TestBackend) async throws {
        let (inner, cleanup) = try kind.make()
        defer { cleanup() }
        let backend = InstrumentedBackend(inner)
        // Orchestrations one after another: most episodes lease the activity they schedule in their
        // own commit (one may not, when the previous one's task is
        // still ending). Every activity is leased exactly once, by one way or the other.
        try await withWorker(backend: backend, options: quiet, register: { registerAll($0) }) { client, _ in
            for index in 1...6 {
                let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 1, instanceID: "lone-\(index)")
                #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(30)) == 1)
            }
        }
        let leased = backend.activitiesLeased
        #expect(leased.eagerly >= 1, "\(leased)")
        #expect(leased.eagerly + leased.fetched == 6, "\(leased)")

        // Thirty at once, three activities each, far inside the worker's window: each scheduling
        // episode leases its own activities in its commit though others are in flight, so they stay
        // on this worker. The fetch loop may still win a race for a few.
        try await withWorker(backend: backend, options: quiet, register: { registerAll($0) }) { client, _ in
            var ids: [String] = []
            for index in 1...30 { ids.append(try await client.scheduleNewOrchestration(SumOfSquares.self, input: 3, instanceID: "busy-\(index)")) }
            for id in ids { #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(30)) == 14) }
        }
        let busy = (eagerly: backend.activitiesLeased.eagerly - leased.eagerly, fetched: backend.activitiesLeased.fetched - leased.fetched)
        #expect(busy.eagerly + busy.fetched == 90, "\(busy)")
        #expect(busy.eagerly >= 60, "\(busy)")

        // A small window holds, though thirty episodes lease at once: they claim its room between them.
        var small = quiet
        small.maxConcurrentActivities = 2
        small.activityPrefetch = 4
        let narrow = InstrumentedBackend(inner)
        try await withWorker(backend: narrow, options: small, register: { registerAll($0) }) { client, _ in
            var ids: [String] = []
            for index in 1...30 { ids.append(try await client.scheduleNewOrchestration(SumOfSquares.self, input: 3, instanceID: "narrow-\(index)")) }
            for id in ids { #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(30)) == 14) }
        }
        // The window is 4: the commits in flight together never ask for more (the fetch loop's own
        // batch, and results waiting for their commit, are not the episodes' to bound).
        #expect(narrow.peakEagerlyRequested <= 4, "\(narrow.peakEagerlyRequested) activities asked for at once")

        // A worker that runs only orchestrations leases no activities: another worker runs them.
        let before = backend.activitiesLeased
        try await withWorker(backend: backend, options: quiet, register: { $0.addOrchestrator(SumOfSquares()) }) { client, _ in
            try await withWorker(backend: backend, options: quiet, register: { $0.addActivity(Square()) }) { _, _ in
                let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 3, instanceID: "split")
                #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(30)) == 14)
            }
        }
        #expect(backend.activitiesLeased.eagerly == before.eagerly)
        #expect(backend.activitiesLeased.fetched == before.fetched + 3)
    }

    // MARK: Arguments refused at the call

    @Test(arguments: TestBackend.allCases)
    func controlCharactersInIDsAndNamesAreRefused(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        for id in ["a\0b", "tab\there", "new\nline", "", "bell\u{7}", "c1\u{85}"] {
            await expectInvalidArgument { try await client.scheduleNewOrchestration(SumOfSquares.self, input: 1, instanceID: id) }
            await expectInvalidArgument { _ = try await client.getInstance(id) }
            await expectInvalidArgument { try await client.terminate(id) }
            await expectInvalidArgument { try await client.raiseEvent(id, name: "e", data: 1) }
        }
        await expectInvalidArgument { try await client.scheduleNewOrchestration(name: "bad\0name", input: 1) }
        // Unicode that is not a control character is fine, and stored whole.
        let id = "über-✓-\u{1F600}"
        try await client.scheduleNewOrchestration(SumOfSquares.self, input: 1, instanceID: id)
        #expect(try await client.getInstance(id)?.instanceID == id)
        await expectInvalidArgument { try await client.raiseEvent(id, name: "a\0b", data: 1) }
        await expectInvalidArgument {
            try await client.scheduleNewOrchestration(SumOfSquares.self, input: 1, startAt: Date(timeIntervalSinceReferenceDate: .infinity))
        }
    }

    @Test(arguments: TestBackend.allCases)
    func nonFiniteTimersAndBadChildIDsFailTheirFutureOnly(kind: TestBackend) async throws {
        try await withFeatureWorker(
            kind, options: quiet,
            adding: { worker in
                worker.addOrchestrator(name: "BadArguments") { (context: OrchestrationContext, _: Int) -> [String] in
                    var errors: [String] = []
                    for date in [Date(timeIntervalSinceReferenceDate: .infinity), Date(timeIntervalSinceReferenceDate: .nan)] {
                        do { try await context.createTimer(fireAt: date).value } catch { errors.append("\(error)") }
                    }
                    do {
                        _ = try await context.callSubOrchestrator(SumOfSquares.self, input: 1, instanceID: "child\0x").value
                    } catch { errors.append("\(error)") }
                    // The instance goes on normally afterwards.
                    errors.append("\(try await context.callActivity(Square.self, input: 3).value)")
                    return errors
                }
            }
        ) { client in
            let id = try await client.scheduleNewOrchestration(name: "BadArguments", input: 0)
            let metadata = try await client.waitForCompletion(id, timeout: .seconds(20))
            let errors = try metadata.output(as: [String].self)
            #expect(errors.count == 4, "\(errors)")
            #expect(errors.prefix(3).allSatisfy { $0.contains("invalidArgument") }, "\(errors)")
            #expect(errors.last == "9")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func controlCharactersInActivityAndSubOrchestratorNamesFailTheirFutureOnly(kind: TestBackend) async throws {
        try await withFeatureWorker(
            kind, options: quiet,
            adding: { worker in
                worker.addOrchestrator(name: "BadNames") { (context: OrchestrationContext, _: Int) -> [String] in
                    var errors: [String] = []
                    // Stored cut at the NUL, these would run `Square` and `SumOfSquares`.
                    let retry = RetryPolicy(maxAttempts: 3, firstInterval: .seconds(1))
                    for policy in [nil, retry] {
                        do {
                            _ = try await context.callActivity("Square\0x", input: 3, returning: Int.self, retry: policy).value
                        } catch { errors.append("\(error)") }
                        do {
                            _ = try await context.callSubOrchestrator("SumOfSquares\0x", input: 3, returning: Int.self, retry: policy).value
                        } catch { errors.append("\(error)") }
                    }
                    do {
                        _ = try await context.callActivity("", input: 3, returning: Int.self).value
                    } catch { errors.append("\(error)") }
                    // The instance goes on normally afterwards.
                    errors.append("\(try await context.callActivity(Square.self, input: 3).value)")
                    return errors
                }
            }
        ) { client in
            let id = try await client.scheduleNewOrchestration(name: "BadNames", input: 0)
            let metadata = try await client.waitForCompletion(id, timeout: .seconds(20))
            let errors = try metadata.output(as: [String].self)
            #expect(errors.count == 6, "\(errors)")
            #expect(errors.prefix(5).allSatisfy { $0.contains("invalidArgument") }, "\(errors)")
            #expect(errors.last == "9")
            let scheduled = try await client.getHistory(id).compactMap { event -> String? in
                if case let .taskScheduled(name, _) = event.kind { return name }
                return nil
            }
            #expect(scheduled == ["Square"], "only the last call schedules anything")
        }
    }

    @Test func anErrorOnEveryPollIsLoggedOnceAWhileAndTheRecoveryOnce() async throws {
        let backend = InstrumentedBackend(InMemoryBackend())
        backend.failFetches(true)
        let lines = Mutex<[(LogLevel, String)]>([])
        let options = DurableTaskWorker.Options(
            pollInterval: .milliseconds(5),
            logHandler: { level, message in
                lines.withLock { $0.append((level, message)) }
            })
        try await withWorker(backend: backend, options: options, register: { registerAll($0) }) { client, _ in
            // Forty failed polls or more, both loops: each polled every 5 ms.
            try await eventually(timeout: .seconds(20), "forty failed polls") { backend.fetchFailures >= 40 }
            let errors = lines.withLock { $0.filter { $0.1.hasPrefix("could not fetch") } }
            #expect(errors.count == 2, "one line per loop in the window, not one per poll: \(errors.map(\.1))")
            backend.failFetches(false)
            // Working again: both loops say so once, and work goes on.
            let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 3)
            #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(20)) == 14)
            try await eventually(timeout: .seconds(20), "both loops recovered") {
                lines.withLock { $0.filter { $0.1.contains("works again") }.count } == 2
            }
        }
        let recovered = lines.withLock { $0.filter { $0.1.contains("works again") } }
        #expect(recovered.allSatisfy { $0.0 == .info && $0.1.contains("more times") }, "\(recovered.map(\.1))")
    }

    // MARK: Registration

    @Test(arguments: TestBackend.allCases)
    func registeringAfterTheWorkerStartedWorks(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(
            backend: backend, options: quiet,
            register: { worker in
                worker.addOrchestrator(name: "Warmup") { (_: OrchestrationContext, input: Int) -> Int in input }
            }
        ) { client, worker in
            // Once an instance has completed, the loops are running with the registry they started with.
            let warmup = try await client.scheduleNewOrchestration(name: "Warmup", input: 1)
            try await client.waitForCompletion(warmup, timeout: .seconds(20))
            worker.addOrchestrator(SumOfSquares())
            worker.addActivity(Square())
            let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 3)
            #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(20)) == 14)
        }
    }

    private func expectInvalidArgument(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected invalidArgument", sourceLocation: sourceLocation)
        } catch let error as DurableTaskError {
            #expect(error.code == .invalidArgument, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected DurableTaskError, got \(error)", sourceLocation: sourceLocation)
        }
    }
}

/// Forwards to another backend, counting metadata reads and failing the commit of chosen episodes
/// with a non-storage error (a failure the process survives).
final class InstrumentedBackend: Backend {
    let inner: any Backend
    let failCommit: @Sendable (OrchestrationWorkItem, OrchestrationWorkItemResult) -> Bool
    private let reads = Atomic<Int>(0)
    private let eager = Atomic<Int>(0)
    private let fetched = Atomic<Int>(0)
    private let failingFetches = Atomic<Bool>(false)
    private let failedFetches = Atomic<Int>(0)
    private let held = Mutex((now: 0, peak: 0))

    init(
        _ inner: any Backend,
        failCommit: @escaping @Sendable (OrchestrationWorkItem, OrchestrationWorkItemResult) -> Bool = { _, _ in false }
    ) {
        self.inner = inner
        self.failCommit = failCommit
    }

    /// While set, every lease fails with a storage error (the database went away).
    func failFetches(_ fail: Bool) { failingFetches.store(fail, ordering: .relaxed) }
    /// Leases that failed so.
    var fetchFailures: Int { failedFetches.load(ordering: .relaxed) }

    private func fetch() throws {
        guard failingFetches.load(ordering: .relaxed) else { return }
        failedFetches.add(1, ordering: .relaxed)
        throw DurableTaskError(.storage, "the database is gone (injected)")
    }

    /// How many times an instance's metadata was read.
    var metadataReads: Int { reads.load(ordering: .relaxed) }
    /// Activities leased in the commit of the episode that scheduled them, and by the fetch loop.
    var activitiesLeased: (eagerly: Int, fetched: Int) { (eager.load(ordering: .relaxed), fetched.load(ordering: .relaxed)) }
    /// The most activities asked for at once by episode commits that lease (eager dispatch).
    var peakEagerlyRequested: Int { held.withLock { $0.peak } }

    private func hold(_ change: Int) {
        held.withLock { held in
            held.now += change
            held.peak = max(held.peak, held.now)
        }
    }

    func watchInstance(_ instanceID: String) -> InstanceWatch { inner.watchInstance(instanceID) }

    var clock: any DurableClock { inner.clock }
    func createOrchestrationInstance(_ request: NewOrchestrationInstance) async throws { try await inner.createOrchestrationInstance(request) }
    func addOrchestrationEvent(instanceID: String, event: HistoryEvent) async throws {
        try await inner.addOrchestrationEvent(instanceID: instanceID, event: event)
    }
    func getOrchestrationWorkItem(owner: String, leaseDuration: Duration, includeRedelivered: Bool) async throws -> OrchestrationWorkItem? {
        try fetch()
        return try await inner.getOrchestrationWorkItem(owner: owner, leaseDuration: leaseDuration, includeRedelivered: includeRedelivered)
    }
    func getOrchestrationHistory(instanceID: String) async throws -> [HistoryEvent] {
        try await inner.getOrchestrationHistory(instanceID: instanceID)
    }
    func completeOrchestrationWorkItem(_ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult) async throws {
        if failCommit(item, result) { throw DurableTaskError(.corruptData, "injected commit failure") }
        try await inner.completeOrchestrationWorkItem(item, result: result)
    }
    func abandonOrchestrationWorkItem(_ item: OrchestrationWorkItem, delay: Duration, countsAsDelivery: Bool) async throws {
        // No back-off in tests: the failing item comes straight back.
        try await inner.abandonOrchestrationWorkItem(item, delay: .zero, countsAsDelivery: countsAsDelivery)
    }
    func completeOrchestrationWorkItem(
        _ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult, leasing lease: ActivityLeaseRequest
    ) async throws -> [ActivityWorkItem] {
        if failCommit(item, result) { throw DurableTaskError(.corruptData, "injected commit failure") }
        hold(lease.taskIDs.count)
        defer { hold(-lease.taskIDs.count) }
        let leased = try await inner.completeOrchestrationWorkItem(item, result: result, leasing: lease)
        eager.add(leased.count, ordering: .relaxed)
        return leased
    }
    func getActivityWorkItems(owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration) async throws -> [ActivityWorkItem] {
        try fetch()
        let items = try await inner.getActivityWorkItems(owner: owner, maxCount: maxCount, maxRedelivered: maxRedelivered, leaseDuration: leaseDuration)
        fetched.add(items.count, ordering: .relaxed)
        return items
    }
    func completeActivityWorkItems(_ completions: [ActivityCompletion]) async throws -> [Bool] {
        try await inner.completeActivityWorkItems(completions)
    }
    func abandonActivityWorkItem(_ item: ActivityWorkItem, delay: Duration) async throws {
        try await inner.abandonActivityWorkItem(item, delay: delay)
    }
    func renewActivityWorkItemLeases(_ items: [ActivityWorkItem], leaseDuration: Duration) async throws -> [Bool] {
        try await inner.renewActivityWorkItemLeases(items, leaseDuration: leaseDuration)
    }
    func getOrchestrationMetadata(instanceID: String) async throws -> OrchestrationMetadata? {
        reads.add(1, ordering: .relaxed)
        return try await inner.getOrchestrationMetadata(instanceID: instanceID)
    }
    func queryOrchestrations(_ query: OrchestrationQuery) async throws -> OrchestrationQueryResult {
        try await inner.queryOrchestrations(query)
    }
    func purgeOrchestration(instanceID: String) async throws -> Bool { try await inner.purgeOrchestration(instanceID: instanceID) }
    func purgeOrchestrations(_ filter: PurgeFilter) async throws -> Int { try await inner.purgeOrchestrations(filter) }
    func waitForChange(_ change: BackendChange, since generation: UInt64, timeout: Duration) async {
        await inner.waitForChange(change, since: generation, timeout: timeout)
    }
    func changeGeneration(_ change: BackendChange) -> UInt64 { inner.changeGeneration(change) }
}
