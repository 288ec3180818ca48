import DurableTask
import Foundation

/// What an instance's history says, arranged for people: its tasks with their times, the phases of
/// the run, and what a running instance is waiting for.
///
/// Built in one pass over the history, so a fan-out of 100,000 activities costs a few hundred
/// milliseconds, and every view (web page, JSON, terminal) draws from the same numbers.
///
/// ```swift
/// let summary = InstanceSummary(history: try await client.getHistory(id))
/// for lane in summary.lanes(maxLanes: 40) { print(lane.label, lane.count) }
/// ```
public struct InstanceSummary: Sendable {
    /// One scheduled activity, timer or sub-orchestration and what became of it.
    public struct TaskRun: Sendable {
        /// What kind of task.
        public enum Kind: Sendable, Equatable {
            /// An activity.
            case activity
            /// A durable timer due at the date.
            case timer(fireAt: Date)
            /// A sub-orchestration with this instance ID.
            case subOrchestration(instanceID: String)
        }
        /// Where the task stands.
        public enum State: String, Sendable {
            /// Scheduled, no result yet.
            case pending
            /// Finished successfully (or the timer fired).
            case completed
            /// Failed.
            case failed
        }
        /// The orchestrator's sequence number.
        public var taskID: Int
        /// The activity or orchestrator name (`timer` for timers).
        public var name: String
        /// The kind of task.
        public var kind: Kind
        /// Where it stands.
        public var state: State
        /// When the orchestrator scheduled it.
        public var scheduledAt: Date
        /// When a worker started running it (activities recorded with ``HistoryEvent/startedAt``).
        public var startedAt: Date?
        /// When its result was recorded.
        public var completedAt: Date?
        /// Its input.
        public var input: Payload?
        /// Its output.
        public var output: Payload?
        /// Why it failed.
        public var failure: FailureDetails?
    }

    /// A stretch of the run: the start, a fan-out, a fan-in, a step, the end.
    public struct Phase: Sendable {
        /// What the phase is.
        public enum Kind: String, Sendable {
            /// The instance started.
            case start
            /// One episode scheduled several tasks at once.
            case fanOut
            /// Consecutive episodes that only received results.
            case fanIn
            /// An episode that received and scheduled.
            case step
            /// The instance finished (or continued as new, or was terminated).
            case end
        }
        /// The kind of phase.
        public var kind: Kind
        /// A one-line description for people.
        public var title: String
        /// The episodes (1-based) it spans.
        public var episodes: ClosedRange<Int>
        /// When it began.
        public var start: Date
        /// When it ended.
        public var end: Date
        /// Tasks scheduled in it, per name.
        public var scheduled: [(name: String, count: Int)]
        /// Results received in it.
        public var completed: Int
        /// Failures received in it.
        public var failed: Int
    }

    /// Tasks of one name drawn as one bar when there are too many to draw one each.
    public struct Lane: Sendable {
        /// For example `CountWords #1-#2500` or `CountWords #7`.
        public var label: String
        /// The task name (`timer` for timers; `N other names` for the bar shared by the least used names).
        public var name: String
        /// The tasks in it.
        public var count: Int
        /// How many failed.
        public var failed: Int
        /// How many have no result yet.
        public var pending: Int
        /// The earliest scheduling time.
        public var scheduledAt: Date
        /// The earliest start (scheduling time when start times were not recorded).
        public var startedAt: Date
        /// The latest result, or `nil` while any is pending.
        public var completedAt: Date?
        /// Sum of run times of finished tasks, to show a mean.
        public var totalRunSeconds: Double
        /// The task ID of the first task, for links.
        public var firstTaskID: Int
    }

    /// The history's events, in order.
    public let eventCount: Int
    /// Every task in scheduling order.
    public private(set) var tasks: [TaskRun] = []
    /// The phases of the run, in order.
    public private(set) var phases: [Phase] = []
    /// The first event's time.
    public private(set) var firstEventAt: Date?
    /// The last event's time.
    public private(set) var lastEventAt: Date?
    /// Episodes in the history.
    public private(set) var episodeCount = 0
    /// Instance IDs of sub-orchestrations it created.
    public var children: [String] {
        tasks.compactMap { if case let .subOrchestration(id) = $0.kind { id } else { nil } }
    }
    /// The orchestration's input, from its latest `executionStarted`.
    public private(set) var input: Payload?
    /// External events received, per name.
    public private(set) var eventsRaised: [(name: String, count: Int)] = []

