import Foundation

// The replay engine: applies history events to an orchestration, drains its inline executor after
// each one, matches the actions the code takes against history, and turns an episode into the
// result a backend commits.
extension OrchestrationContext {
    // MARK: Scheduling (called from orchestrator code, synchronously)

    /// Records an action at the next sequence number and returns its open slot.
    func schedule(_ action: OrchestratorAction, name: String) -> TaskSlot {
        let sequence = nextSequence
        nextSequence += 1
        let slot = TaskSlot(sequence: sequence, name: name, engine: self)
        if tornDown {
            slot.resolve(.failure(CancellationError()))
            return slot
        }
        pendingActions[sequence] = action
        openSlots[sequence] = slot
        return slot
    }

    /// A future that has already failed, for a call rejected before scheduling (bad or oversized input).
    func failedFuture<T>(name: String, error: any Error) -> DurableFuture<T> {
        DurableFuture(slot: failedSlot(name: name, error: error))
    }

    /// A slot that has already failed; takes no sequence number, so history is not affected.
    func failedSlot(name: String, error: any Error) -> TaskSlot {
        let slot = TaskSlot(sequence: -1, name: name, engine: self)
        slot.resolve(.failure(error))
        return slot
    }

    /// Runs `attempt` once, or under a retry policy: failed attempts are retried after durable timers,
    /// driven by slot callbacks so the retries are as deterministic as the rest of the orchestration.
    func withRetry<T: Decodable & Sendable>(_ policy: RetryPolicy?, name: String, attempt makeAttempt: @escaping () -> TaskSlot) -> DurableFuture<T> {
        guard let policy, policy.maxAttempts > 1 else {
            return DurableFuture(slot: makeAttempt())
        }
        let outer = TaskSlot(sequence: -1, name: name, engine: self)
        let startedAt = currentDate
        var attempts = 0
        func run() {
            attempts += 1
            let slot = makeAttempt()
            let onResolved = { [unowned self] in
                guard case .failure(let error) = slot.outcome else {
                    outer.resolve(slot.outcome ?? .success(nil))
                    return
                }
                let details = FailureDetails(error: error)
                let delay = policy.delay(afterAttempt: attempts)
                let elapsed = self.currentDate.addingTimeInterval(delay.timeInterval).timeIntervalSince(startedAt)
                let withinTimeout = policy.overallTimeout.map { elapsed <= $0.timeInterval } ?? true
                guard !self.tornDown, error is TaskFailedError, details.isRetriable, attempts < policy.maxAttempts,
                      withinTimeout, policy.shouldRetry(details) else {
                    outer.resolve(.failure(error))
                    return
                }
                let timer = self.schedule(.createTimer(fireAt: self.currentDate.addingTimeInterval(delay.timeInterval)), name: "retry timer")
                timer.observers.append {
                    if case .failure(let timerError) = timer.outcome {
                        outer.resolve(.failure(timerError))
                    } else {
                        run()
                    }
                }
            }
            if slot.outcome != nil { onResolved() } else { slot.observers.append(onResolved) }
        }
        run()
        return DurableFuture(slot: outer)
    }

    // MARK: Episodes

    /// Replays committed history: the orchestrator runs again from the start, history confirms its
    /// actions and resolves its futures. No action is emitted.
    package func replay(_ history: [HistoryEvent]) {
        isReplaying = true
        for event in history {
            apply(event)
        }
        isReplaying = false
        historyLength = history.count
    }

