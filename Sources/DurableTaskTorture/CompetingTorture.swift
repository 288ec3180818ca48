import DurableTask
import Foundation

/// P worker processes share one task hub and finish M fan-outs of F activities while one of them is
/// killed every few seconds; every orchestration must complete exactly once.
///
/// The hub is an SQLite file by default; `--postgres URL` puts it in a fresh schema on that server.
struct CompetingTorture {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    func run() async throws {
        let processes = arguments.int("processes", 4)
        let orchestrations = arguments.int("orchestrations", 500)
        let fanout = arguments.int("fanout", 10)
        let killEvery = arguments.double("kill-every", 1)
        // Pausing a worker (SIGSTOP) for longer than its lease makes its leases expire while its
        // activities still run: other workers take them over, and its late completions must be fenced.
        let pauseEvery = arguments.double("pause-every", 0)
        let pauseLength = arguments.double("pause-ms", 2500) / 1000
        var random = SeededRandom(seed: UInt64(arguments.int("seed", 1)))
        let directory = try runDirectory(arguments, "competing")
        defer { if !arguments.flag("keep") { try? FileManager.default.removeItem(at: directory) } }
        let hub = TortureHub.forParent(arguments, directory: directory)
        defer { if !arguments.flag("keep") { hub.drop() } }
        let ledger = directory.appendingPathComponent("ledger.txt").path
        let started = Date()

        let backend = try hub.open()
        let client = DurableTaskClient(backend: backend)
        let ids = (0..<orchestrations).map { "comp-\($0)" }
        for id in ids { try await client.scheduleNewOrchestration(TortureFanOut.self, input: fanout, instanceID: id) }

        func spawn(_ index: Int) throws -> ChildProcess {
            try ChildProcess(
                arguments: ["child-worker"] + hub.childArguments + [
                    "--ledger", ledger, "--delay-ms", arguments.string("delay-ms", "20"),
                    "--lease-ms", arguments.string("lease-ms", "1000")
                ],
                stderrPath: directory.appendingPathComponent("worker-\(index).log").path)
        }
        var children = try (0..<processes).map(spawn)
        var kills = 0
        var pauses = 0
        var nextKill = Date().addingTimeInterval(killEvery)
        var nextPause = Date().addingTimeInterval(pauseEvery)
        var paused: (index: Int, until: Date)?
        let deadline = Date().addingTimeInterval(arguments.double("timeout", 600))
        var completed = 0
        while Date() < deadline {
            completed = try await client.query(
                OrchestrationQuery(
                    statuses: [.completed, .failed], instanceIDPrefix: "comp-",
                    pageSize: orchestrations + 1)
            ).instances.count
            if completed == orchestrations { break }
            if let current = paused, Date() >= current.until {
                children[current.index].resume()
                paused = nil
            }
            if pauseEvery > 0, paused == nil, Date() >= nextPause {
                let victim = Int(random.next() % UInt64(processes))
                children[victim].pause()
                paused = (victim, Date().addingTimeInterval(pauseLength))
                pauses += 1
                nextPause = Date().addingTimeInterval(pauseEvery)
            }
            if killEvery > 0, Date() >= nextKill {
                let victim = Int(random.next() % UInt64(processes))
                if paused?.index == victim { paused = nil }
                children[victim].kill()
                kills += 1
                children[victim] = try spawn(victim)
                nextKill = Date().addingTimeInterval(killEvery)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        if let current = paused { children[current.index].resume() }
        for child in children { child.terminate() }
        for child in children where !child.wait(timeout: 20) { child.kill() }

        var verdict = Verdict()
        for id in ids {
            try await Verification.checkFanOut(backend: backend, instanceID: id, items: fanout, into: &verdict)
        }
        await TortureHub.close(backend)
        var fenced = 0
        var busyErrors = 0
        for index in 0..<processes {
            let log = (try? String(contentsOfFile: directory.appendingPathComponent("worker-\(index).log").path, encoding: .utf8)) ?? ""
            for line in log.split(separator: "\n") {
                if line.contains("SQLITE_BUSY") || line.contains("database is locked") { busyErrors += 1 }
                if line.hasPrefix("STATS "), let value = line.split(separator: " ").first(where: { $0.hasPrefix("fenced=") }) {
                    fenced += Int(value.dropFirst("fenced=".count)) ?? 0
                }
            }
        }
        let integrity = hub.integrityCheck()
        // A process frozen with SIGSTOP while it holds the write lock keeps the others out for as long as
        // it is frozen; past the busy timeout their writes fail with a storage error and are retried, as
        // documented. Only without pauses is a busy error a failure.
        let ok = verdict.isClean && (busyErrors == 0 || pauseEvery > 0) && integrity == "ok"
        let seconds = Date().timeIntervalSince(started)
        let executions = Ledger.lines(at: ledger).count
        report(
            "competing processes (\(hub.isPostgres ? "postgres" : "sqlite")): P=\(processes) M=\(orchestrations) F=\(fanout): \(orchestrations - verdict.notCompleted)/\(orchestrations) completed, "
                + "\(verdict.completedMoreThanOnce) completed more than once, \(verdict.duplicateCompletions) duplicate completion events, "
                + "\(verdict.notCompleted) lost, \(verdict.wrongResults) wrong, \(busyErrors) busy errors, \(kills) kills, \(pauses) pauses, "
                + "\(fenced) late completions fenced (from workers stopped cleanly), \(executions - orchestrations * fanout) extra executions, "
                + "\(verdict.replayed) histories replayed with \(verdict.falsePositives) false nondeterminism reports, integrity \(integrity), "
                + String(format: "%.1f s", seconds)
                + (verdict.problems.isEmpty ? "" : "\nproblems: " + verdict.problems.joined(separator: "\n  ")),
            [
                "mode": "competing", "backend": hub.isPostgres ? "postgres" : "sqlite", "processes": processes, "orchestrations": orchestrations,
                "fanout": fanout,
                "completed": orchestrations - verdict.notCompleted, "completed_more_than_once": verdict.completedMoreThanOnce,
                "duplicate_completions": verdict.duplicateCompletions, "lost": verdict.notCompleted, "wrong_results": verdict.wrongResults,
                "busy_errors": busyErrors, "kills": kills, "pauses": pauses, "fenced": fenced, "extra_executions": executions - orchestrations * fanout,
                "integrity": integrity, "histories_replayed": verdict.replayed, "replay_false_positives": verdict.falsePositives, "seconds": seconds, "ok": ok
            ],
            ok: ok)
    }
}
