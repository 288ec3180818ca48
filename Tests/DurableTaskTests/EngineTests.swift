@_spi(Backend) @testable import DurableTask
import Foundation
import Testing

/// Engine tests: history in, actions out — no worker, no backend.
@Suite struct EngineTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func started(_ name: String, input: String) -> HistoryEvent {
        HistoryEvent(timestamp: t0, kind: .executionStarted(name: name, executionID: "e1", input: Payload(json: input), parent: nil, scheduledStart: nil))
    }

    static func completed(_ id: Int, _ json: String) -> HistoryEvent {
        HistoryEvent(timestamp: t0, kind: .taskCompleted(scheduledID: id, result: Payload(json: json)))
    }

    static func failed(_ id: Int, _ message: String) -> HistoryEvent {
        HistoryEvent(timestamp: t0, kind: .taskFailed(scheduledID: id, failure: FailureDetails(errorType: "E", message: message)))
    }

    static func run(_ entries: [OrchestratorEntry], old: [HistoryEvent], new: [HistoryEvent], at offset: TimeInterval = 1) -> OrchestrationWorkItemResult {
        ReplayEngine.execute(instanceID: "i1", orchestrators: entries, oldEvents: old, newEvents: new, now: t0.addingTimeInterval(offset))
    }

    /// Runs episodes one after another, each committing its history, as a worker with no cache would.
    static func runEpisodes(_ entries: [OrchestratorEntry], episodes: [[HistoryEvent]]) -> (history: [HistoryEvent], last: OrchestrationWorkItemResult) {
        var history: [HistoryEvent] = []
        var last = OrchestrationWorkItemResult(status: .pending)
        for (index, events) in episodes.enumerated() {
            last = run(entries, old: history, new: events, at: TimeInterval(index + 1))
            history += last.newHistory
        }
        return (history, last)
    }

    static let sequential = OrchestratorEntry(name: "Seq") { context, _ in
        let a = try await context.callActivity("A", input: 1, returning: Int.self).value
        let b = try await context.callActivity("B", input: a, returning: Int.self).value
        return try PayloadCodec.encode(a + b)
    }

    @Test func firstEpisodeSchedulesTheFanOut() throws {
        let result = Self.run([OrchestratorEntry(SumOfSquares())], old: [], new: [Self.started("SumOfSquares", input: "3")])
        #expect(result.status == .running)
        #expect(result.activities.map(\.name) == ["Square", "Square", "Square"])
        #expect(result.activities.map(\.taskID) == [0, 1, 2])
        #expect(result.activities.map { $0.input?.json } == ["1", "2", "3"])
        let kinds = result.newHistory.map(\.kindName)
        #expect(kinds == ["orchestratorStarted", "executionStarted", "taskScheduled", "taskScheduled", "taskScheduled", "orchestratorCompleted"])
    }

    @Test func completionsFinishTheOrchestrationWithTheSum() throws {
        let entries = [OrchestratorEntry(SumOfSquares())]
        let (_, last) = Self.runEpisodes(
            entries,
            episodes: [
                [Self.started("SumOfSquares", input: "3")],
                [Self.completed(2, "9"), Self.completed(0, "1"), Self.completed(1, "4")]
            ])
        #expect(last.status == .completed)
        #expect(last.output?.json == "14")
        #expect(last.activities.isEmpty)
    }

    @Test func replayingAFinishedHistoryReproducesTheResultWithoutSchedulingAgain() throws {
        let entries = [OrchestratorEntry(SumOfSquares())]
        let (history, original) = Self.runEpisodes(
            entries,
            episodes: [
                [Self.started("SumOfSquares", input: "4")],
                [Self.completed(0, "1"), Self.completed(1, "4")],
                [Self.completed(2, "9"), Self.completed(3, "16")]
            ])
        #expect(original.output?.json == "30")
        // Replay every episode but the last from history, then the last one's events as new events.
        let lastStart = try #require(history.lastIndex { $0.kindName == "orchestratorStarted" })
        let replayed = Self.run(
            entries, old: Array(history[..<lastStart]),
            new: history[lastStart...].filter { $0.kindName == "taskCompleted" }, at: 3)
        #expect(replayed.status == .completed)
        #expect(replayed.output == original.output)
        #expect(replayed.activities.isEmpty)
        #expect(replayed.newHistory == original.newHistory)
    }

    @Test func renamedActivityIsNonDeterministic() throws {
        let (history, _) = Self.runEpisodes([Self.sequential], episodes: [[Self.started("Seq", input: "0")]])
        let renamed = OrchestratorEntry(name: "Seq") { context, _ in
            _ = try await context.callActivity("A2", input: 1, returning: Int.self).value
            return nil
        }
        let result = Self.run([renamed], old: history, new: [Self.completed(0, "1")])
        try expectNonDeterminism(result, sequence: 0, expected: "taskScheduled('A')", actual: "call activity 'A2'")
    }

    @Test func reorderedCallsAreNonDeterministic() throws {
        let (history, _) = Self.runEpisodes(
            [Self.sequential],
            episodes: [
                [Self.started("Seq", input: "0")], [Self.completed(0, "1")]
            ])
        let reordered = OrchestratorEntry(name: "Seq") { context, _ in
            let b = try await context.callActivity("B", input: 1, returning: Int.self).value
            _ = try await context.callActivity("A", input: b, returning: Int.self).value
            return nil
        }
        let result = Self.run([reordered], old: history, new: [Self.completed(1, "2")])
        try expectNonDeterminism(result, sequence: 0, expected: "taskScheduled('A')", actual: "call activity 'B'")
    }

    @Test func anExtraCallIsNonDeterministic() throws {
        let (history, _) = Self.runEpisodes(
            [Self.sequential],
            episodes: [
                [Self.started("Seq", input: "0")], [Self.completed(0, "1")]
            ])
        let extra = OrchestratorEntry(name: "Seq") { context, _ in
            let a = try await context.callActivity("A", input: 1, returning: Int.self).value
            _ = try await context.callActivity("X", input: a, returning: Int.self).value
            _ = try await context.callActivity("B", input: a, returning: Int.self).value
            return nil
        }
        let result = Self.run([extra], old: history, new: [Self.completed(1, "2")])
        try expectNonDeterminism(result, sequence: 1, expected: "taskScheduled('B')", actual: "call activity 'X'")
    }

    @Test func aRemovedCallIsNonDeterministic() throws {
        let (history, _) = Self.runEpisodes(
            [Self.sequential],
            episodes: [
                [Self.started("Seq", input: "0")], [Self.completed(0, "1")]
            ])
        let removed = OrchestratorEntry(name: "Seq") { context, _ in
            try PayloadCodec.encode(try await context.callActivity("A", input: 1, returning: Int.self).value)
        }
        let result = Self.run([removed], old: history, new: [Self.completed(1, "2")])
        try expectNonDeterminism(result, sequence: 1, expected: "taskScheduled('B')", actual: "nothing at this position")
    }

    func expectNonDeterminism(_ result: OrchestrationWorkItemResult, sequence: Int, expected: String, actual: String) throws {
        #expect(result.status == .failed)
        let failure = try #require(result.failure)
        #expect(failure.errorType == "NonDeterminismError")
        #expect(failure.message.contains("instance 'i1'"))
        #expect(failure.message.contains("sequence number \(sequence)"))
        #expect(failure.message.contains(expected), "\(failure.message)")
        #expect(failure.message.contains(actual), "\(failure.message)")
        #expect(result.activities.isEmpty)
    }

    @Test func theSameHistoryReplayed100TimesYieldsIdenticalActions() throws {
        let entry = OrchestratorEntry(name: "Mixed") { context, _ in
            let ids = (0..<3).map { _ in context.newUUID().uuidString }
            let first = context.callActivity("A", input: ids, returning: Int.self)
            let second = context.callActivity("B", input: context.currentDate.timeIntervalSince1970, returning: Int.self)
            let winner = await context.whenAny(first, second)
            let more = (0..<5).map { context.callActivity("C", input: "\(winner)-\($0)", returning: Int.self) }
            return try PayloadCodec.encode(try await context.whenAll(more).reduce(0, +))
        }
        let episodes: [[HistoryEvent]] = [[Self.started("Mixed", input: "0")], [Self.completed(1, "5")]]
        let reference = Self.runEpisodes([entry], episodes: episodes)
        #expect(reference.last.activities.map(\.name) == ["C", "C", "C", "C", "C"])
        for _ in 0..<100 {
            let again = Self.runEpisodes([entry], episodes: episodes)
            #expect(again.history == reference.history)
            #expect(again.last.activities == reference.last.activities)
        }
    }

    // MARK: Combinators

    static let allOfThree = OrchestratorEntry(name: "All") { context, _ in
        let futures = (0..<3).map { context.callActivity("A", input: $0, returning: Int.self) }
        do {
            return try PayloadCodec.encode(try await context.whenAll(futures))
        } catch let error as TaskFailedError {
            return try PayloadCodec.encode("failed #\(error.taskID): \(error.details.message)")
        }
    }

    @Test func whenAllReturnsResultsInInputOrder() throws {
        let (_, last) = Self.runEpisodes(
            [Self.allOfThree],
            episodes: [
                [Self.started("All", input: "0")], [Self.completed(2, "30"), Self.completed(0, "10")], [Self.completed(1, "20")]
            ])
        #expect(last.output?.json == "[10,20,30]")
    }

    @Test func whenAllWaitsForEveryTaskThenThrowsTheFirstFailure() throws {
        let (_, middle) = Self.runEpisodes(
            [Self.allOfThree],
            episodes: [
                [Self.started("All", input: "0")], [Self.failed(2, "second"), Self.failed(1, "first?")]
            ])
        #expect(middle.status == .running, "whenAll must wait until every task has finished")
        let (_, last) = Self.runEpisodes(
            [Self.allOfThree],
            episodes: [
                [Self.started("All", input: "0")], [Self.failed(2, "earliest"), Self.failed(1, "later")], [Self.completed(0, "1")]
            ])
        #expect(last.output?.json == "\"failed #2: earliest\"")
    }

    static let anyOfTwo = OrchestratorEntry(name: "Any") { context, _ in
        let a = context.callActivity("A", input: 0, returning: Int.self)
        let b = context.callActivity("B", input: 0, returning: Int.self)
        let winner = await context.whenAny(a, b)
        return try PayloadCodec.encode(winner)
    }

    @Test(arguments: [([1], "1"), ([0], "0"), ([1, 0], "1"), ([0, 1], "0")])
    func whenAnyReturnsTheFirstToFinish(order: [Int], expected: String) throws {
        let completions = order.map { Self.completed($0, "0") }
        let (_, last) = Self.runEpisodes([Self.anyOfTwo], episodes: [[Self.started("Any", input: "0")], completions])
        #expect(last.status == .completed)
        #expect(last.output?.json == expected)
    }

    @Test func whenAllSettledReturnsEveryResultOrError() throws {
        let entry = OrchestratorEntry(name: "Settled") { context, _ in
            let futures = (0..<3).map { context.callActivity("A", input: $0, returning: Int.self) }
            let results = await context.whenAllSettled(futures)
            let described = results.map { result -> String in
                switch result {
                case .success(let value): "ok \(value)"
                case .failure(let error as TaskFailedError): "failed \(error.details.message)"
                case .failure(let error): "other \(error)"
                }
            }
            return try PayloadCodec.encode(described)
        }
        let (_, last) = Self.runEpisodes(
            [entry],
            episodes: [
                [Self.started("Settled", input: "0")], [Self.completed(0, "7"), Self.failed(1, "bad"), Self.completed(2, "9")]
            ])
        #expect(last.output?.json == #"["ok 7","failed bad","ok 9"]"#)
    }

    @Test func unregisteredOrchestratorFailsTheInstanceWithAClearMessage() throws {
        let result = Self.run([], old: [], new: [Self.started("Missing", input: "0")])
        #expect(result.status == .failed)
        #expect(result.failure?.message.contains("no orchestrator named 'Missing'") == true)
    }

    @Test func undecodableInputFailsTheInstance() throws {
        let result = Self.run([OrchestratorEntry(SumOfSquares())], old: [], new: [Self.started("SumOfSquares", input: #""not a number""#)])
        #expect(result.status == .failed)
        #expect(result.failure?.errorType == "DurableTaskError.payloadInvalid")
        #expect(result.failure?.message.contains("input of orchestrator 'SumOfSquares'") == true)
    }

    @Test func awaitingSomethingOutsideTheEngineFailsTheInstance() throws {
        let entry = OrchestratorEntry(name: "Sleepy") { _, _ in
            try await Task.sleep(for: .seconds(5))
            return nil
        }
        let result = Self.run([entry], old: [], new: [Self.started("Sleepy", input: "0")])
        #expect(result.status == .failed)
        #expect(result.failure?.message.contains("not a durable operation") == true)
    }
}

extension EngineTests {
    @Test func replaySafeLoggerWritesEachMessageOnceAndIsReplayingIsTrueOnlyDuringReplay() throws {
        final class Lines: @unchecked Sendable {  // Safe: the engine runs on one thread in this test.
            var lines: [String] = []
        }
        let sink = Lines()
        let options = EngineOptions(log: { _, message in sink.lines.append(message) })
        let entry = OrchestratorEntry(name: "Logs") { context, _ in
            context.logger.info("start replaying=\(context.isReplaying)")
            _ = try await context.callActivity("A", input: 1, returning: Int.self).value
            context.logger.info("after A replaying=\(context.isReplaying)")
            return nil
        }
        let first = ReplayEngine.execute(
            instanceID: "i1", orchestrators: [entry], oldEvents: [],
            newEvents: [Self.started("Logs", input: "0")], now: Self.t0, options: options)
        #expect(sink.lines == ["[i1] start replaying=false"])
        _ = ReplayEngine.execute(
            instanceID: "i1", orchestrators: [entry], oldEvents: first.newHistory,
            newEvents: [Self.completed(0, "1")], now: Self.t0, options: options)
        #expect(
            sink.lines == ["[i1] start replaying=false", "[i1] after A replaying=false"],
            "the first line is not written again while its history is replayed")
    }
}

extension EngineTests {
    @Test func eventsForAnInstanceWhoseHistoryEndedChangeNothing() throws {
        let entries = [OrchestratorEntry(SumOfSquares())]
        let (history, last) = Self.runEpisodes(
            entries,
            episodes: [
                [Self.started("SumOfSquares", input: "1")], [Self.completed(0, "1")]
            ])
        #expect(last.status == .completed)
        let late = Self.run(
            entries, old: history,
            new: [
                HistoryEvent(timestamp: Self.t0, kind: .timerFired(scheduledID: 7, fireAt: Self.t0))
            ])
        #expect(late.status == .completed)
        #expect(late.output?.json == "1")
        #expect(late.newHistory.isEmpty, "no second executionCompleted")
        #expect(late.messages.isEmpty && late.activities.isEmpty)
    }
}

extension EngineTests {
    @Test func terminatingAPendingInstanceSchedulesNothing() throws {
        let terminate = HistoryEvent(timestamp: Self.t0, kind: .executionTerminated(reason: "stop", recursive: false))
        let result = Self.run([OrchestratorEntry(SumOfSquares())], old: [], new: [Self.started("SumOfSquares", input: "3"), terminate])
        #expect(result.status == .terminated)
        #expect(result.activities.isEmpty)
        #expect(result.output?.json == "\"stop\"")
    }
}
