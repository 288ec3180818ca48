import Foundation

/// When a work item counts as a **redelivery**, which a worker runs alone (see
/// ``Backend/getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``).
@_spi(Backend) public enum Redelivery {
    /// An item whose deliveries ended without a result this many times. One crash (a process killed
    /// or restarted) redelivers its work in parallel as usual; an item it happens to twice runs alone,
    /// so that a crash it causes is counted against it and not against what ran beside it.
    @_spi(Backend) public static let isolatedAfter = 2

    /// Whether a freshly leased item (its count includes this lease) is a redelivery.
    @_spi(Backend) public static func isRedelivery(leasedCount: Int) -> Bool { leasedCount > isolatedAfter }

    /// A batch of single leases inside one transaction of a backend: `leaseOne(includeRedelivered)`
    /// until `maxCount` items or nothing is ready, with at most `maxRedelivered` redeliveries.
    @_spi(Backend) public static func batch(
        maxCount: Int, maxRedelivered: Int, _ leaseOne: (_ includeRedelivered: Bool) throws -> OrchestrationWorkItem?
    ) rethrows -> [OrchestrationWorkItem] {
        var items: [OrchestrationWorkItem] = []
        var redeliveries = 0
        while items.count < maxCount, let item = try leaseOne(redeliveries < maxRedelivered) {
            if isRedelivery(leasedCount: item.deliveryCount) { redeliveries += 1 }
            items.append(item)
        }
        return items
    }
}

/// An orchestration work item: the new events waiting for one instance, leased to one worker.
///
/// It carries **all** pending new events of the instance, so N activity completions that arrive
/// together are applied in one episode. It does not carry the old events: a worker that has the
/// instance cached applies only the new events; otherwise it loads the history with
/// ``Backend/getOrchestrationHistory(instanceID:)``.
@_spi(Backend) public struct OrchestrationWorkItem: Sendable {
    /// The instance the events belong to.
    public var instanceID: String
    /// The instance's current execution ID.
    public var executionID: String
    /// The new events, in arrival order.
    public var newEvents: [HistoryEvent]
    /// How many events the instance's history held when the item was leased; a cached instance is
    /// only valid when it has applied exactly this many.
    public var historyLength: Int
    /// Identifies this lease; completing or abandoning with a stale token fails with `leaseLost`.
    public let leaseToken: String
    /// How many times these events have been delivered, this delivery included, without being
    /// completed (poison detection; see `DurableTaskWorker.Options.maxDeliveryCount`).
    public let deliveryCount: Int
    /// The former name of ``deliveryCount``.
    @available(*, deprecated, renamed: "deliveryCount")
    public var dequeueCount: Int { deliveryCount }
    /// Backend bookkeeping: which inbox entries this item consumes (the last inbox entry it read).
    public let receipt: Int64

    /// Creates a work item.
    public init(
        instanceID: String, executionID: String, newEvents: [HistoryEvent], historyLength: Int,
        leaseToken: String, deliveryCount: Int, receipt: Int64
    ) {
        self.instanceID = instanceID
        self.executionID = executionID
        self.newEvents = newEvents
        self.historyLength = historyLength
        self.leaseToken = leaseToken
        self.deliveryCount = deliveryCount
        self.receipt = receipt
    }
}

/// An activity to run, produced by an orchestrator's `callActivity`.
@_spi(Backend) public struct ActivityRequest: Sendable, Equatable {
    /// The sequence number of the `taskScheduled` event.
    public var taskID: Int
    /// The activity name.
    public var name: String
    /// The encoded input.
    public var input: Payload?

    /// Creates a request.
    public init(taskID: Int, name: String, input: Payload?) {
        self.taskID = taskID
        self.name = name
        self.input = input
    }
}

/// Which of the activities an episode schedules its commit leases to the worker that ran it; see
/// ``Backend/completeOrchestrationWorkItem(_:result:leasing:)``.
@_spi(Backend) public struct ActivityLeaseRequest: Sendable, Equatable {
    /// The leasing worker's ID, as in ``Backend/getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    public var owner: String
    /// The sequence numbers (``ActivityRequest/taskID``) of the activities to lease; the worker picks
    /// those it has registered, up to the room it has.
    public var taskIDs: [Int]
    /// How long the leases last unless completed, renewed or abandoned.
    public var leaseDuration: Duration

