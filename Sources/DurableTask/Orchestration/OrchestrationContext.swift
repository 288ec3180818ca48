import Foundation

/// The orchestrator's view of its instance and the only way it schedules work.
///
/// Schedule calls (`callActivity`, `callSubOrchestrator`, `createTimer`, `waitForExternalEvent`) are
/// synchronous: they record an action and return a ``DurableFuture`` to await later, so a fan-out is a
/// plain `map`. Everything here is deterministic across replays.
///
/// The context is driven by one thread at a time — the worker's episode, draining the orchestration's
/// inline executor — which is why it is `@unchecked Sendable` without locks. Use it only inside the
/// orchestrator's `run`.
public final class OrchestrationContext: @unchecked Sendable { // Safe: only the engine thread draining this instance touches it.
    // MARK: Public state

    /// The instance ID.
    public let instanceID: String
    /// The current execution ID (changes on continue-as-new).
    public internal(set) var executionID: String = ""
    /// The orchestrator's name.
    public internal(set) var name: String = ""
    /// The episode's time: the timestamp of its `orchestratorStarted` event, the same on every replay.
    public internal(set) var currentDate: Date = Date(timeIntervalSince1970: 0)
    /// Whether old events are being replayed; side effects such as logging should be skipped then.
    public internal(set) var isReplaying = false
    /// The parent instance, when this is a sub-orchestration.
    public internal(set) var parent: HistoryEvent.ParentInstance?

    /// A logger that drops messages while replaying, so each message appears once.
    public var logger: OrchestrationLogger { OrchestrationLogger(context: self) }

    // MARK: Engine state (see OrchestrationContext+Engine.swift)

    let executor = InlineExecutor()
    let options: EngineOptions
    let resolveOrchestrator: @Sendable (String) -> OrchestratorEntry?
    var orchestratorTask: Task<Void, Never>?
    var nextSequence = 0
    var nextCompletionIndex = 0
    var uuidCounter = 0
    /// Continuations (and composites) currently suspended on the engine; 0 with an unfinished
    /// orchestrator after a drain means it awaits something the engine does not know.
    var waitingCount = 0
    /// Actions the code took that history has not (yet) confirmed, by sequence number.
    var pendingActions = SequenceMap<OrchestratorAction>()
    /// Unfinished slots by sequence number.
    var openSlots = SequenceMap<TaskSlot>()
    var openSubOrchestrations: [Int: String] = [:]
    var receivedEvents: [String: [Payload?]] = [:]
    var receivedEventOrder: [String] = []
    var eventWaiters: [String: [TaskSlot]] = [:]
    var isSuspended = false
    var suspendedEvents: [HistoryEvent] = []
    var customStatus: Payload?
    var completion: Completion?
    var continueAsNewRequest: (input: Payload?, preserveEvents: Bool)?
    var started = false
    var tornDown = false
    var terminateChildren = false
    var nonDeterminismDetected = false
    /// How the instance ended, when its history already holds `executionCompleted`.
    var recordedEnd: (status: OrchestrationStatus, output: Payload?, failure: FailureDetails?)?
    var typeNames: [ObjectIdentifier: String] = [:]
    /// Events applied since the instance was created in this process (old and new): the replay counter.
    package internal(set) var eventsApplied = 0
    /// History events this runtime has applied or committed; validates the cache against the backend.
    package internal(set) var historyLength = 0

    init(instanceID: String, options: EngineOptions, resolveOrchestrator: @escaping @Sendable (String) -> OrchestratorEntry?) {
        self.instanceID = instanceID
        self.options = options
        self.resolveOrchestrator = resolveOrchestrator
    }

    // MARK: Deterministic helpers

    /// A UUID that is the same on every replay: derived from the instance ID, the execution ID and a
    /// counter (name-based, version 5 style), never random.
    public func newUUID() -> UUID {
        uuidCounter += 1
        return DeterministicUUID.make(name: "\(instanceID)|\(executionID)|\(uuidCounter)")
    }

    /// Sets the custom status clients see in ``OrchestrationMetadata/customStatus``; `nil` clears it.
    /// A value that cannot be encoded or is over the payload limit is logged and ignored.
    public func setCustomStatus<T: Encodable>(_ status: T?) {
        guard let status else {
            customStatus = nil
            return
        }
        do {
            customStatus = try PayloadCodec.encode(status, limit: options.maxPayloadBytes, what: "custom status of instance '\(instanceID)'")
        } catch {
            logger.log(.warning, "custom status not set: \(error)")
        }
    }

