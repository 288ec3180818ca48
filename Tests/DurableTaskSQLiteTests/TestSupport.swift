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

/// A backend under test with its manual clock (and temp directory, for files).
struct Harness {
    let backend: any Backend
    let clock: ManualClock
    let directory: TemporaryDirectory?

    init(_ kind: BackendKind) throws {
        clock = ManualClock()
        switch kind {
        case .inMemory:
            backend = InMemoryBackend(clock: clock)
            directory = nil
        case .sqliteFile:
            let directory = try TemporaryDirectory()
            backend = try SQLiteBackend(path: directory.path("hub.sqlite"), clock: clock)
            self.directory = directory
        case .sqliteMemory:
            backend = try SQLiteBackend.inMemory(clock: clock)
            directory = nil
        }
    }

    var now: Date { clock.now() }

    func startEvent(
        _ name: String = "Orch", executionID: String = "exec-1", input: String? = nil,
        parent: HistoryEvent.ParentInstance? = nil, scheduledStart: Date? = nil
    ) -> HistoryEvent {
        HistoryEvent(
            timestamp: now,
            kind: .executionStarted(
                name: name, executionID: executionID, input: input.map(Payload.init(json:)), parent: parent,
                scheduledStart: scheduledStart))
    }

    func create(
        _ id: String, name: String = "Orch", executionID: String = "exec-1", input: String? = nil,
        replace: Bool = false, scheduledStart: Date? = nil
    ) async throws {
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: id, startEvent: startEvent(name, executionID: executionID, input: input, scheduledStart: scheduledStart),
                replaceIfFinished: replace))
    }

    func lease(_ owner: String = "w1", seconds: Int64 = 30) async throws -> OrchestrationWorkItem? {
        try await backend.getOrchestrationWorkItem(owner: owner, lockDuration: .seconds(seconds))
    }

    func event(_ name: String, _ json: String? = nil) -> HistoryEvent {
        HistoryEvent(timestamp: now, kind: .eventRaised(name: name, input: json.map(Payload.init(json:))))
    }

    /// Leases the instance's work item and completes it with the given result.
    @discardableResult
    func runEpisode(_ id: String, _ result: (OrchestrationWorkItem) -> OrchestrationWorkItemResult) async throws -> OrchestrationWorkItem {
        let item = try #require(try await lease())
        #expect(item.instanceID == id)
        try await backend.completeOrchestrationWorkItem(item, result: result(item))
        return item
    }

    /// Completes an instance with an output, recording the consumed events in history.
    func finish(_ id: String, status: OrchestrationStatus = .completed, output: String? = "42") async throws {
        try await runEpisode(id) { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents, status: status,
                output: output.map(Payload.init(json:)))
        }
    }

    /// Runs one episode of `instanceID` that records its new events and creates timer 0, due `seconds`
    /// from now; returns the `timerFired` event the backend will deliver.
    func scheduleTimer(_ instanceID: String, after seconds: TimeInterval) async throws -> HistoryEvent {
        let fireAt = now.addingTimeInterval(seconds)
        let fired = HistoryEvent(timestamp: fireAt, kind: .timerFired(scheduledID: 0, fireAt: fireAt))
        try await runEpisode(instanceID) { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents, timers: [TimerRequest(event: fired, fireAt: fireAt)],
                status: .running)
        }
        return fired
    }

    /// Runs one episode of `instanceID` that records its new events and schedules activity "Act" as task 0.
    func scheduleOneActivity(_ instanceID: String) async throws {
        try await runEpisode(instanceID) { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents,
                activities: [ActivityRequest(taskID: 0, name: "Act", input: nil)], status: .running)
        }
    }
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

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
