import Dispatch
import DurableTask
import Foundation
import Synchronization

/// A dedicated thread that owns one ``Connection`` and runs jobs on it one at a time.
///
/// libsqlite3 calls block (disk I/O, fsync, busy waits), so they must not run on Swift's cooperative
/// thread pool, where a blocked thread starves every other task. Async callers enqueue a job and
/// suspend on a continuation until the thread has run it.
///
/// Write transactions queued together run as one transaction (group commit): while one commit waits
/// for the disk, the writes that arrive queue up, and the next transaction holds all of them, one
/// commit — one fsync with `synchronous=FULL` — for the lot. Each write runs in a savepoint of its
/// own, so a write that fails (a lost lease, an instance that already exists) is undone alone and gets
/// its own error while the others commit; results are handed back only once the transaction committed.
/// An idle thread starts a write at once, so batching adds no latency.
final class DatabaseThread: Sendable {
    typealias Job = @Sendable (Connection) -> Void

    /// A write transaction that may share its transaction with the writes queued beside it.
    struct Write: Sendable {
        /// Runs on the thread before the shared transaction begins, outside it; when it throws, the
        /// write fails alone.
        var prepare: (@Sendable (Connection) throws -> Void)?
        /// Runs inside the transaction and returns what hands the result over once the transaction
        /// ended: with `nil` when it committed, with the error that undid it otherwise.
        var body: @Sendable (Connection) throws -> @Sendable ((any Error)?) -> Void
        /// Hands over the write's own error (its changes were undone).
        var fail: @Sendable (any Error) -> Void
        /// Whether the write must survive a power failure once it returns; see ``setRelaxedSynchronous(restoring:)``.
        var durable: Bool
    }

    private enum Queued {
        case job(Job)
        case write(Write)
    }

    private struct State {
        var jobs: [Queued] = []
        var head = 0
        var stopped = false
    }

    /// The most writes one transaction holds, so a long queue still commits in steps.
    static let maxWritesPerTransaction = 256

    private let state = Mutex(State())
    /// Runs before each write transaction; see ``setBatchCheck(_:)``.
    ///
    /// Boxed: a `Mutex` whose value is a function type reabstracts the closure through the `inout`
    /// of every `withLock`, wrapping it in two more thunks each time — the check's call depth grew with
    /// every transaction, and with it the cost of each (a third of the CPU after 20,000 commits).
    private let batchCheck = Mutex<BatchCheck?>(nil)

    /// The connection's `synchronous` setting to restore after a transaction of writes that need not
    /// be durable; `nil` when such transactions run like the others. See ``setRelaxedSynchronous(restoring:)``.
    private let relaxedRestore = Mutex<String?>(nil)
    /// Write transactions committed waiting for the disk, and without waiting; for tests that check
    /// which steps a configuration syncs.
    private let counts = TransactionCounts()

    private final class TransactionCounts: Sendable {
        let synced = Atomic<Int>(0)
        let relaxed = Atomic<Int>(0)
    }

    private final class BatchCheck: Sendable {
        let run: @Sendable () throws -> Void
        init(_ run: @escaping @Sendable () throws -> Void) { self.run = run }
    }
    /// Counts queued jobs (plus the stop request), so the thread sleeps while the queue is empty.
    private let available = DispatchSemaphore(value: 0)
    /// A name for the thread, for debuggers.
    let name: String

    /// Starts the thread and opens its connection on it.
    /// - Parameter open: opens and configures the connection; runs on the new thread. The thread
    ///   stops and `init` rethrows when it fails.
    init(name: String, open: @escaping @Sendable () throws -> Connection) throws {
        self.name = name
        let opened = DispatchSemaphore(value: 0)
        let openError = ResultBox<Void>()
        // The thread keeps `self` alive until `stop()`; the backend calls it from its deinit.
        let thread = Thread { [self] in
            let connection: Connection
            do {
                connection = try open()
            } catch {
                openError.set(.failure(error))
                opened.signal()
                return
            }
            opened.signal()
            runLoop(connection: connection)
            connection.close()
        }
        thread.name = name
        thread.start()
        // Opening is fast and the public initializer is synchronous, so waiting here is acceptable.
        opened.wait()
        if case let .failure(error) = openError.get() {
            stop()
            throw error
        }
    }

