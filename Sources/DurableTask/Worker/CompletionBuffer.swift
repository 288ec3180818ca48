import Synchronization

/// Activity results waiting to be written, and a wake-up for the writer.
///
/// Runners first collect results in an outbox of their own (one uncontended lock per result) and hand
/// them over in batches — one lock on the shared buffer per batch. A batch goes out when it is full or
/// the runner runs out of work; results that wait in an outbox longer than ``maxHold`` (the runner is
/// busy with a slow activity) are swept to the writer, so a slow activity never holds finished ones back.
final class CompletionBuffer: Sendable {
    /// How long a result may wait in a runner's outbox.
    static let maxHold = Duration.milliseconds(2)

    private let items = Mutex<[ActivityCompletion]>([])
    private let signal = ChangeSignal()
    /// One per runner.
    let outboxes: [RunnerOutbox]
    /// Outboxes that hold results: the writer sweeps every ``maxHold`` while any does.
    private let holding = Atomic<Int>(0)

    init(runners: Int) {
        outboxes = (0..<max(1, runners)).map { _ in RunnerOutbox() }
    }

    func append(contentsOf completions: [ActivityCompletion]) {
        guard !completions.isEmpty else { return }
        let wasEmpty = items.withLock { items in
            let wasEmpty = items.isEmpty
            items.append(contentsOf: completions)
            return wasEmpty
        }
        if wasEmpty { signal.notify() }
    }

    func takeAll() -> [ActivityCompletion] {
        items.withLock { items in
            defer { items = [] }
            return items
        }
    }

    /// Keeps a result in a runner's outbox.
    /// - Returns: how many results the outbox holds now.
    func keep(_ completion: ActivityCompletion, in outbox: RunnerOutbox) -> Int {
        let (count, wasEmpty) = outbox.append(completion)
        if wasEmpty, holding.add(1, ordering: .relaxed).newValue == 1 {
            // The writer may be in its long wait: it must start sweeping.
            signal.notify()
        }
        return count
    }

    /// Takes an outbox's results (all, or only when the oldest has waited `olderThan`).
    func take(from outbox: RunnerOutbox, olderThan age: Duration? = nil) -> [ActivityCompletion] {
        let taken = outbox.take(olderThan: age)
        if !taken.isEmpty { holding.subtract(1, ordering: .relaxed) }
        return taken
    }

    /// Returns when results are ready to write, or after `maxHold` while outboxes hold some (to sweep
    /// them), or after a second.
    func waitForItems() async {
        let generation = signal.generation
        if items.withLock({ !$0.isEmpty }) { return }
        let timeout = holding.load(ordering: .relaxed) > 0 ? Self.maxHold : .seconds(1)
        await signal.wait(since: generation, timeout: timeout)
    }
}

/// One activity runner's finished results, not yet handed to the writer.
final class RunnerOutbox: Sendable {
    private struct State {
        var items: [ActivityCompletion] = []
        var oldest = ContinuousClock.now
    }
    private let state = Mutex(State())

    func append(_ completion: ActivityCompletion) -> (count: Int, wasEmpty: Bool) {
        state.withLock { state in
            let wasEmpty = state.items.isEmpty
            if wasEmpty { state.oldest = .now }
            state.items.append(completion)
            return (state.items.count, wasEmpty)
        }
    }

    func take(olderThan age: Duration?) -> [ActivityCompletion] {
        state.withLock { state in
            guard !state.items.isEmpty else { return [] }
            if let age, ContinuousClock.now - state.oldest < age { return [] }
            defer { state.items = [] }
            return state.items
        }
    }
}
