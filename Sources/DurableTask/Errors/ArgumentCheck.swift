import Foundation

/// Checks of the arguments that are stored as they are: instance IDs, orchestrator and event names,
/// dates. Refused at the call, with a message that shows the value, rather than stored damaged.
enum ArgumentCheck {
    /// An ID or a name must be non-empty and free of control characters: C interfaces (libsqlite3's
    /// text functions, a terminal, a log line) cut a string at NUL or show it wrongly, so `"a\0b"`
    /// would be stored as `"a"` and `"a\0c"` would then collide with it.
    static func identifier(_ value: String, _ what: @autoclosure () -> String) throws {
        guard !value.isEmpty else {
            throw DurableTaskError(.invalidArgument, "\(what()) is empty")
        }
        // Fast path: plain ASCII without control characters, the common case.
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return }
        if let bad = value.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            let code = String(bad.value, radix: 16, uppercase: true)
            throw DurableTaskError(
                .invalidArgument,
                "\(what()) \(value.debugDescription) contains the control character U+\(String(repeating: "0", count: max(0, 4 - code.count)))\(code); "
                    + "IDs and names may not contain control characters")
        }
    }

    /// A date that is stored and compared must be a real point in time (not infinite or NaN).
    static func date(_ date: Date, _ what: @autoclosure () -> String) throws {
        guard date.timeIntervalSinceReferenceDate.isFinite else {
            throw DurableTaskError(.invalidArgument, "\(what()) is not a finite date (\(date.timeIntervalSinceReferenceDate))")
        }
    }
}
