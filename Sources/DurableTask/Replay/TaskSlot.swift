import Foundation

/// The engine's record of one durable operation: its outcome and whoever waits for it.
///
/// Only the thread draining the orchestration's executor touches it, one step at a time, so it needs
/// no lock: that is why it is `@unchecked Sendable`.
final class TaskSlot: @unchecked Sendable {  // Safe: accessed only while the owning engine drains its executor.
    let sequence: Int
    let name: String
    unowned let engine: ReplayEngine
    var outcome: Result<Payload?, any Error>?
    /// Position in completion order, which comes from history and so is the same on every replay.
    var completionIndex = -1
    /// Position in completion order of the failure the slot carries, which fan-ins compare to find the
    /// first: its own completion, or for an `allOf` slot, the first failure among its futures.
    var failureIndex = -1
    var waiters: [UnsafeContinuation<Void, Never>] = []
    /// The composite (`whenAll`/`whenAny`) waiting on this slot: a field rather than an observer closure,
    /// because a fan-out has one per item and the closure and array would be two allocations each.
    var composite: CompositeWaiter?
    /// Further composites and callbacks (retries, event timeouts).
    var observers: [() -> Void] = []
    /// For a slot that stands for several others (``OrchestrationContext/allOf(_:)``): builds the value
    /// from theirs, since it has no payload of its own.
    var combinedValue: (() throws -> any Sendable)?

    init(sequence: Int, name: String, engine: ReplayEngine) {
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
    /// - Parameter failureIndex: when the failure happened, for a slot that passes on another's
    ///   failure; by default, now.
    func resolve(_ result: Result<Payload?, any Error>, failureIndex: Int? = nil) {
        guard outcome == nil else { return }
        outcome = result
        completionIndex = engine.nextCompletionIndex
        self.failureIndex = failureIndex ?? completionIndex
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
    unowned let engine: ReplayEngine

    init(remaining: Int, engine: ReplayEngine) {
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
