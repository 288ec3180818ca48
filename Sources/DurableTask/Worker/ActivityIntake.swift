/// Where leased activities enter a worker's pipeline — from the fetch loop, or straight from the
/// commit of the episode that scheduled them (eager dispatch, see
/// ``Backend/completeOrchestrationWorkItem(_:result:leasing:)``).
///
/// Eager dispatch spares a scheduling episode a lease transaction and a wake-up of the fetch loop:
/// for a one-activity orchestration, one transaction in seven, and the latency of that hop. Under
/// load it also keeps an orchestration's activities on the worker that runs the orchestration, so
/// with several worker processes their results come back to the process that holds the instance in
/// its cache. Only activities this worker has registered are taken (a worker that only runs
/// orchestrations leaves them to the ones that run activities), and only as many as its window has
/// room for; the rest wait for any worker's fetch loop.
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
    ///
    /// Every episode leases, not only one alone in the worker: that was once 7 % more CPU for 10,000
    /// one-activity orchestrations on SQLite (runners that run dry group fewer results a commit);
    /// measured again after the history took a row per episode, it is 1.00× there, and the rounds
    /// shape 0.91× the time on SQLite, 0.90× on Postgres, four Postgres worker processes 0.88×.
    func request(for result: OrchestrationWorkItemResult, owner: String, leaseDuration: Duration) -> ActivityLeaseRequest? {
        guard !result.activities.isEmpty, !queue.isClosed else { return nil }
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
