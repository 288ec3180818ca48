import DurableTask
import Foundation

/// The `durabletask` command's logic, for any client: the executable opens the task hub named by `--db`
/// (SQLite) or `--postgres` and hands the rest here, and tests run it in-process against a fixed clock.
///
/// ```swift
/// let status = await DurableTaskCommand.run(["list", "--status", "failed"], client: client) { print($0, terminator: "") }
/// ```
public enum DurableTaskCommand {
    /// The help text.
    public static let usage = """
        usage: durabletask COMMAND [ARGUMENTS] (--db FILE | --postgres URL [--schema NAME]) [--json]

        Reading:
          list [--status S[,S]] [--name NAME] [--prefix ID_PREFIX] [--created-from DATE] [--created-to DATE] [--limit N]
                                  instances, newest first within the page (ordered by ID), at most N (default 50)
          show ID                 one instance: status, times, input/output, failure, phases, what it waits for
          history ID [--limit N]  its history events
          export ID               its whole history as a HistoryExport JSON document (for the replayer)
          timeline ID [--width W] [--lanes N]
                                  its activities as bars in time (grouped into N lanes when there are more)
        Managing:
          terminate ID [--reason TEXT]
          suspend ID [--reason TEXT]
          resume ID [--reason TEXT]
          raise ID EVENT_NAME [JSON_DATA]
          purge ID                delete a finished instance and its history
        Serving:
          dashboard [--host ADDRESS] [--port P] [--allow-actions]
                                  the web dashboard on http://127.0.0.1:8080 (read-only unless --allow-actions)

        --db FILE names an SQLite task hub; --postgres URL a PostgreSQL one, in schema NAME (default
        durabletask; the examples use wordcount and loadtest). Neither is created when missing.
        --json prints JSON (the same documents as the dashboard's /api/) instead of text.
        Dates are UTC: 2027-01-15, 2027-01-15T08:00, 2027-01-15 08:00:00Z.
        Exit status: 0 success, 1 failure (unknown instance, refused action), 2 bad command line.
        """

    struct UsageError: Error { var message: String }

    /// Runs one command.
    /// - Parameters:
    ///   - arguments: the command line without the program name and without `--db FILE`.
    ///   - client: the task hub.
    ///   - output: receives standard output text.
    ///   - errorOutput: receives error messages.
    /// - Returns: the exit status.
    public static func run(
        _ arguments: [String], client: DurableTaskClient, output: @escaping @Sendable (String) -> Void,
        errorOutput: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) async -> Int32 {
        do {
            var args = try Arguments(arguments)
            let status = try await execute(&args, client: client, output: output)
            return status
        } catch let error as UsageError {
            errorOutput("durabletask: \(error.message)\n\nrun 'durabletask help' for the commands\n")
            return 2
        } catch let error as DurableTaskError {
            errorOutput("durabletask: \(error.message)\n")
            return 1
        } catch {
            errorOutput("durabletask: \(error)\n")
            return 1
        }
    }

    /// Parsed `--name value` options, flags and positional arguments.
    struct Arguments {
        var positional: [String] = []
        var options: [String: String] = [:]
        var flags: Set<String> = []
        static let flagNames: Set<String> = ["json", "allow-actions", "help"]

        init(_ arguments: [String]) throws {
            var i = 0
            while i < arguments.count {
                let a = arguments[i]
                if a == "-h" { flags.insert("help"); i += 1; continue }
                if a.hasPrefix("--") {
                    let name = String(a.dropFirst(2))
                    if Self.flagNames.contains(name) { flags.insert(name); i += 1; continue }
                    guard i + 1 < arguments.count else { throw UsageError(message: "option --\(name) needs a value") }
                    guard options[name] == nil else { throw UsageError(message: "option --\(name) given twice") }
                    options[name] = arguments[i + 1]
                    i += 2
                } else {
                    positional.append(a)
                    i += 1
                }
            }
        }

        func check(allowed: Set<String>, positional count: ClosedRange<Int>, usage: String) throws {
            let unknown = Set(options.keys).subtracting(allowed).sorted()
            guard unknown.isEmpty else { throw UsageError(message: "unknown option \(unknown.map { "--\($0)" }.joined(separator: ", ")) for '\(usage)'") }
            guard count.contains(positional.count - 1) else { throw UsageError(message: "usage: durabletask \(usage)") }
        }

        func int(_ name: String, default value: Int) throws -> Int {
            guard let text = options[name] else { return value }
            guard let n = Int(text), n > 0 else { throw UsageError(message: "--\(name) needs a positive whole number, got '\(text)'") }
            return n
        }
    }

