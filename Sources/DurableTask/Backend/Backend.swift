import Foundation

/// The storage seam: everything the worker and the client need from a task hub's store.
///
/// Work-item based, as in durabletask-go. Orchestration state lives in two places per instance: the
/// append-only **history** (old events) and an **inbox** of new events. A worker leases an
/// orchestration work item (all new events of one instance), runs an episode, and completes the item,
/// which commits the episode in one atomic step. Activities are separate work items. Leases have an
/// owner and an expiry; an expired lease may be taken by any worker (crash recovery).
///
/// Every method may throw a backend storage error (`DurableTaskError(.storage)` or a backend-specific
/// error such as `SQLiteError`); the ones that can fail for a reason the caller can act on say so.
///
/// Users hand a backend to a ``DurableTaskClient`` and a ``DurableTaskWorker`` and read only its
/// ``clock``; the client and the worker call the rest. So the storage requirements, and the work-item
/// types they take, are backend-author API behind `@_spi(Backend)`: a backend author writes
/// `@_spi(Backend) import DurableTask` and marks each implementation `@_spi(Backend) public`.
public protocol Backend: Sendable {
    /// The clock used for timestamps, timer due times and lease expiry. Tests inject a ``ManualClock``.
    var clock: any DurableClock { get }

    /// Creates an instance: its metadata (status `pending`) and its `executionStarted` event in the inbox
    /// (visible at the scheduled start time, if any).
    /// - Throws: `DurableTaskError(.instanceAlreadyExists)` when the ID exists, unless it is finished and
    ///   `replaceIfFinished` is set (then its history and inbox are replaced).
    @_spi(Backend) func createOrchestrationInstance(_ request: NewOrchestrationInstance) async throws

    /// Adds an event (external event, terminate, suspend, resume) to an instance's inbox.
    /// - Throws: `DurableTaskError(.instanceNotFound)`; `DurableTaskError(.invalidState)` when the instance
    ///   has finished, so an event is never silently dropped into a finished history.
    @_spi(Backend) func addOrchestrationEvent(instanceID: String, event: HistoryEvent) async throws

    /// Leases the next orchestration work item: an instance with visible inbox events that is not leased
    /// (or whose lease expired). Returns `nil` when there is none.
    /// - Parameters:
    ///   - owner: the leasing worker's ID; a backend that can tell when an owner's process is gone hands
    ///     its leases over at once.
    ///   - leaseDuration: how long the lease lasts unless completed or abandoned.
    ///   - includeRedelivered: whether the item may be a **redelivery**: one whose deliveries ended
    ///     without a result (its worker died, or its lease ran out) at least twice, so its
    ///     ``OrchestrationWorkItem/deliveryCount`` at rest is 2 or more. A worker runs redeliveries one at a
    ///     time, so that when one of them crashes the process again, only that one is counted against it.
    @_spi(Backend) func getOrchestrationWorkItem(owner: String, leaseDuration: Duration, includeRedelivered: Bool) async throws -> OrchestrationWorkItem?

    /// Leases up to `maxCount` orchestration work items (each on its own instance) in one call, of which
    /// at most `maxRedelivered` are redeliveries (see ``getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``).
    ///
    /// A worker with many episodes in flight leases what is ready in one transaction rather than one
    /// transaction per episode; the default implementation makes single leases.
    @_spi(Backend) func getOrchestrationWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws -> [OrchestrationWorkItem]

    /// The instance's committed history (its old events), in order.
    /// - Throws: `DurableTaskError(.instanceNotFound)`; `DurableTaskError(.corruptData)` for an undecodable row.
    @_spi(Backend) func getOrchestrationHistory(instanceID: String) async throws -> [HistoryEvent]

    /// Commits an episode atomically: appends `newHistory`, removes the consumed inbox events, enqueues
    /// activities, timers, messages and new instances, updates status, output, failure and custom status,
    /// and releases the lease.
    /// - Throws: `DurableTaskError(.leaseLost)` when the lease is no longer held;
    ///   `DurableTaskError(.newEventsArrived)` when `result.status` is terminal but visible inbox events
    ///   arrived after the item was leased (the worker abandons the item and runs the episode again with
    ///   them, so an accepted event never vanishes). Nothing changes in either case.
    @_spi(Backend) func completeOrchestrationWorkItem(_ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult) async throws

