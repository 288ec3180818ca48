@_spi(Backend) import DurableTask
import Foundation

/// The backend's operations as functions of a connection, each run inside one transaction by
/// ``SQLiteBackend`` on the connection's thread.
///
/// Every write has the same shape (as in durabletask-go's SQLite backend): begin, check the lease or
/// the instance's state, run the statements, commit.
enum Store {
    // MARK: Shared pieces

    /// Adds an event to an instance's inbox and lowers the instance's `ready_at` to its visibility.
    static func enqueue(_ c: Connection, _ event: HistoryEvent, instanceID: String, visibleAt: Date) throws {
        try insertInbox(c, event, instanceID: instanceID, visibleAt: visibleAt)
        let ready = try c.cached(Schema.updateReadyAt)
        ready.bind(1, instanceID)
        ready.bind(2, visibleAt)
        try ready.run()
    }

    /// Adds an inbox row without touching `ready_at` (the caller updates it once for many rows).
    static func insertInbox(_ c: Connection, _ event: HistoryEvent, instanceID: String, visibleAt: Date) throws {
        try insertInbox(c, encoded: HistoryEventCodec.encode(event), instanceID: instanceID, visibleAt: visibleAt)
    }

    /// Adds an inbox row whose event the caller encoded (off the writer thread).
    static func insertInbox(_ c: Connection, encoded: [UInt8], instanceID: String, visibleAt: Date) throws {
        let insert = try c.cached(Schema.insertInbox)
        insert.bind(1, instanceID)
        insert.bind(2, encoded)
        insert.bind(3, visibleAt)
        try insert.run()
    }

    /// The status and execution ID of an instance, or `nil` when it does not exist.
    static func instanceStatus(_ c: Connection, _ instanceID: String) throws -> (status: OrchestrationStatus, executionID: String)? {
        let select = try c.cached(Schema.selectInstanceStatus)
        select.bind(1, instanceID)
        return try select.firstRow { () throws -> (OrchestrationStatus, String) in
            (try status(select, 0, instanceID), select.text(1))
        }
    }

    static func status(_ s: Statement, _ column: Int32, _ instanceID: String) throws -> OrchestrationStatus {
        let raw = s.text(column)
        guard let status = OrchestrationStatus(rawValue: raw) else {
            throw DurableTaskError(.corruptData, "instance '\(instanceID)' has an unknown status '\(raw)' in the database")
        }
        return status
    }

    /// Decodes an event column, naming the instance when the bytes are bad.
    static func event(_ s: Statement, _ column: Int32, _ instanceID: String, _ table: String) throws -> HistoryEvent {
        do {
            return try s.withBytes(column) { bytes throws(CodecError) in try HistoryEventCodec.decode(bytes) }
        } catch {
            throw DurableTaskError(.corruptData, "an undecodable \(table) row of instance '\(instanceID)': \(error)")
        }
    }

    static func deleteInstanceRows(_ c: Connection, _ instanceID: String) throws {
        for sql in [Schema.deleteHistory, Schema.deleteInbox, Schema.deleteActivities, Schema.deleteInstance] {
            let delete = try c.cached(sql)
            delete.bind(1, instanceID)
            try delete.run()
        }
    }

    // MARK: Instances

    /// Creates an instance (see ``Backend/createOrchestrationInstance(_:)``).
    static func create(_ c: Connection, _ request: NewOrchestrationInstance, now: Date) throws {
        if try TaskHubRules.checkCreate(request, existing: try instanceStatus(c, request.instanceID)?.status) {
            try deleteInstanceRows(c, request.instanceID)
        }
        try insertInstance(c, request, now: now)
    }

    /// Inserts a new instance's row and its start event (the rules already checked).
    private static func insertInstance(_ c: Connection, _ request: NewOrchestrationInstance, now: Date) throws {
        let insert = try c.cached(Schema.insertInstance)
        insert.bind(1, request.instanceID)
        insert.bind(2, request.name)
        insert.bind(3, request.executionID)
        insert.bind(4, request.input?.data)
        insert.bind(5, now)
        insert.bind(6, request.parent?.instanceID)
        try insert.run()
        try enqueue(c, request.startEvent, instanceID: request.instanceID, visibleAt: TaskHubRules.startVisibility(request, now: now))
    }

    /// Adds an event to a running instance (see ``Backend/addOrchestrationEvent(instanceID:event:)``).
    static func addEvent(_ c: Connection, instanceID: String, event: HistoryEvent, now: Date) throws {
        try TaskHubRules.checkNewEvent(event, instanceID: instanceID, existing: try instanceStatus(c, instanceID)?.status)
        try enqueue(c, event, instanceID: instanceID, visibleAt: now)
    }

