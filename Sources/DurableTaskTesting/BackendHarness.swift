@_spi(Backend) import DurableTask
import Foundation
import Testing

/// A backend under test with its manual clock, and the steps the conformance checks are written in:
/// create an instance, lease it, run an episode, schedule a timer or an activity. Backend-author API,
/// like the ``DurableTask/Backend`` requirements it calls: `@_spi(Backend) import DurableTaskTesting`.
@_spi(Backend) public struct BackendHarness: Sendable {
    /// The backend under test.
    public let backend: any Backend
    /// The clock the backend was made with.
    public let clock: ManualClock

    /// A harness for a backend made with `clock`.
    public init(backend: any Backend, clock: ManualClock) {
        self.backend = backend
        self.clock = clock
    }

    /// The clock's time.
    public var now: Date { clock.now() }

    /// An `executionStarted` event at the clock's time.
    public func startEvent(
        _ name: String = "Orch", executionID: String = "exec-1", input: String? = nil,
        parent: HistoryEvent.ParentInstance? = nil, scheduledStart: Date? = nil
    ) -> HistoryEvent {
        HistoryEvent(
            timestamp: now,
            kind: .executionStarted(
                name: name, executionID: executionID, input: input.map(Payload.init(json:)), parent: parent,
                scheduledStart: scheduledStart))
    }

    /// Creates an instance.
    public func create(
        _ id: String, name: String = "Orch", executionID: String = "exec-1", input: String? = nil,
        replace: Bool = false, scheduledStart: Date? = nil
    ) async throws {
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: id, startEvent: startEvent(name, executionID: executionID, input: input, scheduledStart: scheduledStart),
                replaceIfFinished: replace))
    }

    /// Leases the next orchestration work item.
    public func lease(_ owner: String = "w1", seconds: Int64 = 30) async throws -> OrchestrationWorkItem? {
        try await backend.getOrchestrationWorkItem(owner: owner, leaseDuration: .seconds(seconds))
    }

    /// An `eventRaised` event at the clock's time.
    public func event(_ name: String, _ json: String? = nil) -> HistoryEvent {
        HistoryEvent(timestamp: now, kind: .eventRaised(name: name, input: json.map(Payload.init(json:))))
    }

    /// Leases the instance's work item and completes it with the given result.
    @discardableResult
    public func runEpisode(_ id: String, _ result: (OrchestrationWorkItem) -> OrchestrationWorkItemResult) async throws -> OrchestrationWorkItem {
        let item = try #require(try await lease())
        #expect(item.instanceID == id)
        try await backend.completeOrchestrationWorkItem(item, result: result(item))
        return item
    }

    /// Completes an instance with an output, recording the consumed events in history.
    public func finish(_ id: String, status: OrchestrationStatus = .completed, output: String? = "42") async throws {
        try await runEpisode(id) { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents, status: status,
                output: output.map(Payload.init(json:)))
        }
    }

    /// Runs one episode of `instanceID` that records its new events and creates timer 0, due `seconds`
    /// from now; returns the `timerFired` event the backend will deliver.
    public func scheduleTimer(_ instanceID: String, after seconds: TimeInterval) async throws -> HistoryEvent {
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
    public func scheduleOneActivity(_ instanceID: String) async throws {
        try await runEpisode(instanceID) { item in
            OrchestrationWorkItemResult(
                newHistory: item.newEvents,
                activities: [ActivityRequest(taskID: 0, name: "Act", input: nil)], status: .running)
        }
    }
}

/// Expects `body` to throw a `DurableTaskError` with `code`.
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
