import Synchronization

/// Waiters on single instances: a change of one instance wakes only those who wait for it, so a client
/// waiting on N instances costs O(N) reads in all — a task-hub-wide signal woke every waiter on every
/// change, O(N) reads per change.
///
/// A waiter registers **before** it reads the instance and waits after; a change in between marks the
/// registration, and the wait returns at once. Registrations exist only while someone waits, so the
/// table holds waiters, not instances; ``notify(_:)`` is one atomic load when nobody waits.
@_spi(Backend) public final class InstanceWaiters: Sendable {
    private struct Waiter {
        var notified = false
        /// Woken only by changes that may end the instance (see ``InstanceWatch/waitForTheEndOnly()``).
        var endingOnly = false
        var continuation: CheckedContinuation<Void, Never>?
        /// Counts the waits of this registration, so a timeout meant for an earlier wait is ignored.
        var wait: UInt64 = 0
    }
    /// A wait's timeout in the shared sweep.
    private struct Deadline {
        let token: UInt64
        let wait: UInt64
    }
    private struct State {
        var nextToken: UInt64 = 0
        /// Registrations by token: a wait, a wake and a timeout find theirs without hashing an instance ID.
        var registrations: [UInt64: Waiter] = [:]
        /// The tokens of each watched instance (mostly one), for ``notify(_:mayEnd:)``.
        var tokens: [String: [UInt64]] = [:]
        /// Timeouts of the long waits, by the sweep tick they are due at.
        var deadlines: [Int64: [Deadline]] = [:]
        var sweeping = false
        /// Instances that got their first waiter since the last ``takeNewlyWatched()``, when tracked.
        var newlyWatched: [String] = []
        var tracksNewlyWatched = false
    }
    private let state = Mutex(State())
    private let registered = Atomic<Int>(0)
    private let origin = ContinuousClock.now

    /// Waits at least this long share one sweeping task for their timeouts, instead of a timer task
    /// each: with 10,000 clients waiting, creating and cancelling their timers cost more than the waits.
    private static let sweptFrom = Duration.seconds(1)
    /// How often the sweep runs: the lateness of a long wait's timeout.
    private static let sweepTick = Duration.milliseconds(100)

    @_spi(Backend) public init() {}

    /// Registers interest in `instanceID`; pair with ``cancel(_:token:)``.
    @_spi(Backend) public func register(_ instanceID: String) -> UInt64 {
        registered.add(1, ordering: .sequentiallyConsistent)
        return state.withLock { state in
            state.nextToken &+= 1
            let token = state.nextToken
            state.registrations[token] = Waiter()
            let isFirst = state.tokens[instanceID] == nil
            state.tokens[instanceID, default: []].append(token)
            if state.tracksNewlyWatched && isFirst { state.newlyWatched.append(instanceID) }
            return token
        }
    }

    /// Starts recording the instances that get their first waiter, for ``takeNewlyWatched()``: a
    /// backend that looks for other processes' changes reads only those when nothing else changed.
    @_spi(Backend) public func trackNewlyWatched() {
        state.withLock { $0.tracksNewlyWatched = true }
    }

    /// The instances that got their first waiter since the previous call (some may have none left).
    @_spi(Backend) public func takeNewlyWatched() -> [String] {
        state.withLock { state in
            defer { state.newlyWatched.removeAll() }
            return state.newlyWatched
        }
    }

    /// Lets only changes that may end the instance wake this registration from now on.
    @_spi(Backend) public func wakeOnEndingOnly(_ instanceID: String, token: UInt64) {
        state.withLock { $0.registrations[token]?.endingOnly = true }
    }

