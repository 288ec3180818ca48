import Foundation

/// The orchestrator's view of its instance and the only way it schedules work.
///
/// Schedule calls (`callActivity`, `callSubOrchestrator`, `createTimer`, `waitForExternalEvent`) are
/// synchronous: they record an action and return a ``DurableFuture`` to await later, so a fan-out is a
/// plain `map`. Everything here is deterministic across replays.
///
/// The context is a view over the instance's replay engine, which one thread drives at a time — the
/// worker's episode, draining the orchestration's inline executor. Use it only inside the
/// orchestrator's `run`.
public final class OrchestrationContext: @unchecked Sendable {  // Safe: only the engine thread draining this instance touches it.
    let engine: ReplayEngine

    init(engine: ReplayEngine) {
        self.engine = engine
    }

    // MARK: The instance

    /// The instance ID.
    public var instanceID: String { engine.instanceID }
    /// The current execution ID (changes on continue-as-new).
    public var executionID: String { engine.executionID }
    /// The orchestrator's name.
    public var name: String { engine.name }
    /// The episode's time: the timestamp of its `orchestratorStarted` event, the same on every replay.
    public var currentDate: Date { engine.currentDate }
    /// Whether old events are being replayed; side effects such as logging should be skipped then.
    public var isReplaying: Bool { engine.isReplaying }
    /// The parent instance, when this is a sub-orchestration.
    public var parent: HistoryEvent.ParentInstance? { engine.parent }

    /// A logger that drops messages while replaying, so each message appears once.
    public var logger: OrchestrationLogger { OrchestrationLogger(engine: engine) }

    /// The engine's settings (the payload limit the orchestrator wrappers apply to outputs).
    var options: EngineOptions { engine.options }

    // MARK: Deterministic helpers

    /// A UUID that is the same on every replay: derived from the instance ID, the execution ID and a
    /// counter (name-based, version 5 style), never random.
    public func newUUID() -> UUID { engine.newUUID() }

    /// Sets the custom status clients see in ``OrchestrationMetadata/customStatus``; `nil` clears it.
    /// A value that cannot be encoded or is over the payload limit is logged and ignored.
    public func setCustomStatus<T: Encodable>(_ status: T?) { engine.setCustomStatus(status) }

    // MARK: Activities

    /// Schedules an activity and returns its future.
    /// - Parameters:
    ///   - activity: the activity type; its ``Activity/name`` is what is scheduled.
    ///   - input: the input, encoded once here.
    ///   - retry: retry failed attempts on durable timers.
    public func callActivity<A: Activity>(_ activity: A.Type, input: A.Input, retry: RetryPolicy? = nil) -> DurableFuture<A.Output> {
        engine.callActivity(engine.typeName(A.self) { A.name }, input: input, retry: retry)
    }

    /// Schedules an activity by name. A name that is empty or has control characters fails the future
    /// with `DurableTaskError(.invalidArgument)`, as an ID does on the client.
    public func callActivity<Input: Encodable, Output: Decodable & Sendable>(
        _ name: String, input: Input, returning: Output.Type = Output.self, retry: RetryPolicy? = nil
    ) -> DurableFuture<Output> {
        engine.callActivity(name, input: input, retry: retry)
    }

    // MARK: Sub-orchestrations

    /// Starts a sub-orchestration and returns its future. Its failure surfaces as ``TaskFailedError``.
    /// - Parameters:
    ///   - orchestrator: the orchestrator type; its ``Orchestrator/name`` is what is started.
    ///   - input: the child's input, encoded once here.
    ///   - instanceID: the child's ID; by default derived from this instance's ID and the sequence
    ///     number. An ID with control characters fails the future with `DurableTaskError(.invalidArgument)`.
    ///   - retry: start a new child (`<ID>#2`, `#3`, …) after a failure, on durable timers.
    public func callSubOrchestrator<O: Orchestrator>(
        _ orchestrator: O.Type, input: O.Input, instanceID: String? = nil,
        retry: RetryPolicy? = nil
    ) -> DurableFuture<O.Output> {
        engine.callSubOrchestrator(engine.typeName(O.self) { O.name }, input: input, instanceID: instanceID, retry: retry)
    }

