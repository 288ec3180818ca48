import DurableTask
import Foundation
import Testing

/// A fan-out of N must cost O(N) engine work in total, not O(N²): episodes apply only their new
/// events to the cached orchestration, and a restart replays the history once.
@Suite struct LinearCostTests {
    static let n = 2_000

    /// Small activity batches, so the fan-in arrives over many episodes — where replaying the whole
    /// history each time would show up as O(N²) events replayed.
    let options = DurableTaskWorker.Options(maxConcurrentActivities: 8, activityPrefetch: 16, logHandler: { _, _ in })

    @Test(arguments: TestBackend.allCases)
    func fanOutOfNAppliesAndReplaysOnlyLinearlyManyEvents(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let stats = try await withWorker(
            backend: backend, options: options,
            register: {
                $0.addOrchestrator(SumOfSquares())
                $0.addActivity(Square())
            }
        ) { client, worker in
            let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: Self.n)
            let total = try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(60))
            #expect(total == (1...Self.n).reduce(0) { $0 + $1 * $1 })
            return worker.statistics
        }
        #expect(stats.episodes > 20, "the fan-in must span many episodes for this test to mean anything")
        #expect(stats.eventsReplayed == 0, "a worker that keeps the instance cached never replays")
        #expect(stats.eventsApplied <= 2 * Self.n, "each completion is applied once: \(stats)")
    }

    @Test(arguments: TestBackend.allCases)
    func aRestartReplaysTheHistoryOnceNotOncePerEpisode(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: Self.n)
        let first = DurableTaskWorker(backend: backend, options: options)
        first.addOrchestrator(SumOfSquares())
        first.addActivity(FirstHalfSquare())
        let running = Task { await first.run() }
        try await eventually(timeout: .seconds(60), "half of the results recorded") {
            try await client.getHistory(id).filter { $0.kindName == "taskCompleted" }.count >= Self.n / 2
        }
        first.stop()
        await running.value
        let historyAtRestart = try await client.getHistory(id).count

        let stats = try await withWorker(
            backend: backend, options: options,
            register: {
                $0.addOrchestrator(SumOfSquares())
                $0.addActivity(PacedSquare())
            }
        ) { client, worker in
            _ = try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(60))
            return worker.statistics
        }
        #expect(stats.episodes > 10)
        #expect(stats.eventsReplayed <= historyAtRestart, "one replay after the restart: \(stats), history \(historyAtRestart)")
        #expect(stats.eventsReplayed + stats.eventsApplied <= 3 * Self.n + 10, "\(stats)")
    }
}

/// `Square` for the worker that is stopped: only the first half of the fan-out finishes there, the rest
/// waits until the stop cancels it (handed back, not failed). Otherwise a fast backend runs every
/// activity before the test can stop the worker, and the restart has nothing left to spread over
/// episodes.
private struct FirstHalfSquare: Activity {
    static var name: String { Square.name }

    func run(context: ActivityContext, input: Int) async throws -> Int {
        if input > LinearCostTests.n / 2 { try await Task.sleep(for: .seconds(3600)) }
        return input * input
    }
}

/// `Square` for the worker after the restart, a millisecond each: results then arrive a few at a time,
/// over many episodes, on every backend (in memory, unpaced, they came in three or four batches).
private struct PacedSquare: Activity {
    static var name: String { Square.name }

    func run(context: ActivityContext, input: Int) async throws -> Int {
        try await Task.sleep(for: .milliseconds(1))
        return input * input
    }
}
