import DurableTask
import Foundation

/// A web dashboard and JSON API for the instances of any ``Backend``, served from inside your process.
///
/// Read-only and on the loopback interface unless told otherwise: management calls (schedule, raise,
/// terminate, suspend, resume, purge) answer `403` until ``Options/allowActions`` is set.
///
/// ```swift
/// let dashboard = Dashboard(client: DurableTaskClient(backend: backend))
/// try await dashboard.run(host: "127.0.0.1", port: 8080)   // until the task is cancelled
/// ```
///
/// Pages: `/` lists instances (filters, paging, refreshes while any is running); `/instances/<id>`
/// shows one with its timeline, history, sequence and input/output views. The JSON API lives under
/// `/api/` (see the README).
public struct Dashboard: Sendable {
    /// How the dashboard behaves.
    public struct Options: Sendable {
        /// Whether management calls are allowed (off by default: a dashboard only looks).
        public var allowActions: Bool
        /// Instances per page of the list (at least 1; smaller values count as 1).
        public var pageSize: Int
        /// Rows per page of the history and input/output views (at least 1; smaller values count as 1).
        public var rowsPerPage: Int
        /// The most bars in the timeline; beyond, tasks of one name are grouped into shared bars.
        public var maxTimelineLanes: Int
        /// How often pages of running instances reload themselves, in seconds; 0 turns it off.
        public var refreshSeconds: Int
        /// The HTTP server's request limits and timeouts.
        public var limits: HTTPServerLimits

        /// Creates options.
        public init(
            allowActions: Bool = false, pageSize: Int = 50, rowsPerPage: Int = 200, maxTimelineLanes: Int = 60,
            refreshSeconds: Int = 3, limits: HTTPServerLimits = HTTPServerLimits()
        ) {
            self.allowActions = allowActions
            self.pageSize = max(1, pageSize)
            self.rowsPerPage = max(1, rowsPerPage)
            self.maxTimelineLanes = maxTimelineLanes
            self.refreshSeconds = refreshSeconds
            self.limits = limits
        }
    }

    /// The client the dashboard reads and acts through.
    public let client: DurableTaskClient
    /// Its options.
    public let options: Options

    /// Creates a dashboard over a client.
    public init(client: DurableTaskClient, options: Options = Options()) {
        self.client = client
        self.options = options
    }

    /// Serves the dashboard until the calling task is cancelled.
    /// - Parameters:
    ///   - host: the IPv4 address to bind; the loopback address by default, so only this machine can connect.
    ///   - port: the TCP port; 0 picks a free one.
    ///   - onListening: called with the port once the server accepts connections.
    /// - Throws: ``DashboardError`` when the address cannot be bound.
    public func run(host: String = "127.0.0.1", port: Int = 8080, onListening: @Sendable (Int) -> Void = { _ in }) async throws {
        let running = try start(host: host, port: port)
        onListening(running.port)
        await withTaskCancellationHandler {
            await running.server.waitUntilStopped()
        } onCancel: {
            running.server.stop()
        }
    }

    /// Starts serving in the background and returns at once; stop it with ``RunningDashboard/stop()``.
    /// - Throws: ``DashboardError`` when the address cannot be bound.
    public func start(host: String = "127.0.0.1", port: Int = 0) throws -> RunningDashboard {
        let isLoopback = host == "127.0.0.1" || host == "localhost"
        let server = try HTTPServer(host: host, port: port, limits: options.limits) { [self] request in
            // Bound to loopback, only accept requests addressed to loopback names: a web page elsewhere
            // cannot reach the dashboard through DNS rebinding (its Host would be the attacker's name).
            if isLoopback, let hostHeader = request.header("host"), !Dashboard.isLoopbackHost(hostHeader) {
                return .text("421 Misdirected Request: this dashboard only answers requests for localhost\n", status: 421)
            }
            return await respond(to: request)
        }
        server.start()
        return RunningDashboard(server: server)
    }

