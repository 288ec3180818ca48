@_spi(Backend) import DurableTask
import Foundation
import Synchronization

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
///   by the busy timeout and retries. A lock held by another process for longer than
///   ``Options/busyTimeout`` fails the write with `DurableTaskError(.storage)`; nothing is written,
///   and the next call works once the lock is gone. See ``Options`` for durability.
/// - A full disk, a full quota (``Options/maxDatabaseBytes``) or an I/O error fails the write with
///   `DurableTaskError(.storage)`; the transaction is rolled back, so nothing is lost, and writes
///   succeed again once there is room.
/// - Each process that opens the file holds a shared lock on a side file `<path>-dtlock`, to notice
///   other processes on the same file: with a libsqlite3 older than 3.51.3 (the WAL-reset bug) the
///   backend then logs a warning once. The side file is never deleted (another process may hold it);
///   delete it with the database when no process uses it.
/// - Every lease owner (a worker ID) holds an `flock` on a file in `<path>-dtowners/` while its backend
///   is open. When a worker's process dies the OS drops the lock, and the next lease call of any
///   backend on the file (at most every 250 ms, and at a worker's first lease) releases the dead
///   worker's leases, so its work runs again at once instead of when the leases run out. A live
///   worker, however slow or paused, keeps its leases.
/// - A file that is not a DurableTask database (another format, damaged, another application's) is
///   refused at open with `DurableTaskError(.corruptData)`, and never modified. Several processes may
///   create one new file at the same moment.
/// - Before each transaction the backend checks that the path still names the file it opened: a file
///   deleted or replaced under it fails every call with `DurableTaskError(.storage)`. A file that
///   replaced one whose `-wal` file is still there is refused at open, so the old file's pages are
///   never applied to it.
public final class SQLiteBackend: Backend {
    /// How hard a commit waits for the disk.
    public enum Synchronous: Sendable {
        /// `synchronous=FULL` for what the library acknowledges: a created instance, a raised event, a
        /// terminate or purge, an instance's end — each survives power loss and OS crashes once the
        /// call returns. The default, because losing an acknowledged step silently is the one thing
        /// a durable-execution library must not do. The steps in between (leases, activity results,
        /// episodes that do not end the instance) reach the disk with the next such commit; a power
        /// failure before it means they run again, as after a crash of the process — activities
        /// included. See ``TaskHubRules/episodeMustReachDisk(_:)``.
        case full
        /// `synchronous=FULL` for every commit but leases: after a power failure, no activity whose
        /// result was recorded runs again. About twice the fsyncs of ``full`` for a one-activity
        /// orchestration; for activities that must not run twice even then.
        case fullEveryStep
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
        /// A quota on the database file's size in bytes (`PRAGMA max_page_count`), or `nil` for none,
        /// the default.
        ///
        /// A write that would grow the file beyond it fails with `DurableTaskError(.storage)` saying
        /// "database or disk is full", exactly as a full disk does; it is rolled back, so nothing is
        /// lost. Change it while running with ``SQLiteBackend/setMaxDatabaseBytes(_:)``. The quota
        /// counts database pages only: the `-wal` file (up to 16 MiB between checkpoints) comes on
        /// top, and a quota below the current size stops growth at the current size.
        public var maxDatabaseBytes: Int?
        /// Receives the backend's log messages (the warning about sharing a WAL file between
        /// processes). By default warnings go to standard error.
        public var logHandler: @Sendable (LogLevel, String) -> Void

