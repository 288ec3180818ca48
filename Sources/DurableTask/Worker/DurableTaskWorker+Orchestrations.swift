import Foundation
import Synchronization

// Orchestration dispatch: lease work items, run their episodes on cached or replayed engines, commit
// them; and the poison policy for items that cannot be processed.
extension DurableTaskWorker {
    // MARK: Orchestrations

    /// Leases ready instances in batches, up to ``DurableTaskWorker/Options/maxConcurrentOrchestrations``
    /// in flight, and runs each episode in a task of its own. One leaser per worker: loops that each
    /// leased one item all raced for the same ready row on every change, and a backend made one lease
    /// transaction per episode; a batch of what is ready costs one.
    ///
    /// - Parameter redelivery: set while the worker runs a redelivery — an episode or an activity whose
    ///   previous delivery ended without a result, maybe because it crashed the process. Only one runs
    ///   at a time, so if it crashes the process again, the other items in flight are fresh ones whose
    ///   count the crash does not push towards the poison limit: the count singles out the culprit.
    func orchestrationDispatcher(
        orchestrators: [String: OrchestratorEntry], engineOptions: EngineOptions, cache: OrchestrationCache,
        redelivery: Flag, intake: ActivityIntake, orchestrationIntake: OrchestrationIntake
    ) async {
        // The snapshot serves the hot path; a name registered after `run()` started is found in the
        // live registry.
        let resolve: @Sendable (String) -> OrchestratorEntry? = { name in
            orchestrators[name] ?? self.registry.withLock { $0.orchestrators[name] }
        }
        let slots = orchestrationIntake.slots
        let fetchLog = RepeatedLog("fetching orchestration work items", handler: options.logHandler)
        await withDiscardingTaskGroup { group in
            // Instances leased by the commits of activity results: their slots are taken already.
            group.addTask {
                await withDiscardingTaskGroup { leasedByResults in
                    while let item = await orchestrationIntake.queue.pop() {
                        leasedByResults.addTask {
                            await self.process(item, resolve: resolve, engineOptions: engineOptions, cache: cache, intake: intake)
                            slots.release()
                        }
                    }
                }
            }
            // Episodes in flight finish; the commits of results lease nothing more.
            defer { orchestrationIntake.queue.close() }
            while !Task.isCancelled {
                let freedGeneration = slots.generation
                let free = slots.free
                guard free > 0 else {
                    await slots.waitForFree(since: freedGeneration, timeout: options.pollInterval)
                    continue
                }
                let generation = backend.changeGeneration(.orchestrationWork)
                // A worker that runs only activities leaves the orchestrations to the workers that have
                // them, rather than failing them as unregistered.
                // (A plain sleep: a wait for work would wake at once for a timer that is due but not ours.)
                if orchestrators.isEmpty && registry.withLock({ $0.orchestrators.isEmpty }) {
                    try? await Task.sleep(for: options.pollInterval)
                    continue
                }
                // The slot is taken before leasing, so no two leases can take a redelivery at once.
                let mayTakeRedelivery = redelivery.trySet()
                let items: [OrchestrationWorkItem]
                do {
                    items = try await backend.getOrchestrationWorkItems(
                        owner: options.workerID, maxCount: free, maxRedelivered: mayTakeRedelivery ? 1 : 0,
                        leaseDuration: options.orchestrationLeaseDuration)
                } catch {
                    if mayTakeRedelivery { redelivery.clear() }
                    fetchLog.error("could not fetch orchestration work items: \(error)")
                    try? await Task.sleep(for: options.pollInterval)
                    continue
                }
                fetchLog.recovered()
                if mayTakeRedelivery && !items.contains(where: { Redelivery.isRedelivery(leasedCount: $0.deliveryCount) }) {
                    redelivery.clear()
                }
                slots.take(items.count)
                for item in items {
                    group.addTask {
                        await self.process(item, resolve: resolve, engineOptions: engineOptions, cache: cache, intake: intake)
                        if Redelivery.isRedelivery(leasedCount: item.deliveryCount) { redelivery.clear() }
                        slots.release()
                    }
                }
                // Fewer than asked for: nothing else was ready when the lease ran, so the next lease
                // waits for a change since then (an empty lease is a transaction too).
                if items.count < free {
                    await backend.waitForChange(.orchestrationWork, since: generation, timeout: options.pollInterval)
                }
            }
        }
    }

