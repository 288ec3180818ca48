import DurableTask
import DurableTaskDashboard
import Foundation
import Synchronization
import Testing

/// A small fixed history: three sequential steps on a manual clock that each activity advances, so
/// every timestamp (and so the command's output) is the same on every run.
enum FixedHub {
    struct Step: Activity {
        let clock: ManualClock
        func run(context: ActivityContext, input: String) async throws -> String {
            clock.advance(by: 1.5)
            if input == "boom" {
                throw DurableTaskError(.invalidState, "step refused '\(input)'")
            }
            return input.uppercased()
        }
    }

    struct Pipeline: Orchestrator {
        func run(context: OrchestrationContext, input: [String]) async throws -> [String] {
            var out: [String] = []
            for word in input {
                do { out.append(try await context.callActivity(Step.self, input: word).value) } catch { out.append("failed") }
            }
            context.setCustomStatus("\(out.count) done")
            return out
        }
    }

    /// Runs `Pipeline` to completion as instance `fixed` and returns the client.
    static func make(input: [String] = ["a", "boom", "c"], instanceID: String = "fixed") async throws -> (DurableTaskClient, ManualClock) {
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_800_000_000))
        let backend = InMemoryBackend(clock: clock)
        let worker = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
        worker.addOrchestrator(Pipeline())
        worker.addActivity(Step(clock: clock))
        let running = Task { await worker.run() }
        let client = DurableTaskClient(backend: backend)
        try await client.scheduleNewOrchestration(Pipeline.self, input: input, instanceID: instanceID)
        _ = try await client.waitForCompletion(instanceID, timeout: .seconds(30))
        running.cancel()
        await running.value
        return (client, clock)
    }
}

final class Output: Sendable {
    private let text = Mutex("")
    func append(_ s: String) { text.withLock { $0 += s } }
    var value: String { text.withLock { $0 } }
}

@Suite struct DashboardAPITests {
    func get(_ d: Dashboard, _ target: String) async -> HTTPResponse {
        await d.respond(to: HTTPRequest(method: "GET", target: target, headers: [("Host", "127.0.0.1")]))
    }

    func json(_ r: HTTPResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
    }