        /// Creates options.
        public init(
            synchronous: Synchronous = .full, busyTimeout: Duration = .seconds(10),
            verifyIntegrityOnOpen: Bool = true, maxDatabaseBytes: Int? = nil,
            logHandler: @escaping @Sendable (LogLevel, String) -> Void = LogLevel.standardErrorHandler
        ) {
            self.synchronous = synchronous
            self.busyTimeout = busyTimeout
            self.verifyIntegrityOnOpen = verifyIntegrityOnOpen
            self.maxDatabaseBytes = maxDatabaseBytes
            self.logHandler = logHandler
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
    /// The process's shared lock on `<path>-dtlock`; `nil` for in-memory databases (or when the side
    /// file cannot be created, which only disables the warning).
    private let lockFile: Mutex<SharedLockFile?>
    /// Whether this backend looks for other processes (affected library, warning not silenced).
    private let watchesForSharing: Bool
    /// The quota in force, for error messages; changed by ``setMaxDatabaseBytes(_:)``.
    private let maxDatabaseBytes: Mutex<Int?>
    /// Holds this backend's lease owners' locks and finds dead owners; `nil` for in-memory databases.
    private let liveness: OwnerLiveness?
    /// Notices the file deleted or replaced under the backend; `nil` for in-memory databases.
    private let fileCheck: DatabaseFileCheck?
    private let signals = BackendSignals()
    /// Wakes waits for other processes' commits; `nil` for in-memory databases, which have none.
    private let foreignChanges: ForeignChanges?

    /// Opens (or creates) a task hub database.
    /// - Parameters:
    ///   - path: the database file; `:memory:` for a private in-memory database.
    ///   - options: durability and timeouts.
    ///   - clock: the time source; pass a ``ManualClock`` in tests.
    /// - Throws: `DurableTaskError(.corruptData)` when the file exists but is not a DurableTask database
    ///   (the file is not modified); `DurableTaskError(.storage)` when it cannot be opened or set up
    ///   (a missing directory, permissions, a read-only file system, a lock held beyond the busy timeout).
    public init(path: String, options: Options = .init(), clock: any DurableClock = SystemClock()) throws {
        self.path = path
        self.options = options
        self.clock = clock
        maxDatabaseBytes = Mutex(options.maxDatabaseBytes)
        let name = URL(fileURLWithPath: path).lastPathComponent
        writer = try DatabaseThread(name: "DurableTask SQLite writer \(name)") {
            try DatabaseSetup.classifyingErrors(path: path, options: options) {
                try DatabaseSetup.openWriter(path: path, options: options)
            }
        }
        if DatabaseSetup.isInMemory(path) {
            reader = nil
            lockFile = Mutex(nil)
            watchesForSharing = false
            liveness = nil
            fileCheck = nil
            foreignChanges = nil
        } else {
            // Right after the writer opened it: the file libsqlite3 has open.
            // Absolute, as libsqlite3 keeps it: a later chdir of the process must not move the checks.
            let absolute =
                path.hasPrefix("/") || path.hasPrefix("file:")
                ? path : FileManager.default.currentDirectoryPath + "/" + path
            let identity = DatabaseFileIdentity.of(path: absolute)
            fileCheck = identity.map { DatabaseFileCheck(path: absolute, opened: $0) }
            do {
                reader = try DatabaseThread(name: "DurableTask SQLite reader \(name)") {
                    try DatabaseSetup.classifyingErrors(path: path, options: options) {
                        try DatabaseSetup.openReader(path: path, options: options)
                    }
                }
            } catch {
                writer.stop()
                throw error
            }
            // Taken only once the file is known to be ours, so a refused file gets no side file.
            // Held even when this process does not warn, so that other processes can see it.
            let acquired: SharedLockFile?
            do {
                acquired = try SharedLockFile.acquire(databasePath: path)
            } catch {
                acquired = nil
                options.logHandler(.warning, "cannot tell whether other processes share \(path): \(error)")
            }
            if let identity {
                // The writer's set-up has read the file, so its -wal exists now.
                acquired?.record(SharedFilesRecord(database: identity, wal: DatabaseFileIdentity.of(path: absolute + "-wal")))
            }
            lockFile = Mutex(acquired)
            watchesForSharing = acquired != nil && DatabaseSetup.libraryHasWALResetBug && !DatabaseSetup.walWarningSilenced
            // Only for a plain path (not a `file:` URI), where the side directory can be named.
            liveness = identity == nil ? nil : OwnerLiveness(databasePath: absolute, log: options.logHandler)
            // The writer's connection: its data_version moves only for other connections' commits.
            let writer = self.writer
            let reader = reader
            foreignChanges = ForeignChanges(
                waiters: signals.instances,
                dataVersion: { try await writer.run { c in try c.scalarInt("PRAGMA data_version") } },
                markers: { ids in
                    try await (reader ?? writer).run { c in try c.transaction(immediate: false) { try Store.changeMarkers(c, instanceIDs: ids) } }
                })
        }
        if options.synchronous != .normal && !DatabaseSetup.isInMemory(path) {
            writer.setRelaxedSynchronous(restoring: "FULL")
        }
        if let fileCheck {
            // Once per write transaction, however many writes it holds.
            writer.setBatchCheck { try fileCheck.verify() }
        }
        let signals = self.signals
        // A jump of the clock may make timers due and leases expire.
        clock.onAdvance { signals.leasesReleased() }
        warnIfShared()
    }

    /// Opens a private in-memory task hub: fast, transactional, gone when the backend is released.
    public static func inMemory(options: Options = .init(), clock: any DurableClock = SystemClock()) throws -> SQLiteBackend {
        try SQLiteBackend(path: ":memory:", options: options, clock: clock)
    }

    deinit {
        foreignChanges?.stop()
        writer.stop()
        reader?.stop()
        releaseLockFile()
        liveness?.close()
    }

    /// Closes the database connections after the operations already started; later calls throw.
    ///
    /// Releasing the backend closes them too, but in the background; call this when the file must be
    /// closed at a known point (before copying or deleting it).
    public func close() async {
        foreignChanges?.stop()
        for thread in [reader, writer].compactMap({ $0 }) {
            _ = try? await thread.run { c in c.close() }
            thread.stop()
        }
        releaseLockFile()
        // After the connections: a lease taken by a call still running holds its owner until then.
        liveness?.close()
    }

    /// Gives up this backend's share of the process's lock on the side file (once).
    private func releaseLockFile() {
        lockFile.withLock { lock in
            lock?.release()
            lock = nil
        }
    }

    /// Sets the quota on the database size (see ``Options/maxDatabaseBytes``) while the backend runs,
    /// e.g. to let writes that failed with "database or disk is full" succeed again.
    /// - Parameter bytes: the new quota, or `nil` for none.
    /// - Throws: ``SQLiteError`` when the setting cannot be applied; `DurableTaskError(.storage)` after ``close()``.
    public func setMaxDatabaseBytes(_ bytes: Int?) async throws {
        try await writer.run { c in try DatabaseSetup.setQuota(c, bytes: bytes) }
        maxDatabaseBytes.withLock { $0 = bytes }
    }

    // MARK: Running on the connections

    /// Write transactions committed waiting for the disk and without; see ``DatabaseThread/transactionCounts``.
    var writeTransactionCounts: (synced: Int, relaxed: Int) { writer.transactionCounts }

    /// Runs a write transaction on the writer thread, sharing its commit with the writes queued beside
    /// it (see ``DatabaseThread``); returns once it committed.
    /// - Parameter durable: whether the commit must reach the disk before it returns, for a step
    ///   ``Synchronous/full`` lets ride with the next such commit; leases and client calls say so
    ///   themselves.
    private func write<T: Sendable>(durable: Bool = true, _ body: @escaping @Sendable (Connection, Date) throws -> T) async throws -> T {
        let clock = self.clock
        do {
            return try await writer.write(durable: durable || options.synchronous == .fullEveryStep) { c in
                // Read inside the write lock, so "now" is never older than a row another writer just committed.
                try body(c, clock.now())
            }
        } catch let error as SQLiteError {
            throw storageError(error)
        }
    }

    /// Runs a lease transaction for `owner` on the writer thread, after holding the owner's lock and,
    /// now and then, releasing the leases of owners whose process died (see ``OwnerLiveness``).
    /// - Parameter durable: `true` for a lease that rides in a commit that must reach the disk
    ///   (an episode's, see ``completeOrchestrationWorkItem(_:result:leasing:)``).
    private func lease<T: Sendable>(owner: String, durable: Bool = false, _ body: @escaping @Sendable (Connection, Date) throws -> T) async throws -> T {
        let clock = self.clock
        let liveness = self.liveness
        let signals = self.signals
        let log = options.logHandler
        do {
            return try await writer.write(
                prepare: { c in
                    if let preparation = liveness?.prepareLease(owner: owner), !preparation.isEmpty {
                        try Self.release(preparation, c, clock: clock, signals: signals, log: log)
                    }
                },
                durable: durable,
                { c in try body(c, clock.now()) })
        } catch let error as SQLiteError {
            throw storageError(error)
        }
    }

    /// Releases the leases of dead owners in one transaction, then deletes their files.
    private static func release(
        _ preparation: OwnerLiveness.Preparation, _ c: Connection, clock: any DurableClock,
        signals: BackendSignals, log: @Sendable (LogLevel, String) -> Void
    ) throws {
        let released: [(owner: String, instances: Int, activities: Int)]
        do {
            released = try c.transaction {
                let now = clock.now()
                return try preparation.ownersToRelease.map { owner in
                    let counts = try Store.releaseLeases(c, owner: owner, now: now)
                    return (owner, counts.instances, counts.activities)
                }
            }
        } catch {
            for file in preparation.deadFiles { file.keep() }
            throw error
        }
        for file in preparation.deadFiles { file.remove() }
        var any = false
        for entry in released where entry.instances + entry.activities > 0 {
            any = true
            log(
                .info,
                "worker '\(entry.owner)' is gone (its process ended): took over its leases on "
                    + "\(entry.instances) instance(s) and \(entry.activities) activit\(entry.activities == 1 ? "y" : "ies")")
        }
        if any { signals.leasesReleased() }
    }

    /// Runs a read on the reader thread (the writer for in-memory databases).
    private func read<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        let fileCheck = self.fileCheck
        do {
            return try await (reader ?? writer).run { c in
                try fileCheck?.verify()
                return try c.transaction(immediate: false) { try body(c) }
            }
        } catch let error as SQLiteError {
            throw storageError(error)
        }
    }

