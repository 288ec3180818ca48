import Dispatch
import DurableTask
import Foundation
import Synchronization

/// A small pool of dedicated threads, each owning one ``PostgresConnection``, running jobs from one
/// shared queue.
///
/// libpq calls block (network round trips, the server's commit), so they must not run on Swift's
/// cooperative thread pool, where a blocked thread starves every other task. Async callers enqueue a
/// job and suspend on a continuation until a connection thread has run it.
///
/// A thread whose connection broke reconnects before its next job, waiting longer after each failed
/// attempt (50 ms doubling up to 2 s); a job that failed because the connection was lost before it
/// committed is run again on the new connection until ``reconnectTimeout`` has passed.
final class PostgresThreadPool: Sendable {
    typealias Job = @Sendable (PostgresSession) -> Void

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var stopped = false
    }

    private let state = Mutex(State())
    /// Counts queued jobs (plus one per thread at stop), so idle threads sleep.
    private let available = DispatchSemaphore(value: 0)
    private let threadCount: Int
    /// How long a job keeps retrying through reconnects before it fails with `.storage`.
    let reconnectTimeout: Duration
    /// Names the server in messages.
    let serverName: String

    /// Starts `count` threads; each connects with `open` when it first needs a connection.
    init(name: String, count: Int, serverName: String, reconnectTimeout: Duration, open: @escaping @Sendable () throws -> PostgresConnection) {
        threadCount = max(1, count)
        self.reconnectTimeout = reconnectTimeout
        self.serverName = serverName
        for index in 0..<threadCount {
            // The thread keeps `self` alive until `stop()`; the backend calls it from its deinit.
            let thread = Thread { [self] in
                // Made on the thread: a session (and its connection) never leaves it.
                let session = PostgresSession(open: open)
                runLoop(session)
                session.close()
            }
            thread.name = "\(name) \(index + 1)"
            thread.start()
        }
    }

    private func runLoop(_ session: PostgresSession) {
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
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            job(session)
        }
    }

    /// Runs `body` on a connection thread and returns its result.
    ///
    /// `body` may run more than once: after a conflict between concurrent transactions (deadlock,
    /// serialization failure, two creators of one row) and after the connection was lost before the
    /// transaction committed. Both roll the transaction back, so running it again is safe.
    /// - Throws: `DurableTaskError(.storage)` for failures of the server or the connection (see
    ///   ``PostgresError/storageError(server:)``), or what `body` throws.
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let reconnectTimeout = self.reconnectTimeout
        let serverName = self.serverName
        return try await withCheckedThrowingContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                if state.stopped { return false }
                state.jobs.append { session in
                    continuation.resume(with: Result { try session.run(body, reconnectTimeout: reconnectTimeout, serverName: serverName) })
                }
                return true
            }
            if accepted {
                available.signal()
            } else {
                continuation.resume(throwing: DurableTaskError(.storage, "the PostgreSQL backend for \(serverName) is closed"))
            }
        }
    }

    /// Lets the queued jobs finish, then closes the connections and ends the threads.
    func stop() {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        if first {
            for _ in 0..<threadCount { available.signal() }
        }
    }
}

/// One connection thread's state: its connection, opened on demand. Used only on that thread.
final class PostgresSession {
    private let open: @Sendable () throws -> PostgresConnection
    private var connection: PostgresConnection?
    /// Failed connection attempts in a row, for the back-off.
    private var failures = 0

    init(open: @escaping @Sendable () throws -> PostgresConnection) {
        self.open = open
    }

    func close() {
        connection?.close()
        connection = nil
    }

    /// The connection, opened (after a back-off when the last attempts failed) if there is none.
    func connected() throws -> PostgresConnection {
        if let connection, connection.isOpen { return connection }
        connection?.close()
        connection = nil
        if failures > 0 {
            let milliseconds = min(2000, 50 << min(failures - 1, 6))
            Thread.sleep(forTimeInterval: Double(milliseconds) / 1000)
        }
        do {
            let opened = try open()
            failures = 0
            connection = opened
            return opened
        } catch {
            failures += 1
            throw error
        }
    }

    func run<T>(_ body: (PostgresConnection) throws -> T, reconnectTimeout: Duration, serverName: String) throws -> T {
        let deadline = ContinuousClock.now + reconnectTimeout
        var conflicts = 0
        while true {
            do {
                return try body(try connected())
            } catch let error as PostgresError {
                if error.isConnectionFailure {
                    let commitInFlight = connection?.commitInFlight ?? false
                    connection?.close()
                    connection = nil
                    // Lost during COMMIT, the transaction may have committed: running it again could do
                    // it twice, so the caller decides (its retries are fenced by leases).
                    if !commitInFlight && ContinuousClock.now < deadline { continue }
                } else if error.isConflict && conflicts < 8 {
                    conflicts += 1
                    continue
                }
                throw error.storageError(server: serverName)
            }
        }
    }
}
