import DurableTask
import Foundation

/// A ``Backend`` that keeps the task hub in an SQLite database file, so orchestrations survive
/// process crashes and restarts.
///
/// ```swift
/// let backend = try SQLiteBackend(path: "/var/lib/myapp/taskhub.sqlite")
/// let worker = DurableTaskWorker(backend: backend)
/// ```
///
/// - One writer connection per backend, on a dedicated thread (libsqlite3 blocks; Swift's cooperative
///   pool must not), plus a reader connection on its own thread for history and metadata reads,
///   which WAL lets run while the writer commits. `:memory:` databases use the writer for both,
///   since a second connection would see a different, empty database.
/// - Every write is one `BEGIN IMMEDIATE` transaction; completing an episode or a batch of activity
///   results is atomic.
/// - Several processes may share one file: leases fence work items, and `SQLITE_BUSY` is absorbed
///   by the busy timeout and retries. See ``Options`` for durability.
/// - A file that is not a DurableTask database (another format, damaged, another application's) is
///   refused at open with `DurableTaskError(.corruptData)`, and never modified.
public final class SQLiteBackend: Backend {
    /// How hard a commit waits for the disk.
    public enum Synchronous: Sendable {
        /// `synchronous=FULL`: a committed episode survives power loss and OS crashes. The default,
        /// because losing a committed step silently is the one thing a durable-execution library
        /// must not do.
        case full
        /// `synchronous=NORMAL`: survives a crash of the process, but the last commits may be lost on
        /// power loss. Several times more commits per second.
        case normal
    }

    /// Settings of a backend.
    public struct Options: Sendable {
        /// Durability of commits; `.full` by default.
        public var synchronous: Synchronous
        /// How long a connection waits for another process's lock before retrying; 10 s by default.
        public var busyTimeout: Duration
        /// Whether `PRAGMA quick_check` runs at open, so a damaged file is reported at once rather
        /// than in the middle of a workload. Costs time proportional to the file size; on by default.
        public var verifyIntegrityOnOpen: Bool

        /// Creates options.
        public init(synchronous: Synchronous = .full, busyTimeout: Duration = .seconds(10),
                    verifyIntegrityOnOpen: Bool = true) {
            self.synchronous = synchronous
            self.busyTimeout = busyTimeout
            self.verifyIntegrityOnOpen = verifyIntegrityOnOpen
        }
    }

    /// The backend's clock.
    public let clock: any DurableClock
    /// The database path (`:memory:` for an in-memory database).
    public let path: String
    /// The settings the backend was opened with.
    public let options: Options

    private let writer: DatabaseThread
    /// `nil` for in-memory databases: reads go to the writer.
    private let reader: DatabaseThread?
    private let orchestrationSignal = ChangeSignal()
    private let activitySignal = ChangeSignal()
    private let instanceSignal = ChangeSignal()

    /// Opens (or creates) a task hub database.
    /// - Parameters:
    ///   - path: the database file; `:memory:` for a private in-memory database.
    ///   - options: durability and timeouts.
    ///   - clock: the time source; pass a ``ManualClock`` in tests.
    /// - Throws: `DurableTaskError(.corruptData)` when the file exists but is not a DurableTask database
    ///   (the file is not modified); ``SQLiteError`` when it cannot be opened.
    public init(path: String, options: Options = .init(), clock: any DurableClock = SystemClock()) throws {
        self.path = path
        self.options = options
        self.clock = clock
        let name = URL(fileURLWithPath: path).lastPathComponent
        writer = try DatabaseThread(name: "DurableTask SQLite writer \(name)") {
            try DatabaseSetup.openWriter(path: path, options: options)
        }
        if DatabaseSetup.isInMemory(path) {
            reader = nil
        } else {
            do {
                reader = try DatabaseThread(name: "DurableTask SQLite reader \(name)") {
                    try DatabaseSetup.openReader(path: path, options: options)
                }
            } catch {
                writer.stop()
                throw error
            }
        }
        let signals = [orchestrationSignal, activitySignal]
        clock.onAdvance {
            // A jump of the clock may make timers due and leases expire.
            for signal in signals { signal.notify() }
        }
    }

    /// Opens a private in-memory task hub: fast, transactional, gone when the backend is released.
    public static func inMemory(options: Options = .init(), clock: any DurableClock = SystemClock()) throws -> SQLiteBackend {
        try SQLiteBackend(path: ":memory:", options: options, clock: clock)
    }

    deinit {
        writer.stop()
        reader?.stop()
    }

    /// Closes the database connections after the operations already started; later calls throw.
    ///
    /// Releasing the backend closes them too, but in the background; call this when the file must be
    /// closed at a known point (before copying or deleting it).
    public func close() async {
        for thread in [reader, writer].compactMap({ $0 }) {
            _ = try? await thread.run { c in c.close() }
            thread.stop()
        }
    }

    // MARK: Running on the connections

    /// Runs a write transaction on the writer thread.
    private func write<T: Sendable>(_ body: @escaping @Sendable (Connection, Date) throws -> T) async throws -> T {
        let clock = self.clock
        return try await writer.run { c in
            try c.transaction {
                // Read inside the write lock, so "now" is never older than a row another writer just committed.
                try body(c, clock.now())
            }
        }
    }

