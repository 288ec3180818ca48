@_spi(Backend) import DurableTask
import Foundation

/// `replay`: how long a restarted worker takes to replay a large fan-out history (the cold-replay target).
///
/// The core has no public "replay this history" entry point, and a *finished* instance is never
/// replayed by a worker (nothing more happens to it). So the measure is built from the public API:
///
/// 1. Setup, not timed: a worker runs ``WordCountFanOutThenWait`` with N activities. After the fan-in
///    the instance records its total as custom status and waits for an external event, so it stays
///    running with a complete fan-out history (N `taskScheduled` + N `taskCompleted` + a few).
///    The worker is then stopped.
/// 2. `open_seconds`: a new `SQLiteBackend` is opened on the file (no integrity check).
/// 3. `history_load_seconds`: `getOrchestrationHistory` on that fresh backend — reading and decoding
///    the history alone.
/// 4. `replay_seconds`: the backend is reopened again (so SQLite's page cache is cold for this
///    connection too), a new worker starts, the event is raised and the benchmark waits for the
///    instance to complete. The new worker's cache is empty, so this episode must load the whole
///    history, replay it through the orchestrator, apply the event and commit the completion. The
///    worker's `eventsReplayed` counter confirms the whole history was replayed.
///
/// What is not cold: the operating system's file cache (the file was just written; dropping it
/// needs root) and the process itself (Swift type metadata is already loaded). With the in-memory
/// backend steps 2 and 4's reopen are no-ops: only the worker is new.
struct ReplayBenchmark {
    let choice: BackendChoice
    let items: Int
    let repeats: Int
    let common: CommonOptions

    /// Reads `--backend` (default `sqlite`), `--sync`, `--items` (default 100,000) and `--repeat`.
    init(_ arguments: inout Arguments) throws {
        choice = try BackendChoice(&arguments, defaultKind: .sqlite)
        common = try CommonOptions(&arguments)
        items = try arguments.int("items", default: 100_000)
        repeats = try arguments.int("repeat", default: 1)
        try arguments.checkAllUsed()
    }

    /// Runs setup and measures, `repeats` times.
    /// - Throws: ``BenchError`` when a result is wrong; backend and client errors.
    func run() async throws {
        var replays: [Double] = []
        for index in 1...repeats {
            replays.append(try await runOnce(index: index))
        }
        if repeats > 1 {
            let sorted = replays.sorted()
            print(
                "\(choice.kind.rawValue)/\(choice.syncLabel) replay items=\(grouped(items)) summary of \(repeats) runs: "
                    + String(format: "best %.3f s, median %.3f s", sorted.first ?? 0, median(replays)))
            printJSON([
                ("mode", .string("replay-summary")), ("backend", .string(choice.kind.rawValue)), ("sync", .string(choice.syncLabel)),
                ("items", .int(items)), ("runs", .int(repeats)),
                ("best_replay_seconds", .double(sorted.first ?? 0)), ("median_replay_seconds", .double(median(replays)))
            ])
        }
    }

    private func runOnce(index: Int) async throws -> Double {
        let store = try BenchStore(choice)
        do {
            let expected = Corpus.expectedTotal(0..<items)

            // 1. Setup: fan out and fan in, then leave the instance waiting.
            let first = RunningWorker(backend: store.backend, common: common)
            let setupStart = ContinuousClock.now
            let id = try await DurableTaskClient(backend: store.backend).scheduleNewOrchestration(WordCountFanOutThenWait.self, input: items)
            try await waitForFanIn(id, backend: store.backend, expected: expected)
            let setupSeconds = seconds(since: setupStart)
            await first.stop()

            // 2–3. A fresh backend: open, then read the history alone.
            var start = ContinuousClock.now
            try await store.reopen()
            let openSeconds = seconds(since: start)
            start = ContinuousClock.now
            let history = try await store.backend.getOrchestrationHistory(instanceID: id)
            let historySeconds = seconds(since: start)
            let historyCount = history.count

            // 4. Another fresh backend and a new worker: the event forces a full replay.
            try await store.reopen()
            Memory.resetPeak()
            let rssBefore = Memory.currentRSS()
            let second = RunningWorker(backend: store.backend, common: common)
            let client = DurableTaskClient(backend: store.backend)
            start = ContinuousClock.now
            try await client.raiseEvent(id, name: WordCountFanOutThenWait.finishEvent, data: 0)
            let total = try await client.waitForCompletion(WordCountFanOutThenWait.self, instanceID: id, timeout: common.timeout)
            let replaySeconds = seconds(since: start)
            let peak = Memory.peakRSS()
            let statistics = second.worker.statistics
            await second.stop()
            let databaseBytes = store.fileBytes()
            await store.dispose()
            try check(total, expected: expected, what: "instance \(id) after the cold replay")
            guard statistics.eventsReplayed >= historyCount else {
                throw BenchError(
                    "the new worker replayed \(statistics.eventsReplayed) events, fewer than the \(historyCount) in history: it did not replay cold")
            }

            print(
                "\(choice.kind.rawValue)/\(choice.syncLabel) replay items=\(grouped(items)) run \(index)/\(repeats): "
                    + "\(grouped(historyCount)) history events; "
                    + String(format: "open %.3f s, history load %.3f s, cold replay to completion %.3f s", openSeconds, historySeconds, replaySeconds)
                    + " (\(grouped(statistics.eventsReplayed)) events replayed, \(statistics.episodes) episode); "
                    + String(format: "setup fan-out %.3f s", setupSeconds)
                    + (databaseBytes > 0 ? ", database \(mebibytes(databaseBytes))" : "") + " — result exact")
            printJSON([
                ("mode", .string("replay")), ("backend", .string(choice.kind.rawValue)), ("sync", .string(choice.syncLabel)),
                ("items", .int(items)), ("run", .int(index)), ("history_events", .int(historyCount)),
                ("open_seconds", .double(openSeconds)), ("history_load_seconds", .double(historySeconds)),
                ("replay_seconds", .double(replaySeconds)),
                ("replay_events_per_s", .double(Double(statistics.eventsReplayed) / replaySeconds)),
                ("setup_seconds", .double(setupSeconds)), ("peak_rss_bytes", .int(peak)),
                ("rss_growth_bytes", .int(max(0, peak - rssBefore))), ("episodes", .int(statistics.episodes)),
                ("events_replayed", .int(statistics.eventsReplayed)), ("database_bytes", .int(databaseBytes))
            ])
            return replaySeconds
        } catch {
            await store.dispose()
            throw error
        }
    }

    /// Polls until the instance reports its fan-in total as custom status (setup only, not timed).
    /// The client has no "wait for custom status", and this phase is not measured, so a short sleep loop is fine.
    private func waitForFanIn(_ id: String, backend: any Backend, expected: Int) async throws {
        let deadline = ContinuousClock.now + common.timeout
        while true {
            guard let metadata = try await backend.getOrchestrationMetadata(instanceID: id) else {
                throw BenchError("instance \(id) disappeared during setup")
            }
            if metadata.status.isTerminal {
                throw BenchError(
                    "instance \(id) ended during setup with status \(metadata.status.rawValue): \(metadata.failure.map { "\($0)" } ?? "no failure details")")
            }
            if let total = try metadata.customStatus(as: Int.self) {
                try check(total, expected: expected, what: "instance \(id) fan-in")
                return
            }
            guard ContinuousClock.now < deadline else { throw BenchError("instance \(id) did not fan in within \(common.timeout)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
