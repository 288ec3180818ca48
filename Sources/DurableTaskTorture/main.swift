import DurableTask
import DurableTaskSQLite
import Foundation

// DurableTaskTorture: fault injection against the SQLite backend (and, with `--postgres URL`, the
// PostgreSQL backend on a fresh schema per run). Parent modes spawn this same executable in child
// modes and kill them with SIGKILL; then they check every promise in the database.
//
//   DurableTaskTorture crash     [--items 200] [--kills 20] [--seeds 1] [--seed 1] [--dir DIR] [--postgres URL]
//   DurableTaskTorture competing [--processes 4] [--orchestrations 500] [--fanout 10] [--kill-every 1]
//                                [--pause-every 0] [--pause-ms 2500] [--delay-ms 20] [--postgres URL]
//   DurableTaskTorture scale     [--workers 1] [--iterations 10] [--parallel 10] [--orchestrations 40]
//                                [--repeat 1] [--server-pid PID] [--postgres URL]
//   DurableTaskTorture schedule  --postgres URL --schema NAME [--orchestrations 200] [--fanout 10]
//                                (the client of .ci/multihost; its workers are `child-worker`s)
//   DurableTaskTorture timers    [--timers 20] [--window 3]
//   DurableTaskTorture open-race [--runs 100] [--processes 2]
//   DurableTaskTorture recovery  [--runs 3] [--items 60] [--kill-after 12] [--delay-ms 200] [--limit 1]
//   DurableTaskTorture poison    [--max-deliveries 5] [--others 20] [--max-restarts 30]
//
// Each prints a one-line summary and a JSON line, and exits non-zero when a check fails.

let arguments = Arguments(CommandLine.arguments.dropFirst())

do {
    switch arguments.mode {
    case "crash": try await CrashTorture(arguments).run()
    case "competing": try await CompetingTorture(arguments).run()
    case "timers": try await TimerTorture(arguments).run()
    case "open-race": try await OpenRaceTorture(arguments).run()
    case "recovery": try await RecoveryTorture(arguments).run()
    case "child-fanout": try await ChildModes.fanOut(arguments)
    case "child-worker": try await ChildModes.worker(arguments)
    case "child-open": try await ChildModes.open(arguments)
    case "poison": try await PoisonTorture(arguments).run()
    case "scale": try await ScaleRun(arguments).run()
    case "schedule": try await ScheduleAndVerify(arguments).run()
    case "child-poison": try await ChildModes.poisonWorker(arguments)
    default:
        print("usage: DurableTaskTorture crash|competing|timers|open-race|recovery|poison|scale|schedule [options] (see the comment at the top of main.swift)")
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("DurableTaskTorture: \(error)\n".utf8))
    exit(1)
}

/// `--key value` options after a mode word.
struct Arguments {
    let mode: String
    private var values: [String: String] = [:]

    init(_ words: ArraySlice<String>) {
        mode = words.first ?? ""
        var rest = Array(words.dropFirst())
        while !rest.isEmpty {
            let key = rest.removeFirst()
            guard key.hasPrefix("--") else { continue }
            if let value = rest.first, !value.hasPrefix("--") {
                values[String(key.dropFirst(2))] = value
                rest.removeFirst()
            } else {
                values[String(key.dropFirst(2))] = "true"
            }
        }
    }

    func string(_ key: String, _ fallback: String) -> String { values[key] ?? fallback }
    func int(_ key: String, _ fallback: Int) -> Int { values[key].flatMap(Int.init) ?? fallback }
    func double(_ key: String, _ fallback: Double) -> Double { values[key].flatMap(Double.init) ?? fallback }
    func flag(_ key: String) -> Bool { values[key] == "true" }
}

/// Prints the human line and the JSON line every mode ends with.
func report(_ summary: String, _ json: [String: Any], ok: Bool) {
    print(summary)
    if let data = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
    if !ok { exit(1) }
}

/// A fresh directory for a run's database, ledger and logs.
func runDirectory(_ arguments: Arguments, _ name: String) throws -> URL {
    let base = arguments.string("dir", FileManager.default.temporaryDirectory.path)
    let directory = URL(fileURLWithPath: base).appendingPathComponent("dt-torture-\(name)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// Worker settings for children: short leases (`--lease-ms`, 1 s by default; 0 for the library's
/// defaults) so a killed child's work is taken over quickly, and a short poll (`--poll-ms`, 20 ms by
/// default) so processes notice each other's work.
func childWorkerOptions(_ arguments: Arguments) -> DurableTaskWorker.Options {
    var options = DurableTaskWorker.Options(
        maxConcurrentActivities: arguments.int("concurrency", 8),
        pollInterval: .milliseconds(arguments.int("poll-ms", 20)))
    // `--prefetch N`: how many activities a worker leases ahead of running them (the library's 512 by
    // default); what a worker that drops off the network is holding.
    let prefetch = arguments.int("prefetch", 0)
    if prefetch > 0 { options.activityPrefetch = prefetch }
    let leaseMilliseconds = arguments.int("lease-ms", 1000)
    if leaseMilliseconds > 0 {
        options.orchestrationLeaseDuration = .milliseconds(leaseMilliseconds)
        options.activityLeaseDuration = .milliseconds(leaseMilliseconds)
    }
    return options
}