    // MARK: Activities

    /// Schedules an activity and returns its future.
    /// - Parameters:
    ///   - activity: the activity type; its ``Activity/name`` is what is scheduled.
    ///   - input: the input, encoded once here.
    ///   - retry: retry failed attempts on durable timers.
    public func callActivity<A: Activity>(_ activity: A.Type, input: A.Input, retry: RetryPolicy? = nil) -> DurableFuture<A.Output> {
        callActivity(typeName(A.self) { A.name }, input: input, returning: A.Output.self, retry: retry)
    }

    /// `static var name` defaults to `String(describing:)`, which costs more than the rest of a schedule
    /// call; a fan-out asks for the same name N times, so remember it per type.
    private func typeName(_ type: Any.Type, _ compute: () -> String) -> String {
        let key = ObjectIdentifier(type)
        if let name = typeNames[key] { return name }
        let name = compute()
        typeNames[key] = name
        return name
    }

    /// Schedules an activity by name.
    public func callActivity<Input: Encodable, Output: Decodable & Sendable>(
        _ name: String, input: Input, returning: Output.Type = Output.self, retry: RetryPolicy? = nil
    ) -> DurableFuture<Output> {
        let payload: Payload
        do {
            payload = try PayloadCodec.encode(input, limit: options.maxPayloadBytes, what: "input of activity '\(name)'")
        } catch {
            return failedFuture(name: name, error: error)
        }
        guard let retry else {
            let slot = schedule(.scheduleActivity(name: name, input: payload), name: name)
            return DurableFuture(slot: slot)
        }
        return withRetry(retry, name: name) {
            self.schedule(.scheduleActivity(name: name, input: payload), name: name)
        }
    }

    // MARK: Sub-orchestrations

    /// Starts a sub-orchestration and returns its future. Its failure surfaces as ``TaskFailedError``.
    /// - Parameter instanceID: the child's ID; by default derived from this instance's ID and the sequence number.
    public func callSubOrchestrator<O: Orchestrator>(_ orchestrator: O.Type, input: O.Input, instanceID: String? = nil,
                                                     retry: RetryPolicy? = nil) -> DurableFuture<O.Output> {
        callSubOrchestrator(typeName(O.self) { O.name }, input: input, returning: O.Output.self, instanceID: instanceID, retry: retry)
    }

    /// Starts a sub-orchestration by name.
    public func callSubOrchestrator<Input: Encodable, Output: Decodable & Sendable>(
        _ name: String, input: Input, returning: Output.Type = Output.self, instanceID: String? = nil, retry: RetryPolicy? = nil
    ) -> DurableFuture<Output> {
        let payload: Payload
        do {
            payload = try PayloadCodec.encode(input, limit: options.maxPayloadBytes, what: "input of sub-orchestration '\(name)'")
        } catch {
            return failedFuture(name: name, error: error)
        }
        var attempt = 0
        return withRetry(retry, name: name) {
            attempt += 1
            let sequence = self.nextSequence
            let base = instanceID ?? "\(self.instanceID):\(sequence)"
            let childID = attempt == 1 ? base : "\(base)#\(attempt)"
            do {
                try ArgumentCheck.identifier(childID, "instance ID of sub-orchestration '\(name)'")
            } catch {
                return self.failedSlot(name: name, error: error)
            }
            let slot = self.schedule(.createSubOrchestration(name: name, instanceID: childID, input: payload), name: name)
            self.openSubOrchestrations[slot.sequence] = childID
            return slot
        }
    }

    // MARK: Timers

    /// Creates a durable timer that fires at `fireAt` (never earlier), surviving restarts.
    /// A date that is not finite (from an infinite or NaN interval) fails the future with
    /// `DurableTaskError(.invalidArgument)`.
    public func createTimer(fireAt: Date) -> DurableFuture<Void> {
        do {
            try ArgumentCheck.date(fireAt, "fire time of a timer in instance '\(instanceID)'")
        } catch {
            return failedFuture(name: "timer", error: error)
        }
        let slot = schedule(.createTimer(fireAt: fireAt), name: "timer")
        return DurableFuture(slot: slot)
    }

    /// Creates a durable timer that fires `delay` after ``currentDate``.
    public func createTimer(after delay: Duration) -> DurableFuture<Void> {
        createTimer(fireAt: currentDate.addingTimeInterval(delay.timeInterval))
    }

    // MARK: External events

