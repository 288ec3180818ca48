import Foundation

// Fan-in: `whenAll`, `allOf`, `whenAllSettled` and `whenAny` are engine-level composites — a counter
// and one continuation (or one slot) — not task groups, so a completion costs O(1).
extension ReplayEngine {
    func whenAll<T>(_ futures: [DurableFuture<T>]) async throws -> [T] {
        try await waitForAllThenThrowFirstFailure(futures)
        return try futures.map { try $0.result() }
    }

    /// Decodes with the static type: a fan-in of N decodes N results, with no dynamic cast each.
    func whenAll<T: Decodable>(_ futures: [DurableFuture<T>]) async throws -> [T] {
        try await waitForAllThenThrowFirstFailure(futures)
        return try Self.decodeAll(futures)
    }

    /// Reads the futures' values as `.value` does (`DurableFuture.result()`), with a fast path only for
    /// a slot whose value is its own payload: an `allOf` slot has none (its value is built from its
    /// futures), so a fan-in of fan-ins goes through `result()` like any other failure or special case.
    private static func decodeAll<T: Decodable>(_ futures: [DurableFuture<T>]) throws -> [T] {
        try futures.map { future in
            guard future.slot.combinedValue == nil, case .success(let payload) = future.slot.outcome else { return try future.result() }
            return try PayloadCodec.decode(T.self, from: payload, what: "result of \(future.slot.name)")
        }
    }

    private func waitForAllThenThrowFirstFailure<T>(_ futures: [DurableFuture<T>]) async throws {
        await waitForAll(futures)
        if let failure = Self.firstFailure(futures) { throw failure.error }
    }

    /// The failure that happened first in history among finished futures, if any, and when it happened.
    private static func firstFailure<T>(_ futures: [DurableFuture<T>]) -> (index: Int, error: any Error)? {
        var firstFailure: (index: Int, error: any Error)?
        for future in futures {
            if case .failure(let error) = future.slot.outcome {
                if firstFailure.map({ future.slot.failureIndex < $0.index }) ?? true {
                    firstFailure = (future.slot.failureIndex, error)
                }
            }
        }
        return firstFailure
    }

    func allOf<T: Decodable & Sendable>(_ futures: [DurableFuture<T>]) -> DurableFuture<[T]> {
        let outer = TaskSlot(sequence: -1, name: "allOf of \(futures.count) futures", engine: self)
        outer.combinedValue = { try Self.decodeAll(futures) }
        let finish = {
            if let failure = Self.firstFailure(futures) {
                // Dated by the failure it carries, not by when the last of its futures finished: a
                // fan-in of fan-ins then reports the failure a flat `whenAll` of the same futures would.
                outer.resolve(.failure(failure.error), failureIndex: failure.index)
            } else {
                outer.resolve(.success(nil))
            }
        }
        var open = 0
        for future in futures where future.slot.outcome == nil { open += 1 }
        guard open > 0 else {
            finish()
            return DurableFuture(slot: outer)
        }
        let composite = CompositeWaiter(remaining: open, engine: self)
        composite.onDone = finish
        for future in futures where future.slot.outcome == nil { future.slot.observe(composite) }
        return DurableFuture(slot: outer)
    }

    func whenAllSettled<T>(_ futures: [DurableFuture<T>]) async -> [Result<T, any Error>] {
        await waitForAll(futures)
        return futures.map { future in Result { try future.result() } }
    }

    func whenAny(_ slots: [TaskSlot]) async -> Int {
        precondition(!slots.isEmpty, "whenAny needs at least one future")
        if !slots.contains(where: { $0.outcome != nil }) {
            await withUnsafeContinuation { continuation in
                let composite = CompositeWaiter(remaining: 1, engine: self)
                composite.continuation = continuation
                waitingCount += 1
                for slot in slots { slot.observe(composite) }
            }
        }
        var best = 0
        for (index, slot) in slots.enumerated() where slot.outcome != nil {
            if slots[best].outcome == nil || slot.completionIndex < slots[best].completionIndex { best = index }
        }
        return best
    }

    /// One composite for all open futures, registered without building intermediate arrays: a fan-in
    /// of 100,000 futures is one pass.
    private func waitForAll<T>(_ futures: [DurableFuture<T>]) async {
        var open = 0
        for future in futures where future.slot.outcome == nil { open += 1 }
        guard open > 0 else { return }
        await withUnsafeContinuation { continuation in
            let composite = CompositeWaiter(remaining: open, engine: self)
            composite.continuation = continuation
            waitingCount += 1
            for future in futures where future.slot.outcome == nil { future.slot.observe(composite) }
        }
    }
}
