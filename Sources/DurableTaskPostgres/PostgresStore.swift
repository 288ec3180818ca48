@_spi(Backend) import DurableTask
import Foundation

/// The backend's operations as functions of a connection, each run inside one transaction by
/// ``PostgresBackend`` on a connection thread. The rules are ``TaskHubRules``'; this type reads the
/// facts they need and stores what they decide.
///
/// Every write has the same shape: begin, lock the rows involved (the instance's row first, see
/// ``PostgresSchema``), check the lease or the instance's state, run the statements, commit.
struct PostgresStore: Sendable {
    let sql: PostgresSchema

    // MARK: Shared pieces

    typealias InstanceState = (status: OrchestrationStatus, executionID: String)

    /// One activity lease: a row and the token it was leased with (an item leased again has a new token).
    struct Lease: Hashable {
        var receipt: Int64
        var token: String
    }

    func status(_ raw: String, _ instanceID: String) throws -> OrchestrationStatus {
        guard let status = OrchestrationStatus(rawValue: raw) else {
            throw DurableTaskError(.corruptData, "instance '\(instanceID)' has an unknown status '\(raw)' in the database")
        }
        return status
    }

    /// The status and execution ID of an instance, or `nil` when it does not exist.
    /// - Parameter lock: whether to lock the row for the rest of the transaction (before inbox inserts).
    func instanceState(_ c: PostgresConnection, _ instanceID: String, lock: Bool = false) throws -> InstanceState? {
        let rows = try c.query(lock ? sql.selectInstanceStatusForUpdate : sql.selectInstanceStatus, [.text(instanceID)])
        guard rows.count > 0 else { return nil }
        return (try status(rows.text(0, 0), instanceID), rows.text(0, 1))
    }

    /// The states in the rows of ``PostgresSchema/lockInstances`` (which locks several instances' rows
    /// in ID order), by instance ID.
    func instanceStates(_ rows: PostgresRows) throws -> [String: InstanceState] {
        var states: [String: InstanceState] = [:]
        for row in 0..<rows.count {
            let id = rows.text(row, 0)
            states[id] = (try status(rows.text(row, 1), id), rows.text(row, 2))
        }
        return states
    }

    /// Decodes an event column, naming the instance when the bytes are bad.
    func event(_ rows: PostgresRows, _ row: Int, _ column: Int, _ instanceID: String, _ table: String) throws -> HistoryEvent {
        do {
            return try rows.withBytes(row, column) { bytes throws(CodecError) in try HistoryEventCodec.decode(bytes) }
        } catch {
            throw DurableTaskError(.corruptData, "an undecodable \(table) row of instance '\(instanceID)': \(error)")
        }
    }

    /// Adds inbox rows (the instances' rows already locked) and lowers their instances' `ready_at`.
    func insertInbox(_ c: PostgresConnection, _ entries: [(instanceID: String, event: [UInt8], visibleAt: Date)]) throws {
        try c.pipeline(inboxInsertion(entries))
    }

    /// The statements of ``insertInbox(_:_:)``: the rows in one insert, then one `ready_at` update per
    /// distinct visibility (usually one: now).
    func inboxInsertion(_ entries: [(instanceID: String, event: [UInt8], visibleAt: Date)]) -> [PostgresStatement] {
        guard !entries.isEmpty else { return [] }
        var statements = [
            PostgresStatement(
                sql.insertInbox,
                [
                    .textArray(entries.map(\.instanceID)), .bytesArray(entries.map(\.event)),
                    .doubleArray(entries.map(\.visibleAt.timeIntervalSinceReferenceDate))
                ])
        ]
        var earliest: [String: Date] = [:]
        for entry in entries { earliest[entry.instanceID] = min(earliest[entry.instanceID] ?? entry.visibleAt, entry.visibleAt) }
        for (visibleAt, group) in Dictionary(grouping: earliest, by: \.value) {
            statements.append(PostgresStatement(sql.updateReadyAt, [.textArray(group.map(\.key).sorted()), .double(visibleAt.timeIntervalSinceReferenceDate)]))
        }
        return statements
    }

    func deleteInstanceRows(_ c: PostgresConnection, _ instanceID: String) throws {
        try c.pipeline(instanceRowDeletions(instanceID))
    }