    // MARK: Orchestration work items

    /// Leases the next instance with visible inbox events.
    /// - Parameter includeRedelivered: whether an instance whose last lease ended without a result may be
    ///   leased (see ``Backend/getOrchestrationWorkItem(owner:leaseDuration:includeRedelivered:)``).
    static func leaseOrchestration(
        _ c: Connection, owner: String, leaseDuration: Duration, includeRedelivered: Bool,
        now: Date
    ) throws -> OrchestrationWorkItem? {
        // ready_at is kept equal to the earliest inbox visibility, so a ready instance has at least
        // one visible event; the loop only guards against a stale value by repairing it.
        for _ in 0..<16 {
            let select = try c.cached(includeRedelivered ? Schema.selectReadyInstance : Schema.selectReadyFreshInstance)
            select.bind(1, now)
            guard
                let (instanceID, executionID, historyLength, deliveryCount) = try select.firstRow({
                    (select.text(0), select.text(1), select.int(2), select.int(3))
                })
            else { return nil }

            if let item = try lease(
                c, instanceID: instanceID, executionID: executionID, historyLength: historyLength, deliveryCount: deliveryCount,
                owner: owner, leaseDuration: leaseDuration, now: now)
            {
                return item
            }
            let repair = try c.cached(Schema.repairReadyAt)
            repair.bind(1, instanceID)
            try repair.run()
        }
        return nil
    }

    /// Leases an instance found ready with its visible inbox events, or returns `nil` (leasing
    /// nothing) when it has none.
    private static func lease(
        _ c: Connection, instanceID: String, executionID: String, historyLength: Int, deliveryCount: Int,
        owner: String, leaseDuration: Duration, now: Date
    ) throws -> OrchestrationWorkItem? {
        let inbox = try c.cached(Schema.selectVisibleInbox)
        inbox.bind(1, instanceID)
        inbox.bind(2, now)
        var events: [HistoryEvent] = []
        var receipt: Int64 = 0
        try inbox.forEachRow {
            receipt = inbox.int64(0)
            events.append(try event(inbox, 1, instanceID, "inbox"))
        }
        guard !events.isEmpty else { return nil }
        let token = UniqueID.string()
        let lock = try c.cached(Schema.lockInstance)
        lock.bind(1, instanceID)
        lock.bind(2, owner)
        lock.bind(3, token)
        lock.bind(4, now.addingTimeInterval(leaseDuration.timeInterval))
        lock.bind(5, now)
        try lock.run()
        return OrchestrationWorkItem(
            instanceID: instanceID, executionID: executionID, newEvents: events,
            historyLength: historyLength, leaseToken: token,
            deliveryCount: deliveryCount + 1, receipt: receipt)
    }

