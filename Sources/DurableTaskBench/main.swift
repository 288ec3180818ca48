import Foundation

// DurableTaskBench: the benchmark harness (issue 5). See `Arguments.usage`, or run without arguments.
// Figures go to standard output — a human-readable line and a JSON line per measurement — and
// worker warnings to standard error.

/// Parses the command line and runs the chosen mode.
func runBenchmark() async throws {
    let raw = Array(CommandLine.arguments.dropFirst())
    if raw.isEmpty || ["help", "-h", "--help"].contains(raw[0]) {
        print(Arguments.usage)
        return
    }
    var arguments = try Arguments(raw)
    switch arguments.mode {
    case "fanout":
        try await FanOutBenchmark(&arguments).run()
    case "latency":
        try await LatencyBenchmark(&arguments).run()
    case "replay":
        try await ReplayBenchmark(&arguments).run()
    default:
        throw BenchError("unknown mode '\(arguments.mode)'\n\(Arguments.usage)")
    }
}

// Each run uses its own database file from one process, so the SQLite backend's warning about
// several processes sharing a WAL file on an old libsqlite3 does not apply; it would only repeat
// on every open. A value the user set is kept.
setenv("DURABLETASK_SQLITE_NO_WAL_WARNING", "1", 0)

do {
    try await runBenchmark()
} catch {
    FileHandle.standardError.write(Data("DurableTaskBench: \(error)\n".utf8))
    exit(1)
}