    /// The statements that delete every row of an instance.
    func instanceRowDeletions(_ instanceID: String) -> [PostgresStatement] {
        [sql.deleteHistory, sql.deleteInbox, sql.deleteActivities, sql.deleteInstance].map { PostgresStatement($0, [.text(instanceID)]) }
    }

    // MARK: Instances

    /// Creates an instance (see ``Backend/createOrchestrationInstance(_:)``).
    func create(_ c: PostgresConnection, _ request: NewOrchestrationInstance, now: Date) throws {
        if try TaskHubRules.checkCreate(request, existing: try instanceState(c, request.instanceID, lock: true)?.status) {
            try deleteInstanceRows(c, request.instanceID)
        }
        // Two creators of one new ID: the second insert fails with a unique violation, and the pool
        // runs this transaction again, which then sees the instance and applies the rule.
        try insertInstance(c, request, now: now)
    }

    /// Inserts a new instance's row (locked by the insert) and its start event.
    private func insertInstance(_ c: PostgresConnection, _ request: NewOrchestrationInstance, now: Date) throws {
        try c.pipeline(
            [instanceInsertion(request, now: now)]
                + inboxInsertion([(request.instanceID, HistoryEventCodec.encode(request.startEvent), TaskHubRules.startVisibility(request, now: now))]))
    }

    /// The statement that inserts a new instance's row (its start event goes in the inbox beside it).
    private func instanceInsertion(_ request: NewOrchestrationInstance, now: Date) -> PostgresStatement {
        PostgresStatement(
            sql.insertInstance,
            [
                .text(request.instanceID), .text(request.name), .text(request.executionID), request.input.map { .data($0.data) } ?? .null,
                .double(now.timeIntervalSinceReferenceDate), request.parent.map { .text($0.instanceID) } ?? .null
            ])
    }

    /// Adds an event to a running instance (see ``Backend/addOrchestrationEvent(instanceID:event:)``).
    func addEvent(_ c: PostgresConnection, instanceID: String, event: HistoryEvent, now: Date) throws {
        try TaskHubRules.checkNewEvent(event, instanceID: instanceID, existing: try instanceState(c, instanceID, lock: true)?.status)
        try insertInbox(c, [(instanceID, HistoryEventCodec.encode(event), now)])
    }

    // MARK: Orchestration work items

    /// Leases up to `maxCount` instances with visible inbox events, at most `maxRedelivered` of them
    /// redeliveries (leased first), skipping instances other transactions hold. Each batch is one round
    /// trip: the lease and the read of the leased instances' events, pipelined.
    func leaseOrchestrations(
        _ c: PostgresConnection, owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration, now: Date
    ) throws -> [OrchestrationWorkItem] {
        let t = now.timeIntervalSinceReferenceDate
        var items: [OrchestrationWorkItem] = []
        var redeliveriesLeft = min(maxRedelivered, maxCount)
        // A stale ready_at (an instance with nothing visible) took a place in the batch: look again
        // for the places it took, a bounded number of times.
        for _ in 0..<16 where items.count < maxCount {
            // A token per batch, as for activities: it fences each instance's row (a later lease writes
            // another) and tells the inbox read which rows this statement leased.
            let token = UniqueID.string()
            let results = try c.pipeline([
                PostgresStatement(
                    sql.leaseInstances,
                    [
                        .double(t), .text(owner), .text(token), .double(t + leaseDuration.timeInterval), .int(Int64(maxCount - items.count)),
                        .int(Int64(redeliveriesLeft)), .double(t - PostgresSchema.stickyFor)
                    ]),
                PostgresStatement(sql.selectLeasedInbox, [.double(t), .text(owner), .text(token)])
            ])
            let leased = try workItems(instances: results[0], inbox: results[1], token: token)
            items += leased.items
            redeliveriesLeft -= leased.redeliveries
            try c.pipeline(leased.stale.map { PostgresStatement(sql.unleaseStaleInstance, [.text($0)]) })
            if leased.stale.isEmpty { break }
        }
        return items
    }

