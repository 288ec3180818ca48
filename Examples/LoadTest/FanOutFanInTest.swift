import DurableTask

/// One load-test orchestration's shape: the sample's `iterations` and `parallelActivities`.
struct LoadTestInput: Codable, Sendable {
    /// Sequential rounds.
    var iterations: Int
    /// Activities fanned out, and fanned in, in each round.
    var parallelActivities: Int
}

/// What one load-test orchestration returns.
struct LoadTestOutput: Codable, Sendable {
    /// Activities that ran, over every round.
    var activities: Int
    /// The sum of their results: 1 + 2 + … + activities, when every one returned its number.
    var total: Int
}

/// The orchestration of the microservices sample: `iterations` rounds, one after another; in each, a
/// fan-out to `parallelActivities` activities and a fan-in of their results.
///
/// Activity k (numbered from 1 over all rounds) returns k, so the total has a formula the client checks.
struct FanOutFanInTest: Orchestrator {
    func run(context: OrchestrationContext, input: LoadTestInput) async throws -> LoadTestOutput {
        var output = LoadTestOutput(activities: 0, total: 0)
        for iteration in 0..<input.iterations {
            context.setCustomStatus("iteration \(iteration + 1)/\(input.iterations)")
            let first = iteration * input.parallelActivities + 1
            let futures = (first..<first + input.parallelActivities).map { context.callActivity(SimulatedWork.self, input: $0) }
            let results = try await context.whenAll(futures)
            output.activities += results.count
            output.total += results.reduce(0, +)
        }
        context.setCustomStatus("done")
        return output
    }
}

/// The worker service's activity: pretends to work for a while and returns its number.
struct SimulatedWork: Activity {
    /// How long each activity pretends to take (`worker --ms-per-activity`).
    var milliseconds = 0

    func run(context: ActivityContext, input number: Int) async throws -> Int {
        if milliseconds > 0 {
            // `try?`: a worker that is stopping ends the pause early and still records the result.
            try? await Task.sleep(for: .milliseconds(milliseconds))
        }
        return number
    }
}