    /// Waits for an event raised with ``DurableTaskClient/raiseEvent(instanceID:name:data:)``. Events that
    /// arrived before the wait are buffered; several with the same name are delivered in order.
    /// - Parameter timeout: when given, the future fails with `DurableTaskError(.timeout)` if no event
    ///   arrives in time (measured on a durable timer).
    public func waitForExternalEvent<T: Decodable & Sendable>(_ name: String, as type: T.Type = T.self,
                                                              timeout: Duration? = nil) -> DurableFuture<T> {
        let slot = TaskSlot(sequence: -1, name: "event '\(name)'", engine: self)
        let future = DurableFuture<T>(slot: slot)
        if var buffered = receivedEvents[name], !buffered.isEmpty {
            let payload = buffered.removeFirst()
            receivedEvents[name] = buffered.isEmpty ? nil : buffered
            slot.resolve(.success(payload))
            return future
        }
        eventWaiters[name, default: []].append(slot)
        if let timeout {
            let timer = createTimer(after: timeout)
            let instanceID = self.instanceID
            timer.slot.observers.append { [unowned self] in
                guard slot.outcome == nil else { return }
                self.eventWaiters[name]?.removeAll { $0 === slot }
                slot.resolve(.failure(DurableTaskError(.timeout, "instance '\(instanceID)' received no event '\(name)' within \(timeout)")))
            }
        }
        return future
    }

    /// Sends an event to another instance (fire and forget).
    public func sendEvent<T: Encodable>(instanceID target: String, name: String, data: T) {
        do {
            try ArgumentCheck.identifier(target, "target instance ID of event '\(name)'")
            try ArgumentCheck.identifier(name, "event name")
            let payload = try PayloadCodec.encode(data, limit: options.maxPayloadBytes, what: "event '\(name)'")
            let slot = schedule(.sendEvent(targetInstanceID: target, name: name, input: payload), name: name)
            slot.resolve(.success(nil))
        } catch {
            logger.log(.error, "event '\(name)' to '\(target)' not sent: \(error)")
        }
    }

    // MARK: Continue-as-new

    /// Ends this generation and restarts the instance with a fresh history and a new input, so an eternal
    /// orchestration's history stays bounded. Return from `run` right after calling it.
    /// - Parameter preserveUnprocessedEvents: carry external events not yet consumed into the next generation.
    public func continueAsNew<T: Encodable>(input: T, preserveUnprocessedEvents: Bool = true) throws {
        let payload = try PayloadCodec.encode(input, limit: options.maxPayloadBytes, what: "continue-as-new input of instance '\(instanceID)'")
        continueAsNewRequest = (payload, preserveUnprocessedEvents)
    }

    // MARK: Combinators

    /// Waits for every future; results are in input order. If any failed, throws the failure that
    /// happened first, once all have finished (as durabletask's WhenAll).
    public func whenAll<T>(_ futures: [DurableFuture<T>]) async throws -> [T] {
        try await waitForAllThenThrowFirstFailure(futures)
        return try futures.map { try $0.result() }
    }

    /// Waits for every future; results are in input order. If any failed, throws the failure that
    /// happened first, once all have finished (as durabletask's WhenAll).
    ///
    /// The overload for decodable results decodes with the static type: a fan-in of N decodes N results.
    public func whenAll<T: Decodable>(_ futures: [DurableFuture<T>]) async throws -> [T] {
        try await waitForAllThenThrowFirstFailure(futures)
        return try futures.map { future in
            guard case .success(let payload) = future.slot.outcome else { return try future.result() }
            return try PayloadCodec.decode(T.self, from: payload, what: "result of \(future.slot.name)")
        }
    }

    private func waitForAllThenThrowFirstFailure<T>(_ futures: [DurableFuture<T>]) async throws {
        await waitForAll(futures)
        if let failure = Self.firstFailure(futures) { throw failure }
    }

    /// The failure that happened first in history among finished futures, if any.
    private static func firstFailure<T>(_ futures: [DurableFuture<T>]) -> (any Error)? {
        var firstFailure: (index: Int, error: any Error)?
        for future in futures {
            if case .failure(let error) = future.slot.outcome {
                if firstFailure.map({ future.slot.completionIndex < $0.index }) ?? true {
                    firstFailure = (future.slot.completionIndex, error)
                }
            }
        }
        return firstFailure?.error
    }

