import Synchronization

/// A flag that one of several loops holds at a time.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    /// Sets the flag; `false` when it was already set.
    func trySet() -> Bool {
        value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    func clear() { value.store(false, ordering: .releasing) }
}
