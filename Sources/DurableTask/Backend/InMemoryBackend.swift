import Foundation
import Synchronization

/// A backend that keeps the task hub in memory: fast, and gone when the process ends.
///
/// Use it for tests and for workloads that need no durability across process restarts. It implements
/// the full ``Backend`` contract (leases, fencing, timers, paging), so code tested against it behaves
/// the same on `SQLiteBackend`.
public final class InMemoryBackend: Backend {
    private struct Lease {
        var owner: String
        var token: String
        var expires: Date
        /// When the work item was leased: the inbox entries visible then are the ones it consumes.
        var leasedAt = Date.distantPast
    }

    private struct InboxEntry {
        var id: Int64
        var event: HistoryEvent
        var visibleAt: Date?
    }

    /// A class, so that appending to a long history mutates it in place: a struct copied out of the
    /// dictionary would copy the whole history on every episode (O(N²) over a fan-out).
    private final class InstanceRecord {
        var metadata: OrchestrationMetadata
        var history: [HistoryEvent] = []
        var inbox: [InboxEntry] = []
        var lease: Lease?
        var deliveryCount = 0

        init(metadata: OrchestrationMetadata) {
            self.metadata = metadata
        }
    }

    /// A class, so leasing and renewing mutate it in place and the map holds one pointer per item.
    private final class ActivityRecord {
        var item: ActivityWorkItem
        var lease: Lease?
        var visibleAt: Date?

        init(item: ActivityWorkItem) {
            self.item = item
        }
    }

    private struct State {
        var instances: [String: InstanceRecord] = [:]
        /// Activity work items by receipt (a sequence number): integer keys keep the hot path cheap.
        var activities = SequenceMap<ActivityRecord>()
        var nextActivityReceipt: Int64 = 1
        var nextToken: UInt64 = 0
        /// Activities ready to lease, in order; entries may be stale (completed or leased) and are skipped.
        var activityQueue: [Int64] = []
        var activityQueueHead = 0
        /// Instances that may have visible inbox events; entries may be stale and are re-checked.
        var readyInstances: [String] = []
        var readyHead = 0
        var readySet: Set<String> = []
        /// Instances with inbox events not yet visible (timers, delayed starts), by due time.
        var delayed: [(due: Date, instanceID: String)] = []
        var nextInboxID: Int64 = 1
        var lastLeaseScan = Date.distantPast
    }

    private let state = Mutex(State())
    private let signals = BackendSignals()
    /// The backend's clock.
    public let clock: any DurableClock

    /// How often leases are scanned for expiry when no other work is queued.
    private let leaseScanInterval: TimeInterval = 1

    /// Creates an empty in-memory task hub.
    /// - Parameter clock: the time source; pass a ``ManualClock`` in tests to control timers.
    public init(clock: any DurableClock = SystemClock()) {
        self.clock = clock
        let signals = self.signals
        // A jump of the clock may make timers due and leases expire.
        clock.onAdvance { signals.leasesReleased() }
    }

    // MARK: - Instances

    /// Creates an instance; see ``Backend/createOrchestrationInstance(_:)``.
    @_spi(Backend) public func createOrchestrationInstance(_ request: NewOrchestrationInstance) async throws {
        let now = clock.now()
        // Made before the lock: the client's and the worker's threads wait for it.
        let metadata = TaskHubRules.newMetadata(request, now: now)
        let visibleAt = TaskHubRules.startVisibility(request, now: now)
        try state.withLock { state in
            _ = try TaskHubRules.checkCreate(request, existing: state.instances[request.instanceID]?.metadata.status)
            state.instances[request.instanceID] = InstanceRecord(metadata: metadata)
            Self.enqueue(request.startEvent, visibleAt: visibleAt, for: request.instanceID, now: now, in: &state)
        }
        signals.instanceCreated(request.instanceID)
    }

    private static func enqueue(_ event: HistoryEvent, visibleAt: Date?, for instanceID: String, now: Date, in state: inout State) {
        let id = state.nextInboxID
        state.nextInboxID += 1
        state.instances[instanceID]?.inbox.append(InboxEntry(id: id, event: event, visibleAt: visibleAt))
        if let visibleAt, visibleAt > now {
            let index = state.delayed.firstIndex { $0.due > visibleAt } ?? state.delayed.endIndex
            state.delayed.insert((visibleAt, instanceID), at: index)
        } else {
            markReady(instanceID, in: &state)
        }
    }

