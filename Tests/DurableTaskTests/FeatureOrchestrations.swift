import DurableTask
import Foundation

// Orchestrators and activities the feature tests drive through worker + client.

struct TimerOrchestrator: Orchestrator {
    /// Waits `input` seconds on a durable timer and returns (scheduled fire time, time seen after firing).
    func run(context: OrchestrationContext, input: Double) async throws -> [Double] {
        let fireAt = context.currentDate.addingTimeInterval(input)
        try await context.createTimer(fireAt: fireAt).value
        return [fireAt.timeIntervalSince1970, context.currentDate.timeIntervalSince1970]
    }
}

struct TimeoutRace: Orchestrator {
    /// whenAny(timer, event) as a timeout.
    func run(context: OrchestrationContext, input: Double) async throws -> String {
        let timer = context.createTimer(after: .seconds(input))
        let approval = context.waitForExternalEvent("approval", as: String.self)
        let winner = await context.whenAny(timer, approval)
        return winner == 0 ? "timed out" : "approved by \(try await approval.value)"
    }
}

struct EventCollector: Orchestrator {
    /// Receives `input` events named "item", in order.
    func run(context: OrchestrationContext, input: Int) async throws -> [Int] {
        var received: [Int] = []
        for _ in 0..<input {
            received.append(try await context.waitForExternalEvent("item", as: Int.self).value)
        }
        return received
    }
}

struct EventAfterTimer: Orchestrator {
    /// Waits on a timer first, so an event raised meanwhile must be buffered.
    func run(context: OrchestrationContext, input: Double) async throws -> String {
        try await context.createTimer(after: .seconds(input)).value
        return try await context.waitForExternalEvent("greeting", as: String.self).value
    }
}

struct EventWithTimeout: Orchestrator {
    func run(context: OrchestrationContext, input: Double) async throws -> String {
        do {
            return try await context.waitForExternalEvent("never", as: String.self, timeout: .seconds(input)).value
        } catch let error as DurableTaskError where error.code == .timeout {
            return "timeout: \(error.message)"
        }
    }
}

struct Parent: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        let child = try await context.callSubOrchestrator(SumOfSquares.self, input: input, instanceID: "\(context.instanceID)-child").value
        return child + 1
    }
}

struct FailingChild: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.callActivity(Fail.self, input: input).value
    }
}

struct ParentOfFailingChild: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> String {
        do {
            _ = try await context.callSubOrchestrator(FailingChild.self, input: input).value
            return "no failure"
        } catch let error as TaskFailedError {
            return "child failed: \(error.details.message) / inner: \(error.details.innerFailure?.message ?? "-")"
        }
    }
}

struct WaitsForever: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.waitForExternalEvent("never", as: Int.self).value
    }
}

struct ParentOfWaiter: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.callSubOrchestrator(WaitsForever.self, input: input, instanceID: "\(context.instanceID)-child").value
    }
}

struct Counter: Orchestrator {
    /// Continues as new until the input reaches 5.
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        if input < 5 {
            _ = try await context.callActivity(Square.self, input: input).value
            try context.continueAsNew(input: input + 1)
            return -1
        }
        return input
    }
}

struct EternalAccumulator: Orchestrator {
    /// One event per generation; events raised together are carried into the next generations.
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        let increment = try await context.waitForExternalEvent("inc", as: Int.self).value
        let total = input + increment
        if total >= 6 { return total }
        try context.continueAsNew(input: total)
        return -1
    }
}

/// Fails its first `failures` attempts (per instance, counted in the shared ledger), then succeeds.
struct Flaky: Activity {
    let ledger: Ledger
    func run(context: ActivityContext, input: Int) async throws -> String {
        let attempt = await ledger.record(context.instanceID)
        if attempt <= input { throw Fail.Boom() }
        return "succeeded on attempt \(attempt)"
    }
}

actor Ledger {
    private var counts: [String: Int] = [:]
    func record(_ key: String) -> Int {
        counts[key, default: 0] += 1
        return counts[key, default: 0]
    }
    func count(_ key: String) -> Int { counts[key, default: 0] }
}

