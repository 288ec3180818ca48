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
    ) throws -> PostgresBackend {
        guard let url else { throw DurableTaskError(.invalidState, "DURABLETASK_POSTGRES_URL is not set") }
        var options = PostgresBackend.Options(schema: schema, connections: 2, logHandler: { _, _ in })
        configure(&options)
        return try PostgresBackend(url: url, options: options, clock: clock)
    }

    /// Runs SQL as an administrator of the test server, e.g. to kill sessions; returns psql's output.
    static func admin(_ sql: String) async throws -> String {
        guard let url else { return "" }
        let quoted = { (s: String) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let (status, output) = await shell("/usr/bin/psql \(quoted(url)) -X -q -t -A -v ON_ERROR_STOP=1 -c \(quoted(sql))")
        guard status == 0 else { throw DurableTaskError(.invalidState, "psql failed (\(status)): \(output)") }
        return output
    }

    /// Runs a shell command to its end on a thread of its own (it blocks; the cooperative pool must
    /// not) and returns its exit status and output. posix_spawn and waitpid rather than Foundation's
    /// `Process`, whose `waitUntilExit` spun at full CPU without ever returning once the command had
    /// restarted the server (a daemon that outlives it).
    static func shell(_ command: String) async -> (status: Int32, output: String) {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("dt-pg-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: outputPath) }
                let arguments: [String] = ["/bin/sh", "-c", "(\(command)) > '\(outputPath)' 2>&1 < /dev/null"]
                let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
                defer { argv.forEach { free($0) } }
                var pid: pid_t = 0
                guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else {
                    continuation.resume(returning: (-1, "posix_spawn failed"))
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
                let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                continuation.resume(returning: (exit, output.trimmingCharacters(in: .whitespacesAndNewlines)))
            }
        }
    }
}

extension Tag {
    /// Needs a PostgreSQL server (`DURABLETASK_POSTGRES_URL`).
    @Tag static var postgres: Self
    /// Slow: restarts servers, waits for timeouts.
    @Tag static var slow: Self
}
