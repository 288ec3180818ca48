import DurableTask
import DurableTaskSQLite
import Foundation

/// User code that kills the process: an orchestrator and an activity that call `fatalError`, among
/// ordinary instances. A worker process is restarted after each crash until everything has finished;
/// the crashing items must be parked after `--max-deliveries` deliveries while the others complete.
///
///   DurableTaskTorture poison [--max-deliveries 5] [--others 20] [--max-restarts 30]
struct PoisonTorture {
    let arguments: Arguments

    init(_ arguments: Arguments) { self.arguments = arguments }

    func run() async throws {
        let maxDeliveries = arguments.int("max-deliveries", 5)
        let others = arguments.int("others", 20)
        let maxRestarts = arguments.int("max-restarts", 30)
        // The children crash on purpose: Swift's crash backtracer would spend a second per crash and
        // fill the log with backtraces of the expected fatalError.
        setenv("SWIFT_BACKTRACE", "enable=no", 1)
        let directory = try runDirectory(arguments, "poison")
        defer { if !arguments.flag("keep") { try? FileManager.default.removeItem(at: directory) } }
        let db = directory.appendingPathComponent("hub.sqlite").path
        let started = Date()

        let backend = try SQLiteBackend(path: db)
        let client = DurableTaskClient(backend: backend)
        try await client.scheduleNewOrchestration(name: CrashingOrchestrator.name, input: 0, instanceID: "crashing-orchestrator")
        try await client.scheduleNewOrchestration(name: CallsCrashingActivity.name, input: 0, instanceID: "crashing-activity")
        try await client.scheduleNewOrchestration(name: ParentOfCrashingChild.name, input: 0, instanceID: "crashing-child-parent")
        for i in 0..<others {
            try await client.scheduleNewOrchestration(name: PoisonFanOut.name, input: i, instanceID: "other-\(i)")
        }

        var crashes = 0
        var lives = 0
        var finishedCleanly = false
        let childArguments = [
            "child-poison", "--db", db, "--max-deliveries", "\(maxDeliveries)",
            "--lease-ms", arguments.string("lease-ms", "1000")
        ]
        while lives < maxRestarts {
            lives += 1
            let child = try ChildProcess(arguments: childArguments, stderrPath: directory.appendingPathComponent("child.log").path)
            guard child.wait(timeout: 120) else {
                child.kill()
                break
            }
            if child.exitStatus == 0 && child.process.terminationReason == .exit {
                finishedCleanly = true
                break
            }
            crashes += 1
        }

        var problems: [String] = []
        let orchestration = try await client.getInstance("crashing-orchestrator")
        // Parked on the first lease past the limit; one more delivery per other item that crashed the
        // process for the first time while this one ran (see `maxDeliveryCount`).
        let deliveries = orchestration?.failure?.message.split(separator: " ").drop { $0 != "after" }.dropFirst().first.flatMap { Int($0) } ?? 0
        let poisonedOrchestration =
            orchestration?.status == .failed
            && orchestration?.failure?.errorType == "DurableTaskError.poisoned"
            && (maxDeliveries + 1...maxDeliveries + 3).contains(deliveries)
        if !poisonedOrchestration {
            problems.append("crashing orchestrator: \(String(describing: orchestration?.status)) \(String(describing: orchestration?.failure))")
        }
        let activity = try await client.getInstance("crashing-activity")
        let activityOutput = (try? activity?.output(as: String.self)) ?? ""
        let poisonedActivity = activity?.status == .completed && activityOutput.contains("poisoned")
        if !poisonedActivity {
            let kinds = (try? await client.getHistory("crashing-activity"))?.map(\.kindName).joined(separator: " ") ?? "-"
            problems.append(
                "crashing activity: \(String(describing: activity?.status)) \(activityOutput) \(String(describing: activity?.failure)); history: \(kinds)")
        }
        let parent = try await client.getInstance("crashing-child-parent")
        let parentOutput = (try? parent?.output(as: String.self)) ?? ""
        let parentTold = parent?.status == .completed && parentOutput.contains("poisoned")
        if !parentTold { problems.append("parent of crashing child: \(String(describing: parent?.status)) \(parentOutput)") }
        var othersCompleted = 0
        for i in 0..<others {
            let metadata = try await client.getInstance("other-\(i)")
            if metadata?.status == .completed, (try? metadata?.output(as: Int.self)) == PoisonFanOut.expected(i) {
                othersCompleted += 1
            } else {
                problems.append("other-\(i): \(String(describing: metadata?.status)) \(String(describing: metadata?.failure))")
            }
        }
        // Every history the run produced, parked ones included, replays against the code the workers ran,
        // except the crashing orchestrator's: replaying it would run its fatalError in this process.
        var verdict = Verdict()
        try await Verification.replayEveryHistory(
            backend: backend,
            orchestrators: [
                OrchestratorEntry(CallsCrashingActivity()), OrchestratorEntry(ParentOfCrashingChild()), OrchestratorEntry(PoisonFanOut())
            ],
            skipping: [CrashingOrchestrator.name], into: &verdict)
        problems += verdict.problems
        await backend.close()
        let ok =
            finishedCleanly && poisonedOrchestration && poisonedActivity && parentTold && othersCompleted == others
            && verdict.falsePositives == 0
        report(
            "poison torture: \(crashes) crashes in \(lives) lives; orchestrator parked: \(poisonedOrchestration), "
                + "activity parked: \(poisonedActivity), parent told: \(parentTold), \(othersCompleted)/\(others) others completed, "
                + "\(verdict.replayed) histories replayed with \(verdict.falsePositives) false nondeterminism reports "
                + "(\(verdict.replaySkipped) of the crashing orchestrator not replayed), "
                + String(format: "%.1f s", Date().timeIntervalSince(started))
                + (problems.isEmpty ? "" : "\nproblems: " + problems.prefix(10).joined(separator: "\n  ")),
            [
                "mode": "poison", "crashes": crashes, "lives": lives, "finished": finishedCleanly,
                "poisoned_orchestration": poisonedOrchestration, "poisoned_activity": poisonedActivity,
                "parent_told": parentTold, "others": others, "others_completed": othersCompleted,
                "histories_replayed": verdict.replayed, "replay_false_positives": verdict.falsePositives,
                "replay_skipped": verdict.replaySkipped, "ok": ok
            ],
            ok: ok)
    }
}

