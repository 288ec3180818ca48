import DurableTask

/// Counts the words of one sentence: the fan-out's unit of work, deliberately cheap so the figures
/// measure the engine and the backend rather than the activity.
struct CountWords: Activity {
    /// Splits on spaces; the corpus uses single spaces and no empty words.
    func run(context: ActivityContext, input: String) async throws -> Int {
        input.utf8.split(separator: UInt8(ascii: " ")).count
    }
}

/// The word-count fan-out/fan-in: one activity per sentence, all scheduled at once, summed.
///
/// The input is the sentence count rather than the sentences, so starting the instance does not
/// encode megabytes of input; the sentences are generated deterministically inside the orchestrator.
struct WordCountFanOut: Orchestrator {
    /// Schedules `input` activities, waits for all of them and returns the total word count.
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        let futures = (0..<input).map { context.callActivity(CountWords.self, input: Corpus.sentence($0)) }
        return try await context.whenAll(futures).reduce(0, +)
    }
}

/// The fan-out for the cold-replay measure: like ``WordCountFanOut``, but after the fan-in it waits
/// for an external event before finishing.
///
/// That keeps the instance *running* with a complete 2N-event fan-out history, so a fresh worker that
/// receives the event must load and replay all of it before it can finish the instance — a cold
/// replay triggered and timed through the public API only.
struct WordCountFanOutThenWait: Orchestrator {
    /// The event name the benchmark raises to let the instance finish.
    static let finishEvent = "finish"

    /// Fans out, records the total as custom status (so the benchmark sees the fan-in happened), then
    /// waits for ``finishEvent`` and returns the total plus the event's value.
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        let futures = (0..<input).map { context.callActivity(CountWords.self, input: Corpus.sentence($0)) }
        let total = try await context.whenAll(futures).reduce(0, +)
        context.setCustomStatus(total)
        let extra = try await context.waitForExternalEvent(Self.finishEvent, as: Int.self).value
        return total + extra
    }
}

/// The shape of the seeds' benchmark: `iterations` sequential rounds of `parallel` activities each.
struct RoundsInput: Codable, Sendable {
    /// Sequential rounds.
    var iterations: Int
    /// Activities per round, run in parallel.
    var parallel: Int
    /// Offsets the sentence indices, so concurrent orchestrations count different sentences.
    var offset: Int
}

/// Runs ``RoundsInput/iterations`` rounds of ``RoundsInput/parallel`` word counts; each round waits
/// for the previous, so this measures episode turnaround, not just throughput.
struct WordCountRounds: Orchestrator {
    /// Returns the total word count over all rounds.
    func run(context: OrchestrationContext, input: RoundsInput) async throws -> Int {
        var total = 0
        for round in 0..<input.iterations {
            let base = input.offset + round * input.parallel
            let futures = (0..<input.parallel).map { context.callActivity(CountWords.self, input: Corpus.sentence(base + $0)) }
            total += try await context.whenAll(futures).reduce(0, +)
        }
        return total
    }

    /// The sentence indices an instance with `input` counts, for the expected result.
    static func indices(_ input: RoundsInput) -> Range<Int> {
        input.offset..<(input.offset + input.iterations * input.parallel)
    }
}

/// One activity, for the schedule-to-result latency.
struct SingleWordCount: Orchestrator {
    /// Counts the words of sentence `input`.
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.callActivity(CountWords.self, input: Corpus.sentence(input)).value
    }
}
