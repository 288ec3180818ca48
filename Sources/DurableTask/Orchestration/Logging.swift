import Foundation

/// Log levels for ``OrchestrationLogger`` and the worker's log handler.
public enum LogLevel: Int, Sendable, Comparable, CustomStringConvertible {
    /// Fine-grained diagnostics.
    case debug
    /// Normal progress.
    case info
    /// Something unexpected that the runtime handled.
    case warning
    /// A failure.
    case error

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The default log handler of the worker and the backends: warnings and errors to standard error.
    public static let standardErrorHandler: @Sendable (LogLevel, String) -> Void = { level, message in
        guard level >= .warning else { return }
        FileHandle.standardError.write(Data("[DurableTask] \(level): \(message)\n".utf8))
    }

    public var description: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }
}

/// A logger for orchestrators that drops messages while the orchestrator is replaying, so a message
/// is written once per real execution, not once per replay.
public struct OrchestrationLogger: @unchecked Sendable {  // Safe: used only on the engine thread, like the context.
    let engine: ReplayEngine

    /// Writes a message at `level`, unless replaying.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        // Also silent after teardown: code still unwinding with CancellationError is not real progress.
        guard !engine.isReplaying, !engine.isTornDown else { return }
        engine.options.log(level, "[\(engine.instanceID)] \(message())")
    }

    /// Writes an info message, unless replaying.
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    /// Writes a warning, unless replaying.
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    /// Writes an error, unless replaying.
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }
}
