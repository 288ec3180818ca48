import CSQLite
@_spi(Backend) import DurableTask
import DurableTaskSQLite
import Foundation

/// What the checks found in one database after a torture run.
struct Verdict {
    var wrongResults = 0
    var notCompleted = 0
    var duplicateCompletions = 0
    var missingCompletions = 0
    var duplicateSchedules = 0
    var completedMoreThanOnce = 0
    /// Histories replayed through the engine against the unchanged orchestrator.
    var replayed = 0
    /// Replays that reported nondeterminism or a different result: must stay 0.
    var falsePositives = 0
    /// Instances left out of the replay check (see ``Verification/replayEveryHistory``).
    var replaySkipped = 0
    var problems: [String] = []

    var isClean: Bool {
        wrongResults == 0 && notCompleted == 0 && duplicateCompletions == 0 && missingCompletions == 0
            && duplicateSchedules == 0 && completedMoreThanOnce == 0 && falsePositives == 0
    }

    mutating func problem(_ text: String) {
        if problems.count < 20 { problems.append(text) }
    }
}

enum Verification {
    /// Checks a finished fan-out instance: exact result, each task scheduled once and its result
    /// recorded once, the orchestration completed once.
    static func checkFanOut(backend: any Backend, instanceID: String, items: Int, into verdict: inout Verdict) async throws {
        try await checkInstance(
            backend: backend, instanceID: instanceID, expected: items * items, tasks: items,
            orchestrator: OrchestratorEntry(TortureFanOut()), into: &verdict)
    }

    /// Checks a finished ``TortureRounds`` instance the same way.
    static func checkRounds(backend: any Backend, instanceID: String, input: TortureRounds.Input, into verdict: inout Verdict) async throws {
        try await checkInstance(
            backend: backend, instanceID: instanceID, expected: TortureRounds.expected(input),
            tasks: input.iterations * input.parallel, orchestrator: OrchestratorEntry(TortureRounds()), into: &verdict)
    }

    /// The checks of a finished instance whose activities are numbered 0..<tasks: exact result, each
    /// task scheduled once and its result recorded once, the orchestration completed once, and a replay
    /// of its history against the unchanged code with no false nondeterminism report.
    private static func checkInstance(
        backend: any Backend, instanceID: String, expected: Int, tasks: Int, orchestrator: OrchestratorEntry,
        into verdict: inout Verdict
    ) async throws {
        guard let metadata = try await backend.getOrchestrationMetadata(instanceID: instanceID), metadata.status == .completed else {
            verdict.notCompleted += 1
            verdict.problem("\(instanceID) did not complete")
            return
        }
        let output = try metadata.output(as: Int.self)
        if output != expected {
            verdict.wrongResults += 1
            verdict.problem("\(instanceID): result \(output), expected \(expected)")
        }
        let history = try await backend.getOrchestrationHistory(instanceID: instanceID)
        var scheduled: [Int: Int] = [:]
        var completed: [Int: Int] = [:]
        var executionCompleted = 0
        for event in history {
            switch event.kind {
            case .taskScheduled: scheduled[event.eventID, default: 0] += 1
            case let .taskCompleted(id, _), let .taskFailed(id, _): completed[id, default: 0] += 1
            case .executionCompleted: executionCompleted += 1
            default: break
            }
        }
        let doubleScheduled = scheduled.values.filter { $0 > 1 }.count
        let doubleCompleted = completed.values.filter { $0 > 1 }.count
        let missing = (0..<tasks).filter { completed[$0] == nil }.count
        verdict.duplicateSchedules += doubleScheduled
        verdict.duplicateCompletions += doubleCompleted
        verdict.missingCompletions += missing
        if executionCompleted != 1 {
            verdict.completedMoreThanOnce += 1
            verdict.problem("\(instanceID): executionCompleted appears \(executionCompleted) times")
        }
        // The unchanged code must replay the recorded history to the same result, with no false alarm.
        let replay = ReplayEngine.execute(
            instanceID: instanceID, orchestrators: [orchestrator], oldEvents: history, newEvents: [], now: Date())
        verdict.replayed += 1
        if replay.status != .completed || replay.output != metadata.output || !replay.activities.isEmpty {
            verdict.falsePositives += 1
            verdict.problem("\(instanceID): replay against unchanged code gave \(replay.status) \(replay.failure?.message ?? "")")
        }
        // And the check the replayer (DurableTaskTesting) makes before a deploy: no false report either.
        let check = ReplayEngine.check(instanceID: instanceID, orchestrators: [orchestrator], history: history)
        if check.nondeterminism != nil || check.problem != nil {
            verdict.falsePositives += 1
            verdict.problem("\(instanceID): the replayer reported \(check.nondeterminism?.message ?? check.problem?.message ?? "")")
        }
        if doubleScheduled + doubleCompleted + missing > 0 {
            verdict.problem("\(instanceID): \(doubleScheduled) tasks scheduled twice, \(doubleCompleted) results recorded twice, \(missing) missing")
        }
    }

    /// The check the replayer (DurableTaskTesting) makes before a deploy, over every instance in the
    /// database, whatever its status: each history replayed against the orchestrators the workers
    /// registered must report neither nondeterminism nor a problem.
    /// - Parameter skipping: orchestrators not replayed, because their code kills the process on purpose
    ///   (a replay runs the orchestrator again); counted in `verdict.replaySkipped`.
    static func replayEveryHistory(
        backend: any Backend, orchestrators: [OrchestratorEntry], skipping: Set<String> = [], into verdict: inout Verdict
    ) async throws {
        var query = OrchestrationQuery(pageSize: 500)
        repeat {
            let page = try await backend.queryOrchestrations(query)
            for instance in page.instances {
                if skipping.contains(instance.name) {
                    verdict.replaySkipped += 1
                    continue
                }
                let history = try await backend.getOrchestrationHistory(instanceID: instance.instanceID)
                let check = ReplayEngine.check(instanceID: instance.instanceID, orchestrators: orchestrators, history: history)
                verdict.replayed += 1
                if check.nondeterminism != nil || check.problem != nil {
                    verdict.falsePositives += 1
                    verdict.problem(
                        "\(instance.instanceID): the replayer reported \(check.nondeterminism?.message ?? check.problem?.message ?? "")")
                }
            }
            query.continuationToken = page.continuationToken
        } while query.continuationToken != nil
    }

    /// `PRAGMA integrity_check` on the file, through its own connection.
    static func integrityCheck(path: String) -> String {
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let db else {
            return "cannot open \(path)"
        }
        defer { sqlite3_close(db) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &statement, nil) == SQLITE_OK, let statement else {
            return String(cString: sqlite3_errmsg(db))
        }
        defer { sqlite3_finalize(statement) }
        var lines: [String] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            if let text = sqlite3_column_text(statement, 0) { lines.append(String(cString: text)) }
        }
        return lines.joined(separator: "; ")
    }
}