    /// Ends a registration.
    @_spi(Backend) public func cancel(_ instanceID: String, token: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.registrations.removeValue(forKey: token) else { return nil }
            if let index = state.tokens.index(forKey: instanceID) {
                state.tokens.values[index].removeAll { $0 == token }
                if state.tokens.values[index].isEmpty { state.tokens.remove(at: index) }
            }
            return waiter
        }
        guard let waiter else { return }
        registered.subtract(1, ordering: .sequentiallyConsistent)
        waiter.continuation?.resume()
    }

    /// Wakes the waiters of `instanceID` (or marks them, when they have not started waiting yet).
    /// - Parameter mayEnd: `false` for a change that leaves the instance running (an episode that did
    ///   not finish it), which wakes only the waiters that watch more than the end. When unsure (a
    ///   change seen in another process), `true`.
    @_spi(Backend) public func notify(_ instanceID: String, mayEnd: Bool = true) {
        guard registered.load(ordering: .sequentiallyConsistent) > 0 else { return }
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard let tokens = state.tokens[instanceID] else { return [] }
            var woken: [CheckedContinuation<Void, Never>] = []
            for token in tokens {
                // Changed in place through the index: one lookup per registration.
                guard let index = state.registrations.index(forKey: token) else { continue }
                if !mayEnd && state.registrations.values[index].endingOnly { continue }
                state.registrations.values[index].notified = true
                if let continuation = state.registrations.values[index].continuation {
                    woken.append(continuation)
                    state.registrations.values[index].continuation = nil
                }
            }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    /// Wakes every waiter: after a backend may have missed other processes' changes (a lost
    /// `LISTEN` connection).
    @_spi(Backend) public func notifyAll() {
        guard registered.load(ordering: .sequentiallyConsistent) > 0 else { return }
        for instanceID in watchedInstanceIDs() { notify(instanceID) }
    }

    /// Whether anybody waits; one atomic load.
    @_spi(Backend) public var hasWaiters: Bool { registered.load(ordering: .sequentiallyConsistent) > 0 }

    /// The instances somebody waits on now.
    @_spi(Backend) public func watchedInstanceIDs() -> [String] {
        state.withLock { Array($0.tokens.keys) }
    }

    /// Returns once the instance was notified since the registration (or the previous wait), or after
    /// `timeout`; clears the mark for the next wait.
    @_spi(Backend) public func wait(_ instanceID: String, token: UInt64, timeout: Duration) async {
        let swept = timeout >= Self.sweptFrom
        let (wait, startSweep) = state.withLock { state -> (UInt64, Bool) in
            guard let index = state.registrations.index(forKey: token) else { return (0, false) }
            state.registrations.values[index].wait &+= 1
            let wait = state.registrations.values[index].wait
            guard swept else { return (wait, false) }
            let due = tick(ContinuousClock.now + timeout) + 1
            state.deadlines[due, default: []].append(Deadline(token: token, wait: wait))
            defer { state.sweeping = true }
            return (wait, !state.sweeping)
        }
        if startSweep { Task.detached { await self.sweep() } }
        let timer =
            swept
            ? nil
            : Task {
                // Only a timeout wakes the waiter: a cancelled timer (the wait ended) must not mark it.
                do {
                    try await Task.sleep(for: timeout)
                    self.wake(token: token, wait: wait)
                } catch {}
            }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard let index = state.registrations.index(forKey: token) else { return true }
                    if state.registrations.values[index].notified {
                        state.registrations.values[index].notified = false
                        return true
                    }
                    state.registrations.values[index].continuation = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.wake(token: token, wait: wait)
        }
        timer?.cancel()
        state.withLock { state in state.registrations[token]?.notified = false }
    }

    private func tick(_ instant: ContinuousClock.Instant) -> Int64 {
        let elapsed = (instant - origin).components
        let tickNanoseconds = Self.sweepTick.components.attoseconds / 1_000_000_000
        return (elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000) / tickNanoseconds
    }

    /// Times out the long waits that are due, every tick, until none is left.
    private func sweep() async {
        while true {
            try? await Task.sleep(for: Self.sweepTick)
            let now = tick(ContinuousClock.now)
            let (due, done) = state.withLock { state -> ([Deadline], Bool) in
                var due: [Deadline] = []
                for key in state.deadlines.keys where key <= now {
                    due += state.deadlines.removeValue(forKey: key) ?? []
                }
                if state.deadlines.isEmpty { state.sweeping = false }
                return (due, !state.sweeping)
            }
            for deadline in due { wake(token: deadline.token, wait: deadline.wait) }
            if done { return }
        }
    }

    /// Ends one wait early (timeout, cancellation). When the waiter is not suspended yet, it is marked,
    /// so the wait it is about to start returns at once instead of missing its timeout. A wake for an
    /// earlier wait of the registration (a timeout that fired after that wait returned) does nothing.
    private func wake(token: UInt64, wait: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let index = state.registrations.index(forKey: token), state.registrations.values[index].wait == wait else { return nil }
            guard let continuation = state.registrations.values[index].continuation else {
                state.registrations.values[index].notified = true
                return nil
            }
            state.registrations.values[index].continuation = nil
            return continuation
        }
        continuation?.resume()
    }
}

