import DurableTask
import DurableTaskPostgres
import Foundation
import Testing

/// The PostgreSQL server the tests use, from `DURABLETASK_POSTGRES_URL`.
///
/// Unset, every Postgres test is skipped, with this message. `.ci/run` always sets it: it starts a
/// throwaway cluster with `.ci/postgres start`.
enum PostgresTestServer {
    static let url = ProcessInfo.processInfo.environment["DURABLETASK_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// Why the tests are skipped when there is no server.
    static let howToRun = Comment(
        rawValue: "DURABLETASK_POSTGRES_URL is not set: no PostgreSQL server to test against. Run `export DURABLETASK_POSTGRES_URL=$(.ci/postgres start)` "
            + "(a throwaway cluster; `.ci/postgres stop` ends it), then `swift test --filter DurableTaskPostgresTests`")

    /// A fresh schema name, so each test has a task hub of its own.
    static func freshSchema(_ prefix: String = "t") -> String {
        "\(prefix)_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
    }

    /// A backend on a fresh schema; warnings and info go to the test log only when asked.
    static func backend(
        schema: String = freshSchema(), clock: any DurableClock = SystemClock(),
        configure: (inout PostgresBackend.Options) -> Void = { _ in }
    ) async throws -> PostgresBackend {
        guard let url else { throw DurableTaskError(.invalidState, "DURABLETASK_POSTGRES_URL is not set") }
        var options = PostgresBackend.Options(schema: schema, connections: 2, logHandler: { _, _ in })
        configure(&options)
        return try await PostgresBackend(url: url, options: options, clock: clock)
    }

    /// Runs SQL as an administrator of the test server (through a backend's URL), e.g. to kill sessions.
    static func admin(_ sql: String) throws -> String {
        guard let url else { return "" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = [url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Tag {
    /// Needs a PostgreSQL server (`DURABLETASK_POSTGRES_URL`).
    @Tag static var postgres: Self
    /// Slow: restarts servers, waits for timeouts.
    @Tag static var slow: Self
}