    /// The work items of the instances a lease statement returned (`instance_id, execution_id,
    /// history_length, dequeue_count`) with their inbox rows (``PostgresSchema/selectLeasedInbox``);
    /// `stale`, the leased instances without a visible event.
    private func workItems(
        instances: PostgresRows, inbox: PostgresRows, token: String
    ) throws -> (items: [OrchestrationWorkItem], stale: [String], redeliveries: Int) {
        // In ID order per instance (the rows come unordered): the events' order, and the receipt last.
        var rows: [String: [(id: Int64, row: Int)]] = [:]
        for row in 0..<inbox.count { rows[inbox.text(row, 0), default: []].append((inbox.int64(row, 1), row)) }
        var events: [String: (events: [HistoryEvent], receipt: Int64)] = [:]
        for (instanceID, entries) in rows {
            let sorted = entries.sorted { $0.id < $1.id }
            events[instanceID] = (try sorted.map { try event(inbox, $0.row, 2, instanceID, "inbox") }, sorted.last?.id ?? 0)
        }
        var items: [OrchestrationWorkItem] = []
        var stale: [String] = []
        var redeliveries = 0
        for row in 0..<instances.count {
            let instanceID = instances.text(row, 0)
            let deliveryCount = instances.int(row, 3)
            if Redelivery.isRedelivery(leasedCount: deliveryCount) { redeliveries += 1 }
            guard let found = events[instanceID] else {
                stale.append(instanceID)
                continue
            }
            items.append(
                OrchestrationWorkItem(
                    instanceID: instanceID, executionID: instances.text(row, 1), newEvents: found.events,
                    historyLength: instances.int(row, 2), leaseToken: token, deliveryCount: deliveryCount, receipt: found.receipt))
        }
        return (items, stale, redeliveries)
    }

    /// What an episode commit left to do, for the wake-ups in this process.
    struct Committed: Sendable {
        /// The activities leased to the worker that ran the episode (eager dispatch).
        var leasedActivities: [ActivityWorkItem] = []
        /// Whether activities are left for the usual leases (which wakes the activity fetchers).
        var activitiesLeftForOthers = false
        /// Whether an instance has orchestration work now: events left in this one's inbox, a child
        /// started, a message sent.
        var orchestrationWork = false
    }