/// A client's interest in one instance's state, from ``Backend/watchInstance(_:)``: created before the
/// client reads the instance, so a change between the read and ``wait(timeout:)`` is not lost.
@_spi(Backend) public final class InstanceWatch: Sendable {
    private enum Source {
        /// The backend wakes waiters per instance.
        case instance(InstanceWaiters, token: UInt64)
        /// A backend without per-instance wake-ups: any instance's change wakes the wait.
        case taskHub(any Backend)
    }
    private let instanceID: String
    private let source: Source
    /// For `.taskHub`: the task-hub generation the next wait starts from.
    private let generation = Atomic<UInt64>(0)
    /// Whether a change made by another process (or another backend on the same store) wakes the
    /// wait too. When it does, a client waits without polling; otherwise it re-reads the instance
    /// every ``DurableTaskClient/pollInterval``.
    public let seesOtherProcesses: Bool

    /// A watch on a backend's per-instance waiters.
    /// - Parameter seesOtherProcesses: whether the backend also notifies the waiters of other
    ///   processes' changes (by `LISTEN`/`NOTIFY`, by watching the database file, or because there are
    ///   none, as in memory).
    @_spi(Backend) public init(_ instanceID: String, waiters: InstanceWaiters, seesOtherProcesses: Bool) {
        self.instanceID = instanceID
        self.seesOtherProcesses = seesOtherProcesses
        source = .instance(waiters, token: waiters.register(instanceID))
    }

    /// A watch that falls back to the backend's task-hub-wide ``BackendChange/instanceState`` signal,
    /// which covers this process only.
    public init(_ instanceID: String, backend: any Backend) {
        self.instanceID = instanceID
        seesOtherProcesses = false
        source = .taskHub(backend)
        generation.store(backend.changeGeneration(.instanceState), ordering: .relaxed)
    }

    deinit {
        if case let .instance(waiters, token) = source { waiters.cancel(instanceID, token: token) }
    }

    /// Narrows the watch to changes that may end the instance, for a caller that waits for its end:
    /// the episodes in between no longer wake it (each wake is a read of the instance). A backend
    /// without per-instance wake-ups still wakes it on every change.
    public func waitForTheEndOnly() {
        if case let .instance(waiters, token) = source { waiters.wakeOnEndingOnly(instanceID, token: token) }
    }

    /// Returns once the instance may have changed in this process since the watch began (or since the
    /// previous wait), or after `timeout` — to notice other processes.
    public func wait(timeout: Duration) async {
        switch source {
        case let .instance(waiters, token):
            await waiters.wait(instanceID, token: token, timeout: timeout)
        case let .taskHub(backend):
            await backend.waitForChange(.instanceState, since: generation.load(ordering: .relaxed), timeout: timeout)
            generation.store(backend.changeGeneration(.instanceState), ordering: .relaxed)
        }
    }
}
