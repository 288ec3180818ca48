import Synchronization

/// The executor an orchestrator's task runs on: `enqueue` only buffers jobs, and the engine runs them
/// inline with ``drain()`` on its own thread. When the buffer is empty the orchestrator is quiescent —
/// suspended on durable futures or finished — so every replay runs the same steps in the same order.
final class InlineExecutor: TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
    }

    /// Runs buffered jobs, and the jobs they enqueue, until none is left.
    /// - Returns: how many jobs ran.
    @discardableResult
    func drain() -> Int {
        var ran = 0
        while true {
            let batch = jobs.withLock { jobs -> [UnownedJob] in
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            if batch.isEmpty { return ran }
            for job in batch {
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
            ran += batch.count
        }
    }
}
