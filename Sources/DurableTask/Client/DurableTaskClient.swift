import Foundation

/// Starts orchestrations and manages them: status, results, events, terminate, suspend/resume, purge, query.
///
/// ```swift
/// let client = DurableTaskClient(backend: backend)
/// let id = try await client.scheduleNewOrchestration(WordCountOrchestrator.self, input: files)
/// let total = try await client.waitForCompletion(WordCountOrchestrator.self, instanceID: id, timeout: .seconds(60))
/// ```
public struct DurableTaskClient: Sendable {
    /// The backend the client talks to.
    public let backend: any Backend
    /// The maximum size of a payload the client sends (inputs, event data).
    public let maxPayloadBytes: Int
    /// How often waits re-read the instance when the backend cannot tell about other processes'
    /// changes (its instance watch's `seesOtherProcesses` is `false`). The bundled backends can: their
    /// waits re-read only when the instance changed, and every few seconds as a safety net.
    public let pollInterval: Duration
    /// The longest a wait goes without re-reading, whatever the backend says it sees.
    static let safetyRereadInterval = Duration.seconds(5)

    /// Creates a client.
    public init(backend: any Backend, maxPayloadBytes: Int = 16 * 1024 * 1024, pollInterval: Duration = .milliseconds(200)) {
        self.backend = backend
        self.maxPayloadBytes = maxPayloadBytes
        self.pollInterval = pollInterval
    }

    // MARK: Starting

    /// Schedules a new instance of an orchestrator.
    /// - Parameters:
    ///   - orchestrator: the orchestrator type; its ``Orchestrator/name`` is what is scheduled.
    ///   - input: the input, encoded once here.
    ///   - instanceID: the ID to use; by default a new time-ordered (version 7) UUID, so instances
    ///     sort by creation and a database's indexes stay compact (it shows when the instance was created).
    ///   - startAt: do not start before this time.
    ///   - replaceIfFinished: replace an existing instance with the same ID if it has finished.
    /// - Returns: the instance ID.
    /// - Throws: `DurableTaskError(.instanceAlreadyExists)`, `DurableTaskError(.payloadTooLarge)`;
    ///   `DurableTaskError(.invalidArgument)` for an empty ID, control characters in the ID or name, or
    ///   a start time that is not finite. Every call that takes an instance ID checks it the same way.
    @discardableResult
    public func scheduleNewOrchestration<O: Orchestrator>(
        _ orchestrator: O.Type, input: O.Input, instanceID: String? = nil,
        startAt: Date? = nil, replaceIfFinished: Bool = false
    ) async throws -> String {
        try await scheduleNewOrchestration(
            name: TypeNames.name(of: O.self) { O.name }, input: input, instanceID: instanceID, startAt: startAt,
            replaceIfFinished: replaceIfFinished)
    }