    /// Lease tokens only need to be unique within this backend; a counter is far cheaper than a UUID.
    private static func newToken(_ state: inout State) -> String {
        state.nextToken += 1
        return String(state.nextToken)
    }

    private static func markReady(_ instanceID: String, in state: inout State) {
        if state.readySet.insert(instanceID).inserted {
            state.readyInstances.append(instanceID)
        }
    }

    /// Adds an event to an instance's inbox; see ``Backend/addOrchestrationEvent(instanceID:event:)``.
    @_spi(Backend) public func addOrchestrationEvent(instanceID: String, event: HistoryEvent) async throws {
        let now = clock.now()
        try state.withLock { state in
            try TaskHubRules.checkNewEvent(event, instanceID: instanceID, existing: state.instances[instanceID]?.metadata.status)
            Self.enqueue(event, visibleAt: now, for: instanceID, now: now, in: &state)
        }
        signals.orchestrationWorkAdded()
    }

    // MARK: - Orchestration work items

    /// Leases the next orchestration work item; see ``Backend/getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``.
    @_spi(Backend) public func getOrchestrationWorkItem(
        owner: String, leaseDuration: Duration, includeRedelivered: Bool
    ) async throws -> OrchestrationWorkItem? {
        try await getOrchestrationWorkItems(owner: owner, maxCount: 1, maxRedelivered: includeRedelivered ? 1 : 0, leaseDuration: leaseDuration).first
    }

    /// Leases what is ready, up to `maxCount`, under one lock; see
    /// ``Backend/getOrchestrationWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getOrchestrationWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws
        -> [OrchestrationWorkItem]
    {
        let now = clock.now()
        return state.withLock { state -> [OrchestrationWorkItem] in
            Self.promoteDueTimers(now: now, in: &state)
            Self.scanExpiredLeases(now: now, interval: leaseScanInterval, in: &state)
            // Redeliveries passed over stay ready for a caller that takes them.
            var passedOver: [String] = []
            defer { for id in passedOver { Self.markReady(id, in: &state) } }
            return Redelivery.batch(maxCount: maxCount, maxRedelivered: maxRedelivered) { includeRedelivered in
                Self.leaseNext(
                    owner: owner, leaseDuration: leaseDuration, includeRedelivered: includeRedelivered, now: now, passedOver: &passedOver, in: &state)
            }
        }
    }

    private static func leaseNext(
        owner: String, leaseDuration: Duration, includeRedelivered: Bool, now: Date, passedOver: inout [String], in state: inout State
    ) -> OrchestrationWorkItem? {
        while state.readyHead < state.readyInstances.count {
            let instanceID = state.readyInstances[state.readyHead]
            state.readyHead += 1
            state.readySet.remove(instanceID)
            if state.readyHead > 1024, state.readyHead * 2 > state.readyInstances.count {
                state.readyInstances.removeFirst(state.readyHead)
                state.readyHead = 0
            }
            guard let record = state.instances[instanceID] else { continue }
            if let lease = record.lease, lease.expires > now { continue }
            if !includeRedelivered && record.deliveryCount >= Redelivery.isolatedAfter {
                passedOver.append(instanceID)
                continue
            }
            if let item = lease(record, instanceID, owner: owner, leaseDuration: leaseDuration, now: now, in: &state) { return item }
        }
        return nil
    }

    /// Leases an instance with its visible inbox events, or returns `nil` (leasing nothing) when it
    /// has none.
    private static func lease(
        _ record: InstanceRecord, _ instanceID: String, owner: String, leaseDuration: Duration, now: Date, in state: inout State
    ) -> OrchestrationWorkItem? {
        let visible = record.inbox.filter { $0.visibleAt.map { $0 <= now } ?? true }
        guard let last = visible.last else { return nil }
        let token = Self.newToken(&state)
        record.lease = Lease(owner: owner, token: token, expires: now.addingTimeInterval(leaseDuration.timeInterval), leasedAt: now)
        record.deliveryCount += 1
        return OrchestrationWorkItem(
            instanceID: instanceID, executionID: record.metadata.executionID,
            newEvents: visible.map(\.event), historyLength: record.history.count,
            leaseToken: token, deliveryCount: record.deliveryCount, receipt: last.id)
    }

