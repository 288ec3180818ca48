import DurableTask
import Foundation

/// Replays recorded histories against your orchestrators, to find out before a deploy whether new code
/// still matches instances that are running: for each instance, success or the precise nondeterminism
/// (instance, position, what history holds, what the code did).
///
/// ```swift
/// var replayer = OrchestrationReplayer()
/// replayer.addOrchestrator(PlaceOrder())                      // the code you are about to deploy
/// let reports = try await replayer.replay(backend: try SQLiteBackend(path: "copy-of-production.sqlite"))
/// #expect(reports.allSatisfy(\.succeeded), "\(reports.filter { !$0.succeeded })")
/// ```
///
/// Histories come from any backend (all instances, or those a query selects) or from JSON files written
/// by ``DurableTask/HistoryExport`` (`durabletask export`). Replaying runs the orchestrator code only — no
/// activity runs, nothing is written.
public struct OrchestrationReplayer: Sendable {
    private var orchestrators: [String: OrchestratorEntry] = [:]

    /// An empty replayer; add the orchestrators to check.
    public init() {}

    /// Adds an orchestrator under its ``DurableTask/Orchestrator/name``.
    public mutating func addOrchestrator<O: Orchestrator>(_ orchestrator: O) {
        let entry = OrchestratorEntry(orchestrator)
        orchestrators[entry.name] = entry
    }

    /// Adds an orchestrator written as a closure.
    public mutating func addOrchestrator<Input: Codable & Sendable, Output: Codable & Sendable>(
        name: String, _ body: @escaping @Sendable (OrchestrationContext, Input) async throws -> Output
    ) {
        orchestrators[name] = OrchestratorEntry.decoding(name: name, body)
    }

    /// Replays one history.
    public func replay(_ history: [HistoryEvent], instanceID: String) -> ReplayReport {
        let name = history.lazy.compactMap { event -> String? in
            if case let .executionStarted(name, _, _, _, _) = event.kind { return name }
            return nil
        }.first
        let (nondeterminism, problem) = ReplayEngine.check(instanceID: instanceID, orchestrators: Array(orchestrators.values), history: history)
        return ReplayReport(instanceID: instanceID, name: name, events: history.count, nondeterminism: nondeterminism, problem: problem)
    }

    /// Replays a history exported as JSON (``DurableTask/HistoryExport``).
    /// - Throws: `DurableTaskError(.payloadInvalid)` when the document cannot be read.
    public func replay(export data: Data) throws -> ReplayReport {
        let document = try HistoryExport.decode(data)
        return replay(document.events, instanceID: document.instanceID)
    }

    /// Replays the history of every instance a query selects (all instances by default), page by page.
    /// - Parameter names: only instances of orchestrators with these names; by default the ones added.
    public func replay(
        backend: any Backend, query: OrchestrationQuery = OrchestrationQuery(pageSize: 500),
        names: Set<String>? = nil
    ) async throws -> [ReplayReport] {
        let wanted = names ?? Set(orchestrators.keys)
        var reports: [ReplayReport] = []
        var page = query
        repeat {
            let result = try await backend.queryOrchestrations(page)
            for instance in result.instances where wanted.contains(instance.name) {
                let history = try await backend.getOrchestrationHistory(instanceID: instance.instanceID)
                reports.append(replay(history, instanceID: instance.instanceID))
            }
            page.continuationToken = result.continuationToken
        } while page.continuationToken != nil
        return reports
    }
}

/// The outcome of replaying one instance's history.
public struct ReplayReport: Sendable, CustomStringConvertible {
    /// The instance replayed.
    public let instanceID: String
    /// Its orchestrator's name, when history has its start.
    public let name: String?
    /// How many history events were replayed.
    public let events: Int
    /// Where the code no longer matches the history: the position, what history holds, what the code did.
    public let nondeterminism: NonDeterminismError?
    /// What kept the replay from running (no orchestrator of that name was added).
    public let problem: FailureDetails?

    /// Whether the code replays the history exactly.
    public var succeeded: Bool { nondeterminism == nil && problem == nil }

    /// One line: the instance and its outcome.
    public var description: String {
        if let nondeterminism { return "\(instanceID): \(nondeterminism.message)" }
        if let problem { return "\(instanceID): \(problem.message)" }
        return "\(instanceID): replays (\(events) events)"
    }
}
