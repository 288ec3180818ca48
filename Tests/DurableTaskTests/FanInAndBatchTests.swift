@_spi(Backend) import DurableTask
import Foundation
import Testing

/// A fan-in that can be raced, the status of many instances in one call, and the history of an
/// instance that does not exist — through worker and client, on every backend.
@Suite struct FanInAndBatchTests {
    let quiet = DurableTaskWorker.Options(logHandler: { _, _ in })

    /// All squares, or "gave up" when the deadline comes first.
    struct SquaresWithDeadline: Orchestrator {
        struct Input: Codable, Sendable {
            var count: Int
            var deadlineSeconds: Int
            var gated: Bool
        }
        func run(context: OrchestrationContext, input: Input) async throws -> String {
            let futures = (1...input.count).map { i -> DurableFuture<Int> in
                input.gated ? context.callActivity(Gate.self, input: i) : context.callActivity(Square.self, input: i)
            }
            let all = context.allOf(futures)
            let deadline = context.createTimer(after: .seconds(input.deadlineSeconds))
            if await context.whenAny(all, deadline) == 0 {
                return "sum \(try await all.value.reduce(0, +))"
            }
            return "gave up with \(futures.filter(\.isCompleted).count) of \(input.count) done"
        }
    }

    /// `allOf` fails like `whenAll`: with the first failure, once everything finished.
    struct AllOfWithAFailure: Orchestrator {
        func run(context: OrchestrationContext, input: Int) async throws -> String {
            let futures = (1...input).map { i in i == 2 ? context.callActivity(Fail.self, input: i) : context.callActivity(Square.self, input: i) }
            do {
                _ = try await context.allOf(futures).value
                return "no failure"
            } catch let error as TaskFailedError {
                return "failed: \(error.details.message), \(futures.filter(\.isCompleted).count) finished"
            }
        }
    }

    /// `allOf` futures passed on to `whenAll` and to another `allOf`, and the flat `whenAll` of the same
    /// futures to compare with: all three must give the same sum, or the same failure.
    struct NestedFanIn: Orchestrator {
        struct Input: Codable, Sendable {
            var count: Int
            var chunkSize: Int
            var failing: [Int]
        }
        func run(context: OrchestrationContext, input: Input) async throws -> [String] {
            let futures = (1...input.count).map { i in
                input.failing.contains(i) ? context.callActivity(Fail.self, input: i) : context.callActivity(Square.self, input: i)
            }
            let chunks = stride(from: 0, to: futures.count, by: input.chunkSize).map { Array(futures[$0..<min($0 + input.chunkSize, futures.count)]) }
            // Both nested fan-ins exist before anything finishes, so they wait as a fan-in in real use does.
            let allOfs = chunks.map { context.allOf($0) }
            let allOfOfAllOfs = context.allOf(chunks.map { context.allOf($0) })
            let viaWhenAll = await Self.outcome { try await context.whenAll(allOfs).joined().reduce(0, +) }
            let viaAllOf = await Self.outcome { try await allOfOfAllOfs.value.joined().reduce(0, +) }
            let flat = await Self.outcome { try await context.whenAll(futures).reduce(0, +) }
            return [viaWhenAll, viaAllOf, flat]
        }

        static func outcome(_ body: () async throws -> Int) async -> String {
            do {
                return "sum \(try await body())"
            } catch let error as TaskFailedError {
                return "failed: task \(error.taskID) \(error.details.message)"
            } catch {
                return "\(error)"
            }
        }
    }

