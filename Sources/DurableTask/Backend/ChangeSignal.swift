import Synchronization

/// An in-process wake-up: waiters suspend until `notify()` or a timeout, and a generation counter
/// makes "look for work, then wait" free of lost wake-ups.
///
/// `notify()` is on hot paths (every activity result), so it takes the lock only when someone waits:
/// the generation and the waiter count are atomics, ordered so that either a waiter sees the new
/// generation or the notifier sees the waiter.
@_spi(Backend) public final class ChangeSignal: Sendable {
    private struct Waiters {
        var nextID: UInt64 = 0
        var continuations: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }
    private let waiters = Mutex(Waiters())
    private let currentGeneration = Atomic<UInt64>(0)
    private let waiterCount = Atomic<Int>(0)

    @_spi(Backend) public init() {}

    /// The current generation; it increases on every `notify()`.
    @_spi(Backend) public var generation: UInt64 { currentGeneration.load(ordering: .sequentiallyConsistent) }

    /// Wakes every waiter.
    @_spi(Backend) public func notify() {
        currentGeneration.add(1, ordering: .sequentiallyConsistent)
        guard waiterCount.load(ordering: .sequentiallyConsistent) > 0 else { return }
        let woken = waiters.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state.continuations.removeAll(keepingCapacity: true) }
            waiterCount.subtract(state.continuations.count, ordering: .sequentiallyConsistent)
            return Array(state.continuations.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns when `notify()` is called after `generation` was read, or after `timeout`.
    @_spi(Backend) public func wait(since generation: UInt64, timeout: Duration) async {
        guard self.generation == generation else { return }
        let id = waiters.withLock { state -> UInt64 in
            state.nextID &+= 1
            return state.nextID
        }
        var timer: Task<Void, Never>?
        await withTaskCancellationHandler {
            await waitRegistered(id: id, generation: generation, timeout: timeout, timer: &timer)
        } onCancel: {
            self.expire(id)
        }
        timer?.cancel()
    }

    private func waitRegistered(id: UInt64, generation: UInt64, timeout: Duration, timer: inout Task<Void, Never>?) async {
        if Task.isCancelled { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let registered = waiters.withLock { state -> Bool in
                waiterCount.add(1, ordering: .sequentiallyConsistent)
                // Checked after announcing the waiter: a notify that raced us either sees the count or
                // has already moved the generation on.
                if currentGeneration.load(ordering: .sequentiallyConsistent) != generation {
                    waiterCount.subtract(1, ordering: .sequentiallyConsistent)
                    return false
                }
                state.continuations[id] = continuation
                return true
            }
            guard registered else {
                continuation.resume()
                return
            }
            // Started after registration, so an early expiry cannot miss the waiter.
            timer = Task {
                do {
                    try await Task.sleep(for: timeout)
                    self.expire(id)
                } catch {}
            }
        }
    }

    private func expire(_ id: UInt64) {
        let waiter = waiters.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.continuations.removeValue(forKey: id) else { return nil }
            waiterCount.subtract(1, ordering: .sequentiallyConsistent)
            return waiter
        }
        waiter?.resume()
    }
}

/// The three wake-ups every backend keeps, one per ``BackendChange``.
@_spi(Backend) public struct BackendSignals: Sendable {
    /// New orchestration work may be available.
    @_spi(Backend) public let orchestration = ChangeSignal()
    /// New activity work may be available.
    @_spi(Backend) public let activity = ChangeSignal()
    /// An instance's status or custom status changed.
    @_spi(Backend) public let instance = ChangeSignal()
    /// Waiters on single instances.
    @_spi(Backend) public let instances = InstanceWaiters()

    @_spi(Backend) public init() {}

    // Who is woken by what, in one place: every backend calls these after it committed a change.

    /// An instance was created: a worker may start it, waiters may see it.
    @_spi(Backend) public func instanceCreated(_ instanceID: String) {
        orchestration.notify()
        instance.notify()
        instances.notify(instanceID)
    }

    /// An instance was deleted: its waiters see it gone.
    @_spi(Backend) public func instancesPurged(_ instanceIDs: [String]) {
        guard !instanceIDs.isEmpty else { return }
        instance.notify()
        for id in instanceIDs { instances.notify(id) }
    }

    /// An event was added to an instance's inbox (or a lease handed back): a worker may run an episode.
    @_spi(Backend) public func orchestrationWorkAdded() {
        orchestration.notify()
    }

    /// An episode committed: its activities are ready, its instance (and others it messaged) may have
    /// more work, its status changed.
    /// - Parameters:
    ///   - scheduledActivities: whether it left activities for the workers to lease (not those leased
    ///     in its own commit).
    ///   - orchestrationWork: whether an instance has orchestration work now — events left in this
    ///     one's inbox (arrived during the episode, a timer), a child started, a message sent. Without
    ///     it the dispatchers are not woken: a lease would find nothing.
    ///   - endedInstance: whether the episode finished its instance; the others wake only the waiters
    ///     that watch more than the end.
    @_spi(Backend) public func episodeCommitted(
        _ instanceID: String, scheduledActivities: Bool, orchestrationWork: Bool, endedInstance: Bool,
        children: [NewOrchestrationInstance]
    ) {
        if scheduledActivities { activity.notify() }
        if orchestrationWork { orchestration.notify() }
        instance.notify()
        instances.notify(instanceID, mayEnd: endedInstance)
        for child in children { instances.notify(child.instanceID) }
    }

    /// Activity results were recorded: their instances have new events.
    @_spi(Backend) public func activityResultsRecorded(_ accepted: [Bool]) {
        if accepted.contains(true) { orchestration.notify() }
    }

    /// Activity results were recorded and some of their instances leased in the same commit: only the
    /// instances left unleased are work for the dispatchers (the leased ones are on their way to one).
    @_spi(Backend) public func activityResultsRecorded(_ completions: [ActivityCompletion], _ recorded: RecordedActivityResults) {
        let leased = Set(recorded.leased.lazy.map(\.instanceID))
        if zip(completions, recorded.accepted).contains(where: { $1 && !leased.contains($0.item.instanceID) }) { orchestration.notify() }
    }

    /// Leases were released (time moved on, a dead worker's leases were taken over): any work may be
    /// available.
    @_spi(Backend) public func leasesReleased() {
        orchestration.notify()
        activity.notify()
    }

    /// An activity was handed back: a worker may lease it again.
    @_spi(Backend) public func activityWorkAdded() {
        activity.notify()
    }

    /// The signal for a kind of change.
    @_spi(Backend) public subscript(_ change: BackendChange) -> ChangeSignal {
        switch change {
        case .orchestrationWork: orchestration
        case .activityWork: activity
        case .instanceState: instance
        }
    }
}
