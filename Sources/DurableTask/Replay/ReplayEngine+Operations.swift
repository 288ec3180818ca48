import Foundation

// The scheduling side of the engine, called synchronously from orchestrator code through
// ``OrchestrationContext``: each durable operation takes the next sequence number, records a pending
// action that history must confirm, and returns the slot its future waits on.
extension ReplayEngine {
    /// Records an action at the next sequence number and returns its open slot.
    func schedule(_ action: OrchestratorAction, name: String) -> TaskSlot {
        let sequence = nextSequence
        nextSequence += 1
        let slot = TaskSlot(sequence: sequence, name: name, engine: self)
        if isTornDown {
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
                guard !self.isTornDown, error is TaskFailedError, details.isRetriable, attempts < policy.maxAttempts,
                    withinTimeout, policy.shouldRetry(details)
                else {
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

    /// The replay-safe logger, as orchestrator code has it.
    var logger: OrchestrationLogger { OrchestrationLogger(engine: self) }

    /// The name of `type`: the engine's own copy first (no lock in a fan-out's loop), then the process's.
    func typeName(_ type: Any.Type, _ compute: () -> String) -> String {
        let key = ObjectIdentifier(type)
        if let name = typeNames[key] { return name }
        let name = TypeNames.name(of: type, compute)
        typeNames[key] = name
        return name
    }

    func newUUID() -> UUID {
        uuidCounter += 1
        return DeterministicUUID.make(name: "\(instanceID)|\(executionID)|\(uuidCounter)")
    }

    func setCustomStatus<T: Encodable>(_ status: T?) {
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

    func callActivity<Input: Encodable, Output: Decodable & Sendable>(
        _ name: String, input: Input, retry: RetryPolicy?
    ) -> DurableFuture<Output> {
        let payload: Payload
        do {
            // The name is stored as text: cut at a NUL, "Square\0x" would run the activity "Square".
            try ArgumentCheck.identifier(name, "activity name")
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

    func callSubOrchestrator<Input: Encodable, Output: Decodable & Sendable>(
        _ name: String, input: Input, instanceID: String?, retry: RetryPolicy?
    ) -> DurableFuture<Output> {
        let payload: Payload
        do {
            try ArgumentCheck.identifier(name, "sub-orchestrator name")
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

    func createTimer(fireAt: Date) -> DurableFuture<Void> {
        do {
            try ArgumentCheck.date(fireAt, "fire time of a timer in instance '\(instanceID)'")
        } catch {
            return failedFuture(name: "timer", error: error)
        }
        return DurableFuture(slot: schedule(.createTimer(fireAt: fireAt), name: "timer"))
    }

    func waitForExternalEvent<T: Decodable & Sendable>(_ name: String, timeout: Duration?) -> DurableFuture<T> {
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
            let timer = createTimer(fireAt: currentDate.addingTimeInterval(timeout.timeInterval))
            let instanceID = self.instanceID
            timer.slot.observers.append { [unowned self] in
                guard slot.outcome == nil else { return }
                self.eventWaiters[name]?.removeAll { $0 === slot }
                slot.resolve(.failure(DurableTaskError(.timeout, "instance '\(instanceID)' received no event '\(name)' within \(timeout)")))
            }
        }
        return future
    }

    func sendEvent<T: Encodable>(instanceID target: String, name: String, data: T) {
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

    /// See ``OrchestrationContext/isPatched(_:)``. The first call for a change ID decides, from what
    /// history holds at the sequence number the call would take; later calls repeat the answer. Both
    /// depend only on history and on the calls made before, so a replay answers as the first run did.
    func isPatched(_ changeID: String) -> Bool {
        let sequence = nextSequence
        if let answer = patchAnswers[changeID] {
            // A history written when every call recorded a marker still has one here: consume it, so
            // instances from then replay. New histories hold one marker per change, taken by the first call.
            if answer, sequence < recordedActionCount, recordedMarkers[sequence] == changeID { recordVersionMarker(changeID) }
            return answer
        }
        // History covers this position: the first run either took the new path here (and recorded the
        // marker) or did something else (it ran the code from before the change). Otherwise this is the
        // first run of this position, on the new code.
        let answer = sequence >= recordedActionCount || recordedMarkers[sequence] == changeID
        if answer { recordVersionMarker(changeID) }
        patchAnswers[changeID] = answer
        return answer
    }

    /// See ``OrchestrationContext/deprecatePatch(_:)``: consumes a marker that history holds here, records
    /// none, so instances that took the new path replay and new instances carry no marker.
    func deprecatePatch(_ changeID: String) {
        let sequence = nextSequence
        guard sequence < recordedActionCount, recordedMarkers[sequence] == changeID else { return }
        recordVersionMarker(changeID)
    }

    /// A marker is an action history confirms, like a scheduled task, but nothing completes it.
    private func recordVersionMarker(_ changeID: String) {
        let slot = schedule(.recordVersionMarker(changeID: changeID), name: "version marker '\(changeID)'")
        openSlots.removeValue(forKey: slot.sequence)
        slot.resolve(.success(nil))
    }

    func continueAsNew<T: Encodable>(input: T, preserveUnprocessedEvents: Bool) throws {
        let payload = try PayloadCodec.encode(input, limit: options.maxPayloadBytes, what: "continue-as-new input of instance '\(instanceID)'")
        continueAsNewRequest = (payload, preserveUnprocessedEvents)
    }
}
