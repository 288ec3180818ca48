import Foundation

/// The command line of the example, parsed, and the documents it names.
struct Arguments {
    /// Which process this is.
    enum Mode {
        /// A worker and a client in one process (the default).
        case oneProcess
        /// Only a worker, until Ctrl-C.
        case worker
        /// Only a client: schedule (or re-attach with `--instance`), wait, print.
        case client
        /// List the word counts in a task hub file.
        case status
    }

    /// A command line that cannot be run; exits with status 2 after printing the usage.
    struct UsageError: Error, CustomStringConvertible {
        /// What is wrong.
        var description: String
    }

    /// A file or directory argument that does not exist or names nothing to count; exits with status 1.
    struct InputError: Error, CustomStringConvertible {
        /// What is wrong.
        var description: String
    }

    static let usage = """
        Usage:
          swift run WordCount [--db PATH | --memory] [--ms-per-word MS] [--items N | FILE_OR_DIR ...]
              Count words with a worker and a client in one process. With no files, counts the
              texts bundled with the example; a directory means every non-hidden file below it,
              subdirectories included.
          swift run WordCount worker --db PATH [--ms-per-word MS]
              Run a worker on the SQLite file PATH until Ctrl-C.
          swift run WordCount worker --postgres URL [--ms-per-word MS]
          swift run WordCount client --postgres URL [--items N | FILE_OR_DIR ...]
              The same on a PostgreSQL task hub (schema "wordcount"), so workers and clients on
              several machines share it.
          swift run WordCount client --db PATH [--items N | FILE_OR_DIR ...]
              Schedule a word count on PATH, wait until a worker has finished it, print the result.
              It prints the instance ID first, and the command that re-attaches to it.
          swift run WordCount client --db PATH --instance ID
              Re-attach to the word count ID scheduled earlier (say, by a client that was stopped):
              wait for it and print its result. Schedules nothing.
          swift run WordCount status --db PATH
              List the word counts in PATH: instance ID, status and progress.

        Options:
          --db PATH    the SQLite task hub file (one-process default: a fresh file in the temp directory)
          --memory     use InMemoryBackend instead of SQLite (one-process mode only)
          --postgres URL
                       the PostgreSQL task hub, e.g. postgresql://user@host:5432/db (worker and client modes)
          --items N    count N generated sentences instead of files
          --instance ID
                       the word count to re-attach to (client mode)
          --ms-per-word MS
                       make each activity take MS milliseconds per word it counts, to watch the
                       progress or stop a worker mid-way (one-process and worker modes)
          -h, --help   show this help

        A word is a maximal run of bytes other than ASCII space, tab, newline, vertical tab, form feed
        and carriage return: the same as `wc -w` for ASCII text (see the README for other text).

        Exit status: 0 when every document was counted, 1 when one could not be (or the instance
        failed, or does not exist), 2 for a bad command line.
        """

