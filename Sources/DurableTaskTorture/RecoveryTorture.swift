import DurableTask
import DurableTaskSQLite
import Foundation

/// How long a crashed worker's activities wait for another worker: a worker process with the library's
/// default leases is SIGKILLed in the middle of a fan-out and restarted at once; the figure is the time
/// from the restart to the first activity the dead worker had started running again.
///
/// Without a way to tell a dead worker from a slow one, that is the activity lease (30–60 s); the
/// SQLite backend sees the dead process's lock released and takes its leases over at once.
struct RecoveryTorture {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    func run() async throws {
        let runs = arguments.int("runs", 3)
        let items = arguments.int("items", 60)
        let killAfter = arguments.int("kill-after", 12)
        let limit = arguments.double("limit", 1)
        let started = Date()
        var restartToRedo: [Double] = []
        var restartToFirst: [Double] = []
        var restartToDone: [Double] = []
        var verdict = Verdict()
        for run in 0..<runs {
            let directory = try runDirectory(arguments, "recovery-\(run)")
            defer { if !arguments.flag("keep") { try? FileManager.default.removeItem(at: directory) } }
            let db = directory.appendingPathComponent("hub.sqlite").path
            let ledger = directory.appendingPathComponent("ledger.txt").path
            let log = directory.appendingPathComponent("worker.log").path
            let instanceID = "recovery-\(run)"
            let backend = try SQLiteBackend(path: db)
            let client = DurableTaskClient(backend: backend)
            try await client.scheduleNewOrchestration(TortureFanOut.self, input: items, instanceID: instanceID)
            // `--lease-ms 0`: the library's default leases, as a user's worker has them.
            let childArguments = [
                "child-worker", "--db", db, "--ledger", ledger, "--lease-ms", "0",
                "--delay-ms", arguments.string("delay-ms", "200")
            ]
            let first = try ChildProcess(arguments: childArguments, stderrPath: log)
            let firstPID = first.process.processIdentifier
            guard waitForLedger(ledger, atLeast: killAfter, timeout: 60) else {
                first.kill()
                verdict.problem("run \(run): the first worker did not start \(killAfter) activities; see \(log)")
                verdict.notCompleted += 1
                continue
            }
            first.kill()
            let startedByFirst = Set(Ledger.lines(at: ledger).compactMap(Self.task))
            let restart = Date()
            let second = try ChildProcess(arguments: childArguments, stderrPath: log)
            let secondPID = "\(second.process.processIdentifier)"
            var firstByNew: Date?
            var redone: Date?
            let deadline = restart.addingTimeInterval(120)
            while redone == nil, Date() < deadline {
                for line in Ledger.lines(at: ledger) where line.hasSuffix(" " + secondPID) {
                    if firstByNew == nil { firstByNew = Date() }
                    if let task = Self.task(line), startedByFirst.contains(task) { redone = Date() }
                }
                if redone == nil { usleep(1_000) }
            }
            _ = firstPID
            if let redone, let firstByNew {
                restartToRedo.append(redone.timeIntervalSince(restart))
                restartToFirst.append(firstByNew.timeIntervalSince(restart))
            } else {
                verdict.problem("run \(run): no activity of the dead worker ran again within 120 s of the restart")
            }
            if let done = try? await client.waitForCompletion(instanceID, timeout: .seconds(600)), done.status == .completed {
                restartToDone.append(Date().timeIntervalSince(restart))
            }
            second.terminate()
            if !second.wait(timeout: 20) { second.kill() }
            try await Verification.checkFanOut(backend: backend, instanceID: instanceID, items: items, into: &verdict)
            await backend.close()
        }
        let worst = restartToRedo.max() ?? .infinity
        let ok = verdict.isClean && restartToRedo.count == runs && worst < limit
        func ms(_ values: [Double]) -> String { values.map { String(format: "%.0f", $0 * 1000) }.joined(separator: ", ") }
        report(
            "crash recovery with the default leases: \(runs) SIGKILLs mid-fan-out (\(items) activities, kill after \(killAfter) started): "
                + "restart to the first redone activity \(ms(restartToRedo)) ms (worst " + String(format: "%.0f", worst * 1000)
                + " ms, limit " + String(format: "%.0f", limit * 1000) + " ms); restart to the new worker's first activity \(ms(restartToFirst)) ms; "
                + "restart to the fan-out's completion \(ms(restartToDone)) ms; \(verdict.wrongResults) wrong results, "
                + "\(verdict.duplicateCompletions) duplicated and \(verdict.missingCompletions) lost completions, "
                + String(format: "%.1f s", Date().timeIntervalSince(started))
                + (verdict.problems.isEmpty ? "" : "\nproblems: " + verdict.problems.joined(separator: "\n  ")),
            [
                "mode": "recovery", "runs": runs, "items": items, "recovered": restartToRedo.count,
                "restart_to_redo_ms": restartToRedo.map { $0 * 1000 }, "worst_restart_to_redo_ms": worst.isFinite ? worst * 1000 : -1,
                "restart_to_first_activity_ms": restartToFirst.map { $0 * 1000 }, "restart_to_done_ms": restartToDone.map { $0 * 1000 },
                "wrong_results": verdict.wrongResults, "duplicate_completions": verdict.duplicateCompletions,
                "lost_completions": verdict.missingCompletions, "not_completed": verdict.notCompleted, "ok": ok
            ],
            ok: ok)
    }

    /// "instance task" of a ledger line.
    private static func task(_ line: String) -> String? {
        let fields = line.split(separator: " ")
        return fields.count >= 2 ? "\(fields[0]) \(fields[1])" : nil
    }

    private func waitForLedger(_ path: String, atLeast count: Int, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if Ledger.lines(at: path).count >= count { return true }
            usleep(1_000)
        }
        return false
    }
}