    /// Commits an episode (see ``Backend/completeOrchestrationWorkItem(_:result:)``) in two round trips,
    /// its transaction's BEGIN and COMMIT included: one reads what the rules need (the instance's row,
    /// locked, and the rows of the other instances it starts or messages), one writes everything, sends
    /// the notification and commits. Nothing may run after it in the transaction.
    /// - Parameters:
    ///   - encodedHistory: `result.newHistory`, encoded by the caller off the connection thread.
    ///   - notification: the `NOTIFY` payload for activities left for others and the instances the
    ///     commit changed; the orchestration work it leaves, and whose it is, the server adds from the
    ///     rows the writes left (`PostgresSchema.notifyReady`).
    func complete(
        _ c: PostgresConnection, _ item: OrchestrationWorkItem, _ result: OrchestrationWorkItemResult,
        encodedHistory: HistoryRows, leasing lease: ActivityLeaseRequest? = nil, now: Date,
        notification: (_ activities: Bool, _ instances: [String]) -> String
    ) throws -> Committed {
        let t = now.timeIntervalSinceReferenceDate
        var committed = Committed()
        let commit = TaskHubRules.commit(item, result, now: now)
        // Children and message targets are locked together, in ID order (no deadlock between two
        // episodes that message each other), after the instance's own row.
        let others = Set(commit.children.map(\.instanceID) + commit.messages.map(\.targetInstanceID)).subtracting([item.instanceID])

        // Read: the instance's row (locked: no inbox insert for it runs until this commits), whether
        // an ending episode left events behind (TaskHubRules.consumes in SQL), the other rows.
        var reads = [PostgresStatement(sql.selectInstanceState, [.text(item.instanceID)])]
        let asksUnconsumed = result.status.isTerminal
        if asksUnconsumed { reads.append(PostgresStatement(sql.selectUnconsumedInbox, [.text(item.instanceID), .double(t), .int(item.receipt)])) }
        if !others.isEmpty { reads.append(PostgresStatement(sql.lockInstances, [.textArray(others.sorted())])) }
        let read = try c.pipeline(reads)
        let state = read[0]
        guard state.count > 0, state.optionalText(0, 0) == item.leaseToken else {
            throw TaskHubRules.leaseLost(item.instanceID, committing: true)
        }
        let leasedAt = state.optionalDate(0, 1) ?? now
        let historyLength = state.int(0, 2)
        // Its status before this episode, as a message to itself sees it.
        let ownStatus = try status(state.text(0, 3), item.instanceID)
        try TaskHubRules.checkEpisode(item, result) { asksUnconsumed && read[1].count > 0 }
        var states = try others.isEmpty ? [:] : read.last.map(instanceStates) ?? [:]

        // Write, in the order the rules need: the consumed inbox rows and the history first, the
        // instance's row last (its ready_at sees every inbox row added for it).
        var writes = [
            PostgresStatement(sql.deleteConsumedInbox, [.text(item.instanceID), .int(item.receipt), .double(leasedAt.timeIntervalSinceReferenceDate)])
        ]
        var newHistoryLength = historyLength
        if commit.replacesHistory {
            writes.append(PostgresStatement(sql.deleteHistory, [.text(item.instanceID)]))
            newHistoryLength = 0
        }
        if !encodedHistory.rows.isEmpty {
            writes.append(
                PostgresStatement(
                    sql.insertHistory,
                    [
                        .text(item.instanceID), .int(Int64(newHistoryLength)), .intArray(encodedHistory.rows.map { Int64($0.first) }),
                        .bytesArray(encodedHistory.rows.map(\.bytes))
                    ]))
            newHistoryLength += encodedHistory.events
        }
        let eager = Set(lease?.taskIDs ?? [])
        let (leased, rest) = commit.activities.reduce(into: ([ActivityRequest](), [ActivityRequest]())) {
            if eager.contains($1.taskID) { $0.0.append($1) } else { $0.1.append($1) }
        }
        if !rest.isEmpty {
            writes.append(
                PostgresStatement(
                    sql.insertActivities,
                    [
                        .text(item.instanceID), .text(item.executionID), .intArray(rest.map { Int64($0.taskID) }),
                        .textArray(rest.map(\.name)), .dataArray(rest.map { $0.input?.data }), .double(t)
                    ]))
            committed.activitiesLeftForOthers = true
        }
        // Leased as leaseActivities leases: the lease's expiry is also when the row shows again.
        let eagerToken = UniqueID.string()
        var leasedIndex: Int?
        if let lease, !leased.isEmpty {
            leasedIndex = writes.count
            writes.append(
                PostgresStatement(
                    sql.insertLeasedActivities,
                    [
                        .text(item.instanceID), .text(item.executionID), .intArray(leased.map { Int64($0.taskID) }),
                        .textArray(leased.map(\.name)), .dataArray(leased.map { $0.input?.data }),
                        .double(t + lease.leaseDuration.timeInterval), .text(lease.owner), .text(eagerToken)
                    ]))
        }
        var inbox: [(instanceID: String, event: [UInt8], visibleAt: Date)] = commit.inbox.map {
            (item.instanceID, HistoryEventCodec.encode($0.event), $0.visibleAt)
        }
        var woken: [String] = []
        for child in commit.children {
            let existing = states[child.instanceID]?.status
            if let event = TaskHubRules.childConflict(child, existing: existing, now: now) {
                inbox.append((item.instanceID, HistoryEventCodec.encode(event), now))
            } else {
                if existing != nil { writes += instanceRowDeletions(child.instanceID) }
                writes.append(instanceInsertion(child, now: now))
                inbox.append((child.instanceID, HistoryEventCodec.encode(child.startEvent), TaskHubRules.startVisibility(child, now: now)))
                // Messages below may be for the new child.
                states[child.instanceID] = (.pending, child.executionID)
                woken.append(child.instanceID)
            }
        }
        for message in commit.messages {
            let target = message.targetInstanceID == item.instanceID ? ownStatus : states[message.targetInstanceID]?.status
            guard TaskHubRules.delivers(to: target) else { continue }
            inbox.append((message.targetInstanceID, HistoryEventCodec.encode(message.event), now))
            woken.append(message.targetInstanceID)
        }
        writes += inboxInsertion(inbox)
        if commit.clearsInbox {
            writes.append(PostgresStatement(sql.deleteInbox, [.text(item.instanceID)]))
        }
        // Its new ready_at: events left in its inbox (arrived during the episode, a timer) are more work.
        let updateIndex = writes.count
        if let (executionID, input) = commit.newExecution {
            writes.append(
                PostgresStatement(
                    sql.updateInstanceContinuedAsNew,
                    [
                        .text(item.instanceID), .text(executionID), .text(commit.status.rawValue), input.map { .data($0.data) } ?? .null,
                        commit.customStatus.map { .data($0.data) } ?? .null, .double(t),
                        commit.completedAt.map { .double($0.timeIntervalSinceReferenceDate) } ?? .null
                    ]))
        } else {
            writes.append(
                PostgresStatement(
                    sql.updateInstanceAfterEpisode,
                    [
                        .text(item.instanceID), .text(commit.status.rawValue), commit.output.map { .data($0.data) } ?? .null,
                        commit.failure.map { .bytes(HistoryEventCodec.encodeFailure($0)) } ?? .null,
                        commit.customStatus.map { .data($0.data) } ?? .null, .double(t),
                        commit.completedAt.map { .double($0.timeIntervalSinceReferenceDate) } ?? .null, .int(Int64(newHistoryLength))
                    ]))
        }
        // The payload's flags follow its first line; the server adds `o` and whose work it is, for
        // this instance (events left) and those the episode sent events to, once the writes are done.
        let changed = [item.instanceID] + woken
        let payload = notification(committed.activitiesLeftForOthers, changed)
        let split = payload.firstIndex(of: "\n").flatMap { payload[payload.index(after: $0)...].firstIndex(of: "\n") } ?? payload.endIndex
        writes.append(
            PostgresStatement(
                sql.notifyReady, [.text(sql.channel), .text(String(payload[..<split])), .textArray(changed), .text(String(payload[split...]))]))

        let written = try c.pipeline(writes, commit: true)
        if let leasedIndex {
            let rows = written[leasedIndex]
            var receipts: [Int: Int64] = [:]
            for row in 0..<rows.count { receipts[rows.int(row, 1)] = rows.int64(row, 0) }
            committed.leasedActivities = leased.compactMap { activity in
                receipts[activity.taskID].map {
                    ActivityWorkItem(
                        instanceID: item.instanceID, executionID: item.executionID, taskID: activity.taskID, name: activity.name,
                        input: activity.input, leaseToken: eagerToken, deliveryCount: 1, receipt: $0)
                }
            }
        }
        let updated = written[updateIndex]
        committed.orchestrationWork = !woken.isEmpty || (updated.count > 0 && !updated.isNull(0, 0))
        return committed
    }

