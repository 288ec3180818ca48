// The fan-out/fan-in patterns doc, runnable: chunked processing, progress tracking, partial failure,
// dynamic fan-out, a large batch with and without sub-orchestrations, and a fan-in with a deadline.
//
// Orchestrators.swift holds the orchestrators, ProcessItem.swift the activities; this file runs each
// pattern with a worker and a client in one process and checks its result exactly.
// Run `swift run FanOutPatterns --help` for the patterns.

// `@preconcurrency` for `stdout`, a C global that Swift 6 treats as shared mutable state: its one use,
// `setvbuf` below, runs before this process has any other thread. (It must come before the imports
// that bring the C library in without it.)
#if canImport(Glibc)
    @preconcurrency import Glibc
#elseif canImport(Darwin)
    @preconcurrency import Darwin
#endif
import DurableTask
import DurableTaskSQLite
import Foundation

/// 1² + 2² + … + n².
func sumOfSquares(_ n: Int) -> Int { n * (n + 1) * (2 * n + 1) / 6 }

/// What running the patterns needs: a client, and the gauge the activity reports to.
struct Runner {
    let client: DurableTaskClient
    let gauge: InFlightGauge
    let arguments: Arguments

    /// Schedules an instance and waits for it, printing its custom status as it changes when `showProgress`
    /// is given a way to print it.
    /// - Returns: the finished instance's metadata and how long it took.
    func run<O: Orchestrator>(
        _ orchestrator: O.Type, input: O.Input, prefix: String,
        showProgress: ((OrchestrationMetadata) -> String?)? = nil
    ) async throws -> (OrchestrationMetadata, Duration) {
        let clock = ContinuousClock()
        let start = clock.now
        let instanceID = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        try await client.scheduleNewOrchestration(orchestrator, input: input, instanceID: instanceID)
        print("Scheduled \(instanceID)")
        var lastProgress: String?
        while true {
            guard let metadata = try await client.getInstance(instanceID) else {
                throw DurableTaskError(.instanceNotFound, "instance '\(instanceID)' disappeared while waiting for it")
            }
            if let showProgress, let progress = showProgress(metadata), progress != lastProgress {
                print("  progress: \(progress)")
                lastProgress = progress
            }
            if metadata.status.isTerminal {
                guard metadata.status == .completed else {
                    throw DurableTaskError(.invalidState, "\(instanceID) \(metadata.status.rawValue): \(metadata.failure.map { "\($0)" } ?? "no details")")
                }
                return (metadata, start.duration(to: clock.now))
            }
            try await Task.sleep(for: .milliseconds(showProgress == nil ? 20 : 50))
        }
    }

    /// Prints whether `passed`, and what was checked.
    func check(_ passed: Bool, _ what: String) -> Bool {
        print(passed ? "Check passed: \(what)" : "Check FAILED: expected \(what)")
        return passed
    }

    func printResult(_ result: BatchResult) {
        print("Result: \(result.processed) processed, \(result.successCount) succeeded, \(result.failureCount) failed, sum \(result.sum)")
    }

    // MARK: The patterns

    func chunked() async throws -> Bool {
        let count = arguments.items(for: .chunked), chunk = arguments.chunk
        let milliseconds = arguments.millisecondsPerItem ?? 5
        print("== chunked: \(count) items in batches of \(chunk), \(milliseconds) ms each")
        gauge.reset()
        let (metadata, elapsed) = try await run(
            ChunkedOrchestrator.self, input: .init(count: count, chunkSize: chunk, milliseconds: milliseconds), prefix: "chunked")
        let result = try metadata.output(as: BatchResult.self)
        printResult(result)
        let batches = (count + chunk - 1) / chunk
        print("\(batches) batches in \(String(format: "%.2f", seconds(elapsed))) s; at most \(gauge.peak) items ran at once (the worker runs up to 64)")
        return check(
            result.successCount == count && result.sum == sumOfSquares(count) && gauge.peak <= chunk,
            "\(count) succeeded, sum = 1² + … + \(count)² = \(sumOfSquares(count)), at most \(chunk) at once")
    }

