/// Where leased activities enter a worker's pipeline — from the fetch loop, or straight from the
/// commit of the episode that scheduled them (eager dispatch, see
/// ``Backend/completeOrchestrationWorkItem(_:result:leasing:)``).
///
/// Eager dispatch spares a scheduling episode a lease transaction and a wake-up of the fetch loop:
/// for a one-activity orchestration, one transaction in seven, and the latency of that hop. It is for
/// a worker with nothing else leased (the latency of a lone request); only activities this worker has
/// registered are taken (a worker that only runs orchestrations leaves them to the ones that run
/// activities).
final class ActivityIntake: Sendable {
    let queue: WorkQueue<ActivityWorkItem>
    let running: RunningActivities
    /// The most activities leased and not finished (queued or running); the fetch loop's window.
    let limit: Int
    private let isRegistered: @Sendable (String) -> Bool

    init(queue: WorkQueue<ActivityWorkItem>, running: RunningActivities, limit: Int, isRegistered: @escaping @Sendable (String) -> Bool) {
        self.queue = queue
        self.running = running
        self.limit = limit
        self.isRegistered = isRegistered
    }

    /// Room in the window now.
    var free: Int { limit - running.count }

    /// What the commit of `result` may lease to `owner`, or `nil` for nothing. Checked against the
    /// window without reserving it: the fetch loop (or another episode) leasing at the same moment may
    /// overshoot it by one episode's activities, which only lengthens the queue.
    /// - Parameter episodesInFlight: the worker's episodes in flight, this one included.
    func request(
        for result: OrchestrationWorkItemResult, episodesInFlight: Int, owner: String, leaseDuration: Duration
    ) -> ActivityLeaseRequest? {
        // Only for an episode alone in the worker with nothing else leased: under load the fetch
        // loop's batch leases, and the grouped results of runners that never run dry, cost less than
        // a lease in every episode (7 % more CPU for 10,000 one-activity orchestrations at once on
        // SQLite when every episode leased).
        guard !result.activities.isEmpty, episodesInFlight <= 1, running.count == 0, !queue.isClosed else { return nil }
        let room = free
        var taskIDs: [Int] = []
        for activity in result.activities where isRegistered(activity.name) {
            taskIDs.append(activity.taskID)
            if taskIDs.count == room { break }
        }
        return taskIDs.isEmpty ? nil : ActivityLeaseRequest(owner: owner, taskIDs: taskIDs, leaseDuration: leaseDuration)
    }

    /// Queues freshly leased items for the runners.
    /// - Returns: `false` when the pipeline has shut down (the worker is stopping) and the caller must
    ///   hand the items back.
    func accept(_ items: [ActivityWorkItem]) -> Bool {
        guard !items.isEmpty else { return true }
        running.leased(items)
        if queue.push(items) { return true }
        running.finished(items)
        return false
    }
}
