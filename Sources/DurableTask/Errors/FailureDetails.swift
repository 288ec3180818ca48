import Foundation

/// A serializable description of a failure: what user code threw, carried through history so an
/// orchestrator (or a client) can see why an activity, sub-orchestration or orchestration failed.
public struct FailureDetails: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The Swift type name of the error that was thrown (e.g. `"MyError"`).
    public var errorType: String
    /// The error's message: a `LocalizedError`'s `errorDescription` when it has one, else
    /// `String(describing:)` of the error (runtime errors supply their own message).
    public var message: String
    /// When `false`, retry policies do not retry this failure (e.g. payload too large, nondeterminism).
    public var isRetriable: Bool
    /// The failure that caused this one, e.g. the activity failure inside a failed sub-orchestration.
    public var inner: [FailureDetails]

    /// Creates failure details.
    public init(errorType: String, message: String, isRetriable: Bool = true, inner: FailureDetails? = nil) {
        self.errorType = errorType
        self.message = message
        self.isRetriable = isRetriable
        self.inner = inner.map { [$0] } ?? []
    }

    /// Describes an arbitrary thrown error.
    public init(error: any Error) {
        switch error {
        case let failed as TaskFailedError:
            self = failed.details
        case let dt as DurableTaskError:
            self.init(
                errorType: "DurableTaskError.\(dt.code)", message: dt.message,
                isRetriable: dt.code != .payloadTooLarge && dt.code != .activityNotRegistered
                    && dt.code != .orchestratorNotRegistered && dt.code != .payloadInvalid)
        case let nd as NonDeterminismError:
            self.init(errorType: "NonDeterminismError", message: nd.message, isRetriable: false)
        default:
            self.init(errorType: String(reflecting: type(of: error)), message: Self.message(describing: error))
        }
    }

    /// The text a person should read for a user error: a `LocalizedError`'s `errorDescription` when it
    /// has one, else `String(describing:)`.
    ///
    /// The explicit cast matters: `String(describing:)` ignores `LocalizedError` (a struct without
    /// `CustomStringConvertible` prints as `LocalizedFailure()`), and on Linux `localizedDescription`
    /// of a Swift error that is not a `LocalizedError` is a generic "The operation could not be
    /// completed" sentence, which says less than `String(describing:)`.
    private static func message(describing error: any Error) -> String {
        if let localized = error as? any LocalizedError, let text = localized.errorDescription {
            return text
        }
        return String(describing: error)
    }

    /// The failure that caused this one, if any.
    public var innerFailure: FailureDetails? { inner.first }

    public var description: String {
        var text = "\(errorType): \(message)"
        if let inner = innerFailure { text += " (caused by \(inner))" }
        return text
    }
}

/// Thrown inside an orchestrator when an activity or sub-orchestration it awaited failed.
///
/// Catch it to compensate or to continue with partial results; `details` says what failed and why.
public struct TaskFailedError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name of the activity or sub-orchestrator that failed.
    public var taskName: String
    /// The sequence number of the failed task within its orchestration.
    public var taskID: Int
    /// What the failing code threw.
    public var details: FailureDetails

    /// Creates the error.
    public init(taskName: String, taskID: Int, details: FailureDetails) {
        self.taskName = taskName
        self.taskID = taskID
        self.details = details
    }

    public var description: String { "task '\(taskName)' (#\(taskID)) failed: \(details)" }
}

/// The orchestrator's code no longer matches the history it is replayed against — usually because the
/// code was changed while an instance was running. The instance fails with this error.
public struct NonDeterminismError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The instance whose replay diverged.
    public var instanceID: String
    /// The sequence number at which history and code disagree.
    public var sequenceNumber: Int
    /// What the history holds at that position.
    public var expected: String
    /// What the orchestrator code did at that position.
    public var actual: String

    /// Creates the error.
    public init(instanceID: String, sequenceNumber: Int, expected: String, actual: String) {
        self.instanceID = instanceID
        self.sequenceNumber = sequenceNumber
        self.expected = expected
        self.actual = actual
    }

    /// A message that names the instance, the position, what history holds and what the code did.
    public var message: String {
        "non-deterministic orchestrator in instance '\(instanceID)' at sequence number \(sequenceNumber): "
            + "history holds \(expected), but the code did \(actual). "
            + "This usually means the orchestrator code changed while the instance was running."
    }

    public var description: String { message }
}
