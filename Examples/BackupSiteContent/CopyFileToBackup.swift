#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import DurableTask
import Foundation
import Synchronization

/// One file to copy.
struct FileCopy: Codable, Sendable {
    /// The path below the source directory, printed by the worker.
    var relativePath: String
    /// The absolute path of the file to copy.
    var source: String
    /// The absolute path of the copy.
    var destination: String
}

/// The activity that copies one file into the backup, the sample's `E2_CopyFileToBlob`, and returns the
/// number of bytes it copied.
///
/// Activities run at least once: a worker killed after a copy but before its result was recorded has
/// the copy done again by the next worker. So the copy is made idempotent: it is written to a temporary
/// name next to the destination, flushed to disk, then renamed over the destination in one step
/// (`rename(2)`). The destination is therefore either absent, the previous version, or a complete copy,
/// never a half-written file, and doing the copy twice leaves the same bytes as doing it once. The
/// temporary name carries the delivery count (`.report.txt.backup-partial-2`), so a worker that only
/// seemed dead never writes into the file of the one that took its work over; a redelivery deletes
/// the partial copies earlier deliveries left behind when they were killed mid-write.
struct CopyFileToBackup: Activity {
    /// Thrown when a file cannot be read or the copy cannot be written.
    struct CopyFailed: Error, CustomStringConvertible {
        /// The file being copied.
        var path: String
        /// What went wrong.
        var reason: String

        var description: String { "cannot back up \(path): \(reason)" }
    }

    /// Kills the process with SIGKILL once this many copies have finished (`worker --crash-after N`),
    /// to show a crash at the worst moment: the Nth copy is complete on disk, but its result is not
    /// recorded yet, and other copies are half-written.
    final class CrashSwitch: Sendable {
        let copiesBeforeCrash: Int
        private let copiesDone = Mutex(0)

        init(after copies: Int) { copiesBeforeCrash = copies }

        /// Counts one finished copy; the Nth one never returns.
        func copyFinished() {
            let done = copiesDone.withLock { done in
                done += 1
                return done
            }
            guard done == copiesBeforeCrash else { return }
            print("  crash-after \(copiesBeforeCrash): killing this worker with SIGKILL, other copies in flight")
            kill(getpid(), SIGKILL)
        }
    }

    /// Prints a line per file copied (the worker terminal of the two-process mode).
    var announce = false
    /// Pretend each copy takes this long (`--ms-per-file`), between writing the temporary file and
    /// renaming it, so a worker can be killed with copies half done.
    var millisecondsPerFile = 0
    /// Set by `--crash-after N`.
    var crashSwitch: CrashSwitch?

    /// Copies `copy.source` to `copy.destination`, creating the directories it needs.
    /// - Returns: the number of bytes copied.
    /// - Throws: ``CopyFailed``.
    func run(context: ActivityContext, input copy: FileCopy) async throws -> Int {
        let partial = Self.partialPath(of: copy.destination, delivery: context.deliveryCount)
        do {
            let directory = (copy.destination as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for earlier in 1..<max(1, context.deliveryCount) {
                try? FileManager.default.removeItem(atPath: Self.partialPath(of: copy.destination, delivery: earlier))
            }
            let bytes = try Self.write(copy.source, to: partial)
            if millisecondsPerFile > 0 {
                // `try?`: a worker that is stopping ends the pause early and still finishes the copy.
                try? await Task.sleep(for: .milliseconds(millisecondsPerFile))
            }
            guard rename(partial, copy.destination) == 0 else {
                throw CopyFailed(path: copy.source, reason: "rename to \(copy.destination): \(String(cString: strerror(errno)))")
            }
            if announce {
                let again = context.deliveryCount > 1 ? " (again: delivery \(context.deliveryCount), no result was recorded for the earlier one)" : ""
                print("  copied \(copy.relativePath): \(bytes) bytes\(again)")
            }
            crashSwitch?.copyFinished()
            return bytes
        } catch let error as CopyFailed {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw CopyFailed(path: copy.source, reason: error.localizedDescription)
        }
    }

    /// `dir/name` becomes `dir/.name.backup-partial-D`: hidden, and next to the destination, so the
    /// rename stays on one file system (which is what makes it atomic).
    static func partialPath(of destination: String, delivery: Int) -> String {
        let url = URL(fileURLWithPath: destination)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).backup-partial-\(delivery)").path
    }

    /// Streams `source` into a new file at `target` in 1 MiB blocks and flushes it to disk.
    /// - Returns: the number of bytes written.
    static func write(_ source: String, to target: String) throws -> Int {
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: source))
        defer { try? input.close() }
        guard FileManager.default.createFile(atPath: target, contents: nil) else {
            throw CopyFailed(path: source, reason: "cannot create \(target)")
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: target))
        defer { try? output.close() }
        var bytes = 0
        while let block = try input.read(upToCount: 1 << 20), !block.isEmpty {
            try output.write(contentsOf: block)
            bytes += block.count
        }
        // Durable before the rename: otherwise a power cut could leave the new name on an empty file.
        try output.synchronize()
        return bytes
    }
}
