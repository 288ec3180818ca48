@_spi(Backend) import DurableTask
import Foundation
import Synchronization

/// A ``Backend`` that keeps the task hub in a PostgreSQL database, so that workers on many machines
/// share it.
///
/// ```swift
/// let backend = try PostgresBackend(url: "postgresql://app@db.internal:5432/app", schema: "orders")
/// let worker = DurableTaskWorker(backend: backend)
/// ```
///
/// - Each task hub is one schema (``Options/schema``), so several hubs share a database. The schema is
///   created at open and migrated forward from older versions; a schema that exists but is not a
///   DurableTask task hub, or was written by a newer version, is refused with
///   `DurableTaskError(.corruptData)` and never modified.
/// - Calls run on a small pool of connections on threads of their own (libpq blocks; Swift's
///   cooperative pool must not). Every operation is one transaction; leases are taken with
///   `FOR UPDATE SKIP LOCKED`, activities in batches, and activity results are written many per
///   transaction (group commit); statements are prepared once per connection.
/// - A lost connection (the server restarted, a network failure, `pg_terminate_backend`) is
///   reconnected with back-off; an operation whose transaction had not reached `COMMIT` is run again on
///   the new connection, so the caller sees nothing of a short outage. Longer outages, a commit whose
///   outcome is unknown, statement timeouts and a full disk fail with `DurableTaskError(.storage)`,
///   which the worker retries and never counts toward poisoning. Other server errors are
///   ``PostgresError``.
/// - Changes are announced to other processes with `NOTIFY` on the task hub's channel, and a listener
///   session wakes this process's workers and waiters when another process changes something, so a
///   result or a new instance is picked up at once rather than at the next poll.
/// - Each lease owner (worker ID) holds a session advisory lock while its backend is open; when its
///   process dies the server drops the lock and the next lease call of any backend on the task hub (at
///   most every 250 ms) releases the dead worker's leases, so its work runs again at once. A live worker
///   keeps its leases; leases still expire, and lease tokens still fence off late results.
/// - A ready instance goes first to the worker that ran its last episode, which holds it in its
///   cache, for 100 ms; then to any worker (see ``ownerStopped(_:)``).
/// - Times come from the backend's ``clock`` (not the server's): the machines sharing a task hub
///   should keep their clocks in sync (NTP), as lease expiry compares them.
public final class PostgresBackend: Backend {
    /// Settings of a backend.
    public struct Options: Sendable {
        /// The schema that holds the task hub; one per task hub. Lower-case letters, digits and
        /// underscores, at most 48 characters; `durabletask` by default.
        public var schema: String
        /// How many connections (and threads) serve calls; 4 by default. Each process also opens one
        /// more for its listener.
        public var connections: Int
        /// The server-side limit for one statement (`statement_timeout`); 30 s by default. A statement
        /// that takes longer is cancelled and fails with `DurableTaskError(.storage)`.
        public var statementTimeout: Duration
        /// How long a call keeps reconnecting and retrying after the connection was lost before it
        /// fails with `DurableTaskError(.storage)`; 10 s by default.
        public var reconnectTimeout: Duration
        /// How long one connection attempt may take; 10 s by default.
        public var connectTimeout: Duration
        /// Whether every commit but a lease waits for the server's disk, as the server's
        /// `synchronous_commit` says; `false` by default. By default only what the library
        /// acknowledges does — a created instance, a raised event, a terminate or purge, an instance's
        /// end — and the steps in between (episodes that do not end the instance, activity results)
        /// reach the disk with the next such commit: a crash of the server before it means they run
        /// again, activities included, as after a crash of a worker. `true` for activities that must
        /// not run twice even then. The counterpart of SQLite's ``SQLiteBackend/Synchronous/fullEveryStep``.
        public var syncEveryStep: Bool
        /// Receives the backend's log messages (reconnects, dead workers' leases taken over). By default
        /// warnings go to standard error.
        public var logHandler: @Sendable (LogLevel, String) -> Void
        /// Whether opening a schema that does not exist creates the task hub; `true` by default. A tool
        /// that only looks at a task hub (the `durabletask` command) passes `false`, so that a mistyped
        /// schema name is an error rather than a new, empty task hub.
        public var createIfMissing: Bool