    /// Releases a lease without consuming events (see ``Backend/abandonOrchestrationWorkItem(_:delay:countsAsDelivery:)``).
    func abandon(_ c: PostgresConnection, _ item: OrchestrationWorkItem, delay: Duration, countsAsDelivery: Bool, now: Date) throws {
        // With a delay the instance stays unavailable, leased by nobody, until the back-off is over.
        let until: PostgresValue = delay > .zero ? .double(now.addingTimeInterval(delay.timeInterval).timeIntervalSinceReferenceDate) : .null
        let rows = try c.query(sql.unlockInstance, [.text(item.instanceID), until, .text(item.leaseToken), .int(countsAsDelivery ? 0 : 1)])
        guard rows.changes == 1 else {
            throw TaskHubRules.leaseLost(item.instanceID)
        }
    }

    func history(_ c: PostgresConnection, instanceID: String) throws -> [HistoryEvent] {
        guard try instanceState(c, instanceID) != nil else {
            throw TaskHubRules.noHistory(instanceID)
        }
        let rows = try c.query(sql.selectHistory, [.text(instanceID)])
        var events: [HistoryEvent] = []
        for row in 0..<rows.count {
            try rows.withBytes(row, 0) { bytes in try HistoryEventCodec.decodeHistoryRow(bytes, of: instanceID, into: &events) }
        }
        return events
    }

    // MARK: Activities