    /// Counts per task state.
    public var counts: (pending: Int, completed: Int, failed: Int) {
        var result = (pending: 0, completed: 0, failed: 0)
        for task in tasks {
            switch task.state {
            case .pending: result.pending += 1
            case .completed: result.completed += 1
            case .failed: result.failed += 1
            }
        }
        return result
    }

    /// Arranges a history.
    public init(history: [HistoryEvent]) {
        eventCount = history.count
        // The executionStarted event carries the client's creation time, earlier than the first episode.
        firstEventAt = history.lazy.map(\.timestamp).min()
        lastEventAt = history.lazy.map(\.timestamp).max()
        var indexByID: [Int: Int] = [:]
        indexByID.reserveCapacity(history.count / 2)
        var raised: [String: Int] = [:]
        var raisedOrder: [String] = []

        struct Episode {
            var number: Int
            var start: Date
            var end: Date
            var scheduled: [String: Int] = [:]
            var scheduledOrder: [String] = []
            var completed = 0
            var failed = 0
            var other = 0
        }
        var episode: Episode?
        var phases: [Phase] = []

        func flush(_ episode: Episode?) {
            guard let episode else { return }
            let scheduled = episode.scheduledOrder.map { (name: $0, count: episode.scheduled[$0] ?? 0) }
            let total = scheduled.reduce(0) { $0 + $1.count }
            let received = episode.completed + episode.failed
            if total == 0, received > 0, episode.other == 0, var last = phases.last, last.kind == .fanIn,
                last.episodes.upperBound == episode.number - 1
            {
                last.episodes = last.episodes.lowerBound...episode.number
                last.end = episode.end
                last.completed += episode.completed
                last.failed += episode.failed
                last.title = Self.fanInTitle(last)
                phases[phases.count - 1] = last
                return
            }
            if total == 0, received == 0 { return }
            var phase = Phase(
                kind: total > 1 ? .fanOut : (total == 0 ? .fanIn : .step), title: "",
                episodes: episode.number...episode.number, start: episode.start, end: episode.end,
                scheduled: scheduled, completed: episode.completed, failed: episode.failed)
            if phase.kind == .fanIn && episode.other > 0 { phase.kind = .step }
            switch phase.kind {
            case .fanIn: phase.title = Self.fanInTitle(phase)
            default:
                let what = scheduled.map { "\(DashboardFormat.count($0.count)) × \($0.name)" }.joined(separator: ", ")
                let got = received > 0 ? "received \(Self.results(phase.completed, phase.failed)); " : ""
                phase.title = (phase.kind == .fanOut ? "Fan-out: " : "Step: ") + got + (what.isEmpty ? "scheduled nothing" : "scheduled \(what)")
            }
            phases.append(phase)
        }

        for event in history {
            if let current = episode { episode?.end = max(current.end, event.timestamp) }
            switch event.kind {
            case .orchestratorStarted:
                flush(episode)
                episodeCount += 1
                episode = Episode(number: episodeCount, start: event.timestamp, end: event.timestamp)
            case let .executionStarted(name, _, input, _, _):
                self.input = input
                phases.append(
                    Phase(
                        kind: .start, title: "Started \(name)", episodes: max(1, episodeCount)...max(1, episodeCount),
                        start: event.timestamp, end: event.timestamp, scheduled: [], completed: 0, failed: 0))
            case let .taskScheduled(name, input):
                indexByID[event.eventID] = tasks.count
                tasks.append(
                    TaskRun(
                        taskID: event.eventID, name: name, kind: .activity, state: .pending, scheduledAt: event.timestamp,
                        input: input))
                if episode?.scheduled[name] == nil { episode?.scheduledOrder.append(name) }
                episode?.scheduled[name, default: 0] += 1
            case let .timerCreated(fireAt):
                indexByID[event.eventID] = tasks.count
                tasks.append(TaskRun(taskID: event.eventID, name: "timer", kind: .timer(fireAt: fireAt), state: .pending, scheduledAt: event.timestamp))
                if episode?.scheduled["timer"] == nil { episode?.scheduledOrder.append("timer") }
                episode?.scheduled["timer", default: 0] += 1
            case let .subOrchestrationCreated(name, instanceID, input):
                indexByID[event.eventID] = tasks.count
                tasks.append(
                    TaskRun(
                        taskID: event.eventID, name: name, kind: .subOrchestration(instanceID: instanceID), state: .pending,
                        scheduledAt: event.timestamp, input: input))
                if episode?.scheduled[name] == nil { episode?.scheduledOrder.append(name) }
                episode?.scheduled[name, default: 0] += 1
            case let .taskCompleted(id, result), let .subOrchestrationCompleted(id, result):
                if let index = indexByID[id] {
                    tasks[index].state = .completed
                    tasks[index].completedAt = event.timestamp
                    tasks[index].startedAt = event.startedAt
                    tasks[index].output = result
                }
                episode?.completed += 1
            case let .taskFailed(id, failure), let .subOrchestrationFailed(id, failure):
                if let index = indexByID[id] {
                    tasks[index].state = .failed
                    tasks[index].completedAt = event.timestamp
                    tasks[index].startedAt = event.startedAt
                    tasks[index].failure = failure
                }
                episode?.failed += 1
            case let .timerFired(id, _):
                if let index = indexByID[id] {
                    tasks[index].state = .completed
                    tasks[index].completedAt = event.timestamp
                }
                episode?.completed += 1
            case let .eventRaised(name, _):
                if raised[name] == nil { raisedOrder.append(name) }
                raised[name, default: 0] += 1
                episode?.other += 1
            case let .executionCompleted(status, _, _):
                flush(episode)
                episode = nil
                phases.append(
                    Phase(
                        kind: .end, title: "Finished: \(status.rawValue)", episodes: max(1, episodeCount)...max(1, episodeCount),
                        start: event.timestamp, end: event.timestamp, scheduled: [], completed: 0, failed: 0))
            case .continuedAsNew:
                flush(episode)
                episode = nil
                phases.append(
                    Phase(
                        kind: .end, title: "Continued as new", episodes: max(1, episodeCount)...max(1, episodeCount),
                        start: event.timestamp, end: event.timestamp, scheduled: [], completed: 0, failed: 0))
            case .executionSuspended, .executionResumed, .executionTerminated, .eventSent, .versionMarker:
                episode?.other += 1
            case .orchestratorCompleted:
                break
            }
        }
        flush(episode)
        self.phases = phases
        eventsRaised = raisedOrder.map { ($0, raised[$0] ?? 0) }
    }

