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
        schema: String = freshSchema(), clock: any DurableClock = SystemClock(), url: String? = url,
        configure: (inout PostgresBackend.Options) -> Void = { _ in }
    ) throws -> PostgresBackend {
        guard let url else { throw DurableTaskError(.invalidState, "DURABLETASK_POSTGRES_URL is not set") }
        var options = PostgresBackend.Options(schema: schema, connections: 2, logHandler: { _, _ in })
        configure(&options)
        return try PostgresBackend(url: url, options: options, clock: clock)
    }

    /// Runs SQL as an administrator of the test server, e.g. to kill sessions; returns psql's output.
    static func admin(_ sql: String, url: String? = url) async throws -> String {
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

/// A PostgreSQL cluster of one test's own, for faults that would hit every other test on the shared
/// server: a restart of the shared server broke the statements of the tests running beside it.
struct PrivateCluster {
    let directory: String
    let url: String
    private let bin: String

    /// Creates and starts a cluster in a new temp directory, on a unix socket there and a free port.
    static func start() async throws -> PrivateCluster {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw DurableTaskError(.invalidState, "no PostgreSQL server binaries under /usr/lib/postgresql")
        }
        let bin = "/usr/lib/postgresql/\(version)/bin"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dt-pg-private-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let port = try freePort()
        let cluster = PrivateCluster(directory: directory, url: "postgresql://postgres@127.0.0.1:\(port)/postgres", bin: bin)
        if getuid() == 0 {
            _ = await PostgresTestServer.shell("chown postgres '\(directory)'")
        }
        let settings = ["listen_addresses = '127.0.0.1'", "port = \(port)", "unix_socket_directories = '\(directory)'", "max_connections = 50"]
        try await cluster.run("'\(bin)/initdb' -D '\(directory)/data' -U postgres -A trust -E UTF8 --no-locale > '\(directory)/initdb.log' 2>&1")
        try await cluster.run(settings.map { "echo \"\($0)\" >> '\(directory)/data/postgresql.conf'" }.joined(separator: " && "))
        try await cluster.run("'\(bin)/pg_ctl' -D '\(directory)/data' -l '\(directory)/server.log' -w -t 60 start > /dev/null")
        return cluster
    }

    /// Restarts the server (fast shutdown: sessions are cut, as in a crash of the server process).
    func restart() async throws {
        try await run("'\(bin)/pg_ctl' -D '\(directory)/data' -m fast -w -t 60 restart > /dev/null")
    }

    /// Stops the server and deletes its directory.
    func stop() async {
        _ = try? await run("'\(bin)/pg_ctl' -D '\(directory)/data' -m immediate -w stop > /dev/null")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a command as the cluster's owner: initdb refuses root, so as root that is `postgres`.
    private func run(_ command: String) async throws {
        let quoted = "'" + command.replacingOccurrences(of: "'", with: "'\\''") + "'"
        let (status, output) = await PostgresTestServer.shell(getuid() == 0 ? "su postgres -s /bin/sh -c \(quoted)" : command)
        guard status == 0 else { throw DurableTaskError(.invalidState, "`\(command)` failed (\(status)): \(output)") }
    }

    /// A TCP port nothing listens on now: the kernel's pick for a socket bound to port 0.
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw DurableTaskError(.invalidState, "socket() failed: \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw DurableTaskError(.invalidState, "could not bind a socket to find a free port: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension Tag {
    /// Needs a PostgreSQL server (`DURABLETASK_POSTGRES_URL`).
    @Tag static var postgres: Self
    /// Slow: restarts servers, waits for timeouts.
    @Tag static var slow: Self
}
