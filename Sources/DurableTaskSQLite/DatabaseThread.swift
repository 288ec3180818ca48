import Dispatch
import DurableTask
import Foundation
import Synchronization

/// A dedicated thread that owns one ``Connection`` and runs jobs on it one at a time.
///
/// libsqlite3 calls block (disk I/O, fsync, busy waits), so they must not run on Swift's cooperative
/// thread pool, where a blocked thread starves every other task. Async callers enqueue a job and
/// suspend on a continuation until the thread has run it.
final class DatabaseThread: Sendable {
    typealias Job = @Sendable (Connection) -> Void

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var stopped = false
    }

    private let state = Mutex(State())
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
            let job: Job? = state.withLock { state in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head == state.jobs.count {
                    state.jobs.removeAll(keepingCapacity: true)
                    state.head = 0
                }
                return job
            }
            guard let job else {
                // Only the stop request signals without a job.
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            job(connection)
        }
    }

    /// Queues a job; jobs run in order.
    func enqueue(_ job: @escaping Job) {
        let accepted = state.withLock { state -> Bool in
            if state.stopped { return false }
            state.jobs.append(job)
            return true
        }
        if accepted { available.signal() }
    }

    /// Runs `body` on the thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                if state.stopped { return false }
                state.jobs.append { connection in continuation.resume(with: Result { try body(connection) }) }
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
