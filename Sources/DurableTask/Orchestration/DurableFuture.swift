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

/// The engine's record of one durable operation: its outcome and whoever waits for it.
///
/// Only the thread draining the orchestration's executor touches it, one step at a time, so it needs
/// no lock: that is why it is `@unchecked Sendable`.
final class TaskSlot: @unchecked Sendable { // Safe: accessed only while the owning engine drains its executor.
    let sequence: Int
    let name: String
    unowned let engine: OrchestrationContext
    var outcome: Result<Payload?, any Error>?
    /// Position in completion order, which comes from history and so is the same on every replay.
    var completionIndex = -1
    var waiters: [UnsafeContinuation<Void, Never>] = []
    /// The composite (`whenAll`/`whenAny`) waiting on this slot: a field rather than an observer closure,
    /// because a fan-out has one per item and the closure and array would be two allocations each.
    var composite: CompositeWaiter?
    /// Further composites and callbacks (retries, event timeouts).
    var observers: [() -> Void] = []
    /// For a slot that stands for several others (``OrchestrationContext/allOf(_:)``): builds the value
    /// from theirs, since it has no payload of its own.
    var combinedValue: (() throws -> any Sendable)?

    init(sequence: Int, name: String, engine: OrchestrationContext) {
        self.sequence = sequence
        self.name = name
        self.engine = engine
    }

    /// Suspends until the slot is resolved.
    func wait() async {
        if outcome != nil { return }
        await withUnsafeContinuation { continuation in
            waiters.append(continuation)
            engine.waitingCount += 1
        }
    }

    /// Registers a composite to be told when this slot resolves.
    func observe(_ waiter: CompositeWaiter) {
        if composite == nil {
            composite = waiter
        } else {
            observers.append { waiter.childResolved() }
        }
    }

    /// Records the outcome and wakes waiters and composites (once).
    func resolve(_ result: Result<Payload?, any Error>) {
        guard outcome == nil else { return }
        outcome = result
        completionIndex = engine.nextCompletionIndex
        engine.nextCompletionIndex += 1
        let waiting = waiters
        waiters = []
        engine.waitingCount -= waiting.count
        for waiter in waiting { waiter.resume() }
        if let composite {
            self.composite = nil
            composite.childResolved()
        }
        let observing = observers
        observers = []
        for observer in observing { observer() }
    }
}

/// A counter and one continuation: how `whenAll`/`whenAny` wait on N slots at O(1) cost per completion.
final class CompositeWaiter {
    var remaining: Int
    var continuation: UnsafeContinuation<Void, Never>?
    /// Called instead of resuming a continuation, for a composite that resolves a slot (`allOf`).
    var onDone: (() -> Void)?
    unowned let engine: OrchestrationContext

    init(remaining: Int, engine: OrchestrationContext) {
        self.remaining = remaining
        self.engine = engine
    }

    func childResolved() {
        remaining -= 1
        guard remaining == 0 else { return }
        if let continuation {
            self.continuation = nil
            engine.waitingCount -= 1
            continuation.resume()
        }
        if let onDone {
            self.onDone = nil
            onDone()
        }
    }
}
