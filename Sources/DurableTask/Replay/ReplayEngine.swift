import Foundation

/// The replay engine of one orchestration instance: it applies history events, drains the
/// orchestration's inline executor after each one, matches the actions the code takes against history,
/// and turns an episode into the result a backend commits.
///
/// It is driven by one thread at a time — the worker's episode, draining ``executor`` — which is why it
/// needs no locks. Orchestrator code sees it through ``OrchestrationContext``, a thin public view.
///
/// Reading order: ``Lifecycle`` (what state the instance is in), ``replay(_:)`` and
/// ``runEpisode(newEvents:now:)`` (the two entry points), ``apply(_:)`` (one event), then the
/// scheduling side in `ReplayEngine+Operations.swift` and the combinators in
/// `ReplayEngine+Combinators.swift`.
package final class ReplayEngine: @unchecked Sendable {  // Safe: one thread at a time drives it (the episode that has it checked out).
    /// Where the instance is in its life. One value instead of a set of flags, so that impossible
    /// combinations (finished and still running, torn down and scheduling) cannot be represented.
    enum Lifecycle {
        /// No `executionStarted` applied yet.
        case notStarted
        /// The code runs (or waits on durable futures).
        case running
        /// Suspended by a client: events are kept until resumed. `started` says where resuming goes.
        case suspended(started: Bool)
        /// The instance reached an end in this run of the engine (the code returned or threw, a terminate
        /// or continue-as-new, an escape): the episode commits it.
        case finished(Completion)
        /// The history already holds `executionCompleted`: nothing more happens, nothing is emitted.
        case endedInHistory(status: OrchestrationStatus, output: Payload?, failure: FailureDetails?)
        /// Code and history disagree: later events are ignored and the instance fails with the error.
        case nondeterministic(FailureDetails)
        /// Released (evicted from the cache, worker stopped): every wait ends with `CancellationError`.
        case tornDown

        /// Whether the code may still make progress (events are applied and delivered).
        var isLive: Bool {
            switch self {
            case .notStarted, .running, .suspended: true
            case .finished, .endedInHistory, .nondeterministic, .tornDown: false
            }
        }
    }

    // MARK: Identity

    let instanceID: String
    var executionID = ""
    var name = ""
    var parent: HistoryEvent.ParentInstance?
    /// The episode's time: the timestamp of its `orchestratorStarted` event.
    var currentDate = Date(timeIntervalSince1970: 0)
    var isReplaying = false
    private(set) var lifecycle = Lifecycle.notStarted

    // MARK: Execution

    let executor = InlineExecutor()
    let options: EngineOptions
    let resolveOrchestrator: @Sendable (String) -> OrchestratorEntry?
    private var orchestratorTask: Task<Void, Never>?
    var nextSequence = 0
    var nextCompletionIndex = 0
    var uuidCounter = 0
    /// Continuations (and composites) currently suspended on the engine; 0 with running code after a
    /// drain means it awaits something the engine does not know.
    var waitingCount = 0
    /// Actions the code took that history has not (yet) confirmed, by sequence number.
    var pendingActions = SequenceMap<OrchestratorAction>()
    /// Unfinished slots by sequence number.
    var openSlots = SequenceMap<TaskSlot>()
    var openSubOrchestrations: [Int: String] = [:]
    var receivedEvents: [String: [Payload?]] = [:]
    var receivedEventOrder: [String] = []
    var eventWaiters: [String: [TaskSlot]] = [:]
    /// Events that arrived while suspended, applied on resume.
    private var suspendedEvents: [HistoryEvent] = []
    var customStatus: Payload?
    var continueAsNewRequest: (input: Payload?, preserveEvents: Bool)?
    var typeNames: [ObjectIdentifier: String] = [:]
    /// The disagreement between code and history, once found.
    private(set) var nondeterminism: NonDeterminismError?
    /// How many sequence numbers the replayed history holds (its actions are numbered from 0).
    var recordedActionCount = 0
    /// The version markers in the replayed history, by sequence number.
    var recordedMarkers: [Int: String] = [:]
    /// The answer of `isPatched` for each change ID this execution has asked about: the first call
    /// decides, later ones repeat it, so an instance never switches path midway. Derived from the calls
    /// in code order, so a replay rebuilds it as the first run built it.
    var patchAnswers: [String: Bool] = [:]
    /// The change whose `versionMarker` the history holds at a position where the code did something
    /// else: the code is older than the history (a rolling deploy), and a newer worker can run it.
    /// Set only when that is the first disagreement.
    private(set) var changeNewerThanCode: String?
    /// Events applied since the engine was created (old and new): the replay counter.
    private(set) var eventsApplied = 0
    /// History events this engine has replayed or committed; validates a cached engine against the
    /// backend's history length.
    private(set) var historyLength = 0

    init(instanceID: String, options: EngineOptions, resolveOrchestrator: @escaping @Sendable (String) -> OrchestratorEntry?) {
        self.instanceID = instanceID
        self.options = options
        self.resolveOrchestrator = resolveOrchestrator
    }

    /// Whether the orchestration reached an end (completed, failed, terminated, continued as new).
    var isFinished: Bool {
        switch lifecycle {
        case .finished, .endedInHistory, .nondeterministic: true
        case .notStarted, .running, .suspended, .tornDown: false
        }
    }

    var isTornDown: Bool {
        if case .tornDown = lifecycle { return true }
        return false
    }

    /// How the episode ends, if it does: the completion, or the nondeterminism failure.
    private var ending: Completion? {
        switch lifecycle {
        case .finished(let completion): completion
        case .nondeterministic(let failure): .failed(failure)
        default: nil
        }
    }

    // MARK: Episodes

    /// Replays committed history: the orchestrator runs again from the start, history confirms its
    /// actions and resolves its futures. No action is emitted.
    func replay(_ history: [HistoryEvent]) {
        // What `isPatched` looks ahead at: the code asks before the event at its position is applied.
        for event in history where event.eventID >= 0 {
            recordedActionCount = max(recordedActionCount, event.eventID + 1)
            if case let .versionMarker(changeID) = event.kind { recordedMarkers[event.eventID] = changeID }
        }
        isReplaying = true
        for event in history {
            apply(event)
        }
        isReplaying = false
        historyLength = history.count
    }

    /// Applies one episode's new events and returns what the backend must commit.
    /// - Parameter now: the episode's time, recorded in its `orchestratorStarted` event.
    func runEpisode(newEvents: [HistoryEvent], now: Date) -> OrchestrationWorkItemResult {
        isReplaying = false
        if case let .endedInHistory(status, output, failure) = lifecycle {
            // The history already ends the instance (e.g. a timer it no longer waited for came due):
            // consume the events and change nothing — no second completion, no second parent message.
            return OrchestrationWorkItemResult(
                status: status, output: status == .failed ? nil : output,
                failure: failure, customStatus: customStatus)
        }
        var history: [HistoryEvent] = []
        history.reserveCapacity(newEvents.count + pendingActions.count + 3)
        let episodeStart = HistoryEvent(timestamp: now, kind: .orchestratorStarted)
        history.append(episodeStart)
        apply(episodeStart)
        var carryover: [HistoryEvent] = []
        for event in Self.terminateFirst(newEvents) {
            if lifecycle.isLive {
                history.append(event)
                apply(event)
            } else if case .finished(.continuedAsNew) = lifecycle, case .eventRaised = event.kind {
                // Arrived after the orchestrator continued as new in this episode: hand it to the next generation.
                carryover.append(event)
            } else {
                // A terminate that came with the start event ended the instance before it started: the
                // ending still needs the identity (the parent to tell), as a replay of this history has it.
                if case let .executionStarted(name, executionID, _, parent, _) = event.kind {
                    takeIdentity(name: name, executionID: executionID, parent: parent)
                }
                history.append(event)
            }
        }
        if case .running = lifecycle, waitingCount == 0 {
            let error = DurableTaskError(
                .orchestratorEscaped,
                "orchestrator '\(name)' (instance '\(instanceID)') is suspended on something that is not a durable operation "
                    + "(an actor, Task.sleep, I/O or another task). Orchestrators may only await futures from their context.")
            lifecycle = .finished(.failed(FailureDetails(error: error)))
        }

        var result = OrchestrationWorkItemResult(status: .running)
        let finished = ending
        let emitsActions: Bool
        switch lifecycle {
        case .nondeterministic, .finished(.terminated): emitsActions = false
        default: emitsActions = true
        }
        result.activities.reserveCapacity(pendingActions.count)
        pendingActions.forEach { sequence, action in
            // A terminated instance starts nothing more; a new generation redoes its own work.
            guard emitsActions else { return }
            if case .continuedAsNew = finished, !Self.isSendEvent(action) { return }
            emit(action, sequence: sequence, now: now, into: &history, result: &result)
        }
        pendingActions.removeAll()

        result.customStatus = customStatus
        if let finished {
            end(finished, carryover: carryover, now: now, into: &history, result: &result)
        } else {
            if case .suspended = lifecycle { result.status = .suspended } else { result.status = .running }
        }
        history.append(HistoryEvent(timestamp: now, kind: .orchestratorCompleted))
        result.newHistory = history
        return result
    }

    /// Records that the backend committed the episode's result: the history now holds its events too.
    func committed(_ result: OrchestrationWorkItemResult) {
        historyLength += result.newHistory.count
    }

    /// Ends the instance — the one ending every way of finishing goes through (a parked, poisoned
    /// instance too): `executionCompleted`, the parent's message, children to terminate, the next
    /// generation for continue-as-new.
    private func end(
        _ completion: Completion, carryover: [HistoryEvent], now: Date, into history: inout [HistoryEvent],
        result: inout OrchestrationWorkItemResult
    ) {
        switch completion {
        case .completed(let output):
            result.status = .completed
            result.output = output
            history.append(HistoryEvent(timestamp: now, kind: .executionCompleted(status: .completed, result: output, failure: nil)))
            notifyParent(.subOrchestrationCompleted(scheduledID: parent?.taskID ?? -1, result: output), now: now, into: &result)
        case .failed(let failure):
            result.status = .failed
            result.failure = failure
            history.append(HistoryEvent(timestamp: now, kind: .executionCompleted(status: .failed, result: nil, failure: failure)))
            notifyParent(.subOrchestrationFailed(scheduledID: parent?.taskID ?? -1, failure: failure), now: now, into: &result)
        case let .terminated(reason, recursive):
            result.status = .terminated
            let output = reason.flatMap { try? PayloadCodec.encode($0) }
            result.output = output
            history.append(HistoryEvent(timestamp: now, kind: .executionCompleted(status: .terminated, result: output, failure: nil)))
            let failure = FailureDetails(
                errorType: "Terminated", message: "sub-orchestration '\(instanceID)' was terminated: \(reason ?? "no reason given")", isRetriable: false)
            notifyParent(.subOrchestrationFailed(scheduledID: parent?.taskID ?? -1, failure: failure), now: now, into: &result)
            if recursive {
                for childID in openSubOrchestrations.sorted(by: { $0.key < $1.key }).map(\.value) {
                    result.messages.append(
                        OrchestrationMessage(
                            targetInstanceID: childID,
                            event: HistoryEvent(
                                timestamp: now, kind: .executionTerminated(reason: "parent '\(instanceID)' was terminated", recursive: true))))
                }
            }
        case .continuedAsNew(let input, let preserveEvents):
            result.status = .continuedAsNew
            history.append(HistoryEvent(timestamp: now, kind: .continuedAsNew(input: input)))
            let startEvent = HistoryEvent(
                timestamp: now,
                kind: .executionStarted(
                    name: name, executionID: UniqueID.string(), input: input, parent: parent, scheduledStart: nil))
            var carried: [HistoryEvent] = []
            if preserveEvents {
                for eventName in receivedEventOrder {
                    for payload in receivedEvents[eventName] ?? [] {
                        carried.append(HistoryEvent(timestamp: now, kind: .eventRaised(name: eventName, input: payload)))
                    }
                }
                carried += suspendedEvents.filter { if case .eventRaised = $0.kind { true } else { false } }
                carried += carryover
            }
            result.continueAsNew = (startEvent, carried)
        }
    }

    /// The new events in the order they are applied: a terminate request goes first, so it wins over
    /// everything that arrived with it — the orchestrator's own first step included (a terminate
    /// accepted before the instance started must end it without running its code). History records
    /// this order, so a replay takes the same path.
    private static func terminateFirst(_ events: [HistoryEvent]) -> [HistoryEvent] {
        guard let index = events.firstIndex(where: { if case .executionTerminated = $0.kind { true } else { false } }),
            index > 0
        else { return events }
        var ordered = events
        let terminate = ordered.remove(at: index)
        ordered.insert(terminate, at: 0)
        return ordered
    }

    /// Prepares an episode that ends the instance as failed without running its code: the work item
    /// was delivered too often without completing (the process crashed on it, or it kept failing), so
    /// it is parked. The caller then runs ``runEpisode(newEvents:now:)``, so the ending is the same as
    /// any failure's — `executionCompleted(failed)`, and `subOrchestrationFailed` for the parent.
    /// - Parameter history: the committed history; only its `executionStarted` and
    ///   `executionCompleted` events are read (the code is not replayed).
    func prepareParking(history: [HistoryEvent], newEvents: [HistoryEvent], failure: FailureDetails) {
        var end = Lifecycle.finished(.failed(failure))
        for event in history + newEvents {
            switch event.kind {
            case let .executionStarted(name, executionID, _, parent, _):
                takeIdentity(name: name, executionID: executionID, parent: parent)
            case let .executionCompleted(status, result, failure):
                end = .endedInHistory(status: status, output: result, failure: failure)
            default:
                break
            }
        }
        historyLength = history.count
        lifecycle = end
    }

    private static func isSendEvent(_ action: OrchestratorAction) -> Bool {
        if case .sendEvent = action { return true }
        return false
    }

    private func notifyParent(_ kind: HistoryEvent.Kind, now: Date, into result: inout OrchestrationWorkItemResult) {
        guard let parent else { return }
        result.messages.append(OrchestrationMessage(targetInstanceID: parent.instanceID, event: HistoryEvent(timestamp: now, kind: kind)))
    }

    private func emit(
        _ action: OrchestratorAction, sequence: Int, now: Date, into history: inout [HistoryEvent],
        result: inout OrchestrationWorkItemResult
    ) {
        switch action {
        case let .scheduleActivity(name, input):
            history.append(HistoryEvent(eventID: sequence, timestamp: now, kind: .taskScheduled(name: name, input: input)))
            result.activities.append(ActivityRequest(taskID: sequence, name: name, input: input))
        case let .createTimer(fireAt):
            history.append(HistoryEvent(eventID: sequence, timestamp: now, kind: .timerCreated(fireAt: fireAt)))
            result.timers.append(TimerRequest(event: HistoryEvent(timestamp: fireAt, kind: .timerFired(scheduledID: sequence, fireAt: fireAt)), fireAt: fireAt))
        case let .createSubOrchestration(name, childID, input):
            history.append(HistoryEvent(eventID: sequence, timestamp: now, kind: .subOrchestrationCreated(name: name, instanceID: childID, input: input)))
            let parentRef = HistoryEvent.ParentInstance(instanceID: instanceID, executionID: executionID, taskID: sequence, name: self.name)
            let start = HistoryEvent(
                timestamp: now,
                kind: .executionStarted(
                    name: name, executionID: UniqueID.string(), input: input, parent: parentRef, scheduledStart: nil))
            result.newInstances.append(NewOrchestrationInstance(instanceID: childID, startEvent: start, replaceIfFinished: true))
        case let .recordVersionMarker(changeID):
            history.append(HistoryEvent(eventID: sequence, timestamp: now, kind: .versionMarker(changeID: changeID)))
        case let .sendEvent(target, name, input):
            history.append(HistoryEvent(eventID: sequence, timestamp: now, kind: .eventSent(targetInstanceID: target, name: name, input: input)))
            result.messages.append(
                OrchestrationMessage(targetInstanceID: target, event: HistoryEvent(timestamp: now, kind: .eventRaised(name: name, input: input))))
        }
    }

    // MARK: Applying events

    /// Applies one history event and lets the orchestrator run until it is quiescent again.
    func apply(_ event: HistoryEvent) {
        eventsApplied += 1
        switch lifecycle {
        case .nondeterministic, .tornDown:
            // Once code and history disagree, later events would only pile up misleading errors.
            return
        case .suspended:
            switch event.kind {
            case .executionResumed, .executionTerminated, .orchestratorStarted, .orchestratorCompleted,
                .taskScheduled, .timerCreated, .subOrchestrationCreated, .eventSent, .executionCompleted, .continuedAsNew,
                .versionMarker:
                break
            default:
                // A suspended instance keeps its events and processes them after it is resumed.
                suspendedEvents.append(event)
                return
            }
        default:
            break
        }
        switch event.kind {
        case .orchestratorStarted:
            currentDate = event.timestamp
        case let .executionStarted(name, executionID, input, parent, _):
            start(name: name, executionID: executionID, input: input, parent: parent)
        case .taskScheduled, .timerCreated, .subOrchestrationCreated, .eventSent, .versionMarker:
            confirm(event)
        case let .taskCompleted(id, result):
            resolveSlot(id, event: event, with: .success(result))
        case let .taskFailed(id, failure):
            let name = openSlots[id]?.name ?? "activity"
            resolveSlot(id, event: event, with: .failure(TaskFailedError(taskName: name, taskID: id, details: failure)))
        case let .timerFired(id, _):
            resolveSlot(id, event: event, with: .success(nil))
        case let .subOrchestrationCompleted(id, result):
            openSubOrchestrations[id] = nil
            resolveSlot(id, event: event, with: .success(result))
        case let .subOrchestrationFailed(id, failure):
            openSubOrchestrations[id] = nil
            let name = openSlots[id]?.name ?? "sub-orchestration"
            resolveSlot(id, event: event, with: .failure(TaskFailedError(taskName: name, taskID: id, details: failure)))
        case let .eventRaised(name, input):
            deliverEvent(name: name, input: input)
        case .executionSuspended:
            switch lifecycle {
            case .notStarted: lifecycle = .suspended(started: false)
            case .running: lifecycle = .suspended(started: true)
            default: break
            }
        case .executionResumed:
            guard case .suspended(let started) = lifecycle else { break }
            lifecycle = started ? .running : .notStarted
            let buffered = suspendedEvents
            suspendedEvents = []
            for event in buffered { apply(event) }
        case let .executionTerminated(reason, recursive):
            if lifecycle.isLive {
                lifecycle = .finished(.terminated(reason: reason, recursive: recursive))
            }
        case let .executionCompleted(status, result, failure):
            lifecycle = .endedInHistory(status: status, output: result, failure: failure)
        case .continuedAsNew, .orchestratorCompleted:
            break
        }
        executor.drain()
    }

    /// Takes the instance's identity from its first `executionStarted` event — the one place it is set,
    /// whether the event is applied, only recorded (a terminate ended the instance first) or read for
    /// parking — so every ending can tell the parent.
    /// - Returns: `false` for a later start event, whose identity is ignored.
    @discardableResult
    private func takeIdentity(name: String, executionID: String, parent: HistoryEvent.ParentInstance?) -> Bool {
        guard self.executionID.isEmpty else { return false }
        self.name = name
        self.executionID = executionID
        self.parent = parent
        return true
    }

    private func start(name: String, executionID: String, input: Payload?, parent: HistoryEvent.ParentInstance?) {
        guard takeIdentity(name: name, executionID: executionID, parent: parent) else {
            options.log(.warning, "instance '\(instanceID)': ignoring a second executionStarted event")
            return
        }
        // Terminated before it started: the code never runs.
        guard case .notStarted = lifecycle else { return }
        lifecycle = .running
        guard let entry = resolveOrchestrator(name) else {
            let error = DurableTaskError(
                .orchestratorNotRegistered,
                "no orchestrator named '\(name)' is registered on this worker (instance '\(instanceID)')")
            lifecycle = .finished(.failed(FailureDetails(error: error)))
            return
        }
        // The view the code sees. It holds the engine, not the other way round: the only path back is
        // the task, which ends (or is cancelled at teardown), so no cycle outlives the instance.
        let context = OrchestrationContext(engine: self)
        orchestratorTask = Task(executorPreference: executor) { [self] in
            do {
                let output = try await entry.run(context, input)
                self.finish(.success(output))
            } catch {
                self.finish(.failure(error))
            }
        }
    }

    private func finish(_ outcome: Result<Payload?, any Error>) {
        switch lifecycle {
        case .running, .suspended: break
        default: return
        }
        switch outcome {
        case .success(let output):
            if let request = continueAsNewRequest {
                lifecycle = .finished(.continuedAsNew(input: request.input, preserveEvents: request.preserveEvents))
            } else {
                lifecycle = .finished(.completed(output))
            }
        case .failure(let error):
            lifecycle = .finished(.failed(FailureDetails(error: error)))
        }
    }

    private func confirm(_ event: HistoryEvent) {
        let sequence = event.eventID
        let action = pendingActions[sequence]
        if let action, action.matches(event) {
            pendingActions[sequence] = nil
            return
        }
        if case let .versionMarker(changeID) = event.kind {
            // Code that knows the change records its marker here (or consumes it); code that does
            // something else was written before the change — unless the call was deleted too early.
            changeNewerThanCode = changeID
        }
        failNonDeterministic(
            sequence: sequence, expected: "\(event)", actual: action.map { "\($0)" } ?? "nothing at this position (the call was removed or moved)")
    }

    private func failNonDeterministic(sequence: Int, expected: String, actual: String) {
        let error = NonDeterminismError(instanceID: instanceID, sequenceNumber: sequence, expected: expected, actual: actual)
        // A worker hands an instance recorded by newer code back rather than failing it, and says so.
        options.log(changeNewerThanCode == nil ? .error : .debug, error.message)
        nondeterminism = error
        lifecycle = .nondeterministic(FailureDetails(error: error))
    }

    private func resolveSlot(_ sequence: Int, event: HistoryEvent, with result: Result<Payload?, any Error>) {
        guard let slot = openSlots.removeValue(forKey: sequence) else {
            if lifecycle.isLive {
                options.log(.debug, "instance '\(instanceID)': ignoring \(event) with no matching open task")
            }
            return
        }
        slot.resolve(result)
    }

    private func deliverEvent(name: String, input: Payload?) {
        if var waiters = eventWaiters[name], !waiters.isEmpty {
            let slot = waiters.removeFirst()
            eventWaiters[name] = waiters.isEmpty ? nil : waiters
            slot.resolve(.success(input))
            return
        }
        if receivedEvents[name] == nil { receivedEventOrder.append(name) }
        receivedEvents[name, default: []].append(input)
    }

    /// Cancels the orchestrator's task and releases everything it waits on, so nothing leaks when the
    /// instance leaves the cache or the worker stops.
    func tearDown() {
        guard !isTornDown else { return }
        lifecycle = .tornDown
        orchestratorTask?.cancel()
        let slots = openSlots.values
        openSlots.removeAll()
        for slot in slots { slot.resolve(.failure(CancellationError())) }
        let waiters = eventWaiters.values.flatMap { $0 }
        eventWaiters.removeAll()
        for slot in waiters { slot.resolve(.failure(CancellationError())) }
        executor.drain()
        orchestratorTask = nil
    }

    /// Replays a history against the orchestrators and reports whether the code still matches it: the
    /// first nondeterminism, including code that, at the end of the history, has taken an action the
    /// history does not hold (every episode records all the actions its code took, so none may be left).
    /// - Returns: the nondeterminism, or the failure that kept the replay from running (an unknown
    ///   orchestrator); both `nil` when the code matches.
    package static func check(
        instanceID: String, orchestrators: [OrchestratorEntry], history: [HistoryEvent]
    )
        -> (nondeterminism: NonDeterminismError?, problem: FailureDetails?)
    {
        let byName = Dictionary(orchestrators.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for event in history {
            guard case let .executionStarted(name, _, _, _, _) = event.kind else { continue }
            if byName[name] == nil {
                return (
                    nil,
                    FailureDetails(
                        error: DurableTaskError(
                            .orchestratorNotRegistered,
                            "no orchestrator named '\(name)' was given to the replayer (instance '\(instanceID)')"))
                )
            }
            break
        }
        let engine = ReplayEngine(instanceID: instanceID, options: EngineOptions(), resolveOrchestrator: { byName[$0] })
        defer { engine.tearDown() }
        engine.replay(history)
        if let nondeterminism = engine.nondeterminism { return (nondeterminism, nil) }
        var leftover: (sequence: Int, action: OrchestratorAction)?
        engine.pendingActions.forEach { sequence, action in
            if leftover == nil { leftover = (sequence, action) }
        }
        if let leftover, history.last.map({ if case .orchestratorCompleted = $0.kind { true } else { false } }) ?? false {
            return (
                NonDeterminismError(
                    instanceID: instanceID, sequenceNumber: leftover.sequence,
                    expected: "nothing (the history ends before this position)", actual: "\(leftover.action)"), nil
            )
        }
        return (nil, nil)
    }

    /// Runs one episode with no worker and no backend: replays `oldEvents`, applies `newEvents`, and
    /// returns what would be committed. The engine tests' entry point (history in, actions out).
    package static func execute(
        instanceID: String, orchestrators: [OrchestratorEntry], oldEvents: [HistoryEvent],
        newEvents: [HistoryEvent], now: Date, options: EngineOptions = EngineOptions()
    ) -> OrchestrationWorkItemResult {
        let byName = Dictionary(orchestrators.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let engine = ReplayEngine(instanceID: instanceID, options: options, resolveOrchestrator: { byName[$0] })
        engine.replay(oldEvents)
        let result = engine.runEpisode(newEvents: newEvents, now: now)
        engine.tearDown()
        return result
    }
}