struct RetryingOrchestrator: Orchestrator {
    struct Input: Codable, Sendable {
        var failures: Int
        var maxAttempts: Int
        var retryOnlyIfMessageContains: String?
        var overallTimeoutMilliseconds: Int64?
    }
    func run(context: OrchestrationContext, input: Input) async throws -> String {
        let filter = input.retryOnlyIfMessageContains
        let policy = RetryPolicy(
            maxAttempts: input.maxAttempts, firstInterval: .milliseconds(10), backoffCoefficient: 2,
            maxInterval: .milliseconds(40),
            overallTimeout: input.overallTimeoutMilliseconds.map { .milliseconds($0) },
            shouldRetry: { failure in filter.map { failure.message.contains($0) } ?? true })
        do {
            return try await context.callActivity(Flaky.self, input: input.failures, retry: policy).value
        } catch let error as TaskFailedError {
            return "gave up: \(error.details.message)"
        }
    }
}

struct BigPayload: Orchestrator {
    /// Sends an input of `input` bytes to an activity.
    func run(context: OrchestrationContext, input: Int) async throws -> String {
        do {
            _ = try await context.callActivity(Echo.self, input: String(repeating: "x", count: input)).value
            return "sent"
        } catch let error as DurableTaskError {
            return "\(error.code): \(error.message)"
        }
    }
}

struct Echo: Activity {
    func run(context: ActivityContext, input: String) async throws -> String { input }
}

struct Gate: Activity {
    let gate: AsyncGate
    func run(context: ActivityContext, input: Int) async throws -> Int {
        await gate.wait()
        return input
    }
}

/// Holds activities until the test opens it.
actor AsyncGate {
    private var open = false
    /// Whether ``release()`` was called.
    var isOpen: Bool { open }
    private var waiters: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        if open { return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func release() {
        open = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}

struct ProgressOrchestrator: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        context.setCustomStatus("0/2 counted")
        let first = try await context.callActivity(Square.self, input: input).value
        context.setCustomStatus("1/2 counted")
        let second = try await context.callActivity(Gate.self, input: first).value
        context.setCustomStatus("2/2 counted")
        return second
    }
}

struct CatchesFailure: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> String {
        do {
            _ = try await context.callActivity(Fail.self, input: input).value
            return "no failure"
        } catch let error as TaskFailedError {
            return "\(error.taskName) failed: \(error.details.errorType): \(error.details.message)"
        }
    }
}

struct CallsUnknownActivity: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> String {
        do {
            _ = try await context.callActivity("NoSuchActivity", input: input, returning: Int.self).value
            return "no failure"
        } catch let error as TaskFailedError {
            return error.details.message
        }
    }
}

struct Throws: Orchestrator {
    struct Oops: Error, CustomStringConvertible {
        var description: String { "oops from the orchestrator" }
    }
    func run(context: OrchestrationContext, input: Int) async throws -> Int { throw Oops() }
}

struct EchoesBack: Orchestrator {
    /// Sends a small input to an activity that returns `input` bytes.
    func run(context: OrchestrationContext, input: Int) async throws -> String {
        do {
            _ = try await context.callActivity(Inflate.self, input: input).value
            return "no failure"
        } catch let error as TaskFailedError {
            return "failed, retriable \(error.details.isRetriable): \(error.details.message)"
        }
    }
}

struct Inflate: Activity {
    func run(context: ActivityContext, input: Int) async throws -> String { String(repeating: "x", count: input) }
}

struct ReturnsBig: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> String { String(repeating: "x", count: input) }
}

/// Runs longer than its lease; counts how often it starts.
struct Slow: Activity {
    let ledger: Ledger
    func run(context: ActivityContext, input: Int) async throws -> Int {
        _ = await ledger.record("slow-\(context.instanceID)")
        try await Task.sleep(for: .milliseconds(4000))
        return input
    }
}

struct CallsSlow: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.callActivity(Slow.self, input: input).value
    }
}
