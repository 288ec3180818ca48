@_spi(Backend) import DurableTask
import Foundation
import Synchronization

/// Wakes a client's waits for changes that other processes (or other backends on the same file) commit,
/// so a wait never polls: with N waiters, polling each every 200 ms cost O(N) reads per interval — at
/// 10,000 waiters it took more time than the work itself.
///
/// While anybody waits, every ``interval`` it reads `PRAGMA data_version` on the writer's connection,
/// which changes only when *another* connection committed. Only then does it read a small change marker
/// of every watched instance (one statement per 500) and notify the instances whose marker moved;
/// otherwise it reads the markers of the newly watched instances alone.
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
        waiters.trackNewlyWatched()
        let loop = Task.detached(priority: .utility) {
            var lastVersion: Int64?
            // The marker last seen per watched instance; "" for an instance without a row.
            var known: [String: String] = [:]
            // Newly watched instances whose first read failed, for the next tick.
            var pending: [String] = []
            func read(_ ids: [String]) async -> [String: String]? {
                var read: [String: String] = [:]
                for start in stride(from: 0, to: ids.count, by: 500) {
                    guard let chunk = try? await markers(Array(ids[start..<min(start + 500, ids.count)])) else { return nil }
                    read.merge(chunk) { first, _ in first }
                }
                return read
            }
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.interval)
                let newlyWatched = pending + waiters.takeNewlyWatched()
                pending = []
                guard waiters.hasWaiters else {
                    known.removeAll()
                    continue
                }
                guard let version = try? await dataVersion() else {
                    pending = newlyWatched
                    continue
                }
                if version != lastVersion {
                    // Another connection committed: every watched instance may have changed.
                    let watched = waiters.watchedInstanceIDs()
                    guard let read = await read(watched) else {
                        pending = newlyWatched
                        continue
                    }
                    var next: [String: String] = [:]
                    next.reserveCapacity(watched.count)
                    for id in watched {
                        let marker = read[id] ?? ""
                        if known[id] != marker { waiters.notify(id, mayEnd: Self.mayEnd(marker)) }
                        next[id] = marker
                    }
                    known = next
                    lastVersion = version
                } else if !newlyWatched.isEmpty {
                    // Nothing committed elsewhere: only the new instances need a first marker.
                    let ids = Array(Set(newlyWatched.filter { known[$0] == nil }))
                    guard let read = await read(ids) else {
                        pending = newlyWatched
                        continue
                    }
                    for id in ids {
                        let marker = read[id] ?? ""
                        waiters.notify(id, mayEnd: Self.mayEnd(marker))
                        known[id] = marker
                    }
                    // Instances nobody waits on any more leave the table now and then, so it stays
                    // the size of the waits, not of every instance ever waited on.
                    if known.count > 4_096 {
                        let watched = Set(waiters.watchedInstanceIDs())
                        if known.count > 2 * watched.count { known = known.filter { watched.contains($0.key) } }
                    }
                }
            }
        }
        task.withLock { $0 = loop }
    }

    /// Whether the instance a marker describes may have ended: it is gone (no marker) or its status
    /// (the marker's first word) is terminal. Waits for the end ignore the other changes.
    static func mayEnd(_ marker: String) -> Bool {
        guard let status = marker.split(separator: " ", maxSplits: 1).first else { return true }
        return OrchestrationStatus(rawValue: String(status))?.isTerminal ?? true
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
