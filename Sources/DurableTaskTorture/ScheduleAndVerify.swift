import DurableTask
import Foundation

/// `schedule`: the client of `.ci/multihost`. Schedules M fan-outs of F activities on a task hub that
/// workers on other machines (`child-worker` processes) serve, waits until all have finished, and
/// checks each like the torture does: exact result, every activity result recorded exactly once in
/// the history, the orchestration completed once.
///
/// It prints `PROGRESS <completed>` lines while it waits, so a script can cut the network at a known
/// point of the run, and ends with the usual summary and JSON lines.
struct ScheduleAndVerify {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    /// Schedules, waits, checks and reports; exits non-zero when a check fails.
    func run() async throws {
        let orchestrations = arguments.int("orchestrations", 200)
        let fanout = arguments.int("fanout", 10)
        let hub = TortureHub.forChild(arguments)
        let backend = try hub.open(log: timestampedLog)
        let client = DurableTaskClient(backend: backend)
        let ids = (0..<orchestrations).map { "mh-\($0)" }
        let started = Date()
        for id in ids { try await client.scheduleNewOrchestration(TortureFanOut.self, input: fanout, instanceID: id) }
        let deadline = Date().addingTimeInterval(arguments.double("timeout", 600))
        var completed = 0
        while Date() < deadline {
            completed = try await client.query(
                OrchestrationQuery(statuses: [.completed, .failed], instanceIDPrefix: "mh-", pageSize: orchestrations + 1)
            ).instances.count
            // Unbuffered, so that the script watching a pipe sees each line at once.
            FileHandle.standardOutput.write(Data(String(format: "PROGRESS %d %.3f\n", completed, Date().timeIntervalSince1970).utf8))
            if completed == orchestrations { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let seconds = Date().timeIntervalSince(started)
        var verdict = Verdict()
        for id in ids {
            try await Verification.checkFanOut(backend: backend, instanceID: id, items: fanout, into: &verdict)
        }
        await TortureHub.close(backend)
        let ok = verdict.isClean
        report(
            "schedule (\(hub.label)): M=\(orchestrations) F=\(fanout): \(orchestrations - verdict.notCompleted)/\(orchestrations) completed, "
                + "\(verdict.missingCompletions) lost and \(verdict.duplicateCompletions) duplicated activity results, "
                + "\(verdict.wrongResults) wrong results, \(verdict.completedMoreThanOnce) completed more than once, "
                + "\(verdict.duplicateSchedules) scheduled twice, \(verdict.replayed) histories replayed with "
                + "\(verdict.falsePositives) false nondeterminism reports, " + String(format: "%.1f s", seconds)
                + (verdict.problems.isEmpty ? "" : "\nproblems: " + verdict.problems.joined(separator: "\n  ")),
            [
                "mode": "schedule", "orchestrations": orchestrations, "fanout": fanout,
                "completed": orchestrations - verdict.notCompleted, "lost": verdict.missingCompletions,
                "not_completed": verdict.notCompleted, "duplicate_completions": verdict.duplicateCompletions,
                "wrong_results": verdict.wrongResults, "completed_more_than_once": verdict.completedMoreThanOnce,
                "duplicate_schedules": verdict.duplicateSchedules, "replay_false_positives": verdict.falsePositives,
                "seconds": seconds, "ok": ok
            ],
            ok: ok)
    }
}
