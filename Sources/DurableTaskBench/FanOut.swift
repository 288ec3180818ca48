import DurableTask
import Foundation

/// `fanout`: one word-count fan-out of N activities in one orchestration (`--items N`), or the seeds'
/// shape (`--iterations I --parallel P --orchestrations O`); optionally repeated (`--repeat R`).
///
/// Each run gets a fresh backend (a new temp file for SQLite) and a fresh worker, so runs do not
/// share caches or database pages; the time is from scheduling to the last result, with the worker
/// already running and idle.
struct FanOutBenchmark {
    /// What one run schedules.
    enum Shape {
        /// One orchestration fanning out to `items` activities.
        case single(items: Int)
        /// `orchestrations` instances at once, each `iterations` rounds of `parallel` activities.
        case rounds(iterations: Int, parallel: Int, orchestrations: Int)

        /// Activities per run.
        var activities: Int {
            switch self {
            case .single(let items): return items
            case .rounds(let iterations, let parallel, let orchestrations): return iterations * parallel * orchestrations
            }
        }
    }

    let choice: BackendChoice
    let shape: Shape
    let repeats: Int
    let common: CommonOptions

    /// Reads the mode's options.
    /// - Throws: ``BenchError`` for a missing or contradictory shape.
    init(_ arguments: inout Arguments) throws {
        choice = try BackendChoice(&arguments)
        common = try CommonOptions(&arguments)
        repeats = try arguments.int("repeat", default: 1)
        let roundsGiven = ["iterations", "parallel", "orchestrations"].filter { arguments.has($0) }
        if roundsGiven.isEmpty {
            shape = .single(items: try arguments.int("items", default: 1_000))
        } else {
            guard !arguments.has("items") else {
                throw BenchError("--items and --iterations/--parallel/--orchestrations are different shapes; give one")
            }
            shape = .rounds(
                iterations: try arguments.int("iterations", default: 10),
                parallel: try arguments.int("parallel", default: 10),
                orchestrations: try arguments.int("orchestrations", default: 10))
        }
        try arguments.checkAllUsed()
    }

    /// The figures of one run.
    struct Run {
        var seconds: Double
        var itemsPerSecond: Double
        var peakRSS: Int
        var rssGrowth: Int
        var statistics: DurableTaskWorker.Statistics
        var databaseBytes: Int
    }

    /// Runs the benchmark `repeats` times, printing each run and, when repeated, a summary.
    /// - Throws: ``BenchError`` when a result is wrong; backend and client errors.
    func run() async throws {
        var runs: [Run] = []
        for index in 1...repeats {
            let run = try await runOnce()
            runs.append(run)
            report(run, index: index)
        }
        if repeats > 1 { summarize(runs) }
    }

    private var label: String {
        switch shape {
        case .single(let items): return "fanout items=\(grouped(items))"
        case .rounds(let i, let p, let o): return "rounds iterations=\(i) parallel=\(p) orchestrations=\(o) (\(grouped(shape.activities)) activities)"
        }
    }

    private func runOnce() async throws -> Run {
        let store = try BenchStore(choice)
        let worker = RunningWorker(backend: store.backend, common: common)
        let client = common.client(store.backend)
        do {
            // Reset the peak, so the figures belong to this run and not to an earlier one.
            Memory.resetPeak()
            let rssBefore = Memory.currentRSS()
            let start = ContinuousClock.now
            switch shape {
            case .single(let items):
                let id = try await client.scheduleNewOrchestration(WordCountFanOut.self, input: items)
                let total = try await client.waitForCompletion(WordCountFanOut.self, instanceID: id, timeout: common.timeout)
                try check(total, expected: Corpus.expectedTotal(0..<items), what: "instance \(id)")
            case .rounds(let iterations, let parallel, let orchestrations):
                // A task per instance, as a service has one per request. Not children of one task
                // group: the runtime keeps a group's children in a list that each finished child is
                // searched for, which cost a tenth of the CPU time at 10,000 children finishing in the
                // order they started.
                let requests = (0..<orchestrations).map { index in
                    let input = RoundsInput(iterations: iterations, parallel: parallel, offset: index * iterations * parallel)
                    return Task {
                        let id = try await client.scheduleNewOrchestration(WordCountRounds.self, input: input)
                        let total = try await client.waitForCompletion(WordCountRounds.self, instanceID: id, timeout: common.timeout)
                        try check(total, expected: Corpus.expectedTotal(WordCountRounds.indices(input)), what: "instance \(id)")
                    }
                }
                // All of them answer, even after a failure: none is left running into the next run.
                var failure: (any Error)?
                for request in requests {
                    do { try await request.value } catch { failure = failure ?? error }
                }
                if let failure { throw failure }
            }
            let elapsed = seconds(since: start)
            let peak = Memory.peakRSS()
            let run = Run(
                seconds: elapsed, itemsPerSecond: Double(shape.activities) / elapsed, peakRSS: peak,
                rssGrowth: max(0, peak - rssBefore), statistics: worker.worker.statistics, databaseBytes: store.fileBytes())
            await worker.stop()
            await store.dispose()
            return run
        } catch {
            await worker.stop()
            await store.dispose()
            throw error
        }
    }

