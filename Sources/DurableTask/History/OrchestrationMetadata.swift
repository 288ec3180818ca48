import Foundation

/// What a client can see of an orchestration instance.
public struct OrchestrationMetadata: Sendable, Equatable {
    /// The instance ID.
    public var instanceID: String
    /// The orchestrator's name.
    public var name: String
    /// The current execution's ID (changes on continue-as-new).
    public var executionID: String
    /// The runtime status.
    public var status: OrchestrationStatus
    /// The input payload of the current execution.
    public var input: Payload?
    /// The output payload, once completed.
    public var output: Payload?
    /// The last custom status the orchestrator set.
    public var customStatus: Payload?
    /// Why the instance failed, when `status == .failed`.
    public var failure: FailureDetails?
    /// When the instance was created.
    public var createdAt: Date
    /// When the instance's state last changed.
    public var lastUpdatedAt: Date
    /// When the instance reached a terminal status.
    public var completedAt: Date?
    /// The parent instance, for a sub-orchestration.
    public var parentInstanceID: String?

    /// Creates metadata.
    public init(
        instanceID: String, name: String, executionID: String, status: OrchestrationStatus,
        input: Payload? = nil, output: Payload? = nil, customStatus: Payload? = nil,
        failure: FailureDetails? = nil, createdAt: Date, lastUpdatedAt: Date,
        completedAt: Date? = nil, parentInstanceID: String? = nil
    ) {
        self.instanceID = instanceID
        self.name = name
        self.executionID = executionID
        self.status = status
        self.input = input
        self.output = output
        self.customStatus = customStatus
        self.failure = failure
        self.createdAt = createdAt
        self.lastUpdatedAt = lastUpdatedAt
        self.completedAt = completedAt
        self.parentInstanceID = parentInstanceID
    }

    /// Decodes the output as `T`.
    /// - Throws: `DurableTaskError(.payloadInvalid)` when the output is not a `T`.
    public func output<T: Decodable>(as type: T.Type) throws -> T {
        try PayloadCodec.decode(type, from: output, what: "output of instance '\(instanceID)'")
    }

    /// Decodes the input as `T`.
    public func input<T: Decodable>(as type: T.Type) throws -> T {
        try PayloadCodec.decode(type, from: input, what: "input of instance '\(instanceID)'")
    }

    /// Decodes the custom status as `T`, or `nil` when none was set.
    public func customStatus<T: Decodable>(as type: T.Type) throws -> T? {
        guard let customStatus else { return nil }
        return try PayloadCodec.decode(type, from: customStatus, what: "custom status of instance '\(instanceID)'")
    }
}