    /// Leases up to `maxCount` activities, at most `maxRedelivered` of them redeliveries; redeliveries first.
    func leaseActivities(
        _ c: PostgresConnection, owner: String, maxCount: Int, maxRedelivered: Int, leaseDuration: Duration, now: Date
    ) throws -> [ActivityWorkItem] {
        guard maxCount > 0 else { return [] }
        let token = UniqueID.string()
        let t = now.timeIntervalSinceReferenceDate
        var items: [ActivityWorkItem] = []
        func lease(redelivered: Bool, limit: Int) throws {
            guard limit > 0 else { return }
            let rows = try c.query(
                sql.leaseActivities(redelivered: redelivered),
                [.double(t), .text(owner), .text(token), .double(t + leaseDuration.timeInterval), .int(Int64(limit))])
            var batch: [ActivityWorkItem] = []
            batch.reserveCapacity(rows.count)
            var previous: ActivityWorkItem?
            for row in 0..<rows.count {
                // Reuse equal strings of the previous row: a fan-out's items share instance, execution and name.
                let instanceID = rows.text(row, 0)
                let executionID = rows.text(row, 1)
                let name = rows.text(row, 3)
                let item = ActivityWorkItem(
                    instanceID: previous?.instanceID == instanceID ? previous?.instanceID ?? instanceID : instanceID,
                    executionID: previous?.executionID == executionID ? previous?.executionID ?? executionID : executionID,
                    taskID: rows.int(row, 2), name: previous?.name == name ? previous?.name ?? name : name,
                    input: rows.data(row, 4).map(Payload.init(data:)), leaseToken: token, deliveryCount: rows.int(row, 5),
                    receipt: rows.int64(row, 6))
                previous = item
                batch.append(item)
            }
            // RETURNING gives no order guarantee; hand items out in scheduling order.
            batch.sort { $0.receipt < $1.receipt }
            items += batch
        }
        try lease(redelivered: true, limit: min(maxCount, max(0, maxRedelivered)))
        try lease(redelivered: false, limit: maxCount - items.count)
        return items
    }

    /// Records activity results (group commit) — see ``Backend/completeActivityWorkItems(_:)`` — in two
    /// round trips, the transaction's BEGIN and COMMIT included: lock the instances and delete the
    /// completed rows, then add the accepted results to the inboxes, send `notification` and commit
    /// (when none was accepted, the transaction commits the deletes).
    /// - Parameter encodedEvents: the completions' events, encoded by the caller.
    /// - Returns: for each completion, whether it was recorded.
    /// Records activity results (see ``Backend/completeActivityWorkItems(_:leasing:)``) in two round
    /// trips, BEGIN and COMMIT included: one locks the instances' rows and deletes the activities whose
    /// leases are held, one adds the results to the inboxes, leases what `lease` asks for, reads the
    /// leased instances' events, sends the notification and commits.
    func completeActivities(
        _ c: PostgresConnection, _ completions: [ActivityCompletion], encodedEvents: [[UInt8]], leasing lease: OrchestrationLeaseRequest?,
        now: Date, notification: String
    ) throws -> RecordedActivityResults {
        // The instances' rows first: the lock that keeps inbox IDs in commit order, and their state.
        let read = try c.pipeline([
            PostgresStatement(sql.lockInstances, [.textArray(Set(completions.map(\.item.instanceID)).sorted())]),
            PostgresStatement(
                sql.deleteCompletedActivities, [.intArray(completions.map(\.item.receipt)), .textArray(completions.map(\.item.leaseToken))])
        ])
        let states = try instanceStates(read[0])
        let deleted = read[1]
        var held = Set<Lease>()
        for row in 0..<deleted.count { held.insert(Lease(receipt: deleted.int64(row, 0), token: deleted.text(row, 1))) }
        var accepted: [Bool] = []
        accepted.reserveCapacity(completions.count)
        var inbox: [(instanceID: String, event: [UInt8], visibleAt: Date)] = []
        var touched = Set<String>()
        for (completion, encoded) in zip(completions, encodedEvents) {
            let item = completion.item
            // A receipt twice in one batch (a duplicate completion) is recorded once.
            guard held.remove(Lease(receipt: item.receipt, token: item.leaseToken)) != nil else {
                accepted.append(false)
                continue
            }
            let state = states[item.instanceID]
            guard TaskHubRules.accepts(completion, instanceStatus: state?.status, executionID: state?.executionID) else {
                accepted.append(false)
                continue
            }
            inbox.append((item.instanceID, encoded, now))
            touched.insert(item.instanceID)
            accepted.append(true)
        }
        guard !touched.isEmpty else { return RecordedActivityResults(accepted: accepted) }
        let touchedIDs = touched.sorted()
        var writes = inboxInsertion(inbox)
        let leaseIndex = writes.count
        let token = UniqueID.string()
        if let lease {
            // After the inserts, which set ready_at; before the notification, which then leaves out
            // what this commit leased (it is under a lease).
            let t = now.timeIntervalSinceReferenceDate
            writes += [
                PostgresStatement(
                    sql.leaseReadyInstances,
                    [
                        .double(t), .text(lease.owner), .text(token), .double(t + lease.leaseDuration.timeInterval),
                        .textArray(touchedIDs), .int(Int64(lease.maxCount))
                    ]),
                PostgresStatement(sql.selectLeasedInbox, [.double(t), .text(lease.owner), .text(token)])
            ]
        }
        // The server adds whose work the results make ready (see PostgresSchema.notifyReady).
        writes.append(PostgresStatement(sql.notifyReady, [.text(sql.channel), .text(notification), .textArray(touchedIDs), .text("")]))
        let results = try c.pipeline(writes, commit: true)
        guard lease != nil else { return RecordedActivityResults(accepted: accepted) }
        // Nothing is stale: the statement leases only instances with a visible inbox row, which only
        // an episode holding the row's lock (this transaction holds it) could take away.
        let leased = try workItems(instances: results[leaseIndex], inbox: results[leaseIndex + 1], token: token)
        return RecordedActivityResults(accepted: accepted, leased: leased.items)
    }

