import Foundation
import Synchronization

/// The time source of a backend: timestamps in history, timer due times, lease expiry.
///
/// Production code uses ``SystemClock``; tests use ``ManualClock`` so a timer test never sleeps.
public protocol DurableClock: Sendable {
    /// The current time.
    func now() -> Date
    /// Calls `observer` whenever the clock jumps forward (a ``ManualClock`` being advanced), so waiters
    /// for due timers wake at once. The system clock never jumps and ignores it.
    func onAdvance(_ observer: @escaping @Sendable () -> Void)
}

/// The wall clock.
public struct SystemClock: DurableClock {
    /// Creates the wall clock.
    public init() {}
    /// The current wall-clock time.
    public func now() -> Date { Date() }
    /// The wall clock never jumps, so observers are never called.
    public func onAdvance(_ observer: @escaping @Sendable () -> Void) {}
}

/// A clock that moves only when a test advances it.
public final class ManualClock: DurableClock {
    private struct State {
        var now: Date
        var observers: [@Sendable () -> Void] = []
    }
    private let state: Mutex<State>

    /// Creates a clock that reads `start` until advanced.
    public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        state = Mutex(State(now: start))
    }

    /// The clock's current time.
    public func now() -> Date { state.withLock { $0.now } }

    /// Registers an observer called after every advance.
    public func onAdvance(_ observer: @escaping @Sendable () -> Void) {
        state.withLock { $0.observers.append(observer) }
    }

    /// Moves the clock forward and wakes everything waiting for due timers.
    public func advance(by seconds: TimeInterval) {
        let observers = state.withLock { state -> [@Sendable () -> Void] in
            state.now = state.now.addingTimeInterval(seconds)
            return state.observers
        }
        for observer in observers { observer() }
    }
}