    /// Creates a request.
    public init(owner: String, taskIDs: [Int], leaseDuration: Duration) {
        self.owner = owner
        self.taskIDs = taskIDs
        self.leaseDuration = leaseDuration
    }
}

/// Which instances a commit of activity results leases to the worker that writes them; see
/// ``Backend/completeActivityWorkItems(_:leasing:)``.
@_spi(Backend) public struct OrchestrationLeaseRequest: Sendable, Equatable {
    /// The leasing worker's ID, as in ``Backend/getOrchestrationWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``.
    public var owner: String
    /// The most instances to lease: the room the worker has for episodes.
    public var maxCount: Int
    /// How long the leases last unless completed or abandoned.
    public var leaseDuration: Duration

    /// Creates a request.
    public init(owner: String, maxCount: Int, leaseDuration: Duration) {
        self.owner = owner
        self.maxCount = maxCount
        self.leaseDuration = leaseDuration
    }
}

/// What ``Backend/completeActivityWorkItems(_:leasing:)`` did: which results it recorded, and the
/// instances it leased.
@_spi(Backend) public struct RecordedActivityResults: Sendable {
    /// For each completion, whether it was recorded (`false`: fenced off as late or duplicate).
    public var accepted: [Bool]
    /// The instances leased to the writer, as ``Backend/getOrchestrationWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``
    /// leases them.
    public var leased: [OrchestrationWorkItem]

    /// Creates the answer.
    public init(accepted: [Bool], leased: [OrchestrationWorkItem] = []) {
        self.accepted = accepted
        self.leased = leased
    }
}

/// An activity work item leased to one worker.
///
/// The fields live in one shared box, copied only when changed: a work item is handed from the
/// backend to the fetcher, the queue, a runner and the completion writer, and copying seven fields
/// (four strings and a payload) at each hand-off was a sixth of the cost of a large fan-out.
@_spi(Backend) public struct ActivityWorkItem: Sendable {
    private final class Storage: Sendable {
        let instanceID: String
        let executionID: String
        let taskID: Int
        let name: String
        let input: Payload?
        let leaseToken: String
        let deliveryCount: Int
        let receipt: Int64

        init(
            instanceID: String, executionID: String, taskID: Int, name: String, input: Payload?,
            leaseToken: String, deliveryCount: Int, receipt: Int64
        ) {
            self.instanceID = instanceID
            self.executionID = executionID
            self.taskID = taskID
            self.name = name
            self.input = input
            self.leaseToken = leaseToken
            self.deliveryCount = deliveryCount
            self.receipt = receipt
        }

        func with(leaseToken: String? = nil, deliveryCount: Int? = nil, receipt: Int64? = nil) -> Storage {
            Storage(
                instanceID: instanceID, executionID: executionID, taskID: taskID, name: name, input: input,
                leaseToken: leaseToken ?? self.leaseToken, deliveryCount: deliveryCount ?? self.deliveryCount,
                receipt: receipt ?? self.receipt)
        }
    }

    private var storage: Storage

    /// Creates a work item.
    public init(
        instanceID: String, executionID: String, taskID: Int, name: String, input: Payload?,
        leaseToken: String, deliveryCount: Int, receipt: Int64 = 0
    ) {
        storage = Storage(
            instanceID: instanceID, executionID: executionID, taskID: taskID, name: name, input: input,
            leaseToken: leaseToken, deliveryCount: deliveryCount, receipt: receipt)
    }

    /// The orchestration that scheduled the activity.
    public var instanceID: String { storage.instanceID }
    /// The orchestration's execution ID when it scheduled the activity; completions for an older
    /// execution (before continue-as-new) are fenced off.
    public var executionID: String { storage.executionID }
    /// The activity's sequence number in the orchestration.
    public var taskID: Int { storage.taskID }
    /// The activity name.
    public var name: String { storage.name }
    /// The encoded input.
    public var input: Payload? { storage.input }
    /// Identifies this lease.
    public var leaseToken: String { storage.leaseToken }
    /// How many times the item has been delivered, this delivery included (1 on the first run).
    public var deliveryCount: Int { storage.deliveryCount }
    /// The former name of ``deliveryCount``.
    @available(*, deprecated, renamed: "deliveryCount")
    public var dequeueCount: Int { deliveryCount }
    /// Sets the lease token and delivery count in one copy (a backend leasing the item).
    package mutating func leased(token: String, deliveryCount: Int) {
        storage = storage.with(leaseToken: token, deliveryCount: deliveryCount)
    }