    func abandonActivity(_ c: PostgresConnection, _ item: ActivityWorkItem, delay: Duration, now: Date) throws {
        let visible = delay > .zero ? now.addingTimeInterval(delay.timeInterval) : now
        try c.query(sql.abandonActivity, [.int(item.receipt), .text(item.leaseToken), .double(visible.timeIntervalSinceReferenceDate)])
    }

    func renewActivities(_ c: PostgresConnection, _ items: [ActivityWorkItem], leaseDuration: Duration, now: Date) throws -> [Bool] {
        let expires = now.addingTimeInterval(leaseDuration.timeInterval).timeIntervalSinceReferenceDate
        let rows = try c.query(sql.renewActivities, [.intArray(items.map(\.receipt)), .textArray(items.map(\.leaseToken)), .double(expires)])
        var renewed = Set<Lease>()
        for row in 0..<rows.count { renewed.insert(Lease(receipt: rows.int64(row, 0), token: rows.text(row, 1))) }
        return items.map { renewed.contains(Lease(receipt: $0.receipt, token: $0.leaseToken)) }
    }

    /// Releases the leases of owners whose process is gone (their advisory lock is free).
    /// - Returns: per released owner, how many instance and activity leases were released.
    func releaseDeadOwners(_ c: PostgresConnection, now: Date) throws -> [(owner: String, instances: Int, activities: Int)] {
        let dead = try c.query(sql.selectDeadOwners, [.text(sql.name)])
        let t = now.timeIntervalSinceReferenceDate
        return try (0..<dead.count).map { row in
            let owner = dead.text(row, 0)
            let instances = try c.query(sql.releaseOwnerInstances, [.text(owner), .double(t)]).changes
            // Its instances are anybody's now, at once rather than after stickyFor.
            let unstuck = try c.query(sql.clearOwner, [.text(owner)]).changes
            let activities = try c.query(
                sql.releaseOwnerActivities, [.text(owner), .double(TaskHubRules.releasedActivitiesVisibleAt.timeIntervalSinceReferenceDate)]
            ).changes
            return (owner, max(instances, unstuck), activities)
        }
    }

    // MARK: Queries and purge

