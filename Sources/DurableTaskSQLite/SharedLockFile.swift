#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import DurableTask
import Foundation
import Synchronization

/// Tells whether other processes have the same database file open, through a side file
/// `<database>-dtlock` on which every process using the database holds a shared `flock`.
///
/// Why: libsqlite3 before 3.51.3 can corrupt a WAL database when two connections write and
/// checkpoint at the same moment. One process has one writer connection, so only several processes
/// on one file are at risk, and only then should the user be warned.
///
/// How: each process holds `LOCK_SH` on the side file for as long as it has the database open. A
/// check upgrades that lock to `LOCK_EX | LOCK_NB`; if the upgrade fails, another process holds
/// `LOCK_SH` too. `flock` locks belong to an open file description, so two descriptors of one process
/// conflict like two processes would: every backend of a process on the same file therefore shares one
/// descriptor, found in a process-wide registry keyed by the side file's device and inode.
///
/// The side file is never deleted: another process may hold it, and a process that deleted it would
/// leave the next opener locking a different inode, where nobody could see it. It is empty and costs
/// one directory entry; delete it only together with the database, when no process uses it.
final class SharedLockFile: Sendable {
    /// The side file's path.
    let path: String

    private struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private struct State {
        var descriptor: Int32
        var references: Int
        /// When the last check ran (monotonic), so periodic checks run at most once a second.
        var lastCheck: ContinuousClock.Instant?
        /// Set once the process has warned about this file; no check is needed after that.
        var warned = false
    }

    private let id: FileID
    private let state: Mutex<State>

    /// Every lock file this process holds, shared by all its backends on the same database.
    private static let registry = Mutex<[FileID: SharedLockFile]>([:])

    private init(path: String, id: FileID, descriptor: Int32) {
        self.path = path
        self.id = id
        state = Mutex(State(descriptor: descriptor, references: 1))
    }

    /// The side file's path for a database file.
    static func path(forDatabase databasePath: String) -> String {
        databasePath + "-dtlock"
    }

    /// Opens (creating it if needed) the side file of a database and takes the process's shared lock
    /// on it, or joins the lock this process already holds. Balance with ``release()``.
    /// - Throws: `DurableTaskError(.storage)` when the side file cannot be opened or locked.
    static func acquire(databasePath: String) throws -> SharedLockFile {
        let path = path(forDatabase: databasePath)
        // O_CLOEXEC: a child process (spawned by the application) must not inherit the lock and keep
        // it after this process exits.
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw DurableTaskError(.storage, "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let message = String(cString: strerror(errno))
            close(descriptor)
            throw DurableTaskError(.storage, "cannot inspect the lock file \(path): \(message)")
        }
        let id = FileID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        return try registry.withLock { registry in
            if let existing = registry[id] {
                // Closing this second descriptor does not drop the lock held through the first one:
                // flock locks belong to the open file description, not to the process.
                close(descriptor)
                existing.state.withLock { $0.references += 1 }
                return existing
            }
            // Blocks only while another process runs its check (holds LOCK_EX for two system calls).
            guard lockShared(descriptor) else {
                let message = String(cString: strerror(errno))
                close(descriptor)
                throw DurableTaskError(.storage, "cannot lock \(path): \(message)")
            }
            let lock = SharedLockFile(path: path, id: id, descriptor: descriptor)
            registry[id] = lock
            return lock
        }
    }

    /// Writes which files the database and its `-wal` are (see ``recorded(databasePath:)``). Every
    /// process writes it at open; all of them have the same files open, so they write the same text.
    func record(_ files: SharedFilesRecord) {
        let bytes = Array("\(files)\n".utf8)
        state.withLock { state in
            guard state.descriptor >= 0 else { return }
            _ = bytes.withUnsafeBytes { pwrite(state.descriptor, $0.baseAddress, $0.count, 0) }
            _ = ftruncate(state.descriptor, off_t(bytes.count))
        }
    }

    /// The database and `-wal` files (device and inode) the processes using the side file had open
    /// when the last of them opened it; `nil` when unknown (no side file, or written by an older library).
    ///
    /// The `-wal` and `-shm` files belong to that database file: if the path names another one now,
    /// they must not be applied to it.
    static func recorded(databasePath: String) -> SharedFilesRecord? {
        let descriptor = open(path(forDatabase: databasePath), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return SharedFilesRecord(String(decoding: buffer[0..<count], as: UTF8.self))
    }

    /// Whether any process, this one included, holds the side file (has the database open).
    static func isHeld(databasePath: String) -> Bool {
        let descriptor = open(path(forDatabase: databasePath), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }  // closing releases the probe's lock, if it got one
        return flock(descriptor, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// Drops one reference; the last one closes the descriptor, which releases the process's lock.
    func release() {
        Self.registry.withLock { registry in
            let descriptor: Int32? = state.withLock { state in
                state.references -= 1
                guard state.references == 0, state.descriptor >= 0 else { return nil }
                defer { state.descriptor = -1 }
                return state.descriptor
            }
            if let descriptor {
                registry[id] = nil
                close(descriptor)
            }
        }
    }

    /// Whether a check is due: not yet warned about the file, and no check in the last
    /// `minimumInterval`. Cheap (no system call), so callers may ask on every poll; a `true` answer
    /// counts as the check's start.
    func claimCheck(minimumInterval: Duration = .seconds(1)) -> Bool {
        state.withLock { state in
            guard !state.warned, state.descriptor >= 0 else { return false }
            let now = ContinuousClock.now
            if let last = state.lastCheck, now - last < minimumInterval { return false }
            state.lastCheck = now
            return true
        }
    }

    /// Whether another process holds the lock; `true` at most once per process and file (the file is
    /// then marked as warned). May wait briefly for another process's check, so call it off the
    /// cooperative thread pool.
    func detectOtherProcessOnce() -> Bool {
        state.withLock { state in
            guard !state.warned, state.descriptor >= 0, Self.isShared(state.descriptor) else { return false }
            state.warned = true
            return true
        }
    }

    /// Upgrades to an exclusive lock without waiting: success means no other process holds the file.
    /// Either way the shared lock is held again on return.
    private static func isShared(_ descriptor: Int32) -> Bool {
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
            _ = lockShared(descriptor)
            return false
        }
        let shared = errno == EWOULDBLOCK
        // A failed conversion may have dropped our shared lock (conversion is not atomic); take it back.
        _ = lockShared(descriptor)
        return shared
    }

    private static func lockShared(_ descriptor: Int32) -> Bool {
        while flock(descriptor, LOCK_SH) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }
}
