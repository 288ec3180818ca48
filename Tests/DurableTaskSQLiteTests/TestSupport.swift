import DurableTask
import DurableTaskSQLite
import Foundation
import Synchronization
import Testing

/// The backends every conformance test runs against.
enum BackendKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case inMemory
    case sqliteFile
    case sqliteMemory

    var testDescription: String { rawValue }

    /// A fresh backend on `clock`; files go in `directory`.
    func make(clock: ManualClock, in directory: TemporaryDirectory) throws -> any Backend {
        switch self {
        case .inMemory: InMemoryBackend(clock: clock)
        case .sqliteFile: try SQLiteBackend(path: directory.path("hub.sqlite"), clock: clock)
        case .sqliteMemory: try SQLiteBackend.inMemory(clock: clock)
        }
    }
}

/// A temporary directory removed when the value is released.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("DurableTaskSQLiteTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

func expectError(
    _ code: DurableTaskError.Code, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected DurableTaskError(\(code)), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as DurableTaskError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected DurableTaskError(\(code)), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Collects log lines (from a worker's or a backend's `logHandler`) for assertions.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    /// A handler to pass as `logHandler`.
    var handler: @Sendable (LogLevel, String) -> Void {
        { [self] level, message in lines.withLock { $0.append("\(level): \(message)") } }
    }

    /// The lines logged so far that contain every one of `parts`.
    func lines(containing parts: String...) -> [String] {
        lines.withLock { $0.filter { line in parts.allSatisfy { $0.isEmpty || line.contains($0) } } }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held. The
/// bound only decides how long a failing test takes, and a loaded two-core machine is slow to start.
func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
