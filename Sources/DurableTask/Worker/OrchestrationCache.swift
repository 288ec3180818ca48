import Synchronization

/// Live orchestrations kept between episodes, so an episode applies only its new events instead of
/// replaying the whole history. Bounded: the least recently used instance is torn down when full.
final class OrchestrationCache: Sendable {
    private struct State {
        var entries: [String: (context: OrchestrationContext, tick: UInt64)] = [:]
        var tick: UInt64 = 0
    }
    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Removes and returns the cached instance, so only one episode at a time can use it.
    func take(_ instanceID: String) -> OrchestrationContext? {
        state.withLock { $0.entries.removeValue(forKey: instanceID)?.context }
    }

    /// Caches an instance after a committed episode.
    func put(_ context: OrchestrationContext) {
        guard capacity > 0 else {
            context.tearDown()
            return
        }
        let evicted = state.withLock { state -> OrchestrationContext? in
            state.tick += 1
            state.entries[context.instanceID] = (context, state.tick)
            guard state.entries.count > capacity,
                  let oldest = state.entries.min(by: { $0.value.tick < $1.value.tick }) else { return nil }
            state.entries[oldest.key] = nil
            return oldest.value.context
        }
        evicted?.tearDown()
    }

    /// Tears down every cached instance (worker shutdown).
    func removeAll() {
        let all = state.withLock { state -> [OrchestrationContext] in
            defer { state.entries = [:] }
            return state.entries.values.map(\.context)
        }
        for context in all { context.tearDown() }
    }
}
