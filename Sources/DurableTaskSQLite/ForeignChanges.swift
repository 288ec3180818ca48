import DurableTask
import Foundation
import Synchronization

/// Wakes a client's waits for changes that other processes (or other backends on the same file) commit,
/// so a wait never polls: with N waiters, polling each every 200 ms cost O(N) reads per interval — at
/// 10,000 waiters it took more time than the work itself.
///
/// While anybody waits, every ``interval`` it reads `PRAGMA data_version` on the writer's connection,
/// which changes only when *another* connection committed. Only then does it read a small change marker
/// of every watched instance (one statement per 500) and notify the instances whose marker moved.
///
/// Order matters for not losing a change: the version is read before the markers, so a commit between
/// the two shows in the markers now or in the version next time. An instance seen for the first time is
/// notified once: its waiter read it before the marker was taken, and a change in between would
/// otherwise go unnoticed.
final class ForeignChanges: Sendable {
    /// How often the version is read while somebody waits: the longest a wait on another process's
    /// change takes to wake.
    static let interval = Duration.milliseconds(50)

    private let task = Mutex<Task<Void, Never>?>(nil)

    /// Starts watching.
    /// - Parameters:
    ///   - dataVersion: reads `PRAGMA data_version` on a connection that commits this backend's writes.
    ///   - markers: the change markers of existing instances, in one read transaction.
    init(
        waiters: InstanceWaiters,
        dataVersion: @escaping @Sendable () async throws -> Int64,
        markers: @escaping @Sendable ([String]) async throws -> [String: String]
    ) {
        let loop = Task.detached(priority: .utility) {
            var lastVersion: Int64?
            // The marker last seen per watched instance; "" for an instance without a row.
            var known: [String: String] = [:]
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.interval)
                guard waiters.hasWaiters else {
                    known.removeAll()
                    continue
                }
                guard let version = try? await dataVersion() else { continue }
                let watched = waiters.watchedInstanceIDs()
                let changed = version != lastVersion
                let toRead = changed ? watched : watched.filter { known[$0] == nil }
                guard !toRead.isEmpty else {
                    lastVersion = version
                    continue
                }
                var read: [String: String] = [:]
                var failed = false
                for start in stride(from: 0, to: toRead.count, by: 500) {
                    guard let chunk = try? await markers(Array(toRead[start..<min(start + 500, toRead.count)])) else {
                        failed = true
                        break
                    }
                    read.merge(chunk) { first, _ in first }
                }
                // A failed read (the file is busy, being replaced) is tried again next time.
                if failed { continue }
                lastVersion = version
                var next: [String: String] = [:]
                next.reserveCapacity(watched.count)
                for id in watched {
                    guard toRead.count == watched.count || known[id] == nil else {
                        next[id] = known[id]
                        continue
                    }
                    let marker = read[id] ?? ""
                    if known[id] != marker { waiters.notify(id) }
                    next[id] = marker
                }
                known = next
            }
        }
        task.withLock { $0 = loop }
    }

    /// Stops watching; waits already under way fall back to their safety re-read.
    func stop() {
        task.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    deinit { stop() }
}