    /// Commits an episode (see ``Backend/completeOrchestrationWorkItem(_:result:)``).
    /// - Parameter encodedHistory: `result.newHistory`, encoded by the caller so the writer thread
    ///   spends its time on SQLite alone.
    static func complete(
        _ c: Connection, _ item: OrchestrationWorkItem, _ result: OrchestrationWorkItemResult,
        encodedHistory: HistoryRows, leasing lease: ActivityLeaseRequest? = nil, now: Date
    ) throws -> CommittedEpisode {
        let select = try c.cached(Schema.selectInstanceState)
        select.bind(1, item.instanceID)
        guard
            let (token, leaseTime, historyLength) = try select.firstRow({
                (select.optionalText(2), select.optionalDate(3), select.int(4))
            }), token == item.leaseToken
        else {
            throw TaskHubRules.leaseLost(item.instanceID, committing: true)
        }
        let leasedAt = leaseTime ?? now
        try TaskHubRules.checkEpisode(item, result) {
            // The SQL form of TaskHubRules.consumes: a visible row the item did not carry.
            let unconsumed = try c.cached(Schema.selectUnconsumedInbox)
            unconsumed.bind(1, item.instanceID)
            unconsumed.bind(2, now)
            unconsumed.bind(3, item.receipt)
            unconsumed.bind(4, leasedAt)
            return try unconsumed.firstRow({ true }) ?? false
        }
        let commit = TaskHubRules.commit(item, result, now: now)

        // Exactly the rows the item carried (TaskHubRules.consumes).
        let consume = try c.cached(Schema.deleteConsumedInbox)
        consume.bind(1, item.instanceID)
        consume.bind(2, item.receipt)
        consume.bind(3, leasedAt)
        try consume.run()

        var newHistoryLength = historyLength
        if commit.replacesHistory {
            let delete = try c.cached(Schema.deleteHistory)
            delete.bind(1, item.instanceID)
            try delete.run()
            newHistoryLength = 0
        }
        let insertHistory = try c.cached(Schema.insertHistory)
        for row in encodedHistory.rows {
            insertHistory.reset()
            insertHistory.bind(1, item.instanceID)
            insertHistory.bind(2, newHistoryLength + row.first)
            insertHistory.bind(3, row.bytes)
            try insertHistory.run()
        }
        newHistoryLength += encodedHistory.events
        for entry in commit.inbox {
            try insertInbox(c, entry.event, instanceID: item.instanceID, visibleAt: entry.visibleAt)
        }
        var committed = CommittedEpisode()
        if !commit.activities.isEmpty {
            // Looked up once per episode, not per activity (a fan-out inserts thousands).
            let insert = try c.cached(Schema.insertActivity)
            // Leased as leaseActivities leases: the lease's expiry is also when the row shows again.
            let eager = try lease.map { lease in
                (
                    owner: lease.owner, taskIDs: Set(lease.taskIDs), token: UniqueID.string(),
                    expires: now.addingTimeInterval(lease.leaseDuration.timeInterval),
                    insert: try c.cached(Schema.insertLeasedActivity)
                )
            }
            for activity in commit.activities {
                if let eager, eager.taskIDs.contains(activity.taskID) {
                    let leased = eager.insert
                    leased.reset()
                    bindActivity(leased, item, activity)
                    leased.bind(6, eager.expires)
                    leased.bind(7, eager.owner)
                    leased.bind(8, eager.token)
                    try leased.run()
                    committed.leasedActivities.append(
                        ActivityWorkItem(
                            instanceID: item.instanceID, executionID: item.executionID, taskID: activity.taskID,
                            name: activity.name, input: activity.input, leaseToken: eager.token, deliveryCount: 1,
                            receipt: c.lastInsertRowID))
                } else {
                    insert.reset()
                    bindActivity(insert, item, activity)
                    insert.bind(6, now)
                    try insert.run()
                    committed.activitiesLeftForOthers = true
                }
            }
        }
        committed.orchestrationWork = !commit.children.isEmpty
        for child in commit.children {
            let existing = try instanceStatus(c, child.instanceID)?.status
            if let event = TaskHubRules.childConflict(child, existing: existing, now: now) {
                try insertInbox(c, event, instanceID: item.instanceID, visibleAt: now)
            } else {
                if existing != nil { try deleteInstanceRows(c, child.instanceID) }
                try insertInstance(c, child, now: now)
            }
        }
        for message in commit.messages where TaskHubRules.delivers(to: try instanceStatus(c, message.targetInstanceID)?.status) {
            try enqueue(c, message.event, instanceID: message.targetInstanceID, visibleAt: now)
            committed.orchestrationWork = true
        }
        if commit.clearsInbox {
            let clear = try c.cached(Schema.deleteInbox)
            clear.bind(1, item.instanceID)
            try clear.run()
        }

        // Last, so ready_at sees every inbox row added for this instance above.
        if let (executionID, input) = commit.newExecution {
            let update = try c.cached(Schema.updateInstanceContinuedAsNew)
            update.bind(1, item.instanceID)
            update.bind(2, executionID)
            update.bind(3, commit.status.rawValue)
            update.bind(4, input?.data)
            update.bind(5, commit.customStatus?.data)
            update.bind(6, now)
            update.bind(7, commit.completedAt)
            try update.forEachRow { if !update.isNull(0) { committed.orchestrationWork = true } }
        } else {
            let update = try c.cached(Schema.updateInstanceAfterEpisode)
            update.bind(1, item.instanceID)
            update.bind(2, commit.status.rawValue)
            update.bind(3, commit.output?.data)
            if let failure = commit.failure { update.bind(4, HistoryEventCodec.encodeFailure(failure)) } else { update.bindNull(4) }
            update.bind(5, commit.customStatus?.data)
            update.bind(6, now)
            update.bind(7, commit.completedAt)
            update.bind(8, newHistoryLength)
            // Events left in its inbox (arrived during the episode, a timer): the instance has more work.
            try update.forEachRow { if !update.isNull(0) { committed.orchestrationWork = true } }
        }
        return committed
    }