    private static func execute(_ args: inout Arguments, client: DurableTaskClient, output: @escaping @Sendable (String) -> Void) async throws -> Int32 {
        guard let command = args.positional.first, !args.flags.contains("help"), command != "help" else {
            output(usage + "\n")
            return 0
        }
        let json = args.flags.contains("json")
        switch command {
        case "list":
            try args.check(allowed: ["status", "name", "prefix", "created-from", "created-to", "limit"], positional: 0...0, usage: "list [filters]")
            var items: [(name: String, value: String)] = []
            if let v = args.options["status"] { items.append(("status", v)) }
            if let v = args.options["name"] { items.append(("name", v)) }
            if let v = args.options["prefix"] { items.append(("prefix", v)) }
            if let v = args.options["created-from"] { items.append(("createdFrom", v)) }
            if let v = args.options["created-to"] { items.append(("createdTo", v)) }
            let limit = try args.int("limit", default: 50)
            let dashboard = Dashboard(client: client)
            var query: OrchestrationQuery
            do {
                query = try dashboard.query(from: HTTPRequest(method: "GET", target: "/", headers: []).with(query: items))
            } catch let error as Dashboard.APIError {
                throw UsageError(message: error.message)
            }
            query.pageSize = min(limit, 1000)
            var instances: [OrchestrationMetadata] = []
            while instances.count < limit {
                let page = try await client.query(query)
                instances += page.instances
                guard let token = page.continuationToken else { break }
                query.continuationToken = token
            }
            instances = Array(instances.prefix(limit))
            if json {
                output(JSON.object([("instances", JSON.array(instances.map(Dashboard.instanceJSON)))]) + "\n")
            } else {
                output(TextReport.list(instances))
            }
            return 0
        case "show":
            try args.check(allowed: [], positional: 1...1, usage: "show ID")
            let id = args.positional[1]
            guard let m = try await client.getInstance(id) else { throw DurableTaskError(.instanceNotFound, "no instance '\(id)'") }
            let history = try await client.getHistory(id)
            let summary = InstanceSummary(history: history)
            if json {
                output(JSON.object([("instance", Dashboard.instanceJSON(m)), ("summary", Dashboard.summaryJSON(summary, maxLanes: 60))]) + "\n")
            } else {
                output(TextReport.show(m, summary))
            }
            return 0
        case "history":
            try args.check(allowed: ["limit"], positional: 1...1, usage: "history ID [--limit N]")
            let id = args.positional[1]
            let history = try await client.getHistory(id)
            let shown = Array(history.prefix(try args.int("limit", default: Int.max)))
            if json {
                output(
                    JSON.object([("instanceID", JSON.string(id)), ("total", String(history.count)), ("events", JSON.array(shown.map(Dashboard.eventJSON)))])
                        + "\n")
            } else {
                output(TextReport.history(shown, total: history.count))
            }
            return 0
        case "export":
            try args.check(allowed: [], positional: 1...1, usage: "export ID")
            let id = args.positional[1]
            let data = try HistoryExport.encode(HistoryExport.Document(instanceID: id, events: try await client.getHistory(id)))
            output(String(decoding: data, as: UTF8.self) + "\n")
            return 0
        case "timeline":
            try args.check(allowed: ["width", "lanes"], positional: 1...1, usage: "timeline ID [--width W] [--lanes N]")
            let id = args.positional[1]
            guard let m = try await client.getInstance(id) else { throw DurableTaskError(.instanceNotFound, "no instance '\(id)'") }
            let summary = InstanceSummary(history: try await client.getHistory(id))
            let lanes = try args.int("lanes", default: 30)
            if json {
                output(Dashboard.summaryJSON(summary, maxLanes: lanes) + "\n")
            } else {
                let end = m.status.isTerminal ? (summary.lastEventAt ?? m.lastUpdatedAt) : client.backend.clock.now()
                output(TextReport.timeline(summary, lanes: lanes, width: min(200, try args.int("width", default: 60)), end: end))
            }
            return 0
        case "terminate", "suspend", "resume":
            try args.check(allowed: ["reason"], positional: 1...1, usage: "\(command) ID [--reason TEXT]")
            let id = args.positional[1]
            let reason = args.options["reason"]
            switch command {
            case "terminate": try await client.terminate(id, reason: reason)
            case "suspend": try await client.suspend(id, reason: reason)
            default: try await client.resume(id, reason: reason)
            }
            output(
                json
                    ? JSON.object([("instanceID", JSON.string(id)), ("accepted", JSON.string(command))]) + "\n"
                    : "\(command) requested for '\(id)'; a worker applies it at the instance's next episode\n")
            return 0
        case "raise":
            try args.check(allowed: [], positional: 2...3, usage: "raise ID EVENT_NAME [JSON_DATA]")
            let id = args.positional[1], name = args.positional[2]
            var data = JSONValue.null
            if args.positional.count > 3 {
                do { data = try JSONDecoder().decode(JSONValue.self, from: Data(args.positional[3].utf8)) } catch {
                    throw UsageError(message: "event data '\(args.positional[3])' is not JSON (quote strings: '\"text\"')")
                }
            }
            try await client.raiseEvent(id, name: name, data: data)
            output(
                json
                    ? JSON.object([("instanceID", JSON.string(id)), ("accepted", JSON.string("raise"))]) + "\n"
                    : "event '\(name)' raised on '\(id)'\n")
            return 0
        case "purge":
            try args.check(allowed: [], positional: 1...1, usage: "purge ID")
            let id = args.positional[1]
            let purged = try await client.purge(id)
            guard purged else { throw DurableTaskError(.instanceNotFound, "no instance '\(id)'") }
            output(json ? JSON.object([("instanceID", JSON.string(id)), ("purged", "true")]) + "\n" : "purged '\(id)'\n")
            return 0
        case "dashboard":
            try args.check(allowed: ["host", "port"], positional: 0...0, usage: "dashboard [--host ADDRESS] [--port P] [--allow-actions]")
            let host = args.options["host"] ?? "127.0.0.1"
            guard let port = Int(args.options["port"] ?? "8080"), (0...65535).contains(port) else {
                throw UsageError(message: "--port needs a number 0-65535")
            }
            let allow = args.flags.contains("allow-actions")
            let dashboard = Dashboard(client: client, options: .init(allowActions: allow))
            try await dashboard.run(host: host, port: port) { actual in
                output(
                    "Dashboard on http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(actual)/ (\(allow ? "actions allowed" : "read-only")); Ctrl-C stops it\n")
            }
            return 0
        default:
            throw UsageError(message: "unknown command '\(command)'")
        }
    }
}

