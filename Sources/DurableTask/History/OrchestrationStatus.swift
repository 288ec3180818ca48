/// The runtime status of an orchestration instance.
public enum OrchestrationStatus: String, Sendable, Codable, CaseIterable {
    /// Scheduled, not yet started by a worker.
    case pending
    /// Started and not finished.
    case running
    /// Finished with an output.
    case completed
    /// Finished because the orchestrator threw (or could not run); see the failure details.
    case failed
    /// Ended by a client's terminate request.
    case terminated
    /// Paused by a client; processes no events until resumed.
    case suspended
    /// Finished this execution by calling continue-as-new (transient: the next execution follows).
    case continuedAsNew

    /// Whether the instance has finished and will make no further progress.
    public var isTerminal: Bool {
        switch self {
        case .completed, .failed, .terminated: true
        default: false
        }
    }
}