    private static func results(_ completed: Int, _ failed: Int) -> String {
        let total = completed + failed
        let noun = total == 1 ? "result" : "results"
        return failed > 0 ? "\(DashboardFormat.count(total)) \(noun) (\(DashboardFormat.count(failed)) failed)" : "\(DashboardFormat.count(total)) \(noun)"
    }

    private static func fanInTitle(_ phase: Phase) -> String {
        let count = phase.episodes.count
        return "Fan-in: received \(results(phase.completed, phase.failed)) in \(DashboardFormat.count(count)) episode\(count == 1 ? "" : "s")"
    }

    /// What a running instance waits for, one line each (empty when nothing is pending).
    public var waitingFor: [String] {
        var activities: [String: Int] = [:]
        var order: [String] = []
        var lines: [String] = []
        for task in tasks where task.state == .pending {
            switch task.kind {
            case .activity:
                if activities[task.name] == nil { order.append(task.name) }
                activities[task.name, default: 0] += 1
            case let .timer(fireAt):
                lines.append("timer #\(task.taskID) due \(DashboardFormat.timestamp(fireAt))")
            case let .subOrchestration(id):
                lines.append("sub-orchestration \(task.name) '\(id)'")
            }
        }
        let activityLines = order.map { name -> String in
            let n = activities[name] ?? 0
            return "\(DashboardFormat.count(n)) × activity \(name)"
        }
        return activityLines + lines
    }

