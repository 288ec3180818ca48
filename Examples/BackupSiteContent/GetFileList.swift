import DurableTask
import Foundation

/// The activity that lists the files to back up, the sample's `E2_GetFileList`: every regular file below
/// a directory, subdirectories included, as paths relative to it, sorted.
///
/// Symbolic links, sockets and other special files are left out (a backup of a link's target could be
/// a backup of anything). Hidden files are backed up like the others.
struct GetFileList: Activity {
    /// Thrown when the directory cannot be listed.
    struct UnlistableDirectory: Error, CustomStringConvertible {
        /// The directory.
        var path: String
        /// Why, in the operating system's words.
        var reason: String

        var description: String { "cannot list \(path): \(reason)" }
    }

    /// Lists the regular files below `directory`.
    /// - Throws: ``UnlistableDirectory`` when it cannot be read.
    func run(context: ActivityContext, input directory: String) async throws -> [String] {
        try Self.regularFiles(under: directory)
    }

    /// The regular files below `directory`, relative to it and sorted. The client's check uses it too,
    /// on both trees.
    static func regularFiles(under directory: String) throws -> [String] {
        let fileManager = FileManager.default
        let subpaths: [String]
        do {
            subpaths = try fileManager.subpathsOfDirectory(atPath: directory)
        } catch {
            throw UnlistableDirectory(path: directory, reason: error.localizedDescription)
        }
        return subpaths.filter { subpath in
            // attributesOfItem does not follow a link, so a link is never taken for its target.
            let attributes = try? fileManager.attributesOfItem(atPath: directory + "/" + subpath)
            return attributes?[.type] as? FileAttributeType == .typeRegular
        }.sorted()
    }
}
