#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import DurableTask
import Foundation

/// Which file a path names (device and inode), to notice a database file deleted or replaced under a
/// running backend.
///
/// Why: libsqlite3 keeps its descriptors, so after `rm hub.sqlite*` a backend goes on committing into
/// a file that no longer has a name, and after `mv other.sqlite hub.sqlite` it writes the old file
/// while new processes open the new one, with the old one's `-wal` and `-shm`, whose pages then land
/// in the wrong file. Comparing the path's device and inode with the ones seen at open catches both.
struct DatabaseFileIdentity: Sendable, Equatable, CustomStringConvertible {
    var device: UInt64
    var inode: UInt64

    /// The file `path` names now, or `nil` when there is none.
    static func of(path: String) -> DatabaseFileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return DatabaseFileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The text kept in the side file `-dtlock`: "device inode".
    var description: String { "\(device) \(inode)" }

    init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    init?(_ text: String) {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let device = UInt64(fields[0]), let inode = UInt64(fields[1]) else { return nil }
        self.init(device: device, inode: inode)
    }
}

/// What the side file `-dtlock` records: the database file its processes opened, and the `-wal` file
/// they shared, so that a new opener can tell "the database was replaced under its `-wal`" (the same
/// `-wal`, another database) from "the whole set was copied or restored" (a different `-wal` too).
struct SharedFilesRecord: Sendable, Equatable, CustomStringConvertible {
    var database: DatabaseFileIdentity
    /// `nil` when there was no `-wal` file.
    var wal: DatabaseFileIdentity?

    /// "device inode walDevice walInode", with "- -" for no `-wal`.
    var description: String {
        "\(database) " + (wal.map(\.description) ?? "- -")
    }

    init(database: DatabaseFileIdentity, wal: DatabaseFileIdentity?) {
        self.database = database
        self.wal = wal
    }

    init?(_ text: String) {
        let fields = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 4, let database = DatabaseFileIdentity("\(fields[0]) \(fields[1])") else { return nil }
        self.database = database
        wal = DatabaseFileIdentity("\(fields[2]) \(fields[3])")
    }
}

/// The check a backend runs before every transaction: is the path still the file it opened?
///
/// One `stat` call (about a microsecond) per transaction, small beside a commit, so no transaction
/// ever runs on a file that was replaced before it began.
struct DatabaseFileCheck: Sendable {
    let path: String
    let opened: DatabaseFileIdentity

    /// - Throws: `DurableTaskError(.storage)` when the path names another file, or none.
    func verify() throws {
        let now = DatabaseFileIdentity.of(path: path)
        guard now != opened else { return }
        throw Self.replacedError(path: path, deleted: now == nil)
    }

    /// Storage, not corrupt data: nothing is wrong with the data or with the item being processed, so
    /// it must not count toward parking anything as poisoned; and it passes if the file is put back.
    static func replacedError(path: String, deleted: Bool) -> DurableTaskError {
        let what = deleted ? "was deleted (no file has that name now)" : "was replaced (the path names another file now)"
        return DurableTaskError(
            .storage,
            "the database file \(path) \(what) while this process had it open; nothing was written, because "
                + "writes would go to a file that no other process sees. Stop this process and start it again to use "
                + "the file now at that path, or put the original file back")
    }
}
