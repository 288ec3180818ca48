import Synchronization

/// A FIFO handing work items from the fetcher to long-lived runners: runners suspend when it is empty,
/// and `close()` releases them all. Cheaper than a child task per item.
final class WorkQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var waiters: [CheckedContinuation<Element?, Never>] = []
        var closed = false

        /// Takes the next element and drops the taken prefix now and then: while the fetcher keeps the
        /// queue topped up it never runs empty, and taken items must not stay referenced (their inputs
        /// would pile up for the whole fan-out).
        mutating func take() -> Element? {
            guard head < items.count else { return nil }
            let element = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 256, head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return element
        }
    }
    private let state = Mutex(State())

    /// Queues elements for the runners.
    /// - Returns: `false`, queueing nothing, once the queue is closed.
    @discardableResult
    func push(_ elements: [Element]) -> Bool {
        var handOffs: [(CheckedContinuation<Element?, Never>, Element)] = []
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            var index = 0
            while index < elements.count, !state.waiters.isEmpty {
                handOffs.append((state.waiters.removeLast(), elements[index]))
                index += 1
            }
            if index < elements.count { state.items.append(contentsOf: elements[index...]) }
            return true
        }
        for (waiter, element) in handOffs { waiter.resume(returning: element) }
        return accepted
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// The next element, or `nil` once the queue is closed and drained.
    func pop() async -> Element? {
        if let element = tryPop() { return element }
        return await withCheckedContinuation { continuation in
            let immediate: Element?? = state.withLock { state in
                if let element = state.take() { return .some(element) }
                if state.closed { return .some(nil) }
                state.waiters.append(continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// The next element if one is queued, without waiting.
    func tryPop() -> Element? {
        state.withLock { $0.take() }
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
