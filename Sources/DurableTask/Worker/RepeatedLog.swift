import Synchronization

/// One loop's log of an error that may repeat on every poll — a database that is gone or replaced, a
/// server that is down: the first time it is logged, then at most once per ``window`` with how many
/// times it happened since, and once more when the loop recovers. A worker polling every 0.5 s wrote
/// the same line twice a second per loop, for as long as the storage stayed away.
final class RepeatedLog: Sendable {
    private struct State {
        var message: String?
        var lastLogged = ContinuousClock.Instant.now
        var suppressed = 0
    }
    private let state = Mutex(State())
    /// Whether an error is on record: `recovered()`, called after every successful poll, is then
    /// one atomic load.
    private let failing = Atomic<Bool>(false)
    private let what: String
    private let window: Duration
    private let handler: @Sendable (LogLevel, String) -> Void

    /// - Parameter what: what the loop does, for the line that says it works again.
    init(_ what: String, window: Duration = .seconds(30), handler: @escaping @Sendable (LogLevel, String) -> Void) {
        self.what = what
        self.window = window
        self.handler = handler
    }

    /// Logs `message` at `level` unless it is the one logged last, less than a window ago.
    func error(_ message: String, level: LogLevel = .error) {
        let now = ContinuousClock.now
        let line = state.withLock { state -> String? in
            if state.message == message && now - state.lastLogged < window {
                state.suppressed += 1
                return nil
            }
            defer {
                state.message = message
                state.lastLogged = now
                state.suppressed = 0
                failing.store(true, ordering: .relaxed)
            }
            guard state.message == message, state.suppressed > 0 else { return message }
            return message + " (\(state.suppressed) more time\(state.suppressed == 1 ? "" : "s") since it was last logged)"
        }
        if let line { handler(level, line) }
    }

    /// The loop works again: after an error, says so once (with how often the error was held back),
    /// and the next error is logged at once.
    func recovered() {
        guard failing.load(ordering: .relaxed) else { return }
        let suppressed = state.withLock { state -> Int? in
            failing.store(false, ordering: .relaxed)
            guard state.message != nil else { return nil }
            defer {
                state.message = nil
                state.suppressed = 0
            }
            return state.suppressed
        }
        if let suppressed {
            handler(.info, "\(what) works again" + (suppressed > 0 ? " (its last error happened \(suppressed) more times)" : ""))
        }
    }
}
