import DurableTask
import Foundation

/// Kills a process running a fan-out with SIGKILL at seeded random moments, restarts it, and checks
/// the result, the history and the file after it finally completes.
///
/// On SQLite by default; `--postgres URL` runs each seed on a fresh schema of that server instead.
struct CrashTorture {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    func run() async throws {
        let items = arguments.int("items", 200)
        let killsPerSeed = arguments.int("kills", 20)
        let seeds = arguments.int("seeds", 1)
        let firstSeed = arguments.int("seed", 1)
        var totalKills = 0
        var extraExecutions = 0
        var verdict = Verdict()
        var integrityFailures = 0
        let started = Date()

        for seed in firstSeed..<(firstSeed + seeds) {
            let directory = try runDirectory(arguments, "crash-\(seed)")
            defer { if !arguments.flag("keep") { try? FileManager.default.removeItem(at: directory) } }
            let hub = TortureHub.forParent(arguments, directory: directory)
            defer { if !arguments.flag("keep") { hub.drop() } }
            let ledger = directory.appendingPathComponent("ledger.txt").path
            let childArguments =
                ["child-fanout"] + hub.childArguments + [
                    "--instance", "crash-\(seed)", "--items", "\(items)",
                    "--ledger", ledger, "--delay-ms", arguments.string("delay-ms", "3")
                ]
            var random = SeededRandom(seed: UInt64(seed))
            var kills = 0
            for _ in 0..<killsPerSeed {
                let child = try ChildProcess(arguments: childArguments, stderrPath: directory.appendingPathComponent("child.log").path)
                // Half the kills at a random time (often during start-up or replay), half after a random
                // number of further activity executions (during the fan-out).
                let byTime = random.next() % 2 == 0
                // Small steps, so that the run lasts for all the kills asked for.
                let deadline = Date().addingTimeInterval(Double(5 + random.next() % 100) / 1000)
                let target = Ledger.lines(at: ledger).count + 1 + Int(random.next() % UInt64(max(1, items / (2 * killsPerSeed))))
                var finished = false
                while true {
                    if !child.isRunning {
                        finished = true
                        break
                    }
                    // Every kill also comes at the latest after a few more executions, so a fast machine
                    // cannot finish the whole fan-out between two kills.
                    if Ledger.lines(at: ledger).count >= target || (byTime && Date() >= deadline) { break }
                    usleep(1_000)
                }
                if finished { break }
                child.kill()
                kills += 1
            }
            let last = try ChildProcess(arguments: childArguments, stderrPath: directory.appendingPathComponent("child.log").path)
            guard last.wait(timeout: 300), last.exitStatus == 0 else {
                last.kill()
                verdict.notCompleted += 1
                verdict.problem("seed \(seed): the final run did not finish cleanly; see \(directory.path)/child.log")
                continue
            }
            totalKills += kills
            let backend = try hub.open()
            try await Verification.checkFanOut(backend: backend, instanceID: "crash-\(seed)", items: items, into: &verdict)
            await TortureHub.close(backend)
            let integrity = hub.integrityCheck()
            if integrity != "ok" {
                integrityFailures += 1
                verdict.problem("seed \(seed): integrity_check says \(integrity)")
            }
            extraExecutions += Ledger.lines(at: ledger).count - items
        }

        let ok = verdict.isClean && integrityFailures == 0
        let backendName = arguments.string("postgres", "").isEmpty ? "sqlite" : "postgres"
        let seconds = Date().timeIntervalSince(started)
        report(
            "crash torture (\(backendName)): \(seeds) seed(s) from \(firstSeed), \(items) activities, \(totalKills) kills, "
                + "\(verdict.wrongResults) wrong results, \(verdict.duplicateCompletions) duplicated and \(verdict.missingCompletions) lost completions, "
                + "\(verdict.completedMoreThanOnce) double completions, \(integrityFailures) integrity failures, "
                + "\(verdict.replayed) histories replayed with \(verdict.falsePositives) false nondeterminism reports, "
                + "\(extraExecutions) extra activity executions (\(String(format: "%.2f", Double(extraExecutions) / Double(max(1, totalKills)))) per kill), "
                + String(format: "%.1f s", seconds) + (verdict.problems.isEmpty ? "" : "\nproblems: " + verdict.problems.joined(separator: "\n  ")),
            [
                "mode": "crash", "backend": backendName, "seeds": seeds, "first_seed": firstSeed, "items": items, "kills": totalKills,
                "wrong_results": verdict.wrongResults, "not_completed": verdict.notCompleted,
                "duplicate_completions": verdict.duplicateCompletions, "lost_completions": verdict.missingCompletions,
                "duplicate_schedules": verdict.duplicateSchedules, "orchestration_completed_more_than_once": verdict.completedMoreThanOnce,
                "integrity_failures": integrityFailures, "histories_replayed": verdict.replayed, "replay_false_positives": verdict.falsePositives,
                "extra_executions": extraExecutions, "seconds": seconds, "ok": ok
            ],
            ok: ok)
    }
}
