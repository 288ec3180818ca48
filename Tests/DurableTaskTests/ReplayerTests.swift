import DurableTask
import DurableTaskTesting
import Foundation
import Testing

/// `OrchestrationReplayer`, the check a user runs before a deploy: code that takes more or fewer actions
/// than a history recorded, instances of orchestrators that were not added, and the project's own
/// nondeterminism corpus read the way users keep their fixtures.
@Suite struct ReplayerTests {
    typealias Body = @Sendable (OrchestrationContext, Int) async throws -> Int

    static let t = Date(timeIntervalSince1970: 1_800_000_000)

    static func event(_ kind: HistoryEvent.Kind, id: Int = -1) -> HistoryEvent {
        HistoryEvent(eventID: id, timestamp: t, kind: kind)
    }

    static func step(_ context: OrchestrationContext, _ name: String, _ input: Int) async throws -> Int {
        try await context.callActivity(name, input: input, returning: Int.self).value
    }

    /// The code that recorded the histories below: activity A, then B with A's result.
    static let aThenB: Body = { context, input in try await step(context, "B", try await step(context, "A", input)) }

    /// Two episodes of `aThenB`: A scheduled and completed, B scheduled; the instance waits on B.
    static let waitingOnB: [HistoryEvent] = [
        event(.orchestratorStarted),
        event(.executionStarted(name: "Steps", executionID: "e1", input: Payload(json: "1"), parent: nil, scheduledStart: nil)),
        event(.taskScheduled(name: "A", input: Payload(json: "1")), id: 0),
        event(.orchestratorCompleted),
        event(.orchestratorStarted),
        event(.taskCompleted(scheduledID: 0, result: Payload(json: "2"))),
        event(.taskScheduled(name: "B", input: Payload(json: "2")), id: 1),
        event(.orchestratorCompleted)
    ]

    /// `waitingOnB` and one more episode: B completed, the instance completed.
    static let finished: [HistoryEvent] =
        waitingOnB + [
            event(.orchestratorStarted),
            event(.taskCompleted(scheduledID: 1, result: Payload(json: "3"))),
            event(.executionCompleted(status: .completed, result: Payload(json: "3"), failure: nil)),
            event(.orchestratorCompleted)
        ]

    static func replayer(_ body: @escaping Body) -> OrchestrationReplayer {
        var replayer = OrchestrationReplayer()
        replayer.addOrchestrator(name: "Steps", body)
        return replayer
    }

    // MARK: More or fewer actions than the history holds

    @Test(arguments: [("waiting on B", waitingOnB), ("finished", finished)])
    func theCodeThatRecordedAHistoryReplaysIt(history: (String, [HistoryEvent])) {
        let report = Self.replayer(Self.aThenB).replay(history.1, instanceID: "i")
        #expect(report.succeeded, "\(history.0): \(report)")
        #expect(report.name == "Steps")
        #expect(report.description == "i: replays (\(history.1.count) events)")
    }

    @Test(arguments: [("waiting on B", waitingOnB), ("finished", finished)])
    func anActionTheHistoryEndsBeforeIsReportedAtItsPosition(history: (String, [HistoryEvent])) throws {
        // New code fans out to B and C where history recorded B alone: C is left over when history ends.
        let moreActions: Body = { context, input in
            let a = try await Self.step(context, "A", input)
            let parts = try await context.whenAll(["B", "C"].map { context.callActivity($0, input: a, returning: Int.self) })
            return parts.reduce(0, +)
        }
        let report = Self.replayer(moreActions).replay(history.1, instanceID: "i")
        let error = try #require(report.nondeterminism, "\(history.0): \(report)")
        #expect(report.problem == nil)
        #expect(error.instanceID == "i")
        #expect(error.sequenceNumber == 2)
        #expect(error.expected == "nothing (the history ends before this position)")
        #expect(error.actual == "call activity 'C'")
        #expect(report.description.hasPrefix("i: non-deterministic orchestrator in instance 'i' at sequence number 2"), "\(report)")
    }

    @Test func anActionTheCodeNoLongerTakesIsReportedAtItsPosition() throws {
        let fewerActions: Body = { context, input in try await Self.step(context, "A", input) }
        let report = Self.replayer(fewerActions).replay(Self.finished, instanceID: "i")
        let error = try #require(report.nondeterminism, "\(report)")
        #expect(error.sequenceNumber == 1)
        #expect(error.expected == "#1 taskScheduled('B')")
        #expect(error.actual == "nothing at this position (the call was removed or moved)")
    }