    /// Applies one episode's new events and returns what the backend must commit.
    /// - Parameter now: the episode's time, recorded in its `orchestratorStarted` event.
    package func runEpisode(newEvents: [HistoryEvent], now: Date) -> OrchestrationWorkItemResult {
        isReplaying = false
        if let end = recordedEnd {
            // The history already ends the instance (e.g. a timer it no longer waited for came due):
            // consume the events and change nothing — no second completion, no second parent message.
            return OrchestrationWorkItemResult(status: end.status, output: end.status == .failed ? nil : end.output,
                                               failure: end.failure, customStatus: customStatus)
        }
        var history: [HistoryEvent] = []
        history.reserveCapacity(newEvents.count + pendingActions.count + 3)
        let episodeStart = HistoryEvent(timestamp: now, kind: .orchestratorStarted)
        history.append(episodeStart)
        apply(episodeStart)
        var carryover: [HistoryEvent] = []
        for event in Self.terminateFirst(newEvents) {
            if completion == nil {
                history.append(event)
                apply(event)
            } else if case .continuedAsNew = completion, case .eventRaised = event.kind {
                // Arrived after the orchestrator continued as new in this episode: hand it to the next generation.
                carryover.append(event)
            } else {
                history.append(event)
            }
        }
        if completion == nil, started, !isSuspended, waitingCount == 0 {
            let error = DurableTaskError(.orchestratorEscaped,
                "orchestrator '\(name)' (instance '\(instanceID)') is suspended on something that is not a durable operation "
                + "(an actor, Task.sleep, I/O or another task). Orchestrators may only await futures from their context.")
            completion = .failed(FailureDetails(error: error))
        }

        var result = OrchestrationWorkItemResult(status: .running)
        let finished = completion
        let isNonDeterministic = nonDeterminismDetected
        result.activities.reserveCapacity(pendingActions.count)
        pendingActions.forEach { sequence, action in
            if isNonDeterministic { return }
            // A terminated instance starts nothing more; a new generation redoes its own work.
            if case .terminated = finished { return }
            if case .continuedAsNew = finished, !isSendEvent(action) { return }
            emit(action, sequence: sequence, now: now, into: &history, result: &result)
        }
        pendingActions.removeAll()

        result.customStatus = customStatus
        switch finished {
        case nil:
            result.status = isSuspended ? .suspended : .running
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
        case .terminated(let reason):
            result.status = .terminated
            let output = reason.flatMap { try? PayloadCodec.encode($0) }
            result.output = output
            history.append(HistoryEvent(timestamp: now, kind: .executionCompleted(status: .terminated, result: output, failure: nil)))
            let failure = FailureDetails(errorType: "Terminated", message: "sub-orchestration '\(instanceID)' was terminated: \(reason ?? "no reason given")", isRetriable: false)
            notifyParent(.subOrchestrationFailed(scheduledID: parent?.taskID ?? -1, failure: failure), now: now, into: &result)
            if terminateChildren {
                for childID in openSubOrchestrations.sorted(by: { $0.key < $1.key }).map(\.value) {
                    result.messages.append(OrchestrationMessage(targetInstanceID: childID, event: HistoryEvent(
                        timestamp: now, kind: .executionTerminated(reason: "parent '\(instanceID)' was terminated", recurse: true))))
                }
            }
        case .continuedAsNew(let input, let preserveEvents):
            result.status = .continuedAsNew
            history.append(HistoryEvent(timestamp: now, kind: .continuedAsNew(input: input)))
            let startEvent = HistoryEvent(timestamp: now, kind: .executionStarted(
                name: name, executionID: UUID().uuidString, input: input, parent: parent, scheduledStart: nil))
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
        history.append(HistoryEvent(timestamp: now, kind: .orchestratorCompleted))
        result.newHistory = history
        return result
    }

    /// The new events in the order they are applied: a terminate request goes first, so it wins over
    /// everything that arrived with it — the orchestrator's own first step included (a terminate
    /// accepted before the instance started must end it without running its code). History records
    /// this order, so a replay takes the same path.
    private static func terminateFirst(_ events: [HistoryEvent]) -> [HistoryEvent] {
        guard let index = events.firstIndex(where: { if case .executionTerminated = $0.kind { true } else { false } }),
              index > 0 else { return events }
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
    package func prepareParking(history: [HistoryEvent], newEvents: [HistoryEvent], failure: FailureDetails) {
        for event in history + newEvents {
            switch event.kind {
            case let .executionStarted(name, executionID, _, parent, _) where !started:
                started = true
                self.name = name
                self.executionID = executionID
                self.parent = parent
            case let .executionCompleted(status, result, failure):
                recordedEnd = (status, result, failure)
            default:
                break
            }
        }
        historyLength = history.count
        completion = .failed(failure)
    }

    private func isSendEvent(_ action: OrchestratorAction) -> Bool {
        if case .sendEvent = action { return true }
        return false
    }

    private func notifyParent(_ kind: HistoryEvent.Kind, now: Date, into result: inout OrchestrationWorkItemResult) {
        guard let parent else { return }
        result.messages.append(OrchestrationMessage(targetInstanceID: parent.instanceID, event: HistoryEvent(timestamp: now, kind: kind)))
    }

    private func emit(_ action: OrchestratorAction, sequence: Int, now: Date, into history: inout [HistoryEvent],
                      result: inout OrchestrationWorkItemResult) {
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
            let start = HistoryEvent(timestamp: now, kind: .executionStarted(
                name: name, executionID: UUID().uuidString, input: input, parent: parentRef, scheduledStart: nil))
            result.newInstances.append(NewOrchestrationInstance(instanceID: childID, startEvent: start, replaceIfFinished: true))
        case let .sendEvent(target, name, input):
            history.append(HistoryEvent(eventID: sequence, timestamp: now, kind: .eventSent(targetInstanceID: target, name: name, input: input)))
            result.messages.append(OrchestrationMessage(targetInstanceID: target, event: HistoryEvent(timestamp: now, kind: .eventRaised(name: name, input: input))))
        }
    }

    // MARK: Applying events

    /// Applies one history event and lets the orchestrator run until it is quiescent again.
    func apply(_ event: HistoryEvent) {
        eventsApplied += 1
        // Once code and history disagree, later events would only pile up misleading errors.
        if nonDeterminismDetected { return }
        if isSuspended {
            switch event.kind {
            case .executionResumed, .executionTerminated, .orchestratorStarted, .orchestratorCompleted,
                 .taskScheduled, .timerCreated, .subOrchestrationCreated, .eventSent, .executionCompleted, .continuedAsNew:
                break
            default:
                // A suspended instance keeps its events and processes them after it is resumed.
                suspendedEvents.append(event)
                return
            }
        }
        switch event.kind {
        case .orchestratorStarted:
            currentDate = event.timestamp
        case let .executionStarted(name, executionID, input, parent, _):
            start(name: name, executionID: executionID, input: input, parent: parent)
        case .taskScheduled, .timerCreated, .subOrchestrationCreated, .eventSent:
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
            isSuspended = true
        case .executionResumed:
            isSuspended = false
            let buffered = suspendedEvents
            suspendedEvents = []
            for event in buffered { apply(event) }
        case let .executionTerminated(reason, recurse):
            if completion == nil {
                completion = .terminated(reason)
                terminateChildren = recurse
            }
        case let .executionCompleted(status, result, failure):
            recordedEnd = (status, result, failure)
        case .continuedAsNew, .orchestratorCompleted:
            break
        }
        executor.drain()
    }

    private func start(name: String, executionID: String, input: Payload?, parent: HistoryEvent.ParentInstance?) {
        guard !started else {
            options.log(.warning, "instance '\(instanceID)': ignoring a second executionStarted event")
            return
        }
        started = true
        self.name = name
        self.executionID = executionID
        self.parent = parent
        // Terminated before it started: the code never runs.
        guard completion == nil else { return }
        guard let entry = resolveOrchestrator(name) else {
            let error = DurableTaskError(.orchestratorNotRegistered,
                                         "no orchestrator named '\(name)' is registered on this worker (instance '\(instanceID)')")
            completion = .failed(FailureDetails(error: error))
            return
        }
        orchestratorTask = Task(executorPreference: executor) { [self] in
            do {
                let output = try await entry.run(self, input)
                self.finish(.success(output))
            } catch {
                self.finish(.failure(error))
            }
        }
    }

    private func finish(_ outcome: Result<Payload?, any Error>) {
        guard completion == nil, !tornDown else { return }
        switch outcome {
        case .success(let output):
            if let request = continueAsNewRequest {
                completion = .continuedAsNew(input: request.input, preserveEvents: request.preserveEvents)
            } else {
                completion = .completed(output)
            }
        case .failure(let error):
            completion = .failed(FailureDetails(error: error))
        }
    }

    private func confirm(_ event: HistoryEvent) {
        let sequence = event.eventID
        guard let action = pendingActions[sequence] else {
            failNonDeterministic(sequence: sequence, expected: "\(event)", actual: "nothing at this position (the call was removed or moved)")
            return
        }
        guard action.matches(event) else {
            failNonDeterministic(sequence: sequence, expected: "\(event)", actual: "\(action)")
            return
        }
        pendingActions[sequence] = nil
    }

    private func failNonDeterministic(sequence: Int, expected: String, actual: String) {
        let error = NonDeterminismError(instanceID: instanceID, sequenceNumber: sequence, expected: expected, actual: actual)
        options.log(.error, error.message)
        nonDeterminismDetected = true
        completion = .failed(FailureDetails(error: error))
    }

    private func resolveSlot(_ sequence: Int, event: HistoryEvent, with result: Result<Payload?, any Error>) {
        guard let slot = openSlots.removeValue(forKey: sequence) else {
            if completion == nil {
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
    package func tearDown() {
        guard !tornDown else { return }
        tornDown = true
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

    /// Whether the orchestration reached an end (completed, failed, terminated, continued as new).
    package var isFinished: Bool { completion != nil }
}

extension OrchestrationContext {
    /// Runs one episode with no worker and no backend: replays `oldEvents`, applies `newEvents`, and
    /// returns what would be committed. The engine tests' entry point (history in, actions out).
    package static func execute(instanceID: String, orchestrators: [OrchestratorEntry], oldEvents: [HistoryEvent],
                                newEvents: [HistoryEvent], now: Date, options: EngineOptions = EngineOptions()) -> OrchestrationWorkItemResult {
        let byName = Dictionary(orchestrators.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let context = OrchestrationContext(instanceID: instanceID, options: options, resolveOrchestrator: { byName[$0] })
        context.replay(oldEvents)
        let result = context.runEpisode(newEvents: newEvents, now: now)
        context.tearDown()
        return result
    }
}
