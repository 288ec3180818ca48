import Foundation

/// An action an orchestrator took: what the code did at one sequence number. History confirms it with
/// the matching event (`taskScheduled`, `timerCreated`, `subOrchestrationCreated`, `eventSent`).
package enum OrchestratorAction: Sendable, Equatable, CustomStringConvertible {
    case scheduleActivity(name: String, input: Payload?)
    case createTimer(fireAt: Date)
    case createSubOrchestration(name: String, instanceID: String, input: Payload?)
    case sendEvent(targetInstanceID: String, name: String, input: Payload?)
    case recordVersionMarker(changeID: String)

    package var description: String {
        switch self {
        case let .scheduleActivity(name, _): "call activity '\(name)'"
        case .createTimer: "create a timer"
        case let .createSubOrchestration(name, id, _): "call sub-orchestrator '\(name)' (instance '\(id)')"
        case let .sendEvent(target, name, _): "send event '\(name)' to '\(target)'"
        case let .recordVersionMarker(changeID): "take the new path of change '\(changeID)' (isPatched)"
        }
    }

    /// Whether a history event records this action (same kind, same name).
    func matches(_ event: HistoryEvent) -> Bool {
        switch (self, event.kind) {
        case let (.scheduleActivity(name, _), .taskScheduled(historyName, _)): name == historyName
        case (.createTimer, .timerCreated): true
        case let (.createSubOrchestration(name, _, _), .subOrchestrationCreated(historyName, _, _)): name == historyName
        case let (.sendEvent(target, name, _), .eventSent(historyTarget, historyName, _)): name == historyName && target == historyTarget
        case let (.recordVersionMarker(changeID), .versionMarker(historyChangeID)): changeID == historyChangeID
        default: false
        }
    }
}

/// How a finished orchestration ended.
enum Completion {
    case completed(Payload?)
    case failed(FailureDetails)
    /// `recursive`: also terminate the sub-orchestrations it started that are still running.
    case terminated(reason: String?, recursive: Bool)
    case continuedAsNew(input: Payload?, preserveEvents: Bool)
}

/// Settings the engine needs from the worker.
package struct EngineOptions: Sendable {
    package var maxPayloadBytes: Int
    package var log: @Sendable (LogLevel, String) -> Void

    package init(
        maxPayloadBytes: Int = PayloadCodec.defaultMaxPayloadBytes,
        log: @escaping @Sendable (LogLevel, String) -> Void = { _, _ in }
    ) {
        self.maxPayloadBytes = maxPayloadBytes
        self.log = log
    }
}

/// Name-based UUIDs: the same name always gives the same UUID, so ``OrchestrationContext/newUUID()``
/// is stable across replays. Two FNV-1a 64-bit hashes with different seeds fill the 128 bits.
enum DeterministicUUID {
    static func make(name: String) -> UUID {
        func fnv(_ seed: UInt64) -> UInt64 {
            var hash = seed
            for byte in name.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            return hash
        }
        let high = fnv(0xcbf2_9ce4_8422_2325)
        let low = fnv(0x84222325_cbf29ce4)
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x50  // version 5 (name-based)
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}
