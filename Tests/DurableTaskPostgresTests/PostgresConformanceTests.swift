import DurableTask
import DurableTaskPostgres
import DurableTaskTesting
import Testing

/// The public conformance suite (`DurableTaskTesting`) against `PostgresBackend`, each check on a task
/// hub (schema) of its own.
@Suite("Postgres backend conformance", .tags(.postgres), .enabled(if: PostgresTestServer.url != nil, PostgresTestServer.howToRun))
struct PostgresConformanceTests {
    @Test(arguments: BackendConformance.checks)
    func conformance(check: BackendConformance.Check) async throws {
        try await check.run { clock in try PostgresTestServer.backend(clock: clock) }
    }
}