    @Test func aHistoryThatEndsInsideAnEpisodeLeavesTheCodeFreeToGoOn() {
        // The last episode is not closed (no orchestratorCompleted): what the code does next is not yet
        // in history, so an extra action there is not a divergence. Committed histories always end with
        // orchestratorCompleted; this is a history cut short by hand.
        let cut = Array(Self.waitingOnB.prefix(6))
        let moreActions: Body = { context, input in
            let a = try await Self.step(context, "A", input)
            let parts = try await context.whenAll(["B", "C"].map { context.callActivity($0, input: a, returning: Int.self) })
            return parts.reduce(0, +)
        }
        #expect(Self.replayer(moreActions).replay(cut, instanceID: "i").succeeded)
        #expect(Self.replayer(Self.aThenB).replay(cut, instanceID: "i").succeeded)
    }

    // MARK: Orchestrators that were not added

    @Test func anInstanceWhoseOrchestratorWasNotAddedIsAProblemNamingIt() async throws {
        let backend = InMemoryBackend()
        try await withWorker(
            backend: backend,
            register: { worker in
                worker.addOrchestrator(name: "Steps", Self.aThenB)
                worker.addOrchestrator(name: "Other") { (_: OrchestrationContext, input: Int) in input }
                worker.addActivity(name: "A") { (_: ActivityContext, input: Int) in input + 1 }
                worker.addActivity(name: "B") { (_: ActivityContext, input: Int) in input + 1 }
            }
        ) { client, _ in
            for (name, id) in [("Steps", "steps-1"), ("Other", "other-1")] {
                try await client.scheduleNewOrchestration(name: name, input: 1, instanceID: id)
                #expect(try await client.waitForCompletion(id, timeout: .seconds(10)).status == .completed)
            }
        }
        // Not started yet (no worker runs), so its history is empty: it still needs its orchestrator.
        let client = DurableTaskClient(backend: backend)
        try await client.scheduleNewOrchestration(name: "Other", input: 1, instanceID: "other-2")

        // "Other" was forgotten: its instances are reported, not skipped.
        let replayer = Self.replayer(Self.aThenB)
        let reports = try await replayer.replay(backend: backend)
        #expect(Set(reports.map(\.instanceID)) == ["steps-1", "other-1", "other-2"])
        for report in reports where report.instanceID != "steps-1" {
            #expect(!report.succeeded)
            #expect(report.nondeterminism == nil)
            #expect(report.name == "Other")
            let problem = try #require(report.problem)
            #expect(problem.errorType == "DurableTaskError.orchestratorNotRegistered")
            #expect(problem.message.contains("orchestrator 'Other'"), "\(problem.message)")
            #expect(problem.message.contains("instance '\(report.instanceID)'"), "\(problem.message)")
            #expect(report.description.hasPrefix("\(report.instanceID): instance '\(report.instanceID)' runs orchestrator 'Other'"), "\(report)")
        }
        #expect(reports.first { $0.instanceID == "steps-1" }?.succeeded == true)

        // Replaying some orchestrators only is asked for by name.
        let some = try await replayer.replay(backend: backend, names: ["Steps"])
        #expect(some.map(\.instanceID) == ["steps-1"])
        #expect(some.allSatisfy { $0.succeeded })
        // A name asked for but not added is a problem too, not a silent pass.
        let asked = try await replayer.replay(backend: backend, names: ["Other"])
        #expect(asked.count == 2 && asked.allSatisfy { $0.problem != nil })

        // The same from a history or an export.
        let history = try await client.getHistory("other-1")
        #expect(replayer.replay(history, instanceID: "other-1").problem?.message.contains("orchestrator 'Other'") == true)
        let export = try HistoryExport.encode(HistoryExport.Document(instanceID: "other-1", events: history))
        #expect(try replayer.replay(export: export).problem?.message.contains("orchestrator 'Other'") == true)
    }

    // MARK: The nondeterminism corpus, through the replayer

    static func corpusReplayer(_ body: @escaping NondeterminismCorpusTests.Body) -> OrchestrationReplayer {
        var replayer = OrchestrationReplayer()
        replayer.addOrchestrator(name: "Corpus", body)
        return replayer
    }

    static func corpusExport(_ fixture: String) throws -> Data {
        try Data(contentsOf: NondeterminismCorpusTests.fixtureDirectory.appendingPathComponent("\(fixture).json"))
    }