    /// Commits an episode like ``completeOrchestrationWorkItem(_:result:)`` and, in the same
    /// transaction, leases some of the activities it schedules to the worker that ran it (**eager
    /// dispatch**, as Temporal does): that worker runs them without a lease transaction of its own, and
    /// no other worker is woken for them. The items are leased as ``getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``
    /// would lease them — same lease, delivery count and fencing.
    ///
    /// The default commits and leases nothing; the activities are then leased the usual way.
    /// - Returns: the leased items, in the order the result schedules them (task IDs it does not
    ///   schedule lease nothing).
    @_spi(Backend) func completeOrchestrationWorkItem(
        _ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult, leasing lease: ActivityLeaseRequest
    ) async throws -> [ActivityWorkItem]

    /// Releases the lease without consuming the events, so they are delivered again (after `delay`).
    /// - Parameters:
    ///   - item: the leased item.
    ///   - delay: how long the instance stays unavailable (a back-off); `.zero` for at once.
    ///   - countsAsDelivery: whether this lease counts toward the item's
    ///     ``OrchestrationWorkItem/deliveryCount``. `false` undoes the count the lease added: the item was
    ///     handed back without a failure of its own (new events arrived, a storage error, the worker
    ///     stopping), and must not be parked as poisoned for it.
    /// - Throws: `DurableTaskError(.leaseLost)` when the lease is no longer held.
    @_spi(Backend) func abandonOrchestrationWorkItem(_ item: OrchestrationWorkItem, delay: Duration, countsAsDelivery: Bool) async throws

    /// Leases up to `maxCount` activity work items, of which at most `maxRedelivered` are redeliveries
    /// (items whose previous delivery ended without a result; see
    /// ``getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``).
    @_spi(Backend) func getActivityWorkItems(owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration) async throws -> [ActivityWorkItem]

    /// Records activity results: for each completion whose lease is still held and whose orchestration
    /// execution is current, removes the work item and adds the event to the instance's inbox. Completions
    /// whose lease was lost (expired and taken over, or already completed) change nothing. Many completions
    /// are written in one transaction (group commit).
    /// - Returns: for each completion, whether it was recorded (`false`: fenced off as late or duplicate).
    @_spi(Backend) func completeActivityWorkItems(_ completions: [ActivityCompletion]) async throws -> [Bool]

    /// Records activity results like ``completeActivityWorkItems(_:)`` and, in the same transaction,
    /// leases to the writer some of the instances the results make ready: those whose last episode
    /// that worker committed (it has them cached), up to ``OrchestrationLeaseRequest/maxCount``, never
    /// a redelivery. The next episode then needs no lease transaction and no wake-up of its own (as
    /// Temporal's workflow-task completion can hand back the next task). The items are leased as
    /// ``getOrchestrationWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)`` would lease them —
    /// same lease, delivery count and fencing.
    ///
    /// The default records the results and leases nothing; the instances are then leased the usual way.
    @_spi(Backend) func completeActivityWorkItems(
        _ completions: [ActivityCompletion], leasing lease: OrchestrationLeaseRequest
    ) async throws -> RecordedActivityResults

    /// Hands an activity lease back so another worker (or this one) runs it again after `delay`. The
    /// lease does not count toward the item's ``ActivityWorkItem/deliveryCount``: a worker hands items
    /// back when it stops, not because the activity failed.
    @_spi(Backend) func abandonActivityWorkItem(_ item: ActivityWorkItem, delay: Duration) async throws

    /// Extends the leases of activities that are still running.
    /// - Returns: for each item, whether its lease was still held and was extended.
    @_spi(Backend) func renewActivityWorkItemLeases(_ items: [ActivityWorkItem], leaseDuration: Duration) async throws -> [Bool]

    /// The instance's metadata, or `nil` when it does not exist.
    @_spi(Backend) func getOrchestrationMetadata(instanceID: String) async throws -> OrchestrationMetadata?

    /// The metadata of several instances in one call, in the order asked, `nil` for each that does not
    /// exist. The default reads them one by one; a database backend reads them in one query.
    @_spi(Backend) func getOrchestrationMetadata(instanceIDs: [String]) async throws -> [OrchestrationMetadata?]

    /// Lists instances matching a filter, one page at a time, ordered by instance ID.
    @_spi(Backend) func queryOrchestrations(_ query: OrchestrationQuery) async throws -> OrchestrationQueryResult

    /// Deletes a finished instance: metadata, history and inbox.
    /// - Returns: whether an instance was deleted.
    /// - Throws: `DurableTaskError(.invalidState)` when the instance has not finished.
    @_spi(Backend) func purgeOrchestration(instanceID: String) async throws -> Bool

    /// Deletes every finished instance matching the filter.
    /// - Returns: how many were deleted.
    @_spi(Backend) func purgeOrchestrations(_ filter: PurgeFilter) async throws -> Int

