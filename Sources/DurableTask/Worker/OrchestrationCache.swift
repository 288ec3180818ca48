import Synchronization

/// Live orchestrations kept between episodes, so an episode applies only its new events instead of
/// replaying the whole history. Bounded: the least recently used instance is torn down when full.
///
/// An instance is checked out for the length of an episode. The backend releases its lease when the
/// episode commits, a moment before the instance is checked back in, so another dispatcher may lease
/// the next work item in between: it waits for the check-in rather than replaying from history.
final class OrchestrationCache: Sendable {
    private struct State {
        var entries: [String: (engine: ReplayEngine, tick: UInt64)] = [:]
        /// Check-ins oldest first, for eviction in O(1): an entry whose tick no longer matches the
        /// instance's (checked out since, or checked in again) is stale and skipped. A scan of
        /// `entries` for the oldest cost O(capacity) per check-in once the cache was full.
        var order: [(tick: UInt64, instanceID: String)] = []
        var orderHead = 0
        var checkedOut: Set<String> = []
        var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
        var tick: UInt64 = 0
    }
    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Checks out the cached instance (or nothing, when it is not cached), waiting while another episode
    /// has it checked out. Every checkout must be followed by `checkIn` or `release`.
    func checkOut(_ instanceID: String) async -> ReplayEngine? {
        while true {
            let (busy, engine) = state.withLock { state -> (Bool, ReplayEngine?) in
                if state.checkedOut.contains(instanceID) { return (true, nil) }
                state.checkedOut.insert(instanceID)
                return (false, state.entries.removeValue(forKey: instanceID)?.engine)
            }
            if !busy { return engine }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let stillBusy = state.withLock { state -> Bool in
                    guard state.checkedOut.contains(instanceID) else { return false }
                    state.waiters[instanceID, default: []].append(continuation)
                    return true
                }
                if !stillBusy { continuation.resume() }
            }
        }
    }

    /// Returns an instance after a committed episode, keeping it for the next one.
    func checkIn(_ engine: ReplayEngine) {
        var torn: [ReplayEngine] = []
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.tick += 1
            if capacity > 0 {
                if let previous = state.entries.updateValue((engine, state.tick), forKey: engine.instanceID), previous.engine !== engine {
                    torn.append(previous.engine)
                }
                state.order.append((state.tick, engine.instanceID))
                while state.entries.count > capacity, state.orderHead < state.order.count {
                    let (tick, oldest) = state.order[state.orderHead]
                    state.orderHead += 1
                    if let entry = state.entries[oldest], entry.tick == tick {
                        state.entries[oldest] = nil
                        torn.append(entry.engine)
                    }
                }
                Self.compact(&state)
            } else {
                torn.append(engine)
            }
            return finish(engine.instanceID, in: &state)
        }
        for engine in torn { engine.tearDown() }
        for waiter in waiters { waiter.resume() }
    }

    /// Drops the stale head of the check-in order once it is most of the array; and the stale entries
    /// of an order that has grown far past the cache (instances checked out and in many times).
    private static func compact(_ state: inout State) {
        if state.orderHead > 1024, state.orderHead * 2 > state.order.count {
            state.order.removeFirst(state.orderHead)
            state.orderHead = 0
        }
        if state.order.count > 1024, state.order.count > 4 * state.entries.count {
            let entries = state.entries
            state.order = state.order[state.orderHead...].filter { entries[$0.instanceID]?.tick == $0.tick }
            state.orderHead = 0
        }
    }

    /// Ends a checkout without caching anything (the episode failed or the instance finished).
    func release(_ instanceID: String) {
        let waiters = state.withLock { finish(instanceID, in: &$0) }
        for waiter in waiters { waiter.resume() }
    }

    private func finish(_ instanceID: String, in state: inout State) -> [CheckedContinuation<Void, Never>] {
        state.checkedOut.remove(instanceID)
        return state.waiters.removeValue(forKey: instanceID) ?? []
    }

    /// Tears down every cached instance (worker shutdown).
    func removeAll() {
        let all = state.withLock { state -> [ReplayEngine] in
            defer {
                state.entries = [:]
                state.order = []
                state.orderHead = 0
            }
            return state.entries.values.map(\.engine)
        }
        for engine in all { engine.tearDown() }
    }
}
