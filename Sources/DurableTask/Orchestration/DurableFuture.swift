/// The handle of a durable operation (an activity, timer, sub-orchestration or external event) that
/// an orchestrator scheduled. Scheduling is synchronous; awaiting ``value`` suspends the orchestrator
/// until the result is in history.
///
/// Futures belong to the orchestration that created them: await them only inside its `run`.
public struct DurableFuture<Value: Sendable>: DurableAwaitable {
    let slot: TaskSlot
    let decode: @Sendable (Payload?) throws -> Value

    init(slot: TaskSlot, decode: @escaping @Sendable (Payload?) throws -> Value) {
        self.slot = slot
        self.decode = decode
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

    func result() throws -> Value {
        switch slot.outcome {
        case .success(let payload): return try decode(payload)
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
    var observers: [() -> Void] = []

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
        let observing = observers
        observers = []
        for observer in observing { observer() }
    }
}

/// A counter and one continuation: how `whenAll`/`whenAny` wait on N slots at O(1) cost per completion.
final class CompositeWaiter {
    var remaining: Int
    var continuation: UnsafeContinuation<Void, Never>?
    unowned let engine: OrchestrationContext

    init(remaining: Int, engine: OrchestrationContext) {
        self.remaining = remaining
        self.engine = engine
    }

    func childResolved() {
        remaining -= 1
        if remaining == 0, let continuation {
            self.continuation = nil
            engine.waitingCount -= 1
            continuation.resume()
        }
    }
}
