import Foundation

// The activity pipeline: lease in batches, run on long-lived runners, write results in groups,
// renew the leases of everything leased and not yet finished.
extension DurableTaskWorker {
    // MARK: Activities

    func activityFetchLoop(_ intake: ActivityIntake) async {
        // Lease in large batches, so a fan-out costs few lease transactions; leases of queued items are
        // renewed like those of running ones. Refill only once a quarter of the window is free, so each
        // lease transaction carries many items.
        let running = intake.running
        let limit = intake.limit
        let fetchLog = RepeatedLog("fetching activity work items", handler: options.logHandler)
        while !Task.isCancelled {
            let generation = backend.changeGeneration(.activityWork)
            // A worker that runs only orchestrations (the other half of a split deployment) leaves the
            // activities to the workers that have them, rather than failing them as unregistered.
            // (A plain sleep: a wait for work would wake at once for work that is due but not ours.)
            if registry.withLock({ $0.activities.isEmpty }) {
                try? await Task.sleep(for: options.pollInterval)
                continue
            }
            let capacityGeneration = running.generation
            let free = intake.free
            if free < max(1, limit / 4) {
                await running.waitForCapacity(since: capacityGeneration, timeout: options.pollInterval)
                continue
            }
            // At most one redelivery in flight (see `orchestrationDispatcher`): if it crashes the process
            // again, the crash counts against it, not against fresh items running beside it. The slot
            // is taken before leasing and kept only if a redelivery came back.
            let mayTakeRedelivery = running.redelivery.trySet()
            let items: [ActivityWorkItem]
            do {
                items = try await backend.getActivityWorkItems(
                    owner: options.workerID, maxCount: free,
                    maxRedelivered: mayTakeRedelivery ? 1 : 0,
                    leaseDuration: options.activityLeaseDuration)
            } catch {
                if mayTakeRedelivery { running.redelivery.clear() }
                fetchLog.error("could not fetch activity work items: \(error)")
                try? await Task.sleep(for: options.pollInterval)
                continue
            }
            fetchLog.recovered()
            if mayTakeRedelivery && !items.contains(where: { Redelivery.isRedelivery(leasedCount: $0.deliveryCount) }) { running.redelivery.clear() }
            if !items.isEmpty {
                if Task.isCancelled {
                    for item in items {
                        try? await backend.abandonActivityWorkItem(item, delay: .zero)
                    }
                    return
                }
                _ = intake.accept(items)
                // A full batch: more may be ready at once.
                if items.count == free { continue }
            }
            // Fewer than asked for: nothing else was ready when the lease ran, so the next one waits for
            // a change since then (an empty lease is a transaction too).
            if !mayTakeRedelivery {
                // The next redelivery may be leased as soon as this one finishes.
                await Self.waitForEither(backend, since: generation, running, since: capacityGeneration, timeout: options.pollInterval)
            } else {
                await backend.waitForChange(.activityWork, since: generation, timeout: options.pollInterval)
            }
        }
    }

