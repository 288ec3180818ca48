@_spi(Backend) import DurableTask
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
    ///
    /// A history whose orchestrator was not added is reported as a ``ReplayReport/problem`` naming it,
    /// not replayed.
    public func replay(_ history: [HistoryEvent], instanceID: String) -> ReplayReport {
        let name = history.lazy.compactMap { event -> String? in
            if case let .executionStarted(name, _, _, _, _) = event.kind { return name }
            return nil
        }.first
        if let name, orchestrators[name] == nil {
            return ReplayReport(instanceID: instanceID, name: name, events: history.count, nondeterminism: nil, problem: notAdded(name, instanceID))
        }
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
    ///
    /// Every selected instance gets a report: one whose orchestrator was not added is a
    /// ``ReplayReport/problem`` naming the orchestrator, so a forgotten ``addOrchestrator(_:)`` cannot
    /// pass as a clean run. To check only some orchestrators, name them in `names`.
    /// - Parameters:
    ///   - backend: where the histories are (a copy of production's database, say).
    ///   - query: which instances; all of them by default.
    ///   - names: only instances of orchestrators with these names; by default every instance the query
    ///     selects.
    /// - Returns: one report per instance, in the query's order.
    /// - Throws: the backend's errors while querying or reading histories.
    public func replay(
        backend: any Backend, query: OrchestrationQuery = OrchestrationQuery(pageSize: 500),
        names: Set<String>? = nil
    ) async throws -> [ReplayReport] {
        var reports: [ReplayReport] = []
        var page = query
        repeat {
            let result = try await backend.queryOrchestrations(page)
            for instance in result.instances where names?.contains(instance.name) ?? true {
                // Decided on the instance's name, not its history: an instance that has not started yet
                // has an empty history but still needs its orchestrator once it does.
                guard orchestrators[instance.name] != nil else {
                    reports.append(
                        ReplayReport(
                            instanceID: instance.instanceID, name: instance.name, events: 0, nondeterminism: nil,
                            problem: notAdded(instance.name, instance.instanceID)))
                    continue
                }
                let history = try await backend.getOrchestrationHistory(instanceID: instance.instanceID)
                reports.append(replay(history, instanceID: instance.instanceID))
            }
            page.continuationToken = result.continuationToken
        } while page.continuationToken != nil
        return reports
    }

    private func notAdded(_ name: String, _ instanceID: String) -> FailureDetails {
        FailureDetails(
            error: DurableTaskError(
                .orchestratorNotRegistered,
                "instance '\(instanceID)' runs orchestrator '\(name)', which was not added to the replayer: add it with "
                    + "addOrchestrator, or leave it out with replay(backend:query:names:)"))
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
    /// What kept the replay from running: no orchestrator of the instance's name was added
    /// (`DurableTaskError.Code.orchestratorNotRegistered`).
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