    /// Starts a sub-orchestration by name. A name that is empty or has control characters fails the
    /// future with `DurableTaskError(.invalidArgument)`.
    public func callSubOrchestrator<Input: Encodable, Output: Decodable & Sendable>(
        _ name: String, input: Input, returning: Output.Type = Output.self, instanceID: String? = nil, retry: RetryPolicy? = nil
    ) -> DurableFuture<Output> {
        engine.callSubOrchestrator(name, input: input, instanceID: instanceID, retry: retry)
    }

    // MARK: Timers

    /// Creates a durable timer that fires at `fireAt` (never earlier), surviving restarts.
    ///
    /// A date that is not finite (from an infinite or NaN interval) fails the future with
    /// `DurableTaskError(.invalidArgument)`.
    public func createTimer(fireAt: Date) -> DurableFuture<Void> { engine.createTimer(fireAt: fireAt) }

    /// Creates a durable timer that fires `delay` after ``currentDate``.
    public func createTimer(after delay: Duration) -> DurableFuture<Void> {
        engine.createTimer(fireAt: currentDate.addingTimeInterval(delay.timeInterval))
    }

    // MARK: External events

    /// Waits for an event raised with ``DurableTaskClient/raiseEvent(instanceID:name:data:)``. Events that
    /// arrived before the wait are buffered; several with the same name are delivered in order.
    /// - Parameters:
    ///   - name: the event name the client raises.
    ///   - type: the event data's type.
    ///   - timeout: when given, the future fails with `DurableTaskError(.timeout)` if no event arrives in
    ///     time (measured on a durable timer).
    public func waitForExternalEvent<T: Decodable & Sendable>(
        _ name: String, as type: T.Type = T.self,
        timeout: Duration? = nil
    ) -> DurableFuture<T> {
        engine.waitForExternalEvent(name, timeout: timeout)
    }

    /// Sends an event to another instance (fire and forget).
    public func sendEvent<T: Encodable>(_ instanceID: String, name: String, data: T) {
        engine.sendEvent(instanceID: instanceID, name: name, data: data)
    }

    /// Earlier spelling of ``sendEvent(_:name:data:)``; the instance ID is the first, unlabelled argument
    /// everywhere, as on the client.
    @available(*, deprecated, renamed: "sendEvent(_:name:data:)")
    public func sendEvent<T: Encodable>(instanceID: String, name: String, data: T) {
        engine.sendEvent(instanceID: instanceID, name: name, data: data)
    }

    // MARK: Changing code safely

    /// Whether this instance runs the code written after the change `changeID` — so that code can change
    /// while instances run:
    ///
    /// ```swift
    /// if context.isPatched("reserve-before-charge") {
    ///     _ = try await context.callActivity(ReserveStock.self, input: order).value   // the new order
    ///     _ = try await context.callActivity(ChargeCard.self, input: order).value
    /// } else {
    ///     _ = try await context.callActivity(ChargeCard.self, input: order).value     // the old order
    ///     _ = try await context.callActivity(ReserveStock.self, input: order).value
    /// }
    /// ```
    ///
    /// `true` for an instance that reaches this point on the new code (a `versionMarker` event is recorded
    /// at this position, and replays find it); `false` for an instance whose history shows it went past
    /// this point before the change. When no instance from before the change runs any more, delete the old
    /// branch and replace the call with ``deprecatePatch(_:)``; when no instance with the marker runs any
    /// more, delete that call too.
    ///
    /// **One answer per change ID and execution.** The first call with `changeID` decides, and every later
    /// call with the same ID — another call site, the next iteration of a loop, a later episode — returns
    /// the same answer and records nothing: an instance that took the old branch once never switches to
    /// the new one midway, even where its history does not reach yet, and a new instance records one
    /// marker however often it asks. A replay rebuilds the answers from the same calls in the same order,
    /// so it answers as the first run did. Use a new change ID for each change; a continue-as-new
    /// generation starts afresh (it runs the new code from its start).
    ///
    /// While workers with and without the change share a task hub (a rolling deploy), a worker whose code
    /// predates a change that an instance's history records does not fail the instance: it hands it back
    /// for a few seconds, logs a warning, and leaves it to a worker with newer code.
    public func isPatched(_ changeID: String) -> Bool { engine.isPatched(changeID) }

