import DurableTask
import Foundation

/// `scale`: K worker processes on one task hub run O orchestrations of I rounds of P parallel
/// activities (the benchmark's `--iterations/--parallel/--orchestrations` shape). Prints the time from
/// the first schedule to the last result, activities per second and where the CPU time went (the
/// workers, this client, and with `--server-pid` the PostgreSQL server), and checks every result.
///
/// A benchmark rather than a torture: nothing is killed, but the checks are the same (exact results,
/// every result recorded once), so a fast figure cannot hide lost or duplicated work.
struct ScaleRun {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    /// Runs `--repeat` times and prints one summary line and one JSON line per run.
    func run() async throws {
        var ok = true
        for index in 1...max(1, arguments.int("repeat", 1)) {
            ok = try await runOnce(index: index) && ok
        }
        if !ok { exit(1) }
    }

    private func runOnce(index: Int) async throws -> Bool {
        let workers = arguments.int("workers", 1)
        let iterations = arguments.int("iterations", 10)
        let parallel = arguments.int("parallel", 10)
        let orchestrations = arguments.int("orchestrations", 40)
        let activities = iterations * parallel * orchestrations
        let directory = try runDirectory(arguments, "scale")
        defer { if !arguments.flag("keep") { try? FileManager.default.removeItem(at: directory) } }
        let hub = TortureHub.forParent(arguments, directory: directory)
        defer { if !arguments.flag("keep") { hub.drop() } }
        let ledger = directory.appendingPathComponent("ledger.txt").path

        // Opening first sets the schema up, so the workers do not race to create it.
        let backend = try hub.open()
        let client = DurableTaskClient(backend: backend)
        let logs = (0..<workers).map { directory.appendingPathComponent("worker-\($0).log").path }
        let children = try logs.map { log in
            try ChildProcess(
                arguments: ["child-worker"] + hub.childArguments + [
                    "--ledger", ledger, "--delay-ms", arguments.string("delay-ms", "0"),
                    "--concurrency", arguments.string("concurrency", "64"),
                    // The library's leases and poll: nothing is killed, and a 20 ms poll per worker
                    // would put load on the server that a real deployment does not have.
                    "--lease-ms", "0", "--poll-ms", arguments.string("poll-ms", "500")
                ],
                stderrPath: log)
        }
        defer {
            for child in children { child.terminate() }
            for child in children where !child.wait(timeout: 20) { child.kill() }
        }
        // Start-up (connecting, the first lease call) is not part of the figure.
        let readyBy = Date().addingTimeInterval(60)
        while Date() < readyBy, !logs.allSatisfy({ ((try? String(contentsOfFile: $0, encoding: .utf8)) ?? "").contains("READY") }) {
            try await Task.sleep(for: .milliseconds(20))
        }

        let serverPID = Int32(arguments.int("server-pid", 0))
        let workersBefore = children.map { CPUTime.of(pid: $0.process.processIdentifier) }
        let serverBefore = serverPID > 0 ? CPUTime.ofServer(postmaster: serverPID) : 0
        let selfBefore = CPUTime.ofSelf()
        let start = ContinuousClock.now
        let inputs = (0..<orchestrations).map {
            TortureRounds.Input(iterations: iterations, parallel: parallel, offset: $0 * iterations * parallel)
        }
        let timeout = Duration.seconds(arguments.double("timeout", 900))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (number, input) in inputs.enumerated() {
                group.addTask {
                    let id = "scale-\(number)"
                    try await client.scheduleNewOrchestration(TortureRounds.self, input: input, instanceID: id)
                    _ = try await client.waitForCompletion(id, timeout: timeout)
                }
            }
            try await group.waitForAll()
        }
        let elapsed = start.duration(to: .now).timeInterval
        let workerSeconds = zip(children, workersBefore).reduce(0.0) { total, pair in
            total + CPUTime.of(pid: pair.0.process.processIdentifier) - pair.1
        }
        let serverSeconds = serverPID > 0 ? CPUTime.ofServer(postmaster: serverPID) - serverBefore : 0
        let selfSeconds = CPUTime.ofSelf() - selfBefore

        var verdict = Verdict()
        for (number, input) in inputs.enumerated() {
            try await Verification.checkRounds(backend: backend, instanceID: "scale-\(number)", input: input, into: &verdict)
        }
        await TortureHub.close(backend)
        let extra = Ledger.lines(at: ledger).count - activities
        let ok = verdict.isClean && extra == 0
        let server = serverPID > 0 ? String(format: "server %.2f s", serverSeconds) : "server not measured"
        report(
            "scale (\(hub.isPostgres ? "postgres" : "sqlite")) run \(index): K=\(workers) worker process(es), I=\(iterations) P=\(parallel) "
                + "O=\(orchestrations) (\(activities) activities): "
                + String(format: "%.2f s, %.0f activities/s", elapsed, Double(activities) / elapsed)
                + "; \(verdict.wrongResults) wrong, \(verdict.missingCompletions + verdict.notCompleted) lost, "
                + "\(verdict.duplicateCompletions) duplicated, \(extra) extra executions; CPU: "
                + String(format: "workers %.2f s, client %.2f s, ", workerSeconds, selfSeconds) + server
                + (verdict.problems.isEmpty ? "" : "\nproblems: " + verdict.problems.joined(separator: "\n  ")),
            [
                "mode": "scale", "backend": hub.isPostgres ? "postgres" : "sqlite", "run": index, "workers": workers,
                "iterations": iterations, "parallel": parallel, "orchestrations": orchestrations, "activities": activities,
                "seconds": elapsed, "activities_per_second": Double(activities) / elapsed, "wrong_results": verdict.wrongResults,
                "lost": verdict.missingCompletions + verdict.notCompleted, "duplicate_completions": verdict.duplicateCompletions,
                "extra_executions": extra, "worker_cpu_seconds": workerSeconds, "client_cpu_seconds": selfSeconds,
                "server_cpu_seconds": serverSeconds, "ok": ok
            ],
            ok: true)
        return ok
    }
}

/// CPU seconds (user + system) of processes, from `/proc` (Linux).
enum CPUTime {
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// The fields of `/proc/PID/stat` after the command name (field 3, the state, is index 0).
    private static func statFields(_ pid: Int32) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// utime + stime of a live process; 0 when it is gone.
    static func of(pid: Int32) -> Double {
        guard let fields = statFields(pid), fields.count > 12 else { return 0 }
        return ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticksPerSecond
    }

    /// A PostgreSQL server's CPU: the postmaster's own, its exited sessions' (cutime + cstime, which the
    /// postmaster reaped) and its live sessions' and helpers'.
    static func ofServer(postmaster: Int32) -> Double {
        guard let fields = statFields(postmaster), fields.count > 14 else { return 0 }
        var ticks = fields[11...14].reduce(0.0) { $0 + (Double($1) ?? 0) }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let child = statFields(pid), child.count > 12, child[1] == "\(postmaster)" else { continue }
            ticks += (Double(child[11]) ?? 0) + (Double(child[12]) ?? 0)
        }
        return ticks / ticksPerSecond
    }

    /// This process's user + system time (`CLOCK_PROCESS_CPUTIME_ID`, which counts both).
    static func ofSelf() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
