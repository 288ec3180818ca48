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

/// Tells live lease owners from dead ones on one machine, so a crashed worker's leases are taken over
/// at once instead of when they run out.
///
/// Why: a lease must outlast the slowest step of a live worker (tens of seconds by default), so
/// after a crash the work waits that long for nobody. A process that dies loses its `flock`s at once, which is a
/// death notice the OS gives for free.
///
/// How: before the first lease for an owner (the worker ID), the backend creates and holds
/// `flock(LOCK_EX)` on a file for that owner in the directory `<database>-dtowners/`; the file holds
/// the owner's name. Every so often a backend tries `LOCK_EX | LOCK_NB` on the other files there: a
/// lock it gets belongs to an owner that is gone (the OS released it with the process), so that
/// owner's leases are released in the database and its file is deleted. A worker that is alive —
/// slow, or paused by SIGSTOP — keeps its lock and its leases; leases still expire as before, and
/// lock tokens still fence late completions, so this only makes recovery faster.
///
/// `flock` locks belong to an open file description, so another backend of the same process, which
/// opens the file anew, conflicts like another process would: a live owner is never taken for dead.
/// Backends of one process holding the same owner share one descriptor (a registry keyed by the
/// file's device and inode), so the owner stays held until the last of them closes.
final class OwnerLiveness: Sendable {
    /// The directory holding one file per live owner.
    let directory: String

    private struct State {
        /// The owners this backend holds (a reference each on the process-wide file).
        var held: [String: OwnerLockFile] = [:]
        /// Owners whose file another live process holds (the same worker ID in two processes).
        var heldElsewhere: [String: ContinuousClock.Instant] = [:]
        var lastSweep: ContinuousClock.Instant?
        /// Set after the first file-system failure, which is logged once; leases then just expire.
        var disabled = false
        var closed = false
    }

    private let state = Mutex(State())
    private let log: @Sendable (LogLevel, String) -> Void
    /// The least time between two sweeps of the directory.
    let sweepInterval: Duration

    /// The directory of owner files of a database file.
    static func directory(forDatabase databasePath: String) -> String {
        databasePath + "-dtowners"
    }

    init(databasePath: String, sweepInterval: Duration = .milliseconds(250), log: @escaping @Sendable (LogLevel, String) -> Void) {
        directory = Self.directory(forDatabase: databasePath)
        self.sweepInterval = sweepInterval
        self.log = log
    }

    /// What ``prepareLease(owner:)`` found out.
    struct Preparation {
        /// Owners whose leases are to be released now: the dead owners found, and an earlier process
        /// with this backend's owner ID that died (its file was left behind).
        var ownersToRelease: [String] = []
        /// The dead owners' files, locked by this call: after releasing the leases call
        /// ``DeadOwner/remove()`` on each, or ``DeadOwner/keep()`` when the release failed.
        var deadFiles: [DeadOwner] = []

        var isEmpty: Bool { ownersToRelease.isEmpty && deadFiles.isEmpty }
    }

    /// Holds `owner`'s lock if this backend does not yet, and sweeps the directory for dead owners if
    /// a sweep is due (always right after taking a new owner's lock, so a restarted worker takes over
    /// its predecessors' work at its first lease). Runs on the writer thread: it makes system calls.
    func prepareLease(owner: String) -> Preparation {
        var preparation = Preparation()
        var forceSweep = false
        if !owner.isEmpty, needsHolding(owner) {
            switch hold(owner) {
            case .notHeld: break
            case .held: forceSweep = true
            case .heldAfterDeadPredecessor:
                forceSweep = true
                preparation.ownersToRelease.append(owner)
            }
        }
        guard claimSweep(force: forceSweep) else { return preparation }
        for file in sweep() {
            if let owner = file.owner { preparation.ownersToRelease.append(owner) }
            preparation.deadFiles.append(file)
        }
        return preparation
    }

    /// Whether a sweep is due now (and if so, counts it as started).
    private func claimSweep(force: Bool) -> Bool {
        state.withLock { state in
            guard !state.disabled, !state.closed else { return false }
            let now = ContinuousClock.now
            if !force, let last = state.lastSweep, now - last < sweepInterval { return false }
            state.lastSweep = now
            return true
        }
    }