        /// Creates options.
        public init(
            schema: String = "durabletask", connections: Int = 4, statementTimeout: Duration = .seconds(30),
            reconnectTimeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(10), syncEveryStep: Bool = false,
            logHandler: @escaping @Sendable (LogLevel, String) -> Void = LogLevel.standardErrorHandler, createIfMissing: Bool = true
        ) {
            self.createIfMissing = createIfMissing
            self.schema = schema
            self.connections = connections
            self.statementTimeout = statementTimeout
            self.reconnectTimeout = reconnectTimeout
            self.connectTimeout = connectTimeout
            self.syncEveryStep = syncEveryStep
            self.logHandler = logHandler
        }
    }

    /// The backend's clock.
    public let clock: any DurableClock
    /// The settings the backend was opened with.
    public let options: Options
    /// The server, as messages name it (host, port and database; never the password).
    public let serverName: String

    private let store: PostgresStore
    private let pool: PostgresThreadPool
    private let listener: PostgresListener
    private let signals = BackendSignals()
    /// Tells this backend's own notifications from other processes'.
    private let backendID = UUID().uuidString
    /// When dead owners were last looked for (at most every 250 ms).
    private let lastLivenessCheck = Mutex<ContinuousClock.Instant?>(nil)

    /// Opens (or creates) a task hub in a PostgreSQL database.
    ///
    /// Connects, and checks or sets up the schema, on the calling thread before returning (as
    /// `SQLiteBackend` opens its file): one connection and one transaction, normally milliseconds.
    /// - Parameters:
    ///   - url: a libpq connection URL or string, e.g. `postgresql://user@host:5432/db`, or for a unix
    ///     socket `postgresql:///db?host=/var/run/postgresql`.
    ///   - options: the schema, pool size and timeouts.
    ///   - clock: the time source; pass a ``ManualClock`` in tests.
    /// - Throws: `DurableTaskError(.invalidArgument)` for a bad schema name, or for a schema that holds
    ///   no task hub when ``Options/createIfMissing`` is `false`; `DurableTaskError(.corruptData)`
    ///   when the schema exists but is not a DurableTask task hub (it is not modified), or was written by a
    ///   newer version; `DurableTaskError(.storage)` when the server cannot be reached or refuses the login.
    public init(url: String, options: Options = .init(), clock: any DurableClock = SystemClock()) throws {
        guard PostgresSchema.isValidName(options.schema) else {
            throw DurableTaskError(
                .invalidArgument,
                "'\(options.schema)' is not a valid task hub schema name: use lower-case letters, digits and underscores "
                    + "(at most 48, not starting with a digit)")
        }
        self.options = options
        self.clock = clock
        let schema = PostgresSchema(name: options.schema)
        store = PostgresStore(sql: schema)
        let timeoutMilliseconds = Int64(options.statementTimeout.timeInterval * 1000)
        let connectSeconds = max(2, Int(options.connectTimeout.timeInterval.rounded(.up)))
        let open: @Sendable () throws -> PostgresConnection = {
            try PostgresConnection(
                url: url, applicationName: "DurableTask \(options.schema)", connectTimeoutSeconds: connectSeconds,
                settings: ["SET statement_timeout = \(timeoutMilliseconds)", "SET client_min_messages = warning"] + schema.sessionSettings)
        }
        // The first connection checks the server and sets the schema up before anything else runs.
        let first: PostgresConnection
        do {
            first = try open()
        } catch let error as PostgresError {
            throw error.storageError(server: Self.describe(url))
        }
        serverName = first.serverName
        do {
            try PostgresSetup.prepare(first, schema, createIfMissing: options.createIfMissing)
        } catch let error as PostgresError {
            throw error.storageError(server: first.serverName)
        }
        first.close()
        pool = PostgresThreadPool(
            name: "DurableTask Postgres \(options.schema)", count: options.connections, serverName: serverName,
            reconnectTimeout: options.reconnectTimeout, open: open)
        let signals = self.signals
        let backendID = self.backendID
        listener = PostgresListener(
            schema: schema, serverName: serverName, log: options.logHandler, open: open,
            onNotification: { payload, serves in Self.received(payload, backendID: backendID, signals: signals, serves: serves) },
            onReconnect: {
                // Notifications sent while the listener was away are lost: everything may have changed.
                signals.leasesReleased()
                signals.instances.notifyAll()
            })
        // A jump of the clock may make timers due and leases expire.
        clock.onAdvance { signals.leasesReleased() }
    }

