@_spi(Backend) import DurableTask
import DurableTaskDashboard
import Foundation
import Testing

/// An instance whose history is written straight through the backend seam, as one episode: any
/// history a test can build (100,000 tasks, hostile names, nested failures) without running code.
enum StoredInstance {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Creates instance `id` named `name` and commits `events` (after `orchestratorStarted` and its
    /// `executionStarted`) with the given ending.
    static func make(
        on backend: InMemoryBackend, id: String, name: String, events: [HistoryEvent], status: OrchestrationStatus,
        failure: FailureDetails? = nil
    ) async throws {
        let start = HistoryEvent(
            timestamp: t0, kind: .executionStarted(name: name, executionID: "e-\(id)", input: Payload(json: "1"), parent: nil, scheduledStart: nil))
        try await backend.createOrchestrationInstance(NewOrchestrationInstance(instanceID: id, startEvent: start))
        let item = try #require(try await backend.getOrchestrationWorkItem(owner: "test", leaseDuration: .seconds(60), includeRedelivered: true))
        #expect(item.instanceID == id)
        let history = [HistoryEvent(timestamp: t0, kind: .orchestratorStarted)] + item.newEvents + events
        try await backend.completeOrchestrationWorkItem(item, result: OrchestrationWorkItemResult(newHistory: history, status: status, failure: failure))
    }

    static func count(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }
}

@Suite struct InstancePageTests {
    func get(_ d: Dashboard, _ target: String) async -> HTTPResponse {
        await d.respond(to: HTTPRequest(method: "GET", target: target, headers: [("Host", "127.0.0.1")]))
    }

