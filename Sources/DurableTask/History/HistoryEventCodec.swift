import Foundation

/// A compact binary encoding of ``HistoryEvent`` for the history and inbox rows of the database
/// backends (SQLite, PostgreSQL): one format, shared, so a row means the same in every store. Their
/// history rows may group an episode's events (``encodeRows(_:maxRowBytes:)``).
///
/// Why not JSON through `Codable`: Foundation's coders cost microseconds per event, which at a
/// 100,000-activity fan-out is most of the per-item budget. This encoding is a version byte, a kind
/// tag, then the fields in declaration order: integers as zig-zag varints, dates as the 8 bytes of
/// `timeIntervalSinceReferenceDate` (so they round-trip exactly), strings and payloads as a varint
/// length and bytes, optionals with a 0/1 presence byte. Payload bytes are copied as they are, never
/// re-encoded.
///
/// Changing the layout of an existing tag needs a new format version (the first byte); readers reject
/// versions they do not know with `corruptData` rather than misreading them.
///
/// Optional fields added later (``HistoryEvent/startedAt``) follow the kind's fields as trailing
/// extensions: a one-byte extension tag, then its value, written only when the field is set. An event
/// without them is byte for byte the version-1 encoding, so rows written before the field existed decode
/// unchanged and an unset field costs nothing; a reader that meets an extension tag it does not know
/// rejects the row rather than dropping data.
@_spi(Backend) public enum HistoryEventCodec {
    @_spi(Backend) public static let formatVersion: UInt8 = 1

    private enum Extension: UInt8 {
        case startedAt = 1
    }

    private enum Tag: UInt8 {
        case orchestratorStarted = 1, executionStarted, taskScheduled, taskCompleted, taskFailed, timerCreated,
            timerFired, eventRaised, eventSent, subOrchestrationCreated, subOrchestrationCompleted,
            subOrchestrationFailed, executionSuspended, executionResumed, executionTerminated, continuedAsNew,
            executionCompleted, orchestratorCompleted, versionMarker
    }

    /// Encodes an event.
    @_spi(Backend) public static func encode(_ event: HistoryEvent) -> [UInt8] {
        var w = ByteWriter()
        w.buffer.reserveCapacity(32)
        w.byte(formatVersion)
        switch event.kind {
        case .orchestratorStarted:
            w.header(Tag.orchestratorStarted.rawValue, event)
        case let .executionStarted(name, executionID, input, parent, scheduledStart):
            w.header(Tag.executionStarted.rawValue, event)
            w.string(name); w.string(executionID); w.payload(input)
            if let parent {
                w.byte(1); w.string(parent.instanceID); w.string(parent.executionID); w.int(parent.taskID); w.string(parent.name)
            } else {
                w.byte(0)
            }
            w.optionalDate(scheduledStart)
        case let .taskScheduled(name, input):
            w.header(Tag.taskScheduled.rawValue, event); w.string(name); w.payload(input)
        case let .taskCompleted(scheduledID, result):
            w.header(Tag.taskCompleted.rawValue, event); w.int(scheduledID); w.payload(result)
        case let .taskFailed(scheduledID, failure):
            w.header(Tag.taskFailed.rawValue, event); w.int(scheduledID); w.failure(failure)
        case let .timerCreated(fireAt):
            w.header(Tag.timerCreated.rawValue, event); w.date(fireAt)
        case let .timerFired(scheduledID, fireAt):
            w.header(Tag.timerFired.rawValue, event); w.int(scheduledID); w.date(fireAt)
        case let .eventRaised(name, input):
            w.header(Tag.eventRaised.rawValue, event); w.string(name); w.payload(input)
        case let .eventSent(target, name, input):
            w.header(Tag.eventSent.rawValue, event); w.string(target); w.string(name); w.payload(input)
        case let .subOrchestrationCreated(name, instanceID, input):
            w.header(Tag.subOrchestrationCreated.rawValue, event); w.string(name); w.string(instanceID); w.payload(input)
        case let .subOrchestrationCompleted(scheduledID, result):
            w.header(Tag.subOrchestrationCompleted.rawValue, event); w.int(scheduledID); w.payload(result)
        case let .subOrchestrationFailed(scheduledID, failure):
            w.header(Tag.subOrchestrationFailed.rawValue, event); w.int(scheduledID); w.failure(failure)
        case let .executionSuspended(reason):
            w.header(Tag.executionSuspended.rawValue, event); w.optionalString(reason)
        case let .executionResumed(reason):
            w.header(Tag.executionResumed.rawValue, event); w.optionalString(reason)
        case let .executionTerminated(reason, recursive):
            w.header(Tag.executionTerminated.rawValue, event); w.optionalString(reason); w.byte(recursive ? 1 : 0)
        case let .continuedAsNew(input):
            w.header(Tag.continuedAsNew.rawValue, event); w.payload(input)
        case let .executionCompleted(status, result, failure):
            w.header(Tag.executionCompleted.rawValue, event); w.string(status.rawValue); w.payload(result)
            if let failure { w.byte(1); w.failure(failure) } else { w.byte(0) }
        case .orchestratorCompleted:
            w.header(Tag.orchestratorCompleted.rawValue, event)
        case let .versionMarker(changeID):
            w.header(Tag.versionMarker.rawValue, event); w.string(changeID)
        }
        if let startedAt = event.startedAt {
            w.byte(Extension.startedAt.rawValue); w.date(startedAt)
        }
        return w.buffer
    }

