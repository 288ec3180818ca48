/// The command line of the example, parsed.
struct Arguments {
    /// Which process this is.
    enum Mode {
        /// The orchestration service and the worker service in one process (the default).
        case oneProcess
        /// The worker service: runs orchestrations and activities until Ctrl-C.
        case worker
        /// The orchestration service: creates the orchestrations, reports their status, checks them.
        case run
        /// Prints the status of one orchestration, or of many at once.
        case status
    }

    /// A command line that cannot be run; exits with status 2 after printing the usage.
    struct UsageError: Error, CustomStringConvertible {
        /// What is wrong.
        var description: String
    }

    static let usage = """
        Usage:
          swift run LoadTest [--db PATH | --postgres URL | --memory] [--iterations I] [--parallel P] [--orchestrations O]
              The whole load test in one process: a worker, and a client that creates O orchestrations
              of I rounds of P parallel activities each, reports their status and checks their results.
          swift run LoadTest worker (--db PATH | --postgres URL) [--ms-per-activity MS]
              The worker service: runs the orchestrations and activities of the task hub until Ctrl-C.
          swift run LoadTest run (--db PATH | --postgres URL) [--iterations I] [--parallel P] [--orchestrations O]
              The orchestration service: creates the orchestrations on the task hub for a worker to run,
              prints the status of all of them as it changes and of each at the end, and checks the results.
          swift run LoadTest status (--db PATH | --postgres URL) ID [ID ...]
              The status of one orchestration (in detail) or of many at once.
          The services meet in one task hub: give each the same --db file (one machine) or the same
          --postgres URL (one machine or several).

        Options:
          --iterations I      sequential rounds per orchestration (10)
          --parallel P        activities fanned out in each round (5)
          --orchestrations O  orchestrations created at once (1)
          --ms-per-activity MS
                              make each activity take MS milliseconds (worker and one-process modes)
          --db PATH           the SQLite task hub file, the default backend (one-process default: a fresh
                              file in the temp directory)
          --postgres URL      the PostgreSQL task hub instead (schema "loadtest"), e.g.
                              postgresql://user@host:5432/db
          --memory            use InMemoryBackend instead of SQLite (one-process mode only)
          -h, --help          show this help

        The check: every orchestration completed, ran I × P activities, and summed their results to
        1 + 2 + … + I×P (activity k returns k).

        Exit status: 0 when every orchestration passed the check (status: when every ID exists), 1 otherwise,
        2 for a bad command line.
        """

    /// Which process this is.
    var mode = Mode.oneProcess
    /// The SQLite file given with `--db`.
    var databasePath: String?
    /// The PostgreSQL connection URL given with `--postgres`.
    var postgresURL: String?
    /// Whether `--memory` was given.
    var inMemory = false
    /// `--iterations I`.
    var iterations = 10
    /// `--parallel P`.
    var parallelActivities = 5
    /// `--orchestrations O`.
    var orchestrations = 1
    /// `--ms-per-activity MS`.
    var millisecondsPerActivity = 0
    /// The IDs given to `status`.
    var instanceIDs: [String] = []
    /// Whether `--help` was given.
    var showHelp = false

    /// Parses the arguments that follow the program name.
    /// - Throws: ``UsageError`` for unknown options, missing values and conflicting choices.
    static func parse(_ arguments: [String]) throws(UsageError) -> Arguments {
        var result = Arguments()
        var remaining = arguments[...]
        switch remaining.first {
        case "worker": result.mode = .worker
        case "run": result.mode = .run
        case "status": result.mode = .status
        default: break
        }
        if result.mode != .oneProcess { remaining = remaining.dropFirst() }
        func number(_ option: String, minimum: Int) throws(UsageError) -> Int {
            guard let text = remaining.popFirst(), let value = Int(text), value >= minimum else {
                throw UsageError(description: "\(option) needs a number of at least \(minimum)")
            }
            return value
        }
        var shapeGiven = false
        while let argument = remaining.popFirst() {
            switch argument {
            case "-h", "--help": result.showHelp = true
            case "--memory": result.inMemory = true
            case "--db":
                guard let path = remaining.popFirst() else { throw UsageError(description: "--db needs a file path") }
                result.databasePath = path
            case "--postgres":
                guard let url = remaining.popFirst(), !url.isEmpty else { throw UsageError(description: "--postgres needs a connection URL") }
                result.postgresURL = url
            case "--iterations": result.iterations = try number(argument, minimum: 1); shapeGiven = true
            case "--parallel": result.parallelActivities = try number(argument, minimum: 1); shapeGiven = true
            case "--orchestrations": result.orchestrations = try number(argument, minimum: 1); shapeGiven = true
            case "--ms-per-activity": result.millisecondsPerActivity = try number(argument, minimum: 0)
            default:
                if argument.hasPrefix("-") || result.mode != .status { throw UsageError(description: "unknown argument \(argument)") }
                result.instanceIDs.append(argument)
            }
        }
        if result.showHelp { return result }
        let backendsChosen = [result.databasePath != nil, result.postgresURL != nil, result.inMemory].filter { $0 }.count
        if backendsChosen > 1 { throw UsageError(description: "choose one of --db, --postgres and --memory") }
        if result.mode != .oneProcess {
            if result.inMemory { throw UsageError(description: "the services share work through a task hub: use --db or --postgres, not --memory") }
            if backendsChosen == 0 {
                throw UsageError(description: "the services need --db FILE or --postgres URL (the same in each)")
            }
        }
        switch result.mode {
        case .oneProcess: break
        case .worker:
            if shapeGiven { throw UsageError(description: "the worker runs what it is given: pass --iterations, --parallel and --orchestrations to `run`") }
        case .run:
            if result.millisecondsPerActivity > 0 { throw UsageError(description: "activities run on the worker: give --ms-per-activity to `worker`") }
        case .status:
            if result.instanceIDs.isEmpty { throw UsageError(description: "status needs one or more instance IDs") }
            if shapeGiven || result.millisecondsPerActivity > 0 { throw UsageError(description: "status takes only --db PATH or --postgres URL, and IDs") }
        }
        return result
    }
}
