/// An error raised by the DurableTask runtime itself (client, worker or backend), as opposed to
/// an error thrown by user code.
///
/// The `code` says what went wrong in a way code can switch on; the `message` names the instance and
/// the thing involved so a single log line is enough to debug from.
public struct DurableTaskError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is. A struct rather than an enum so new codes can be added without
    /// breaking `switch` statements in user code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }

        /// No instance with the given ID exists.
        public static let instanceNotFound = Code("instanceNotFound")
        /// An instance with the given ID already exists and the caller did not ask to replace it.
        public static let instanceAlreadyExists = Code("instanceAlreadyExists")
        /// The work item's lease expired or was taken by another worker; the completion changed nothing.
        public static let leaseLost = Code("leaseLost")
        /// The former name of ``leaseLost``.
        @available(*, deprecated, renamed: "leaseLost")
        public static let workItemLockLost = leaseLost
        /// No orchestrator with the given name is registered on the worker.
        public static let orchestratorNotRegistered = Code("orchestratorNotRegistered")
        /// No activity with the given name is registered on the worker.
        public static let activityNotRegistered = Code("activityNotRegistered")
        /// A payload (input, output, event data) is larger than the configured limit.
        public static let payloadTooLarge = Code("payloadTooLarge")
        /// A payload could not be encoded or decoded.
        public static let payloadInvalid = Code("payloadInvalid")
        /// A wait timed out: the client's wait for start or completion, or an orchestrator's
        /// `waitForExternalEvent(_:as:timeout:)`.
        public static let timeout = Code("timeout")
        /// The instance is in a state that does not allow the operation (e.g. raising an event on a finished instance).
        public static let invalidState = Code("invalidState")
        /// The orchestrator awaited something that is not a durable operation (an actor, `Task.sleep`, I/O).
        public static let orchestratorEscaped = Code("orchestratorEscaped")
        /// Stored data could not be read back (corrupt history row, foreign or damaged database).
        public static let corruptData = Code("corruptData")
        /// A work item kept failing to be processed and was parked instead of being retried forever.
        public static let poisoned = Code("poisoned")
        /// New events arrived while an episode that finishes the instance ran; nothing was committed and the
        /// episode must run again with them, so an accepted event is never dropped into a finished history.
        public static let newEventsArrived = Code("newEventsArrived")
        /// A backend storage failure (I/O error, disk full, database locked beyond the timeout).
        public static let storage = Code("storage")
        /// An argument was refused before anything was stored: an empty instance ID, a name with
        /// control characters, a date that is not finite.
        public static let invalidArgument = Code("invalidArgument")

        public var description: String { raw }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable message naming the instance and the thing involved.
    public var message: String

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "DurableTaskError(\(code)): \(message)" }
}