    private func storageError(_ error: SQLiteError) -> any Error {
        error.storageError(
            path: path, busyTimeout: options.busyTimeout,
            maxDatabaseBytes: maxDatabaseBytes.withLock { $0 })
    }

    // MARK: Processes sharing the file

    /// Logs the WAL-reset warning once if another process holds the file; checks at most once a
    /// second, and not at all after warning.
    ///
    /// Runs at open and from ``waitForChange(_:since:timeout:)``, which every worker calls while
    /// idle, so a process that joins later is noticed within about a second of polling.
    private func warnIfShared() {
        guard watchesForSharing, let lock = lockFile.withLock({ $0 }), lock.claimCheck() else { return }
        let path = self.path
        let log = options.logHandler
        // On the writer thread: re-taking the shared lock after the check may wait for another
        // process's check, and blocking calls stay off the cooperative thread pool.
        writer.enqueue { _ in
            if lock.detectOtherProcessOnce() {
                log(.warning, DatabaseSetup.walSharingWarning(path: path))
            }
        }
    }

    /// Runs `body` on the writer connection, between transactions. For tests that change the
    /// connection's state (e.g. `PRAGMA query_only`, as a read-only file would).
    func withWriterConnection<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await writer.run(body)
    }

    /// Runs the sharing check now, ignoring the once-a-second limit; whether it warned. For tests.
    func checkForSharingNow() async -> Bool {
        guard watchesForSharing, let lock = lockFile.withLock({ $0 }) else { return false }
        let path = self.path
        let log = options.logHandler
        return
            (try? await writer.run { _ -> Bool in
                guard lock.detectOtherProcessOnce() else { return false }
                log(.warning, DatabaseSetup.walSharingWarning(path: path))
                return true
            }) ?? false
    }