    /// Backend bookkeeping: the item's key in the backend's store (a row ID), so completing it needs
    /// no lookup by strings. Unique per work item within a backend.
    public var receipt: Int64 { storage.receipt }
}

/// The outcome of one activity run: the work item and the `taskCompleted` or `taskFailed` event for its orchestration.
@_spi(Backend) public struct ActivityCompletion: Sendable {
    /// The item that ran.
    public var item: ActivityWorkItem
    /// `taskCompleted` or `taskFailed`.
    public var event: HistoryEvent

    /// Creates a completion.
    public init(item: ActivityWorkItem, event: HistoryEvent) {
        self.item = item
        self.event = event
    }
}

/// A durable timer to create: a `timerFired` event delivered to the instance at `fireAt`.
@_spi(Backend) public struct TimerRequest: Sendable, Equatable {
    /// The `timerFired` event to deliver.
    public var event: HistoryEvent
    /// When to deliver it (never earlier).
    public var fireAt: Date

    /// Creates a request.
    public init(event: HistoryEvent, fireAt: Date) {
        self.event = event
        self.fireAt = fireAt
    }
}

/// An event for another instance: a sub-orchestration's result for its parent, an event sent by
/// `sendEvent`, a terminate request for a child.
@_spi(Backend) public struct OrchestrationMessage: Sendable, Equatable {
    /// The instance that receives the event.
    public var targetInstanceID: String
    /// The event.
    public var event: HistoryEvent

    /// Creates a message.
    public init(targetInstanceID: String, event: HistoryEvent) {
        self.targetInstanceID = targetInstanceID
        self.event = event
    }
}

/// A request to create an instance: its ID and its `executionStarted` event.
@_spi(Backend) public struct NewOrchestrationInstance: Sendable {
    /// The instance ID.
    public var instanceID: String
    /// The `executionStarted` event (name, execution ID, input, parent, scheduled start time).
    public var startEvent: HistoryEvent
    /// Whether an existing instance with the same ID in a terminal status is replaced.
    public var replaceIfFinished: Bool

    /// Creates a request.
    public init(instanceID: String, startEvent: HistoryEvent, replaceIfFinished: Bool = false) {
        self.instanceID = instanceID
        self.startEvent = startEvent
        self.replaceIfFinished = replaceIfFinished
    }

    /// The orchestrator name from the start event.
    public var name: String {
        if case let .executionStarted(name, _, _, _, _) = startEvent.kind { return name }
        return ""
    }

    /// The parent from the start event, for a sub-orchestration.
    public var parent: HistoryEvent.ParentInstance? {
        if case let .executionStarted(_, _, _, parent, _) = startEvent.kind { return parent }
        return nil
    }

    /// The scheduled start time from the start event, if any.
    public var scheduledStart: Date? {
        if case let .executionStarted(_, _, _, _, start) = startEvent.kind { return start }
        return nil
    }

    /// The input from the start event.
    public var input: Payload? {
        if case let .executionStarted(_, _, input, _, _) = startEvent.kind { return input }
        return nil
    }

    /// The execution ID from the start event.
    public var executionID: String {
        if case let .executionStarted(_, executionID, _, _, _) = startEvent.kind { return executionID }
        return ""
    }
}