    /// Decodes an event.
    /// - Throws: ``CodecError`` when the bytes are not a valid encoding.
    @_spi(Backend) public static func decode(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> HistoryEvent {
        var r = ByteReader(bytes)
        let version = try r.byte()
        guard version == formatVersion else { throw CodecError("unknown event format version \(version)") }
        let rawTag = try r.byte()
        guard let tag = Tag(rawValue: rawTag) else { throw CodecError("unknown event kind \(rawTag)") }
        let eventID = try r.int()
        let timestamp = try r.date()
        let kind: HistoryEvent.Kind
        switch tag {
        case .orchestratorStarted: kind = .orchestratorStarted
        case .executionStarted:
            let name = try r.string(), executionID = try r.string(), input = try r.payload()
            var parent: HistoryEvent.ParentInstance?
            if try r.byte() == 1 {
                parent = HistoryEvent.ParentInstance(
                    instanceID: try r.string(), executionID: try r.string(),
                    taskID: try r.int(), name: try r.string())
            }
            kind = .executionStarted(
                name: name, executionID: executionID, input: input, parent: parent,
                scheduledStart: try r.optionalDate())
        case .taskScheduled: kind = .taskScheduled(name: try r.string(), input: try r.payload())
        case .taskCompleted: kind = .taskCompleted(scheduledID: try r.int(), result: try r.payload())
        case .taskFailed: kind = .taskFailed(scheduledID: try r.int(), failure: try r.failure())
        case .timerCreated: kind = .timerCreated(fireAt: try r.date())
        case .timerFired: kind = .timerFired(scheduledID: try r.int(), fireAt: try r.date())
        case .eventRaised: kind = .eventRaised(name: try r.string(), input: try r.payload())
        case .eventSent: kind = .eventSent(targetInstanceID: try r.string(), name: try r.string(), input: try r.payload())
        case .subOrchestrationCreated:
            kind = .subOrchestrationCreated(name: try r.string(), instanceID: try r.string(), input: try r.payload())
        case .subOrchestrationCompleted: kind = .subOrchestrationCompleted(scheduledID: try r.int(), result: try r.payload())
        case .subOrchestrationFailed: kind = .subOrchestrationFailed(scheduledID: try r.int(), failure: try r.failure())
        case .executionSuspended: kind = .executionSuspended(reason: try r.optionalString())
        case .executionResumed: kind = .executionResumed(reason: try r.optionalString())
        case .executionTerminated: kind = .executionTerminated(reason: try r.optionalString(), recursive: try r.byte() != 0)
        case .continuedAsNew: kind = .continuedAsNew(input: try r.payload())
        case .executionCompleted:
            let rawStatus = try r.string()
            guard let status = OrchestrationStatus(rawValue: rawStatus) else { throw CodecError("unknown status '\(rawStatus)'") }
            let result = try r.payload()
            let failure = try r.byte() == 1 ? try r.failure() : nil
            kind = .executionCompleted(status: status, result: result, failure: failure)
        case .orchestratorCompleted: kind = .orchestratorCompleted
        case .versionMarker: kind = .versionMarker(changeID: try r.string())
        }
        var startedAt: Date?
        while !r.isAtEnd {
            let rawExtension = try r.byte()
            switch Extension(rawValue: rawExtension) {
            case .startedAt?:
                guard startedAt == nil else { throw CodecError("startedAt given twice in a \(tag) event") }
                startedAt = try r.date()
            case nil:
                throw CodecError("unknown extension \(rawExtension) after a \(tag) event (\(r.remaining) more bytes)")
            }
        }
        return HistoryEvent(eventID: eventID, timestamp: timestamp, kind: kind, startedAt: startedAt)
    }

    /// The first byte of a row that holds several events (``encodeRows(_:maxRowBytes:)``); never a
    /// ``formatVersion``, so a reader tells the two apart by the first byte.
    @_spi(Backend) public static let groupMarker: UInt8 = 0xE1

    /// Encodes the events an episode appends as few rows: consecutive events share a row, a group
    /// marker, a varint count, then each event's encoding behind a varint length, until a row holds
    /// `maxRowBytes`. A row of one event is that event's plain encoding, byte for byte a row written
    /// before groups existed.
    ///
    /// Why: a history row per event made an episode's commit one B-tree insert per event; a
    /// one-activity round appends a dozen. The bound keeps a row far below the database's blob limit
    /// however large the fan-out.
    /// - Returns: each row with the offset of its first event in `events`.
    @_spi(Backend) public static func encodeRows(_ events: [HistoryEvent], maxRowBytes: Int = 64 * 1024) -> [(first: Int, bytes: [UInt8])] {
        var rows: [(first: Int, bytes: [UInt8])] = []
        var pending: [[UInt8]] = []
        var pendingBytes = 0
        var first = 0
        func flush() {
            guard !pending.isEmpty else { return }
            if pending.count == 1 {
                rows.append((first, pending[0]))
            } else {
                var w = ByteWriter()
                w.buffer.reserveCapacity(pendingBytes + 2 * pending.count + 6)
                w.byte(groupMarker)
                w.varint(UInt64(pending.count))
                for encoded in pending {
                    w.varint(UInt64(encoded.count))
                    w.buffer.append(contentsOf: encoded)
                }
                rows.append((first, w.buffer))
            }
            first += pending.count
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
        }
        for event in events {
            let encoded = encode(event)
            if !pending.isEmpty && pendingBytes + encoded.count > maxRowBytes { flush() }
            pending.append(encoded)
            pendingBytes += encoded.count
        }
        flush()
        return rows
    }

    /// Decodes a row written by ``encodeRows(_:maxRowBytes:)`` (one event or a group), appending
    /// its events in order.
    /// - Throws: ``CodecError`` when the bytes are not a valid row; nothing is appended then.
    @_spi(Backend) public static func decodeRow(_ bytes: UnsafeRawBufferPointer, into events: inout [HistoryEvent]) throws(CodecError) {
        guard bytes.first == groupMarker else {
            events.append(try decode(bytes))
            return
        }
        var r = ByteReader(bytes)
        _ = try r.byte()
        let count = try r.varint()
        // Each member takes at least two bytes, so a count beyond that is damage, not a huge group.
        guard count >= 2, count <= UInt64(r.remaining / 2) else { throw CodecError("a group of \(count) events in \(bytes.count) bytes") }
        var decoded: [HistoryEvent] = []
        decoded.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            let member = try r.rawBytes()
            do {
                decoded.append(try decode(member))
            } catch {
                throw CodecError("event \(index) of a group of \(count): \(error.description)")
            }
        }
        guard r.isAtEnd else { throw CodecError("\(r.remaining) bytes after a group of \(count) events") }
        events.append(contentsOf: decoded)
    }

