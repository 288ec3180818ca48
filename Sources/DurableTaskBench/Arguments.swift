import Foundation

/// The command line, parsed: a mode followed by `--name value` options.
///
/// Hand-rolled because the package has no dependencies (no swift-argument-parser); every option is
/// `--name value`, and an unknown name or a malformed value is an error rather than a silent default,
/// so a typo never produces figures for a configuration nobody asked for.
struct Arguments {
    /// The first argument: `fanout`, `latency` or `replay`.
    let mode: String
    private var values: [String: String]
    private var used: Set<String> = []

    /// Parses `arguments` (without the program name).
    /// - Throws: ``BenchError`` for a missing mode, an option without a value, or a repeated option.
    init(_ arguments: [String]) throws {
        guard let mode = arguments.first, !mode.hasPrefix("-") else {
            throw BenchError("missing mode\n\(Arguments.usage)")
        }
        self.mode = mode
        var values: [String: String] = [:]
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw BenchError("unexpected argument '\(argument)'\n\(Arguments.usage)")
            }
            let name = String(argument.dropFirst(2))
            guard index + 1 < arguments.count else { throw BenchError("option --\(name) needs a value") }
            guard values[name] == nil else { throw BenchError("option --\(name) given twice") }
            values[name] = arguments[index + 1]
            index += 2
        }
        self.values = values
    }

    /// The value of `--name` as a string, or `defaultValue`.
    mutating func string(_ name: String, default defaultValue: String) -> String {
        used.insert(name)
        return values[name] ?? defaultValue
    }

    /// The value of `--name` as a positive integer (underscores and commas allowed: `100_000`), or `defaultValue`.
    /// - Throws: ``BenchError`` when the value is not a positive integer.
    mutating func int(_ name: String, default defaultValue: Int) throws -> Int {
        used.insert(name)
        guard let text = values[name] else { return defaultValue }
        let digits = text.filter { $0 != "_" && $0 != "," }
        guard let value = Int(digits), value > 0 else {
            throw BenchError("option --\(name) needs a positive integer, got '\(text)'")
        }
        return value
    }

    /// Whether `--name` was given at all.
    func has(_ name: String) -> Bool { values[name] != nil }

    /// Fails on options no mode asked for, so a misspelt option is not silently ignored.
    /// - Throws: ``BenchError`` naming the unknown options.
    func checkAllUsed() throws {
        let unknown = Set(values.keys).subtracting(used).sorted()
        guard unknown.isEmpty else {
            throw BenchError("unknown option(s) for mode '\(mode)': \(unknown.map { "--\($0)" }.joined(separator: ", "))\n\(Arguments.usage)")
        }
    }

    static let usage = """
        usage:
          DurableTaskBench fanout  --backend memory|sqlite|postgres --items N [--sync full|every-step|normal] [--url URL] [--repeat R]
          DurableTaskBench fanout  --backend memory|sqlite|postgres --iterations I --parallel P --orchestrations O [--sync ...] [--repeat R]
          DurableTaskBench latency --backend memory|sqlite|postgres [--count C] [--sync full|every-step|normal] [--url URL]
          DurableTaskBench replay  --backend sqlite|memory|postgres [--items N] [--sync full|every-step|normal] [--url URL] [--repeat R]
        common options: --activities K (worker's maxConcurrentActivities, default 64),
                    --max-orchestrations K (worker's maxConcurrentOrchestrations: episodes in flight; default: the library's),
                    --timeout SECONDS (default 900), --client-poll-ms MS (the client's pollInterval, default: the library's);
                    latency also --warmup W (default 20);
                    --sync: what waits for the disk (default full: what a client is told; every-step: every commit
                    but leases; normal, sqlite only: no commit)
        """
}

/// A benchmark failure with a message for the terminal; the process exits with status 1.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
