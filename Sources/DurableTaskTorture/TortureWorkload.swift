import DurableTask
import Foundation

/// The fan-out the torture runs: N activities whose results are known in advance (2i + 1, summing to N²).
struct TortureFanOut: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        let futures = (0..<input).map { context.callActivity(TortureWork.self, input: $0) }
        return try await context.whenAll(futures).reduce(0, +)
    }
}

/// `iterations` sequential rounds of `parallel` activities (the benchmark's shape); each round waits
/// for the previous one, so it measures episode turnaround as well as throughput.
struct TortureRounds: Orchestrator {
    /// The shape of one instance.
    struct Input: Codable, Sendable {
        var iterations: Int
        var parallel: Int
        /// Offsets the activity inputs, so that instances return different results.
        var offset: Int
    }

    /// Returns the sum of 2i + 1 over the instance's activity inputs.
    func run(context: OrchestrationContext, input: Input) async throws -> Int {
        var total = 0
        for round in 0..<input.iterations {
            let base = input.offset + round * input.parallel
            let futures = (0..<input.parallel).map { context.callActivity(TortureWork.self, input: base + $0) }
            total += try await context.whenAll(futures).reduce(0, +)
        }
        return total
    }

    /// The result an instance must return: the sum of 2i + 1 over offset..<offset + iterations × parallel.
    static func expected(_ input: Input) -> Int {
        (input.offset..<(input.offset + input.iterations * input.parallel)).reduce(0) { $0 + 2 * $1 + 1 }
    }
}

/// Records every execution in the ledger, takes a little time so kills land mid-way, and returns 2i + 1.
struct TortureWork: Activity {
    let ledger: Ledger
    let delay: Duration
    /// Appends the wall-clock time of the execution to its ledger line (`multihost` measures
    /// take-over times with it); off by default, as other modes match the line's last field.
    var timestamps = false

    func run(context: ActivityContext, input: Int) async throws -> Int {
        let line = "\(context.instanceID) \(context.taskID) \(context.deliveryCount) \(getpid())"
        ledger.append(timestamps ? line + String(format: " %.3f", Date().timeIntervalSince1970) : line)
        if delay > .zero { try await Task.sleep(for: delay) }
        return 2 * input + 1
    }
}

/// Waits on a durable timer and reports whether it fired early.
struct TortureTimer: Orchestrator {
    struct Report: Codable, Sendable {
        var fireAt: Double
        var firedAt: Double
    }

    func run(context: OrchestrationContext, input: Double) async throws -> Report {
        let fireAt = Date(timeIntervalSince1970: input)
        try await context.createTimer(fireAt: fireAt).value
        return Report(fireAt: fireAt.timeIntervalSince1970, firedAt: context.currentDate.timeIntervalSince1970)
    }
}

/// An append-only text file shared by processes: one `write` with `O_APPEND` per line keeps lines whole.
final class Ledger: Sendable {
    private let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw TortureError("cannot open ledger \(path): errno \(errno)") }
    }

    deinit { close(descriptor) }

    func append(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    static func lines(at path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }
}

struct TortureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A seeded generator (SplitMix64), so a failing run can be replayed with its seed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
