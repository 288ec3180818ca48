import DurableTask

/// What to back up, and where to: both absolute, so a worker started in another directory finds them.
struct BackupRequest: Codable, Sendable {
    /// The directory whose files are copied, recursively.
    var sourceDirectory: String
    /// The directory the copies go to, with the same relative paths.
    var backupDirectory: String
}

/// What a backup returns: how many files were copied and how many bytes in all.
struct BackupReport: Codable, Sendable {
    /// The number of files copied.
    var files: Int
    /// The sum of the bytes each copy reported.
    var bytes: Int
}

/// The orchestrator, the sample's `E2_BackupSiteContent`: lists the files under the source directory
/// (one activity), copies each of them in parallel (one activity per file), and sums the bytes copied.
///
/// It is replayed from its history after a crash, so it only schedules and adds: listing and copying
/// are I/O and happen in the activities. A worker that is killed mid-way leaves some copies recorded in
/// history; the next worker replays the history, does not repeat those, and redoes only the copies whose
/// results were never recorded.
struct BackupSiteContentOrchestrator: Orchestrator {
    /// Backs up `request.sourceDirectory`.
    /// - Throws: the first copy that failed (`TaskFailedError`), once every copy has finished: a backup
    ///   missing a file is a failed backup, not a smaller total.
    func run(context: OrchestrationContext, input request: BackupRequest) async throws -> BackupReport {
        let files = try await context.callActivity(GetFileList.self, input: request.sourceDirectory).value
        context.setCustomStatus("listed \(files.count) files")
        context.logger.info("backing up \(files.count) files from \(request.sourceDirectory)")

        // Fan out: every copy is scheduled before any is awaited, so they run in parallel.
        let copies = files.map { path in
            context.callActivity(
                CopyFileToBackup.self,
                input: FileCopy(
                    relativePath: path,
                    source: request.sourceDirectory + "/" + path,
                    destination: request.backupDirectory + "/" + path))
        }
        // Fan in: each copy returns the bytes it copied.
        let bytes = try await context.whenAll(copies).reduce(0, +)
        context.setCustomStatus("copied \(files.count) files")
        context.logger.info("copied \(files.count) files, \(bytes) bytes")
        return BackupReport(files: files.count, bytes: bytes)
    }
}