    /// ``decodeRow(_:into:)`` for a history row of `instanceID`, failing as `corruptData` that names
    /// the instance and where in its history the row is.
    @_spi(Backend) public static func decodeHistoryRow(_ bytes: UnsafeRawBufferPointer, of instanceID: String, into events: inout [HistoryEvent]) throws {
        do {
            try decodeRow(bytes, into: &events)
        } catch {
            throw DurableTaskError(.corruptData, "an undecodable history row of instance '\(instanceID)' (after event \(events.count)): \(error)")
        }
    }

    /// Encodes failure details on their own (the `failure` column of `instances`).
    @_spi(Backend) public static func encodeFailure(_ failure: FailureDetails) -> [UInt8] {
        var w = ByteWriter()
        w.byte(formatVersion)
        w.failure(failure)
        return w.buffer
    }

    /// Decodes failure details encoded by ``encodeFailure(_:)``.
    @_spi(Backend) public static func decodeFailure(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> FailureDetails {
        var r = ByteReader(bytes)
        let version = try r.byte()
        guard version == formatVersion else { throw CodecError("unknown failure format version \(version)") }
        let failure = try r.failure()
        guard r.isAtEnd else { throw CodecError("trailing bytes after failure details") }
        return failure
    }
}

/// Why stored bytes could not be decoded.
/// The rows an episode appends to its history (``HistoryEventCodec/encodeRows(_:maxRowBytes:)``),
/// encoded by the caller so a database backend's connection thread spends its time on the database.
@_spi(Backend) public struct HistoryRows: Sendable {
    /// Each row with the offset of its first event.
    @_spi(Backend) public var rows: [(first: Int, bytes: [UInt8])]
    /// How many events the rows hold.
    @_spi(Backend) public var events: Int