    static func isLoopbackHost(_ value: String) -> Bool {
        var host = value.lowercased()
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        return host == "localhost" || host == "127.0.0.1" || host == "::1" || host.hasSuffix(".localhost")
    }

    /// Answers one request: a page, a JSON document, or an error. Never throws; backend errors become
    /// `4xx`/`5xx` answers. Use it to mount the dashboard in a server of your own.
    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        do {
            return try await route(request)
        } catch let error as DurableTaskError {
            let status: Int =
                switch error.code {
                case .instanceNotFound: 404
                case .invalidArgument, .payloadTooLarge: 400
                case .instanceAlreadyExists, .invalidState: 409
                default: 500
                }
            return errorResponse(request, status: status, message: error.message)
        } catch let error as APIError {
            return errorResponse(request, status: error.status, message: error.message)
        } catch {
            return errorResponse(request, status: 500, message: String(describing: error))
        }
    }

    private func errorResponse(_ request: HTTPRequest, status: Int, message: String) -> HTTPResponse {
        if request.pathSegments.first == "api" {
            return .json(
                JSON.object([("error", JSON.object([("status", String(status)), ("message", JSON.string(message))]))]) + "\n",
                status: status)
        }
        return .html(Pages.errorPage(status: status, message: message), status: status)
    }

    struct APIError: Error {
        var status: Int
        var message: String
        init(_ status: Int, _ message: String) { self.status = status; self.message = message }
    }

    private func route(_ request: HTTPRequest) async throws -> HTTPResponse {
        let s = request.pathSegments
        let method = request.method
        if s.first == "api" { return try await api(request, Array(s.dropFirst())) }
        guard method == "GET" || method == "HEAD" else { throw APIError(405, "pages are read with GET; actions go through /api/") }
        switch s.count {
        case 0: return .html(try await Pages(dashboard: self).list(request))
        case 2 where s[0] == "instances": return .html(try await Pages(dashboard: self).instance(s[1], request))
        case 2 where s[0] == "static":
            switch s[1] {
            case "dashboard.css":
                return HTTPResponse(
                    status: 200, headers: [("Content-Type", "text/css; charset=utf-8")] + HTTPResponse.securityHeaders,
                    body: Array(Assets.css.utf8))
            case "dashboard.js":
                return HTTPResponse(
                    status: 200, headers: [("Content-Type", "text/javascript; charset=utf-8")] + HTTPResponse.securityHeaders,
                    body: Array(Assets.script.utf8))
            default: break
            }
        default: break
        }
        throw APIError(404, "no page at \(request.path)")
    }

    // MARK: JSON API

    private func api(_ request: HTTPRequest, _ s: [String]) async throws -> HTTPResponse {
        switch (request.method, s.count) {
        case ("GET", 1) where s[0] == "instances":
            let ids = request.parameters("id").filter { !$0.isEmpty }
            if !ids.isEmpty { return .json(try await many(ids)) }
            let page = try await client.query(try query(from: request))
            return .json(
                JSON.object([
                    ("instances", JSON.array(page.instances.map(Self.instanceJSON))),
                    ("continuationToken", JSON.optionalString(page.continuationToken))
                ]) + "\n")
        case ("POST", 2) where s[0] == "instances" && s[1] == "batch":
            struct Body: Decodable { var instanceIDs: [String] }
            let body: Body = try decodeBody(request)
            return .json(try await many(body.instanceIDs))
        case ("GET", 2) where s[0] == "instances":
            guard let instance = try await client.getInstance(s[1]) else {
                throw APIError(404, "no instance '\(s[1])'")
            }
            return .json(Self.instanceJSON(instance) + "\n")
        case ("GET", 3) where s[0] == "instances" && s[2] == "history":
            let history = try await client.getHistory(s[1])
            let offset = try intParameter(request, "offset", default: 0, range: 0...Int.max)
            let limit = try intParameter(request, "limit", default: 1000, range: 1...10_000)
            let slice = history.dropFirst(offset).prefix(limit)
            return .json(
                JSON.object([
                    ("instanceID", JSON.string(s[1])), ("total", String(history.count)), ("offset", String(offset)),
                    ("events", JSON.array(slice.map(Self.eventJSON)))
                ]) + "\n")
        case ("GET", 3) where s[0] == "instances" && s[2] == "summary":
            let history = try await client.getHistory(s[1])
            return .json(Self.summaryJSON(InstanceSummary(history: history), maxLanes: options.maxTimelineLanes) + "\n")
        case ("POST", 1) where s[0] == "instances":
            try checkActionAllowed(request)
            struct Body: Decodable { var name: String; var input: JSONValue?; var instanceID: String?; var startAt: String? }
            let body: Body = try decodeBody(request)
            var startAt: Date?
            if let text = body.startAt {
                guard let date = DashboardFormat.parseDate(text) else { throw APIError(400, "startAt '\(text)' is not a date like 2027-01-15T08:00:00Z") }
                startAt = date
            }
            let id = try await client.scheduleNewOrchestration(name: body.name, input: body.input ?? .null, instanceID: body.instanceID, startAt: startAt)
            return .json(JSON.object([("instanceID", JSON.string(id))]) + "\n", status: 201)
        case ("POST", 3) where s[0] == "instances":
            try checkActionAllowed(request)
            let id = s[1]
            struct Reason: Decodable { var reason: String?; var recursive: Bool? }
            switch s[2] {
            case "raise":
                struct Body: Decodable { var name: String; var data: JSONValue? }
                let body: Body = try decodeBody(request)
                try await client.raiseEvent(id, name: body.name, data: body.data ?? .null)
            case "terminate":
                let body: Reason = try decodeBody(request, allowEmpty: true) ?? Reason()
                try await client.terminate(id, reason: body.reason, recursive: body.recursive ?? true)
            case "suspend":
                let body: Reason = try decodeBody(request, allowEmpty: true) ?? Reason()
                try await client.suspend(id, reason: body.reason)
            case "resume":
                let body: Reason = try decodeBody(request, allowEmpty: true) ?? Reason()
                try await client.resume(id, reason: body.reason)
            default:
                throw APIError(404, "no action '\(s[2])' (raise, terminate, suspend, resume)")
            }
            return .json(JSON.object([("instanceID", JSON.string(id)), ("accepted", JSON.string(s[2]))]) + "\n", status: 202)
        case ("DELETE", 2) where s[0] == "instances":
            try checkActionAllowed(request)
            let purged = try await client.purge(s[1])
            guard purged else { throw APIError(404, "no instance '\(s[1])'") }
            return .json(JSON.object([("instanceID", JSON.string(s[1])), ("purged", "true")]) + "\n")
        case ("GET", 1) where s[0] == "info":
            return .json(JSON.object([("allowActions", options.allowActions ? "true" : "false")]) + "\n")
        default:
            throw APIError(
                s.isEmpty ? 404 : (["GET", "POST", "DELETE"].contains(request.method) ? 404 : 405),
                "no API call \(request.method) \(request.path)")
        }
    }

    private func many(_ ids: [String]) async throws -> String {
        guard ids.count <= 1000 else { throw APIError(400, "at most 1000 instance IDs per call, got \(ids.count)") }
        let found = try await client.getInstances(ids)
        return JSON.object([("instances", JSON.array(found.map { $0.map(Self.instanceJSON) ?? "null" }))]) + "\n"
    }

    private func checkActionAllowed(_ request: HTTPRequest) throws {
        guard options.allowActions else {
            throw APIError(403, "this dashboard is read-only; start it with --allow-actions (Options.allowActions) to manage instances")
        }
        // A page on another site can send a form POST here, but not with a JSON content type without
        // a CORS preflight, which this server never approves.
        guard let type = request.header("content-type")?.lowercased(), type.hasPrefix("application/json") else {
            throw APIError(415, "actions need Content-Type: application/json")
        }
    }

    private func decodeBody<T: Decodable>(_ request: HTTPRequest) throws -> T {
        guard let value: T = try decodeBody(request, allowEmpty: false) else { throw APIError(400, "the request needs a JSON body") }
        return value
    }

    private func decodeBody<T: Decodable>(_ request: HTTPRequest, allowEmpty: Bool) throws -> T? {
        if request.body.isEmpty {
            if allowEmpty { return nil }
            throw APIError(400, "the request needs a JSON body")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(request.body))
        } catch {
            throw APIError(400, "the body is not the JSON this call expects: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case let .keyNotFound(key, _)?: "missing field '\(key.stringValue)'"
        case let .typeMismatch(_, context)?, let .valueNotFound(_, context)?:
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case .dataCorrupted?: "malformed JSON"
        default: "malformed JSON"
        }
    }

    private func intParameter(_ request: HTTPRequest, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.parameter(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError(400, "parameter '\(name)' must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func query(from request: HTTPRequest) throws -> OrchestrationQuery {
        var query = OrchestrationQuery(pageSize: try intParameter(request, "pageSize", default: max(1, options.pageSize), range: 1...1000))
        let statuses = request.parameters("status").flatMap { $0.split(separator: ",") }.map(String.init).filter { !$0.isEmpty }
        if !statuses.isEmpty {
            query.statuses = Set(
                try statuses.map { name in
                    guard let status = OrchestrationStatus(rawValue: name) else {
                        throw APIError(400, "unknown status '\(name)' (\(OrchestrationStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    return status
                })
        }
        query.name = request.parameter("name")
        query.instanceIDPrefix = request.parameter("prefix")
        query.continuationToken = request.parameter("continuationToken") ?? request.parameter("after")
        for (field, keyPath) in [("createdFrom", \OrchestrationQuery.createdFrom), ("createdTo", \OrchestrationQuery.createdTo)] {
            if let text = request.parameter(field) {
                guard let date = DashboardFormat.parseDate(text) else {
                    throw APIError(400, "\(field) '\(text)' is not a date like 2027-01-15 or 2027-01-15T08:00:00Z")
                }
                query[keyPath: keyPath] = date
            }
        }
        return query
    }

    // MARK: JSON documents

    static func instanceJSON(_ m: OrchestrationMetadata) -> String {
        JSON.object([
            ("instanceID", JSON.string(m.instanceID)), ("name", JSON.string(m.name)), ("executionID", JSON.string(m.executionID)),
            ("status", JSON.string(m.status.rawValue)), ("createdAt", JSON.date(m.createdAt)), ("lastUpdatedAt", JSON.date(m.lastUpdatedAt)),
            ("completedAt", JSON.date(m.completedAt)), ("parentInstanceID", JSON.optionalString(m.parentInstanceID)),
            ("input", JSON.payload(m.input)), ("output", JSON.payload(m.output)), ("customStatus", JSON.payload(m.customStatus)),
            ("failure", JSON.failure(m.failure))
        ])
    }

    static func eventJSON(_ e: HistoryEvent) -> String {
        var fields: [(String, String)] = [("eventID", String(e.eventID)), ("timestamp", JSON.date(e.timestamp)), ("kind", JSON.string(e.kindName))]
        switch e.kind {
        case .orchestratorStarted, .orchestratorCompleted: break
        case let .executionStarted(name, executionID, input, parent, scheduledStart):
            fields += [
                ("name", JSON.string(name)), ("executionID", JSON.string(executionID)), ("input", JSON.payload(input)),
                ("parentInstanceID", JSON.optionalString(parent?.instanceID)), ("scheduledStart", JSON.date(scheduledStart))
            ]
        case let .taskScheduled(name, input): fields += [("name", JSON.string(name)), ("input", JSON.payload(input))]
        case let .taskCompleted(id, result), let .subOrchestrationCompleted(id, result):
            fields += [("scheduledID", String(id)), ("result", JSON.payload(result))]
        case let .taskFailed(id, failure), let .subOrchestrationFailed(id, failure):
            fields += [("scheduledID", String(id)), ("failure", JSON.failure(failure))]
        case let .timerCreated(fireAt): fields += [("fireAt", JSON.date(fireAt))]
        case let .timerFired(id, fireAt): fields += [("scheduledID", String(id)), ("fireAt", JSON.date(fireAt))]
        case let .eventRaised(name, input): fields += [("name", JSON.string(name)), ("input", JSON.payload(input))]
        case let .eventSent(target, name, input):
            fields += [("targetInstanceID", JSON.string(target)), ("name", JSON.string(name)), ("input", JSON.payload(input))]
        case let .subOrchestrationCreated(name, instanceID, input):
            fields += [("name", JSON.string(name)), ("instanceID", JSON.string(instanceID)), ("input", JSON.payload(input))]
        case let .executionSuspended(reason), let .executionResumed(reason): fields += [("reason", JSON.optionalString(reason))]
        case let .executionTerminated(reason, recursive): fields += [("reason", JSON.optionalString(reason)), ("recursive", recursive ? "true" : "false")]
        case let .continuedAsNew(input): fields += [("input", JSON.payload(input))]
        case let .executionCompleted(status, result, failure):
            fields += [("status", JSON.string(status.rawValue)), ("result", JSON.payload(result)), ("failure", JSON.failure(failure))]
        case let .versionMarker(changeID): fields += [("changeID", JSON.string(changeID))]
        }
        if let started = e.startedAt { fields.append(("startedAt", JSON.date(started))) }
        return JSON.object(fields)
    }

    static func summaryJSON(_ summary: InstanceSummary, maxLanes: Int) -> String {
        let counts = summary.counts
        return JSON.object([
            ("events", String(summary.eventCount)), ("episodes", String(summary.episodeCount)),
            (
                "tasks",
                JSON.object([
                    ("total", String(summary.tasks.count)), ("pending", String(counts.pending)),
                    ("completed", String(counts.completed)), ("failed", String(counts.failed))
                ])
            ),
            (
                "phases",
                JSON.array(
                    summary.phases.map { p in
                        JSON.object([
                            ("kind", JSON.string(p.kind.rawValue)), ("title", JSON.string(p.title)),
                            ("firstEpisode", String(p.episodes.lowerBound)), ("lastEpisode", String(p.episodes.upperBound)),
                            ("start", JSON.date(p.start)), ("end", JSON.date(p.end)), ("completed", String(p.completed)),
                            ("failed", String(p.failed)),
                            ("scheduled", JSON.array(p.scheduled.map { JSON.object([("name", JSON.string($0.name)), ("count", String($0.count))]) }))
                        ])
                    })
            ),
            (
                "lanes",
                JSON.array(
                    summary.lanes(maxLanes: maxLanes).map { l in
                        JSON.object([
                            ("label", JSON.string(l.label)), ("name", JSON.string(l.name)), ("count", String(l.count)),
                            ("failed", String(l.failed)), ("pending", String(l.pending)), ("scheduledAt", JSON.date(l.scheduledAt)),
                            ("startedAt", JSON.date(l.startedAt)), ("completedAt", JSON.date(l.completedAt))
                        ])
                    })
            ),
            ("waitingFor", JSON.array(summary.waitingFor.map(JSON.string))),
            ("children", JSON.array(summary.children.map(JSON.string)))
        ])
    }
}

/// A dashboard serving in the background, from ``Dashboard/start(host:port:)``.
public struct RunningDashboard: Sendable {
    let server: HTTPServer
    /// The port it listens on.
    public var port: Int { server.port }
    /// Stops serving and closes every connection.
    public func stop() async {
        server.stop()
        await server.waitUntilStopped()
    }
}

/// Any JSON value, so the API can pass a caller's input to an orchestrator without knowing its type.
public enum JSONValue: Codable, Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A whole number that fits an `Int` (kept exact).
    case int(Int)
    /// Any other number.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object; keys in the order decoded are not kept.
    case object([String: JSONValue])

    /// Decodes any JSON value.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    /// Encodes the value as it was.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
}
