/// How an activity or sub-orchestration call is retried when it fails. Retries wait on durable timers,
/// so they survive restarts and never busy-loop.
public struct RetryPolicy: Sendable {
    /// Total attempts, including the first (1 = no retry).
    public var maxAttempts: Int
    /// The wait before the second attempt.
    public var firstInterval: Duration
    /// Each further wait is the previous one times this factor.
    public var backoffCoefficient: Double
    /// No single wait is longer than this.
    public var maxInterval: Duration
    /// No retry starts after this much time has passed since the first attempt was scheduled.
    public var overallTimeout: Duration?
    /// Decides whether a failure is retried; by default every retriable failure is.
    public var shouldRetry: @Sendable (FailureDetails) -> Bool

    /// Creates a policy.
    public init(
        maxAttempts: Int, firstInterval: Duration = .seconds(1), backoffCoefficient: Double = 2,
        maxInterval: Duration = .seconds(3600), overallTimeout: Duration? = nil,
        shouldRetry: @escaping @Sendable (FailureDetails) -> Bool = { _ in true }
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.firstInterval = firstInterval
        self.backoffCoefficient = max(1, backoffCoefficient)
        self.maxInterval = maxInterval
        self.overallTimeout = overallTimeout
        self.shouldRetry = shouldRetry
    }

    /// The wait before attempt `attempt + 1`, after `attempt` failed attempts.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let seconds = firstInterval.timeInterval * pow(backoffCoefficient, Double(max(0, attempt - 1)))
        let capped = min(seconds, maxInterval.timeInterval)
        return .milliseconds(Int64(capped * 1000))
    }
}

import Foundation
