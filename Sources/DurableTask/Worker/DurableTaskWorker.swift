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
        ///
        /// One dispatcher leases what is ready in batches up to this many, so a database backend makes
        /// one lease transaction for a batch, and commits the episodes that finish together in one
        /// transaction: with many small orchestrations, more episodes in flight mean fewer commits
        /// (fsyncs) per episode — on SQLite 64 gives about six times the throughput of 2, and a single
        /// instance's latency is the same.
        public var maxConcurrentOrchestrations: Int
        /// How long an orchestration work item is leased.
        public var orchestrationLeaseDuration: Duration
        /// How long an activity work item is leased; running activities renew it every third of that.
        ///
        /// The lease is what moves an activity to another worker when this one can no longer be
        /// reached. A backend that can tell that a worker's process is gone (`SQLiteBackend` on one
        /// machine) hands its leases over at once, without waiting for them to run out.
        public var activityLeaseDuration: Duration
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
        /// deliveries ended without a result twice or more) one at a time, so each later crash counts
        /// against the item that caused it. An innocent item can only be counted when it ran beside an
        /// item that crashed the process for its first or second time: at most twice per distinct
        /// crashing item. Keep the limit above twice the number of different items you expect to crash
        /// at once.
        public var maxDeliveryCount: Int
        /// The lease owner name; unique per worker by default.
        public var workerID: String
        /// Receives the worker's log messages. By default warnings and errors go to standard error.
        public var logHandler: @Sendable (LogLevel, String) -> Void

        /// The former name of ``orchestrationLeaseDuration``.
        @available(*, deprecated, renamed: "orchestrationLeaseDuration")
        public var orchestrationLockDuration: Duration {
            get { orchestrationLeaseDuration }
            set { orchestrationLeaseDuration = newValue }
        }
        /// The former name of ``activityLeaseDuration``.
        @available(*, deprecated, renamed: "activityLeaseDuration")
        public var activityLockDuration: Duration {
            get { activityLeaseDuration }
            set { activityLeaseDuration = newValue }
        }

        /// Creates options with defaults suited to one process on a small machine.
        public init(
            maxConcurrentActivities: Int = 64,
            activityPrefetch: Int = 512,
            maxConcurrentOrchestrations: Int = 64,
            orchestrationLeaseDuration: Duration = .seconds(60),
            activityLeaseDuration: Duration = .seconds(30),
            cacheCapacity: Int = 10_000,
            maxPayloadBytes: Int = 16 * 1024 * 1024,
            pollInterval: Duration = .milliseconds(500),
            maxDeliveryCount: Int = 10,
            workerID: String = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))",
            logHandler: @escaping @Sendable (LogLevel, String) -> Void = DurableTaskWorker.standardErrorLog
        ) {
            self.maxConcurrentActivities = max(1, maxConcurrentActivities)
            self.activityPrefetch = max(1, activityPrefetch)
            self.maxConcurrentOrchestrations = max(1, maxConcurrentOrchestrations)
            self.orchestrationLeaseDuration = orchestrationLeaseDuration
            self.activityLeaseDuration = activityLeaseDuration
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

    /// Writes warnings and errors to standard error (``LogLevel/standardErrorHandler``).
    public static let standardErrorLog = LogLevel.standardErrorHandler

    /// The backend the worker runs against.
    public let backend: any Backend
    /// The worker's settings.
    public let options: Options

    let registry = Mutex(Registry())
    private let runTask = Mutex<Task<Void, Never>?>(nil)
    let counters = Counters()

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
        let entry = OrchestratorEntry.decoding(name: name, body)
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
        let entry = ActivityEntry(decoding: name, body)
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
        let completions = CompletionBuffer(runners: options.maxConcurrentActivities)
        // One redelivery in flight per worker, orchestration or activity (see `orchestrationDispatcher`).
        let redelivery = Flag()
        let running = RunningActivities(redelivery: redelivery)
        let intake = ActivityIntake(
            queue: activityQueue, running: running, limit: max(options.maxConcurrentActivities * 2, options.activityPrefetch),
            isRegistered: { name in snapshot.activities[name] != nil || self.registry.withLock { $0.activities[name] != nil } })
        let orchestrationIntake = OrchestrationIntake(
            slots: EpisodeSlots(capacity: options.maxConcurrentOrchestrations),
            hasOrchestrators: { !snapshot.orchestrators.isEmpty || self.registry.withLock { !$0.orchestrators.isEmpty } })
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.orchestrationDispatcher(
                    orchestrators: snapshot.orchestrators, engineOptions: engineOptions, cache: cache, redelivery: redelivery,
                    intake: intake, orchestrationIntake: orchestrationIntake)
            }
            group.addTask {
                await self.activityFetchLoop(intake)
                // Nothing more will be queued: let the runners drain the queue and finish.
                activityQueue.close()
            }
            for outbox in completions.outboxes {
                group.addTask {
                    await self.activityRunner(
                        queue: activityQueue, activities: snapshot.activities, completions: completions, outbox: outbox, running: running)
                }
            }
            group.addTask { await self.completionWriter(completions, running: running, orchestrations: orchestrationIntake) }
            group.addTask { await self.leaseRenewer(running) }
            await group.waitForAll()
        }
        await flush(completions, orchestrations: orchestrationIntake)
        cache.removeAll()
        await backend.ownerStopped(options.workerID)
    }

}
