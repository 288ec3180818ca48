@_spi(Backend) import DurableTask
import DurableTaskSQLite
import Foundation

/// P processes open one new database file at the same instant, as a worker and a client started in
/// two terminals at once do; every open must succeed and the file must be one database.
struct OpenRaceTorture {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    func run() async throws {
        let runs = arguments.int("runs", 100)
        let processes = arguments.int("processes", 2)
        let directory = try runDirectory(arguments, "open-race")
        defer { if !arguments.flag("keep") { try? FileManager.default.removeItem(at: directory) } }
        let started = Date()
        var failedRuns = 0
        var failedOpens = 0
        var problems: [String] = []
        for run in 0..<runs {
            let db = directory.appendingPathComponent("hub-\(run).sqlite").path
            let log = directory.appendingPathComponent("open-\(run).log").path
            // Spawning takes longer than opening: the children wait for a common start instant.
            let at = Date().addingTimeInterval(0.15).timeIntervalSince1970
            let children = try (0..<processes).map { index in
                try ChildProcess(arguments: ["child-open", "--db", db, "--id", "\(index)", "--at", "\(at)"], stderrPath: log)
            }
            var failures = 0
            for child in children {
                if !child.wait(timeout: 60) { child.kill() }
                if child.exitStatus != 0 { failures += 1 }
            }
            if failures > 0 {
                failedRuns += 1
                failedOpens += failures
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if problems.count < 5 { problems.append("run \(run): " + text.trimmingCharacters(in: .whitespacesAndNewlines)) }
            } else {
                // Both wrote through their own connection into the one file.
                let backend = try SQLiteBackend(path: db)
                let found = try await backend.queryOrchestrations(OrchestrationQuery(instanceIDPrefix: "open-")).instances.count
                await backend.close()
                if found != processes {
                    failedRuns += 1
                    problems.append("run \(run): \(found) of \(processes) instances in the file")
                }
            }
            for suffix in ["", "-wal", "-shm", "-dtlock"] { try? FileManager.default.removeItem(atPath: db + suffix) }
        }
        let ok = failedRuns == 0
        report(
            "simultaneous opens: \(runs) runs of \(processes) processes on a new file: \(failedRuns) runs failed "
                + "(\(failedOpens) failed opens), " + String(format: "%.1f s", Date().timeIntervalSince(started))
                + (problems.isEmpty ? "" : "\nproblems:\n  " + problems.joined(separator: "\n  ")),
            [
                "mode": "open-race", "runs": runs, "processes": processes, "failed_runs": failedRuns,
                "failed_opens": failedOpens, "ok": ok
            ],
            ok: ok)
    }
}

extension ChildModes {
    /// Waits for `--at` (seconds since 1970), opens the database, creates one instance and leases, as a
    /// client and a worker starting together would.
    static func open(_ arguments: Arguments) async throws {
        let at = Date(timeIntervalSince1970: arguments.double("at", 0))
        if at > Date() { usleep(UInt32(at.timeIntervalSinceNow * 1_000_000)) }
        let backend = try SQLiteBackend(path: arguments.string("db", ""))
        let id = arguments.string("id", "0")
        try await backend.createOrchestrationInstance(
            NewOrchestrationInstance(
                instanceID: "open-\(id)",
                startEvent: HistoryEvent(
                    timestamp: Date(),
                    kind: .executionStarted(
                        name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil))))
        _ = try await backend.getOrchestrationWorkItem(owner: "open-\(id)", leaseDuration: .seconds(1))
        await backend.close()
    }
}
