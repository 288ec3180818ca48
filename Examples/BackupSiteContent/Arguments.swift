import Foundation

/// The command line of the example, parsed.
struct Arguments {
    /// Which process this is.
    enum Mode {
        /// A worker and a client in one process (the default).
        case oneProcess
        /// Only a worker, until Ctrl-C (or `--crash-after`).
        case worker
        /// Only a client: schedule the backup, wait for it, check it.
        case client
    }

    /// A command line that cannot be run; exits with status 2 after printing the usage.
    struct UsageError: Error, CustomStringConvertible {
        /// What is wrong.
        var description: String
    }

    static let usage = """
        Usage:
          swift run BackupSiteContent SOURCE_DIR BACKUP_DIR [--db PATH | --memory]
              Back up every regular file below SOURCE_DIR into BACKUP_DIR, one copy activity per file,
              with a worker and a client in one process, then check the backup.
          swift run BackupSiteContent worker --db PATH [--ms-per-file MS] [--crash-after N]
              Run a worker on the SQLite file PATH until Ctrl-C.
          swift run BackupSiteContent client --db PATH SOURCE_DIR BACKUP_DIR
              Schedule a backup on PATH, wait until a worker has finished it, check it.

        Options:
          --db PATH          the SQLite task hub file (one-process default: a fresh file in the temp directory)
          --memory           use InMemoryBackend instead of SQLite (one-process mode only)
          --ms-per-file MS   make each copy take MS milliseconds longer, between writing the copy under a
                             temporary name and renaming it (worker and one-process modes)
          --crash-after N    kill the worker with SIGKILL right after its Nth copy, before that copy's
                             result is recorded (worker mode): start another worker to finish the backup
          -h, --help         show this help

        The check: BACKUP_DIR holds exactly the regular files of SOURCE_DIR (same relative paths, same
        bytes, nothing else), and the total the orchestrator summed equals the sum of their sizes.
        Symbolic links and empty directories are not backed up.

        Exit status: 0 when the backup completed and passed the check, 1 otherwise, 2 for a bad command line.
        """

    /// Which process this is.
    var mode = Mode.oneProcess
    /// The SQLite file given with `--db`.
    var databasePath: String?
    /// Whether `--memory` was given.
    var inMemory = false
    /// The MS of `--ms-per-file MS`.
    var millisecondsPerFile = 0
    /// The N of `--crash-after N`.
    var crashAfter: Int?
    /// SOURCE_DIR and BACKUP_DIR.
    var directories: [String] = []
    /// Whether `--help` was given.
    var showHelp = false

    /// Parses the arguments that follow the program name.
    /// - Throws: ``UsageError`` for unknown options, missing values and conflicting choices.
    static func parse(_ arguments: [String]) throws(UsageError) -> Arguments {
        var result = Arguments()
        var remaining = arguments[...]
        switch remaining.first {
        case "worker": result.mode = .worker
        case "client": result.mode = .client
        default: break
        }
        if result.mode != .oneProcess { remaining = remaining.dropFirst() }
        func number(_ option: String, minimum: Int) throws(UsageError) -> Int {
            guard let text = remaining.popFirst(), let value = Int(text), value >= minimum else {
                throw UsageError(description: "\(option) needs a number of at least \(minimum)")
            }
            return value
        }
        while let argument = remaining.popFirst() {
            switch argument {
            case "-h", "--help": result.showHelp = true
            case "--memory": result.inMemory = true
            case "--db":
                guard let path = remaining.popFirst() else { throw UsageError(description: "--db needs a file path") }
                result.databasePath = path
            case "--ms-per-file": result.millisecondsPerFile = try number(argument, minimum: 0)
            case "--crash-after": result.crashAfter = try number(argument, minimum: 1)
            default:
                if argument.hasPrefix("-") { throw UsageError(description: "unknown option \(argument)") }
                result.directories.append(argument)
            }
        }
        if result.showHelp { return result }
        if result.inMemory && result.databasePath != nil { throw UsageError(description: "choose one of --db and --memory") }
        switch result.mode {
        case .oneProcess, .client:
            guard result.directories.count == 2 else { throw UsageError(description: "give SOURCE_DIR and BACKUP_DIR") }
            if result.crashAfter != nil { throw UsageError(description: "--crash-after is for a worker: `worker --db PATH --crash-after N`") }
        case .worker:
            if !result.directories.isEmpty { throw UsageError(description: "the worker takes no directories: give them to the client") }
        }
        if result.mode != .oneProcess {
            if result.inMemory { throw UsageError(description: "worker and client share work through a file: use --db, not --memory") }
            if result.databasePath == nil { throw UsageError(description: "worker and client need --db FILE (the same file in both)") }
        }
        if result.mode == .client && result.millisecondsPerFile > 0 {
            throw UsageError(description: "copies run on the worker: give --ms-per-file to the worker")
        }
        return result
    }
}
