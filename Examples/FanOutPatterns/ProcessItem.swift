import DurableTask
import Foundation
import Synchronization

/// One unit of work. Its result is `id * id`, so every total below can be checked against a formula.
struct WorkItem: Codable, Sendable {
    /// The item's number, from 1.
    var id: Int
    /// A bad record: processing it fails (the partial-failure pattern).
    var corrupt = false
    /// How long processing pretends to take.
    var milliseconds = 0
}

/// What processing one item produced.
struct ItemResult: Codable, Sendable {
    /// The item's number.
    var id: Int
    /// `id * id`.
    var value: Int
}

/// What each pattern's orchestrator returns, as the doc's `BatchResult`.
struct BatchResult: Codable, Sendable {
    /// How many items were processed, successfully or not.
    var processed = 0
    /// How many succeeded.
    var successCount = 0
    /// How many failed.
    var failureCount = 0
    /// The sum of the successful results.
    var sum = 0
    /// The first few failures, for the report.
    var errors: [String] = []
}

/// The activity: processes one item (squares its ID), failing for corrupt items.
struct ProcessItem: Activity {
    /// Thrown for a corrupt item; the orchestrator sees it as a `TaskFailedError`.
    struct CorruptItem: Error, CustomStringConvertible {
        /// The item.
        var id: Int
        var description: String { "item \(id) is corrupt" }
    }

    /// Measures how many items are processed at once (the chunked pattern's check).
    let gauge: InFlightGauge

    /// Processes `item`.
    /// - Throws: ``CorruptItem`` when the item is corrupt.
    func run(context: ActivityContext, input item: WorkItem) async throws -> ItemResult {
        gauge.enter()
        defer { gauge.leave() }
        if item.milliseconds > 0 {
            // `try?`: a worker that is stopping ends the pause early rather than record a failure.
            try? await Task.sleep(for: .milliseconds(item.milliseconds))
        }
        if item.corrupt { throw CorruptItem(id: item.id) }
        return ItemResult(id: item.id, value: item.id * item.id)
    }
}

/// The activity of the dynamic pattern: looks up which items a batch holds, so the orchestrator only
/// learns the size of its fan-out at run time.
struct GetWorkItems: Activity {
    /// A batch to look up: `batch-N` holds items 1 to N (a stand-in for a query or a listing).
    func run(context: ActivityContext, input batchID: String) async throws -> [WorkItem] {
        guard batchID.hasPrefix("batch-"), let count = Int(batchID.dropFirst(6)), count >= 0 else {
            throw UnknownBatch(batchID: batchID)
        }
        return (0..<count).map { WorkItem(id: $0 + 1) }
    }

    /// Thrown for a batch ID that is not `batch-N`.
    struct UnknownBatch: Error, CustomStringConvertible {
        /// The ID asked for.
        var batchID: String
        var description: String { "no batch '\(batchID)'" }
    }
}

/// Counts the activities running in this process, and the most that ever ran at once.
final class InFlightGauge: Sendable {
    private let state = Mutex((current: 0, peak: 0))

    /// The most that ran at once since the last ``reset()``.
    var peak: Int { state.withLock { $0.peak } }

    /// One more is running.
    func enter() {
        state.withLock { state in
            state.current += 1
            state.peak = max(state.peak, state.current)
        }
    }

    /// One fewer is running.
    func leave() {
        state.withLock { $0.current -= 1 }
    }

    /// Starts a new measurement.
    func reset() {
        state.withLock { $0.peak = $0.current }
    }
}