    private func report(_ run: Run, index: Int) {
        let items = shape.activities
        let perItem = Double(run.rssGrowth) / Double(items)
        print(
            "\(choice.kind.rawValue)/\(choice.syncLabel) \(label) run \(index)/\(repeats): "
                + String(format: "%.3f s", run.seconds) + ", \(grouped(run.itemsPerSecond)) items/s, "
                + "peak RSS \(mebibytes(run.peakRSS)) (+\(mebibytes(run.rssGrowth)), \(grouped(perItem)) B/item), "
                + "\(run.statistics.episodes) episodes, \(grouped(run.statistics.eventsReplayed)) events replayed, "
                + "\(grouped(run.statistics.eventsApplied)) applied"
                + (run.databaseBytes > 0 ? ", database \(mebibytes(run.databaseBytes))" : "") + " — result exact")
        var fields: [(String, JSONValue)] = [
            ("mode", .string("fanout")), ("backend", .string(choice.kind.rawValue)), ("sync", .string(choice.syncLabel)),
            ("items", .int(items))
        ]
        if case .rounds(let i, let p, let o) = shape {
            fields += [
                ("iterations", .int(i)), ("parallel", .int(p)), ("orchestrations", .int(o)),
                ("activities_per_s", .double(run.itemsPerSecond))
            ]
        }
        fields += [
            ("run", .int(index)), ("seconds", .double(run.seconds)), ("items_per_s", .double(run.itemsPerSecond)),
            ("peak_rss_bytes", .int(run.peakRSS)), ("rss_growth_bytes", .int(run.rssGrowth)),
            ("rss_growth_bytes_per_item", .double(perItem)), ("episodes", .int(run.statistics.episodes)),
            ("events_replayed", .int(run.statistics.eventsReplayed)), ("events_applied", .int(run.statistics.eventsApplied)),
            ("activities_executed", .int(run.statistics.activitiesExecuted)), ("database_bytes", .int(run.databaseBytes))
        ]
        printJSON(fields)
    }

    private func summarize(_ runs: [Run]) {
        let rates = runs.map(\.itemsPerSecond)
        let best = rates.max() ?? 0
        let middle = median(rates)
        let bestSeconds = runs.map(\.seconds).min() ?? 0
        let medianSeconds = median(runs.map(\.seconds))
        print(
            "\(choice.kind.rawValue)/\(choice.syncLabel) \(label) summary of \(runs.count) runs: best \(grouped(best)) items/s "
                + String(format: "(%.3f s)", bestSeconds) + ", median \(grouped(middle)) items/s " + String(format: "(%.3f s)", medianSeconds))
        printJSON([
            ("mode", .string("fanout-summary")), ("backend", .string(choice.kind.rawValue)), ("sync", .string(choice.syncLabel)),
            ("items", .int(shape.activities)), ("runs", .int(runs.count)),
            ("best_items_per_s", .double(best)), ("median_items_per_s", .double(middle)),
            ("best_seconds", .double(bestSeconds)), ("median_seconds", .double(medianSeconds)),
            ("max_peak_rss_bytes", .int(runs.map(\.peakRSS).max() ?? 0))
        ])
    }
}

/// Throws unless `actual == expected`: a benchmark that returns a wrong answer measures nothing.
func check(_ actual: Int, expected: Int, what: String) throws {
    guard actual == expected else {
        throw BenchError("wrong result for \(what): got \(actual) words, expected \(expected)")
    }
}