    @Test func theOriginalCodeReplaysEveryCorpusFixture() throws {
        for (fixture, body) in NondeterminismCorpusTests.originals {
            let report = try Self.corpusReplayer(body).replay(export: try Self.corpusExport(fixture))
            #expect(report.succeeded, "\(fixture): \(report)")
            #expect(report.instanceID == "corpus-\(fixture)")
            #expect(report.name == "Corpus")
        }
    }

    @Test(arguments: NondeterminismCorpusTests.mutations)
    func theReplayerReportsEveryCorpusMutationAtItsPosition(mutation: NondeterminismCorpusTests.Mutation) throws {
        let report = try Self.corpusReplayer(mutation.body).replay(export: try Self.corpusExport(mutation.fixture))
        let error = try #require(report.nondeterminism, "\(report)")
        #expect(report.problem == nil)
        #expect(error.instanceID == "corpus-\(mutation.fixture)")
        #expect(error.sequenceNumber == mutation.sequence, "\(error)")
        #expect(error.expected.contains(mutation.expected), "\(error)")
        #expect(error.actual.contains(mutation.actual), "\(error)")
    }
}

/// The `HistoryExport` format pinned: a stored export of a history with every event kind, and the
/// errors a reader gets for documents it cannot read.
@Suite struct HistoryExportFormatTests {
    static let goldenURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/HistoryExport/every-event-kind.json")

    /// Times on a fixed clock, in quarter seconds so that each is exact both from 1970 and from 2001.
    static func time(_ quarters: Int) -> Date { Date(timeIntervalSince1970: 1_800_000_000 + Double(quarters) / 4) }

    static func event(_ quarters: Int, _ kind: HistoryEvent.Kind, id: Int = -1, startedAt: Date? = nil) -> HistoryEvent {
        HistoryEvent(eventID: id, timestamp: time(quarters), kind: kind, startedAt: startedAt)
    }

