import Foundation

/// The task hub's rules, in one place: what may be created, raised, committed, delivered and purged,
/// and what completing an episode changes. A backend reads the facts these functions need inside its
/// transaction, asks, and stores what it is told — it has no rule of its own, so every backend behaves
/// the same and a new one is storage plus leasing.
@_spi(Backend) public enum TaskHubRules {
    // MARK: Instances and events

    /// Whether a new instance may be created, given the status of an instance with the same ID.
    /// - Returns: `true` when an existing, finished instance is to be replaced (delete it first).
    /// - Throws: `DurableTaskError(.instanceAlreadyExists)` when the ID is taken and may not be replaced.
    public static func checkCreate(_ request: NewOrchestrationInstance, existing: OrchestrationStatus?) throws -> Bool {
        guard let existing else { return false }
        guard request.replaceIfFinished, existing.isTerminal else {
            throw DurableTaskError(
                .instanceAlreadyExists,
                "an instance with ID '\(request.instanceID)' already exists (status \(existing.rawValue))")
        }
        return true
    }

    /// The metadata of a new instance: pending, created now.
    public static func newMetadata(_ request: NewOrchestrationInstance, now: Date) -> OrchestrationMetadata {
        OrchestrationMetadata(
            instanceID: request.instanceID, name: request.name, executionID: request.executionID,
            status: .pending, input: request.input, createdAt: now, lastUpdatedAt: now,
            parentInstanceID: request.parent?.instanceID)
    }

    /// When the start event of a new instance becomes visible (its scheduled start, or now).
    public static func startVisibility(_ request: NewOrchestrationInstance, now: Date) -> Date {
        request.scheduledStart ?? now
    }

    /// Whether an event (external event, terminate, suspend, resume) may be added to an instance.
    /// - Throws: `DurableTaskError(.instanceNotFound)`; `DurableTaskError(.invalidState)` when the
    ///   instance has finished, so an event is never silently dropped into a finished history.
    public static func checkNewEvent(_ event: HistoryEvent, instanceID: String, existing: OrchestrationStatus?) throws {
        guard let existing else {
            throw DurableTaskError(.instanceNotFound, "no instance with ID '\(instanceID)' to deliver \(event) to")
        }
        guard !existing.isTerminal else {
            throw DurableTaskError(.invalidState, "instance '\(instanceID)' has finished (\(existing.rawValue)); \(event) was not delivered")
        }
    }

    // MARK: Errors every backend reports alike

    /// The history of an instance that does not exist (never created, or purged).
    public static func noHistory(_ instanceID: String) -> DurableTaskError {
        DurableTaskError(.instanceNotFound, "no instance with ID '\(instanceID)'")
    }

    /// A lease that is no longer the caller's (it expired and another worker took the instance, or
    /// the owner was found dead); `committing` says the episode's changes were not stored.
    public static func leaseLost(_ instanceID: String, committing: Bool = false) -> DurableTaskError {
        DurableTaskError(
            .leaseLost, "the lease on instance '\(instanceID)' was lost" + (committing ? "; the episode was not committed" : ""))
    }

    /// The finished statuses as an SQL list (`'completed', 'failed', …`), for a database backend that
    /// selects purge candidates in a query: the list comes from ``OrchestrationStatus/isTerminal``.
    public static let finishedStatusesSQL = OrchestrationStatus.allCases.filter(\.isTerminal).map { "'\($0.rawValue)'" }.joined(separator: ", ")

    /// Whether an instance may be purged.
    /// - Returns: `false` when it does not exist (nothing to delete).
    /// - Throws: `DurableTaskError(.invalidState)` when it has not finished.
    public static func checkPurge(instanceID: String, existing: OrchestrationStatus?) throws -> Bool {
        guard let existing else { return false }
        guard existing.isTerminal else {
            throw DurableTaskError(.invalidState, "instance '\(instanceID)' is \(existing.rawValue); only finished instances can be purged")
        }
        return true
    }

    /// Whether a query selects an instance (paging aside): instances are listed by instance ID, and the
    /// continuation token is the last ID of the previous page. A database backend states the same
    /// conditions in its query.
    public static func selects(_ query: OrchestrationQuery, _ m: OrchestrationMetadata) -> Bool {
        if let statuses = query.statuses, !statuses.contains(m.status) { return false }
        if let name = query.name, m.name != name { return false }
        if let createdFrom = query.createdFrom, m.createdAt < createdFrom { return false }
        if let createdTo = query.createdTo, m.createdAt >= createdTo { return false }
        if let prefix = query.instanceIDPrefix, !m.instanceID.hasPrefix(prefix) { return false }
        if let token = query.continuationToken, m.instanceID <= token { return false }
        return true
    }

