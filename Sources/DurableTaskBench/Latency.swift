import DurableTask
import Foundation

/// `latency`: one-activity orchestrations one after another; the time from scheduling an instance to
/// holding its result, as p50/p99/max.
///
/// Sequential on purpose: this measures how long one request waits (wake-ups, commits, the two
/// episodes and one activity an instance needs), not throughput. A few warm-up instances run first
/// and are not counted, so the figures do not include first-use costs (type metadata, statement
/// preparation, the first pages of a new file).
struct LatencyBenchmark {
    let choice: BackendChoice
    let count: Int
    let warmUp: Int
    let common: CommonOptions

    /// Reads `--backend`, `--sync`, `--count` (default 1,000) and `--warmup` (default 20).
    init(_ arguments: inout Arguments) throws {
        choice = try BackendChoice(&arguments)
        common = try CommonOptions(&arguments)
        count = try arguments.int("count", default: 1_000)
        warmUp = try arguments.int("warmup", default: 20)
        try arguments.checkAllUsed()
    }

    /// Runs the instances and prints the percentiles.
    /// - Throws: ``BenchError`` when a result is wrong; backend and client errors.
    func run() async throws {
        let store = try BenchStore(choice)
        let worker = RunningWorker(backend: store.backend, common: common)
        let client = DurableTaskClient(backend: store.backend)
        do {
            Memory.resetPeak()
            var samples: [Double] = []
            samples.reserveCapacity(count)
            let wall = ContinuousClock.now
            for index in 0..<(warmUp + count) {
                let start = ContinuousClock.now
                let id = try await client.scheduleNewOrchestration(SingleWordCount.self, input: index)
                let words = try await client.waitForCompletion(SingleWordCount.self, instanceID: id, timeout: common.timeout)
                let elapsed = seconds(since: start)
                try check(words, expected: Corpus.wordCount(index), what: "instance \(id)")
                if index >= warmUp { samples.append(elapsed * 1_000) }
            }
            let total = seconds(since: wall)
            let statistics = worker.worker.statistics
            await worker.stop()
            await store.dispose()

            let sorted = samples.sorted()
            let p50 = quantile(sorted, 0.50), p99 = quantile(sorted, 0.99), maximum = sorted.last ?? 0
            let mean = samples.reduce(0, +) / Double(max(1, samples.count))
            print(
                "\(choice.kind.rawValue)/\(choice.syncLabel) latency over \(count) one-activity orchestrations (after \(warmUp) warm-up): "
                    + String(format: "p50 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms", p50, p99, maximum, mean)
                    + ", \(statistics.episodes) episodes — results exact")
            printJSON([
                ("mode", .string("latency")), ("backend", .string(choice.kind.rawValue)), ("sync", .string(choice.syncLabel)),
                ("count", .int(count)), ("p50_ms", .double(p50)), ("p99_ms", .double(p99)), ("max_ms", .double(maximum)),
                ("mean_ms", .double(mean)), ("seconds", .double(total)), ("peak_rss_bytes", .int(Memory.peakRSS())),
                ("episodes", .int(statistics.episodes)), ("events_replayed", .int(statistics.eventsReplayed))
            ])
        } catch {
            await worker.stop()
            await store.dispose()
            throw error
        }
    }
}
