import DurableTask
import DurableTaskTesting
import Foundation
import Synchronization
import Testing

/// `isPatched` gives one answer per change ID per execution, and a worker whose code predates a change
/// that a history records hands the instance to a newer worker instead of failing it.
@Suite struct PatchSemanticsTests {
    let quiet = DurableTaskWorker.Options(logHandler: { _, _ in })

    /// The code before the change: two rounds, each waits for "go" and then runs "Old".
    static func loopVersion1(_ context: OrchestrationContext, _ input: Int) async throws -> [String] {
        var paths: [String] = []
        for round in 0..<2 {
            _ = try await context.waitForExternalEvent("go", as: Int.self).value
            paths.append(try await context.callActivity("Old", input: round, returning: String.self).value)
        }
        return paths
    }

    /// The change: each round asks `isPatched` again (the same call site, twice).
    static func loopVersion2(_ context: OrchestrationContext, _ input: Int) async throws -> [String] {
        var paths: [String] = []
        for round in 0..<2 {
            _ = try await context.waitForExternalEvent("go", as: Int.self).value
            let step = context.isPatched("new-step") ? "New" : "Old"
            paths.append(try await context.callActivity(step, input: round, returning: String.self).value)
        }
        return paths
    }

    /// What a worker of one version registers: `orchestrator` under `name`, and the activities.
    static func version<Output: Codable & Sendable>(
        _ name: String, _ orchestrator: @escaping @Sendable (OrchestrationContext, Int) async throws -> Output
    ) -> (DurableTaskWorker) -> Void {
        { worker in
            worker.addOrchestrator(name: name, orchestrator)
            activities(worker)
        }
    }

    static func activities(_ worker: DurableTaskWorker) {
        worker.addActivity(name: "Old") { (_: ActivityContext, _: Int) in "old" }
        worker.addActivity(name: "New") { (_: ActivityContext, _: Int) in "new" }
    }

    static func count(_ kind: String, in history: [HistoryEvent]) -> Int {
        history.filter { $0.kindName == kind }.count
    }

    static func scheduledNames(_ history: [HistoryEvent]) -> [String] {
        history.compactMap { if case let .taskScheduled(name, _) = $0.kind { name } else { nil } }
    }

    @Test(arguments: TestBackend.allCases)
    func anInstanceFromBeforeTheChangeTakesTheOldBranchAtEveryLaterCall(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let id = "from-v1"

        // Version 1 runs the first round; the instance then waits for the second "go".
        try await withWorker(backend: backend, options: quiet, register: Self.version("Loop", Self.loopVersion1)) { _, _ in
            try await client.scheduleNewOrchestration(name: "Loop", input: 0, instanceID: id)
            try await client.raiseEvent(id, name: "go", data: 1)
            try await eventually("the first round ran") { try await historyContains(client, id, "taskCompleted") }
        }

        // Version 2: the first `isPatched` sits where history has the old round (false); the second is
        // past the end of history, where it used to answer true and switch paths midway.
        try await withWorker(backend: backend, options: quiet, register: Self.version("Loop", Self.loopVersion2)) { _, _ in
            try await client.raiseEvent(id, name: "go", data: 2)
            let output = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(output.status == .completed, "\(String(describing: output.failure))")
            #expect(try output.output(as: [String].self) == ["old", "old"])
        }
        let history = try await client.getHistory(id)
        #expect(Self.count("versionMarker", in: history) == 0)
        #expect(Self.scheduledNames(history) == ["Old", "Old"])
        var replayer = OrchestrationReplayer()
        replayer.addOrchestrator(name: "Loop", Self.loopVersion2)
        #expect(replayer.replay(history, instanceID: id).succeeded)
    }

