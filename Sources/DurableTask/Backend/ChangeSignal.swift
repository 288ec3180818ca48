import Synchronization

/// An in-process wake-up: waiters suspend until `notify()` or a timeout, and a generation counter
/// makes "look for work, then wait" free of lost wake-ups.
package final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextWaiterID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    package init() {}

    /// The current generation; it increases on every `notify()`.
    package var generation: UInt64 { state.withLock { $0.generation } }

    /// Wakes every waiter.
    package func notify() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.waiters.removeAll(keepingCapacity: true) }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when `notify()` is called after `generation` was read, or after `timeout`.
    package func wait(since generation: UInt64, timeout: Duration) async {
        let id: UInt64? = state.withLock { state in
            if state.generation != generation { return nil }
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        guard let id else { return }
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
            let registered = state.withLock { state -> Bool in
                if state.generation != generation { return false }
                state.waiters[id] = continuation
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
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume()
    }
}