    private static func promoteDueTimers(now: Date, in state: inout State) {
        var promoted = 0
        for entry in state.delayed {
            guard entry.due <= now else { break }
            promoted += 1
            if state.instances[entry.instanceID] != nil {
                markReady(entry.instanceID, in: &state)
            }
        }
        state.delayed.removeFirst(promoted)
    }

    private static func scanExpiredLeases(now: Date, interval: TimeInterval, in state: inout State) {
        guard now.timeIntervalSince(state.lastLeaseScan) >= interval else { return }
        state.lastLeaseScan = now
        for (id, record) in state.instances where record.lease.map({ $0.expires <= now }) ?? false && !record.inbox.isEmpty {
            markReady(id, in: &state)
        }
        for (key, record) in state.activities.entries where record.lease.map({ $0.expires <= now }) ?? false {
            record.lease = nil
            state.activityQueue.append(Int64(key))
        }
    }

    /// The committed history; see ``Backend/getOrchestrationHistory(instanceID:)``.
    @_spi(Backend) public func getOrchestrationHistory(instanceID: String) async throws -> [HistoryEvent] {
        try state.withLock { state in
            guard let record = state.instances[instanceID] else {
                throw TaskHubRules.noHistory(instanceID)
            }
            return record.history
        }
    }

    /// Commits an episode atomically; see ``Backend/completeOrchestrationWorkItem(_:result:)``.
    @_spi(Backend) public func completeOrchestrationWorkItem(_ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult) async throws {
        _ = try commit(item, result, leasing: nil)
    }

    /// Commits an episode and leases activities it schedules; see ``Backend/completeOrchestrationWorkItem(_:result:leasing:)``.
    @_spi(Backend) public func completeOrchestrationWorkItem(
        _ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult, leasing lease: ActivityLeaseRequest
    ) async throws -> [ActivityWorkItem] {
        try commit(item, result, leasing: lease)
    }

