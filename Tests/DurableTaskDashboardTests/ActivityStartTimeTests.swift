@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing

/// `HistoryEvent.startedAt`: when an activity began running, recorded by the worker on the completion
/// event, stored by SQLite as an optional trailing field that older rows simply lack.
@Suite struct ActivityStartTimeTests {
    /// Advances the test's clock while it runs, so "started" and "completed" are distinct instants.
    struct SlowStep: Activity {
        let clock: ManualClock
        func run(context: ActivityContext, input: Int) async throws -> Int {
            clock.advance(by: 5)
            return input + 1
        }
    }

    struct FailingStep: Activity {
        struct Broken: Error {}
        let clock: ManualClock
        func run(context: ActivityContext, input: Int) async throws -> Int {
            clock.advance(by: 2)
            throw Broken()
        }
    }

    struct TwoSteps: Orchestrator {
        func run(context: OrchestrationContext, input: Int) async throws -> Int {
            let first = try await context.callActivity(SlowStep.self, input: input).value
            do {
                _ = try await context.callActivity(FailingStep.self, input: first).value
            } catch is TaskFailedError {}
            return first
        }
    }

    @Test func startTimeLiesBetweenSchedulingAndCompletionAndSurvivesSQLite() async throws {
        let directory = try TemporaryDirectory()
        let clock = ManualClock()
        let path = directory.url.appendingPathComponent("hub.sqlite").path
        let backend = try SQLiteBackend(path: path, clock: clock)
        let worker = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
        worker.addOrchestrator(TwoSteps())
        worker.addActivity(SlowStep(clock: clock))
        worker.addActivity(FailingStep(clock: clock))
        let running = Task { await worker.run() }
        let client = DurableTaskClient(backend: backend)
        let id = try await client.scheduleNewOrchestration(TwoSteps.self, input: 1, instanceID: "timed")
        let output = try await client.waitForCompletion(TwoSteps.self, instanceID: id, timeout: .seconds(30))
        running.cancel()
        await running.value
        #expect(output == 2)

        // Read back through a fresh backend on the same file: the field came from disk, not a cache.
        let reopened = try SQLiteBackend(path: path, clock: clock)
        let history = try await DurableTaskClient(backend: reopened).getHistory(id)
        var scheduledAt: [Int: Date] = [:]
        var completions: [HistoryEvent] = []
        for event in history {
            switch event.kind {
            case .taskScheduled: scheduledAt[event.eventID] = event.timestamp
            case .taskCompleted, .taskFailed: completions.append(event)
            default: #expect(event.startedAt == nil, "only activity results carry a start time: \(event)")
            }
        }
        #expect(completions.count == 2)
        for event in completions {
            let scheduledID: Int
            switch event.kind {
            case let .taskCompleted(id, _), let .taskFailed(id, _): scheduledID = id
            default: continue
            }
            let started = try #require(event.startedAt, "no start time on \(event)")
            let scheduled = try #require(scheduledAt[scheduledID])
            #expect(scheduled <= started)
            #expect(started < event.timestamp, "the activity advanced the clock while running: \(event)")
        }
    }