    @Test(arguments: TestBackend.allCases)
    func aNewInstanceRecordsOneMarkerAndTakesTheNewBranchAtEveryCall(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let register = Self.version("Loop", Self.loopVersion2)

        // "cached" runs both rounds on one worker (its engine stays in the cache between episodes);
        // "restarted" runs its first round, and its second on a fresh worker that replays the history.
        try await withWorker(backend: backend, options: quiet, register: register) { _, _ in
            for id in ["cached", "restarted"] {
                try await client.scheduleNewOrchestration(name: "Loop", input: 0, instanceID: id)
                try await client.raiseEvent(id, name: "go", data: 1)
            }
            try await client.raiseEvent("cached", name: "go", data: 2)
            let output = try await client.waitForCompletion("cached", timeout: .seconds(20))
            #expect(try output.output(as: [String].self) == ["new", "new"], "\(String(describing: output.failure))")
            try await eventually("the first round of 'restarted' ran") { try await historyContains(client, "restarted", "taskCompleted") }
        }
        try await withWorker(backend: backend, options: quiet, register: register) { _, _ in
            try await client.raiseEvent("restarted", name: "go", data: 2)
            let output = try await client.waitForCompletion("restarted", timeout: .seconds(20))
            #expect(try output.output(as: [String].self) == ["new", "new"], "\(String(describing: output.failure))")
        }

        var replayer = OrchestrationReplayer()
        replayer.addOrchestrator(name: "Loop", Self.loopVersion2)
        for id in ["cached", "restarted"] {
            let history = try await client.getHistory(id)
            #expect(Self.count("versionMarker", in: history) == 1, "\(id)")
            #expect(history.contains { $0.eventID == 0 && $0.kindName == "versionMarker" }, "\(id)")
            #expect(Self.scheduledNames(history) == ["New", "New"], "\(id)")
            #expect(replayer.replay(history, instanceID: id).succeeded, "\(id)")
        }
    }

    @Test func aHistoryWithAMarkerAtEveryCallStillReplays() {
        // Written before answers were remembered: each call that answered true recorded a marker.
        let entry: @Sendable (OrchestrationContext, Int) async throws -> [String] = { context, _ in
            var paths: [String] = []
            for round in 0..<2 where context.isPatched("new-step") {
                paths.append(try await context.callActivity("New", input: round, returning: String.self).value)
            }
            return paths
        }
        var replayer = OrchestrationReplayer()
        replayer.addOrchestrator(name: "Loop", entry)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        let history: [HistoryEvent] = [
            HistoryEvent(timestamp: t, kind: .orchestratorStarted),
            HistoryEvent(timestamp: t, kind: .executionStarted(name: "Loop", executionID: "e", input: Payload(json: "0"), parent: nil, scheduledStart: nil)),
            HistoryEvent(eventID: 0, timestamp: t, kind: .versionMarker(changeID: "new-step")),
            HistoryEvent(eventID: 1, timestamp: t, kind: .taskScheduled(name: "New", input: Payload(json: "0"))),
            HistoryEvent(timestamp: t, kind: .orchestratorCompleted),
            HistoryEvent(timestamp: t, kind: .orchestratorStarted),
            HistoryEvent(timestamp: t, kind: .taskCompleted(scheduledID: 1, result: Payload(json: "\"new\""))),
            HistoryEvent(eventID: 2, timestamp: t, kind: .versionMarker(changeID: "new-step")),
            HistoryEvent(eventID: 3, timestamp: t, kind: .taskScheduled(name: "New", input: Payload(json: "1"))),
            HistoryEvent(timestamp: t, kind: .orchestratorCompleted)
        ]
        let report = replayer.replay(history, instanceID: "two-markers")
        #expect(report.succeeded, "\(report)")
    }

    /// The code before the change "new-step": run "Old", wait for "go".
    static func rollingVersion1(_ context: OrchestrationContext, _ input: Int) async throws -> String {
        let step = try await context.callActivity("Old", input: 0, returning: String.self).value
        _ = try await context.waitForExternalEvent("go", as: Int.self).value
        return "v1: \(step)"
    }

    /// The change: "New" instead of "Old".
    static func rollingVersion2(_ context: OrchestrationContext, _ input: Int) async throws -> String {
        let step = try await context.callActivity(context.isPatched("new-step") ? "New" : "Old", input: 0, returning: String.self).value
        _ = try await context.waitForExternalEvent("go", as: Int.self).value
        return "v2: \(step)"
    }