    /// Binds the columns both activity inserts share (`?1` to `?5`).
    private static func bindActivity(_ insert: Statement, _ item: OrchestrationWorkItem, _ activity: ActivityRequest) {
        insert.bind(1, item.instanceID)
        insert.bind(2, item.executionID)
        insert.bind(3, activity.taskID)
        insert.bind(4, activity.name)
        insert.bind(5, activity.input?.data)
    }

    /// What an episode's commit left to do: the activities it leased to the worker that ran it,
    /// whether any are left for the usual leases, and whether an instance has orchestration work
    /// (events left in this one's inbox, a child started, a message sent) — which decides whom to wake.
    struct CommittedEpisode: Sendable {
        var leasedActivities: [ActivityWorkItem] = []
        var activitiesLeftForOthers = false
        var orchestrationWork = false
    }

    /// Releases a lease without consuming events (see ``Backend/abandonOrchestrationWorkItem(_:delay:)``).
    /// - Parameter countsAsDelivery: `false` takes back the count the lease added (a hand-back).
    static func abandon(
        _ c: Connection, _ item: OrchestrationWorkItem, delay: Duration, countsAsDelivery: Bool,
        now: Date
    ) throws {
        let unlock = try c.cached(Schema.unlockInstance)
        unlock.bind(1, item.instanceID)
        // With a delay the instance stays unavailable, leased by nobody, until the back-off is over.
        unlock.bind(2, delay > .zero ? now.addingTimeInterval(delay.timeInterval) : nil)
        unlock.bind(3, item.leaseToken)
        unlock.bind(4, countsAsDelivery ? 0 : 1)
        guard try unlock.runChanges() == 1 else {
            throw TaskHubRules.leaseLost(item.instanceID)
        }
    }

    static func history(_ c: Connection, instanceID: String) throws -> [HistoryEvent] {
        guard try instanceStatus(c, instanceID) != nil else {
            throw TaskHubRules.noHistory(instanceID)
        }
        let select = try c.cached(Schema.selectHistory)
        select.bind(1, instanceID)
        var events: [HistoryEvent] = []
        try select.forEachRow {
            try select.withBytes(0) { bytes in try HistoryEventCodec.decodeHistoryRow(bytes, of: instanceID, into: &events) }
        }
        return events
    }

    // MARK: Activities

    /// Leases up to `maxCount` activities, at most `maxRedelivered` of them redeliveries (see
    /// ``Backend/getActivityWorkItems(owner:maxCount:maxRedelivered:leaseDuration:)``); redeliveries first.
    static func leaseActivities(
        _ c: Connection, owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration,
        now: Date
    ) throws -> [ActivityWorkItem] {
        guard maxCount > 0 else { return [] }
        let token = UniqueID.string()
        var rows: [(id: Int64, item: ActivityWorkItem)] = []
        var previous: ActivityWorkItem?
        func lease(_ sql: String, limit: Int) throws {
            guard limit > 0 else { return }
            let lease = try c.cached(sql)
            lease.bind(1, now)
            lease.bind(2, owner)
            lease.bind(3, token)
            lease.bind(4, now.addingTimeInterval(leaseDuration.timeInterval))
            lease.bind(5, limit)
            var batch: [(id: Int64, item: ActivityWorkItem)] = []
            try lease.forEachRow {
                let item = ActivityWorkItem(
                    instanceID: lease.text(0, reusing: previous?.instanceID),
                    executionID: lease.text(1, reusing: previous?.executionID), taskID: lease.int(2),
                    name: lease.text(3, reusing: previous?.name), input: lease.data(4).map(Payload.init(data:)),
                    leaseToken: token, deliveryCount: lease.int(5), receipt: lease.int64(6))
                previous = item
                batch.append((item.receipt, item))
            }
            // RETURNING gives no order guarantee; hand items out in scheduling order.
            batch.sort { $0.id < $1.id }
            rows += batch
        }
        try lease(Schema.leaseRedeliveredActivities, limit: min(maxCount, max(0, maxRedelivered)))
        try lease(Schema.leaseFreshActivities, limit: maxCount - rows.count)
        return rows.map(\.item)
    }

