import DurableTask

/// What a word count returns: one line per document, and the total of those that could be read.
struct WordCountReport: Codable, Sendable {
    /// The outcome for one document: a count, or the reason it could not be counted.
    struct Line: Codable, Sendable {
        /// The document's name.
        var name: String
        /// The number of words; `nil` when the document failed.
        var words: Int?
        /// Why the document could not be counted; `nil` when it was.
        var error: String?
    }

    /// One line per document, in input order.
    var lines: [Line]
    /// The sum of the counted documents.
    var total: Int

    /// How many documents could not be counted.
    var failureCount: Int { lines.count(where: { $0.error != nil }) }
}

/// The orchestrator: fans out one ``CountWords`` activity per document, then fans in by summing.
///
/// This code is replayed from the instance's history after a crash or restart, so it only does
/// deterministic things: schedule activities, await them, add numbers, set the custom status. Reading
/// files happens in the activity.
struct WordCountOrchestrator: Orchestrator {
    /// Counts every document; a document that fails is reported in its line and left out of the total
    /// rather than failing the whole count.
    func run(context: OrchestrationContext, input documents: [Document]) async throws -> WordCountReport {
        context.logger.info("counting \(documents.count) documents")

        // Fan out: schedule every activity before awaiting any, so they all run concurrently.
        let futures = documents.map { context.callActivity(CountWords.self, input: $0) }
        context.setCustomStatus("0/\(futures.count) counted")

        // Fan in. One whenAllSettled over all futures would give the same result; awaiting them in
        // about ten chunks gives the orchestrator points in between to publish its progress.
        // whenAllSettled (rather than whenAll) keeps going past a failed document.
        var outcomes: [Result<Int, any Error>] = []
        let chunkSize = max(1, futures.count / 10)
        for start in stride(from: 0, to: futures.count, by: chunkSize) {
            let chunk = futures[start..<min(start + chunkSize, futures.count)]
            outcomes += await context.whenAllSettled(Array(chunk))
            // Later chunks may have finished too; count them all so the status is current.
            context.setCustomStatus("\(futures.count(where: \.isCompleted))/\(futures.count) counted")
        }

        var report = WordCountReport(lines: [], total: 0)
        for (document, outcome) in zip(documents, outcomes) {
            switch outcome {
            case .success(let words):
                report.lines.append(.init(name: document.name, words: words))
                report.total += words
            case .failure(let error as CancellationError):
                // Not the document's fault: the worker is unloading this instance (it is stopping).
                // Nothing is recorded; the next worker replays the history and carries on.
                throw error
            case .failure(let error as TaskFailedError):
                report.lines.append(.init(name: document.name, error: error.details.message))
            case .failure(let error):
                report.lines.append(.init(name: document.name, error: "\(error)"))
            }
        }
        context.logger.info("counted \(report.total) words in \(documents.count - report.failureCount) documents")
        return report
    }
}
