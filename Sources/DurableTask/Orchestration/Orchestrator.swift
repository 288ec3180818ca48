/// Deterministic workflow code: schedules activities, timers and sub-orchestrations through its
/// ``OrchestrationContext`` and combines their results.
///
/// The worker replays an orchestrator from its history after a restart, so `run` must make the same
/// calls in the same order every time it sees the same history. Inside `run`, do **not** read the
/// clock (`Date()`), generate random numbers or UUIDs, do I/O, call actors, use `Task.sleep`,
/// `Task.detached` or unstructured tasks: use ``OrchestrationContext/currentDate``,
/// ``OrchestrationContext/newUUID()``, ``OrchestrationContext/createTimer(after:)`` and activities instead.
///
/// ```swift
/// struct SumSquares: Orchestrator {
///     func run(context: OrchestrationContext, input: [Int]) async throws -> Int {
///         let futures = input.map { context.callActivity(Square.self, input: $0) }
///         return try await context.whenAll(futures).reduce(0, +)
///     }
/// }
/// ```
public protocol Orchestrator: Sendable {
    /// The orchestrator's input type.
    associatedtype Input: Codable & Sendable
    /// The orchestrator's output type.
    associatedtype Output: Codable & Sendable
    /// The name the orchestrator is registered and scheduled under; defaults to the type name.
    static var name: String { get }
    /// Runs the orchestration. Throwing fails the instance with the error's ``FailureDetails``.
    func run(context: OrchestrationContext, input: Input) async throws -> Output
}

extension Orchestrator {
    /// The type name.
    public static var name: String { String(describing: Self.self) }
}

/// A unit of real work scheduled by an orchestrator: I/O, computation, calls to other systems.
///
/// Activities run at least once (a crash before their result is recorded runs them again), so make
/// them idempotent where repeating them matters. Their result is recorded at most once.
public protocol Activity: Sendable {
    /// The activity's input type.
    associatedtype Input: Codable & Sendable
    /// The activity's output type.
    associatedtype Output: Codable & Sendable
    /// The name the activity is registered and called under; defaults to the type name.
    static var name: String { get }
    /// Does the work. Throwing makes the orchestrator's future throw ``TaskFailedError``.
    func run(context: ActivityContext, input: Input) async throws -> Output
}

extension Activity {
    /// The type name.
    public static var name: String { String(describing: Self.self) }
}

/// What an activity knows about the call that started it.
public struct ActivityContext: Sendable {
    /// The orchestration instance that scheduled the activity.
    public let instanceID: String
    /// The activity's sequence number within that orchestration: with `instanceID`, a stable
    /// idempotency key for side effects.
    public let taskID: Int
    /// The activity name.
    public let name: String
    /// How many times this task has been delivered to a worker (1 on the first run; more after a
    /// crash or an expired lease).
    public let deliveryCount: Int

    /// Creates a context; the worker does this, tests may too.
    public init(instanceID: String, taskID: Int, name: String, deliveryCount: Int = 1) {
        self.instanceID = instanceID
        self.taskID = taskID
        self.name = name
        self.deliveryCount = deliveryCount
    }
}
