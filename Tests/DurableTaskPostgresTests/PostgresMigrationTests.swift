@_spi(Backend) import DurableTask
import Foundation
import Testing

@testable import DurableTaskPostgres

/// A task hub written by an earlier version of the library opens, migrates forward and goes on.
@Suite(
    "Postgres migrations", .tags(.postgres),
    .enabled(if: PostgresTestServer.url != nil, PostgresTestServer.howToRun))
struct PostgresMigrationTests {
    @Test func aVersionOneTaskHubIsMigratedAndRuns() async throws {
        let name = PostgresTestServer.freshSchema("mig")
        let schema = PostgresSchema(name: name)
        // Version 1 as that release created it (version 2 only changes indexes: rows stay as they are),
        // with an instance whose history rows hold one event each, as before version 3.
        let date = Date(timeIntervalSinceReferenceDate: 1_000)
        let old = [
            HistoryEvent(timestamp: date, kind: .executionStarted(name: "Old", executionID: "e", input: nil, parent: nil, scheduledStart: nil)),
            HistoryEvent(eventID: 0, timestamp: date, kind: .taskScheduled(name: "Act", input: Payload(json: "1")))
        ]
        let rows = old.enumerated().map { seq, event in
            "('old', \(seq), '\\x\(HistoryEventCodec.encode(event).map { String(format: "%02x", $0) }.joined())'::bytea)"
        }
        _ = try await PostgresTestServer.admin(
            [
                schema.createSchema, schema.createMeta, schema.v1, "UPDATE \(schema.s).durabletask_meta SET value = '1' WHERE key = 'version'",
                """
                INSERT INTO \(schema.s).instances (instance_id, name, execution_id, status, created_at, updated_at, history_length)
                VALUES ('old', 'Old', 'e', 'running', 0, 0, 2)
                """,
                "INSERT INTO \(schema.s).history (instance_id, seq, event) VALUES \(rows.joined(separator: ", "))"
            ]
            .joined(separator: ";\n"))
        let backend = try PostgresTestServer.backend(schema: name)
        #expect(try await backend.getOrchestrationHistory(instanceID: "old") == old)
        #expect(try await PostgresTestServer.admin("SELECT value FROM \(schema.s).durabletask_meta WHERE key = 'version'") == "\(PostgresSchema.version)")
        let indexes = try await PostgresTestServer.admin("SELECT indexname FROM pg_indexes WHERE schemaname = '\(name)' ORDER BY indexname")
        #expect(indexes.contains("instances_ready_fresh") && indexes.contains("instances_ready_redelivered"), "\(indexes)")
        #expect(!indexes.split(separator: "\n").contains("instances_ready"), "\(indexes)")

        try await DurableTaskClient(backend: backend).scheduleNewOrchestration(name: "Double", input: 21, instanceID: "waiting")
        let worker = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
        worker.addOrchestrator(name: "Double") { (_: OrchestrationContext, n: Int) async throws -> Int in n * 2 }
        let running = Task { await worker.run() }
        let done = try await DurableTaskClient(backend: backend).waitForCompletion("waiting", timeout: .seconds(30))
        #expect(done.status == .completed)
        #expect(try done.output(as: Int.self) == 42)
        worker.stop()
        await running.value
        await backend.close()
        _ = try await PostgresTestServer.admin("DROP SCHEMA \(schema.s) CASCADE")
    }

    @Test func aToolThatOnlyLooksCreatesNoTaskHub() async throws {
        let name = PostgresTestServer.freshSchema("look")
        // A schema that holds no task hub is refused, and nothing is created.
        let error = #expect(throws: DurableTaskError.self) {
            try PostgresTestServer.backend(schema: name) { $0.createIfMissing = false }
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("no task hub in schema '\(name)'") == true)
        #expect(try await PostgresTestServer.admin("SELECT count(*) FROM pg_namespace WHERE nspname = '\(name)'") == "0")
        // Once a worker's backend made it, the looking one opens it.
        let made = try PostgresTestServer.backend(schema: name)
        await made.close()
        let looking = try PostgresTestServer.backend(schema: name) { $0.createIfMissing = false }
        await looking.close()
        _ = try await PostgresTestServer.admin("DROP SCHEMA \(PostgresSchema(name: name).s) CASCADE")
    }
}