    /// A sub-orchestration's history with every event kind (not one a single run would produce).
    static let document: HistoryExport.Document = {
        var failure = FailureDetails(errorType: "TaskFailedError", message: "activity 'Ship' failed", isRetriable: false)
        failure.inner = [
            FailureDetails(
                errorType: "ShipError", message: "no stock", inner: FailureDetails(errorType: "StockError", message: "zero"))
        ]
        let parent = HistoryEvent.ParentInstance(instanceID: "order-1", executionID: "exec-p", taskID: 3, name: "PlaceOrder")
        return HistoryExport.Document(
            instanceID: "order-1:3",
            events: [
                event(0, .orchestratorStarted),
                event(
                    0,
                    .executionStarted(
                        name: "Fulfil", executionID: "exec-1", input: Payload(json: #"{"items":[1,2]}"#), parent: parent,
                        scheduledStart: time(-240))),
                event(0, .versionMarker(changeID: "reserve-first"), id: 0),
                event(0, .taskScheduled(name: "Reserve", input: Payload(json: "12")), id: 1),
                event(0, .timerCreated(fireAt: time(14_400)), id: 2),
                event(0, .subOrchestrationCreated(name: "Ship", instanceID: "order-1:3:3", input: nil), id: 3),
                event(0, .eventSent(targetInstanceID: "billing", name: "reserved", input: Payload(json: #""line \"one\"""#)), id: 4),
                event(0, .taskScheduled(name: "Notify", input: nil), id: 5),
                event(0, .subOrchestrationCreated(name: "Audit", instanceID: "order-1:3:6", input: Payload(json: "true")), id: 6),
                event(0, .orchestratorCompleted),
                event(5, .orchestratorStarted),
                event(3, .taskCompleted(scheduledID: 1, result: Payload(json: "13")), startedAt: time(1)),
                event(4, .taskFailed(scheduledID: 5, failure: FailureDetails(errorType: "MailError", message: "bounced"))),
                event(4, .subOrchestrationCompleted(scheduledID: 6, result: nil)),
                event(5, .subOrchestrationFailed(scheduledID: 3, failure: failure)),
                event(5, .eventRaised(name: "approve", input: Payload(json: "1"))),
                event(5, .executionSuspended(reason: "maintenance")),
                event(5, .orchestratorCompleted),
                event(14_400, .orchestratorStarted),
                event(14_400, .executionResumed(reason: nil)),
                event(14_400, .timerFired(scheduledID: 2, fireAt: time(14_400))),
                event(14_400, .continuedAsNew(input: Payload(json: "2"))),
                event(14_400, .executionTerminated(reason: "operator", recursive: false)),
                event(14_400, .executionCompleted(status: .failed, result: nil, failure: failure)),
                event(14_400, .orchestratorCompleted)
            ])
    }()

    @Test func anExportOfEveryEventKindIsTheStoredDocumentByteForByte() throws {
        let kinds = Set(Self.document.events.map(\.kindName))
        // Every case of HistoryEvent.Kind; a new case belongs here, in the golden file and in a new version.
        let allKinds: Set<String> = [
            "orchestratorStarted", "executionStarted", "taskScheduled", "taskCompleted", "taskFailed", "timerCreated",
            "timerFired", "eventRaised", "eventSent", "subOrchestrationCreated", "subOrchestrationCompleted",
            "subOrchestrationFailed", "executionSuspended", "executionResumed", "executionTerminated", "continuedAsNew",
            "executionCompleted", "orchestratorCompleted", "versionMarker"
        ]
        #expect(kinds == allKinds)

        let encoded = try HistoryExport.encode(Self.document)
        let golden = try? Data(contentsOf: Self.goldenURL)
        if encoded != golden {
            let actual = FileManager.default.temporaryDirectory.appendingPathComponent("every-event-kind.actual.json")
            try encoded.write(to: actual)
            Issue.record("the export differs from \(Self.goldenURL.path); diff it with \(actual.path)")
        }
        #expect(try HistoryExport.decode(try #require(golden)) == Self.document)
    }

    static func decodeError(_ text: String) -> DurableTaskError? {
        do {
            _ = try HistoryExport.decode(Data(text.utf8))
            return nil
        } catch {
            return error as? DurableTaskError
        }
    }

    @Test(arguments: [
        ("malformed JSON", #"{"format": "durabletask-history", "version": 1,"#, "the history export is not a JSON object"),
        ("a JSON array", #"[]"#, "the history export is not a JSON object"),
        ("another format", #"{"format": "temporal-history", "version": 1}"#, "not a DurableTask history export (format 'temporal-history')"),
        ("no format", #"{"version": 1}"#, "not a DurableTask history export (format 'missing')"),
        (
            "a newer version", #"{"format": "durabletask-history", "version": 2, "instanceID": "a", "events": []}"#,
            "history export version 2 is newer than this library's 1: read it with a newer DurableTask"
        ),
        ("version 0", #"{"format": "durabletask-history", "version": 0, "instanceID": "a", "events": []}"#, "the history export has no valid version (0)"),
        ("no version", #"{"format": "durabletask-history", "instanceID": "a", "events": []}"#, "the history export has no valid version (missing)"),
        ("no events", #"{"format": "durabletask-history", "version": 1, "instanceID": "a"}"#, "the history export has no instanceID or no events"),
        (
            "an unknown event kind",
            #"{"format": "durabletask-history", "version": 1, "instanceID": "a", "events": [{"eventID": -1, "time": 1800000000, "type": "orchestratorStarted"}, {"eventID": -1, "time": 1800000000, "type": "eventTeleported"}]}"#,
            "event 1 of the history of 'a': unknown event type 'eventTeleported'"
        ),
        (
            "a missing field",
            #"{"format": "durabletask-history", "version": 1, "instanceID": "a", "events": [{"eventID": 0, "time": 1800000000, "type": "taskScheduled"}]}"#,
            "event 0 of the history of 'a': 'name' is missing or not a string"
        ),
        (
            "an unknown status",
            #"{"format": "durabletask-history", "version": 1, "instanceID": "a", "events": [{"eventID": -1, "time": 1800000000, "type": "executionCompleted", "status": "done"}]}"#,
            "event 0 of the history of 'a': unknown status 'done'"
        )
    ])
    func aDocumentThatCannotBeReadIsRejectedSayingWhy(_ bad: (name: String, json: String, message: String)) throws {
        let error = try #require(Self.decodeError(bad.json), "\(bad.name) was read")
        #expect(error.code == .payloadInvalid)
        #expect(error.message == bad.message, "\(bad.name)")
    }

    @Test func fieldsAReaderDoesNotKnowAreIgnored() throws {
        let json =
            #"{"format": "durabletask-history", "version": 1, "instanceID": "a", "exportedBy": "v9", "events": "#
            + #"[{"eventID": -1, "time": 1800000000, "type": "orchestratorStarted", "host": "w1"}]}"#
        let document = try HistoryExport.decode(Data(json.utf8))
        #expect(document.events == [HistoryEvent(timestamp: Self.time(0), kind: .orchestratorStarted)])
        #expect(document.name == nil)
    }
}
