import DurableTask
import Foundation
import Testing

/// The backend conformance suite as a callable: every rule of the ``DurableTask/Backend`` contract
/// (creation, leases and fencing, atomic episodes, activity results recorded once, timers, redelivery
/// limits, queries, purge, continue-as-new, wake-ups), for any backend.
///
/// A backend author runs it from their own tests, the way this package runs it for its in-memory and
/// SQLite backends:
///
/// ```swift
/// import DurableTaskTesting
/// import Testing
///
/// @Test(arguments: BackendConformance.checks)
/// func conformance(_ check: BackendConformance.Check) async throws {
///     try await check.run { clock in try MyBackend(clock: clock) }
/// }
/// ```
///
/// Each check makes a fresh backend with the factory, drives it with a ``DurableTask/ManualClock`` and
/// records failures with Swift Testing's `#expect`, so they show up in the calling test.
public enum BackendConformance {
    /// One rule of the contract, checked on a fresh backend.
    public struct Check: Sendable, CustomTestStringConvertible {
        /// The check's name, e.g. `activityResultIsRecordedOnce`.
        public let name: String
        private let body: @Sendable (BackendHarness) async throws -> Void

        init(_ name: String, _ body: @escaping @Sendable (BackendHarness) async throws -> Void) {
            self.name = name
            self.body = body
        }

        /// How Swift Testing names the check in its output.
        public var testDescription: String { name }

        /// Runs the check on a backend the factory makes for the given clock; times, timers and lease
        /// expiry must follow that clock.
        public func run(_ makeBackend: @Sendable (ManualClock) async throws -> any Backend) async throws {
            let clock = ManualClock()
            try await body(BackendHarness(backend: try await makeBackend(clock), clock: clock))
        }
    }

    /// Every check, in a stable order.
    public static let checks: [Check] = [
        Check("createdInstanceIsPendingAndDuplicateIsRejected", createdInstanceIsPendingAndDuplicateIsRejected),
        Check("replaceIfFinishedReplacesAFinishedInstance", replaceIfFinishedReplacesAFinishedInstance),
        Check("workItemCarriesAllInboxEvents", workItemCarriesAllInboxEvents),
        Check("completeAppendsHistoryAndEnqueuesActivities", completeAppendsHistoryAndEnqueuesActivities),
        Check("episodeCommitLeasesTheActivitiesAskedFor", episodeCommitLeasesTheActivitiesAskedFor),
        Check("expiredLeaseIsTakenOverAndTheFirstOwnerLosesIt", expiredLeaseIsTakenOverAndTheFirstOwnerLosesIt),
        Check("activityResultIsRecordedOnce", activityResultIsRecordedOnce),
        Check("resultCommitLeasesOnlyWhatItMadeReady", resultCommitLeasesOnlyWhatItMadeReady),
        Check("completionForAStaleExecutionIsFencedOff", completionForAStaleExecutionIsFencedOff),
        Check("abandonRedeliversTheEvents", abandonRedeliversTheEvents),
        Check("abandonedActivityIsRedeliveredAfterTheDelay", abandonedActivityIsRedeliveredAfterTheDelay),
        Check("handingActivitiesBackDoesNotCountTowardTheDeliveryLimit", handingActivitiesBackDoesNotCountTowardTheDeliveryLimit),
        Check("orchestrationHandBackIsUncountedAndAFailedDeliveryCounts", orchestrationHandBackIsUncountedAndAFailedDeliveryCounts),
        Check("redeliveriesAreLeasedOnlyWhenAsked", redeliveriesAreLeasedOnlyWhenAsked),
        Check("activityLeaseTakesAtMostTheAskedNumberOfRedeliveries", activityLeaseTakesAtMostTheAskedNumberOfRedeliveries),
        Check("orchestrationBatchLeasesDistinctInstancesWithinItsLimits", orchestrationBatchLeasesDistinctInstancesWithinItsLimits),
        Check("timersAreInvisibleUntilDue", timersAreInvisibleUntilDue),
        Check("eventIsNotHeldBackByAPendingTimer", eventIsNotHeldBackByAPendingTimer),
        Check("scheduledStartIsInvisibleUntilDue", scheduledStartIsInvisibleUntilDue),
        Check("addingEventsChecksTheInstance", addingEventsChecksTheInstance),
        Check("queryFiltersAndPages", queryFiltersAndPages),
        Check("purgeDeletesOnlyFinishedInstances", purgeDeletesOnlyFinishedInstances),
        Check("metadataRecordsTheOutcome", metadataRecordsTheOutcome),
        Check("continueAsNewResetsHistory", continueAsNewResetsHistory),
        Check("subOrchestrationsAndMessages", subOrchestrationsAndMessages),
        Check("waitForChangeWakesOnNewWorkAndTimesOut", waitForChangeWakesOnNewWorkAndTimesOut),
        Check("finishingEpisodeIsRejectedWhenEventsArrivedMeanwhile", finishingEpisodeIsRejectedWhenEventsArrivedMeanwhile)

    ]
}