    /// Encodes `events` as rows.
    @_spi(Backend) public init(_ events: [HistoryEvent]) {
        rows = HistoryEventCodec.encodeRows(events)
        self.events = events.count
    }
}

@_spi(Backend) public struct CodecError: Error, CustomStringConvertible {
    @_spi(Backend) public var description: String
    @_spi(Backend) public init(_ description: String) { self.description = description }
}

private struct ByteWriter {
    var buffer: [UInt8] = []

    mutating func byte(_ value: UInt8) { buffer.append(value) }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.append(UInt8(v))
    }

    mutating func int(_ value: Int) {
        let v = Int64(value)
        varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    mutating func header(_ tag: UInt8, _ event: HistoryEvent) {
        byte(tag)
        int(event.eventID)
        date(event.timestamp)
    }

    mutating func date(_ value: Date) {
        var bits = value.timeIntervalSinceReferenceDate.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { buffer.append(contentsOf: $0) }
    }

    mutating func optionalDate(_ value: Date?) {
        if let value { byte(1); date(value) } else { byte(0) }
    }

    mutating func bytes<C: Collection>(_ value: C) where C.Element == UInt8 {
        varint(UInt64(value.count))
        buffer.append(contentsOf: value)
    }

    mutating func string(_ value: String) { bytes(value.utf8) }

    mutating func optionalString(_ value: String?) {
        if let value { byte(1); string(value) } else { byte(0) }
    }

    mutating func payload(_ value: Payload?) {
        if let value { byte(1); bytes(value.data) } else { byte(0) }
    }

    mutating func failure(_ value: FailureDetails) {
        string(value.errorType)
        string(value.message)
        byte(value.isRetriable ? 1 : 0)
        varint(UInt64(value.inner.count))
        for inner in value.inner { failure(inner) }
    }
}

private struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func byte() throws(CodecError) -> UInt8 {
        guard offset < bytes.count else { throw CodecError("unexpected end of data at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint() throws(CodecError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw CodecError("varint too long at byte \(offset)") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    mutating func int() throws(CodecError) -> Int {
        let raw = try varint()
        let value = Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
        return Int(value)
    }

    mutating func date() throws(CodecError) -> Date {
        guard remaining >= 8 else { throw CodecError("unexpected end of data in a date at byte \(offset)") }
        var bits: UInt64 = 0
        withUnsafeMutableBytes(of: &bits) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + 8])) }
        offset += 8
        return Date(timeIntervalSinceReferenceDate: Double(bitPattern: UInt64(littleEndian: bits)))
    }

    mutating func optionalDate() throws(CodecError) -> Date? {
        try byte() == 1 ? try date() : nil
    }

    mutating func rawBytes() throws(CodecError) -> UnsafeRawBufferPointer {
        let count = try varint()
        guard count <= UInt64(remaining) else { throw CodecError("length \(count) exceeds the remaining \(remaining) bytes") }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(count)])
        offset += Int(count)
        return slice
    }

    mutating func string() throws(CodecError) -> String {
        String(decoding: try rawBytes(), as: UTF8.self)
    }

    mutating func optionalString() throws(CodecError) -> String? {
        try byte() == 1 ? try string() : nil
    }

    mutating func payload() throws(CodecError) -> Payload? {
        try byte() == 1 ? Payload(data: Data(try rawBytes())) : nil
    }

    mutating func failure(depth: Int = 0) throws(CodecError) -> FailureDetails {
        guard depth < 64 else { throw CodecError("failure details nested too deeply") }
        let errorType = try string()
        let message = try string()
        let retriable = try byte() != 0
        let innerCount = try varint()
        guard innerCount <= UInt64(remaining) else { throw CodecError("bad inner failure count \(innerCount)") }
        var details = FailureDetails(errorType: errorType, message: message, isRetriable: retriable)
        for _ in 0..<innerCount { details.inner.append(try failure(depth: depth + 1)) }
        return details
    }
}