    /// The second step of removing a change (see ``isPatched(_:)``): instances whose history holds the
    /// change's marker at this point still replay, and new instances record none.
    public func deprecatePatch(_ changeID: String) { engine.deprecatePatch(changeID) }

    // MARK: Continue-as-new

    /// Ends this generation and restarts the instance with a fresh history and a new input, so an eternal
    /// orchestration's history stays bounded. Return from `run` right after calling it.
    /// - Parameters:
    ///   - input: the next generation's input.
    ///   - preserveUnprocessedEvents: carry external events not yet consumed into the next generation.
    public func continueAsNew<T: Encodable>(input: T, preserveUnprocessedEvents: Bool = true) throws {
        try engine.continueAsNew(input: input, preserveUnprocessedEvents: preserveUnprocessedEvents)
    }

    // MARK: Combinators

    /// Waits for every future; results are in input order. If any failed, throws the failure that
    /// happened first, once all have finished (as durabletask's WhenAll).
    public func whenAll<T>(_ futures: [DurableFuture<T>]) async throws -> [T] {
        try await engine.whenAll(futures)
    }

    /// Waits for every future; results are in input order. If any failed, throws the failure that
    /// happened first, once all have finished (as durabletask's WhenAll).
    ///
    /// The overload for decodable results decodes with the static type: a fan-in of N decodes N results.
    public func whenAll<T: Decodable>(_ futures: [DurableFuture<T>]) async throws -> [T] {
        try await engine.whenAll(futures)
    }

    /// A future for the whole fan-in: it finishes once every future has finished, with their results
    /// in input order, or with the failure that happened first, as `whenAll` does. Unlike `whenAll`, it
    /// is a future, so it can be raced, e.g. "all results, or give up after an hour":
    ///
    /// ```swift
    /// let all = context.allOf(files.map { context.callActivity(Copy.self, input: $0) })
    /// let deadline = context.createTimer(after: .seconds(3600))
    /// if await context.whenAny(all, deadline) == 0 { return try await all.value } else { throw GaveUp() }
    /// ```
    public func allOf<T: Decodable & Sendable>(_ futures: [DurableFuture<T>]) -> DurableFuture<[T]> {
        engine.allOf(futures)
    }

    /// Waits for every future and returns each one's result or error, in input order — the
    /// partial-failure pattern.
    public func whenAllSettled<T>(_ futures: [DurableFuture<T>]) async -> [Result<T, any Error>] {
        await engine.whenAllSettled(futures)
    }

    /// Waits until the first of the futures finishes and returns its index. Ties (already finished
    /// futures) go to the one that finished first in history.
    public func whenAny(_ futures: [any DurableAwaitable]) async -> Int {
        await engine.whenAny(futures.map(\.handle.slot))
    }

    /// Waits until the first of the futures finishes and returns its index.
    public func whenAny(_ futures: any DurableAwaitable...) async -> Int {
        await engine.whenAny(futures.map(\.handle.slot))
    }

    /// Waits until the first of same-typed futures finishes and returns it.
    public func whenAny<T>(_ futures: [DurableFuture<T>]) async -> DurableFuture<T> {
        futures[await engine.whenAny(futures.map(\.slot))]
    }
}