    /// Whether a purge filter selects an instance: finished ones only.
    public static func purges(_ filter: PurgeFilter, status: OrchestrationStatus, createdAt: Date) -> Bool {
        guard status.isTerminal else { return false }
        if let statuses = filter.statuses, !statuses.contains(status) { return false }
        if let before = filter.createdBefore, createdAt >= before { return false }
        return true
    }

    // MARK: Episodes

    /// Whether an inbox entry is one of those the work item carried: visible when the lease was taken,
    /// and not newer than the last one it read. Exactly these are removed when the episode commits.
    public static func consumes(_ item: OrchestrationWorkItem, entryID: Int64, visibleAt: Date, leasedAt: Date) -> Bool {
        entryID <= item.receipt && visibleAt <= leasedAt
    }

    /// Checks an episode against the instance before it is committed.
    /// - Parameters:
    ///   - item: the leased work item.
    ///   - result: what the episode produced.
    ///   - unconsumedVisibleEvents: whether the inbox holds a visible event the item did not carry (see
    ///     ``consumes(_:entryID:visibleAt:leasedAt:)``); only asked for an ending episode.
    /// - Throws: `DurableTaskError(.invalidState)` when the instance starts itself as a child;
    ///   `DurableTaskError(.newEventsArrived)` when the episode ends the instance although events arrived
    ///   after the lease — the worker runs it again with them, so an accepted event never vanishes into a
    ///   finished history.
    public static func checkEpisode(
        _ item: OrchestrationWorkItem, _ result: OrchestrationWorkItemResult,
        unconsumedVisibleEvents: () throws -> Bool
    ) throws {
        for child in result.newInstances where child.instanceID == item.instanceID {
            throw DurableTaskError(.invalidState, "instance '\(item.instanceID)' cannot start itself as a sub-orchestration")
        }
        if result.status.isTerminal, try unconsumedVisibleEvents() {
            throw DurableTaskError(
                .newEventsArrived,
                "new events arrived for instance '\(item.instanceID)' while it was finishing; the episode must run again")
        }
    }

    /// What committing an episode changes, for a backend to store in one transaction.
    public static func commit(_ item: OrchestrationWorkItem, _ result: OrchestrationWorkItemResult, now: Date) -> EpisodeCommit {
        var commit = EpisodeCommit(status: result.status, customStatus: result.customStatus)
        commit.activities = result.activities
        commit.children = result.newInstances
        commit.messages = result.messages
        for timer in result.timers {
            commit.inbox.append(.init(event: timer.event, visibleAt: timer.fireAt))
        }
        if let (startEvent, carryover) = result.continueAsNew {
            // A new execution: fresh history, the new start and the carried events in the inbox.
            commit.replacesHistory = true
            commit.inbox.append(.init(event: startEvent, visibleAt: now))
            for event in carryover { commit.inbox.append(.init(event: event, visibleAt: now)) }
            if case let .executionStarted(_, executionID, input, _, _) = startEvent.kind {
                commit.newExecution = (executionID, input)
            }
        } else {
            commit.appendHistory = result.newHistory
            commit.output = result.output
            commit.failure = result.failure
        }
        if result.status.isTerminal {
            commit.completedAt = now
            // Timers the orchestrator no longer waited for would only wake a finished instance.
            commit.clearsInbox = true
        }
        return commit
    }

    /// What to do with a sub-orchestration the episode starts, given the status of an instance with its
    /// ID: `nil` to create it (replacing a finished one), or the `subOrchestrationFailed` event to put
    /// in the parent's inbox instead, when the ID belongs to an instance that has not finished.
    public static func childConflict(_ child: NewOrchestrationInstance, existing: OrchestrationStatus?, now: Date) -> HistoryEvent? {
        do {
            _ = try checkCreate(child, existing: existing)
            return nil
        } catch {
            return HistoryEvent(
                timestamp: now,
                kind: .subOrchestrationFailed(
                    scheduledID: child.parent?.taskID ?? -1, failure: FailureDetails(error: error)))
        }
    }