    // MARK: Instances

    /// Creates an instance; see ``Backend/createOrchestrationInstance(_:)``.
    @_spi(Backend) public func createOrchestrationInstance(_ request: NewOrchestrationInstance) async throws {
        try await write { c, now in try Store.create(c, request, now: now) }
        signals.instanceCreated(request.instanceID)
    }

    /// Adds an event to an instance's inbox; see ``Backend/addOrchestrationEvent(instanceID:event:)``.
    @_spi(Backend) public func addOrchestrationEvent(instanceID: String, event: HistoryEvent) async throws {
        try await write { c, now in try Store.addEvent(c, instanceID: instanceID, event: event, now: now) }
        signals.orchestrationWorkAdded()
    }

    // MARK: Orchestration work items

    /// Leases the next orchestration work item; see ``Backend/getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``.
    @_spi(Backend) public func getOrchestrationWorkItem(
        owner: String, leaseDuration: Duration, includeRedelivered: Bool
    ) async throws -> OrchestrationWorkItem? {
        try await lease(owner: owner) { c, now in
            try Store.leaseOrchestration(c, owner: owner, leaseDuration: leaseDuration, includeRedelivered: includeRedelivered, now: now)
        }
    }

    /// Leases what is ready, up to `maxCount`, in one transaction; see
    /// ``Backend/getOrchestrationWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getOrchestrationWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws
        -> [OrchestrationWorkItem]
    {
        try await lease(owner: owner) { c, now in
            try Redelivery.batch(maxCount: maxCount, maxRedelivered: maxRedelivered) { includeRedelivered in
                try Store.leaseOrchestration(c, owner: owner, leaseDuration: leaseDuration, includeRedelivered: includeRedelivered, now: now)
            }
        }
    }

