import Foundation

// DurableTaskBench: the benchmark harness. See `Arguments.usage`, or run without arguments.
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

do {
    try await runBenchmark()
} catch {
    FileHandle.standardError.write(Data("DurableTaskBench: \(error)\n".utf8))
    exit(1)
}