    func metadata(_ rows: PostgresRows, _ row: Int) throws -> OrchestrationMetadata {
        let instanceID = rows.text(row, 0)
        var failure: FailureDetails?
        if !rows.isNull(row, 7) {
            do {
                failure = try rows.withBytes(row, 7) { bytes throws(CodecError) in try HistoryEventCodec.decodeFailure(bytes) }
            } catch {
                throw DurableTaskError(.corruptData, "undecodable failure details of instance '\(instanceID)': \(error)")
            }
        }
        return OrchestrationMetadata(
            instanceID: instanceID, name: rows.text(row, 1), executionID: rows.text(row, 2), status: try status(rows.text(row, 3), instanceID),
            input: rows.data(row, 4).map(Payload.init(data:)), output: rows.data(row, 5).map(Payload.init(data:)),
            customStatus: rows.data(row, 6).map(Payload.init(data:)), failure: failure,
            createdAt: rows.date(row, 8), lastUpdatedAt: rows.date(row, 9), completedAt: rows.optionalDate(row, 10),
            parentInstanceID: rows.optionalText(row, 11))
    }

    func metadata(_ c: PostgresConnection, instanceID: String) throws -> OrchestrationMetadata? {
        let rows = try c.query(sql.selectMetadata, [.text(instanceID)])
        return rows.count > 0 ? try metadata(rows, 0) : nil
    }

    func metadata(_ c: PostgresConnection, instanceIDs: [String]) throws -> [OrchestrationMetadata?] {
        let rows = try c.query(sql.selectManyMetadata, [.textArray(Array(Set(instanceIDs)))])
        var byID: [String: OrchestrationMetadata] = [:]
        for row in 0..<rows.count {
            let m = try metadata(rows, row)
            byID[m.instanceID] = m
        }
        return instanceIDs.map { byID[$0] }
    }

    func query(_ c: PostgresConnection, _ query: OrchestrationQuery) throws -> OrchestrationQueryResult {
        let pageSize = max(1, query.pageSize)
        let rows = try c.query(
            sql.queryInstances,
            [
                query.statuses.map { .textArray($0.map(\.rawValue).sorted()) } ?? .null, query.name.map { .text($0) } ?? .null,
                query.createdFrom.map { .double($0.timeIntervalSinceReferenceDate) } ?? .null,
                query.createdTo.map { .double($0.timeIntervalSinceReferenceDate) } ?? .null,
                query.instanceIDPrefix.map { .text($0) } ?? .null, query.continuationToken.map { .text($0) } ?? .null,
                // One extra row says whether there is a next page.
                .int(Int64(pageSize + 1))
            ])
        var instances: [OrchestrationMetadata] = []
        for row in 0..<rows.count { instances.append(try metadata(rows, row)) }
        var token: String?
        if instances.count > pageSize {
            instances.removeLast(instances.count - pageSize)
            token = instances.last?.instanceID
        }
        return OrchestrationQueryResult(instances: instances, continuationToken: token)
    }

    func purge(_ c: PostgresConnection, instanceID: String) throws -> Bool {
        guard try TaskHubRules.checkPurge(instanceID: instanceID, existing: try instanceState(c, instanceID, lock: true)?.status) else { return false }
        try deleteInstanceRows(c, instanceID)
        return true
    }

    /// - Returns: the IDs of the purged instances.
    func purge(_ c: PostgresConnection, _ filter: PurgeFilter) throws -> [String] {
        let rows = try c.query(sql.selectPurgeCandidates)
        var ids: [String] = []
        for row in 0..<rows.count {
            let instanceID = rows.text(row, 0)
            if TaskHubRules.purges(filter, status: try status(rows.text(row, 1), instanceID), createdAt: rows.date(row, 2)) {
                ids.append(instanceID)
            }
        }
        for id in ids { try deleteInstanceRows(c, id) }
        return ids
    }

    /// The earliest time at which work of the given kind becomes available, or `nil` when none is pending.
    func nextDue(_ c: PostgresConnection, _ change: BackendChange) throws -> Date? {
        let statement: String
        switch change {
        case .orchestrationWork: statement = sql.nextOrchestrationWork
        case .activityWork: statement = sql.nextActivityWork
        case .instanceState: return nil
        }
        let rows = try c.query(statement)
        return rows.count > 0 ? rows.optionalDate(0, 0) : nil
    }
}