    /// A future for the whole fan-in: it finishes once every future has finished, with their results
    /// in input order, or with the failure that happened first, as `whenAll` does.
    /// Unlike `whenAll`, it is a future, so it can be raced, e.g. "all results, or give up after an hour":
    ///
    /// ```swift
    /// let all = context.allOf(files.map { context.callActivity(Copy.self, input: $0) })
    /// let deadline = context.createTimer(after: .seconds(3600))
    /// if await context.whenAny(all, deadline) == 0 { return try await all.value } else { throw GaveUp() }
    /// ```
    public func allOf<T: Decodable & Sendable>(_ futures: [DurableFuture<T>]) -> DurableFuture<[T]> {
        let outer = TaskSlot(sequence: -1, name: "allOf of \(futures.count) futures", engine: self)
        outer.combinedValue = {
            try futures.map { future in
                guard case .success(let payload) = future.slot.outcome else { return try future.result() }
                return try PayloadCodec.decode(T.self, from: payload, what: "result of \(future.slot.name)")
            }
        }
        let finish = {
            outer.resolve(Self.firstFailure(futures).map { .failure($0) } ?? .success(nil))
        }
        var open = 0
        for future in futures where future.slot.outcome == nil { open += 1 }
        guard open > 0 else {
            finish()
            return DurableFuture(slot: outer)
        }
        let composite = CompositeWaiter(remaining: open, engine: self)
        composite.onDone = finish
        for future in futures where future.slot.outcome == nil { future.slot.observe(composite) }
        return DurableFuture(slot: outer)
    }

    /// Waits for every future and returns each one's result or error, in input order — the
    /// partial-failure pattern.
    public func whenAllSettled<T>(_ futures: [DurableFuture<T>]) async -> [Result<T, any Error>] {
        await waitForAll(futures)
        return futures.map { future in Result { try future.result() } }
    }

    /// Waits until the first of the futures finishes and returns its index. Ties (already finished
    /// futures) go to the one that finished first in history.
    public func whenAny(_ futures: [any DurableAwaitable]) async -> Int {
        let slots = futures.map(\.handle.slot)
        precondition(!slots.isEmpty, "whenAny needs at least one future")
        if !slots.contains(where: { $0.outcome != nil }) {
            await withUnsafeContinuation { continuation in
                let composite = CompositeWaiter(remaining: 1, engine: self)
                composite.continuation = continuation
                waitingCount += 1
                for slot in slots { slot.observe(composite) }
            }
        }
        var best = 0
        for (index, slot) in slots.enumerated() where slot.outcome != nil {
            if slots[best].outcome == nil || slot.completionIndex < slots[best].completionIndex { best = index }
        }
        return best
    }

    /// Waits until the first of the futures finishes and returns its index.
    public func whenAny(_ futures: any DurableAwaitable...) async -> Int {
        await whenAny(futures)
    }

    /// Waits until the first of same-typed futures finishes and returns it.
    public func whenAny<T>(_ futures: [DurableFuture<T>]) async -> DurableFuture<T> {
        futures[await whenAny(futures as [any DurableAwaitable])]
    }

    /// One composite for all open futures, registered without building intermediate arrays: a fan-in
    /// of 100,000 futures is one pass.
    private func waitForAll<T>(_ futures: [DurableFuture<T>]) async {
        var open = 0
        for future in futures where future.slot.outcome == nil { open += 1 }
        guard open > 0 else { return }
        await withUnsafeContinuation { continuation in
            let composite = CompositeWaiter(remaining: open, engine: self)
            composite.continuation = continuation
            waitingCount += 1
            for future in futures where future.slot.outcome == nil { future.slot.observe(composite) }
        }
    }
}

/// Log levels for ``OrchestrationLogger`` and the worker's log handler.
public enum LogLevel: Int, Sendable, Comparable, CustomStringConvertible {
    /// Fine-grained diagnostics.
    case debug
    /// Normal progress.
    case info
    /// Something unexpected that the runtime handled.
    case warning
    /// A failure.
    case error

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }
}

/// A logger for orchestrators that drops messages while the orchestrator is replaying, so a message
/// is written once per real execution, not once per replay.
public struct OrchestrationLogger: Sendable {
    let context: OrchestrationContext

    /// Writes a message at `level`, unless replaying.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        // Also silent after teardown: code still unwinding with CancellationError is not real progress.
        guard !context.isReplaying, !context.tornDown else { return }
        context.options.log(level, "[\(context.instanceID)] \(message())")
    }

    /// Writes an info message, unless replaying.
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    /// Writes a warning, unless replaying.
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    /// Writes an error, unless replaying.
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }
}