    private func runLoop(connection: Connection) {
        while true {
            available.wait()
            let taken: (first: Queued, writes: [Write])? = state.withLock { state in
                guard state.head < state.jobs.count else { return nil }
                let first = state.jobs[state.head]
                state.head += 1
                var writes: [Write] = []
                if case .write(let write) = first {
                    // The writes queued right behind it join its transaction.
                    writes.append(write)
                    while writes.count < Self.maxWritesPerTransaction, state.head < state.jobs.count,
                        case .write(let next) = state.jobs[state.head]
                    {
                        writes.append(next)
                        state.head += 1
                    }
                }
                if state.head == state.jobs.count {
                    state.jobs.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return (first, writes)
            }
            guard let taken else {
                // Only the stop request signals without a job.
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            switch taken.first {
            case .job(let job):
                job(connection)
            case .write:
                // One wake-up was counted per queued write; take those of the writes that joined.
                for _ in 1..<taken.writes.count { available.wait() }
                Self.run(
                    taken.writes, on: connection, check: batchCheck.withLock { $0 }?.run, relaxedRestore: relaxedRestore.withLock { $0 },
                    counts: counts)
            }
        }
    }

    /// Runs writes in one transaction, each in its own savepoint, then hands every result over.
    private static func run(
        _ writes: [Write], on c: Connection, check: (@Sendable () throws -> Void)?, relaxedRestore: String?, counts: TransactionCounts
    ) {
        if let check {
            do {
                try check()
            } catch {
                for write in writes { write.fail(error) }
                return
            }
        }
        var ready: [Write] = []
        ready.reserveCapacity(writes.count)
        for write in writes {
            do {
                try write.prepare?(c)
                ready.append(write)
            } catch {
                write.fail(error)
            }
        }
        // A batch of leases only: its commit writes the WAL without waiting for the disk. A process
        // crash keeps what was written (the operating system has it); a power failure may lose the
        // leases, which only means their items are delivered again. Any durable write in the batch
        // makes the commit wait, for the leases too.
        guard !ready.isEmpty else { return }
        // Counted before the commit hands the results over, so a caller that returned sees its count.
        if let relaxedRestore, !ready.contains(where: \.durable) {
            counts.relaxed.add(1, ordering: .relaxed)
            try? c.execute("PRAGMA synchronous = NORMAL")
            defer { try? c.execute("PRAGMA synchronous = \(relaxedRestore)") }
            commit(ready, on: c)
        } else {
            counts.synced.add(1, ordering: .relaxed)
            commit(ready, on: c)
        }
    }

    private static func commit(_ ready: [Write], on c: Connection) {
        if ready.count == 1 {
            // Alone: a plain transaction, without the savepoint.
            let write = ready[0]
            do {
                let finish = try c.transaction { try write.body(c) }
                finish(nil)
            } catch {
                write.fail(error)
            }
            return
        }
        guard !ready.isEmpty else { return }
        // Per write, either its hand-over (it ran) or its own error (undone alone).
        var outcomes: [Result<@Sendable ((any Error)?) -> Void, any Error>] = []
        outcomes.reserveCapacity(ready.count)
        do {
            try c.transaction {
                for write in ready {
                    do {
                        outcomes.append(.success(try c.savepoint { try write.body(c) }))
                    } catch {
                        // libsqlite3 rolled the whole transaction back (SQLITE_FULL, an I/O error):
                        // nothing of the batch is written, so every write gets this error.
                        guard c.isInTransaction else { throw error }
                        outcomes.append(.failure(error))
                    }
                }
            }
        } catch {
            for (index, write) in ready.enumerated() {
                if index < outcomes.count, case .failure(let own) = outcomes[index] {
                    write.fail(own)
                } else {
                    write.fail(error)
                }
            }
            return
        }
        for (write, outcome) in zip(ready, outcomes) {
            switch outcome {
            case .success(let finish): finish(nil)
            case .failure(let error): write.fail(error)
            }
        }
    }

    /// Queues a job; jobs run in order.
    func enqueue(_ job: @escaping Job) {
        let accepted = state.withLock { state -> Bool in
            if state.stopped { return false }
            state.jobs.append(.job(job))
            return true
        }
        if accepted { available.signal() }
    }

    /// Write transactions committed so far at the connection's own `synchronous` setting (`synced`:
    /// with `FULL`, they waited for the disk) and at `NORMAL` for writes that need not be durable; for
    /// tests.
    var transactionCounts: (synced: Int, relaxed: Int) {
        (counts.synced.load(ordering: .relaxed), counts.relaxed.load(ordering: .relaxed))
    }

    /// How many jobs and writes wait in the queue (not counting the one running); for tests.
    var queuedCount: Int { state.withLock { $0.jobs.count - $0.head } }

    /// Lets transactions that hold only non-durable writes commit with `synchronous = NORMAL`, then
    /// restores `setting` (the connection's configured value, `FULL`).
    func setRelaxedSynchronous(restoring setting: String) {
        relaxedRestore.withLock { $0 = setting }
    }

    /// Sets a check that runs before every write transaction (and fails all its writes when it throws).
    func setBatchCheck(_ check: @escaping @Sendable () throws -> Void) {
        let boxed = BatchCheck(check)
        batchCheck.withLock { $0 = boxed }
    }

    /// Runs `body` in a write transaction on the thread, possibly shared with other queued writes
    /// (see the type's documentation), and returns its result once the transaction committed.
    /// - Parameter prepare: runs before the shared transaction, outside it.
    /// - Parameter durable: `false` for a write that may be lost to a power failure (not to a crash of
    ///   the process) without harm: a lease.
    func write<T: Sendable>(
        prepare: (@Sendable (Connection) throws -> Void)? = nil, durable: Bool = true, _ body: @escaping @Sendable (Connection) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let write = Write(
                prepare: prepare,
                body: { connection in
                    let value = try body(connection)
                    return { error in
                        if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: value) }
                    }
                },
                fail: { error in continuation.resume(throwing: error) }, durable: durable)
            let accepted = state.withLock { state -> Bool in
                if state.stopped { return false }
                state.jobs.append(.write(write))
                return true
            }
            if accepted {
                available.signal()
            } else {
                continuation.resume(throwing: DurableTaskError(.storage, "the SQLite connection \(name) is closed"))
            }
        }
    }

    /// Runs `body` on the thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                if state.stopped { return false }
                state.jobs.append(.job { connection in continuation.resume(with: Result { try body(connection) }) })
                return true
            }
            if accepted {
                available.signal()
            } else {
                continuation.resume(throwing: DurableTaskError(.storage, "the SQLite connection \(name) is closed"))
            }
        }
    }

    /// Lets the queued jobs finish, then closes the connection and ends the thread.
    func stop() {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        if first {
            // Queued jobs are still run first: the stop wake-up is counted after them.
            available.signal()
        }
    }
}

/// A result handed from the database thread to the caller blocked in `init`.
private final class ResultBox<T: Sendable>: Sendable {
    private let value = Mutex<Result<T, any Error>?>(nil)
    func set(_ result: Result<T, any Error>) { value.withLock { $0 = result } }
    func get() -> Result<T, any Error>? { value.withLock { $0 } }
}
