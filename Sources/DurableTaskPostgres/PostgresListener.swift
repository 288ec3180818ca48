import CLibPQ
@_spi(Backend) import DurableTask
import Foundation
import Synchronization

/// The backend's session of its own: it `LISTEN`s on the task hub's channel for other processes'
/// changes, and holds one session advisory lock per lease owner (worker ID) of this backend.
///
/// The lock is how other processes tell a live worker from a dead one: the server releases a
/// session's advisory locks when the session ends — the process died, was killed, or lost its
/// network long enough for TCP keepalives to give up — and any backend that then sees leases of an
/// owner whose lock nobody holds releases them at once (``PostgresStore/releaseDeadOwners(_:now:)``).
/// A live worker, however slow, keeps its lock and its leases. Fencing by lease token stays: a worker
/// cut off from the server that comes back finds its leases gone and its late results rejected.
///
/// Runs on a dedicated thread, blocked in `poll` on the connection's socket and an `eventfd` that
/// ``holdLock(for:)`` writes to when it needs a new lock taken.
final class PostgresListener: Sendable {
    private enum Lock: Equatable {
        case held
        /// Another session holds the owner's lock (the same worker ID in another process): this backend
        /// works without it, its leases then expire instead of moving at once when it dies.
        case heldElsewhere
    }

    private struct State {
        var locks: [String: Lock] = [:]
        var waiters: [(owner: String, continuation: CheckedContinuation<Void, any Error>)] = []
        var stopped = false
        var connected = false
    }

    private let state = Mutex(State())
    private let wakeFD: Int32
    private let schema: PostgresSchema
    private let serverName: String
    private let log: @Sendable (LogLevel, String) -> Void

    /// Starts the thread.
    /// - Parameters:
    ///   - open: opens a connection.
    ///   - onNotification: called on the listener's thread with each payload on the channel, and
    ///     whether this backend's session serves a lease owner (holds or tried to take its lock).
    ///   - onReconnect: called after a reconnection, when notifications may have been missed.
    init(
        schema: PostgresSchema, serverName: String, log: @escaping @Sendable (LogLevel, String) -> Void,
        open: @escaping @Sendable () throws -> PostgresConnection,
        onNotification: @escaping @Sendable (String, _ serves: (Substring) -> Bool) -> Void,
        onReconnect: @escaping @Sendable () -> Void
    ) {
        self.schema = schema
        self.serverName = serverName
        self.log = log
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        let thread = Thread { [self] in
            runLoop(open: open, onNotification: onNotification, onReconnect: onReconnect)
        }
        thread.name = "DurableTask Postgres listener \(schema.name)"
        thread.start()
    }

    deinit {
        if wakeFD >= 0 { Glibc.close(wakeFD) }
    }

    /// Makes sure this backend's session holds `owner`'s lock before it takes a lease for it.
    /// - Throws: `DurableTaskError(.storage)` when the listener cannot reach the server.
    func holdLock(for owner: String) async throws {
        if state.withLock({ $0.connected && $0.locks[owner] != nil }) { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let stopped = state.withLock { state -> Bool in
                if state.stopped { return true }
                state.waiters.append((owner, continuation))
                return false
            }
            if stopped {
                continuation.resume(throwing: DurableTaskError(.storage, "the PostgreSQL backend for \(serverName) is closed"))
            } else {
                wake()
            }
        }
    }

    /// Whether `owner` leases through this backend (its lock is held here, or elsewhere).
    private func serves(_ owner: Substring) -> Bool {
        state.withLock { $0.locks[String(owner)] != nil }
    }

    /// Ends the thread; the session, and with it every owner lock, ends.
    func stop() {
        let waiters = state.withLock { state in
            state.stopped = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume(throwing: DurableTaskError(.storage, "the PostgreSQL backend for \(serverName) is closed")) }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func runLoop(
        open: @Sendable () throws -> PostgresConnection, onNotification: (String, (Substring) -> Bool) -> Void, onReconnect: () -> Void
    ) {
        var connection: PostgresConnection?
        var failures = 0
        var everConnected = false
        while !state.withLock({ $0.stopped }) {
            if connection == nil || connection?.isOpen != true {
                connection?.close()
                connection = nil
                state.withLock { state in
                    state.connected = false
                    state.locks = state.locks.mapValues { _ in .heldElsewhere }
                }
                if failures > 0 { waitForWake(milliseconds: min(2000, 50 << min(failures - 1, 6))) }
                if state.withLock({ $0.stopped }) { break }
                do {
                    let c = try open()
                    try c.execute(schema.listen)
                    // Every owner this backend ever leased for is locked again before a lease is taken.
                    let owners = state.withLock { Array($0.locks.keys) }
                    var locks: [String: Lock] = [:]
                    for owner in owners { locks[owner] = try lock(owner, c) }
                    state.withLock { state in
                        state.locks = locks
                        state.connected = true
                    }
                    connection = c
                    if everConnected {
                        log(.info, "reconnected to \(serverName) (listener)")
                        onReconnect()
                    }
                    everConnected = true
                    failures = 0
                } catch {
                    failures += 1
                    let storage = (error as? PostgresError)?.storageError(server: serverName) ?? error
                    if failures == 1 { log(.warning, "listener: \(storage)") }
                    failWaiters(storage)
                    continue
                }
            }
            guard let c = connection else { continue }
            do {
                try serveWaiters(c)
                var fds = [
                    pollfd(fd: c.socket, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
                ]
                _ = poll(&fds, 2, 1000)
                if fds[1].revents != 0 {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                }
                if fds[0].revents != 0 {
                    for notification in try c.notifications() { onNotification(notification.payload, serves) }
                }
            } catch {
                log(.warning, "listener lost its connection to \(serverName); reconnecting: \(error)")
                connection?.close()
                connection = nil
                failures = 1
            }
        }
        connection?.close()
    }

    /// Sleeps up to `milliseconds`, cut short by a wake-up (a stop).
    private func waitForWake(milliseconds: Int) {
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 1, Int32(milliseconds))
    }

    private func lock(_ owner: String, _ c: PostgresConnection) throws -> Lock {
        let rows = try c.query(schema.lockOwner, [.text(schema.name), .text(owner)])
        if rows.count > 0 && rows.bool(0, 0) { return .held }
        log(
            .warning,
            "worker ID '\(owner)' is in use by another process on \(serverName) (its liveness lock is held elsewhere); "
                + "give each worker process its own ID, or its leases are only taken over when they expire")
        return .heldElsewhere
    }

    private func serveWaiters(_ c: PostgresConnection) throws {
        let waiters = state.withLock { state in
            defer { state.waiters = [] }
            return state.waiters
        }
        guard !waiters.isEmpty else { return }
        do {
            for waiter in waiters where state.withLock({ $0.locks[waiter.owner] == nil }) {
                let lock = try lock(waiter.owner, c)
                state.withLock { $0.locks[waiter.owner] = lock }
            }
        } catch {
            state.withLock { $0.waiters.append(contentsOf: waiters) }
            throw error
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    private func failWaiters(_ error: any Error) {
        let waiters = state.withLock { state in
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume(throwing: error) }
    }
}
