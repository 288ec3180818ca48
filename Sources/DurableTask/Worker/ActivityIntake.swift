import Synchronization

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

    /// Window room that episodes being committed have claimed for the activities they lease.
    private let reserved = Atomic<Int>(0)

    /// Room in the window now.
    var free: Int { limit - running.count - reserved.load(ordering: .acquiring) }

    /// What the commit of `result` may lease to `owner`, or `nil` for nothing. The room is claimed
    /// here, so the many episodes in flight together never lease more than the window between them
    /// (the fetch loop, leasing at the same moment, may overshoot it by one batch); the caller gives
    /// the claim back with ``release(_:)`` once the leased items are accepted or the commit failed.
    ///
    /// Every episode leases, not only one alone in the worker: that was once 7 % more CPU for 10,000
    /// one-activity orchestrations on SQLite (runners that run dry group fewer results a commit);
    /// measured again after the history took a row per episode, it is 1.00× there, and the rounds
    /// shape 0.92× the time on SQLite, one and four Postgres worker processes 0.93× and 0.90×.
    func request(for result: OrchestrationWorkItemResult, owner: String, leaseDuration: Duration) -> ActivityLeaseRequest? {
        guard !result.activities.isEmpty, !queue.isClosed else { return nil }
        // Claims room for all of them, then gives back what unregistered names leave unused.
        let wanted = result.activities.count
        var claimed = reserved.load(ordering: .acquiring)
        var room: Int
        repeat {
            room = min(wanted, limit - running.count - claimed)
            guard room > 0 else { return nil }
            let (exchanged, current) = reserved.compareExchange(expected: claimed, desired: claimed + room, ordering: .acquiringAndReleasing)
            if exchanged { break }
            claimed = current
        } while true
        var taskIDs: [Int] = []
        taskIDs.reserveCapacity(room)
        for activity in result.activities where isRegistered(activity.name) {
            taskIDs.append(activity.taskID)
            if taskIDs.count == room { break }
        }
        if taskIDs.count < room { reserved.subtract(room - taskIDs.count, ordering: .acquiringAndReleasing) }
        return taskIDs.isEmpty ? nil : ActivityLeaseRequest(owner: owner, taskIDs: taskIDs, leaseDuration: leaseDuration)
    }

    /// Gives back the room ``request(for:owner:leaseDuration:)`` claimed for `lease`.
    func release(_ lease: ActivityLeaseRequest) {
        reserved.subtract(lease.taskIDs.count, ordering: .acquiringAndReleasing)
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