    @Test(arguments: TestBackend.allCases)
    func aWorkerWithOlderCodeLeavesAnInstanceWithANewerMarkerToANewerWorker(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let id = "rolling"

        // A version 2 worker takes the instance past the marker; it then waits for "go".
        try await withWorker(backend: backend, options: quiet, register: Self.version("Rolling", Self.rollingVersion2)) { _, _ in
            try await client.scheduleNewOrchestration(name: "Rolling", input: 0, instanceID: id)
            try await eventually("the instance ran past the marker") { try await historyContains(client, id, "taskCompleted") }
        }
        let before = try await client.getHistory(id)

        // A version 1 worker of the same rolling deploy gets the event: it hands the instance back.
        let log = RecordedLog()
        var options = quiet
        options.logHandler = log.handler
        try await withWorker(backend: backend, options: options, register: Self.version("Rolling", Self.rollingVersion1)) { _, _ in
            try await client.raiseEvent(id, name: "go", data: 1)
            try await eventually("the old worker handed the instance back") { !log.lines(at: .warning, containing: id).isEmpty }
            #expect(try await client.getInstance(id)?.status == .running)
        }
        let warnings = log.lines(at: .warning, containing: id)
        #expect(warnings == ["instance '\(id)': this worker's code predates change 'new-step' recorded in the history; leaving it to a worker with newer code"])
        #expect(log.lines(at: .error, containing: "").isEmpty, "\(log.lines(at: .error, containing: ""))")
        #expect(try await client.getInstance(id)?.status == .running)
        #expect(try await client.getHistory(id) == before)

        // A version 2 worker takes it once the hand-back delay is over, and finishes it on its path.
        try await withWorker(backend: backend, options: quiet, register: Self.version("Rolling", Self.rollingVersion2)) { _, _ in
            clock.advance(by: 6)
            let output = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(output.status == .completed, "\(String(describing: output.failure))")
            #expect(try output.output(as: String.self) == "v2: new")
        }
    }

    @Test func otherNondeterminismStillFailsTheInstance() async throws {
        // No marker involved: the code calls a different activity than the history holds.
        let clock = ManualClock()
        let backend = InMemoryBackend(clock: clock)
        let client = DurableTaskClient(backend: backend)
        let register: (String) -> (DurableTaskWorker) -> Void = { activity in
            { worker in
                worker.addOrchestrator(name: "Changed") { (context: OrchestrationContext, _: Int) -> String in
                    let step = try await context.callActivity(activity, input: 0, returning: String.self).value
                    _ = try await context.waitForExternalEvent("go", as: Int.self).value
                    return step
                }
                Self.activities(worker)
            }
        }
        try await withWorker(backend: backend, options: quiet, register: register("Old")) { _, _ in
            try await client.scheduleNewOrchestration(name: "Changed", input: 0, instanceID: "changed")
            try await eventually("the activity ran") { try await historyContains(client, "changed", "taskCompleted") }
        }
        try await withWorker(backend: backend, options: quiet, register: register("New")) { _, _ in
            try await client.raiseEvent("changed", name: "go", data: 1)
            let output = try await client.waitForCompletion("changed", timeout: .seconds(20))
            #expect(output.status == .failed)
            #expect(output.failure?.errorType == "NonDeterminismError")
        }
    }
}

/// Collects a worker's log lines for assertions.
private final class RecordedLog: Sendable {
    private let lines = Mutex<[(level: LogLevel, message: String)]>([])

    /// A handler to pass as `logHandler`.
    var handler: @Sendable (LogLevel, String) -> Void {
        { [self] level, message in lines.withLock { $0.append((level, message)) } }
    }

    /// The messages logged at `level` that contain `part`.
    func lines(at level: LogLevel, containing part: String) -> [String] {
        lines.withLock { $0.filter { $0.level == level && (part.isEmpty || $0.message.contains(part)) }.map(\.message) }
    }
}