    /// The tasks in at most `maxLanes` bars (at least one), whatever their number or order.
    ///
    /// One bar per task when they fit. Otherwise tasks are grouped by name (in order of first
    /// appearance) and each name's tasks, in scheduling order, are cut into consecutive bars; each name
    /// gets bars in proportion to its share of the tasks, and at least one. So a fan-out of 100,000 is
    /// 60 bars of about 1,700, and names or timers that interleave (A, B, A, B, …) still make one
    /// group each rather than one bar per task. When there are more names than bars, the least used
    /// names share the last bar.
    public func lanes(maxLanes: Int) -> [Lane] {
        guard !tasks.isEmpty else { return [] }
        let maxLanes = max(1, maxLanes)
        if tasks.count <= maxLanes {
            return tasks.indices.map { lane(of: [$0], name: tasks[$0].name) }
        }
        var order: [String] = []
        var members: [String: [Int]] = [:]
        for (index, task) in tasks.enumerated() {
            if members[task.name] == nil { order.append(task.name) }
            members[task.name, default: []].append(index)
        }
        var groups = order.map { (name: $0, indices: members[$0] ?? []) }
        if groups.count > maxLanes {
            // Keep the most used names (first appearance breaks ties, so the result is stable).
            let ranked = groups.indices.sorted {
                groups[$0].indices.count != groups[$1].indices.count ? groups[$0].indices.count > groups[$1].indices.count : $0 < $1
            }
            let kept = Set(ranked.prefix(maxLanes - 1))
            let rest = groups.indices.filter { !kept.contains($0) }
            let restIndices = rest.flatMap { groups[$0].indices }.sorted()
            groups = groups.indices.filter { kept.contains($0) }.map { groups[$0] }
            groups.append((name: "\(DashboardFormat.count(rest.count)) other names", indices: restIndices))
        }
        let spare = maxLanes - groups.count
        var lanes: [Lane] = []
        for group in groups {
            let budget = 1 + spare * group.indices.count / tasks.count
            let size = (group.indices.count + budget - 1) / budget
            var start = 0
            while start < group.indices.count {
                let end = min(start + size, group.indices.count)
                lanes.append(lane(of: group.indices[start..<end], name: group.name))
                start = end
            }
        }
        return lanes
    }

    /// One bar for the tasks at these indices (in scheduling order).
    private func lane(of indices: some Collection<Int>, name: String) -> Lane {
        let first = tasks[indices[indices.startIndex]]
        var lane = Lane(
            label: "", name: name, count: 0, failed: 0, pending: 0, scheduledAt: first.scheduledAt,
            startedAt: first.startedAt ?? first.scheduledAt, completedAt: nil, totalRunSeconds: 0,
            firstTaskID: first.taskID)
        var lastTaskID = first.taskID
        for index in indices {
            let task = tasks[index]
            lane.count += 1
            lane.scheduledAt = min(lane.scheduledAt, task.scheduledAt)
            lane.startedAt = min(lane.startedAt, task.startedAt ?? task.scheduledAt)
            switch task.state {
            case .pending: lane.pending += 1
            case .failed: lane.failed += 1
            case .completed: break
            }
            if let done = task.completedAt {
                lane.totalRunSeconds += done.timeIntervalSince(task.startedAt ?? task.scheduledAt)
                lane.completedAt = max(lane.completedAt ?? done, done)
            }
            lastTaskID = task.taskID
        }
        if lane.pending > 0 { lane.completedAt = nil }
        lane.label = lane.count == 1 ? "\(name) #\(first.taskID)" : "\(name) #\(first.taskID)–#\(lastTaskID)"
        return lane
    }

    /// How many activities ran in each of `buckets` equal slices of `[from, to]`: the shape of a fan-out
    /// at a glance, computed in O(tasks + buckets).
    public func concurrency(buckets: Int, from: Date, to: Date) -> [Int] {
        let span = max(to.timeIntervalSince(from), 0.000_001)
        var diff = [Int](repeating: 0, count: buckets + 1)
        func bucket(_ date: Date) -> Int { min(buckets - 1, max(0, Int(date.timeIntervalSince(from) / span * Double(buckets)))) }
        for task in tasks where task.kind == .activity {
            let start = task.startedAt ?? task.scheduledAt
            let end = task.completedAt ?? to
            diff[bucket(start)] += 1
            diff[bucket(end) + 1] -= 1
        }
        var result: [Int] = []
        result.reserveCapacity(buckets)
        var running = 0
        for i in 0..<buckets {
            running += diff[i]
            result.append(running)
        }
        return result
    }
}