    /// The committed history; see ``Backend/getOrchestrationHistory(instanceID:)``.
    @_spi(Backend) public func getOrchestrationHistory(instanceID: String) async throws -> [HistoryEvent] {
        try await read { c in try Store.history(c, instanceID: instanceID) }
    }

    /// Commits an episode in one transaction; see ``Backend/completeOrchestrationWorkItem(_:result:)``.
    @_spi(Backend) public func completeOrchestrationWorkItem(_ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult) async throws {
        _ = try await commit(item, result, leasing: nil)
    }

    /// Commits an episode and leases activities it schedules, in one transaction; see
    /// ``Backend/completeOrchestrationWorkItem(_:result:leasing:)``.
    @_spi(Backend) public func completeOrchestrationWorkItem(
        _ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult, leasing lease: ActivityLeaseRequest
    ) async throws -> [ActivityWorkItem] {
        try await commit(item, result, leasing: lease)
    }

    private func commit(
        _ item: OrchestrationWorkItem, _ result: OrchestrationWorkItemResult, leasing lease: ActivityLeaseRequest?
    ) async throws -> [ActivityWorkItem] {
        // Encoding here, on the caller's thread, keeps the single writer thread for SQLite work.
        let encodedHistory = HistoryRows(result.continueAsNew == nil ? result.newHistory : [])
        let durable = TaskHubRules.episodeMustReachDisk(result)
        let body: @Sendable (Connection, Date) throws -> Store.CommittedEpisode = { c, now in
            try Store.complete(c, item, result, encodedHistory: encodedHistory, leasing: lease, now: now)
        }
        // With leases, through the lease path: it holds the owner's liveness lock first.
        let committed =
            if let lease {
                try await self.lease(owner: lease.owner, durable: durable || options.synchronous == .fullEveryStep, body)
            } else {
                try await write(durable: durable, body)
            }
        signals.episodeCommitted(
            item.instanceID, scheduledActivities: committed.activitiesLeftForOthers, orchestrationWork: committed.orchestrationWork,
            endedInstance: result.status.isTerminal,
            children: result.newInstances)
        return committed.leasedActivities
    }

    /// Releases an orchestration lease; see ``Backend/abandonOrchestrationWorkItem(_:delay:countsAsDelivery:)``.
    @_spi(Backend) public func abandonOrchestrationWorkItem(_ item: OrchestrationWorkItem, delay: Duration, countsAsDelivery: Bool) async throws {
        try await write { c, now in
            try Store.abandon(c, item, delay: delay, countsAsDelivery: countsAsDelivery, now: now)
        }
        signals.orchestrationWorkAdded()
    }

    // MARK: Activity work items