    @Test(arguments: TestBackend.allCases)
    func allOfFuturesComposeWithWhenAllAndAllOf(kind: TestBackend) async throws {
        try await withFeatureWorker(
            kind, options: quiet,
            adding: { worker in
                worker.addOrchestrator(NestedFanIn())
            }
        ) { client in
            let sum = "sum \((1...10).map { $0 * $0 }.reduce(0, +))"
            let id = try await client.scheduleNewOrchestration(NestedFanIn.self, input: .init(count: 10, chunkSize: 3, failing: []))
            #expect(try await client.waitForCompletion(NestedFanIn.self, instanceID: id, timeout: .seconds(20)) == [sum, sum, sum])
            let one = try await client.scheduleNewOrchestration(NestedFanIn.self, input: .init(count: 10, chunkSize: 3, failing: [5]))
            #expect(
                try await client.waitForCompletion(NestedFanIn.self, instanceID: one, timeout: .seconds(20))
                    == Array(repeating: "failed: task 4 boom", count: 3))
            // Failures in two chunks: whichever happened first in history, all three report it.
            let two = try await client.scheduleNewOrchestration(NestedFanIn.self, input: .init(count: 10, chunkSize: 3, failing: [2, 8]))
            let outcomes = try await client.waitForCompletion(NestedFanIn.self, instanceID: two, timeout: .seconds(20))
            #expect(Set(outcomes).count == 1, "\(outcomes)")
            #expect(["failed: task 1 boom", "failed: task 7 boom"].contains(outcomes[0]), "\(outcomes)")
        }
    }

    @Test func aNestedFanInFailsWithTheFailureThatHappenedFirstInHistory() throws {
        // Chunk [0, 1] finishes first, failing with task 1; chunk [2, 3] finishes last, failing with
        // task 3, which failed before task 1 did: the first failure in history is task 3's.
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let orchestrators = [OrchestratorEntry(NestedFanIn())]
        let start = HistoryEvent(
            timestamp: t0,
            kind: .executionStarted(
                name: "NestedFanIn", executionID: "e1", input: Payload(json: #"{"count":4,"chunkSize":2,"failing":[2,4]}"#), parent: nil,
                scheduledStart: nil))
        let first = ReplayEngine.execute(instanceID: "nested", orchestrators: orchestrators, oldEvents: [], newEvents: [start], now: t0)
        #expect(first.activities.map(\.taskID) == [0, 1, 2, 3])
        let boom = FailureDetails(errorType: "Boom", message: "boom")
        let last = ReplayEngine.execute(
            instanceID: "nested", orchestrators: orchestrators, oldEvents: first.newHistory,
            newEvents: [
                HistoryEvent(timestamp: t0, kind: .taskFailed(scheduledID: 3, failure: boom)),
                HistoryEvent(timestamp: t0, kind: .taskFailed(scheduledID: 1, failure: boom)),
                HistoryEvent(timestamp: t0, kind: .taskCompleted(scheduledID: 0, result: Payload(json: "1"))),
                HistoryEvent(timestamp: t0, kind: .taskCompleted(scheduledID: 2, result: Payload(json: "9")))
            ],
            now: t0.addingTimeInterval(1))
        #expect(last.status == .completed)
        #expect(last.output?.json == #"["failed: task 3 boom","failed: task 3 boom","failed: task 3 boom"]"#)
    }

    @Test(arguments: TestBackend.allCases)
    func allOfRacedWithATimerCompletesWhenAllResultsComeFirst(kind: TestBackend) async throws {
        try await withFeatureWorker(
            kind, options: quiet,
            adding: { worker in
                worker.addOrchestrator(SquaresWithDeadline())
                worker.addOrchestrator(AllOfWithAFailure())
            }
        ) { client in
            let id = try await client.scheduleNewOrchestration(SquaresWithDeadline.self, input: .init(count: 50, deadlineSeconds: 3600, gated: false))
            #expect(
                try await client.waitForCompletion(SquaresWithDeadline.self, instanceID: id, timeout: .seconds(20))
                    == "sum \((1...50).map { $0 * $0 }.reduce(0, +))")
            let failing = try await client.scheduleNewOrchestration(AllOfWithAFailure.self, input: 5)
            #expect(try await client.waitForCompletion(AllOfWithAFailure.self, instanceID: failing, timeout: .seconds(20)) == "failed: boom, 5 finished")
        }
    }

    @Test(arguments: TestBackend.allCases)
    func allOfRacedWithATimerGivesUpWhenTheTimerComesFirst(kind: TestBackend) async throws {
        let clock = ManualClock()
        let (backend, cleanup) = try kind.make(clock: clock)
        defer { cleanup() }
        let gate = AsyncGate()
        try await withWorker(
            backend: backend, options: quiet,
            register: { worker in
                registerAll(worker, gate: gate)
                worker.addOrchestrator(SquaresWithDeadline())
            }
        ) { client, _ in
            let id = try await client.scheduleNewOrchestration(SquaresWithDeadline.self, input: .init(count: 3, deadlineSeconds: 60, gated: true))
            try await eventually("timer created") { try await historyContains(client, id, "timerCreated") }
            clock.advance(by: 61)
            #expect(try await client.waitForCompletion(SquaresWithDeadline.self, instanceID: id, timeout: .seconds(20)) == "gave up with 0 of 3 done")
            await gate.release()
        }
    }

    @Test(arguments: TestBackend.allCases)
    func statusOfManyInstancesInOneCall(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        try await withWorker(backend: backend, options: quiet, register: { registerAll($0) }) { client, _ in
            let ids = try await (0..<5).asyncMap { try await client.scheduleNewOrchestration(SumOfSquares.self, input: $0 + 1, instanceID: "many-\($0)") }
            for id in ids { try await client.waitForCompletion(id, timeout: .seconds(20)) }
            let asked = ["many-3", "nobody", "many-0", "many-4"]
            let found = try await client.getInstances(asked)
            #expect(found.map { $0?.instanceID } == ["many-3", nil, "many-0", "many-4"])
            #expect(found.compactMap { $0 }.allSatisfy { $0.status == .completed })
            #expect(try found[0]?.output(as: Int.self) == 30)
            #expect(try await client.getInstances([]).isEmpty)
        }
    }

    @Test(arguments: TestBackend.allCases)
    func historyOfAnUnknownOrPurgedInstanceThrowsInstanceNotFound(kind: TestBackend) async throws {
        let (backend, cleanup) = try kind.make()
        defer { cleanup() }
        let client = DurableTaskClient(backend: backend)
        await #expect(throws: DurableTaskError.self) { try await client.getHistory("never-created") }
        // A pending instance exists: its history is empty, not an error.
        try await client.scheduleNewOrchestration(SumOfSquares.self, input: 1, instanceID: "pending-one")
        #expect(try await client.getHistory("pending-one").isEmpty)
        _ = try await withWorker(backend: backend, options: quiet, register: { registerAll($0) }) { client, _ in
            try await client.waitForCompletion("pending-one", timeout: .seconds(20))
        }
        #expect(try await client.purge("pending-one"))
        do {
            _ = try await client.getHistory("pending-one")
            Issue.record("a purged instance has no history")
        } catch let error as DurableTaskError {
            #expect(error.code == .instanceNotFound)
        }
    }
}

extension Sequence {
    /// `map` with an async transform, in order.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