    private func needsHolding(_ owner: String) -> Bool {
        state.withLock { state in
            guard !state.disabled, !state.closed, state.held[owner] == nil else { return false }
            // Another process holds this owner ID: try again now and then, not on every lease (each
            // try waits up to 200 ms on the writer thread).
            if let since = state.heldElsewhere[owner], ContinuousClock.now - since < .seconds(10) { return false }
            return true
        }
    }

    private enum HoldResult {
        case notHeld
        case held
        /// Held, from a file an earlier process with the same owner ID left when it died.
        case heldAfterDeadPredecessor
    }

    /// Takes `owner`'s lock.
    private func hold(_ owner: String) -> HoldResult {
        do {
            try createDirectory()
            switch try OwnerLockFile.acquire(path: filePath(owner), owner: owner) {
            case let .held(file, predecessorDied):
                let extra = state.withLock { state -> OwnerLockFile? in
                    state.heldElsewhere[owner] = nil
                    // Closed meanwhile: give the reference back at once.
                    if state.closed || state.held[owner] != nil { return file }
                    state.held[owner] = file
                    return nil
                }
                if let extra {
                    extra.release()
                    return .notHeld
                }
                return predecessorDied ? .heldAfterDeadPredecessor : .held
            case .heldElsewhere:
                let first = state.withLock { state -> Bool in
                    defer { state.heldElsewhere[owner] = ContinuousClock.now }
                    return state.heldElsewhere[owner] == nil
                }
                if first {
                    log(
                        .warning,
                        "another live process leases as '\(owner)' on this database: worker IDs must be unique "
                            + "per process; until it exits, a crash of this process is noticed only when its leases run out")
                }
                return .notHeld
            }
        } catch {
            disable(error)
            return .notHeld
        }
    }

    private func disable(_ error: any Error) {
        let first = state.withLock { state -> Bool in
            defer { state.disabled = true }
            return !state.disabled
        }
        if first {
            log(
                .warning,
                "cannot use \(directory) to tell live workers from crashed ones (\(error)); "
                    + "the leases of a crashed worker are taken over when they run out")
        }
    }

    private func createDirectory() throws {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw DurableTaskError(.storage, "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
    }

    /// The file of an owner: its name made safe for a file name, shortened, and a hash of the whole
    /// name so that two owners never share a file by accident.
    func filePath(_ owner: String) -> String {
        directory + "/" + Self.fileName(owner)
    }

    static func fileName(_ owner: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a: stable across processes and runs, unlike Hasher.
        for byte in owner.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        let safe = String(
            owner.unicodeScalars.prefix(48).map { scalar -> Character in
                scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "-_.".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            })
        let hex = String(hash, radix: 16)
        return "owner-" + safe + "-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Tries every owner file not held by this process; returns those whose owner is gone, locked.
    private func sweep() -> [DeadOwner] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var dead: [DeadOwner] = []
        for name in names where name.hasPrefix("owner-") {
            if let found = DeadOwner.lockIfGone(path: directory + "/" + name) { dead.append(found) }
        }
        return dead
    }

    /// Gives up this backend's owner locks (the last backend of the process deletes the files). Later
    /// calls hold and sweep nothing.
    func close() {
        let files = state.withLock { state -> [OwnerLockFile] in
            state.closed = true
            defer { state.held = [:] }
            return Array(state.held.values)
        }
        for file in files { file.release() }
    }
}

/// The file of a dead owner, locked by the sweep that found it.
struct DeadOwner: Sendable {
    let path: String
    /// The owner named in the file; `nil` when it died before writing it (so it leased nothing).
    let owner: String?
    private let descriptor: Int32

    /// Opens and tries to lock the file at `path`: a lock it gets means the owner is gone.
    static func lockIfGone(path: String) -> DeadOwner? {
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0, OwnerLockFile.pathNames(descriptor, path) else {
            // Held (a live owner), or deleted or replaced since it was listed (its owner closed cleanly).
            close(descriptor)
            return nil
        }
        return DeadOwner(path: path, owner: OwnerLockFile.readOwner(descriptor), descriptor: descriptor)
    }

    private init(path: String, owner: String?, descriptor: Int32) {
        self.path = path
        self.owner = owner
        self.descriptor = descriptor
    }

    /// Deletes the file after the owner's leases were released, then unlocks it. Call once.
    func remove() {
        // Deleted while locked: an opener that already has it open finds it gone from the path and
        // leaves it alone (see `OwnerLockFile.pathNames`).
        if OwnerLockFile.pathNames(descriptor, path) { unlink(path) }
        close(descriptor)
    }