    /// Schedules a new instance of an orchestrator by name.
    @discardableResult
    public func scheduleNewOrchestration<Input: Encodable>(
        name: String, input: Input, instanceID: String? = nil,
        startAt: Date? = nil, replaceIfFinished: Bool = false
    ) async throws -> String {
        let id = instanceID ?? UniqueID.timeOrdered()
        try ArgumentCheck.identifier(id, "instance ID")
        try ArgumentCheck.identifier(name, "orchestrator name")
        if let startAt { try ArgumentCheck.date(startAt, "start time of instance '\(id)'") }
        let payload = try PayloadCodec.encode(input, limit: maxPayloadBytes, what: "input of new instance '\(id)' of '\(name)'")
        let start = HistoryEvent(
            timestamp: backend.clock.now(),
            kind: .executionStarted(
                name: name, executionID: UniqueID.string(), input: payload, parent: nil, scheduledStart: startAt))
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(instanceID: id, startEvent: start, replaceIfFinished: replaceIfFinished))
        return id
    }

    // MARK: Reading

    /// The instance's metadata, or `nil` when it does not exist.
    public func getInstance(_ instanceID: String) async throws -> OrchestrationMetadata? {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        return try await backend.getOrchestrationMetadata(instanceID: instanceID)
    }

    /// The metadata of many instances in one call (the status of a batch of requests, say), in the
    /// order asked, `nil` for each ID that does not exist.
    /// - Throws: `DurableTaskError(.invalidArgument)` for an ID that cannot exist (see
    ///   ``scheduleNewOrchestration(name:input:instanceID:startAt:replaceIfFinished:)``).
    public func getInstances(_ instanceIDs: [String]) async throws -> [OrchestrationMetadata?] {
        for id in instanceIDs { try ArgumentCheck.identifier(id, "instance ID") }
        return try await backend.getOrchestrationMetadata(instanceIDs: instanceIDs)
    }

    /// The instance's history (old events), for debugging and tests.
    ///
    /// An instance that exists but has not run yet has an empty history; one that does not exist (never
    /// created, or purged) throws instead, so the two are never confused.
    /// - Throws: `DurableTaskError(.instanceNotFound)` for an unknown or purged instance.
    public func getHistory(_ instanceID: String) async throws -> [HistoryEvent] {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        return try await backend.getOrchestrationHistory(instanceID: instanceID)
    }

    /// Lists instances matching a filter, one page at a time.
    public func query(_ query: OrchestrationQuery) async throws -> OrchestrationQueryResult {
        try await backend.queryOrchestrations(query)
    }

    /// Waits until the instance has started (is no longer pending).
    /// - Throws: `DurableTaskError(.timeout)`, `DurableTaskError(.instanceNotFound)`.
    @discardableResult
    public func waitForStart(_ instanceID: String, timeout: Duration) async throws -> OrchestrationMetadata {
        try await waitForInstance(instanceID, timeout: timeout, what: "start") { $0.status != .pending }
    }

    /// Waits until the instance finishes (completed, failed or terminated) and returns its metadata.
    /// - Throws: `DurableTaskError(.timeout)`, `DurableTaskError(.instanceNotFound)`.
    @discardableResult
    public func waitForCompletion(_ instanceID: String, timeout: Duration) async throws -> OrchestrationMetadata {
        try await waitForInstance(instanceID, timeout: timeout, what: "complete", endOnly: true) { $0.status.isTerminal }
    }

    /// Waits until the instance finishes and returns its typed output.
    /// - Throws: ``TaskFailedError`` when it failed or was terminated; `DurableTaskError(.timeout)`.
    public func waitForCompletion<O: Orchestrator>(_ orchestrator: O.Type, instanceID: String, timeout: Duration) async throws -> O.Output {
        let metadata = try await waitForCompletion(instanceID, timeout: timeout)
        switch metadata.status {
        case .completed:
            return try metadata.output(as: O.Output.self)
        case .failed:
            throw TaskFailedError(
                taskName: metadata.name, taskID: -1,
                details: metadata.failure ?? FailureDetails(errorType: "Unknown", message: "instance failed"))
        default:
            throw TaskFailedError(
                taskName: metadata.name, taskID: -1,
                details: FailureDetails(errorType: "Terminated", message: "instance '\(instanceID)' was terminated", isRetriable: false))
        }
    }

    /// - Parameter endOnly: whether only the instance's end satisfies `done`, so the episodes before
    ///   it need not wake the wait (each wake is a read).
    private func waitForInstance(
        _ instanceID: String, timeout: Duration, what: String, endOnly: Bool = false,
        until done: (OrchestrationMetadata) -> Bool
    ) async throws -> OrchestrationMetadata {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        let deadline = ContinuousClock.now + timeout
        // Watched before each read, so a change between the read and the wait is not lost; only this
        // instance's changes wake it, so waiting on N instances costs O(N) reads, not O(N) per change.
        let watch = backend.watchInstance(instanceID)
        if endOnly { watch.waitForTheEndOnly() }
        while true {
            guard let metadata = try await backend.getOrchestrationMetadata(instanceID: instanceID) else {
                throw DurableTaskError(.instanceNotFound, "no instance with ID '\(instanceID)'")
            }
            if done(metadata) { return metadata }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero {
                throw DurableTaskError(.timeout, "instance '\(instanceID)' did not \(what) within \(timeout) (status \(metadata.status.rawValue))")
            }
            try Task.checkCancellation()
            // A watch that sees other processes' changes needs no polling; the re-read every few
            // seconds only bounds the wait should a wake-up be lost.
            await watch.wait(timeout: min(remaining, watch.seesOtherProcesses ? Self.safetyRereadInterval : pollInterval))
        }
    }

    // MARK: Events and control

    /// Delivers an external event to a running instance; events are kept until the orchestrator waits for them.
    /// - Throws: `DurableTaskError(.instanceNotFound)`; `DurableTaskError(.invalidState)` when the instance
    ///   has finished (the event is reported, never silently dropped).
    public func raiseEvent<T: Encodable>(_ instanceID: String, name: String, data: T) async throws {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        try ArgumentCheck.identifier(name, "event name")
        let payload = try PayloadCodec.encode(data, limit: maxPayloadBytes, what: "event '\(name)' for instance '\(instanceID)'")
        try await backend.addOrchestrationEvent(
            instanceID: instanceID,
            event: HistoryEvent(
                timestamp: backend.clock.now(), kind: .eventRaised(name: name, input: payload)))
    }

    /// Terminates a running instance; its status becomes `terminated` with `reason` as output.
    /// - Parameters:
    ///   - instanceID: the instance to terminate.
    ///   - reason: recorded as the instance's output.
    ///   - recursive: also terminate the sub-orchestrations it started and that are still running.
    public func terminate(_ instanceID: String, reason: String? = nil, recursive: Bool = true) async throws {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        try await backend.addOrchestrationEvent(
            instanceID: instanceID,
            event: HistoryEvent(
                timestamp: backend.clock.now(), kind: .executionTerminated(reason: reason, recursive: recursive)))
    }

    /// Suspends an instance: it processes no events (they are kept) until resumed.
    public func suspend(_ instanceID: String, reason: String? = nil) async throws {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        try await backend.addOrchestrationEvent(
            instanceID: instanceID,
            event: HistoryEvent(
                timestamp: backend.clock.now(), kind: .executionSuspended(reason: reason)))
    }

    /// Resumes a suspended instance.
    public func resume(_ instanceID: String, reason: String? = nil) async throws {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        try await backend.addOrchestrationEvent(
            instanceID: instanceID,
            event: HistoryEvent(
                timestamp: backend.clock.now(), kind: .executionResumed(reason: reason)))
    }

    /// Deletes a finished instance and its history.
    /// - Returns: whether it existed.
    /// - Throws: `DurableTaskError(.invalidState)` when it has not finished.
    @discardableResult
    public func purge(_ instanceID: String) async throws -> Bool {
        try ArgumentCheck.identifier(instanceID, "instance ID")
        return try await backend.purgeOrchestration(instanceID: instanceID)
    }

    /// Deletes finished instances matching a filter.
    /// - Returns: how many were deleted.
    @discardableResult
    public func purge(_ filter: PurgeFilter) async throws -> Int {
        try await backend.purgeOrchestrations(filter)
    }

    // MARK: Earlier spellings

    // The instance ID is the first, unlabelled argument of every instance-addressed call, as in
    // `getInstance(_:)`; these keep code written against the labelled spelling compiling.

    /// Earlier spelling of ``raiseEvent(_:name:data:)``.
    @available(*, deprecated, renamed: "raiseEvent(_:name:data:)")
    public func raiseEvent<T: Encodable>(instanceID: String, name: String, data: T) async throws {
        try await raiseEvent(instanceID, name: name, data: data)
    }

    /// Earlier spelling of ``terminate(_:reason:recursive:)``.
    @available(*, deprecated, renamed: "terminate(_:reason:recursive:)")
    public func terminate(instanceID: String, reason: String? = nil, recursive: Bool = true) async throws {
        try await terminate(instanceID, reason: reason, recursive: recursive)
    }

    /// Earlier spelling of ``suspend(_:reason:)``.
    @available(*, deprecated, renamed: "suspend(_:reason:)")
    public func suspend(instanceID: String, reason: String? = nil) async throws {
        try await suspend(instanceID, reason: reason)
    }

    /// Earlier spelling of ``resume(_:reason:)``.
    @available(*, deprecated, renamed: "resume(_:reason:)")
    public func resume(instanceID: String, reason: String? = nil) async throws {
        try await resume(instanceID, reason: reason)
    }

    /// Earlier spelling of ``purge(_:)-(String)``.
    @available(*, deprecated, renamed: "purge(_:)")
    @discardableResult
    public func purge(instanceID: String) async throws -> Bool {
        try await purge(instanceID)
    }
}