    func progress() async throws -> Bool {
        let count = arguments.items(for: .progress)
        let milliseconds = arguments.millisecondsPerItem ?? 100
        print("== progress: \(count) items one after another, \(milliseconds) ms each")
        var percentages: [Int] = []
        let (metadata, elapsed) = try await run(ProgressOrchestrator.self, input: .init(count: count, milliseconds: milliseconds), prefix: "progress") {
            metadata in
            guard let progress = try? metadata.customStatus(as: ProgressOrchestrator.Progress.self) else { return nil }
            if percentages.last != progress.percent { percentages.append(progress.percent) }
            return "\(progress.percent)% (\(progress.done)/\(progress.total))"
        }
        let result = try metadata.output(as: BatchResult.self)
        printResult(result)
        print("Done in \(String(format: "%.2f", seconds(elapsed))) s; the client saw \(percentages.count) different percentages")
        return check(
            result.successCount == count && result.sum == sumOfSquares(count) && percentages.last == 100
                && percentages == percentages.sorted(),
            "\(count) succeeded, sum \(sumOfSquares(count)), progress only going up, ending at 100%")
    }

    func partial() async throws -> Bool {
        let count = arguments.items(for: .partial), every = arguments.failEvery
        print("== partial: \(count) items, every \(every)th corrupt")
        let items = (1...count).map { WorkItem(id: $0, corrupt: $0 % every == 0) }
        let (metadata, _) = try await run(PartialFailureOrchestrator.self, input: items, prefix: "partial")
        let result = try metadata.output(as: BatchResult.self)
        printResult(result)
        for error in result.errors { print("  failed: \(error)") }
        if result.failureCount > result.errors.count { print("  ... \(result.failureCount - result.errors.count) more") }
        let failures = count / every
        // The squares of the multiples of `every`: every² × (1² + … + (count/every)²).
        let expectedSum = sumOfSquares(count) - every * every * sumOfSquares(failures)
        return check(
            result.successCount == count - failures && result.failureCount == failures && result.sum == expectedSum,
            "\(count - failures) succeeded, \(failures) failed, sum of the successes \(expectedSum)")
    }

    func dynamic() async throws -> Bool {
        let count = arguments.items(for: .dynamic)
        print("== dynamic: the work list comes from an activity (batch-\(count))")
        let (metadata, _) = try await run(DynamicOrchestrator.self, input: "batch-\(count)", prefix: "dynamic")
        let result = try metadata.output(as: BatchResult.self)
        printResult(result)
        return check(
            result.successCount == count && result.sum == sumOfSquares(count),
            "the activity listed \(count) items, all succeeded, sum \(sumOfSquares(count))")
    }

    func large() async throws -> Bool {
        let count = arguments.items(for: .large), slice = min(arguments.slice, count)
        let slices = (count + slice - 1) / slice
        print("== large: \(count) items, split over \(slices) sub-orchestrations of \(slice), then as one fan-out")
        let (sliced, slicedTime) = try await run(SlicedOrchestrator.self, input: .init(count: count, sliceSize: slice), prefix: "sliced")
        let slicedResult = try sliced.output(as: BatchResult.self)
        print("  \(slices) sub-orchestrations × \(slice) activities: \(rate(count, slicedTime)), sum \(slicedResult.sum)")
        let (single, singleTime) = try await run(FanOutOrchestrator.self, input: ItemRange(first: 1, count: count), prefix: "single")
        let singleResult = try single.output(as: BatchResult.self)
        print("  one fan-out of \(count) activities: \(rate(count, singleTime)), sum \(singleResult.sum)")
        let expected = sumOfSquares(count)
        return check(
            slicedResult.successCount == count && singleResult.successCount == count
                && slicedResult.sum == expected && singleResult.sum == expected,
            "both ways \(count) succeeded with sum 1² + … + \(count)² = \(expected)")
    }

    func deadline() async throws -> Bool {
        let count = arguments.items(for: .deadline), deadline = arguments.deadlineMilliseconds
        print("== deadline: allOf(\(count) items) raced with a \(deadline) ms timer")
        let items = (1...count).map { WorkItem(id: $0) }
        let (inTime, _) = try await run(DeadlineOrchestrator.self, input: .init(items: items, deadlineMilliseconds: deadline), prefix: "deadline")
        let first = try inTime.output(as: DeadlineOrchestrator.Output.self)
        print(
            first.finished
                ? "  all \(first.completedItems) finished in time, sum \(first.sum ?? 0)"
                : "  gave up: \(first.completedItems) of \(count) had finished")
        // One more item that hangs far past the deadline: the timer wins.
        let hanging = WorkItem(id: count + 1, milliseconds: deadline * 30)
        let (late, lateTime) = try await run(
            DeadlineOrchestrator.self, input: .init(items: items + [hanging], deadlineMilliseconds: deadline), prefix: "deadline")
        let second = try late.output(as: DeadlineOrchestrator.Output.self)
        print(
            second.finished
                ? "  all \(second.completedItems) finished in time, sum \(second.sum ?? 0)"
                : "  gave up after \(String(format: "%.2f", seconds(lateTime))) s: \(second.completedItems) of \(count + 1) had finished")
        return check(
            first.finished && first.sum == sumOfSquares(count)
                && !second.finished && second.completedItems == count && seconds(lateTime) >= Double(deadline) / 1000,
            "the first batch finished in time with sum \(sumOfSquares(count)); the second was given up at the deadline, "
                + "not before, with \(count) of \(count + 1) finished")
    }
}