    /// Which process this is.
    var mode = Mode.oneProcess
    /// The SQLite file given with `--db`.
    var databasePath: String?
    /// The URL given with `--postgres`.
    var postgresURL: String?
    /// Whether `--memory` was given.
    var inMemory = false
    /// The N of `--items N`.
    var items: Int?
    /// The ID of `--instance ID`: re-attach instead of scheduling.
    var instanceID: String?
    /// The MS of `--ms-per-word MS`.
    var millisecondsPerWord = 0
    /// Files and directories to count.
    var paths: [String] = []
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
        case "status": result.mode = .status
        default: break
        }
        if result.mode != .oneProcess { remaining = remaining.dropFirst() }
        while let argument = remaining.popFirst() {
            switch argument {
            case "-h", "--help":
                result.showHelp = true
            case "--memory":
                result.inMemory = true
            case "--db":
                guard let path = remaining.popFirst() else { throw UsageError(description: "--db needs a file path") }
                result.databasePath = path
            case "--postgres":
                guard let url = remaining.popFirst(), !url.isEmpty else { throw UsageError(description: "--postgres needs a connection URL") }
                result.postgresURL = url
            case "--items":
                guard let text = remaining.popFirst(), let count = Int(text), count > 0 else {
                    throw UsageError(description: "--items needs a positive number")
                }
                result.items = count
            case "--instance":
                guard let id = remaining.popFirst(), !id.isEmpty else { throw UsageError(description: "--instance needs an instance ID") }
                result.instanceID = id
            case "--ms-per-word":
                guard let text = remaining.popFirst(), let milliseconds = Int(text), milliseconds >= 0 else {
                    throw UsageError(description: "--ms-per-word needs a number of milliseconds")
                }
                result.millisecondsPerWord = milliseconds
            case "--":
                result.paths += remaining
                remaining = []
            default:
                if argument.hasPrefix("-") { throw UsageError(description: "unknown option \(argument)") }
                result.paths.append(argument)
            }
        }
        if result.showHelp { return result }
        if result.inMemory && result.databasePath != nil {
            throw UsageError(description: "choose one of --db and --memory")
        }
        if result.items != nil && !result.paths.isEmpty {
            throw UsageError(description: "choose one of --items and files")
        }
        if result.instanceID != nil {
            if result.mode != .client { throw UsageError(description: "--instance re-attaches a client: use `client --db PATH --instance ID`") }
            if result.items != nil || !result.paths.isEmpty {
                throw UsageError(description: "--instance waits for a count scheduled earlier: give it no documents")
            }
        }
        switch result.mode {
        case .oneProcess:
            if result.postgresURL != nil { throw UsageError(description: "--postgres is for worker and client modes") }
        case .status:
            if result.inMemory { throw UsageError(description: "status reads a task hub file: use --db, not --memory") }
            if result.databasePath == nil { throw UsageError(description: "status needs --db FILE") }
            if result.postgresURL != nil { throw UsageError(description: "status reads a task hub file: use --db") }
            if result.items != nil || !result.paths.isEmpty || result.millisecondsPerWord > 0 {
                throw UsageError(description: "status takes only --db FILE")
            }
        case .worker, .client:
            // A worker and a client in different processes meet only in a shared file.
            if result.inMemory { throw UsageError(description: "worker and client share work through a file: use --db, not --memory") }
            if result.databasePath != nil && result.postgresURL != nil { throw UsageError(description: "choose one of --db and --postgres") }
            if result.databasePath == nil && result.postgresURL == nil {
                throw UsageError(description: "worker and client need --db FILE or --postgres URL (the same in both)")
            }
            if result.mode == .worker && (result.items != nil || !result.paths.isEmpty) {
                throw UsageError(description: "the worker takes no documents: give them to the client")
            }
            if result.mode == .client && result.millisecondsPerWord > 0 {
                throw UsageError(description: "activities run on the worker: give --ms-per-word to the worker")
            }
        }
        return result
    }

    /// The documents to count: generated sentences, the files named (directories expanded), or the
    /// bundled texts.
    /// - Throws: ``InputError`` when a path does not exist or a directory holds no files.
    func documents() throws(InputError) -> [Document] {
        if let items { return Self.sentences(items) }
        if paths.isEmpty {
            guard let bundled = Bundle.module.url(forResource: "texts", withExtension: nil) else {
                throw InputError(description: "the bundled texts are missing from the WordCount resources")
            }
            return try Self.files(in: bundled.path, displayedAs: "texts")
        }
        var documents: [Document] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw InputError(description: "no such file or directory: \(path)")
            }
            if isDirectory.boolValue {
                documents += try Self.files(in: path, displayedAs: path)
            } else {
                documents.append(Document(name: path, source: .file(path: Self.absolute(path))))
            }
        }
        return documents
    }

    /// Every non-hidden file below `directory`, sorted by path. Entries that are not directories are
    /// taken as files even if they cannot be read (a dangling link, say): the activity reports those.
    private static func files(in directory: String, displayedAs displayName: String) throws(InputError) -> [Document] {
        let subpaths: [String]
        do {
            subpaths = try FileManager.default.subpathsOfDirectory(atPath: directory)
        } catch {
            throw InputError(description: "cannot list \(directory): \(error.localizedDescription)")
        }
        let prefix = displayName.hasSuffix("/") ? displayName : displayName + "/"
        let documents = subpaths.sorted().compactMap { subpath -> Document? in
            guard !subpath.split(separator: "/").contains(where: { $0.hasPrefix(".") }) else { return nil }
            let path = (directory as NSString).appendingPathComponent(subpath)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return nil }
            return Document(name: prefix + subpath, source: .file(path: absolute(path)))
        }
        guard !documents.isEmpty else { throw InputError(description: "no files to count in \(directory)") }
        return documents
    }

    /// `path` made absolute, so a worker started in another directory reads the same file.
    private static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// `count` sentences of 3 to 12 words, the same on every run (no randomness), so results can be
    /// compared between runs.
    static func sentences(_ count: Int) -> [Document] {
        let words = [
            "every", "step", "of", "an", "orchestration", "is", "recorded", "in", "its", "history",
            "so", "a", "worker", "that", "crashes", "replays", "it", "and", "carries", "on",
            "where", "the", "last", "one", "stopped"
        ]
        return (1...count).map { index in
            // A multiplicative hash spreads the lengths without a visible pattern.
            let hash = UInt64(index) &* 0x9E37_79B9_7F4A_7C15
            let length = 3 + Int((hash ^ (hash >> 29)) % 10)
            let sentence = (0..<length).map { position in words[(index * 31 + position * 17) % words.count] }
            return Document(name: "sentence \(index)", source: .text(sentence.joined(separator: " ") + "."))
        }
    }
}
