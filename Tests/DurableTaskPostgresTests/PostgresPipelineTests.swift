import Foundation
import Testing

@testable import DurableTaskPostgres

/// `PostgresConnection.pipeline`, which sends an episode's statements in one round trip: results in
/// order, a failure that skips the rest and leaves the connection usable, and a transaction around it
/// that undoes the statements before the failure.
@Suite(
    "Postgres pipeline", .tags(.postgres),
    .enabled(if: PostgresTestServer.url != nil, PostgresTestServer.howToRun))
struct PostgresPipelineTests {
    func connect() throws -> PostgresConnection {
        try PostgresConnection(url: try #require(PostgresTestServer.url), applicationName: "pipeline test", connectTimeoutSeconds: 10, settings: [])
    }

    @Test func resultsComeBackInStatementOrder() throws {
        let c = try connect()
        let results = try c.pipeline([
            PostgresStatement("SELECT $1::int8 + 1", [.int(41)]),
            PostgresStatement("SELECT $1::text || '!'", [.text("hi")]),
            PostgresStatement("SELECT generate_series(1, $1::int8)", [.int(3)])
        ])
        #expect(results.count == 3)
        #expect(results[0].int64(0, 0) == 42)
        #expect(results[1].text(0, 0) == "hi!")
        #expect(results[2].count == 3)
    }

    @Test func aFailedStatementSkipsTheRestAndTheTransactionUndoesTheOnesBefore() throws {
        let c = try connect()
        let table = "pipeline_" + PostgresTestServer.freshSchema("t")
        try c.execute("CREATE TABLE \(table) (n int8 PRIMARY KEY)")
        defer { _ = try? c.execute("DROP TABLE \(table)") }

        #expect(throws: PostgresError.self) {
            try c.transaction {
                try c.pipeline([
                    PostgresStatement("INSERT INTO \(table) VALUES ($1)", [.int(1)]),
                    PostgresStatement("INSERT INTO \(table) VALUES ($1)", [.int(1)]),  // a unique violation
                    PostgresStatement("INSERT INTO \(table) VALUES ($1)", [.int(2)])
                ])
            }
        }
        // The connection left pipeline mode and the transaction was rolled back: nothing was written.
        #expect(try c.query("SELECT count(*) FROM \(table)").int64(0, 0) == 0)
        // And it goes on: the same statements, without the duplicate, commit.
        _ = try c.transaction {
            try c.pipeline([
                PostgresStatement("INSERT INTO \(table) VALUES ($1)", [.int(1)]),
                PostgresStatement("INSERT INTO \(table) VALUES ($1)", [.int(2)])
            ])
        }
        #expect(try c.query("SELECT count(*) FROM \(table)").int64(0, 0) == 2)
    }

    @Test func aLaterStatementSeesTheRowsAnEarlierOneLocked() throws {
        // The lease relies on it: its inbox read is a statement of its own, after the lock.
        let c = try connect()
        let table = "pipeline_" + PostgresTestServer.freshSchema("t")
        try c.execute("CREATE TABLE \(table) (n int8 PRIMARY KEY, owner text)")
        defer { _ = try? c.execute("DROP TABLE \(table)") }
        try c.execute("INSERT INTO \(table) VALUES (1, NULL), (2, NULL), (3, NULL)")
        let results = try c.transaction {
            try c.pipeline([
                PostgresStatement(
                    "UPDATE \(table) SET owner = $1 WHERE n IN (SELECT n FROM \(table) ORDER BY n LIMIT 2 FOR UPDATE SKIP LOCKED)", [.text("me")]),
                PostgresStatement("SELECT n FROM \(table) WHERE owner = $1 ORDER BY n", [.text("me")])
            ])
        }
        #expect(results[1].count == 2)
        #expect(results[1].int64(0, 0) == 1 && results[1].int64(1, 0) == 2)
    }

    @Test func aPipelineThatCommitsEndsTheTransactionAndAFailedOneCommitsNothing() throws {
        let c = try connect()
        let other = try connect()
        let table = "pipeline_" + PostgresTestServer.freshSchema("t")
        try c.execute("CREATE TABLE \(table) (n int8 PRIMARY KEY)")
        defer { _ = try? c.execute("DROP TABLE \(table)") }

        // BEGIN with the first statement, COMMIT with the last: another session sees both rows.
        try c.transaction {
            try c.query("INSERT INTO \(table) VALUES ($1)", [.int(1)])
            try c.pipeline([PostgresStatement("INSERT INTO \(table) VALUES ($1)", [.int(2)])], commit: true)
        }
        #expect(try other.query("SELECT count(*) FROM \(table)").int64(0, 0) == 2)
        #expect(!c.commitInFlight)

        // A statement fails before the COMMIT: the server skips it, the transaction rolls back.
        #expect(throws: PostgresError.self) {
            try c.transaction {
                try c.query("INSERT INTO \(table) VALUES ($1)", [.int(3)])
                try c.pipeline([PostgresStatement("INSERT INTO \(table) VALUES ($1)", [.int(1)])], commit: true)
            }
        }
        #expect(!c.commitInFlight, "the server answered: the outcome is known")
        #expect(try other.query("SELECT count(*) FROM \(table)").int64(0, 0) == 2)
        // A transaction that runs nothing sends nothing, and the connection goes on.
        try c.transaction {}
        #expect(try c.transaction { try c.query("SELECT count(*) FROM \(table)").int64(0, 0) } == 2)
    }
}