    @Test func aHundredThousandInterleavedActivitiesAndTimersMakeABoundedPage() async throws {
        // Three activity names in turn and a timer after every tenth activity: no two consecutive tasks
        // share a name, which once gave every task a timeline row of its own.
        let names = ["Fetch", "Parse", "Store"]
        let activities = 100_000
        var events: [HistoryEvent] = []
        var scheduled: [(id: Int, isTimer: Bool)] = []
        events.reserveCapacity(2 * activities + 30_000)
        let t0 = StoredInstance.t0
        var id = 0
        for i in 0..<activities {
            events.append(HistoryEvent(eventID: id, timestamp: t0, kind: .taskScheduled(name: names[i % 3], input: Payload(json: "\(i)"))))
            scheduled.append((id, false))
            id += 1
            if i % 10 == 9 {
                events.append(HistoryEvent(eventID: id, timestamp: t0, kind: .timerCreated(fireAt: t0 + 5)))
                scheduled.append((id, true))
                id += 1
            }
        }
        events.append(HistoryEvent(timestamp: t0, kind: .orchestratorCompleted))
        events.append(HistoryEvent(timestamp: t0 + 1, kind: .orchestratorStarted))
        for (n, task) in scheduled.enumerated() {
            let at = t0 + 1 + Double(n) / Double(scheduled.count) * 10
            if task.isTimer {
                events.append(HistoryEvent(timestamp: at, kind: .timerFired(scheduledID: task.id, fireAt: t0 + 5)))
            } else {
                events.append(HistoryEvent(timestamp: at + 0.01, kind: .taskCompleted(scheduledID: task.id, result: Payload(json: "1")), startedAt: at))
            }
        }
        events.append(HistoryEvent(timestamp: t0 + 12, kind: .executionCompleted(status: .completed, result: Payload(json: "0"), failure: nil)))
        let backend = InMemoryBackend()
        try await StoredInstance.make(on: backend, id: "big", name: "Interleaved", events: events, status: .completed)

        let dashboard = Dashboard(client: DurableTaskClient(backend: backend))
        let page = await get(dashboard, "/instances/big")
        #expect(page.status == 200)
        let html = page.bodyText
        let tasks = activities + activities / 10
        #expect(html.contains(#"data-tasks="\#(tasks)""#))
        let lanes = StoredInstance.count(#"<div class="lane""#, in: html)
        #expect(lanes <= dashboard.options.maxTimelineLanes, "\(lanes) timeline rows")
        #expect(html.contains(#"data-lanes="\#(lanes)""#))
        for name in names + ["timer"] {
            #expect(html.contains(#"<span class="lane-name">\#(name) #"#), "a bar for \(name)")
        }
        let historyRows = StoredInstance.count(#"<tr class="event""#, in: html)
        #expect(historyRows == dashboard.options.rowsPerPage, "the history view is paged: \(historyRows) rows")
        #expect(html.contains(#"data-events="\#(events.count + 2)""#))
        #expect(StoredInstance.count(#"<tr class="task""#, in: html) == dashboard.options.rowsPerPage)
        #expect(html.utf8.count < 1_000_000, "page of \(html.utf8.count) bytes")
        // The last history page is reachable and holds the remainder.
        let pages = (events.count + 2 + dashboard.options.rowsPerPage - 1) / dashboard.options.rowsPerPage
        let last = await get(dashboard, "/instances/big?hp=\(pages)")
        #expect(StoredInstance.count(#"<tr class="event""#, in: last.bodyText) == (events.count + 2) - (pages - 1) * dashboard.options.rowsPerPage)
    }

    @Test func lanesStayBoundedWhateverTheNamesAndOrder() {
        var history: [HistoryEvent] = [HistoryEvent(timestamp: StoredInstance.t0, kind: .orchestratorStarted)]
        // 100 names, each used a different number of times, in round-robin order.
        var id = 0
        for round in 0..<100 {
            for name in 0..<100 where name <= round {
                history.append(HistoryEvent(eventID: id, timestamp: StoredInstance.t0, kind: .taskScheduled(name: "N\(name)", input: nil)))
                id += 1
            }
        }
        let summary = InstanceSummary(history: history)
        for maxLanes in [1, 2, 10, 60, 99, 100, 101, 6000] {
            let lanes = summary.lanes(maxLanes: maxLanes)
            #expect(lanes.count <= maxLanes, "\(lanes.count) lanes for at most \(maxLanes)")
            #expect(lanes.reduce(0) { $0 + $1.count } == id, "every task is in one lane")
            #expect(lanes.allSatisfy { $0.pending == $0.count })
        }
        let ten = summary.lanes(maxLanes: 10)
        // The most used names keep their own bars; the rest share the last one.
        #expect(ten.dropLast().map(\.name) == (0..<9).map { "N\($0)" })
        #expect(ten.last?.name == "91 other names")
        #expect(summary.lanes(maxLanes: 6000).count == id, "one bar per task when they fit")
    }

    @Test func zeroRowsPerPageIsClampedNotADivisionByZero() async throws {
        let (client, _) = try await FixedHub.make()
        var options = Dashboard.Options(rowsPerPage: 0)
        #expect(options.rowsPerPage == 1)
        for rows in [0, -5] {
            options.rowsPerPage = rows
            let page = await get(Dashboard(client: client, options: options), "/instances/fixed?hp=3&ip=2")
            #expect(page.status == 200)
            #expect(StoredInstance.count(#"<tr class="event""#, in: page.bodyText) == 1)
            #expect(StoredInstance.count(#"<tr class="task""#, in: page.bodyText) == 1)
            #expect(page.bodyText.contains("page 3 of 16"))
        }
        options.pageSize = 0
        #expect(await get(Dashboard(client: client, options: options), "/").status == 200)
    }

    @Test func markupInTheNameAndTheFailuresIsEscaped() async throws {
        let backend = InMemoryBackend()
        let name = #"<script>alert("name")</script>"#
        var failure = FailureDetails(errorType: "<script>type</script>", message: "<script>alert('outer')</script>\nsecond line")
        failure.inner = [
            FailureDetails(errorType: "Inner", message: "<img src=x onerror=alert(1)>"),
            FailureDetails(errorType: "Inner", message: "<b>second cause</b>", inner: FailureDetails(errorType: "Deep", message: "</pre><script>deep</script>"))
        ]
        let events = [
            HistoryEvent(eventID: 0, timestamp: StoredInstance.t0, kind: .taskScheduled(name: "<i>step</i>", input: nil)),
            HistoryEvent(timestamp: StoredInstance.t0 + 1, kind: .taskFailed(scheduledID: 0, failure: failure)),
            HistoryEvent(timestamp: StoredInstance.t0 + 1, kind: .executionCompleted(status: .failed, result: nil, failure: failure))
        ]
        try await StoredInstance.make(on: backend, id: "hostile", name: name, events: events, status: .failed, failure: failure)
        let page = await get(Dashboard(client: DurableTaskClient(backend: backend)), "/instances/hostile")
        #expect(page.status == 200)
        let html = page.bodyText
        for raw in ["<script>alert", "<script>type", "<script>deep", "</pre><script>", "<img src=x", "<b>second", "<i>step"] {
            #expect(!html.contains(raw), "\(raw) reached the page unescaped")
        }
        #expect(html.contains("<h1>&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;</h1>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;outer&#39;)&lt;/script&gt;"))
        #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;"))
        #expect(html.contains("&lt;/pre&gt;&lt;script&gt;deep&lt;/script&gt;"))
        #expect(StoredInstance.count(#"<div class="inner-label">caused by</div>"#, in: html) == 3, "every inner failure is shown")
        // Only the page's own script tag.
        #expect(StoredInstance.count("<script", in: html) == 1)
    }
}

@Suite struct DashboardActionTests {
    struct Approval: Orchestrator {
        static var name: String { "Approval" }
        func run(context: OrchestrationContext, input: String) async throws -> Bool {
            try await context.waitForExternalEvent("Approved", as: Bool.self).value
        }
    }

    func post(_ d: Dashboard, _ target: String, _ body: String) async -> HTTPResponse {
        await d.respond(
            to: HTTPRequest(
                method: "POST", target: target, headers: [("Host", "127.0.0.1"), ("Content-Type", "application/json")], body: Array(body.utf8)))
    }

    func status(_ client: DurableTaskClient, _ id: String, becomes expected: OrchestrationStatus) async throws -> Bool {
        for _ in 0..<500 {
            if try await client.getInstance(id)?.status == expected { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func suspendResumeAndRaiseThroughTheJSONAPI() async throws {
        let backend = InMemoryBackend()
        let worker = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
        worker.addOrchestrator(Approval())
        let running = Task { await worker.run() }
        defer { running.cancel() }
        let client = DurableTaskClient(backend: backend)
        let d = Dashboard(client: client, options: .init(allowActions: true))

        let scheduled = await post(d, "/api/instances", #"{"name":"Approval","input":"order 7","instanceID":"approve-7"}"#)
        #expect(scheduled.status == 201)
        #expect(try await status(client, "approve-7", becomes: .running))

        let suspended = await post(d, "/api/instances/approve-7/suspend", #"{"reason":"hold on"}"#)
        #expect(suspended.status == 202)
        #expect(suspended.bodyText.contains(#""accepted":"suspend""#))
        #expect(try await status(client, "approve-7", becomes: .suspended))
        let page = await d.respond(to: HTTPRequest(method: "GET", target: "/instances/approve-7", headers: [("Host", "127.0.0.1")]))
        #expect(page.bodyText.contains(#"data-action="resume""#))

        // Resumed with an empty body: the reason is optional.
        let resumed = await post(d, "/api/instances/approve-7/resume", "")
        #expect(resumed.status == 202)
        #expect(try await status(client, "approve-7", becomes: .running))

        let raised = await post(d, "/api/instances/approve-7/raise", #"{"name":"Approved","data":true}"#)
        #expect(raised.status == 202)
        #expect(raised.bodyText.contains(#""accepted":"raise""#))
        let done = try await client.waitForCompletion("approve-7", timeout: .seconds(30))
        #expect(done.status == .completed)
        #expect(done.output?.json == "true")
        let kinds = try await client.getHistory("approve-7").map(\.kindName)
        #expect(kinds.contains("executionSuspended") && kinds.contains("executionResumed") && kinds.contains("eventRaised"))
        running.cancel()
        await running.value
    }
}