    /// Returns when new activity work may be available or a leased activity finished.
    static func waitForEither(
        _ backend: any Backend, since generation: UInt64, _ running: RunningActivities,
        since capacityGeneration: UInt64, timeout: Duration
    ) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await backend.waitForChange(.activityWork, since: generation, timeout: timeout) }
            group.addTask { await running.waitForCapacity(since: capacityGeneration, timeout: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    func activityRunner(
        queue: WorkQueue<ActivityWorkItem>, activities snapshot: [String: ActivityEntry],
        completions: CompletionBuffer, outbox: RunnerOutbox, running: RunningActivities
    ) async {
        var activities = snapshot
        // Results go to the writer in small batches (see CompletionBuffer): when the outbox is full,
        // when the runner is about to wait for work, or swept by the writer when they wait too long.
        func handOver() {
            let finished = completions.take(from: outbox)
            guard !finished.isEmpty else { return }
            running.finished(finished.lazy.map(\.item))
            completions.append(contentsOf: finished)
        }
        while true {
            let item: ActivityWorkItem
            if let next = queue.tryPop() {
                item = next
            } else {
                handOver()
                guard let next = await queue.pop() else { break }
                item = next
            }
            if Task.isCancelled {
                // Stopping: hand leased-but-unstarted items back at once instead of letting their leases
                // run out, so another worker (or the next start) picks them up without waiting.
                running.finished(CollectionOfOne(item))
                try? await backend.abandonActivityWorkItem(item, delay: .zero)
                continue
            }
            let context = ActivityContext(instanceID: item.instanceID, taskID: item.taskID, name: item.name, deliveryCount: item.deliveryCount)
            let kind: HistoryEvent.Kind
            var startedAt: Date?
            if activities[item.name] == nil {
                // Registered after `run()` started, or not at all.
                activities = registry.withLock { $0.activities }
            }
            if item.deliveryCount > options.maxDeliveryCount {
                // Checked before the activity runs: an activity that takes the process down (a
                // fatalError) would otherwise be leased, and crash a worker, forever.
                let error = DurableTaskError(
                    .poisoned,
                    "activity '\(item.name)' (instance '\(item.instanceID)', task #\(item.taskID)) was poisoned: delivered "
                        + "\(item.deliveryCount) times without a result (the process running it stopped each time, e.g. a crash in "
                        + "activity code); it is not run again")
                options.logHandler(.error, error.message)
                kind = .taskFailed(
                    scheduledID: item.taskID,
                    failure: FailureDetails(
                        errorType: "DurableTaskError.poisoned", message: error.message, isRetriable: false))
            } else if let entry = activities[item.name] {
                do {
                    startedAt = backend.clock.now()
                    let output = try await entry.run(context, item.input, options.maxPayloadBytes)
                    kind = .taskCompleted(scheduledID: item.taskID, result: output)
                } catch is CancellationError where Task.isCancelled {
                    // The worker is stopping: this is not the activity's failure. Hand the item back so
                    // it runs again, here or in another worker.
                    running.finished(CollectionOfOne(item))
                    try? await backend.abandonActivityWorkItem(item, delay: .zero)
                    continue
                } catch {
                    kind = .taskFailed(scheduledID: item.taskID, failure: FailureDetails(error: error))
                }
            } else {
                let error = DurableTaskError(
                    .activityNotRegistered,
                    "no activity named '\(item.name)' is registered on this worker (instance '\(item.instanceID)', task #\(item.taskID))")
                kind = .taskFailed(scheduledID: item.taskID, failure: FailureDetails(error: error))
            }
            counters.activitiesExecuted.add(1, ordering: .relaxed)
            let completion = ActivityCompletion(item: item, event: HistoryEvent(timestamp: backend.clock.now(), kind: kind, startedAt: startedAt))
            if completions.keep(completion, in: outbox) >= 32 { handOver() }
        }
        handOver()
    }

    /// Group commit: writes every completion buffered since the previous write in one call.
    func completionWriter(_ completions: CompletionBuffer, running: RunningActivities, orchestrations: OrchestrationIntake) async {
        while !Task.isCancelled {
            await completions.waitForItems()
            // Results a busy runner has held too long.
            for outbox in completions.outboxes {
                let stale = completions.take(from: outbox, olderThan: CompletionBuffer.maxHold)
                guard !stale.isEmpty else { continue }
                running.finished(stale.lazy.map(\.item))
                completions.append(contentsOf: stale)
            }
            await flush(completions, orchestrations: orchestrations)
        }
    }

    /// Writes the buffered results; the commit also leases the instances they make ready that this
    /// worker ran last, when it has room for their episodes (see ``OrchestrationIntake``).
    func flush(_ completions: CompletionBuffer, orchestrations: OrchestrationIntake) async {
        let batch = completions.takeAll()
        guard !batch.isEmpty else { return }
        var attempt = 0
        while true {
            do {
                let accepted: [Bool]
                if let lease = orchestrations.request(
                    instances: Set(batch.lazy.map(\.item.instanceID)).count, owner: options.workerID,
                    leaseDuration: options.orchestrationLeaseDuration)
                {
                    let recorded: RecordedActivityResults
                    do {
                        recorded = try await backend.completeActivityWorkItems(batch, leasing: lease)
                    } catch {
                        orchestrations.release(lease)
                        throw error
                    }
                    accepted = recorded.accepted
                    if !orchestrations.accept(recorded.leased, claimed: lease) {
                        // The worker stopped while the results committed: hand the instances back unchanged.
                        for item in recorded.leased {
                            try? await backend.abandonOrchestrationWorkItem(item, delay: .zero, countsAsDelivery: false)
                        }
                    }
                } else {
                    accepted = try await backend.completeActivityWorkItems(batch)
                }
                let fenced = accepted.lazy.filter { !$0 }.count
                if fenced > 0 {
                    counters.activityCompletionsFenced.add(fenced, ordering: .relaxed)
                    options.logHandler(.warning, "\(fenced) activity result(s) rejected as late or duplicate (lease lost)")
                }
                return
            } catch {
                attempt += 1
                options.logHandler(.error, "could not record \(batch.count) activity result(s) (attempt \(attempt)): \(error)")
                // The leases will expire and the activities run again; retry a few times first.
                if attempt >= 5 { return }
                try? await Task.sleep(for: .milliseconds(100 << attempt))
            }
        }
    }

    func leaseRenewer(_ running: RunningActivities) async {
        let interval = options.activityLeaseDuration / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let items = running.snapshot()
            guard !items.isEmpty else { continue }
            _ = try? await backend.renewActivityWorkItemLeases(items, leaseDuration: options.activityLeaseDuration)
        }
    }
}
