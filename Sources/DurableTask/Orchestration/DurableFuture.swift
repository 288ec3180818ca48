/// The handle of a durable operation (an activity, timer, sub-orchestration or external event) that
/// an orchestrator scheduled. Scheduling is synchronous; awaiting ``value`` suspends the orchestrator
/// until the result is in history.
///
/// Futures belong to the orchestration that created them: await them only inside its `run`.
public struct DurableFuture<Value: Sendable>: DurableAwaitable {
    let slot: TaskSlot

    init(slot: TaskSlot) {
        self.slot = slot
    }

    /// The result: returns the value, or throws ``TaskFailedError`` (or the scheduling error, such as
    /// `payloadTooLarge`, or `CancellationError` while the instance is torn down).
    public var value: Value {
        get async throws {
            await slot.wait()
            return try result()
        }
    }

    /// Whether the operation has finished (successfully or not).
    public var isCompleted: Bool { slot.outcome != nil }

    /// The opaque handle used by ``OrchestrationContext/whenAny(_:)-(DurableAwaitable...)``.
    public var handle: DurableHandle { DurableHandle(slot: slot) }

    /// Decodes the outcome. The value type is inspected at run time instead of storing a decoding
    /// closure per future: a fan-out creates one future per item, and each closure is an allocation.
    func result() throws -> Value {
        switch slot.outcome {
        case .success(let payload):
            if let combinedValue = slot.combinedValue {
                guard let typed = try combinedValue() as? Value else {
                    throw DurableTaskError(.payloadInvalid, "the result of \(slot.name) is not a \(Value.self)")
                }
                return typed
            }
            if Value.self == Void.self, let void = () as? Value { return void }
            guard let decodable = Value.self as? any Decodable.Type else {
                throw DurableTaskError(.payloadInvalid, "the result of \(slot.name) cannot be decoded as \(Value.self)")
            }
            let value = try PayloadCodec.decode(decodable, from: payload, what: "result of \(slot.name)")
            guard let typed = value as? Value else {
                throw DurableTaskError(.payloadInvalid, "the result of \(slot.name) is not a \(Value.self)")
            }
            return typed
        case .failure(let error): throw error
        case nil: throw CancellationError()
        }
    }
}

/// Anything an orchestrator can wait on with ``OrchestrationContext/whenAny(_:)-(DurableAwaitable...)``,
/// whatever its value type.
public protocol DurableAwaitable: Sendable {
    /// The opaque handle of the underlying operation.
    var handle: DurableHandle { get }
}

/// The opaque handle of a durable operation.
public struct DurableHandle: Sendable {
    let slot: TaskSlot
}