/// Crashes the process whenever it runs.
struct CrashingOrchestrator: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        fatalError("CrashingOrchestrator crashes the process on purpose")
    }
}

/// Crashes the process whenever it runs.
struct CrashingActivity: Activity {
    func run(context: ActivityContext, input: Int) async throws -> Int {
        fatalError("CrashingActivity crashes the process on purpose")
    }
}

/// Calls the crashing activity and reports how it failed.
struct CallsCrashingActivity: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> String {
        do {
            _ = try await context.callActivity(CrashingActivity.self, input: input).value
            return "the crashing activity returned"
        } catch let error as TaskFailedError {
            return "caught: \(error.details.errorType): \(error.details.message)"
        }
    }
}

/// Calls the crashing orchestrator as a sub-orchestration and reports how it failed.
struct ParentOfCrashingChild: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> String {
        do {
            _ = try await context.callSubOrchestrator(CrashingOrchestrator.self, input: input).value
            return "the crashing child returned"
        } catch let error as TaskFailedError {
            return "caught: \(error.details.errorType): \(error.details.message)"
        }
    }
}

/// An ordinary small fan-out, to show other instances complete around the crashes.
struct PoisonFanOut: Orchestrator {
    static func expected(_ input: Int) -> Int { (0..<5).reduce(0) { $0 + input * 10 + $1 } }

    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        let futures = (0..<5).map { context.callActivity(PoisonWork.self, input: input * 10 + $0) }
        return try await context.whenAll(futures).reduce(0, +)
    }
}

/// Takes a moment, so crashes land while ordinary work is in flight.
struct PoisonWork: Activity {
    func run(context: ActivityContext, input: Int) async throws -> Int {
        try await Task.sleep(for: .milliseconds(20))
        return input
    }
}

extension ChildModes {
    /// A worker that runs until every instance in the file has finished (or it crashes).
    static func poisonWorker(_ arguments: Arguments) async throws {
        let backend = try SQLiteBackend(path: arguments.string("db", ""))
        var options = childWorkerOptions(arguments)
        options.maxDeliveryCount = arguments.int("max-deliveries", 5)
        let worker = DurableTaskWorker(backend: backend, options: options)
        worker.addOrchestrator(CrashingOrchestrator())
        worker.addOrchestrator(CallsCrashingActivity())
        worker.addOrchestrator(ParentOfCrashingChild())
        worker.addOrchestrator(PoisonFanOut())
        worker.addActivity(CrashingActivity())
        worker.addActivity(PoisonWork())
        let running = Task { await worker.run() }
        let client = DurableTaskClient(backend: backend)
        while true {
            let open = try await client.query(OrchestrationQuery(statuses: [.pending, .running, .suspended], pageSize: 1))
            if open.instances.isEmpty { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        running.cancel()
        await running.value
        await backend.close()
    }
}