/// "1.23 s (45678 items/s)".
func rate(_ items: Int, _ duration: Duration) -> String {
    String(format: "%.2f s (%.0f items/s)", seconds(duration), Double(items) / seconds(duration))
}

/// A duration in seconds, for printing.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Deletes a database file and its WAL companions.
func removeDatabase(_ path: String) {
    for suffix in ["", "-wal", "-shm"] {
        try? FileManager.default.removeItem(atPath: path + suffix)
    }
}

/// Runs the patterns asked for on one backend and one worker.
/// - Returns: the exit status: 0 when every check passed.
func runPatterns(_ arguments: Arguments) async throws -> Int32 {
    let backend: any Backend
    var database: SQLiteBackend?
    var temporaryPath: String?
    if arguments.inMemory {
        backend = InMemoryBackend()
        print("Backend: InMemoryBackend")
    } else {
        // Without --db, a fresh file per run, so an earlier run's instances do not get in the way.
        let path =
            arguments.databasePath
            ?? {
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("fanout-patterns-\(getpid()).sqlite").path
                removeDatabase(path)
                temporaryPath = path
                return path
            }()
        let opened = try SQLiteBackend(path: path)
        database = opened
        backend = opened
        print("Backend: SQLiteBackend at \(path)")
    }
    let gauge = InFlightGauge()
    let worker = DurableTaskWorker(backend: backend)
    for orchestrator in [
        ChunkedOrchestrator(), ProgressOrchestrator(), PartialFailureOrchestrator(),
        DynamicOrchestrator(), FanOutOrchestrator(), SlicedOrchestrator(), DeadlineOrchestrator()
    ] as [any Orchestrator] {
        register(orchestrator, on: worker)
    }
    worker.addActivity(ProcessItem(gauge: gauge))
    worker.addActivity(GetWorkItems())
    let running = Task { await worker.run() }

    let runner = Runner(client: DurableTaskClient(backend: backend), gauge: gauge, arguments: arguments)
    let outcome: Result<Int, any Error>
    do {
        var failed = 0
        for pattern in arguments.patterns {
            let passed: Bool
            switch pattern {
            case .chunked: passed = try await runner.chunked()
            case .progress: passed = try await runner.progress()
            case .partial: passed = try await runner.partial()
            case .dynamic: passed = try await runner.dynamic()
            case .large: passed = try await runner.large()
            case .deadline: passed = try await runner.deadline()
            }
            if !passed { failed += 1 }
            print("")
        }
        outcome = .success(failed)
    } catch {
        outcome = .failure(error)
    }
    worker.stop()
    await running.value
    await database?.close()
    if let temporaryPath { removeDatabase(temporaryPath) }
    let failed = try outcome.get()
    if arguments.patterns.count > 1 {
        print(
            failed == 0
                ? "All \(arguments.patterns.count) patterns passed their checks." : "\(failed) of \(arguments.patterns.count) patterns FAILED their checks.")
    }
    return failed == 0 ? 0 : 1
}

/// Registers an orchestrator given as an existential (opening it for the generic call).
func register<O: Orchestrator>(_ orchestrator: O, on worker: DurableTaskWorker) {
    worker.addOrchestrator(orchestrator)
}

/// Writes `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("FanOutPatterns: \(message)\n".utf8))
}

// Line by line, even into a pipe, so progress appears as it happens.
setvbuf(stdout, nil, _IOLBF, 0)

let arguments: Arguments
do {
    arguments = try Arguments.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    printError("\(error)\n\n\(Arguments.usage)")
    exit(2)
}
if arguments.showHelp {
    print(Arguments.usage)
    exit(0)
}
do {
    exit(try await runPatterns(arguments))
} catch {
    printError("\(error)")
    exit(1)
}