    /// - Parameter encodedEvents: the completions' events, encoded by the caller (off the writer thread).
    /// Records activity results (see ``Backend/completeActivityWorkItems(_:leasing:)``) and leases what
    /// `lease` asks for of the instances they make ready: any without a live lease, never a
    /// redelivery (one process usually serves the file, and it ran them last).
    static func completeActivities(
        _ c: Connection, _ completions: [ActivityCompletion], encodedEvents: [[UInt8]], leasing lease: OrchestrationLeaseRequest?,
        now: Date
    ) throws -> RecordedActivityResults {
        var instances: [String: (status: OrchestrationStatus, executionID: String)?] = [:]
        var touched: Set<String> = []
        var accepted: [Bool] = []
        accepted.reserveCapacity(completions.count)
        let delete = try c.cached(Schema.deleteCompletedActivity)
        for (completion, encoded) in zip(completions, encodedEvents) {
            let item = completion.item
            delete.reset()
            delete.bind(1, item.receipt)
            delete.bind(2, item.leaseToken)
            guard try delete.runChanges() == 1 else {
                accepted.append(false)
                continue
            }
            let instance: (status: OrchestrationStatus, executionID: String)?
            if let cached = instances[item.instanceID] {
                instance = cached
            } else {
                instance = try instanceStatus(c, item.instanceID)
                instances[item.instanceID] = .some(instance)
            }
            guard TaskHubRules.accepts(completion, instanceStatus: instance?.status, executionID: instance?.executionID) else {
                accepted.append(false)
                continue
            }
            try insertInbox(c, encoded: encoded, instanceID: item.instanceID, visibleAt: now)
            touched.insert(item.instanceID)
            accepted.append(true)
        }
        let ready = try c.cached(Schema.updateReadyAt)
        for instanceID in touched {
            ready.reset()
            ready.bind(1, instanceID)
            ready.bind(2, now)
            try ready.run()
        }
        guard let lease, !touched.isEmpty else { return RecordedActivityResults(accepted: accepted) }
        var leased: [OrchestrationWorkItem] = []
        let select = try c.cached(Schema.selectLeasableInstance)
        for instanceID in touched.sorted() where leased.count < lease.maxCount {
            select.reset()
            select.bind(1, instanceID)
            select.bind(2, now)
            guard let (executionID, historyLength, deliveryCount) = try select.firstRow({ (select.text(0), select.int(1), select.int(2)) }) else {
                continue
            }
            if let item = try self.lease(
                c, instanceID: instanceID, executionID: executionID, historyLength: historyLength, deliveryCount: deliveryCount,
                owner: lease.owner, leaseDuration: lease.leaseDuration, now: now)
            {
                leased.append(item)
            }
        }
        return RecordedActivityResults(accepted: accepted, leased: leased)
    }

    static func abandonActivity(_ c: Connection, _ item: ActivityWorkItem, delay: Duration, now: Date) throws {
        let abandon = try c.cached(Schema.abandonActivity)
        abandon.bind(1, item.receipt)
        abandon.bind(2, item.leaseToken)
        abandon.bind(3, delay > .zero ? now.addingTimeInterval(delay.timeInterval) : now)
        try abandon.run()
    }

    /// Releases every lease of an owner that died, so its work is leased again at once.
    static func releaseLeases(_ c: Connection, owner: String, now: Date) throws -> (instances: Int, activities: Int) {
        let instances = try c.cached(Schema.releaseOwnerInstances)
        instances.bind(1, owner)
        instances.bind(2, now)
        let activities = try c.cached(Schema.releaseOwnerActivities)
        activities.bind(1, owner)
        activities.bind(2, TaskHubRules.releasedActivitiesVisibleAt)
        return (try instances.runChanges(), try activities.runChanges())
    }

    static func renewActivities(_ c: Connection, _ items: [ActivityWorkItem], leaseDuration: Duration, now: Date) throws -> [Bool] {
        let renew = try c.cached(Schema.renewActivity)
        let expires = now.addingTimeInterval(leaseDuration.timeInterval)
        return try items.map { item in
            renew.reset()
            renew.bind(1, item.receipt)
            renew.bind(2, item.leaseToken)
            renew.bind(3, expires)
            return try renew.runChanges() == 1
        }
    }

    // MARK: Queries and purge

    static func metadata(_ s: Statement) throws -> OrchestrationMetadata {
        let instanceID = s.text(0)
        var failure: FailureDetails?
        if !s.isNull(7) {
            do {
                failure = try s.withBytes(7) { bytes throws(CodecError) in try HistoryEventCodec.decodeFailure(bytes) }
            } catch {
                throw DurableTaskError(.corruptData, "undecodable failure details of instance '\(instanceID)': \(error)")
            }
        }
        return OrchestrationMetadata(
            instanceID: instanceID, name: s.text(1), executionID: s.text(2), status: try status(s, 3, instanceID),
            input: s.data(4).map(Payload.init(data:)), output: s.data(5).map(Payload.init(data:)),
            customStatus: s.data(6).map(Payload.init(data:)), failure: failure,
            createdAt: s.date(8), lastUpdatedAt: s.date(9), completedAt: s.optionalDate(10),
            parentInstanceID: s.optionalText(11))
    }

