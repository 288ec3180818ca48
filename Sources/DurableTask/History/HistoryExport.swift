import Foundation

/// An instance's history as a stable, documented JSON document — for keeping real histories as test
/// fixtures and replaying them against new code (`OrchestrationReplayer` in `DurableTaskTesting`), and for
/// `durabletask export`.
///
/// The format (version 1):
///
/// ```json
/// {
///   "format": "durabletask-history", "version": 1,
///   "instanceID": "order-42", "name": "PlaceOrder",
///   "events": [
///     { "eventID": -1, "time": 1796175539.013, "type": "orchestratorStarted" },
///     { "eventID": 0, "time": 1796175539.013, "type": "taskScheduled", "name": "ChargeCard", "input": "{\"amount\":12}" }
///   ]
/// }
/// ```
///
/// - `time` is seconds since 1970, a JSON number; so are `startedAt` (activity results), `fireAt` and
///   `scheduledStart`. A `Date` counts from 2001, so a time read back can differ from the one written in
///   its last bits (well under a microsecond); replay never compares times.
/// - `type` is the event kind (``HistoryEvent/kindName``); the other fields are the kind's values, under
///   the names of ``HistoryEvent/Kind``'s labels: `name`, `executionID`, `input`, `parent` (an object
///   with `instanceID`, `executionID`, `taskID`, `name`), `scheduledStart`, `scheduledID`, `result`,
///   `failure` (an object with `errorType`, `message`, `isRetriable`, `inner`), `fireAt`,
///   `targetInstanceID`, `instanceID`, `reason`, `recursive`, `status`, `changeID`.
/// - Payloads (`input`, `result`) are strings holding the payload's JSON text, byte for byte.
/// - A reader ignores fields it does not know; a new event kind or a change of meaning raises the version.
public enum HistoryExport {
    /// The `format` value of every export.
    public static let format = "durabletask-history"
    /// The format version this library writes and reads.
    public static let version = 1

    /// An exported history: the instance, its orchestrator's name, and its events.
    public struct Document: Sendable, Equatable {
        /// The instance ID.
        public var instanceID: String
        /// The orchestrator's name, from the `executionStarted` event when there is one.
        public var name: String?
        /// The history, in order.
        public var events: [HistoryEvent]

        /// Creates a document.
        public init(instanceID: String, name: String? = nil, events: [HistoryEvent]) {
            self.instanceID = instanceID
            self.name =
                name
                ?? events.lazy.compactMap { event -> String? in
                    if case let .executionStarted(name, _, _, _, _) = event.kind { return name }
                    return nil
                }.first
            self.events = events
        }
    }

    /// Encodes a history as the JSON document described above (pretty-printed, keys sorted).
    public static func encode(_ document: Document) throws -> Data {
        var root: [String: Any] = [
            "format": format, "version": version, "instanceID": document.instanceID,
            "events": document.events.map(object(for:))
        ]
        if let name = document.name { root["name"] = name }
        return try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
    }

