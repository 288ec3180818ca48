import DurableTask
import Foundation

/// The HTML pages. Every value that is not a literal of this file goes through `HTML.escape` (the
/// `e` helper) or `HTML.urlComponent`; views of large instances are aggregated or paged so a page
/// stays a few hundred rows whatever the instance's size.
struct Pages {
    let dashboard: Dashboard
    var options: Dashboard.Options { dashboard.options }
    /// Clamped here as well as in `Options.init`: the fields are mutable, and this one divides.
    private var rowsPerPage: Int { max(1, options.rowsPerPage) }

    private func e(_ text: String) -> String { HTML.escape(text) }

    private func layout(title: String, refresh: Bool, body: String) -> String {
        let refreshTag = refresh && options.refreshSeconds > 0 ? "<meta http-equiv=\"refresh\" content=\"\(options.refreshSeconds)\">" : ""
        let mode = options.allowActions ? "<span class=\"mode mode-actions\">actions enabled</span>" : "<span class=\"mode\">read-only</span>"
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(title)) · DurableTask</title>\(refreshTag)
            <link rel="stylesheet" href="/static/dashboard.css"><script src="/static/dashboard.js" defer></script></head>
            <body><header class="top"><a class="brand" href="/">◆ DurableTask <span>dashboard</span></a>\(mode)</header>
            <main>\(body)</main></body></html>
            """
    }

    static func errorPage(status: Int, message: String) -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(status) · DurableTask</title>
        <link rel="stylesheet" href="/static/dashboard.css"></head><body><header class="top"><a class="brand" href="/">◆ DurableTask <span>dashboard</span></a></header>
        <main><div class="card error-card"><h1>\(status) \(HTML.escape(HTTPResponse.reason(status)))</h1><p>\(HTML.escape(message))</p>
        <p><a href="/">Back to the instance list</a></p></div></main></body></html>
        """
    }

    private func badge(_ status: OrchestrationStatus) -> String {
        "<span class=\"status s-\(status.rawValue)\">\(status.rawValue)</span>"
    }

    private func instanceLink(_ id: String, label: String? = nil) -> String {
        "<a class=\"mono\" href=\"/instances/\(HTML.urlComponent(id))\">\(e(label ?? id))</a>"
    }

    // MARK: List

    func list(_ request: HTTPRequest) async throws -> String {
        let query = try dashboard.query(from: request)
        let page = try await dashboard.client.query(query)
        let running = page.instances.contains { !$0.status.isTerminal }
        let selected = Set(request.parameters("status").flatMap { $0.split(separator: ",").map(String.init) })
        let statusOptions =
            ["<option value=\"\">any status</option>"]
            + OrchestrationStatus.allCases.map {
                "<option value=\"\($0.rawValue)\"\(selected.contains($0.rawValue) ? " selected" : "")>\($0.rawValue)</option>"
            }
        func value(_ name: String) -> String { e(request.parameter(name) ?? "") }
        var rows = ""
        for m in page.instances {
            rows += """
                <tr class="instance-row" data-status="\(m.status.rawValue)"><td>\(badge(m.status))</td><td class="name">\(e(m.name))</td>
                <td>\(instanceLink(m.instanceID, label: Self.shorten(m.instanceID, 60)))</td><td class="time">\(e(DashboardFormat.timestamp(m.createdAt)))</td>
                <td class="time">\(e(DashboardFormat.timestamp(m.lastUpdatedAt)))</td><td class="custom">\(e(DashboardFormat.preview(m.customStatus, limit: 60)))</td></tr>
                """
        }
        if page.instances.isEmpty {
            rows = "<tr><td colspan=\"6\" class=\"empty\">No instances match these filters.</td></tr>"
        }
        var keep = request.query.filter { $0.name != "continuationToken" && $0.name != "after" && !$0.value.isEmpty }
        var pager = ""
        if request.parameter("continuationToken") != nil || request.parameter("after") != nil {
            pager += "<a class=\"button\" href=\"/?\(Self.queryString(keep))\">← First page</a>"
        }
        if let token = page.continuationToken {
            keep.append(("continuationToken", token))
            pager += "<a class=\"button\" href=\"/?\(Self.queryString(keep))\">Next page →</a>"
        }
        let body = """
            <div class="page-head"><h1>Orchestration instances</h1>\(running ? "<span class=\"live\">● live — refreshing every \(options.refreshSeconds) s</span>" : "")</div>
            <form class="filters card" method="get" action="/">
            <label>Status<select name="status">\(statusOptions.joined())</select></label>
            <label>Name<input name="name" value="\(value("name"))" placeholder="orchestrator name"></label>
            <label>ID prefix<input name="prefix" value="\(value("prefix"))" placeholder="instance ID starts with"></label>
            <label>Created from (UTC)<input name="createdFrom" value="\(value("createdFrom"))" placeholder="2027-01-15 08:00"></label>
            <label>Created before (UTC)<input name="createdTo" value="\(value("createdTo"))" placeholder="2027-01-16"></label>
            <label>Per page<input name="pageSize" value="\(value("pageSize"))" placeholder="\(options.pageSize)" size="4"></label>
            <button type="submit">Filter</button><a class="reset" href="/">Reset</a></form>
            <div class="card"><table class="instances" data-count="\(page.instances.count)"><thead><tr><th>Status</th><th>Name</th><th>Instance ID</th><th>Created</th><th>Updated</th><th>Custom status</th></tr></thead>
            <tbody>\(rows)</tbody></table><div class="pager">\(pager)</div></div>
            """
        return layout(title: "Instances", refresh: running, body: body)
    }

    static func queryString(_ items: [(name: String, value: String)]) -> String {
        items.map { "\(HTML.urlComponent($0.name))=\(HTML.urlComponent($0.value))" }.joined(separator: "&amp;")
    }

    static func shorten(_ text: String, _ limit: Int) -> String {
        text.count > limit ? String(text.prefix(limit)) + "…" : text
    }

    // MARK: Instance

    func instance(_ id: String, _ request: HTTPRequest) async throws -> String {
        guard let m = try await dashboard.client.getInstance(id) else {
            throw Dashboard.APIError(404, "no instance '\(id)' (never created, or purged)")
        }
        let history = try await dashboard.client.getHistory(id)
        let summary = InstanceSummary(history: history)
        let now = dashboard.client.backend.clock.now()
        let running = !m.status.isTerminal
        let t0 = summary.firstEventAt ?? m.createdAt
        let t1 = running ? max(now, summary.lastEventAt ?? now) : (summary.lastEventAt ?? m.lastUpdatedAt)
        let counts = summary.counts

        var facts: [(String, String)] = [
            ("Instance ID", "<span class=\"mono\">\(e(m.instanceID))</span>"),
            ("Execution ID", "<span class=\"mono\">\(e(m.executionID))</span>"),
            ("Created", e(DashboardFormat.timestamp(m.createdAt))),
            ("Updated", e(DashboardFormat.timestamp(m.lastUpdatedAt)))
        ]
        if let done = m.completedAt {
            facts.append(("Completed", e(DashboardFormat.timestamp(done))))
            facts.append(("Duration", e(DashboardFormat.duration(done.timeIntervalSince(m.createdAt)))))
        }
        facts.append(
            (
                "Tasks",
                "\(DashboardFormat.count(summary.tasks.count)) · \(DashboardFormat.count(counts.completed)) completed"
                    + (counts.failed > 0 ? " · <span class=\"bad\">\(DashboardFormat.count(counts.failed)) failed</span>" : "")
                    + (counts.pending > 0 ? " · \(DashboardFormat.count(counts.pending)) pending" : "")
            ))
        if let parent = m.parentInstanceID { facts.append(("Parent", instanceLink(parent))) }
        let children = summary.children
        if !children.isEmpty {
            let shown = children.prefix(20).map { instanceLink($0) }.joined(separator: " ")
            facts.append(
                ("Children", shown + (children.count > 20 ? " <span class=\"muted\">and \(DashboardFormat.count(children.count - 20)) more</span>" : "")))
        }
        if let custom = m.customStatus { facts.append(("Custom status", "<code>\(e(Self.shorten(custom.json, 500)))</code>")) }
        if running {
            let waiting = summary.waitingFor
            let text: String
            if m.status == .suspended {
                text = "suspended — resume it to continue"
            } else if m.status == .pending {
                text = "its first episode (a worker has not picked it up yet)"
            } else if waiting.isEmpty {
                text = "an external event, or its next episode (nothing pending in its history)"
            } else {
                text = waiting.prefix(10).map(e).joined(separator: "<br>")
            }
            facts.append(("Waiting for", text))
        }
        let factsHTML = facts.map { "<div class=\"fact\"><dt>\($0.0)</dt><dd>\($0.1)</dd></div>" }.joined()

        var failureHTML = ""
        if let failure = m.failure {
            failureHTML = "<div class=\"card failure\"><h2>Failure</h2>\(failureChain(failure))</div>"
        }

        var actions = ""
        if options.allowActions {
            var buttons: [String] = []
            if running {
                buttons.append(actionButton("terminate", "Terminate", danger: true))
                buttons.append(m.status == .suspended ? actionButton("resume", "Resume") : actionButton("suspend", "Suspend"))
                buttons.append(
                    "<span class=\"raise\"><input id=\"raise-name\" placeholder=\"event name\"><input id=\"raise-data\" placeholder=\"JSON data, e.g. true\">\(actionButton("raise", "Raise event"))</span>"
                )
            } else {
                buttons.append(actionButton("purge", "Purge", danger: true))
            }
            actions =
                "<div class=\"actions\" data-instance=\"\(e(m.instanceID))\">\(buttons.joined())<span class=\"action-result\" role=\"status\"></span></div>"
        }

        let lanes = summary.lanes(maxLanes: options.maxTimelineLanes)
        let historyPage = pageNumber(request, "hp", total: history.count)
        let ioPage = pageNumber(request, "ip", total: summary.tasks.count)
        let nav = """
            <nav class="views"><a href="#timeline">Timeline <span>\(DashboardFormat.count(summary.tasks.count))</span></a>
            <a href="#history">History <span>\(DashboardFormat.count(history.count))</span></a>
            <a href="#sequence">Sequence <span>\(DashboardFormat.count(summary.phases.count))</span></a>
            <a href="#io">Input/Output <span>\(DashboardFormat.count(summary.tasks.count))</span></a></nav>
            """
        let body = """
            <div class="crumbs"><a href="/">Instances</a> / <span class="mono">\(e(Self.shorten(m.instanceID, 80)))</span></div>
            <div class="page-head"><h1>\(e(m.name))</h1>\(badge(m.status))\(running ? "<span class=\"live\">● live — refreshing every \(options.refreshSeconds) s</span>" : "")</div>
            <div class="card"><dl class="facts">\(factsHTML)</dl>\(actions)</div>
            \(failureHTML)
            \(nav)
            \(timeline(summary, lanes: lanes, from: t0, to: t1))
            \(historyView(history, page: historyPage, start: t0, request: request))
            \(sequence(summary, from: t0))
            \(ioView(m, summary, page: ioPage, request: request))
            """
        return layout(title: "\(m.name) \(m.instanceID)", refresh: running, body: body)
    }

    private func actionButton(_ action: String, _ label: String, danger: Bool = false) -> String {
        "<button type=\"button\" class=\"action\(danger ? " danger" : "")\" data-action=\"\(action)\">\(label)</button>"
    }

    private func failureChain(_ failure: FailureDetails) -> String {
        var html = "<div class=\"failure-item\"><div class=\"etype\">\(e(failure.errorType))</div><pre>\(e(Self.shorten(failure.message, 20_000)))</pre>"
        for inner in failure.inner {
            html += "<div class=\"inner\"><div class=\"inner-label\">caused by</div>\(failureChain(inner))</div>"
        }
        return html + "</div>"
    }

    private func pageNumber(_ request: HTTPRequest, _ name: String, total: Int) -> Int {
        let pages = max(1, (total + rowsPerPage - 1) / rowsPerPage)
        return min(max(1, Int(request.parameter(name) ?? "") ?? 1), pages)
    }

    private func pager(_ request: HTTPRequest, _ name: String, page: Int, total: Int, anchor: String) -> String {
        let pages = max(1, (total + rowsPerPage - 1) / rowsPerPage)
        guard pages > 1 else { return "" }
        func link(_ p: Int, _ label: String) -> String {
            var items = request.query.filter { $0.name != name }
            items.append((name, String(p)))
            return "<a class=\"button\" href=\"?\(Self.queryString(items))#\(anchor)\">\(label)</a>"
        }
        var html = "<div class=\"pager\">"
        if page > 1 { html += link(1, "« First") + link(page - 1, "‹ Previous") }
        html += "<span class=\"muted\">page \(DashboardFormat.count(page)) of \(DashboardFormat.count(pages))</span>"
        if page < pages { html += link(page + 1, "Next ›") + link(pages, "Last »") }
        return html + "</div>"
    }

    private func percent(_ date: Date, _ from: Date, _ span: Double) -> Double {
        min(100, max(0, date.timeIntervalSince(from) / span * 100))
    }

    private func timeline(_ summary: InstanceSummary, lanes: [InstanceSummary.Lane], from: Date, to: Date) -> String {
        let span = max(to.timeIntervalSince(from), 0.001)
        let grouped = lanes.count < summary.tasks.count
        var rows = ""
        for lane in lanes {
            let queuedStart = percent(lane.scheduledAt, from, span)
            let runStart = percent(lane.startedAt, from, span)
            let end = lane.completedAt.map { percent($0, from, span) } ?? 100
            let state = lane.failed > 0 ? "failed" : (lane.pending > 0 ? "pending" : "completed")
            let mean = lane.count - lane.pending > 0 ? lane.totalRunSeconds / Double(lane.count - lane.pending) : 0
            var tip = "\(lane.label): \(DashboardFormat.count(lane.count)) task\(lane.count == 1 ? "" : "s")"
            if lane.failed > 0 { tip += ", \(DashboardFormat.count(lane.failed)) failed" }
            if lane.pending > 0 { tip += ", \(DashboardFormat.count(lane.pending)) pending" }
            tip += " · scheduled +\(DashboardFormat.duration(lane.scheduledAt.timeIntervalSince(from)))"
            tip += " · started +\(DashboardFormat.duration(lane.startedAt.timeIntervalSince(from)))"
            if let done = lane.completedAt { tip += " · done +\(DashboardFormat.duration(done.timeIntervalSince(from)))" }
            if lane.count > 1, mean > 0 { tip += " · mean run \(DashboardFormat.duration(mean))" }
            let detail =
                lane.count > 1
                ? "\(DashboardFormat.count(lane.count)) tasks"
                : (lane.completedAt.map { DashboardFormat.duration($0.timeIntervalSince(lane.startedAt)) } ?? "running")
            rows += """
                <div class="lane" title="\(e(tip))"><div class="lane-label"><span class="lane-name">\(e(lane.label))</span><span class="lane-detail">\(e(detail))</span></div>
                <div class="track"><div class="bar queued" style="left:\(fmt(queuedStart))%;width:\(fmt(max(0, runStart - queuedStart)))%"></div>
                <div class="bar run \(state)" style="left:\(fmt(runStart))%;width:\(fmt(max(0.3, end - runStart)))%"></div></div></div>
                """
        }
        if lanes.isEmpty { rows = "<p class=\"empty\">No activities, timers or sub-orchestrations yet.</p>" }
        let buckets = summary.concurrency(buckets: 120, from: from, to: to)
        let peak = max(1, buckets.max() ?? 1)
        var chart = ""
        if summary.tasks.count > 1 {
            let columns = buckets.map { "<div class=\"col\" style=\"height:\(fmt(Double($0) / Double(peak) * 100))%\"></div>" }.joined()
            chart = """
                <div class="concurrency"><div class="lane-label"><span class="lane-name">Activities in flight</span><span class="lane-detail">peak \(DashboardFormat.count(peak))</span></div>
                <div class="chart">\(columns)</div></div>
                """
        }
        var ticks = ""
        for i in 0...4 {
            ticks += "<span style=\"left:\(i * 25)%\">+\(e(DashboardFormat.duration(span * Double(i) / 4)))</span>"
        }
        let note =
            grouped
            ? "\(DashboardFormat.count(summary.tasks.count)) tasks in \(lanes.count) bars, grouped by name, of up to \(DashboardFormat.count(lanes.map(\.count).max() ?? 0)) tasks each (hover a bar for its numbers)"
            : "one bar per task; light part: waiting to start, solid part: running"
        return """
            <section id="timeline" class="card view" data-tasks="\(summary.tasks.count)" data-lanes="\(lanes.count)">
            <h2>Timeline <span class="muted">\(e(note))</span></h2>
            <div class="legend"><span class="key queued"></span>queued <span class="key completed"></span>completed <span class="key failed"></span>failed <span class="key pending"></span>running</div>
            \(chart)
            <div class="axis"><div class="lane-label"></div><div class="ticks">\(ticks)</div></div>
            <div class="lanes">\(rows)</div></section>
            """
    }

    private func fmt(_ value: Double) -> String { String(format: "%.3f", value) }

    private func historyView(_ history: [HistoryEvent], page: Int, start: Date, request: HTTPRequest) -> String {
        let first = (page - 1) * rowsPerPage
        var rows = ""
        for (offset, event) in history.dropFirst(first).prefix(rowsPerPage).enumerated() {
            let (task, detail) = Self.eventDetail(event)
            rows += """
                <tr class="event"><td class="num">\(first + offset + 1)</td><td class="time">\(e(DashboardFormat.timestamp(event.timestamp)))</td>
                <td class="num">+\(e(DashboardFormat.duration(event.timestamp.timeIntervalSince(start))))</td>
                <td><span class="kind k-\(event.kindName)">\(event.kindName)</span></td><td class="num">\(task)</td><td class="detail">\(e(detail))</td></tr>
                """
        }
        return """
            <section id="history" class="card view" data-events="\(history.count)">
            <h2>History <span class="muted">\(DashboardFormat.count(history.count)) events</span></h2>
            \(pager(request, "hp", page: page, total: history.count, anchor: "history"))
            <table class="history"><thead><tr><th>#</th><th>Time (UTC)</th><th>Since start</th><th>Event</th><th>Task</th><th>Details</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(pager(request, "hp", page: page, total: history.count, anchor: "history"))</section>
            """
    }

    /// The task number and a one-line description of an event, shared with the command's output.
    static func eventDetail(_ event: HistoryEvent) -> (task: String, detail: String) {
        let p = { (payload: Payload?) in DashboardFormat.preview(payload, limit: 100) }
        switch event.kind {
        case let .executionStarted(name, _, input, parent, _):
            return ("", "\(name) input=\(p(input))" + (parent.map { " parent=\($0.instanceID)" } ?? ""))
        case let .taskScheduled(name, input): return ("#\(event.eventID)", "\(name) input=\(p(input))")
        case let .taskCompleted(id, result):
            let ran = event.startedAt.map { " ran \(DashboardFormat.duration(event.timestamp.timeIntervalSince($0)))" } ?? ""
            return ("#\(id)", "result=\(p(result))\(ran)")
        case let .taskFailed(id, failure): return ("#\(id)", "\(failure.errorType): \(shorten(failure.message, 200))")
        case let .timerCreated(fireAt): return ("#\(event.eventID)", "fires at \(DashboardFormat.timestamp(fireAt))")
        case let .timerFired(id, _): return ("#\(id)", "")
        case let .eventRaised(name, input): return ("", "\(name) data=\(p(input))")
        case let .eventSent(target, name, input): return ("#\(event.eventID)", "\(name) to \(target) data=\(p(input))")
        case let .subOrchestrationCreated(name, id, input): return ("#\(event.eventID)", "\(name) '\(id)' input=\(p(input))")
        case let .subOrchestrationCompleted(id, result): return ("#\(id)", "result=\(p(result))")
        case let .subOrchestrationFailed(id, failure): return ("#\(id)", "\(failure.errorType): \(shorten(failure.message, 200))")
        case let .executionSuspended(reason), let .executionResumed(reason): return ("", reason ?? "")
        case let .executionTerminated(reason, _): return ("", reason ?? "")
        case let .continuedAsNew(input): return ("", "input=\(p(input))")
        case let .executionCompleted(status, result, failure):
            return (
                "", "\(status.rawValue)" + (result.map { " output=\(p($0))" } ?? "") + (failure.map { " \($0.errorType): \(shorten($0.message, 200))" } ?? "")
            )
        case .orchestratorStarted, .orchestratorCompleted: return ("", "")
        case let .versionMarker(changeID): return ("#\(event.eventID)", "new path of change '\(changeID)'")
        }
    }

    private func sequence(_ summary: InstanceSummary, from: Date) -> String {
        var rows = ""
        for phase in summary.phases {
            let episodes =
                phase.episodes.count == 1
                ? "episode \(phase.episodes.lowerBound)"
                : "episodes \(phase.episodes.lowerBound)–\(phase.episodes.upperBound)"
            let arrow: String
            switch phase.kind {
            case .start: arrow = "<div class=\"arrow in\">client → orchestrator</div>"
            case .fanOut:
                arrow =
                    "<div class=\"arrow out\">orchestrator ⇉ \(e(phase.scheduled.map { "\(DashboardFormat.count($0.count)) × \($0.name)" }.joined(separator: ", ")))</div>"
            case .fanIn: arrow = "<div class=\"arrow in\">activities ⇇ \(DashboardFormat.count(phase.completed + phase.failed)) results → orchestrator</div>"
            case .step:
                arrow =
                    "<div class=\"arrow out\">orchestrator ⇄ \(e(phase.scheduled.map { "\(DashboardFormat.count($0.count)) × \($0.name)" }.joined(separator: ", ")))</div>"
            case .end: arrow = "<div class=\"arrow end\">orchestrator → result</div>"
            }
            let took = phase.end > phase.start ? " · took \(DashboardFormat.duration(phase.end.timeIntervalSince(phase.start)))" : ""
            rows += """
                <li class="phase p-\(phase.kind.rawValue)"><div class="phase-time">+\(e(DashboardFormat.duration(phase.start.timeIntervalSince(from))))</div>
                <div class="phase-body"><div class="phase-title">\(e(phase.title))</div>\(arrow)<div class="muted">\(episodes)\(took)\(phase.failed > 0 ? " · <span class=\"bad\">\(DashboardFormat.count(phase.failed)) failed</span>" : "")</div></div></li>
                """
        }
        return """
            <section id="sequence" class="card view" data-phases="\(summary.phases.count)">
            <h2>Sequence <span class="muted">\(DashboardFormat.count(summary.phases.count)) phases over \(DashboardFormat.count(summary.episodeCount)) episodes</span></h2>
            <ol class="phases">\(rows)</ol></section>
            """
    }

    private func payloadCell(_ payload: Payload?) -> String {
        guard let payload else { return "<span class=\"muted\">–</span>" }
        let text = payload.json
        if text.count <= 60 { return "<code>\(e(text))</code>" }
        return "<details><summary><code>\(e(String(text.prefix(60))))…</code></summary><pre>\(e(Self.shorten(text, 10_000)))</pre></details>"
    }

    private func ioView(_ m: OrchestrationMetadata, _ summary: InstanceSummary, page: Int, request: HTTPRequest) -> String {
        let first = (page - 1) * rowsPerPage
        var rows = ""
        for task in summary.tasks.dropFirst(first).prefix(rowsPerPage) {
            let kind: String
            switch task.kind {
            case .activity: kind = e(task.name)
            case let .timer(fireAt): kind = "timer <span class=\"muted\">\(e(DashboardFormat.timestamp(fireAt)))</span>"
            case let .subOrchestration(id): kind = "\(e(task.name)) \(instanceLink(id))"
            }
            let ran = task.completedAt.map { DashboardFormat.duration($0.timeIntervalSince(task.startedAt ?? task.scheduledAt)) } ?? "–"
            let output = task.failure.map { "<span class=\"bad\">\(e($0.errorType)): \(e(Self.shorten($0.message, 300)))</span>" } ?? payloadCell(task.output)
            rows += """
                <tr class="task"><td class="num">#\(task.taskID)</td><td>\(kind)</td><td><span class="state t-\(task.state.rawValue)">\(task.state.rawValue)</span></td>
                <td class="time">\(e(DashboardFormat.timestamp(task.scheduledAt)))</td><td class="num">\(task.startedAt.map { "+" + DashboardFormat.duration($0.timeIntervalSince(task.scheduledAt)) } ?? "–")</td>
                <td class="num">\(e(ran))</td><td>\(payloadCell(task.input))</td><td>\(output)</td></tr>
                """
        }
        if summary.tasks.isEmpty { rows = "<tr><td colspan=\"8\" class=\"empty\">No tasks.</td></tr>" }
        return """
            <section id="io" class="card view" data-tasks="\(summary.tasks.count)">
            <h2>Input/Output <span class="muted">\(DashboardFormat.count(summary.tasks.count)) tasks</span></h2>
            <div class="io-top"><div><h3>Orchestration input</h3>\(payloadBlock(m.input))</div><div><h3>Orchestration output</h3>\(payloadBlock(m.output))</div></div>
            \(pager(request, "ip", page: page, total: summary.tasks.count, anchor: "io"))
            <table class="io"><thead><tr><th>Task</th><th>Name</th><th>State</th><th>Scheduled</th><th>Queued</th><th>Ran</th><th>Input</th><th>Output</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(pager(request, "ip", page: page, total: summary.tasks.count, anchor: "io"))</section>
            """
    }

    private func payloadBlock(_ payload: Payload?) -> String {
        guard let payload else { return "<p class=\"muted\">none</p>" }
        return "<pre class=\"payload\">\(e(Self.shorten(Self.pretty(payload), 20_000)))</pre>"
    }

    static func pretty(_ payload: Payload) -> String {
        guard payload.count < 200_000, let object = try? JSONSerialization.jsonObject(with: payload.data, options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
        else { return payload.json }
        return String(decoding: data, as: UTF8.self)
    }
}