    static func metadata(_ c: Connection, instanceID: String) throws -> OrchestrationMetadata? {
        let select = try c.cached(Schema.selectMetadata)
        select.bind(1, instanceID)
        return try select.firstRow { try metadata(select) }
    }

    /// The metadata of several instances in one statement, in the order asked (`nil` for unknown IDs).
    static func metadata(_ c: Connection, instanceIDs: [String]) throws -> [OrchestrationMetadata?] {
        let select = try c.cached(Schema.selectManyMetadata)
        select.bind(1, try jsonArray(instanceIDs))
        var byID: [String: OrchestrationMetadata] = [:]
        try select.forEachRow {
            let metadata = try metadata(select)
            byID[metadata.instanceID] = metadata
        }
        return instanceIDs.map { byID[$0] }
    }

    /// A marker per existing instance that changes whenever its metadata does (a commit of an episode,
    /// a create, a purge removes the row).
    static func changeMarkers(_ c: Connection, instanceIDs: [String]) throws -> [String: String] {
        let select = try c.cached(Schema.selectChangeMarkers)
        select.bind(1, try jsonArray(instanceIDs))
        var markers: [String: String] = [:]
        try select.forEachRow {
            markers[select.text(0)] = "\(select.text(1)) \(select.double(2)) \(select.int(3)) \(select.text(4))"
        }
        return markers
    }

    private static func jsonArray(_ strings: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(strings), as: UTF8.self)
    }

    static func query(_ c: Connection, _ query: OrchestrationQuery) throws -> OrchestrationQueryResult {
        let statuses = query.statuses.map { $0.map(\.rawValue).sorted() }
        let pageSize = max(1, query.pageSize)
        let select = try c.cached(
            Schema.queryInstances(
                status: statuses?.count, name: query.name != nil, createdFrom: query.createdFrom != nil,
                createdTo: query.createdTo != nil, prefix: query.instanceIDPrefix != nil,
                after: query.continuationToken != nil))
        for (index, status) in (statuses ?? []).enumerated() { select.bind(Int32(20 + index), status) }
        if let name = query.name { select.bind(1, name) }
        if let from = query.createdFrom { select.bind(2, from) }
        if let to = query.createdTo { select.bind(3, to) }
        if let prefix = query.instanceIDPrefix { select.bind(4, prefix) }
        if let token = query.continuationToken { select.bind(5, token) }
        // One extra row says whether there is a next page.
        select.bind(6, pageSize + 1)
        var instances: [OrchestrationMetadata] = []
        try select.forEachRow { instances.append(try metadata(select)) }
        var token: String?
        if instances.count > pageSize {
            instances.removeLast(instances.count - pageSize)
            token = instances.last?.instanceID
        }
        return OrchestrationQueryResult(instances: instances, continuationToken: token)
    }

    static func purge(_ c: Connection, instanceID: String) throws -> Bool {
        guard try TaskHubRules.checkPurge(instanceID: instanceID, existing: try instanceStatus(c, instanceID)?.status) else { return false }
        try deleteInstanceRows(c, instanceID)
        return true
    }

    /// - Returns: the IDs of the purged instances.
    static func purge(_ c: Connection, _ filter: PurgeFilter) throws -> [String] {
        let select = try c.cached(Schema.selectPurgeCandidates)
        var ids: [String] = []
        try select.forEachRow {
            let instanceID = select.text(0)
            if TaskHubRules.purges(filter, status: try status(select, 1, instanceID), createdAt: select.date(2)) {
                ids.append(instanceID)
            }
        }
        for id in ids { try deleteInstanceRows(c, id) }
        return ids
    }

    /// The earliest time at which work of the given kind becomes available, or `nil` when none is pending.
    static func nextDue(_ c: Connection, _ change: BackendChange) throws -> Date? {
        let sql: String
        switch change {
        case .orchestrationWork: sql = Schema.nextOrchestrationWork
        case .activityWork: sql = Schema.nextActivityWork
        case .instanceState: return nil
        }
        let select = try c.cached(sql)
        return try select.firstRow { select.optionalDate(0) } ?? nil
    }
}