    /// Whether a message reaches its target: a finished or missing instance has nobody to read it.
    public static func delivers(to targetStatus: OrchestrationStatus?) -> Bool {
        targetStatus.map { !$0.isTerminal } ?? false
    }

    // MARK: Durability

    /// Whether an episode's commit must be on the disk when it returns (an fsync), rather than only
    /// in the operating system's hands, where a process crash keeps it and a power failure may not.
    ///
    /// What the outside is told must survive a power failure: client calls (create, raise,
    /// terminate, purge) always, and an episode that finishes its instance — a client reads the
    /// output, a parent gets the result. An episode in between needs no fsync of its own: lost, it is
    /// run again from the history that survived, and the activities it scheduled may run again, as
    /// after any crash. A store whose commits reach the disk in order (a write-ahead log) loses such a
    /// commit only together with the ones after it, so the next commit that must reach the disk
    /// carries the earlier ones with it.
    public static func episodeMustReachDisk(_ result: OrchestrationWorkItemResult) -> Bool {
        result.status.isTerminal
    }

    /// Whether recorded activity results must be on the disk when the call returns: no — one lost to
    /// a power failure is an activity that runs again, which activities allow for anyway (a worker can
    /// crash between the work and the record), and the instance's next episode that finishes it
    /// carries the result to the disk. See ``episodeMustReachDisk(_:)``.
    public static let activityResultsMustReachDisk = false

    // MARK: Activities

    /// When the activities of a lease owner that is gone become visible again: before everything else
    /// in the queue (ordered by visibility), as the oldest work there is. At "now" they went behind all
    /// that was ready, and a cut-off worker's leased-ahead work ran last, tens of seconds after its
    /// leases were freed.
    public static let releasedActivitiesVisibleAt = Date(timeIntervalSinceReferenceDate: 0)

    /// Whether an activity result is recorded, given the state of its instance (its lease already
    /// checked): results for a finished instance, or for an older execution (before continue-as-new),
    /// are fenced off.
    public static func accepts(_ completion: ActivityCompletion, instanceStatus: OrchestrationStatus?, executionID: String?) -> Bool {
        guard let instanceStatus, let executionID else { return false }
        return executionID == completion.item.executionID && !instanceStatus.isTerminal
    }
}

/// What committing one episode changes, decided by ``TaskHubRules/commit(_:_:now:)``. A backend applies
/// all of it in one transaction, in this order: consume the item's inbox entries, replace or append the
/// history, add ``inbox``, enqueue ``activities``, create ``children`` (or tell the parent, see
/// ``TaskHubRules/childConflict(_:existing:now:)``), deliver ``messages``
/// (``TaskHubRules/delivers(to:)``), clear the inbox if asked, update the instance, release the lease.
@_spi(Backend) public struct EpisodeCommit: Sendable {
    /// An event for this instance's own inbox, visible from `visibleAt`.
    public struct InboxEntry: Sendable {
        /// The event.
        public var event: HistoryEvent
        /// When it may be delivered.
        public var visibleAt: Date
    }

    /// Events to append to the history (empty when ``replacesHistory``).
    public var appendHistory: [HistoryEvent] = []
    /// Continue-as-new: the old history is deleted, the next execution starts from the inbox.
    public var replacesHistory = false
    /// Events for this instance: timers, and for continue-as-new the new start and carried events.
    public var inbox: [InboxEntry] = []
    /// Activities to enqueue.
    public var activities: [ActivityRequest] = []
    /// Sub-orchestrations to create.
    public var children: [NewOrchestrationInstance] = []
    /// Events for other instances.
    public var messages: [OrchestrationMessage] = []
    /// Whether the whole inbox is dropped after the episode (the instance finished).
    public var clearsInbox = false
    /// The instance's new status.
    public var status: OrchestrationStatus
    /// The instance's output (kept as it was for continue-as-new, which clears it).
    public var output: Payload?
    /// The instance's failure.
    public var failure: FailureDetails?
    /// The instance's custom status.
    public var customStatus: Payload?
    /// When the instance finished, if it did.
    public var completedAt: Date?
    /// Continue-as-new: the next execution's ID and input.
    public var newExecution: (executionID: String, input: Payload?)?

    init(status: OrchestrationStatus, customStatus: Payload?) {
        self.status = status
        self.customStatus = customStatus
    }
}