    /// Suspends the caller until a change of the given kind may have happened in this process, or
    /// `timeout` passed (to notice other processes, or a timer becoming due).
    /// - Parameters:
    ///   - change: the kind of change to wait for.
    ///   - generation: the value of ``changeGeneration(_:)`` read before the caller last looked for work;
    ///     when it differs already, the call returns at once, so no wake-up is lost.
    ///   - timeout: the longest wait.
    @_spi(Backend) func waitForChange(_ change: BackendChange, since generation: UInt64, timeout: Duration) async

    /// A counter that increases whenever a change of the given kind is signalled.
    @_spi(Backend) func changeGeneration(_ change: BackendChange) -> UInt64

    /// Starts watching one instance's state (status, output, custom status): a waiter on it is woken by
    /// changes of that instance only. The default watches the task-hub-wide signal, which wakes every
    /// waiter on every change; a backend that names the instance it changed should do better.
    @_spi(Backend) func watchInstance(_ instanceID: String) -> InstanceWatch

    /// Tells the backend that the worker leasing as `owner` stopped: it runs nothing more and its
    /// cache is gone. A backend that leaves an instance to the worker that ran its last episode for a
    /// while (PostgreSQL) hands that worker's instances to anybody from now on. The default does
    /// nothing; errors are the backend's to log, the worker is stopping either way.
    @_spi(Backend) func ownerStopped(_ owner: String) async
}

extension Backend {
    /// Nothing to hand over; see ``ownerStopped(_:)``.
    @_spi(Backend) public func ownerStopped(_ owner: String) async {}

    /// Commits and leases nothing; see ``completeOrchestrationWorkItem(_:result:leasing:)``.
    @_spi(Backend) public func completeOrchestrationWorkItem(
        _ item: OrchestrationWorkItem, result: OrchestrationWorkItemResult, leasing lease: ActivityLeaseRequest
    ) async throws -> [ActivityWorkItem] {
        try await completeOrchestrationWorkItem(item, result: result)
        return []
    }

    /// Records the results and leases nothing; see ``completeActivityWorkItems(_:leasing:)``.
    @_spi(Backend) public func completeActivityWorkItems(
        _ completions: [ActivityCompletion], leasing lease: OrchestrationLeaseRequest
    ) async throws -> RecordedActivityResults {
        RecordedActivityResults(accepted: try await completeActivityWorkItems(completions))
    }

    /// Watches the task-hub-wide signal; see ``watchInstance(_:)``.
    @_spi(Backend) public func watchInstance(_ instanceID: String) -> InstanceWatch {
        InstanceWatch(instanceID, backend: self)
    }

    /// Reads the instances one by one; see ``getOrchestrationMetadata(instanceIDs:)``.
    @_spi(Backend) public func getOrchestrationMetadata(instanceIDs: [String]) async throws -> [OrchestrationMetadata?] {
        var result: [OrchestrationMetadata?] = []
        result.reserveCapacity(instanceIDs.count)
        for id in instanceIDs { result.append(try await getOrchestrationMetadata(instanceID: id)) }
        return result
    }

    /// Leases the next orchestration work item, redeliveries included; see
    /// ``getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``.
    @_spi(Backend) public func getOrchestrationWorkItem(owner: String, leaseDuration: Duration) async throws -> OrchestrationWorkItem? {
        try await getOrchestrationWorkItem(owner: owner, leaseDuration: leaseDuration, includeRedelivered: true)
    }

    /// Single leases until `maxCount` or nothing is ready; see
    /// ``getOrchestrationWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getOrchestrationWorkItems(
        owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration
    ) async throws
        -> [OrchestrationWorkItem]
    {
        var items: [OrchestrationWorkItem] = []
        var redeliveries = 0
        while items.count < maxCount {
            guard
                let item = try await getOrchestrationWorkItem(
                    owner: owner, leaseDuration: leaseDuration, includeRedelivered: redeliveries < maxRedelivered)
            else { break }
            if Redelivery.isRedelivery(leasedCount: item.deliveryCount) { redeliveries += 1 }
            items.append(item)
        }
        return items
    }

    /// Leases up to `maxCount` activity work items, redeliveries included; see
    /// ``getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    @_spi(Backend) public func getActivityWorkItems(owner: String, maxCount: Int, leaseDuration: Duration) async throws -> [ActivityWorkItem] {
        try await getActivityWorkItems(owner: owner, maxCount: maxCount, maxRedelivered: maxCount, leaseDuration: leaseDuration)
    }

    /// Releases the lease after a failed delivery; see
    /// ``abandonOrchestrationWorkItem(_:delay:countsAsDelivery:)``.
    @_spi(Backend) public func abandonOrchestrationWorkItem(_ item: OrchestrationWorkItem, delay: Duration) async throws {
        try await abandonOrchestrationWorkItem(item, delay: delay, countsAsDelivery: true)
    }
}
