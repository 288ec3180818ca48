import DurableTask
import DurableTaskPostgres
import DurableTaskSQLite
import Foundation
import Testing

/// The backends every feature test runs on.
enum TestBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case sqliteFile
    case sqliteMemory
    /// A fresh schema on the server named by `DURABLETASK_POSTGRES_URL`; run only when it is set
    /// (`.ci/run` sets it; see Tests/DurableTaskPostgresTests for how to run one locally).
    case postgres

    static let postgresURL = ProcessInfo.processInfo.environment["DURABLETASK_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let allCases: [TestBackend] = [.memory, .sqliteFile, .sqliteMemory] + (postgresURL == nil ? [] : [.postgres])

    var testDescription: String { rawValue }

    /// A fresh backend; SQLite files live in their own temp directory, removed by `cleanup`.
    func make(clock: any DurableClock = SystemClock()) throws -> (backend: any Backend, cleanup: @Sendable () -> Void) {
        switch self {
        case .memory:
            return (InMemoryBackend(clock: clock), {})
        case .sqliteMemory:
            return (try SQLiteBackend.inMemory(clock: clock), {})
        case .postgres:
            let schema = "ft_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
            let options = PostgresBackend.Options(schema: schema, connections: 2, logHandler: { _, _ in })
            return (try PostgresBackend(url: Self.postgresURL ?? "", options: options, clock: clock), {})
        case .sqliteFile:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dt-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let backend = try SQLiteBackend(
                path: directory.appendingPathComponent("hub.sqlite").path,
                options: .init(synchronous: .normal), clock: clock)
            return (backend, { try? FileManager.default.removeItem(at: directory) })
        }
    }
}

/// Runs `body` on a fresh backend of `kind` (removed afterwards) with a worker that has everything
/// ``registerAll(_:ledger:gate:)`` registers and what `register` adds.
func withFeatureWorker<R>(
    _ kind: TestBackend, options: DurableTaskWorker.Options, adding register: (DurableTaskWorker) -> Void,
    _ body: (DurableTaskClient) async throws -> R
) async throws -> R {
    let (backend, cleanup) = try kind.make()
    defer { cleanup() }
    return try await withWorker(
        backend: backend, options: options,
        register: { worker in
            registerAll(worker)
            register(worker)
        }
    ) { client, _ in try await body(client) }
}

/// Registers everything the feature tests use.
func registerAll(_ worker: DurableTaskWorker, ledger: Ledger = Ledger(), gate: AsyncGate = AsyncGate()) {
    worker.addOrchestrator(SumOfSquares())
    worker.addOrchestrator(TimerOrchestrator())
    worker.addOrchestrator(TimeoutRace())
    worker.addOrchestrator(EventCollector())
    worker.addOrchestrator(EventAfterTimer())
    worker.addOrchestrator(EventWithTimeout())
    worker.addOrchestrator(Parent())
    worker.addOrchestrator(FailingChild())
    worker.addOrchestrator(ParentOfFailingChild())
    worker.addOrchestrator(WaitsForever())
    worker.addOrchestrator(ParentOfWaiter())
    worker.addOrchestrator(Counter())
    worker.addOrchestrator(EternalAccumulator())
    worker.addOrchestrator(RetryingOrchestrator())
    worker.addOrchestrator(BigPayload())
    worker.addOrchestrator(EchoesBack())
    worker.addOrchestrator(ReturnsBig())
    worker.addOrchestrator(ProgressOrchestrator())
    worker.addOrchestrator(CatchesFailure())
    worker.addOrchestrator(CallsUnknownActivity())
    worker.addOrchestrator(Throws())
    worker.addActivity(Square())
    worker.addActivity(Fail())
    worker.addActivity(Echo())
    worker.addActivity(Inflate())
    worker.addActivity(Flaky(ledger: ledger))
    worker.addActivity(Gate(gate: gate))
}

/// Polls until `condition` holds (for states the client has no wait call for), failing after `timeout`.
/// The bound only decides how long a failing test takes: at the start of a run every suite starts at
/// once on two cores, and a fresh worker's first episode has taken ten seconds there.
func eventually(timeout: Duration = .seconds(30), _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("timed out waiting for \(what)")
    throw CancellationError()
}

/// Whether the instance's history holds an event of the given kind.
func historyContains(_ client: DurableTaskClient, _ id: String, _ kind: String) async throws -> Bool {
    try await client.getHistory(id).contains { $0.kindName == kind }
}
