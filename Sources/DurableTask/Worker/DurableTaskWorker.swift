import Foundation
import Synchronization

/// Runs registered orchestrators and activities against a backend, inside your process.
///
/// ```swift
/// let worker = DurableTaskWorker(backend: backend)
/// worker.addOrchestrator(WordCountOrchestrator())
/// worker.addActivity(CountWords())
/// let running = Task { await worker.run() }   // until cancelled or stop()
/// ```
///
/// Orchestrations stay in memory between episodes (a bounded cache), so an episode applies only its
/// new events; activities run on a fixed set of long-lived runners up to
/// ``Options/maxConcurrentActivities``, and their results are written in batches. User errors —
/// throwing code, unknown names, undecodable payloads — fail the instance or the activity, never the worker.
public final class DurableTaskWorker: Sendable {
    /// Worker settings.
    public struct Options: Sendable {
        /// How many activities run at once.
        public var maxConcurrentActivities: Int
        /// How many activity work items are leased ahead in one batch (at least twice
        /// `maxConcurrentActivities`): larger batches mean fewer lease transactions on a database backend.
        public var activityPrefetch: Int
        /// How many orchestration episodes run at once (each on its own instance).
        public var maxConcurrentOrchestrations: Int
        /// How long an orchestration work item is leased.
        public var orchestrationLockDuration: Duration
        /// How long an activity work item is leased; running activities renew it every third of that.
        ///
        /// The lease is what moves an activity to another worker when this one can no longer be
        /// reached. A backend that can tell that a worker's process is gone (`SQLiteBackend` on one
        /// machine) hands its leases over at once, without waiting for them to run out.
        public var activityLockDuration: Duration
        /// How many live orchestrations are kept in memory between episodes.
        public var cacheCapacity: Int
        /// The maximum size of any payload an orchestrator or activity produces.
        public var maxPayloadBytes: Int
        /// How often to look for work made by other processes when nothing happened in this one.
        public var pollInterval: Duration
        /// How many times a work item is delivered without completing before it is parked.
        ///
        /// Counted when an item is leased, so it also catches code that kills the process (a
        /// `fatalError`, a stack overflow): the next lease past the limit does not run the code. An
        /// orchestration is then ended `failed` (poisoned), an activity is recorded as a non-retriable
        /// failure that its orchestrator sees as ``TaskFailedError``. An episode that fails and that the
        /// process survives (it cannot be loaded or committed) is parked after this many attempts.
        /// Storage errors never count.
        ///
        /// A crash takes down everything in flight, but the worker runs **redeliveries** (items whose
        /// previous delivery ended without a result) one at a time, so each later crash counts against
        /// the item that caused it. An innocent item can only be counted when it ran beside an item that
        /// crashed the process for the first time: at most once per distinct crashing item. Keep the
        /// limit above the number of different items you expect to crash at once.
        public var maxDeliveryCount: Int
        /// The lease owner name; unique per worker by default.
        public var workerID: String
        /// Receives the worker's log messages. By default warnings and errors go to standard error.
        public var logHandler: @Sendable (LogLevel, String) -> Void