    /// Decodes a JSON document written by ``encode(_:)``.
    /// - Throws: `DurableTaskError(.payloadInvalid)` naming what is wrong (not JSON, another format, a
    ///   newer version, an event that cannot be read).
    public static func decode(_ data: Data) throws -> Document {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw DurableTaskError(.payloadInvalid, "the history export is not a JSON object")
        }
        guard root["format"] as? String == format else {
            throw DurableTaskError(.payloadInvalid, "not a DurableTask history export (format '\(root["format"] ?? "missing")')")
        }
        guard let documentVersion = root["version"] as? Int, documentVersion >= 1 else {
            throw DurableTaskError(.payloadInvalid, "the history export has no valid version (\(root["version"] ?? "missing"))")
        }
        guard documentVersion <= version else {
            throw DurableTaskError(
                .payloadInvalid,
                "history export version \(documentVersion) is newer than this library's \(version): read it with a newer DurableTask")
        }
        guard let instanceID = root["instanceID"] as? String, let events = root["events"] as? [[String: Any]] else {
            throw DurableTaskError(.payloadInvalid, "the history export has no instanceID or no events")
        }
        let decoded = try events.enumerated().map { index, object in
            do {
                return try event(from: object)
            } catch let error as DurableTaskError {
                throw DurableTaskError(.payloadInvalid, "event \(index) of the history of '\(instanceID)': \(error.message)")
            }
        }
        return Document(instanceID: instanceID, name: root["name"] as? String, events: decoded)
    }

    // MARK: Events

    private static func object(for event: HistoryEvent) -> [String: Any] {
        var o: [String: Any] = ["eventID": event.eventID, "time": event.timestamp.timeIntervalSince1970, "type": event.kindName]
        if let startedAt = event.startedAt { o["startedAt"] = startedAt.timeIntervalSince1970 }
        func payload(_ key: String, _ value: Payload?) {
            if let value { o[key] = String(decoding: value.data, as: UTF8.self) }
        }
        switch event.kind {
        case .orchestratorStarted, .orchestratorCompleted:
            break
        case let .executionStarted(name, executionID, input, parent, scheduledStart):
            o["name"] = name
            o["executionID"] = executionID
            payload("input", input)
            if let parent {
                o["parent"] = ["instanceID": parent.instanceID, "executionID": parent.executionID, "taskID": parent.taskID, "name": parent.name]
            }
            if let scheduledStart { o["scheduledStart"] = scheduledStart.timeIntervalSince1970 }
        case let .taskScheduled(name, input):
            o["name"] = name
            payload("input", input)
        case let .taskCompleted(id, result), let .subOrchestrationCompleted(id, result):
            o["scheduledID"] = id
            payload("result", result)
        case let .taskFailed(id, failure), let .subOrchestrationFailed(id, failure):
            o["scheduledID"] = id
            o["failure"] = object(for: failure)
        case let .timerCreated(fireAt):
            o["fireAt"] = fireAt.timeIntervalSince1970
        case let .timerFired(id, fireAt):
            o["scheduledID"] = id
            o["fireAt"] = fireAt.timeIntervalSince1970
        case let .eventRaised(name, input):
            o["name"] = name
            payload("input", input)
        case let .eventSent(target, name, input):
            o["targetInstanceID"] = target
            o["name"] = name
            payload("input", input)
        case let .subOrchestrationCreated(name, instanceID, input):
            o["name"] = name
            o["instanceID"] = instanceID
            payload("input", input)
        case let .executionSuspended(reason), let .executionResumed(reason):
            if let reason { o["reason"] = reason }
        case let .executionTerminated(reason, recursive):
            if let reason { o["reason"] = reason }
            o["recursive"] = recursive
        case let .continuedAsNew(input):
            payload("input", input)
        case let .executionCompleted(status, result, failure):
            o["status"] = status.rawValue
            payload("result", result)
            if let failure { o["failure"] = object(for: failure) }
        case let .versionMarker(changeID):
            o["changeID"] = changeID
        }
        return o
    }

    private static func object(for failure: FailureDetails) -> [String: Any] {
        [
            "errorType": failure.errorType, "message": failure.message, "isRetriable": failure.isRetriable,
            "inner": failure.inner.map(object(for:))
        ]
    }

    private static func event(from o: [String: Any]) throws -> HistoryEvent {
        func string(_ key: String) throws -> String {
            guard let value = o[key] as? String else { throw DurableTaskError(.payloadInvalid, "'\(key)' is missing or not a string") }
            return value
        }
        func int(_ key: String) throws -> Int {
            guard let value = o[key] as? Int else { throw DurableTaskError(.payloadInvalid, "'\(key)' is missing or not an integer") }
            return value
        }
        func date(_ key: String) throws -> Date {
            guard let value = o[key] as? Double else { throw DurableTaskError(.payloadInvalid, "'\(key)' is missing or not a number") }
            return Date(timeIntervalSince1970: value)
        }
        func payload(_ key: String) -> Payload? { (o[key] as? String).map(Payload.init(json:)) }
        func failure(_ key: String) throws -> FailureDetails {
            guard let value = o[key] as? [String: Any] else { throw DurableTaskError(.payloadInvalid, "'\(key)' is missing or not an object") }
            return try failureDetails(from: value)
        }
        let type = try string("type")
        let kind: HistoryEvent.Kind
        switch type {
        case "orchestratorStarted": kind = .orchestratorStarted
        case "orchestratorCompleted": kind = .orchestratorCompleted
        case "executionStarted":
            var parent: HistoryEvent.ParentInstance?
            if let p = o["parent"] as? [String: Any] {
                guard let instanceID = p["instanceID"] as? String, let executionID = p["executionID"] as? String,
                    let taskID = p["taskID"] as? Int, let name = p["name"] as? String
                else {
                    throw DurableTaskError(.payloadInvalid, "'parent' lacks instanceID, executionID, taskID or name")
                }
                parent = HistoryEvent.ParentInstance(instanceID: instanceID, executionID: executionID, taskID: taskID, name: name)
            }
            kind = .executionStarted(
                name: try string("name"), executionID: try string("executionID"), input: payload("input"),
                parent: parent, scheduledStart: o["scheduledStart"] == nil ? nil : try date("scheduledStart"))
        case "taskScheduled": kind = .taskScheduled(name: try string("name"), input: payload("input"))
        case "taskCompleted": kind = .taskCompleted(scheduledID: try int("scheduledID"), result: payload("result"))
        case "taskFailed": kind = .taskFailed(scheduledID: try int("scheduledID"), failure: try failure("failure"))
        case "timerCreated": kind = .timerCreated(fireAt: try date("fireAt"))
        case "timerFired": kind = .timerFired(scheduledID: try int("scheduledID"), fireAt: try date("fireAt"))
        case "eventRaised": kind = .eventRaised(name: try string("name"), input: payload("input"))
        case "eventSent": kind = .eventSent(targetInstanceID: try string("targetInstanceID"), name: try string("name"), input: payload("input"))
        case "subOrchestrationCreated":
            kind = .subOrchestrationCreated(name: try string("name"), instanceID: try string("instanceID"), input: payload("input"))
        case "subOrchestrationCompleted": kind = .subOrchestrationCompleted(scheduledID: try int("scheduledID"), result: payload("result"))
        case "subOrchestrationFailed": kind = .subOrchestrationFailed(scheduledID: try int("scheduledID"), failure: try failure("failure"))
        case "executionSuspended": kind = .executionSuspended(reason: o["reason"] as? String)
        case "executionResumed": kind = .executionResumed(reason: o["reason"] as? String)
        case "executionTerminated":
            // "recurse": the key's name in exports written before the rename.
            kind = .executionTerminated(reason: o["reason"] as? String, recursive: (o["recursive"] ?? o["recurse"]) as? Bool ?? true)
        case "continuedAsNew": kind = .continuedAsNew(input: payload("input"))
        case "executionCompleted":
            let raw = try string("status")
            guard let status = OrchestrationStatus(rawValue: raw) else { throw DurableTaskError(.payloadInvalid, "unknown status '\(raw)'") }
            kind = .executionCompleted(status: status, result: payload("result"), failure: o["failure"] == nil ? nil : try failure("failure"))
        case "versionMarker": kind = .versionMarker(changeID: try string("changeID"))
        default: throw DurableTaskError(.payloadInvalid, "unknown event type '\(type)'")
        }
        return HistoryEvent(
            eventID: try int("eventID"), timestamp: try date("time"), kind: kind,
            startedAt: o["startedAt"] == nil ? nil : try date("startedAt"))
    }

    private static func failureDetails(from o: [String: Any]) throws -> FailureDetails {
        guard let errorType = o["errorType"] as? String, let message = o["message"] as? String else {
            throw DurableTaskError(.payloadInvalid, "a failure lacks errorType or message")
        }
        var details = FailureDetails(errorType: errorType, message: message, isRetriable: o["isRetriable"] as? Bool ?? true)
        details.inner = try ((o["inner"] as? [[String: Any]]) ?? []).map(failureDetails(from:))
        return details
    }
}
