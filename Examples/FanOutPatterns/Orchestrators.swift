import DurableTask

// The patterns of the fan-out/fan-in doc, one orchestrator each. They only schedule, await and add:
// they are replayed from history after a restart, so everything else happens in the activities.

/// Sums the results of the items in input order.
private func tally(_ results: [ItemResult]) -> BatchResult {
    BatchResult(processed: results.count, successCount: results.count, sum: results.reduce(0) { $0 + $1.value })
}

/// Chunked processing: the items in batches of `chunkSize`, each batch a fan-out and a fan-in, so no
/// more than `chunkSize` items are in flight at once (the doc's "control parallelism").
struct ChunkedOrchestrator: Orchestrator {
    /// How many items, and how many at a time.
    struct Input: Codable, Sendable {
        /// The items are 1 to `count`.
        var count: Int
        /// The batch size.
        var chunkSize: Int
        /// How long each item pretends to take, so a batch is visibly in flight at once.
        var milliseconds = 0
    }

    func run(context: OrchestrationContext, input: Input) async throws -> BatchResult {
        var results: [ItemResult] = []
        for start in stride(from: 1, through: input.count, by: input.chunkSize) {
            let chunk = start...min(start + input.chunkSize - 1, input.count)
            let futures = chunk.map { context.callActivity(ProcessItem.self, input: WorkItem(id: $0, milliseconds: input.milliseconds)) }
            results += try await context.whenAll(futures)
        }
        return tally(results)
    }
}

/// Progress tracking: the doc's loop, one item after another, publishing "n% complete" as custom
/// status after each; the client prints it as it changes.
struct ProgressOrchestrator: Orchestrator {
    /// The custom status: how far the batch is.
    struct Progress: Codable, Sendable {
        /// Items done.
        var done: Int
        /// Items in all.
        var total: Int
        /// Whole percent done.
        var percent: Int { total == 0 ? 100 : done * 100 / total }
    }

    /// How many items, and how long each takes.
    struct Input: Codable, Sendable {
        /// The items are 1 to `count`.
        var count: Int
        /// How long each item pretends to take, so the progress can be watched.
        var milliseconds: Int
    }

    func run(context: OrchestrationContext, input: Input) async throws -> BatchResult {
        var results: [ItemResult] = []
        context.setCustomStatus(Progress(done: 0, total: input.count))
        for id in 1...input.count {
            results.append(try await context.callActivity(ProcessItem.self, input: WorkItem(id: id, milliseconds: input.milliseconds)).value)
            context.setCustomStatus(Progress(done: id, total: input.count))
        }
        return tally(results)
    }
}

/// Partial-failure handling: every item fans out; a failed item becomes a failure in the result instead
/// of failing the batch (the doc's try/catch per item).
struct PartialFailureOrchestrator: Orchestrator {
    func run(context: OrchestrationContext, input items: [WorkItem]) async throws -> BatchResult {
        let futures = items.map { context.callActivity(ProcessItem.self, input: $0) }
        // Every activity is already running; awaiting them one by one is the fan-in. `whenAllSettled`
        // would give the same outcomes as `[Result]` in one call.
        var batch = BatchResult()
        for (item, future) in zip(items, futures) {
            batch.processed += 1
            do {
                batch.sum += try await future.value.value
                batch.successCount += 1
            } catch let error as TaskFailedError {
                // Only the item's own failure is caught. Anything else, such as the CancellationError of
                // a worker unloading this instance, propagates: it is not the item's fault, nothing is
                // recorded, and the next worker replays the history and carries on.
                batch.failureCount += 1
                if batch.errors.count < 3 { batch.errors.append("item \(item.id): \(error.details.message)") }
            }
        }
        return batch
    }
}

/// Dynamic fan-out: an activity returns the work list, then the orchestrator fans out over it.
struct DynamicOrchestrator: Orchestrator {
    func run(context: OrchestrationContext, input batchID: String) async throws -> BatchResult {
        let items = try await context.callActivity(GetWorkItems.self, input: batchID).value
        let futures = items.map { context.callActivity(ProcessItem.self, input: $0) }
        return tally(try await context.whenAll(futures))
    }
}

/// A range of items, for the large-batch orchestrators.
struct ItemRange: Codable, Sendable {
    /// The first item.
    var first: Int
    /// How many.
    var count: Int
}

/// One fan-out over a whole range: for the large batch, both the doc's way (one per slice, as a
/// sub-orchestration) and in one piece (this orchestrator over all 100,000 items).
struct FanOutOrchestrator: Orchestrator {
    func run(context: OrchestrationContext, input range: ItemRange) async throws -> BatchResult {
        let futures = (range.first..<range.first + range.count).map { context.callActivity(ProcessItem.self, input: WorkItem(id: $0)) }
        return tally(try await context.whenAll(futures))
    }
}

/// A very large batch the doc's recommended way: split into slices, one sub-orchestration per slice,
/// each fanning out over its own items; the parent sums the slices.
struct SlicedOrchestrator: Orchestrator {
    /// The batch and the slice size.
    struct Input: Codable, Sendable {
        /// The items are 1 to `count`.
        var count: Int
        /// Items per sub-orchestration.
        var sliceSize: Int
    }

    func run(context: OrchestrationContext, input: Input) async throws -> BatchResult {
        let slices = stride(from: 1, through: input.count, by: input.sliceSize).map { first in
            context.callSubOrchestrator(FanOutOrchestrator.self, input: ItemRange(first: first, count: min(input.sliceSize, input.count - first + 1)))
        }
        let results = try await context.whenAll(slices)
        return BatchResult(
            processed: results.reduce(0) { $0 + $1.processed },
            successCount: results.reduce(0) { $0 + $1.successCount },
            sum: results.reduce(0) { $0 + $1.sum })
    }
}

/// A fan-in with a deadline: `allOf` makes the whole fan-in one future, raced against a durable timer.
/// If the timer wins, the orchestrator gives up and says how many items had finished; the items still
/// running are not cancelled, their results are simply never used.
struct DeadlineOrchestrator: Orchestrator {
    /// The items and the deadline.
    struct Input: Codable, Sendable {
        /// The items to process.
        var items: [WorkItem]
        /// How long to wait for all of them.
        var deadlineMilliseconds: Int
    }

    /// All results in time, or how many had finished when the deadline passed.
    struct Output: Codable, Sendable {
        /// Whether every item finished before the deadline.
        var finished: Bool
        /// How many items had finished (successfully or not) when the orchestrator stopped waiting.
        var completedItems: Int
        /// The sum of the results, when `finished`.
        var sum: Int?
    }

    func run(context: OrchestrationContext, input: Input) async throws -> Output {
        let futures = input.items.map { context.callActivity(ProcessItem.self, input: $0) }
        let all = context.allOf(futures)
        let deadline = context.createTimer(after: .milliseconds(input.deadlineMilliseconds))
        if await context.whenAny(all, deadline) == 0 {
            return Output(finished: true, completedItems: futures.count, sum: try await all.value.reduce(0) { $0 + $1.value })
        }
        return Output(finished: false, completedItems: futures.count(where: \.isCompleted))
    }
}