    func process(
        _ item: OrchestrationWorkItem, resolve: @escaping @Sendable (String) -> OrchestratorEntry?,
        engineOptions: EngineOptions, cache: OrchestrationCache, intake: ActivityIntake
    ) async {
        // Checked at lease time, before any user code runs: an item whose deliveries keep taking the
        // process down (a fatalError, a stack overflow) never reaches the failure handling below.
        if item.deliveryCount > options.maxDeliveryCount {
            await cache.checkOut(item.instanceID)?.tearDown()
            cache.release(item.instanceID)
            await park(item, engineOptions: engineOptions, cause: nil)
            return
        }
        var cachedEngine = await cache.checkOut(item.instanceID)
        if let cached = cachedEngine, cached.historyLength != item.historyLength || cached.executionID != item.executionID {
            // Another worker advanced the instance (or it continued as new): the cached state is stale.
            cached.tearDown()
            cachedEngine = nil
        }
        let result: OrchestrationWorkItemResult
        let engine: ReplayEngine
        do {
            if let cachedEngine {
                engine = cachedEngine
            } else {
                // A new instance has no history to read: its first episode skips the round trip
                // (one per instance, on every backend). The lease fences the length.
                let history = item.historyLength == 0 ? [] : try await backend.getOrchestrationHistory(instanceID: item.instanceID)
                engine = ReplayEngine(instanceID: item.instanceID, options: engineOptions, resolveOrchestrator: resolve)
                engine.replay(history)
                counters.eventsReplayed.add(history.count, ordering: .relaxed)
            }
            result = engine.runEpisode(newEvents: item.newEvents, now: backend.clock.now())
        } catch {
            cache.release(item.instanceID)
            await handleUnprocessable(item, error: error, engineOptions: engineOptions)
            return
        }
        if let changeID = engine.changeNewerThanCode {
            engine.tearDown()
            cache.release(item.instanceID)
            await handBackToNewerCode(item, changeID: changeID)
            return
        }
        counters.eventsApplied.add(item.newEvents.count, ordering: .relaxed)
        do {
            if let lease = intake.request(
                for: result, owner: options.workerID, leaseDuration: options.activityLeaseDuration)
            {
                // After accept: for a moment the items count twice, never not at all.
                defer { intake.release(lease) }
                let leased = try await backend.completeOrchestrationWorkItem(item, result: result, leasing: lease)
                if !intake.accept(leased) {
                    // The worker stopped while the episode committed: hand them back, as the fetch loop does.
                    for activity in leased { try? await backend.abandonActivityWorkItem(activity, delay: .zero) }
                }
            } else {
                try await backend.completeOrchestrationWorkItem(item, result: result)
            }
            counters.episodes.add(1, ordering: .relaxed)
            engine.committed(result)
            if engine.isFinished {
                engine.tearDown()
                cache.release(item.instanceID)
            } else {
                cache.checkIn(engine)
            }
        } catch {
            engine.tearDown()
            cache.release(item.instanceID)
            if let error = error as? DurableTaskError, error.code == .leaseLost {
                options.logHandler(.warning, "episode of instance '\(item.instanceID)' not committed: \(error.message)")
                return
            }
            if let error = error as? DurableTaskError, error.code == .newEventsArrived {
                // Not a failure: run the episode again at once, now including the late events.
                try? await backend.abandonOrchestrationWorkItem(item, delay: .zero, countsAsDelivery: false)
                return
            }
            await handleUnprocessable(item, error: error, engineOptions: engineOptions)
        }
    }

    /// How long an instance recorded by newer code stays away from the workers after one hands it back:
    /// long enough that a worker with older code does not spin on it, short enough that the instance
    /// barely waits once a newer worker runs.
    static let newerCodeRetryDelay = Duration.seconds(5)

    /// Hands back an instance whose history records a change this worker's code predates — its
    /// `versionMarker` stands where the code did something else — rather than failing it for
    /// nondeterminism: during a rolling deploy a worker with the change takes it (as Temporal retries a
    /// workflow task that an old worker cannot replay). The delivery does not count, so the instance is
    /// never parked for it; if no worker with the change ever runs (the call was deleted too early),
    /// the instance stays running and the warning repeats until code with the call is deployed.
    func handBackToNewerCode(_ item: OrchestrationWorkItem, changeID: String) async {
        options.logHandler(
            .warning,
            "instance '\(item.instanceID)': this worker's code predates change '\(changeID)' recorded in the history; "
                + "leaving it to a worker with newer code")
        try? await backend.abandonOrchestrationWorkItem(item, delay: Self.newerCodeRetryDelay, countsAsDelivery: false)
    }

