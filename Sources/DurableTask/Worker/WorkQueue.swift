import Synchronization

/// A FIFO handing work items from the fetcher to long-lived runners: runners suspend when it is empty,
/// and `close()` releases them all. Cheaper than a child task per item.
final class WorkQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var waiters: [CheckedContinuation<Element?, Never>] = []
        var closed = false
    }
    private let state = Mutex(State())

    /// Queued, not yet taken.
    var count: Int { state.withLock { $0.items.count - $0.head } }

    func push(_ elements: [Element]) {
        var handOffs: [(CheckedContinuation<Element?, Never>, Element)] = []
        state.withLock { state in
            var index = 0
            while index < elements.count, !state.waiters.isEmpty {
                handOffs.append((state.waiters.removeLast(), elements[index]))
                index += 1
            }
            if index < elements.count { state.items.append(contentsOf: elements[index...]) }
        }
        for (waiter, element) in handOffs { waiter.resume(returning: element) }
    }

    /// The next element, or `nil` once the queue is closed and drained.
    func pop() async -> Element? {
        if let element = tryPop() { return element }
        return await withCheckedContinuation { continuation in
            let immediate: Element?? = state.withLock { state in
                if state.head < state.items.count {
                    let element = state.items[state.head]
                    state.head += 1
                    return .some(element)
                }
                if state.closed { return .some(nil) }
                state.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// The next element if one is queued, without waiting.
    func tryPop() -> Element? {
        state.withLock { state in
            guard state.head < state.items.count else { return nil }
            let element = state.items[state.head]
            state.head += 1
            if state.head == state.items.count {
                state.items.removeAll(keepingCapacity: true)
                state.head = 0
            }
            return element
        }
    }

    /// Wakes every waiting runner with `nil`; queued elements are still handed out.
    func close() {
        let waiters = state.withLock { state -> [CheckedContinuation<Element?, Never>] in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}