    deinit {
        pool.stop()
        listener.stop()
    }

    /// Closes the connections after the calls already started; later calls throw. The worker IDs'
    /// liveness locks end with the listener's session, so another process takes over leases at once.
    public func close() async {
        _ = try? await pool.run { _ in () }
        pool.stop()
        listener.stop()
    }

    /// The URL without a password, for messages before a connection told us more.
    private static func describe(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.scheme != nil else { return "the PostgreSQL server" }
        components.password = nil
        return "PostgreSQL at \(components.string ?? "?")"
    }

    // MARK: Running on the connections

    /// Runs a transaction on a pool connection. `body` may run more than once (see ``PostgresThreadPool/run(_:)``).
    /// - Parameter durable: whether the commit must be on the server's disk when it returns; leases and
    ///   the steps between what a client is told need not (see ``TaskHubRules/episodeMustReachDisk(_:)``),
    ///   unless ``Options/syncEveryStep`` says otherwise.
    private func write<T: Sendable>(durable: Bool = true, _ body: @escaping @Sendable (PostgresConnection, Date) throws -> T) async throws -> T {
        let clock = self.clock
        let durable = durable || options.syncEveryStep
        return try await pool.run { c in try c.transaction(durable: durable) { try body(c, clock.now()) } }
    }

    /// Runs a read on a pool connection (one statement or a read-only transaction).
    private func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await pool.run { c in try c.transaction { try body(c) } }
    }

    /// Runs a lease transaction for `owner`, after making sure its liveness lock is held and, now and
    /// then, releasing the leases of owners whose process is gone.
    private func lease<T: Sendable>(owner: String, _ body: @escaping @Sendable (PostgresConnection, Date) throws -> T) async throws -> T {
        try await listener.holdLock(for: owner)
        let now = ContinuousClock.now
        let due = lastLivenessCheck.withLock { last -> Bool in
            guard last.map({ now - $0 >= .milliseconds(250) }) ?? true else { return false }
            last = now
            return true
        }
        if due { try await releaseDeadOwners() }
        // A lease lost to a crash of the server only means its items are delivered again.
        return try await write(durable: false, body)
    }

    private func releaseDeadOwners() async throws {
        let store = self.store
        let channel = store.sql.channel
        let payload = notification(orchestrations: true, activities: true)
        let released = try await write { c, now in
            let released = try store.releaseDeadOwners(c, now: now)
            if released.contains(where: { $0.instances + $0.activities > 0 }) { try c.query(store.sql.notify, [.text(channel), .text(payload)]) }
            return released
        }
        var any = false
        for entry in released where entry.instances + entry.activities > 0 {
            any = true
            options.logHandler(
                .info,
                "worker '\(entry.owner)' is gone (its session with the server ended): took over its leases on "
                    + "\(entry.instances) instance(s) and \(entry.activities) activit\(entry.activities == 1 ? "y" : "ies")")
        }
        if any { signals.leasesReleased() }
    }

    // MARK: Notifications between processes

    /// The payload of a change notification: this backend's ID, then `o` (orchestration work), `a`
    /// (activity work), and the IDs of instances whose state changed, one per line. The server may
    /// add `o` to the flags, followed by tab-separated owners whose work it is (see
    /// `PostgresSchema.notifyReady`).
    private func notification(orchestrations: Bool = false, activities: Bool = false, instances: [String] = []) -> String {
        var payload = backendID + "\n" + (orchestrations ? "o" : "") + (activities ? "a" : "")
        // NOTIFY payloads are limited to 8000 bytes; waiters on the rest poll.
        var size = payload.utf8.count
        for id in instances {
            size += id.utf8.count + 1
            if size > 7000 { break }
            payload += "\n" + id
        }
        return payload
    }

    /// Sends a notification inside the transaction (delivered when it commits).
    private static func notify(_ c: PostgresConnection, _ store: PostgresStore, _ payload: String) throws {
        try c.query(store.sql.notify, [.text(store.sql.channel), .text(payload)])
    }

    /// Wakes this process for another process's change.
    ///
    /// Orchestration work that names its owners wakes only a process that serves one of them (or
    /// any process for `*`): the others could not lease it within ``PostgresSchema/stickyFor``, and
    /// they find it by their poll if its owner leaves it.
    private static func received(
        _ payload: String, backendID: String, signals: BackendSignals, serves: (Substring) -> Bool
    ) {
        let lines = payload.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 2, lines[0] != backendID else { return }
        let fields = lines[1].split(separator: "\t", omittingEmptySubsequences: false)
        let flags = fields[0]
        let owners = fields.dropFirst()
        if flags.contains("o") && (owners.isEmpty || owners.contains(where: { $0 == "*" || serves($0) })) {
            signals.orchestration.notify()
        }
        if flags.contains("a") { signals.activity.notify() }
        if lines.count > 2 {
            signals.instance.notify()
            for id in lines.dropFirst(2) { signals.instances.notify(String(id)) }
        }
    }

    // MARK: Instances

    /// Creates an instance; see ``Backend/createOrchestrationInstance(_:)``.
    @_spi(Backend) public func createOrchestrationInstance(_ request: NewOrchestrationInstance) async throws {
        let store = self.store
        let payload = notification(orchestrations: true, instances: [request.instanceID])
        try await write { c, now in
            try store.create(c, request, now: now)
            try Self.notify(c, store, payload)
        }
        signals.instanceCreated(request.instanceID)
    }

    /// Adds an event to an instance's inbox; see ``Backend/addOrchestrationEvent(instanceID:event:)``.
    @_spi(Backend) public func addOrchestrationEvent(instanceID: String, event: HistoryEvent) async throws {
        let store = self.store
        let payload = notification(orchestrations: true)
        try await write { c, now in
            try store.addEvent(c, instanceID: instanceID, event: event, now: now)
            try Self.notify(c, store, payload)
        }
        signals.orchestrationWorkAdded()
    }

    // MARK: Orchestration work items

    /// Leases the next orchestration work item; see ``Backend/getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``.
    @_spi(Backend) public func getOrchestrationWorkItem(
        owner: String, leaseDuration: Duration, includeRedelivered: Bool
    ) async throws -> OrchestrationWorkItem? {
        let store = self.store
        return try await lease(owner: owner) { c, now in
            try store.leaseOrchestrations(
                c, owner: owner, maxCount: 1, maxRedelivered: includeRedelivered ? 1 : 0, leaseDuration: leaseDuration, now: now
            ).first
        }
    }

    /// Leases what is ready, up to `maxCount`, in one transaction; see
    /// ``Backend/getOrchestrationWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getOrchestrationWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws
        -> [OrchestrationWorkItem]
    {
        let store = self.store
        return try await lease(owner: owner) { c, now in
            try store.leaseOrchestrations(
                c, owner: owner, maxCount: maxCount, maxRedelivered: maxRedelivered, leaseDuration: leaseDuration, now: now)
        }
    }

    /// The committed history; see ``Backend/getOrchestrationHistory(instanceID:)``.
    @_spi(Backend) public func getOrchestrationHistory(instanceID: String) async throws -> [HistoryEvent] {
        let store = self.store
        return try await read { c in try store.history(c, instanceID: instanceID) }
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
        // The owner's liveness lock, as for any lease: its leases are released at once when it dies.
        try await listener.holdLock(for: lease.owner)
        return try await commit(item, result, leasing: lease)
    }

    private func commit(
        _ item: OrchestrationWorkItem, _ result: OrchestrationWorkItemResult, leasing lease: ActivityLeaseRequest?
    ) async throws
        -> [ActivityWorkItem]
    {
        // Encoding here, on the caller's thread, keeps the connection threads for round trips.
        let encodedHistory = HistoryRows(result.continueAsNew == nil ? result.newHistory : [])
        let store = self.store
        let committed = try await write(durable: TaskHubRules.episodeMustReachDisk(result)) { c, now in
            // Who is woken in the other processes depends on what the commit leaves to do.
            try store.complete(c, item, result, encodedHistory: encodedHistory, leasing: lease, now: now) {
                self.notification(activities: $0, instances: $1)
            }
        }
        signals.episodeCommitted(
            item.instanceID, scheduledActivities: committed.activitiesLeftForOthers, orchestrationWork: committed.orchestrationWork,
            endedInstance: result.status.isTerminal,
            children: result.newInstances)
        return committed.leasedActivities
    }

    /// Releases an orchestration lease; see ``Backend/abandonOrchestrationWorkItem(_:delay:countsAsDelivery:)``.
    @_spi(Backend) public func abandonOrchestrationWorkItem(_ item: OrchestrationWorkItem, delay: Duration, countsAsDelivery: Bool) async throws {
        let store = self.store
        let payload = notification(orchestrations: true)
        try await write { c, now in
            try store.abandon(c, item, delay: delay, countsAsDelivery: countsAsDelivery, now: now)
            if delay == .zero { try Self.notify(c, store, payload) }
        }
        signals.orchestrationWorkAdded()
    }

    // MARK: Activity work items

    /// Leases up to `maxCount` activities in one transaction; see ``Backend/getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getActivityWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws -> [ActivityWorkItem] {
        let store = self.store
        return try await lease(owner: owner) { c, now in
            try store.leaseActivities(c, owner: owner, maxCount: maxCount, maxRedelivered: maxRedelivered, leaseDuration: leaseDuration, now: now)
        }
    }

    /// Records activity results in one transaction; see ``Backend/completeActivityWorkItems(_:)``.
    @_spi(Backend) public func completeActivityWorkItems(_ completions: [ActivityCompletion]) async throws -> [Bool] {
        try await record(completions, leasing: nil).accepted
    }

    /// Records activity results and leases instances they make ready, in one transaction; see
    /// ``Backend/completeActivityWorkItems(_:leasing:)``.
    @_spi(Backend) public func completeActivityWorkItems(
        _ completions: [ActivityCompletion], leasing lease: OrchestrationLeaseRequest
    ) async throws -> RecordedActivityResults {
        // The owner's liveness lock, as for any lease: its leases are released at once when it dies.
        if !completions.isEmpty { try await listener.holdLock(for: lease.owner) }
        return try await record(completions, leasing: lease)
    }

    private func record(_ completions: [ActivityCompletion], leasing lease: OrchestrationLeaseRequest?) async throws -> RecordedActivityResults {
        guard !completions.isEmpty else { return RecordedActivityResults(accepted: []) }
        let encodedEvents = completions.map { HistoryEventCodec.encode($0.event) }
        let store = self.store
        let payload = notification()
        let recorded = try await write(durable: TaskHubRules.activityResultsMustReachDisk) { c, now in
            try store.completeActivities(c, completions, encodedEvents: encodedEvents, leasing: lease, now: now, notification: payload)
        }
        signals.activityResultsRecorded(completions, recorded)
        return recorded
    }

    /// Releases an activity lease; see ``Backend/abandonActivityWorkItem(_:delay:)``.
    @_spi(Backend) public func abandonActivityWorkItem(_ item: ActivityWorkItem, delay: Duration) async throws {
        let store = self.store
        let payload = notification(activities: true)
        try await write { c, now in
            try store.abandonActivity(c, item, delay: delay, now: now)
            if delay == .zero { try Self.notify(c, store, payload) }
        }
        signals.activityWorkAdded()
    }

    /// Extends activity leases; see ``Backend/renewActivityWorkItemLeases(_:leaseDuration:)``.
    @_spi(Backend) public func renewActivityWorkItemLeases(_ items: [ActivityWorkItem], leaseDuration: Duration) async throws -> [Bool] {
        guard !items.isEmpty else { return [] }
        let store = self.store
        return try await write(durable: false) { c, now in try store.renewActivities(c, items, leaseDuration: leaseDuration, now: now) }
    }

    // MARK: Queries

    /// The instance's metadata; see ``Backend/getOrchestrationMetadata(instanceID:)``.
    @_spi(Backend) public func getOrchestrationMetadata(instanceID: String) async throws -> OrchestrationMetadata? {
        let store = self.store
        return try await pool.run { c in try store.metadata(c, instanceID: instanceID) }
    }

    /// The metadata of several instances in one query; see ``Backend/getOrchestrationMetadata(instanceIDs:)``.
    @_spi(Backend) public func getOrchestrationMetadata(instanceIDs: [String]) async throws -> [OrchestrationMetadata?] {
        guard !instanceIDs.isEmpty else { return [] }
        let store = self.store
        return try await pool.run { c in try store.metadata(c, instanceIDs: instanceIDs) }
    }

    /// Lists instances, ordered by ID; see ``Backend/queryOrchestrations(_:)``.
    @_spi(Backend) public func queryOrchestrations(_ query: OrchestrationQuery) async throws -> OrchestrationQueryResult {
        let store = self.store
        return try await pool.run { c in try store.query(c, query) }
    }

    /// Deletes a finished instance; see ``Backend/purgeOrchestration(instanceID:)``.
    @_spi(Backend) public func purgeOrchestration(instanceID: String) async throws -> Bool {
        let store = self.store
        let payload = notification(instances: [instanceID])
        let purged = try await write { c, _ in
            let purged = try store.purge(c, instanceID: instanceID)
            if purged { try Self.notify(c, store, payload) }
            return purged
        }
        if purged { signals.instancesPurged([instanceID]) }
        return purged
    }

    /// Deletes finished instances matching a filter; see ``Backend/purgeOrchestrations(_:)``.
    @_spi(Backend) public func purgeOrchestrations(_ filter: PurgeFilter) async throws -> Int {
        let store = self.store
        let purged = try await write { c, _ in try store.purge(c, filter) }
        signals.instancesPurged(purged)
        return purged.count
    }

    // MARK: Workers

    /// Hands the instances the stopped worker `owner` ran last to anybody at once, rather than after
    /// ``PostgresSchema/stickyFor``, and wakes the workers of every process to take them; see
    /// ``Backend/ownerStopped(_:)``.
    @_spi(Backend) public func ownerStopped(_ owner: String) async {
        let store = self.store
        let payload = notification(orchestrations: true)
        do {
            try await write { c, _ in
                try c.query(store.sql.clearOwner, [.text(owner)])
                try Self.notify(c, store, payload)
            }
            signals.orchestrationWorkAdded()
        } catch {
            // Its instances go to the others after stickyFor all the same.
            options.logHandler(.warning, "could not hand over the instances of stopped worker '\(owner)': \(error)")
        }
    }

    // MARK: Wake-ups

    /// Waits for a change in this process or (through `LISTEN`) another, the next due timer or lease
    /// expiry, or `timeout`; see ``Backend/waitForChange(_:since:timeout:)``.
    @_spi(Backend) public func waitForChange(_ change: BackendChange, since generation: UInt64, timeout: Duration) async {
        let signal = signals[change]
        guard signal.generation == generation else { return }
        var timeout = timeout
        let store = self.store
        if change != .instanceState, let due = try? await pool.run({ c in try store.nextDue(c, change) }) {
            let untilDue = max(0.001, due.timeIntervalSince(clock.now()))
            if untilDue < timeout.timeInterval {
                timeout = .milliseconds(Int64(untilDue * 1000) + 1)
            }
        }
        await signal.wait(since: generation, timeout: timeout)
    }

    /// Watches one instance, woken by its own changes, in this process or another; see ``Backend/watchInstance(_:)``.
    @_spi(Backend) public func watchInstance(_ instanceID: String) -> InstanceWatch {
        InstanceWatch(instanceID, waiters: signals.instances, seesOtherProcesses: true)
    }

    /// The change counter; see ``Backend/changeGeneration(_:)``.
    @_spi(Backend) public func changeGeneration(_ change: BackendChange) -> UInt64 {
        signals[change].generation
    }
}