    /// Unlocks the file without deleting it (the release failed; the next sweep tries again). Call once.
    func keep() {
        close(descriptor)
    }
}

/// One process's lock on one owner file, shared by the process's backends that lease as that owner.
final class OwnerLockFile: Sendable {
    let path: String
    private let id: FileID
    private let state: Mutex<(descriptor: Int32, references: Int)>

    private struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private static let registry = Mutex<[FileID: OwnerLockFile]>([:])

    private init(path: String, id: FileID, descriptor: Int32) {
        self.path = path
        self.id = id
        state = Mutex((descriptor, 1))
    }

    enum Acquisition {
        /// Locked by this process; `predecessorDied` when the file was there already, left by an
        /// earlier process with the same owner ID that died.
        case held(OwnerLockFile, predecessorDied: Bool)
        /// A live process other than this one holds the owner's file.
        case heldElsewhere
    }

    private enum Attempt {
        case held(OwnerLockFile, predecessorDied: Bool)
        /// Locked by someone else (perhaps a sweep, for a moment), or deleted under us: try again.
        case retry
    }

    /// Creates (or opens) and locks the owner's file, or joins this process's lock on it.
    ///
    /// A sweep holds a dead owner's file for the moment of releasing its leases, so a worker restarted
    /// with the same ID may find it locked briefly: it tries for about 200 ms before concluding that
    /// another live process uses the ID.
    /// - Throws: `DurableTaskError(.storage)` when the file cannot be created.
    static func acquire(path: String, owner: String) throws -> Acquisition {
        for attempt in 0..<20 {
            if attempt > 0 { usleep(10_000) }
            var created = true
            var descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor < 0 && errno == EEXIST {
                created = false
                descriptor = open(path, O_RDWR | O_CLOEXEC)
            }
            guard descriptor >= 0 else {
                if errno == ENOENT { continue }  // deleted between the two opens
                throw DurableTaskError(.storage, "cannot create \(path): \(String(cString: strerror(errno)))")
            }
            var info = stat()
            guard fstat(descriptor, &info) == 0 else {
                close(descriptor)
                continue
            }
            let id = FileID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            let result = registry.withLock { registry -> Attempt in
                if let existing = registry[id], existing.retain() {
                    close(descriptor)
                    return .held(existing, predecessorDied: false)
                }
                // A sweep may have deleted the file between our open and our lock (its owner, an
                // earlier process with this ID, was dead): only the file the path names counts.
                guard flock(descriptor, LOCK_EX | LOCK_NB) == 0, pathNames(descriptor, path) else {
                    close(descriptor)
                    return .retry
                }
                writeOwner(descriptor, owner)
                let file = OwnerLockFile(path: path, id: id, descriptor: descriptor)
                registry[id] = file
                return .held(file, predecessorDied: !created)
            }
            if case let .held(file, predecessorDied) = result { return .held(file, predecessorDied: predecessorDied) }
        }
        return .heldElsewhere
    }

    /// Adds a reference unless the last one is being released.
    private func retain() -> Bool {
        state.withLock { state in
            guard state.descriptor >= 0 else { return false }
            state.references += 1
            return true
        }
    }

    /// Drops a reference; the last one deletes the file and closes it, which releases the lock.
    func release() {
        Self.registry.withLock { registry in
            let descriptor: Int32? = state.withLock { state in
                state.references -= 1
                guard state.references == 0, state.descriptor >= 0 else { return nil }
                defer { state.descriptor = -1 }
                return state.descriptor
            }
            guard let descriptor else { return }
            registry[id] = nil
            // Deleted while still locked, so no sweep takes this clean exit for a crash.
            if Self.pathNames(descriptor, path) { unlink(path) }
            close(descriptor)
        }
    }

    /// Whether `path` still names the file open as `descriptor`.
    static func pathNames(_ descriptor: Int32, _ path: String) -> Bool {
        var open = stat()
        var named = stat()
        guard fstat(descriptor, &open) == 0, stat(path, &named) == 0 else { return false }
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    private static func writeOwner(_ descriptor: Int32, _ owner: String) {
        let bytes = Array(owner.utf8)
        _ = ftruncate(descriptor, 0)
        _ = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// The owner named in a file, or `nil` when it is empty (its owner died before writing it).
    static func readOwner(_ descriptor: Int32) -> String? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 16 {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(bytes.count)) }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
