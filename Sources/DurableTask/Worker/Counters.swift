import Synchronization

/// What the worker did, counted without locks (see ``DurableTaskWorker/Statistics``).
final class Counters: Sendable {
    let episodes = Atomic<Int>(0)
    let eventsReplayed = Atomic<Int>(0)
    let eventsApplied = Atomic<Int>(0)
    let activitiesExecuted = Atomic<Int>(0)
    let activityCompletionsFenced = Atomic<Int>(0)

    func snapshot() -> DurableTaskWorker.Statistics {
        .init(
            episodes: episodes.load(ordering: .relaxed), eventsReplayed: eventsReplayed.load(ordering: .relaxed),
            eventsApplied: eventsApplied.load(ordering: .relaxed), activitiesExecuted: activitiesExecuted.load(ordering: .relaxed),
            activityCompletionsFenced: activityCompletionsFenced.load(ordering: .relaxed))
    }
}