    @Test func listGetManyAndHistory() async throws {
        let (client, _) = try await FixedHub.make()
        let d = Dashboard(client: client)
        let list = await get(d, "/api/instances?status=completed&prefix=fix")
        #expect(list.status == 200)
        let instances = try #require(try json(list)["instances"] as? [[String: Any]])
        #expect(instances.count == 1)
        #expect(instances.first?["instanceID"] as? String == "fixed")
        #expect(instances.first?["createdAt"] as? String == "2027-01-15T08:00:00.000Z")
        #expect(instances.first?["output"] as? [String] == ["A", "failed", "C"])
        #expect(instances.first?["customStatus"] as? String == "3 done")

        let none = await get(d, "/api/instances?status=running")
        #expect((try json(none)["instances"] as? [Any])?.isEmpty == true)
        #expect(await get(d, "/api/instances?status=bogus").status == 400)
        #expect(await get(d, "/api/instances?createdFrom=2027-01-16").status == 200)
        #expect((try json(await get(d, "/api/instances?createdFrom=2027-01-16"))["instances"] as? [Any])?.isEmpty == true)

        let one = await get(d, "/api/instances/fixed")
        #expect(one.status == 200)
        #expect(try json(one)["status"] as? String == "completed")
        #expect(await get(d, "/api/instances/nope").status == 404)

        let many = await get(d, "/api/instances?id=fixed&id=nope")
        let manyList = try #require(try json(many)["instances"] as? [Any])
        #expect(manyList.count == 2)
        #expect((manyList[0] as? [String: Any])?["instanceID"] as? String == "fixed")
        #expect(manyList[1] is NSNull)
        let batch = await d.respond(
            to: HTTPRequest(
                method: "POST", target: "/api/instances/batch", headers: [("Host", "localhost")],
                body: Array(#"{"instanceIDs":["nope","fixed"]}"#.utf8)))
        #expect(batch.status == 200)
        #expect(((try json(batch)["instances"] as? [Any])?[1] as? [String: Any])?["name"] as? String == "Pipeline")

        let history = await get(d, "/api/instances/fixed/history")
        let events = try #require(try json(history)["events"] as? [[String: Any]])
        #expect(try json(history)["total"] as? Int == events.count)
        let completed = try #require(events.first { $0["kind"] as? String == "taskCompleted" })
        #expect(completed["startedAt"] as? String == "2027-01-15T08:00:00.000Z")
        #expect(completed["timestamp"] as? String == "2027-01-15T08:00:01.500Z")
        let failed = try #require(events.first { $0["kind"] as? String == "taskFailed" })
        #expect((failed["failure"] as? [String: Any])?["message"] as? String == "step refused 'boom'")
        let paged = await get(d, "/api/instances/fixed/history?offset=2&limit=3")
        #expect((try json(paged)["events"] as? [Any])?.count == 3)
        #expect(await get(d, "/api/instances/fixed/history?limit=0").status == 400)
        #expect(await get(d, "/api/instances/nope/history").status == 404)

        let summary = try json(await get(d, "/api/instances/fixed/summary"))
        #expect((summary["tasks"] as? [String: Any])?["failed"] as? Int == 1)
    }

    @Test func actionsAreRefusedUnlessAllowedAndNeedJSON() async throws {
        let (client, _) = try await FixedHub.make()
        let readOnly = Dashboard(client: client)
        let json = [("Host", "127.0.0.1"), ("Content-Type", "application/json")]
        let refused = await readOnly.respond(to: HTTPRequest(method: "DELETE", target: "/api/instances/fixed", headers: json))
        #expect(refused.status == 403)
        #expect(refused.bodyText.contains("read-only"))
        #expect(
            await readOnly.respond(
                to: HTTPRequest(
                    method: "POST", target: "/api/instances",
                    headers: json, body: Array(#"{"name":"Pipeline","input":[]}"#.utf8))
            ).status == 403)
        #expect(try await client.getInstance("fixed") != nil)

        let managing = Dashboard(client: client, options: .init(allowActions: true))
        // A cross-site form can post, but not as JSON: refused.
        let form = await managing.respond(
            to: HTTPRequest(
                method: "DELETE", target: "/api/instances/fixed",
                headers: [("Host", "127.0.0.1"), ("Content-Type", "application/x-www-form-urlencoded")]))
        #expect(form.status == 415)
        let scheduled = await managing.respond(
            to: HTTPRequest(
                method: "POST", target: "/api/instances", headers: json,
                body: Array(#"{"name":"Pipeline","input":["x"],"instanceID":"second"}"#.utf8)))
        #expect(scheduled.status == 201)
        #expect(try await client.getInstance("second")?.status == .pending)
        let terminated = await managing.respond(
            to: HTTPRequest(
                method: "POST", target: "/api/instances/second/terminate", headers: json,
                body: Array(#"{"reason":"test"}"#.utf8)))
        #expect(terminated.status == 202)
        let raisedBad = await managing.respond(
            to: HTTPRequest(
                method: "POST", target: "/api/instances/second/raise", headers: json,
                body: Array(#"{"data":1}"#.utf8)))
        #expect(raisedBad.status == 400)
        #expect(raisedBad.bodyText.contains("name"))
        let purged = await managing.respond(to: HTTPRequest(method: "DELETE", target: "/api/instances/fixed", headers: json))
        #expect(purged.status == 200)
        #expect(try await client.getInstance("fixed") == nil)
        #expect(await managing.respond(to: HTTPRequest(method: "DELETE", target: "/api/instances/fixed", headers: json)).status == 404)
    }

    @Test func everyUserStringIsEscapedInPages() async throws {
        let hostile = #"<script>alert("id")</script>'&"#
        let long = String(repeating: "<b>x</b>", count: 20_000)
        let (client, _) = try await FixedHub.make(input: ["<img src=x onerror=alert(1)>", long], instanceID: hostile)
        let d = Dashboard(client: client)
        let list = await get(d, "/?prefix=%3Cscript%3E")
        #expect(list.status == 200)
        #expect(list.bodyText.contains("&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;&#39;&amp;"))
        #expect(!list.bodyText.contains("<script>alert"))
        let page = await get(d, "/instances/" + hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
        #expect(page.status == 200)
        #expect(!page.bodyText.contains("<script>alert"))
        #expect(!page.bodyText.contains("<img src=x"))
        #expect(!page.bodyText.contains("<b>x</b>"))
        #expect(page.bodyText.contains("&lt;img src=x onerror=alert(1)&gt;"))
        #expect(page.header("Content-Security-Policy")?.contains("script-src 'self'") == true)
        let missing = await get(d, "/instances/%3Cscript%3Ex")
        #expect(missing.status == 404)
        #expect(!missing.bodyText.contains("<script>x"))
        let api = await get(d, "/api/instances/" + hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
        #expect(!api.bodyText.contains("<script>"))
        #expect(try json(api)["instanceID"] as? String == hostile)
    }

    @Test func instancePageHasTheFourViewsWithCounts() async throws {
        let (client, _) = try await FixedHub.make()
        let page = await get(Dashboard(client: client), "/instances/fixed")
        let html = page.bodyText
        #expect(html.contains(#"<section id="timeline" class="card view" data-tasks="3" data-lanes="3">"#))
        #expect(html.contains(#"<section id="history" class="card view" data-events=""#))
        #expect(html.contains(#"<section id="sequence" class="card view" data-phases=""#))
        #expect(html.contains(#"<section id="io" class="card view" data-tasks="3">"#))
        #expect(html.contains("step refused &#39;boom&#39;"))
        #expect(!html.contains("http-equiv=\"refresh\""), "a finished instance does not reload itself")
    }

    @Test func aHundredThousandActivitiesMakeAFewHundredRows() async throws {
        // The summary and page for a fan-out this size are aggregated: bars and pages, not one row each.
        var history: [HistoryEvent] = []
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let n = 100_000
        history.reserveCapacity(2 * n + 6)
        history.append(HistoryEvent(timestamp: t0, kind: .orchestratorStarted))
        history.append(HistoryEvent(timestamp: t0, kind: .executionStarted(name: "Fan", executionID: "e", input: nil, parent: nil, scheduledStart: nil)))
        for i in 0..<n { history.append(HistoryEvent(eventID: i, timestamp: t0, kind: .taskScheduled(name: "Work", input: Payload(json: "\(i)")))) }
        history.append(HistoryEvent(timestamp: t0, kind: .orchestratorCompleted))
        history.append(HistoryEvent(timestamp: t0 + 1, kind: .orchestratorStarted))
        for i in 0..<n {
            let at = t0 + Double(i) / Double(n) * 10
            history.append(HistoryEvent(timestamp: at + 0.01, kind: .taskCompleted(scheduledID: i, result: Payload(json: "1")), startedAt: at))
        }
        history.append(HistoryEvent(timestamp: t0 + 11, kind: .executionCompleted(status: .completed, result: nil, failure: nil)))
        let started = ContinuousClock.now
        let summary = InstanceSummary(history: history)
        let lanes = summary.lanes(maxLanes: 60)
        let elapsed = ContinuousClock.now - started
        #expect(summary.tasks.count == n)
        #expect(lanes.count <= 60)
        #expect(lanes.reduce(0) { $0 + $1.count } == n)
        #expect(summary.phases.map(\.kind) == [.start, .fanOut, .fanIn, .end])
        #expect(elapsed < .seconds(2), "summary of 100,000 tasks took \(elapsed)")
    }
}

@Suite struct CommandTests {
    func run(_ args: [String], _ client: DurableTaskClient) async -> (Int32, String, String) {
        let out = Output(), err = Output()
        let status = await DurableTaskCommand.run(args, client: client, output: { out.append($0) }, errorOutput: { err.append($0) })
        return (status, out.value, err.value)
    }

    @Test func goldenOutputForAFixedHistory() async throws {
        let (client, _) = try await FixedHub.make()
        let (s1, list, _) = await run(["list"], client)
        #expect(s1 == 0)
        #expect(
            list == """
                STATUS         NAME      INSTANCE ID  CREATED                   UPDATED                   CUSTOM STATUS
                completed      Pipeline  fixed        2027-01-15 08:00:00.000Z  2027-01-15 08:00:04.500Z  "3 done"

                """)
        let (s2, timeline, _) = await run(["timeline", "fixed", "--width", "30"], client)
        #expect(s2 == 0)
        #expect(
            timeline == """
                          |+0 ms                   +4.5 s|
                Step #0   |██████████                    | 1.5 s
                Step #1   |          xxxxxxxxxx          | 1 failed 1.5 s
                Step #2   |                    ██████████| 1.5 s
                · queued  █ ran  ▒ running  x failed

                """)
        let (s3, history, _) = await run(["history", "fixed"], client)
        #expect(s3 == 0)
        #expect(
            history.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } == [
                "1     2027-01-15 08:00:00.000Z  +0 ms       orchestratorStarted",
                #"2     2027-01-15 08:00:00.000Z  +0 ms       executionStarted                  Pipeline input=["a","boom","c"]"#,
                #"3     2027-01-15 08:00:00.000Z  +0 ms       taskScheduled              #0     Step input="a""#,
                "4     2027-01-15 08:00:00.000Z  +0 ms       orchestratorCompleted",
                "5     2027-01-15 08:00:01.500Z  +1.5 s      orchestratorStarted",
                #"6     2027-01-15 08:00:01.500Z  +1.5 s      taskCompleted              #0     result="A" ran 1.5 s"#,
                #"7     2027-01-15 08:00:01.500Z  +1.5 s      taskScheduled              #1     Step input="boom""#,
                "8     2027-01-15 08:00:01.500Z  +1.5 s      orchestratorCompleted",
                "9     2027-01-15 08:00:03.000Z  +3.0 s      orchestratorStarted",
                "10    2027-01-15 08:00:03.000Z  +3.0 s      taskFailed                 #1     DurableTaskError.invalidState: step refused 'boom'",
                #"11    2027-01-15 08:00:03.000Z  +3.0 s      taskScheduled              #2     Step input="c""#,
                "12    2027-01-15 08:00:03.000Z  +3.0 s      orchestratorCompleted",
                "13    2027-01-15 08:00:04.500Z  +4.5 s      orchestratorStarted",
                #"14    2027-01-15 08:00:04.500Z  +4.5 s      taskCompleted              #2     result="C" ran 1.5 s"#,
                #"15    2027-01-15 08:00:04.500Z  +4.5 s      executionCompleted                completed output=["A","failed","C"]"#,
                "16    2027-01-15 08:00:04.500Z  +4.5 s      orchestratorCompleted"
            ])
        let (s4, show, _) = await run(["show", "fixed"], client)
        #expect(s4 == 0)
        #expect(show.contains("Status:        completed\n"))
        #expect(show.contains("Tasks:         3 (2 completed, 1 failed, 0 pending)\n"))
        #expect(show.contains("Completed:     2027-01-15 08:00:04.500Z (took 4.5 s)\n"))
        let (s5, showJSON, _) = await run(["show", "fixed", "--json"], client)
        #expect(s5 == 0)
        #expect(showJSON.contains(#""status":"completed""#))
    }

    @Test func showPrintsEveryInnerFailureNested() async throws {
        let backend = InMemoryBackend(clock: ManualClock(start: StoredInstance.t0))
        var failure = FailureDetails(errorType: "FanInError", message: "2 of 3 branches failed")
        failure.inner = [
            FailureDetails(errorType: "TaskFailed", message: "branch 1", inner: FailureDetails(errorType: "IOError", message: "disk full")),
            FailureDetails(errorType: "TaskFailed", message: "branch 2")
        ]
        let ended = HistoryEvent(timestamp: StoredInstance.t0 + 1, kind: .executionCompleted(status: .failed, result: nil, failure: failure))
        try await StoredInstance.make(on: backend, id: "fan", name: "Fan", events: [ended], status: .failed, failure: failure)
        let (status, show, _) = await run(["show", "fan"], DurableTaskClient(backend: backend))
        #expect(status == 0)
        let expected = """
            Failure:
              FanInError: 2 of 3 branches failed
                caused by TaskFailed: branch 1
                  caused by IOError: disk full
                caused by TaskFailed: branch 2
            Sequence:

            """
        #expect(show.contains(expected), "\(show)")
    }

    @Test func exportWritesAHistoryTheExportFormatReadsBack() async throws {
        let (client, _) = try await FixedHub.make()
        let (status, out, _) = await run(["export", "fixed"], client)
        #expect(status == 0)
        let document = try HistoryExport.decode(Data(out.utf8))
        #expect(document.instanceID == "fixed")
        #expect(document.name == "Pipeline")
        #expect(document.events == (try await client.getHistory("fixed")))
        let (unknown, _, err) = await run(["export", "nobody"], client)
        #expect(unknown == 1)
        #expect(err.contains("nobody"))
    }

    @Test func errorsAndUsage() async throws {
        let (client, _) = try await FixedHub.make()
        let (s1, _, e1) = await run(["show", "nope"], client)
        #expect(s1 == 1)
        #expect(e1.contains("no instance 'nope'"))
        let (s2, _, e2) = await run(["frobnicate"], client)
        #expect(s2 == 2)
        #expect(e2.contains("unknown command 'frobnicate'"))
        let (s3, _, e3) = await run(["list", "--status", "bogus"], client)
        #expect(s3 == 2)
        #expect(e3.contains("unknown status 'bogus'"))
        let (s4, help, _) = await run(["help"], client)
        #expect(s4 == 0)
        #expect(help.contains("timeline ID"))
        let (s5, _, e5) = await run(["purge", "fixed", "--force", "yes"], client)
        #expect(s5 == 2)
        #expect(e5.contains("--force"))
        let (s6, out6, _) = await run(["raise", "fixed", "Approval", "true"], client)
        #expect(s6 == 1 || out6.contains("raised"), "raising on a finished instance is the core's decision")
        let (s7, out7, _) = await run(["purge", "fixed"], client)
        #expect(s7 == 0)
        #expect(out7 == "purged 'fixed'\n")
    }
}
