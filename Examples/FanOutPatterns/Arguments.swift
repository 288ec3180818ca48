/// The command line of the example, parsed.
struct Arguments {
    /// The pattern to run.
    enum Pattern: String, CaseIterable {
        case chunked, progress, partial, dynamic, large, deadline
    }

    /// A command line that cannot be run; exits with status 2 after printing the usage.
    struct UsageError: Error, CustomStringConvertible {
        /// What is wrong.
        var description: String
    }

    static let usage = """
        Usage:
          swift run FanOutPatterns PATTERN [options]
          swift run FanOutPatterns all [--large-items N] [--db PATH | --memory]

        Each pattern runs a worker and a client in one process, prints its result and checks it exactly
        (every item's result is its number squared, so each total has a formula).

        Patterns:
          chunked    the items in batches of K: one fan-out and fan-in per batch, at most K in flight
                       --items N (1000)  --chunk K (50)  --ms-per-item MS (5)
          progress   one item after another, progress published as custom status, printed as a percentage
                       --items N (20)  --ms-per-item MS (100)
          partial    every M-th item is corrupt and fails; try/catch per item; success and failure counts
                       --items N (100)  --fail-every M (10)
          dynamic    an activity returns the work list, then the fan-out over it
                       --items N (250): the batch the activity looks up holds N items
          large      a large batch two ways: split over sub-orchestrations of S items each, as the doc
                     recommends, and as one fan-out of all N; prints both times
                       --items N (100000)  --slice S (1000)
          deadline   allOf raced with a durable timer: a batch that finishes in time, then the same batch
                     with one item that hangs, given up on at the deadline
                       --items N (20)  --deadline-ms MS (2000)
          all        every pattern above with its defaults (--large-items N for the large one)

        Options:
          --db PATH    the SQLite task hub file (default: a fresh file in the temp directory)
          --memory     use InMemoryBackend instead of SQLite
          -h, --help   show this help

        Exit status: 0 when every check passed, 1 otherwise, 2 for a bad command line.
        """

    /// The patterns to run, in order.
    var patterns: [Pattern] = []
    /// The SQLite file given with `--db`.
    var databasePath: String?
    /// Whether `--memory` was given.
    var inMemory = false
    /// `--items N`, for the one pattern given.
    var items: Int?
    /// `--large-items N`, for `all`.
    var largeItems = 100_000
    /// `--chunk K`.
    var chunk = 50
    /// `--ms-per-item MS`.
    var millisecondsPerItem: Int?
    /// `--fail-every M`.
    var failEvery = 10
    /// `--slice S`.
    var slice = 1000
    /// `--deadline-ms MS`.
    var deadlineMilliseconds = 2000
    /// Whether `--help` was given.
    var showHelp = false

    /// The item count for `pattern`: `--items`, or its default.
    func items(for pattern: Pattern) -> Int {
        if let items, patterns.count == 1 { return items }
        switch pattern {
        case .chunked: return 1000
        case .progress: return 20
        case .partial: return 100
        case .dynamic: return 250
        case .large: return largeItems
        case .deadline: return 20
        }
    }

    /// Parses the arguments that follow the program name.
    /// - Throws: ``UsageError`` for unknown patterns and options, and missing values.
    static func parse(_ arguments: [String]) throws(UsageError) -> Arguments {
        var result = Arguments()
        var remaining = arguments[...]
        func number(_ option: String, minimum: Int) throws(UsageError) -> Int {
            guard let text = remaining.popFirst(), let value = Int(text), value >= minimum else {
                throw UsageError(description: "\(option) needs a number of at least \(minimum)")
            }
            return value
        }
        var all = false
        while let argument = remaining.popFirst() {
            switch argument {
            case "-h", "--help": result.showHelp = true
            case "--memory": result.inMemory = true
            case "--db":
                guard let path = remaining.popFirst() else { throw UsageError(description: "--db needs a file path") }
                result.databasePath = path
            case "--items": result.items = try number(argument, minimum: 1)
            case "--large-items": result.largeItems = try number(argument, minimum: 1)
            case "--chunk": result.chunk = try number(argument, minimum: 1)
            case "--ms-per-item": result.millisecondsPerItem = try number(argument, minimum: 0)
            case "--fail-every": result.failEvery = try number(argument, minimum: 1)
            case "--slice": result.slice = try number(argument, minimum: 1)
            case "--deadline-ms": result.deadlineMilliseconds = try number(argument, minimum: 1)
            case "all": all = true
            default:
                guard let pattern = Pattern(rawValue: argument) else {
                    throw UsageError(description: argument.hasPrefix("-") ? "unknown option \(argument)" : "unknown pattern \(argument)")
                }
                result.patterns.append(pattern)
            }
        }
        if result.showHelp { return result }
        if result.inMemory && result.databasePath != nil { throw UsageError(description: "choose one of --db and --memory") }
        if all {
            if !result.patterns.isEmpty { throw UsageError(description: "`all` runs every pattern: name no other") }
            if result.items != nil { throw UsageError(description: "`all` uses each pattern's default --items; --large-items N sets the large one") }
            result.patterns = Pattern.allCases
        }
        guard !result.patterns.isEmpty else { throw UsageError(description: "name a pattern, or `all`") }
        if result.patterns.count > 1 && !all { throw UsageError(description: "name one pattern, or `all`") }
        return result
    }
}
