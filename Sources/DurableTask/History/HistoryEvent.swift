import Foundation

/// One entry of an orchestration's append-only history.
///
/// `eventID` is the orchestrator's sequence number for events that an orchestrator action produced
/// (`taskScheduled`, `timerCreated`, `subOrchestrationCreated`, `eventSent`); it is `-1` for the others.
/// Completion events refer back to that number through their `scheduledID`.
public struct HistoryEvent: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The sequence number of the action that produced this event, or `-1`.
    public var eventID: Int
    /// When the event was recorded.
    public var timestamp: Date
    /// What happened.
    public var kind: Kind
    /// When the activity began running, on the `taskCompleted`/`taskFailed` events a worker records
    /// after running it; `nil` on other events, on failures recorded without running the activity
    /// (not registered, poisoned), and on events stored before this field existed.
    ///
    /// History otherwise knows only when an activity was scheduled and when it finished; the time between
    /// scheduling and starting is queueing, the time after is the activity's own work. A dashboard's
    /// timeline needs both. It is a field here rather than in the `Kind` cases so existing pattern matches
    /// on `.taskCompleted(scheduledID:result:)` keep compiling.
    public var startedAt: Date?

    /// Creates an event.
    public init(eventID: Int = -1, timestamp: Date, kind: Kind, startedAt: Date? = nil) {
        self.eventID = eventID
        self.timestamp = timestamp
        self.kind = kind
        self.startedAt = startedAt
    }

    /// The parent of a sub-orchestration, recorded in its `executionStarted` event.
    public struct ParentInstance: Sendable, Codable, Equatable {
        /// The parent's instance ID.
        public var instanceID: String
        /// The parent's execution ID when it created the child.
        public var executionID: String
        /// The parent's sequence number of the `subOrchestrationCreated` action.
        public var taskID: Int
        /// The parent orchestrator's name.
        public var name: String

        /// Creates a parent reference.
        public init(instanceID: String, executionID: String, taskID: Int, name: String) {
            self.instanceID = instanceID
            self.executionID = executionID
            self.taskID = taskID
            self.name = name
        }
    }

    /// The kinds of history events, as in the Durable Task family.
    ///
    /// The rare, large cases are `indirect` so the frequent ones (`taskScheduled`, `taskCompleted`) stay
    /// small: a fan-out of 100,000 keeps 200,000 of them in memory.
    public enum Kind: Sendable, Codable, Equatable {
        /// An episode began; its timestamp is the orchestrator's `currentDate` for that episode.
        case orchestratorStarted
        /// The instance (or a new execution after continue-as-new) started.
        indirect case executionStarted(name: String, executionID: String, input: Payload?, parent: ParentInstance?, scheduledStart: Date?)
        /// An activity was scheduled.
        case taskScheduled(name: String, input: Payload?)
        /// An activity completed.
        case taskCompleted(scheduledID: Int, result: Payload?)
        /// An activity failed (after it threw, or could not run).
        indirect case taskFailed(scheduledID: Int, failure: FailureDetails)
        /// A durable timer was created.
        case timerCreated(fireAt: Date)
        /// A durable timer fired.
        case timerFired(scheduledID: Int, fireAt: Date)
        /// An external event was delivered to the instance.
        case eventRaised(name: String, input: Payload?)
        /// The orchestrator sent an event to another instance.
        indirect case eventSent(targetInstanceID: String, name: String, input: Payload?)
        /// A sub-orchestration was created.
        indirect case subOrchestrationCreated(name: String, instanceID: String, input: Payload?)
        /// A sub-orchestration completed.
        case subOrchestrationCompleted(scheduledID: Int, result: Payload?)
        /// A sub-orchestration failed.
        indirect case subOrchestrationFailed(scheduledID: Int, failure: FailureDetails)
        /// The instance was suspended by a client.
        case executionSuspended(reason: String?)
        /// The instance was resumed by a client.
        case executionResumed(reason: String?)
        /// The instance was terminated by a client.
        indirect case executionTerminated(reason: String?, recursive: Bool)
        /// The orchestrator called continue-as-new; the next execution starts with this input.
        case continuedAsNew(input: Payload?)
        /// The orchestration finished.
        indirect case executionCompleted(status: OrchestrationStatus, result: Payload?, failure: FailureDetails?)
        /// An episode ended.
        case orchestratorCompleted
        /// The instance took the new path of a code change (``OrchestrationContext/isPatched(_:)``): from
        /// this position on, it runs the code written after the change `changeID`.
        case versionMarker(changeID: String)
    }

    /// A short name of the event's kind, for messages.
    public var kindName: String {
        switch kind {
        case .orchestratorStarted: "orchestratorStarted"
        case .executionStarted: "executionStarted"
        case .taskScheduled: "taskScheduled"
        case .taskCompleted: "taskCompleted"
        case .taskFailed: "taskFailed"
        case .timerCreated: "timerCreated"
        case .timerFired: "timerFired"
        case .eventRaised: "eventRaised"
        case .eventSent: "eventSent"
        case .subOrchestrationCreated: "subOrchestrationCreated"
        case .subOrchestrationCompleted: "subOrchestrationCompleted"
        case .subOrchestrationFailed: "subOrchestrationFailed"
        case .executionSuspended: "executionSuspended"
        case .executionResumed: "executionResumed"
        case .executionTerminated: "executionTerminated"
        case .continuedAsNew: "continuedAsNew"
        case .executionCompleted: "executionCompleted"
        case .orchestratorCompleted: "orchestratorCompleted"
        case .versionMarker: "versionMarker"
        }
    }

    public var description: String {
        switch kind {
        case let .taskScheduled(name, _): "#\(eventID) taskScheduled('\(name)')"
        case let .taskCompleted(id, _): "taskCompleted(#\(id))"
        case let .taskFailed(id, f): "taskFailed(#\(id), \(f.message))"
        case let .timerCreated(at): "#\(eventID) timerCreated(\(at))"
        case let .timerFired(id, _): "timerFired(#\(id))"
        case let .eventRaised(name, _): "eventRaised('\(name)')"
        case let .subOrchestrationCreated(name, id, _): "#\(eventID) subOrchestrationCreated('\(name)', '\(id)')"
        case let .executionStarted(name, _, _, _, _): "executionStarted('\(name)')"
        case let .executionCompleted(status, _, _): "executionCompleted(\(status))"
        case let .eventSent(target, name, _): "#\(eventID) eventSent('\(name)' to '\(target)')"
        default: kindName
        }
    }
}