/// Everything one orchestration episode produced, committed by
/// ``Backend/completeOrchestrationWorkItem(_:result:)`` in one atomic step.
@_spi(Backend) public struct OrchestrationWorkItemResult: Sendable {
    /// Events appended to the instance's history: `orchestratorStarted`, the consumed new events, the
    /// events of the actions taken, and `orchestratorCompleted`.
    public var newHistory: [HistoryEvent]
    /// Activities to enqueue.
    public var activities: [ActivityRequest]
    /// Timers to create.
    public var timers: [TimerRequest]
    /// Events for other instances.
    public var messages: [OrchestrationMessage]
    /// Sub-orchestrations to create. When one's ID exists and is not finished, the backend delivers a
    /// `subOrchestrationFailed` event to this instance instead.
    public var newInstances: [NewOrchestrationInstance]
    /// The instance's status after the episode.
    public var status: OrchestrationStatus
    /// The output, when the orchestration completed.
    public var output: Payload?
    /// The failure, when the orchestration failed.
    public var failure: FailureDetails?
    /// The custom status after the episode.
    public var customStatus: Payload?
    /// Set when the orchestrator continued as new: the backend replaces the history with nothing and
    /// puts this `executionStarted` event, then the carried-over events, in the instance's inbox.
    public var continueAsNew: (startEvent: HistoryEvent, carryover: [HistoryEvent])?

    /// Creates a result.
    public init(
        newHistory: [HistoryEvent] = [], activities: [ActivityRequest] = [], timers: [TimerRequest] = [],
        messages: [OrchestrationMessage] = [], newInstances: [NewOrchestrationInstance] = [],
        status: OrchestrationStatus, output: Payload? = nil, failure: FailureDetails? = nil,
        customStatus: Payload? = nil,
        continueAsNew: (startEvent: HistoryEvent, carryover: [HistoryEvent])? = nil
    ) {
        self.newHistory = newHistory
        self.activities = activities
        self.timers = timers
        self.messages = messages
        self.newInstances = newInstances
        self.status = status
        self.output = output
        self.failure = failure
        self.customStatus = customStatus
        self.continueAsNew = continueAsNew
    }
}

/// A filter (and page) for listing instances.
public struct OrchestrationQuery: Sendable {
    /// Only instances in one of these statuses (all when `nil`).
    public var statuses: Set<OrchestrationStatus>?
    /// Only instances of this orchestrator.
    public var name: String?
    /// Only instances created at or after this time.
    public var createdFrom: Date?
    /// Only instances created before this time.
    public var createdTo: Date?
    /// Only instances whose ID starts with this prefix.
    public var instanceIDPrefix: String?
    /// The maximum number of instances returned.
    public var pageSize: Int
    /// The token from the previous page, to continue after it.
    public var continuationToken: String?

    /// Creates a query.
    public init(
        statuses: Set<OrchestrationStatus>? = nil, name: String? = nil, createdFrom: Date? = nil,
        createdTo: Date? = nil, instanceIDPrefix: String? = nil, pageSize: Int = 100,
        continuationToken: String? = nil
    ) {
        self.statuses = statuses
        self.name = name
        self.createdFrom = createdFrom
        self.createdTo = createdTo
        self.instanceIDPrefix = instanceIDPrefix
        self.pageSize = pageSize
        self.continuationToken = continuationToken
    }
}

/// One page of instances.
public struct OrchestrationQueryResult: Sendable {
    /// The instances on this page, ordered by instance ID.
    public var instances: [OrchestrationMetadata]
    /// Pass this in the next query to get the next page; `nil` on the last page.
    public var continuationToken: String?

    /// Creates a page.
    public init(instances: [OrchestrationMetadata], continuationToken: String?) {
        self.instances = instances
        self.continuationToken = continuationToken
    }
}

/// Which finished instances to purge.
public struct PurgeFilter: Sendable {
    /// Only instances created before this time.
    public var createdBefore: Date?
    /// Only instances in these (terminal) statuses; all terminal statuses when `nil`.
    public var statuses: Set<OrchestrationStatus>?

    /// Creates a filter.
    public init(createdBefore: Date? = nil, statuses: Set<OrchestrationStatus>? = nil) {
        self.createdBefore = createdBefore
        self.statuses = statuses
    }
}

/// What kind of change a waiter is interested in.
@_spi(Backend) public enum BackendChange: Sendable {
    /// An orchestration work item may be available.
    case orchestrationWork
    /// An activity work item may be available.
    case activityWork
    /// Some instance's status, output or custom status changed.
    case instanceState
}
