/// Where instances leased by a commit of activity results enter a worker's episodes, beside the
/// dispatcher's own leases (see ``Backend/completeActivityWorkItems(_:leasing:)``).
///
/// The commit that records the results of an instance's activities is the moment its next episode
/// becomes ready; leasing it there spares that episode a lease transaction and a wake-up of the
/// dispatcher. Room is claimed from the dispatcher's episode slots before the commit and given back
/// for what it did not lease, so the two never run more episodes together than the capacity.
final class OrchestrationIntake: Sendable {
    let slots: EpisodeSlots
    let queue = WorkQueue<OrchestrationWorkItem>()
    private let hasOrchestrators: @Sendable () -> Bool

    init(slots: EpisodeSlots, hasOrchestrators: @escaping @Sendable () -> Bool) {
        self.slots = slots
        self.hasOrchestrators = hasOrchestrators
    }

    /// What a commit of results for `instances` distinct instances may lease to `owner`, or `nil` for
    /// nothing. Claims no more room than there are instances, so the dispatcher keeps the rest for
    /// new instances and other workers' while the commit runs; the caller gives the claim back with
    /// ``accept(_:claimed:)`` or ``release(_:)``.
    func request(instances: Int, owner: String, leaseDuration: Duration) -> OrchestrationLeaseRequest? {
        // A worker without orchestrators leaves them to those that have them, as the dispatcher does.
        guard instances > 0, !queue.isClosed, hasOrchestrators() else { return nil }
        let claimed = slots.claim(upTo: instances)
        return claimed > 0 ? OrchestrationLeaseRequest(owner: owner, maxCount: claimed, leaseDuration: leaseDuration) : nil
    }

    /// Queues the items the commit leased for the dispatcher and gives back the room it left unused.
    /// - Returns: `false` when the dispatcher has stopped (the worker is stopping) and the caller must
    ///   hand the items back.
    func accept(_ items: [OrchestrationWorkItem], claimed lease: OrchestrationLeaseRequest) -> Bool {
        slots.release(lease.maxCount - items.count)
        guard !items.isEmpty else { return true }
        if queue.push(items) { return true }
        slots.release(items.count)
        return false
    }

    /// Gives back the room claimed for a commit that failed.
    func release(_ lease: OrchestrationLeaseRequest) {
        slots.release(lease.maxCount)
    }
}