    /// Leases up to `maxCount` activities in one transaction; see ``Backend/getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getActivityWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws -> [ActivityWorkItem] {
        try await lease(owner: owner) { c, now in
            try Store.leaseActivities(
                c, owner: owner, maxCount: maxCount, maxRedelivered: maxRedelivered,
                leaseDuration: leaseDuration, now: now)
        }
    }

    /// Records activity results in one transaction; see ``Backend/completeActivityWorkItems(_:)``.
    @_spi(Backend) public func completeActivityWorkItems(_ completions: [ActivityCompletion]) async throws -> [Bool] {
        guard !completions.isEmpty else { return [] }
        let encodedEvents = completions.map { HistoryEventCodec.encode($0.event) }
        let accepted = try await write(durable: TaskHubRules.activityResultsMustReachDisk) { c, now in
            try Store.completeActivities(c, completions, encodedEvents: encodedEvents, leasing: nil, now: now).accepted
        }
        signals.activityResultsRecorded(accepted)
        return accepted
    }

    /// Records activity results and leases instances they make ready, in one transaction; see
    /// ``Backend/completeActivityWorkItems(_:leasing:)``.
    @_spi(Backend) public func completeActivityWorkItems(
        _ completions: [ActivityCompletion], leasing lease: OrchestrationLeaseRequest
    ) async throws -> RecordedActivityResults {
        guard !completions.isEmpty else { return RecordedActivityResults(accepted: []) }
        let encodedEvents = completions.map { HistoryEventCodec.encode($0.event) }
        // A lease, so the owner's liveness lock is held (as for any lease) and the commit reaches the
        // disk as the results must.
        let recorded = try await self.lease(
            owner: lease.owner, durable: TaskHubRules.activityResultsMustReachDisk || options.synchronous == .fullEveryStep
        ) { c, now in
            try Store.completeActivities(c, completions, encodedEvents: encodedEvents, leasing: lease, now: now)
        }
        signals.activityResultsRecorded(completions, recorded)
        return recorded
    }

    /// Releases an activity lease; see ``Backend/abandonActivityWorkItem(_:delay:)``.
    @_spi(Backend) public func abandonActivityWorkItem(_ item: ActivityWorkItem, delay: Duration) async throws {
        try await write { c, now in try Store.abandonActivity(c, item, delay: delay, now: now) }
        signals.activityWorkAdded()
    }

    /// Extends activity leases; see ``Backend/renewActivityWorkItemLeases(_:leaseDuration:)``.
    @_spi(Backend) public func renewActivityWorkItemLeases(_ items: [ActivityWorkItem], leaseDuration: Duration) async throws -> [Bool] {
        guard !items.isEmpty else { return [] }
        return try await write(durable: false) { c, now in try Store.renewActivities(c, items, leaseDuration: leaseDuration, now: now) }
    }

    // MARK: Queries

    /// The instance's metadata; see ``Backend/getOrchestrationMetadata(instanceID:)``.
    @_spi(Backend) public func getOrchestrationMetadata(instanceID: String) async throws -> OrchestrationMetadata? {
        try await read { c in try Store.metadata(c, instanceID: instanceID) }
    }

    /// The metadata of several instances, 500 per statement; see ``Backend/getOrchestrationMetadata(instanceIDs:)``.
    @_spi(Backend) public func getOrchestrationMetadata(instanceIDs: [String]) async throws -> [OrchestrationMetadata?] {
        var result: [OrchestrationMetadata?] = []
        result.reserveCapacity(instanceIDs.count)
        for start in stride(from: 0, to: instanceIDs.count, by: 500) {
            let chunk = Array(instanceIDs[start..<min(start + 500, instanceIDs.count)])
            result += try await read { c in try Store.metadata(c, instanceIDs: chunk) }
        }
        return result
    }

    /// Lists instances, ordered by ID; see ``Backend/queryOrchestrations(_:)``.
    @_spi(Backend) public func queryOrchestrations(_ query: OrchestrationQuery) async throws -> OrchestrationQueryResult {
        try await read { c in try Store.query(c, query) }
    }

    /// Deletes a finished instance; see ``Backend/purgeOrchestration(instanceID:)``.
    @_spi(Backend) public func purgeOrchestration(instanceID: String) async throws -> Bool {
        let purged = try await write { c, _ in try Store.purge(c, instanceID: instanceID) }
        if purged { signals.instancesPurged([instanceID]) }
        return purged
    }

    /// Deletes finished instances matching a filter; see ``Backend/purgeOrchestrations(_:)``.
    @_spi(Backend) public func purgeOrchestrations(_ filter: PurgeFilter) async throws -> Int {
        let purged = try await write { c, _ in try Store.purge(c, filter) }
        signals.instancesPurged(purged)
        return purged.count
    }

    // MARK: Wake-ups

    /// Waits for an in-process change, the next due timer or lease expiry, or `timeout`; see
    /// ``Backend/waitForChange(_:since:timeout:)``.
    ///
    /// Other processes cannot signal this one, so callers pass a `timeout` to poll; the wait is also
    /// cut short when a timer or a lease in the database comes due before it.
    @_spi(Backend) public func waitForChange(_ change: BackendChange, since generation: UInt64, timeout: Duration) async {
        warnIfShared()
        let signal = signals[change]
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

    /// Watches one instance, woken by its own changes only; see ``Backend/watchInstance(_:)``.
    @_spi(Backend) public func watchInstance(_ instanceID: String) -> InstanceWatch {
        InstanceWatch(instanceID, waiters: signals.instances, seesOtherProcesses: true)
    }

    /// The change counter; see ``Backend/changeGeneration(_:)``.
    @_spi(Backend) public func changeGeneration(_ change: BackendChange) -> UInt64 {
        signals[change].generation
    }

}