    @Test func codecRoundTripsTheStartTimeAndLeavesEventsWithoutItUnchanged() throws {
        let at = Date(timeIntervalSinceReferenceDate: 800_000_000.25)
        let plain = HistoryEvent(timestamp: at, kind: .taskCompleted(scheduledID: 3, result: Payload(json: #"{"n":9}"#)))
        var timed = plain
        timed.startedAt = at.addingTimeInterval(-1.5)
        let plainBytes = HistoryEventCodec.encode(plain)
        let timedBytes = HistoryEventCodec.encode(timed)
        #expect(plainBytes == Self.version1TaskCompleted, "an event without a start time is the version-1 encoding")
        #expect(timedBytes.count == plainBytes.count + 9, "one extension tag and 8 bytes of date")
        #expect(try timedBytes.withUnsafeBytes { try HistoryEventCodec.decode($0) } == timed)
        #expect(try plainBytes.withUnsafeBytes { try HistoryEventCodec.decode($0) } == plain)
    }

    @Test func eventsEncodedBeforeTheFieldExistedStillDecode() throws {
        let at = Date(timeIntervalSinceReferenceDate: 800_000_000.25)
        let completed = try Self.version1TaskCompleted.withUnsafeBytes { try HistoryEventCodec.decode($0) }
        #expect(completed == HistoryEvent(timestamp: at, kind: .taskCompleted(scheduledID: 3, result: Payload(json: #"{"n":9}"#))))
        #expect(completed.startedAt == nil)
        let failed = try Self.version1TaskFailed.withUnsafeBytes { try HistoryEventCodec.decode($0) }
        let failure = FailureDetails(
            errorType: "Outer", message: "it broke", isRetriable: true,
            inner: FailureDetails(errorType: "Inner", message: "root cause", isRetriable: false))
        #expect(failed == HistoryEvent(timestamp: at, kind: .taskFailed(scheduledID: 2, failure: failure)))
    }

    @Test func unknownTrailingExtensionsAreRejectedNotDropped() {
        var bytes = Self.version1TaskCompleted
        bytes.append(0x7F)
        #expect(throws: CodecError.self) { try bytes.withUnsafeBytes { try HistoryEventCodec.decode($0) } }
        var cut = HistoryEventCodec.encode(
            HistoryEvent(
                timestamp: Date(timeIntervalSinceReferenceDate: 1),
                kind: .taskCompleted(scheduledID: 1, result: nil),
                startedAt: Date(timeIntervalSinceReferenceDate: 0)))
        cut.removeLast(3)
        #expect(throws: CodecError.self) { try cut.withUnsafeBytes { try HistoryEventCodec.decode($0) } }
    }

    /// A database written by the library before `startedAt` existed (WordCount, 3 items, at commit
    /// daf9bb4) opens and its history reads, with no start times.
    @Test func aDatabaseWrittenBeforeTheFieldExistedStillReads() async throws {
        let directory = try TemporaryDirectory()
        let fixture = try #require(Bundle.module.url(forResource: "wordcount-v1", withExtension: "sqlite", subdirectory: "Fixtures"))
        let path = directory.url.appendingPathComponent("old.sqlite").path
        try FileManager.default.copyItem(atPath: fixture.path, toPath: path)
        let client = DurableTaskClient(backend: try SQLiteBackend(path: path))
        let page = try await client.query(OrchestrationQuery())
        let instance = try #require(page.instances.first)
        #expect(instance.status == .completed)
        let history = try await client.getHistory(instance.instanceID)
        let results = history.filter { if case .taskCompleted = $0.kind { true } else { false } }
        #expect(results.count == 3)
        #expect(results.allSatisfy { $0.startedAt == nil })
    }

    // Written by hand from the version-1 layout (version, tag, zig-zag eventID, date, fields).
    static let version1TaskCompleted: [UInt8] = [
        0x01, 0x04, 0x01, 0x00, 0x00, 0x20, 0x00, 0x84, 0xd7, 0xc7, 0x41, 0x06, 0x01, 0x07, 0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x39, 0x7d
    ]
    static let version1TaskFailed: [UInt8] = [
        0x01, 0x05, 0x01, 0x00, 0x00, 0x20, 0x00, 0x84, 0xd7, 0xc7, 0x41, 0x04, 0x05, 0x4f, 0x75, 0x74, 0x65, 0x72, 0x08, 0x69,
        0x74, 0x20, 0x62, 0x72, 0x6f, 0x6b, 0x65, 0x01, 0x01, 0x05, 0x49, 0x6e, 0x6e, 0x65, 0x72, 0x0a, 0x72, 0x6f, 0x6f, 0x74,
        0x20, 0x63, 0x61, 0x75, 0x73, 0x65, 0x00, 0x00
    ]
}

/// A fresh directory under the system temp directory, removed when the value is deinitialised.
final class TemporaryDirectory: Sendable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("dtdash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}