    /// An episode that could not be loaded or committed: retry with back-off, and after
    /// `maxDeliveryCount` attempts park the instance as failed with the error visible.
    func handleUnprocessable(_ item: OrchestrationWorkItem, error: any Error, engineOptions: EngineOptions) async {
        options.logHandler(.error, "instance '\(item.instanceID)': episode failed (attempt \(item.deliveryCount)): \(error)")
        // A storage failure (disk full, database locked, I/O error) says nothing about the instance:
        // parking it would turn a passing outage into a permanent failure. Keep retrying with back-off,
        // and do not count the delivery.
        let isStorageFailure = (error as? DurableTaskError)?.code == .storage
        if item.deliveryCount >= options.maxDeliveryCount && !isStorageFailure {
            if await park(item, engineOptions: engineOptions, cause: error) { return }
        }
        let delay = Duration.milliseconds(min(30_000, 100 << min(item.deliveryCount, 8)))
        try? await backend.abandonOrchestrationWorkItem(item, delay: delay, countsAsDelivery: !isStorageFailure)
    }

    /// Ends the instance as failed ("poisoned") without running its code, through the engine's own
    /// ending: history gets `executionCompleted(failed)` and a parent gets `subOrchestrationFailed`.
    /// - Parameter cause: the last error, when the process survived it; `nil` when the item was leased
    ///   more than `maxDeliveryCount` times without completing (the process died on it).
    /// - Returns: whether the ending was committed.
    @discardableResult
    func park(_ item: OrchestrationWorkItem, engineOptions: EngineOptions, cause: (any Error)?) async -> Bool {
        let deliveries = item.deliveryCount
        let reason =
            cause.map { "after \(deliveries) failed attempts to process its events; last error: \($0)" }
            ?? "after \(deliveries) deliveries of its events without completing (the process processing them "
            + "stopped each time, e.g. a crash in orchestrator code)"
        let poison = DurableTaskError(.poisoned, "instance '\(item.instanceID)' was poisoned: parked as failed \(reason)")
        let failure = FailureDetails(
            errorType: "DurableTaskError.poisoned", message: poison.message, isRetriable: false,
            inner: cause.map { FailureDetails(error: $0) })
        options.logHandler(.error, poison.message)
        do {
            // Only the start event (name, parent) is read from history; the orchestrator is not replayed.
            let started = item.newEvents.contains { if case .executionStarted = $0.kind { true } else { false } }
            var history: [HistoryEvent] = []
            if !started {
                do {
                    history = try await backend.getOrchestrationHistory(instanceID: item.instanceID)
                } catch let error as DurableTaskError where error.code == .corruptData {
                    // The history itself may be what cannot be processed: park without reading it.
                    // A parent, if any, is then not told (its reference is in the unreadable start event).
                    options.logHandler(.error, "instance '\(item.instanceID)' is parked without its history: \(error.message)")
                }
            }
            let engine = ReplayEngine(instanceID: item.instanceID, options: engineOptions, resolveOrchestrator: { _ in nil })
            engine.prepareParking(history: history, newEvents: item.newEvents, failure: failure)
            let result = engine.runEpisode(newEvents: item.newEvents, now: backend.clock.now())
            engine.tearDown()
            try await backend.completeOrchestrationWorkItem(item, result: result)
            return true
        } catch {
            options.logHandler(.error, "instance '\(item.instanceID)' could not be parked: \(error)")
            if cause == nil {
                // Not parked yet: try again after a back-off, without counting this lease.
                let isNewEvents = (error as? DurableTaskError)?.code == .newEventsArrived
                try? await backend.abandonOrchestrationWorkItem(item, delay: isNewEvents ? .zero : .seconds(1), countsAsDelivery: false)
            }
            return false
        }
    }
}

/// The episodes a worker has in flight, against its capacity; a finished one wakes the dispatcher.
final class EpisodeSlots: Sendable {
    private let capacity: Int
    private let inFlight = Atomic<Int>(0)
    private let freed = ChangeSignal()

    init(capacity: Int) { self.capacity = capacity }

    var free: Int { capacity - inFlightCount }
    var inFlightCount: Int { inFlight.load(ordering: .acquiring) }
    var generation: UInt64 { freed.generation }

    func take(_ count: Int) { inFlight.add(count, ordering: .acquiringAndReleasing) }

    /// Takes up to `count` of the free slots, fewer when fewer are free.
    /// - Returns: how many it took.
    func claim(upTo count: Int) -> Int {
        var current = inFlight.load(ordering: .acquiring)
        while true {
            let taken = min(count, capacity - current)
            guard taken > 0 else { return 0 }
            let (exchanged, found) = inFlight.compareExchange(expected: current, desired: current + taken, ordering: .acquiringAndReleasing)
            if exchanged { return taken }
            current = found
        }
    }

    func release(_ count: Int = 1) {
        guard count > 0 else { return }
        inFlight.subtract(count, ordering: .acquiringAndReleasing)
        freed.notify()
    }

    func waitForFree(since generation: UInt64, timeout: Duration) async {
        await freed.wait(since: generation, timeout: timeout)
    }
}
