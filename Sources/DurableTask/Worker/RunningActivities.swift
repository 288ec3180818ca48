import Synchronization

/// The activities leased by this worker and not yet finished (queued or running): for capacity and
/// lease renewal.
final class RunningActivities: Sendable {
    private struct Key: Hashable {
        let receipt: Int64
        let taskID: Int
    }
    private struct State {
        var count = 0
        var items: [Key: ActivityWorkItem] = [:]
    }
    private let state = Mutex(State())
    private let freed = ChangeSignal()

    var count: Int { state.withLock { $0.count } }

    /// Held while a redelivered activity is leased (see ``Backend/getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``).
    let redelivery: Flag

    init(redelivery: Flag) { self.redelivery = redelivery }

    /// Records freshly leased items (queued or running) for capacity and lease renewal.
    func leased(_ items: [ActivityWorkItem]) {
        state.withLock { state in
            state.count += items.count
            for item in items {
                state.items[Key(receipt: item.receipt, taskID: item.taskID)] = item
            }
        }
    }

    func finished(_ items: some Sequence<ActivityWorkItem>) {
        state.withLock { state in
            for item in items {
                state.items[Key(receipt: item.receipt, taskID: item.taskID)] = nil
                state.count -= 1
                if Redelivery.isRedelivery(leasedCount: item.deliveryCount) { redelivery.clear() }
            }
        }
        freed.notify()
    }

    func snapshot() -> [ActivityWorkItem] { state.withLock { Array($0.items.values) } }

    var generation: UInt64 { freed.generation }

    func waitForCapacity(since generation: UInt64, timeout: Duration) async {
        await freed.wait(since: generation, timeout: timeout)
    }
}