    /// Runs a read on the reader thread (the writer for in-memory databases).
    private func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await (reader ?? writer).run { c in
            try c.transaction(immediate: false) { try body(c) }
        }
    }

    // MARK: Instances

    /// Creates an instance; see ``Backend/createOrchestrationInstance(_:)``.
    public func createOrchestrationInstance(_ request: NewOrchestrationInstance) async throws {
        try await write { c, now in try Store.create(c, request, now: now) }
        orchestrationSignal.notify()
        instanceSignal.notify()
    }

    /// Adds an event to an instance's inbox; see ``Backend/addOrchestrationEvent(instanceID:event:)``.
    public func addOrchestrationEvent(instanceID: String, event: HistoryEvent) async throws {
        try await write { c, now in try Store.addEvent(c, instanceID: instanceID, event: event, now: now) }
        orchestrationSignal.notify()
    }

    // MARK: Orchestration work items

    /// Leases the next orchestration work item; see ``Backend/getOrchestrationWorkItem(owner:lockDuration:)``.
    public func getOrchestrationWorkItem(owner: String, lockDuration: Duration) async throws -> OrchestrationWorkItem? {
        try await write { c, now in
            try Store.leaseOrchestration(c, owner: owner, lockDuration: lockDuration, now: now)
        }
    }

    /// The committed history; see ``Backend/getOrchestrationHistory(instanceID:)``.
    public func getOrchestrationHistory(instanceID: String) async throws -> [HistoryEvent] {
        try await read { c in try Store.history(c, instanceID: instanceID) }
    }

    /// Commits an episode in one transaction; see ``Backend/completeOrchestrationWorkItem(_:result:)``.
    public func completeOrchestrationWorkItem(_ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult) async throws {
        try await write { c, now in try Store.complete(c, item, result, now: now) }
        if !result.activities.isEmpty { activitySignal.notify() }
        orchestrationSignal.notify()
        instanceSignal.notify()
    }

    /// Releases an orchestration lease; see ``Backend/abandonOrchestrationWorkItem(_:delay:)``.
    public func abandonOrchestrationWorkItem(_ item: OrchestrationWorkItem, delay: Duration) async throws {
        try await write { c, now in try Store.abandon(c, item, delay: delay, now: now) }
        orchestrationSignal.notify()
    }

    // MARK: Activity work items

    /// Leases up to `maxCount` activities in one transaction; see ``Backend/getActivityWorkItems(owner:maxCount:lockDuration:)``.
    public func getActivityWorkItems(owner: String, maxCount: Int, lockDuration: Duration) async throws -> [ActivityWorkItem] {
        try await write { c, now in
            try Store.leaseActivities(c, owner: owner, maxCount: maxCount, lockDuration: lockDuration, now: now)
        }
    }

    /// Records activity results in one transaction; see ``Backend/completeActivityWorkItems(_:)``.
    public func completeActivityWorkItems(_ completions: [ActivityCompletion]) async throws -> [Bool] {
        guard !completions.isEmpty else { return [] }
        let accepted = try await write { c, now in try Store.completeActivities(c, completions, now: now) }
        if accepted.contains(true) { orchestrationSignal.notify() }
        return accepted
    }

    /// Releases an activity lease; see ``Backend/abandonActivityWorkItem(_:delay:)``.
    public func abandonActivityWorkItem(_ item: ActivityWorkItem, delay: Duration) async throws {
        try await write { c, now in try Store.abandonActivity(c, item, delay: delay, now: now) }
        activitySignal.notify()
    }

    /// Extends activity leases; see ``Backend/renewActivityWorkItemLocks(_:lockDuration:)``.
    public func renewActivityWorkItemLocks(_ items: [ActivityWorkItem], lockDuration: Duration) async throws -> [Bool] {
        guard !items.isEmpty else { return [] }
        return try await write { c, now in try Store.renewActivities(c, items, lockDuration: lockDuration, now: now) }
    }

    // MARK: Queries

    /// The instance's metadata; see ``Backend/getOrchestrationMetadata(instanceID:)``.
    public func getOrchestrationMetadata(instanceID: String) async throws -> OrchestrationMetadata? {
        try await read { c in try Store.metadata(c, instanceID: instanceID) }
    }

    /// Lists instances, ordered by ID; see ``Backend/queryOrchestrations(_:)``.
    public func queryOrchestrations(_ query: OrchestrationQuery) async throws -> OrchestrationQueryResult {
        try await read { c in try Store.query(c, query) }
    }

    /// Deletes a finished instance; see ``Backend/purgeOrchestration(instanceID:)``.
    public func purgeOrchestration(instanceID: String) async throws -> Bool {
        try await write { c, _ in try Store.purge(c, instanceID: instanceID) }
    }

    /// Deletes finished instances matching a filter; see ``Backend/purgeOrchestrations(_:)``.
    public func purgeOrchestrations(_ filter: PurgeFilter) async throws -> Int {
        try await write { c, _ in try Store.purge(c, filter) }
    }

    // MARK: Wake-ups

    /// Waits for an in-process change, the next due timer or lease expiry, or `timeout`; see
    /// ``Backend/waitForChange(_:since:timeout:)``.
    ///
    /// Other processes cannot signal this one, so callers pass a `timeout` to poll; the wait is also
    /// cut short when a timer or a lease in the database comes due before it.
    public func waitForChange(_ change: BackendChange, since generation: UInt64, timeout: Duration) async {
        let signal = self.signal(change)
        guard signal.generation == generation else { return }
        var timeout = timeout
        if change != .instanceState, let due = try? await read({ c in try Store.nextDue(c, change) }) {
            let untilDue = max(0.001, due.timeIntervalSince(clock.now()))
            if untilDue < timeout.timeInterval {
                timeout = .milliseconds(Int64(untilDue * 1000) + 1)
            }
        }
        await signal.wait(since: generation, timeout: timeout)
    }

    /// The change counter; see ``Backend/changeGeneration(_:)``.
    public func changeGeneration(_ change: BackendChange) -> UInt64 {
        signal(change).generation
    }

    private func signal(_ change: BackendChange) -> ChangeSignal {
        switch change {
        case .orchestrationWork: orchestrationSignal
        case .activityWork: activitySignal
        case .instanceState: instanceSignal
        }
    }
}
