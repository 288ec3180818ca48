import Synchronization

/// Activity results waiting to be written, and a wake-up for the writer.
final class CompletionBuffer: Sendable {
    private let items = Mutex<[ActivityCompletion]>([])
    private let signal = ChangeSignal()

    func append(contentsOf completions: [ActivityCompletion]) {
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

    func waitForItems() async {
        let generation = signal.generation
        if items.withLock({ !$0.isEmpty }) { return }
        await signal.wait(since: generation, timeout: .seconds(1))
    }
}
