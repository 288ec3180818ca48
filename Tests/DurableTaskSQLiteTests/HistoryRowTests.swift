@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing

/// History rows that hold an episode's events together (schema version 3), beside the one-event rows
/// that files of earlier versions hold.
@Suite("SQLite history rows")
struct HistoryRowTests {
    private static func events(_ count: Int, from first: Int = 0) -> [HistoryEvent] {
        let date = Date(timeIntervalSinceReferenceDate: 1_000)
        return (0..<count).map { i in
            HistoryEvent(
                eventID: first + i, timestamp: date.addingTimeInterval(Double(i)),
                kind: i % 2 == 0
                    ? .taskScheduled(name: "Act", input: Payload(json: "\"\(String(repeating: "x", count: i))\""))
                    : .taskCompleted(scheduledID: first + i - 1, result: Payload(json: "\(i)")))
        }
    }

    private static func start(_ id: String) -> NewOrchestrationInstance {
        NewOrchestrationInstance(
            instanceID: id,
            startEvent: HistoryEvent(
                timestamp: Date(), kind: .executionStarted(name: "Orch", executionID: "e", input: nil, parent: nil, scheduledStart: nil)))
    }

    /// Raises an event to a running instance and commits the episode that takes it, with `count` more
    /// events; returns the episode's history.
    private static func nextEpisode(
        _ backend: SQLiteBackend, _ instanceID: String, historyBefore: Int, appending count: Int
    ) async throws -> [HistoryEvent] {
        try await backend.addOrchestrationEvent(
            instanceID: instanceID, event: HistoryEvent(timestamp: Date(), kind: .eventRaised(name: "go", input: nil)))
        let item = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(30)))
        #expect(item.historyLength == historyBefore)
        let episode = item.newEvents + events(count, from: historyBefore + 1)
        try await backend.completeOrchestrationWorkItem(item, result: OrchestrationWorkItemResult(newHistory: episode, status: .running))
        return episode
    }

    private static func decodeRows(_ rows: [(first: Int, bytes: [UInt8])]) throws -> [HistoryEvent] {
        var decoded: [HistoryEvent] = []
        for row in rows {
            #expect(row.first == decoded.count, "a row's offset is the number of events before it")
            try row.bytes.withUnsafeBytes { try HistoryEventCodec.decodeRow($0, into: &decoded) }
        }
        return decoded
    }

    @Test func rowsRoundTripAndRespectTheirBound() throws {
        let events = Self.events(200)
        let one = HistoryEventCodec.encodeRows(events)
        #expect(one.count == 1)
        #expect(try Self.decodeRows(one) == events)
        // A row of one event is that event's plain encoding, as earlier versions wrote it.
        #expect(HistoryEventCodec.encodeRows([events[3]]).map(\.bytes) == [HistoryEventCodec.encode(events[3])])
        // A small bound splits; an event larger than the bound goes alone.
        let split = HistoryEventCodec.encodeRows(events, maxRowBytes: 300)
        #expect(split.count > 10)
        #expect(split.allSatisfy { $0.bytes.count <= 300 || HistoryEventCodec.encodeRows(Array(events[$0.first...$0.first])).count == 1 })
        #expect(try Self.decodeRows(split) == events)
        #expect(HistoryEventCodec.encodeRows([]).isEmpty)
    }

    @Test func damagedGroupsAreRejectedWithoutACrash() throws {
        let bytes = try #require(HistoryEventCodec.encodeRows(Self.events(6)).first?.bytes)
        #expect(bytes.first == HistoryEventCodec.groupMarker)
        // Every strict prefix, and any byte appended, is rejected rather than misread.
        for cut in 0..<bytes.count {
            var decoded: [HistoryEvent] = []
            #expect(throws: CodecError.self) { try bytes.prefix(cut).withUnsafeBytes { try HistoryEventCodec.decodeRow($0, into: &decoded) } }
            #expect(decoded.isEmpty, "a rejected row appends nothing")
        }
        var decoded: [HistoryEvent] = []
        #expect(throws: CodecError.self) { try (bytes + [0]).withUnsafeBytes { try HistoryEventCodec.decodeRow($0, into: &decoded) } }
        // Counts that cannot be: none, one (a lone event is written plain), more than the bytes hold.
        for count: UInt8 in [0, 1, 0x7f] {
            var forged = bytes
            forged[1] = count
            #expect(throws: CodecError.self) { try forged.withUnsafeBytes { try HistoryEventCodec.decodeRow($0, into: &decoded) } }
        }
        // Random damage: decoded or rejected, never a crash.
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var damaged = bytes
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                damaged[Int.random(in: 0..<damaged.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            var out: [HistoryEvent] = []
            _ = try? damaged.withUnsafeBytes { try HistoryEventCodec.decodeRow($0, into: &out) }
        }
        #expect(decoded.isEmpty)
    }

    @Test func anEpisodeIsOneRowAndTheNextFollowsIt() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let backend = try SQLiteBackend(path: path)
        try await backend.createOrchestrationInstance(Self.start("a"))
        let first = try #require(try await backend.getOrchestrationWorkItem(owner: "w", leaseDuration: .seconds(30)))
        let episodeOne = first.newEvents + Self.events(5, from: 1)
        try await backend.completeOrchestrationWorkItem(first, result: OrchestrationWorkItemResult(newHistory: episodeOne, status: .running))
        let episodeTwo = try await Self.nextEpisode(backend, "a", historyBefore: episodeOne.count, appending: 3)
        #expect(try await backend.getOrchestrationHistory(instanceID: "a") == episodeOne + episodeTwo)
        await backend.close()

        let connection = try Connection(path: path, create: false)
        let rows = try connection.prepare("SELECT seq FROM history WHERE instance_id = 'a' ORDER BY seq")
        var seqs: [Int64] = []
        try rows.forEachRow { seqs.append(rows.int64(0)) }
        #expect(seqs == [0, Int64(episodeOne.count)])
    }

    @Test func versionTwoFileReadsItsOneEventRowsAndAppendsGroups() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("hub.sqlite")
        let old = Self.events(4)
        do {
            // A file as version 2 left it: one event per history row.
            let connection = try Connection(path: path)
            try connection.execute("PRAGMA journal_mode = WAL")
            try connection.execute(Schema.v1)
            try connection.execute(Schema.v2)
            try connection.execute("PRAGMA application_id = \(Schema.applicationID); PRAGMA user_version = 2")
            try connection.execute(
                "INSERT INTO instances (instance_id, name, execution_id, status, created_at, updated_at, history_length) VALUES ('a', 'Orch', 'e', 'running', 0, 0, 4)"
            )
            let insert = try connection.prepare("INSERT INTO history (instance_id, seq, event) VALUES ('a', ?1, ?2)")
            for (seq, event) in old.enumerated() {
                insert.reset()
                insert.bind(1, seq)
                insert.bind(2, HistoryEventCodec.encode(event))
                try insert.run()
            }
            connection.close()
        }
        let backend = try SQLiteBackend(path: path)
        #expect(try await backend.getOrchestrationHistory(instanceID: "a") == old)
        let new = try await Self.nextEpisode(backend, "a", historyBefore: old.count, appending: 3)
        #expect(try await backend.getOrchestrationHistory(instanceID: "a") == old + new)
        await backend.close()
        let connection = try Connection(path: path, create: false)
        #expect(try connection.scalarInt("PRAGMA user_version") == Int64(Schema.version))
        #expect(try connection.scalarInt("SELECT count(*) FROM history") == Int64(old.count + 1))
    }
}