    private func commit(
        _ item: OrchestrationWorkItem, _ result: OrchestrationWorkItemResult, leasing request: ActivityLeaseRequest?
    ) throws
        -> [ActivityWorkItem]
    {
        let now = clock.now()
        let eager = Set(request?.taskIDs ?? [])
        var leasedActivities: [ActivityWorkItem] = []
        var leftForOthers = false
        var orchestrationWork = !result.newInstances.isEmpty
        // Worked out before the lock: the client's and the worker's threads wait for it.
        let commit = TaskHubRules.commit(item, result, now: now)
        try state.withLock { state in
            guard let record = state.instances[item.instanceID], let lease = record.lease,
                lease.token == item.leaseToken
            else {
                throw TaskHubRules.leaseLost(item.instanceID, committing: true)
            }
            // Validate first so that a failure leaves the state untouched (atomicity).
            let leasedAt = lease.leasedAt
            let consumed = { (entry: InboxEntry) in
                TaskHubRules.consumes(item, entryID: entry.id, visibleAt: entry.visibleAt ?? .distantPast, leasedAt: leasedAt)
            }
            try TaskHubRules.checkEpisode(item, result) {
                record.inbox.contains { !consumed($0) && ($0.visibleAt.map { $0 <= now } ?? true) }
            }
            record.lease = nil
            record.deliveryCount = 0
            record.inbox.removeAll(where: consumed)
            if commit.replacesHistory {
                record.history = []
            } else {
                record.history.append(contentsOf: commit.appendHistory)
            }
            if let (executionID, input) = commit.newExecution {
                record.metadata.executionID = executionID
                record.metadata.input = input
            }
            record.metadata.output = commit.output
            record.metadata.failure = commit.failure
            record.metadata.status = commit.status
            record.metadata.customStatus = commit.customStatus
            record.metadata.lastUpdatedAt = now
            if let completedAt = commit.completedAt { record.metadata.completedAt = completedAt }
            for entry in commit.inbox {
                Self.enqueue(entry.event, visibleAt: entry.visibleAt, for: item.instanceID, now: now, in: &state)
            }
            for activity in commit.activities {
                let key = state.nextActivityReceipt
                state.nextActivityReceipt += 1
                var work = ActivityWorkItem(
                    instanceID: item.instanceID, executionID: item.executionID,
                    taskID: activity.taskID, name: activity.name, input: activity.input,
                    leaseToken: "", deliveryCount: 0, receipt: key)
                if let request, eager.contains(activity.taskID) {
                    // Leased as getActivityWorkItems leases: never queued, so nobody else meets it.
                    let token = Self.newToken(&state)
                    work.leased(token: token, deliveryCount: 1)
                    let record = ActivityRecord(item: work)
                    record.lease = Lease(owner: request.owner, token: token, expires: now.addingTimeInterval(request.leaseDuration.timeInterval))
                    state.activities[Int(key)] = record
                    leasedActivities.append(work)
                } else {
                    state.activities[Int(key)] = ActivityRecord(item: work)
                    state.activityQueue.append(key)
                    leftForOthers = true
                }
            }
            for child in commit.children {
                if let event = TaskHubRules.childConflict(child, existing: state.instances[child.instanceID]?.metadata.status, now: now) {
                    Self.enqueue(event, visibleAt: now, for: item.instanceID, now: now, in: &state)
                } else {
                    state.instances[child.instanceID] = InstanceRecord(metadata: TaskHubRules.newMetadata(child, now: now))
                    Self.enqueue(
                        child.startEvent, visibleAt: TaskHubRules.startVisibility(child, now: now),
                        for: child.instanceID, now: now, in: &state)
                }
            }
            for message in commit.messages where TaskHubRules.delivers(to: state.instances[message.targetInstanceID]?.metadata.status) {
                Self.enqueue(message.event, visibleAt: now, for: message.targetInstanceID, now: now, in: &state)
                orchestrationWork = true
            }
            if commit.clearsInbox { record.inbox.removeAll() }
            if !record.inbox.isEmpty {
                Self.markReady(item.instanceID, in: &state)
                orchestrationWork = true
            }
        }
        signals.episodeCommitted(
            item.instanceID, scheduledActivities: leftForOthers, orchestrationWork: orchestrationWork, endedInstance: result.status.isTerminal,
            children: result.newInstances)
        return leasedActivities
    }

    /// Releases an orchestration lease; see ``Backend/abandonOrchestrationWorkItem(_:delay:countsAsDelivery:)``.
    @_spi(Backend) public func abandonOrchestrationWorkItem(_ item: OrchestrationWorkItem, delay: Duration, countsAsDelivery: Bool) async throws {
        let now = clock.now()
        try state.withLock { state in
            guard let record = state.instances[item.instanceID], let lease = record.lease,
                lease.token == item.leaseToken
            else {
                throw TaskHubRules.leaseLost(item.instanceID)
            }
            if !countsAsDelivery { record.deliveryCount = max(0, record.deliveryCount - 1) }
            if delay > .zero {
                // Keep it leased, by nobody, until the delay is over: the back-off of a failing item.
                record.lease = Lease(owner: "", token: Self.newToken(&state), expires: now.addingTimeInterval(delay.timeInterval))
                state.instances[item.instanceID] = record
                let due = now.addingTimeInterval(delay.timeInterval)
                let index = state.delayed.firstIndex { $0.due > due } ?? state.delayed.endIndex
                state.delayed.insert((due, item.instanceID), at: index)
            } else {
                record.lease = nil
                state.instances[item.instanceID] = record
                Self.markReady(item.instanceID, in: &state)
            }
        }
        signals.orchestrationWorkAdded()
    }

    // MARK: - Activity work items