        /// Creates options with defaults suited to one process on a small machine.
        public init(maxConcurrentActivities: Int = 64,
                    activityPrefetch: Int = 512,
                    maxConcurrentOrchestrations: Int = max(2, ProcessInfo.processInfo.activeProcessorCount),
                    orchestrationLockDuration: Duration = .seconds(60),
                    activityLockDuration: Duration = .seconds(30),
                    cacheCapacity: Int = 10_000,
                    maxPayloadBytes: Int = 16 * 1024 * 1024,
                    pollInterval: Duration = .milliseconds(500),
                    maxDeliveryCount: Int = 10,
                    workerID: String = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))",
                    logHandler: @escaping @Sendable (LogLevel, String) -> Void = DurableTaskWorker.standardErrorLog) {
            self.maxConcurrentActivities = max(1, maxConcurrentActivities)
            self.activityPrefetch = max(1, activityPrefetch)
            self.maxConcurrentOrchestrations = max(1, maxConcurrentOrchestrations)
            self.orchestrationLockDuration = orchestrationLockDuration
            self.activityLockDuration = activityLockDuration
            self.cacheCapacity = cacheCapacity
            self.maxPayloadBytes = maxPayloadBytes
            self.pollInterval = pollInterval
            self.maxDeliveryCount = max(1, maxDeliveryCount)
            self.workerID = workerID
            self.logHandler = logHandler
        }
    }

    /// Counters of what the worker did, for benchmarks and tests.
    public struct Statistics: Sendable, Equatable {
        /// Orchestration episodes committed.
        public var episodes: Int
        /// History events replayed from storage (cache misses); a fan-out of N replays O(N) in total.
        public var eventsReplayed: Int
        /// New events applied in episodes.
        public var eventsApplied: Int
        /// Activity runs finished (successfully or not).
        public var activitiesExecuted: Int
        /// Activity results rejected by the backend as late or duplicate (lease lost).
        public var activityCompletionsFenced: Int
    }

    /// Writes warnings and errors to standard error.
    public static let standardErrorLog: @Sendable (LogLevel, String) -> Void = { level, message in
        guard level >= .warning else { return }
        FileHandle.standardError.write(Data("[DurableTask] \(level): \(message)\n".utf8))
    }

    /// The backend the worker runs against.
    public let backend: any Backend
    /// The worker's settings.
    public let options: Options

    private struct Registry {
        var orchestrators: [String: OrchestratorEntry] = [:]
        var activities: [String: ActivityEntry] = [:]
    }
    private let registry = Mutex(Registry())
    private let runTask = Mutex<Task<Void, Never>?>(nil)
    private let counters = Counters()

    /// Creates a worker. Register orchestrators and activities, then call ``run()``.
    public init(backend: any Backend, options: Options = Options()) {
        self.backend = backend
        self.options = options
    }

    // MARK: Registration

    /// Registers an orchestrator under its ``Orchestrator/name``.
    public func addOrchestrator<O: Orchestrator>(_ orchestrator: O) {
        let entry = OrchestratorEntry(orchestrator)
        registry.withLock { $0.orchestrators[entry.name] = entry }
    }

    /// Registers an orchestrator written as a closure, for quick scripts.
    public func addOrchestrator<Input: Codable & Sendable, Output: Codable & Sendable>(
        name: String, _ body: @escaping @Sendable (OrchestrationContext, Input) async throws -> Output
    ) {
        let entry = OrchestratorEntry(name: name) { context, input in
            let value = try PayloadCodec.decode(Input.self, from: input, what: "input of orchestrator '\(name)' (instance '\(context.instanceID)')")
            let output = try await body(context, value)
            return try PayloadCodec.encode(output, limit: context.options.maxPayloadBytes,
                                           what: "output of orchestrator '\(name)' (instance '\(context.instanceID)')")
        }
        registry.withLock { $0.orchestrators[name] = entry }
    }

    /// Registers an activity under its ``Activity/name``.
    public func addActivity<A: Activity>(_ activity: A) {
        let entry = ActivityEntry(activity)
        registry.withLock { $0.activities[entry.name] = entry }
    }

    /// Registers an activity written as a closure.
    public func addActivity<Input: Codable & Sendable, Output: Codable & Sendable>(
        name: String, _ body: @escaping @Sendable (ActivityContext, Input) async throws -> Output
    ) {
        let entry = ActivityEntry(name: name) { context, input, limit in
            let value = try PayloadCodec.decode(Input.self, from: input, what: "input of activity '\(name)'")
            let output = try await body(context, value)
            return try PayloadCodec.encode(output, limit: limit, what: "output of activity '\(name)'")
        }
        registry.withLock { $0.activities[name] = entry }
    }

    /// What the worker has done so far.
    public var statistics: Statistics { counters.snapshot() }

    // MARK: Running

    /// Processes work until the calling task is cancelled or ``stop()`` is called. Cached orchestrations
    /// are released on the way out; leased work that did not finish is picked up again after its lease expires.
    public func run() async {
        let task = Task { await self.runLoops() }
        runTask.withLock { $0 = task }
        await withTaskCancellationHandler {
            await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Stops a running worker: ``run()`` returns once in-flight episodes finish.
    public func stop() {
        runTask.withLock { $0 }?.cancel()
    }

    private func runLoops() async {
        let snapshot = registry.withLock { $0 }
        let engineOptions = EngineOptions(maxPayloadBytes: options.maxPayloadBytes, log: options.logHandler)
        let cache = OrchestrationCache(capacity: options.cacheCapacity)
        let activityQueue = WorkQueue<ActivityWorkItem>()
        let completions = CompletionBuffer()
        // One redelivery in flight per worker, orchestration or activity (see `orchestrationLoop`).
        let redelivery = Flag()
        let running = RunningActivities(redelivery: redelivery)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<options.maxConcurrentOrchestrations {
                group.addTask {
                    await self.orchestrationLoop(orchestrators: snapshot.orchestrators, engineOptions: engineOptions, cache: cache,
                                                 redelivery: redelivery)
                }
            }
            group.addTask {
                await self.activityFetchLoop(queue: activityQueue, running: running)
                // Nothing more will be queued: let the runners drain the queue and finish.
                activityQueue.close()
            }
            for _ in 0..<options.maxConcurrentActivities {
                group.addTask {
                    await self.activityRunner(queue: activityQueue, activities: snapshot.activities, completions: completions, running: running)
                }
            }
            group.addTask { await self.completionWriter(completions) }
            group.addTask { await self.leaseRenewer(running) }
            await group.waitForAll()
        }
        await flush(completions)
        cache.removeAll()
    }

    // MARK: Orchestrations

    /// - Parameter redelivery: set while the worker runs a redelivery — an episode or an activity whose
    ///   previous delivery ended without a result, maybe because it crashed the process. Only one runs
    ///   at a time, so if it crashes the process again, the other items in flight are fresh ones whose
    ///   count the crash does not push towards the poison limit: the count singles out the culprit.
    private func orchestrationLoop(orchestrators: [String: OrchestratorEntry], engineOptions: EngineOptions, cache: OrchestrationCache,
                                   redelivery: Flag) async {
        // The snapshot serves the hot path; a name registered after `run()` started is found in the
        // live registry.
        let resolve: @Sendable (String) -> OrchestratorEntry? = { name in
            orchestrators[name] ?? self.registry.withLock { $0.orchestrators[name] }
        }
        while !Task.isCancelled {
            let generation = backend.changeGeneration(.orchestrationWork)
            // The slot is taken before leasing, so no two loops can lease a redelivery at once.
            let mayTakeRedelivery = redelivery.trySet()
            let item: OrchestrationWorkItem?
            do {
                item = try await backend.getOrchestrationWorkItem(owner: options.workerID, lockDuration: options.orchestrationLockDuration,
                                                                  includeRedelivered: mayTakeRedelivery)
            } catch {
                if mayTakeRedelivery { redelivery.clear() }
                options.logHandler(.error, "could not fetch an orchestration work item: \(error)")
                try? await Task.sleep(for: options.pollInterval)
                continue
            }
            let isRedelivery = item.map { Redelivery.isRedelivery(leasedCount: $0.dequeueCount) } ?? false
            if mayTakeRedelivery && !isRedelivery { redelivery.clear() }
            guard let item else {
                await backend.waitForChange(.orchestrationWork, since: generation, timeout: options.pollInterval)
                continue
            }
            await process(item, resolve: resolve, engineOptions: engineOptions, cache: cache)
            if isRedelivery { redelivery.clear() }
        }
    }

    private func process(_ item: OrchestrationWorkItem, resolve: @escaping @Sendable (String) -> OrchestratorEntry?,
                         engineOptions: EngineOptions, cache: OrchestrationCache) async {
        // Checked at lease time, before any user code runs: an item whose deliveries keep taking the
        // process down (a fatalError, a stack overflow) never reaches the failure handling below.
        if item.dequeueCount > options.maxDeliveryCount {
            await cache.checkOut(item.instanceID)?.tearDown()
            cache.release(item.instanceID)
            await park(item, engineOptions: engineOptions, cause: nil)
            return
        }
        var context = await cache.checkOut(item.instanceID)
        if let cached = context, cached.historyLength != item.historyLength || cached.executionID != item.executionID {
            // Another worker advanced the instance (or it continued as new): the cached state is stale.
            cached.tearDown()
            context = nil
        }
        let result: OrchestrationWorkItemResult
        let runtime: ReplayEngine
        do {
            if let context {
                runtime = context
            } else {
                let history = try await backend.getOrchestrationHistory(instanceID: item.instanceID)
                runtime = ReplayEngine(instanceID: item.instanceID, options: engineOptions, resolveOrchestrator: resolve)
                runtime.replay(history)
                counters.eventsReplayed.add(history.count, ordering: .relaxed)
            }
            result = runtime.runEpisode(newEvents: item.newEvents, now: backend.clock.now())
        } catch {
            cache.release(item.instanceID)
            await handleUnprocessable(item, error: error, engineOptions: engineOptions)
            return
        }
        counters.eventsApplied.add(item.newEvents.count, ordering: .relaxed)
        do {
            try await backend.completeOrchestrationWorkItem(item, result: result)
            counters.episodes.add(1, ordering: .relaxed)
            runtime.historyLength = item.historyLength + result.newHistory.count
            if runtime.isFinished {
                runtime.tearDown()
                cache.release(item.instanceID)
            } else {
                cache.checkIn(runtime)
            }
        } catch {
            runtime.tearDown()
            cache.release(item.instanceID)
            if let error = error as? DurableTaskError, error.code == .workItemLockLost {
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

    /// An episode that could not be loaded or committed: retry with back-off, and after
    /// `maxDeliveryCount` attempts park the instance as failed with the error visible.
    private func handleUnprocessable(_ item: OrchestrationWorkItem, error: any Error, engineOptions: EngineOptions) async {
        options.logHandler(.error, "instance '\(item.instanceID)': episode failed (attempt \(item.dequeueCount)): \(error)")
        // A storage failure (disk full, database locked, I/O error) says nothing about the instance:
        // parking it would turn a passing outage into a permanent failure. Keep retrying with back-off,
        // and do not count the delivery.
        let isStorageFailure = (error as? DurableTaskError)?.code == .storage
        if item.dequeueCount >= options.maxDeliveryCount && !isStorageFailure {
            if await park(item, engineOptions: engineOptions, cause: error) { return }
        }
        let delay = Duration.milliseconds(min(30_000, 100 << min(item.dequeueCount, 8)))
        try? await backend.abandonOrchestrationWorkItem(item, delay: delay, countsAsDelivery: !isStorageFailure)
    }

    /// Ends the instance as failed ("poisoned") without running its code, through the engine's own
    /// ending: history gets `executionCompleted(failed)` and a parent gets `subOrchestrationFailed`.
    /// - Parameter cause: the last error, when the process survived it; `nil` when the item was leased
    ///   more than `maxDeliveryCount` times without completing (the process died on it).
    /// - Returns: whether the ending was committed.
    @discardableResult
    private func park(_ item: OrchestrationWorkItem, engineOptions: EngineOptions, cause: (any Error)?) async -> Bool {
        let deliveries = item.dequeueCount
        let reason = cause.map { "after \(deliveries) failed attempts to process its events; last error: \($0)" }
            ?? "after \(deliveries) deliveries of its events without completing (the process processing them "
            + "stopped each time, e.g. a crash in orchestrator code)"
        let poison = DurableTaskError(.poisoned, "instance '\(item.instanceID)' was poisoned: parked as failed \(reason)")
        let failure = FailureDetails(errorType: "DurableTaskError.poisoned", message: poison.message, isRetriable: false,
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
            let runtime = ReplayEngine(instanceID: item.instanceID, options: engineOptions, resolveOrchestrator: { _ in nil })
            runtime.prepareParking(history: history, newEvents: item.newEvents, failure: failure)
            let result = runtime.runEpisode(newEvents: item.newEvents, now: backend.clock.now())
            runtime.tearDown()
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

    // MARK: Activities

    private func activityFetchLoop(queue: WorkQueue<ActivityWorkItem>, running: RunningActivities) async {
        // Lease in large batches, so a fan-out costs few lease transactions; leases of queued items are
        // renewed like those of running ones. Refill only once a quarter of the window is free, so each
        // lease transaction carries many items.
        let limit = max(options.maxConcurrentActivities * 2, options.activityPrefetch)
        while !Task.isCancelled {
            let generation = backend.changeGeneration(.activityWork)
            let capacityGeneration = running.generation
            let free = limit - running.count
            if free < max(1, limit / 4) {
                await running.waitForCapacity(since: capacityGeneration, timeout: options.pollInterval)
                continue
            }
            // At most one redelivery in flight (see `orchestrationLoop`): if it crashes the process
            // again, the crash counts against it, not against fresh items running beside it. The slot
            // is taken before leasing and kept only if a redelivery came back.
            let mayTakeRedelivery = running.redelivery.trySet()
            let items: [ActivityWorkItem]
            do {
                items = try await backend.getActivityWorkItems(owner: options.workerID, maxCount: free,
                                                               maxRedelivered: mayTakeRedelivery ? 1 : 0,
                                                               lockDuration: options.activityLockDuration)
            } catch {
                if mayTakeRedelivery { running.redelivery.clear() }
                options.logHandler(.error, "could not fetch activity work items: \(error)")
                try? await Task.sleep(for: options.pollInterval)
                continue
            }
            if mayTakeRedelivery && !items.contains(where: { Redelivery.isRedelivery(leasedCount: $0.dequeueCount) }) { running.redelivery.clear() }
            if items.isEmpty {
                if !mayTakeRedelivery {
                    // The next redelivery may be leased as soon as this one finishes.
                    await Self.waitForEither(backend, since: generation, running, since: capacityGeneration, timeout: options.pollInterval)
                } else {
                    await backend.waitForChange(.activityWork, since: generation, timeout: options.pollInterval)
                }
                continue
            }
            running.leased(items)
            if Task.isCancelled {
                running.finished(items)
                for item in items {
                    try? await backend.abandonActivityWorkItem(item, delay: .zero)
                }
                return
            }
            queue.push(items)
        }
    }

    /// Returns when new activity work may be available or a leased activity finished.
    private static func waitForEither(_ backend: any Backend, since generation: UInt64, _ running: RunningActivities,
                                      since capacityGeneration: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await backend.waitForChange(.activityWork, since: generation, timeout: timeout) }
            group.addTask { await running.waitForCapacity(since: capacityGeneration, timeout: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func activityRunner(queue: WorkQueue<ActivityWorkItem>, activities snapshot: [String: ActivityEntry],
                                completions: CompletionBuffer, running: RunningActivities) async {
        var activities = snapshot
        // Results are handed to the writer in small batches: one lock per batch instead of one per
        // activity. A batch goes out when it is full, when the runner is about to wait for work, and
        // when its oldest result has waited 2 ms, so a slow activity never holds finished ones back long.
        var finished: [ActivityCompletion] = []
        var oldest = ContinuousClock.now
        func handOver() {
            guard !finished.isEmpty else { return }
            running.finished(finished.lazy.map(\.item))
            completions.append(contentsOf: finished)
            finished.removeAll(keepingCapacity: true)
        }
        while true {
            let item: ActivityWorkItem
            if let next = queue.tryPop() {
                item = next
            } else {
                handOver()
                guard let next = await queue.pop() else { break }
                item = next
            }
            if Task.isCancelled {
                // Stopping: hand leased-but-unstarted items back at once instead of letting their leases
                // run out, so another worker (or the next start) picks them up without waiting.
                running.finished(CollectionOfOne(item))
                try? await backend.abandonActivityWorkItem(item, delay: .zero)
                continue
            }
            let context = ActivityContext(instanceID: item.instanceID, taskID: item.taskID, name: item.name, deliveryCount: item.dequeueCount)
            let kind: HistoryEvent.Kind
            var startedAt: Date?
            if activities[item.name] == nil {
                // Registered after `run()` started, or not at all.
                activities = registry.withLock { $0.activities }
            }
            if item.dequeueCount > options.maxDeliveryCount {
                // Checked before the activity runs: an activity that takes the process down (a
                // fatalError) would otherwise be leased, and crash a worker, forever.
                let error = DurableTaskError(.poisoned,
                    "activity '\(item.name)' (instance '\(item.instanceID)', task #\(item.taskID)) was poisoned: delivered "
                    + "\(item.dequeueCount) times without a result (the process running it stopped each time, e.g. a crash in "
                    + "activity code); it is not run again")
                options.logHandler(.error, error.message)
                kind = .taskFailed(scheduledID: item.taskID, failure: FailureDetails(
                    errorType: "DurableTaskError.poisoned", message: error.message, isRetriable: false))
            } else if let entry = activities[item.name] {
                do {
                    startedAt = backend.clock.now()
                    let output = try await entry.run(context, item.input, options.maxPayloadBytes)
                    kind = .taskCompleted(scheduledID: item.taskID, result: output)
                } catch is CancellationError where Task.isCancelled {
                    // The worker is stopping: this is not the activity's failure. Hand the item back so
                    // it runs again, here or in another worker.
                    running.finished(CollectionOfOne(item))
                    try? await backend.abandonActivityWorkItem(item, delay: .zero)
                    continue
                } catch {
                    kind = .taskFailed(scheduledID: item.taskID, failure: FailureDetails(error: error))
                }
            } else {
                let error = DurableTaskError(.activityNotRegistered,
                    "no activity named '\(item.name)' is registered on this worker (instance '\(item.instanceID)', task #\(item.taskID))")
                kind = .taskFailed(scheduledID: item.taskID, failure: FailureDetails(error: error))
            }
            counters.activitiesExecuted.add(1, ordering: .relaxed)
            let now = ContinuousClock.now
            if finished.isEmpty { oldest = now }
            finished.append(ActivityCompletion(item: item, event: HistoryEvent(timestamp: backend.clock.now(), kind: kind, startedAt: startedAt)))
            if finished.count >= 32 || now - oldest > .milliseconds(2) { handOver() }
        }
        handOver()
    }

    /// Group commit: writes every completion buffered since the previous write in one call.
    private func completionWriter(_ completions: CompletionBuffer) async {
        while !Task.isCancelled {
            await completions.waitForItems()
            await flush(completions)
        }
    }

    private func flush(_ completions: CompletionBuffer) async {
        let batch = completions.takeAll()
        guard !batch.isEmpty else { return }
        var attempt = 0
        while true {
            do {
                let accepted = try await backend.completeActivityWorkItems(batch)
                let fenced = accepted.lazy.filter { !$0 }.count
                if fenced > 0 {
                    counters.activityCompletionsFenced.add(fenced, ordering: .relaxed)
                    options.logHandler(.warning, "\(fenced) activity result(s) rejected as late or duplicate (lease lost)")
                }
                return
            } catch {
                attempt += 1
                options.logHandler(.error, "could not record \(batch.count) activity result(s) (attempt \(attempt)): \(error)")
                // The leases will expire and the activities run again; retry a few times first.
                if attempt >= 5 { return }
                try? await Task.sleep(for: .milliseconds(100 << attempt))
            }
        }
    }

    private func leaseRenewer(_ running: RunningActivities) async {
        let interval = options.activityLockDuration / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let items = running.snapshot()
            guard !items.isEmpty else { continue }
            _ = try? await backend.renewActivityWorkItemLocks(items, lockDuration: options.activityLockDuration)
        }
    }
}

/// A registered activity, type-erased to payloads.
struct ActivityEntry: Sendable {
    let name: String
    let run: @Sendable (ActivityContext, Payload?, Int) async throws -> Payload?

    init(name: String, run: @escaping @Sendable (ActivityContext, Payload?, Int) async throws -> Payload?) {
        self.name = name
        self.run = run
    }

    init<A: Activity>(_ activity: A) {
        let name = A.name
        self.init(name: name) { context, input, limit in
            let value = try PayloadCodec.decode(A.Input.self, from: input,
                                                what: "input of activity '\(name)' (instance '\(context.instanceID)', task #\(context.taskID))")
            let output = try await activity.run(context: context, input: value)
            return try PayloadCodec.encode(output, limit: limit, what: "output of activity '\(name)' (instance '\(context.instanceID)', task #\(context.taskID))")
        }
    }
}

/// A flag that one of several loops holds at a time.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    /// Sets the flag; `false` when it was already set.
    func trySet() -> Bool {
        value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    func clear() { value.store(false, ordering: .releasing) }
}

final class Counters: Sendable {
    let episodes = Atomic<Int>(0)
    let eventsReplayed = Atomic<Int>(0)
    let eventsApplied = Atomic<Int>(0)
    let activitiesExecuted = Atomic<Int>(0)
    let activityCompletionsFenced = Atomic<Int>(0)

    func snapshot() -> DurableTaskWorker.Statistics {
        .init(episodes: episodes.load(ordering: .relaxed), eventsReplayed: eventsReplayed.load(ordering: .relaxed),
              eventsApplied: eventsApplied.load(ordering: .relaxed), activitiesExecuted: activitiesExecuted.load(ordering: .relaxed),
              activityCompletionsFenced: activityCompletionsFenced.load(ordering: .relaxed))
    }
}

/// Activity results waiting to be written, and a wake-up for the writer.
final class CompletionBuffer: Sendable {
    private let items = Mutex<[ActivityCompletion]>([])
    private let signal = ChangeSignal()

    func append(contentsOf completions: [ActivityCompletion]) {
        let wasEmpty = items.withLock { items in
            let wasEmpty = items.isEmpty
            items.append(contentsOf: completions)
            return wasEmpty
        }
        if wasEmpty { signal.notify() }
    }

    func takeAll() -> [ActivityCompletion] {
        items.withLock { items in
            defer { items = [] }
            return items
        }
    }

    func waitForItems() async {
        let generation = signal.generation
        if items.withLock({ !$0.isEmpty }) { return }
        await signal.wait(since: generation, timeout: .seconds(1))
    }
}

/// The activities leased by this worker and not yet finished (queued or running): for capacity and
/// lease renewal.
final class RunningActivities: Sendable {
    private struct Key: Hashable {
        let receipt: Int64
        let taskID: Int
    }
    private struct State {
        var count = 0
        var items: [Key: ActivityWorkItem] = [:]
    }
    private let state = Mutex(State())
    private let freed = ChangeSignal()

    var count: Int { state.withLock { $0.count } }

    /// Held while a redelivered activity is leased (see ``Backend/getActivityWorkItems(owner:maxCount:maxRedelivered:lockDuration:)``).
    let redelivery: Flag

    init(redelivery: Flag) { self.redelivery = redelivery }

    /// Records freshly leased items (queued or running) for capacity and lease renewal.
    func leased(_ items: [ActivityWorkItem]) {
        state.withLock { state in
            state.count += items.count
            for item in items {
                state.items[Key(receipt: item.receipt, taskID: item.taskID)] = item
            }
        }
    }

    func finished(_ items: some Sequence<ActivityWorkItem>) {
        state.withLock { state in
            for item in items {
                state.items[Key(receipt: item.receipt, taskID: item.taskID)] = nil
                state.count -= 1
                if Redelivery.isRedelivery(leasedCount: item.dequeueCount) { redelivery.clear() }
            }
        }
        freed.notify()
    }

    func snapshot() -> [ActivityWorkItem] { state.withLock { Array($0.items.values) } }

    var generation: UInt64 { freed.generation }

    func waitForCapacity(since generation: UInt64, timeout: Duration) async {
        await freed.wait(since: generation, timeout: timeout)
    }
}
