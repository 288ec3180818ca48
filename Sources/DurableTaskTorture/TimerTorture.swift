import DurableTask
import DurableTaskSQLite
import Foundation

/// Timers due over a window; the worker is killed before they fire and restarted after they are due.
/// No timer may fire early or twice.
struct TimerTorture {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    func run() async throws {
        let count = arguments.int("timers", 20)
        let window = arguments.double("window", 3)
        var random = SeededRandom(seed: UInt64(arguments.int("seed", 1)))
        let directory = try runDirectory(arguments, "timers")
        defer { if !arguments.flag("keep") { try? FileManager.default.removeItem(at: directory) } }
        let db = directory.appendingPathComponent("hub.sqlite").path
        let started = Date()

        let backend = try SQLiteBackend(path: db)
        let client = DurableTaskClient(backend: backend)
        let base = Date().addingTimeInterval(1)
        var ids: [String] = []
        for index in 0..<count {
            let fireAt = base.addingTimeInterval(Double(random.next() % 1000) / 1000 * window)
            ids.append(try await client.scheduleNewOrchestration(TortureTimer.self, input: fireAt.timeIntervalSince1970, instanceID: "timer-\(index)"))
        }
        func spawn() throws -> ChildProcess {
            try ChildProcess(
                arguments: ["child-worker", "--db", db, "--lease-ms", "1000"],
                stderrPath: directory.appendingPathComponent("worker.log").path)
        }
        // First worker: create the timers, then die before any is due.
        let first = try spawn()
        let createdBy = Date().addingTimeInterval(10)
        while Date() < createdBy {
            var created = 0
            for id in ids where try await client.getHistory(id).contains(where: { $0.kindName == "timerCreated" }) { created += 1 }
            if created == count { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        first.kill()
        // Second worker: killed in the middle of the window, while some timers are firing.
        try await Task.sleep(for: .seconds(1 + window / 2))
        let second = try spawn()
        try await Task.sleep(for: .milliseconds(Int64(200 + random.next() % 300)))
        second.kill()
        // Third worker: after every timer is due.
        let last = try spawn()
        var early = 0
        var duplicates = 0
        var unfinished = 0
        var lateness: [Double] = []
        for id in ids {
            guard let metadata = try? await client.waitForCompletion(id, timeout: .seconds(60)), metadata.status == .completed else {
                unfinished += 1
                continue
            }
            let result = try metadata.output(as: TortureTimer.Report.self)
            if result.firedAt < result.fireAt { early += 1 }
            lateness.append(result.firedAt - result.fireAt)
            let fired = try await client.getHistory(id).filter { $0.kindName == "timerFired" }.count
            if fired != 1 { duplicates += 1 }
        }
        last.terminate()
        _ = last.wait(timeout: 10)
        last.kill()
        var verdict = Verdict()
        try await Verification.replayEveryHistory(backend: backend, orchestrators: [OrchestratorEntry(TortureTimer())], into: &verdict)
        await backend.close()
        let ok = early == 0 && duplicates == 0 && unfinished == 0 && verdict.falsePositives == 0
        let maxLateness = lateness.max() ?? 0
        report(
            "timers across restarts: \(count) timers over \(window) s, 2 kills: \(early) early fires, \(duplicates) duplicate fires, "
                + "\(unfinished) unfinished, max lateness " + String(format: "%.2f s (includes the restart gaps)", maxLateness)
                + ", \(verdict.replayed) histories replayed with \(verdict.falsePositives) false nondeterminism reports"
                + String(format: ", %.1f s", Date().timeIntervalSince(started))
                + (verdict.problems.isEmpty ? "" : "\nproblems: " + verdict.problems.joined(separator: "\n  ")),
            [
                "mode": "timers", "timers": count, "window_s": window, "early_fires": early, "duplicate_fires": duplicates,
                "unfinished": unfinished, "max_lateness_s": maxLateness, "histories_replayed": verdict.replayed,
                "replay_false_positives": verdict.falsePositives, "ok": ok
            ],
            ok: ok)
    }
}