    /// Leases activity work items; see ``Backend/getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getActivityWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws -> [ActivityWorkItem] {
        let now = clock.now()
        return state.withLock { state -> [ActivityWorkItem] in
            // Rate-limited by the interval: expired leases come back even while fresh work is queued.
            Self.scanExpiredLeases(now: now, interval: leaseScanInterval, in: &state)
            var items: [ActivityWorkItem] = []
            var redelivered = 0
            // Re-queued after the loop, or it would meet them again and never end.
            var notYetVisible: [Int64] = []
            defer { state.activityQueue.append(contentsOf: notYetVisible) }
            let expires = now.addingTimeInterval(leaseDuration.timeInterval)
            while items.count < maxCount, state.activityQueueHead < state.activityQueue.count {
                let key = state.activityQueue[state.activityQueueHead]
                state.activityQueueHead += 1
                guard let record = state.activities[Int(key)], record.lease == nil else { continue }
                if let visibleAt = record.visibleAt, visibleAt > now {
                    notYetVisible.append(key)
                    continue
                }
                // A redelivery: its deliveries ended without a result twice (see the protocol).
                if record.item.deliveryCount >= Redelivery.isolatedAfter {
                    guard redelivered < maxRedelivered else {
                        notYetVisible.append(key)
                        continue
                    }
                    redelivered += 1
                }
                let token = Self.newToken(&state)
                record.lease = Lease(owner: owner, token: token, expires: expires)
                record.item.leased(token: token, deliveryCount: record.item.deliveryCount + 1)
                items.append(record.item)
            }
            if state.activityQueueHead > 4096, state.activityQueueHead * 2 > state.activityQueue.count {
                state.activityQueue.removeFirst(state.activityQueueHead)
                state.activityQueueHead = 0
            }
            return items
        }
    }

    /// Records activity results; see ``Backend/completeActivityWorkItems(_:)``.
    @_spi(Backend) public func completeActivityWorkItems(_ completions: [ActivityCompletion]) async throws -> [Bool] {
        let accepted = record(completions, leasing: nil).accepted
        signals.activityResultsRecorded(accepted)
        return accepted
    }

    /// Records activity results and leases instances they make ready, under one lock; see
    /// ``Backend/completeActivityWorkItems(_:leasing:)``. Any instance without a live lease qualifies
    /// (one process holds the hub, and it ran them last), never a redelivery.
    @_spi(Backend) public func completeActivityWorkItems(
        _ completions: [ActivityCompletion], leasing lease: OrchestrationLeaseRequest
    ) async throws -> RecordedActivityResults {
        let recorded = record(completions, leasing: lease)
        signals.activityResultsRecorded(completions, recorded)
        return recorded
    }

    private func record(_ completions: [ActivityCompletion], leasing request: OrchestrationLeaseRequest?) -> RecordedActivityResults {
        let now = clock.now()
        return state.withLock { state -> RecordedActivityResults in
            let accepted = completions.map { completion in
                let item = completion.item
                let key = item.receipt
                guard let record = state.activities[Int(key)], let lease = record.lease, lease.token == item.leaseToken else {
                    return false
                }
                state.activities[Int(key)] = nil
                let metadata = state.instances[item.instanceID]?.metadata
                guard TaskHubRules.accepts(completion, instanceStatus: metadata?.status, executionID: metadata?.executionID) else { return false }
                Self.enqueue(completion.event, visibleAt: nil, for: item.instanceID, now: now, in: &state)
                return true
            }
            guard let request else { return RecordedActivityResults(accepted: accepted) }
            var leased: [OrchestrationWorkItem] = []
            var seen: Set<String> = []
            // Their entries in the ready queue stay, stale, and are skipped while the lease lives.
            for (completion, isAccepted) in zip(completions, accepted) where isAccepted && leased.count < request.maxCount {
                let instanceID = completion.item.instanceID
                guard seen.insert(instanceID).inserted, let record = state.instances[instanceID],
                    record.lease.map({ $0.expires <= now }) ?? true, record.deliveryCount < Redelivery.isolatedAfter,
                    let item = Self.lease(record, instanceID, owner: request.owner, leaseDuration: request.leaseDuration, now: now, in: &state)
                else { continue }
                leased.append(item)
            }
            return RecordedActivityResults(accepted: accepted, leased: leased)
        }
    }

    /// Releases an activity lease; see ``Backend/abandonActivityWorkItem(_:delay:)``.
    @_spi(Backend) public func abandonActivityWorkItem(_ item: ActivityWorkItem, delay: Duration) async throws {
        let now = clock.now()
        state.withLock { state in
            let key = item.receipt
            guard let record = state.activities[Int(key)], record.lease?.token == item.leaseToken else { return }
            record.lease = nil
            record.item.leased(token: "", deliveryCount: max(0, record.item.deliveryCount - 1))
            record.visibleAt = delay > .zero ? now.addingTimeInterval(delay.timeInterval) : nil
            state.activityQueue.append(key)
        }
        signals.activityWorkAdded()
    }

    /// Extends activity leases; see ``Backend/renewActivityWorkItemLeases(_:leaseDuration:)``.
    @_spi(Backend) public func renewActivityWorkItemLeases(_ items: [ActivityWorkItem], leaseDuration: Duration) async throws -> [Bool] {
        let expires = clock.now().addingTimeInterval(leaseDuration.timeInterval)
        return state.withLock { state in
            items.map { item in
                let key = item.receipt
                guard let record = state.activities[Int(key)], record.lease?.token == item.leaseToken else { return false }
                record.lease?.expires = expires
                return true
            }
        }
    }

    // MARK: - Queries

    /// The instance's metadata; see ``Backend/getOrchestrationMetadata(instanceID:)``.
    @_spi(Backend) public func getOrchestrationMetadata(instanceID: String) async throws -> OrchestrationMetadata? {
        state.withLock { $0.instances[instanceID]?.metadata }
    }

    /// The metadata of several instances under one lock; see ``Backend/getOrchestrationMetadata(instanceIDs:)``.
    @_spi(Backend) public func getOrchestrationMetadata(instanceIDs: [String]) async throws -> [OrchestrationMetadata?] {
        state.withLock { state in instanceIDs.map { state.instances[$0]?.metadata } }
    }

    /// Lists instances; see ``Backend/queryOrchestrations(_:)``.
    @_spi(Backend) public func queryOrchestrations(_ query: OrchestrationQuery) async throws -> OrchestrationQueryResult {
        let matching = state.withLock { state in
            state.instances.values.lazy.map(\.metadata).filter { TaskHubRules.selects(query, $0) }
        }.sorted { $0.instanceID < $1.instanceID }
        let page = Array(matching.prefix(max(1, query.pageSize)))
        let token = matching.count > page.count ? page.last?.instanceID : nil
        return OrchestrationQueryResult(instances: page, continuationToken: token)
    }

    /// Deletes a finished instance; see ``Backend/purgeOrchestration(instanceID:)``.
    @_spi(Backend) public func purgeOrchestration(instanceID: String) async throws -> Bool {
        let purged = try state.withLock { state in
            guard try TaskHubRules.checkPurge(instanceID: instanceID, existing: state.instances[instanceID]?.metadata.status) else {
                return false
            }
            state.instances[instanceID] = nil
            return true
        }
        if purged { signals.instancesPurged([instanceID]) }
        return purged
    }

    /// Deletes finished instances matching a filter; see ``Backend/purgeOrchestrations(_:)``.
    @_spi(Backend) public func purgeOrchestrations(_ filter: PurgeFilter) async throws -> Int {
        let ids = state.withLock { state in
            let ids = state.instances.values.lazy.map(\.metadata)
                .filter { TaskHubRules.purges(filter, status: $0.status, createdAt: $0.createdAt) }.map(\.instanceID)
            for id in ids { state.instances[id] = nil }
            return Array(ids)
        }
        signals.instancesPurged(ids)
        return ids.count
    }

    // MARK: - Wake-ups

    /// Waits for an in-process change or a timeout; see ``Backend/waitForChange(_:since:timeout:)``.
    @_spi(Backend) public func waitForChange(_ change: BackendChange, since generation: UInt64, timeout: Duration) async {
        var timeout = timeout
        if change == .orchestrationWork, let due = state.withLock({ $0.delayed.first?.due }) {
            // Wake up when the next timer is due rather than after the full timeout.
            let untilDue = max(0, due.timeIntervalSince(clock.now()))
            timeout = min(timeout, .milliseconds(Int64(untilDue * 1000) + 1))
        }
        await signals[change].wait(since: generation, timeout: timeout)
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

extension Duration {
    /// The duration in seconds, as Foundation measures time.
    package var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