extension HTTPRequest {
    fileprivate func with(query items: [(name: String, value: String)]) -> HTTPRequest {
        var copy = self
        copy.query = items
        return copy
    }
}

/// The command's text output.
enum TextReport {
    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
    }

    static func list(_ instances: [OrchestrationMetadata]) -> String {
        guard !instances.isEmpty else { return "no instances\n" }
        let idWidth = min(40, max(11, instances.map(\.instanceID.count).max() ?? 11))
        let nameWidth = min(24, max(4, instances.map(\.name.count).max() ?? 4))
        var out = pad("STATUS", 15) + pad("NAME", nameWidth + 2) + pad("INSTANCE ID", idWidth + 2) + pad("CREATED", 26) + pad("UPDATED", 26) + "CUSTOM STATUS\n"
        for m in instances {
            out +=
                pad(m.status.rawValue, 15) + pad(m.name, nameWidth + 2) + pad(m.instanceID, idWidth + 2)
                + pad(DashboardFormat.timestamp(m.createdAt), 26) + pad(DashboardFormat.timestamp(m.lastUpdatedAt), 26)
                + (m.customStatus.map { DashboardFormat.preview($0, limit: 40) } ?? "") + "\n"
        }
        return out
    }

    static func show(_ m: OrchestrationMetadata, _ s: InstanceSummary) -> String {
        var out = ""
        func line(_ key: String, _ value: String) { out += pad(key + ":", 15) + value + "\n" }
        line("Instance", m.instanceID)
        line("Name", m.name)
        line("Status", m.status.rawValue)
        line("Execution", m.executionID)
        line("Created", DashboardFormat.timestamp(m.createdAt))
        line("Updated", DashboardFormat.timestamp(m.lastUpdatedAt))
        if let done = m.completedAt {
            line("Completed", DashboardFormat.timestamp(done) + " (took \(DashboardFormat.duration(done.timeIntervalSince(m.createdAt))))")
        }
        if let parent = m.parentInstanceID { line("Parent", parent) }
        if !s.children.isEmpty {
            line("Children", s.children.prefix(10).joined(separator: ", ") + (s.children.count > 10 ? " and \(s.children.count - 10) more" : ""))
        }
        line("Input", DashboardFormat.preview(m.input, limit: 200))
        line("Output", DashboardFormat.preview(m.output, limit: 200))
        if let custom = m.customStatus { line("Custom status", DashboardFormat.preview(custom, limit: 200)) }
        let c = s.counts
        line(
            "Tasks",
            "\(DashboardFormat.count(s.tasks.count)) (\(DashboardFormat.count(c.completed)) completed, \(DashboardFormat.count(c.failed)) failed, \(DashboardFormat.count(c.pending)) pending)"
        )
        line("History", "\(DashboardFormat.count(s.eventCount)) events in \(DashboardFormat.count(s.episodeCount)) episodes")
        if let failure = m.failure {
            out += "Failure:\n"
            // Every inner failure, not only the first: a fan-in can fail for several causes at once,
            // and the web page shows them all.
            func cause(_ f: FailureDetails, depth: Int) {
                out += String(repeating: "  ", count: depth) + (depth > 1 ? "caused by " : "") + "\(f.errorType): \(f.message)\n"
                for inner in f.inner { cause(inner, depth: depth + 1) }
            }
            cause(failure, depth: 1)
        }
        if !m.status.isTerminal {
            let waiting = s.waitingFor
            out += "Waiting for:\n" + (waiting.isEmpty ? "  an external event, or its next episode\n" : waiting.prefix(10).map { "  \($0)\n" }.joined())
        }
        if !s.phases.isEmpty {
            out += "Sequence:\n"
            let t0 = s.firstEventAt ?? m.createdAt
            for p in s.phases { out += "  " + pad("+" + DashboardFormat.duration(p.start.timeIntervalSince(t0)), 12) + p.title + "\n" }
        }
        return out
    }

    static func history(_ events: [HistoryEvent], total: Int) -> String {
        guard let t0 = events.first?.timestamp else { return "no events\n" }
        var out = ""
        for (i, e) in events.enumerated() {
            let (task, detail) = Pages.eventDetail(e)
            out +=
                pad(String(i + 1), 6) + pad(DashboardFormat.timestamp(e.timestamp), 26)
                + pad("+" + DashboardFormat.duration(e.timestamp.timeIntervalSince(t0)), 12) + pad(e.kindName, 27) + pad(task, 7) + detail + "\n"
        }
        if events.count < total { out += "… \(DashboardFormat.count(total - events.count)) more events (of \(DashboardFormat.count(total)))\n" }
        return out
    }

    static func timeline(_ s: InstanceSummary, lanes maxLanes: Int, width: Int, end: Date) -> String {
        guard let t0 = s.firstEventAt, !s.tasks.isEmpty else { return "no tasks\n" }
        let span = max(end.timeIntervalSince(t0), 0.001)
        let lanes = s.lanes(maxLanes: maxLanes)
        let labelWidth = min(32, max(8, lanes.map(\.label.count).max() ?? 8))
        func column(_ date: Date) -> Int { min(width, max(0, Int(date.timeIntervalSince(t0) / span * Double(width)))) }
        var axis = [Character](repeating: " ", count: width)
        let endLabel = Array("+" + DashboardFormat.duration(span))
        for (i, ch) in "+0 ms".enumerated() where i < width { axis[i] = ch }
        for (i, ch) in endLabel.enumerated() where width - endLabel.count + i >= 6 { axis[width - endLabel.count + i] = ch }
        var out = pad("", labelWidth + 2) + "|" + String(axis) + "|\n"
        for lane in lanes {
            var row = [Character](repeating: " ", count: width)
            // Half-open cells [start, end): a task that ends where the next begins shares no cell with it.
            let q = min(width - 1, column(lane.scheduledAt)), r = min(width - 1, column(lane.startedAt))
            let e = max(r + 1, lane.completedAt.map(column) ?? width)
            if r > q { for i in q..<r { row[i] = "·" } }
            let mark: Character = lane.failed > 0 ? "x" : (lane.pending > 0 ? "▒" : "█")
            for i in r..<min(width, e) { row[i] = mark }
            var detail = lane.count > 1 ? " \(DashboardFormat.count(lane.count)) tasks" : ""
            if lane.failed > 0 { detail += " \(DashboardFormat.count(lane.failed)) failed" }
            if lane.pending > 0 { detail += " \(DashboardFormat.count(lane.pending)) pending" }
            if let done = lane.completedAt, lane.count == 1 { detail += " " + DashboardFormat.duration(done.timeIntervalSince(lane.startedAt)) }
            out += pad(lane.label, labelWidth) + "  |" + String(row) + "|" + detail + "\n"
        }
        out += "· queued  █ ran  ▒ running  x failed"
        if lanes.count < s.tasks.count { out += "  (\(DashboardFormat.count(s.tasks.count)) tasks in \(lanes.count) lanes)" }
        return out + "\n"
    }
}
