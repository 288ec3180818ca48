@_spi(Backend) import DurableTask

/// The database schema and every SQL statement of the SQLite backend, in one place.
///
/// Times are stored as `REAL` seconds since 2001-01-01 (`Date.timeIntervalSinceReferenceDate`), so they
/// round-trip exactly. Events are stored with ``HistoryEventCodec``; payloads as their JSON bytes.
enum Schema {
    /// `PRAGMA application_id`: marks the file as a DurableTask database ("DTsk"), so a database of
    /// another application is recognized and never written to.
    static let applicationID: Int32 = 0x4454_736B

    /// `PRAGMA user_version`: the schema version this code writes. Older versions are migrated
    /// forward at open; newer ones are refused (an older library must not misread them).
    static let version = 3

    /// The migrations, in order: `migrations[n]` takes the schema from version `n` to `n + 1`.
    static let migrations: [String] = [v1, v2, v3]

    /// Version 1.
    ///
    /// - `instances.ready_at`: the earliest `visible_at` of the instance's inbox (NULL when empty),
    ///   kept up to date on every inbox change so finding work is one index range scan instead of a
    ///   join over the inbox.
    /// - `instances.lease_time`: the clock reading when the current lease was taken; a completion
    ///   consumes exactly the inbox rows that were visible then (`id <= receipt AND visible_at <=
    ///   lease_time`), never a timer with a smaller ID that became due later.
    /// - `activities.visible_at`: when the item may be leased next — the creation time, then the lease
    ///   expiry while it is leased — so one index serves both "new" and "lease expired".
    static let v1 = """
        CREATE TABLE instances (
            instance_id TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            execution_id TEXT NOT NULL,
            status TEXT NOT NULL,
            input BLOB,
            output BLOB,
            custom_status BLOB,
            failure BLOB,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            completed_at REAL,
            parent_instance_id TEXT,
            locked_by TEXT,
            lock_token TEXT,
            lock_expires REAL,
            lease_time REAL,
            history_length INTEGER NOT NULL DEFAULT 0,
            dequeue_count INTEGER NOT NULL DEFAULT 0,
            ready_at REAL
        );
        CREATE INDEX instances_ready ON instances (ready_at) WHERE ready_at IS NOT NULL;
        CREATE INDEX instances_created ON instances (created_at);
        CREATE TABLE history (
            instance_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event BLOB NOT NULL,
            PRIMARY KEY (instance_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            instance_id TEXT NOT NULL,
            event BLOB NOT NULL,
            visible_at REAL NOT NULL
        );
        CREATE INDEX inbox_instance ON inbox (instance_id, id);
        CREATE TABLE activities (
            id INTEGER PRIMARY KEY,
            instance_id TEXT NOT NULL,
            execution_id TEXT NOT NULL,
            task_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            input BLOB,
            locked_by TEXT,
            lock_token TEXT,
            lock_expires REAL,
            dequeue_count INTEGER NOT NULL DEFAULT 0,
            visible_at REAL NOT NULL
        );
        CREATE INDEX activities_visible ON activities (visible_at, id);
        """

    /// Version 2.
    ///
    /// - `instances_locked_by`: finding the leases of a worker that died (see `OwnerLiveness`) is an
    ///   index lookup instead of a scan of every instance ever run; partial, so only leased instances
    ///   are in it. Activities need no such index: their table holds pending work only, and the scan
    ///   runs once per crashed worker.
    /// - `activities_visible` split in two partial indexes, never-delivered items and redeliveries
    ///   (`dequeue_count >= 2`, `Redelivery.isolatedAfter`: two deliveries ended without a result), so that a lease limited to
    ///   one redelivery finds it, or the fresh items, without stepping over the others.
    static let v2 = """
        CREATE INDEX instances_locked_by ON instances (locked_by) WHERE locked_by IS NOT NULL;
        DROP INDEX activities_visible;
        CREATE INDEX activities_fresh ON activities (visible_at, id) WHERE dequeue_count < \(Redelivery.isolatedAfter);
        CREATE INDEX activities_redelivered ON activities (visible_at, id) WHERE dequeue_count >= \(Redelivery.isolatedAfter);
        """

    /// Version 3: a `history` row may hold several consecutive events of one episode
    /// (``HistoryEventCodec/encodeRows(_:maxRowBytes:)``), its `seq` the position of the first. Rows
    /// of earlier versions hold one event each and read unchanged, so there is nothing to convert;
    /// the version only keeps a library that reads one event per row from opening the file.
    static let v3 = "-- history rows may group events; no table changes"

    // MARK: Instances

    static let selectInstanceState = """
        SELECT status, execution_id, lock_token, lease_time, history_length FROM instances WHERE instance_id = ?1
        """
    static let metadataColumns = """
        instance_id, name, execution_id, status, input, output, custom_status, failure, created_at, updated_at, \
        completed_at, parent_instance_id
        """
    static let selectMetadata = "SELECT \(metadataColumns) FROM instances WHERE instance_id = ?1"
    /// ?1 is a JSON array of instance IDs: one cached statement for any number of them.
    static let selectManyMetadata = "SELECT \(metadataColumns) FROM instances WHERE instance_id IN (SELECT value FROM json_each(?1))"
    /// What a client's wait cares about, for noticing another process's change without reading blobs.
    static let selectChangeMarkers = """
        SELECT instance_id, status, updated_at, history_length, execution_id FROM instances \
        WHERE instance_id IN (SELECT value FROM json_each(?1))
        """
    static let insertInstance = """
        INSERT OR REPLACE INTO instances (instance_id, name, execution_id, status, input, created_at, updated_at, \
        parent_instance_id, history_length, dequeue_count, ready_at)
        VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?5, ?6, 0, 0, NULL)
        """
    static let deleteInstance = "DELETE FROM instances WHERE instance_id = ?1"
    static let deleteHistory = "DELETE FROM history WHERE instance_id = ?1"
    static let deleteInbox = "DELETE FROM inbox WHERE instance_id = ?1"
    static let deleteActivities = "DELETE FROM activities WHERE instance_id = ?1"

    /// The next instance with a visible inbox event and no live lease.
    static let selectReadyInstance = """
        SELECT instance_id, execution_id, history_length, dequeue_count FROM instances
        WHERE ready_at IS NOT NULL AND ready_at <= ?1 AND (lock_expires IS NULL OR lock_expires <= ?1)
        ORDER BY ready_at LIMIT 1
        """
    /// The same, skipping redeliveries (instances whose last lease ended without a result).
    static let selectReadyFreshInstance = """
        SELECT instance_id, execution_id, history_length, dequeue_count FROM instances
        WHERE ready_at IS NOT NULL AND ready_at <= ?1 AND (lock_expires IS NULL OR lock_expires <= ?1)
        AND dequeue_count < \(Redelivery.isolatedAfter)
        ORDER BY ready_at LIMIT 1
        """
    /// Instance `?1` if it is ready, without a live lease and not a redelivery: one that a commit of
    /// activity results may lease to its writer.
    static let selectLeasableInstance = """
        SELECT execution_id, history_length, dequeue_count FROM instances
        WHERE instance_id = ?1 AND ready_at IS NOT NULL AND ready_at <= ?2 AND (lock_expires IS NULL OR lock_expires <= ?2)
        AND dequeue_count < \(Redelivery.isolatedAfter)
        """
    static let lockInstance = """
        UPDATE instances SET locked_by = ?2, lock_token = ?3, lock_expires = ?4, lease_time = ?5,
        dequeue_count = dequeue_count + 1 WHERE instance_id = ?1
        """
    /// Releases a lease; `?4` is 1 when the lease is handed back without counting as a delivery.
    static let unlockInstance = """
        UPDATE instances SET locked_by = NULL, lock_token = NULL, lock_expires = ?2, lease_time = NULL,
        dequeue_count = max(0, dequeue_count - ?4)
        WHERE instance_id = ?1 AND lock_token = ?3
        """
    /// Releases every instance lease of an owner that died; the delivery stays counted (the process
    /// may have died of that very item).
    static let releaseOwnerInstances = """
        UPDATE instances SET locked_by = NULL, lock_token = NULL, lock_expires = ?2, lease_time = NULL
        WHERE locked_by = ?1
        """
    static let updateInstanceAfterEpisode = """
        UPDATE instances SET status = ?2, output = ?3, failure = ?4, custom_status = ?5, updated_at = ?6,
        completed_at = coalesce(?7, completed_at), history_length = ?8, locked_by = NULL, lock_token = NULL, lock_expires = NULL,
        lease_time = NULL, dequeue_count = 0,
        ready_at = (SELECT min(visible_at) FROM inbox WHERE inbox.instance_id = ?1)
        WHERE instance_id = ?1
        RETURNING ready_at
        """
    static let updateInstanceContinuedAsNew = """
        UPDATE instances SET execution_id = ?2, status = ?3, input = ?4, output = NULL, failure = NULL,
        custom_status = ?5, updated_at = ?6, completed_at = coalesce(?7, completed_at), history_length = 0, locked_by = NULL,
        lock_token = NULL, lock_expires = NULL, lease_time = NULL, dequeue_count = 0,
        ready_at = (SELECT min(visible_at) FROM inbox WHERE inbox.instance_id = ?1)
        WHERE instance_id = ?1
        RETURNING ready_at
        """
    static let repairReadyAt = """
        UPDATE instances SET ready_at = (SELECT min(visible_at) FROM inbox WHERE inbox.instance_id = ?1)
        WHERE instance_id = ?1
        """
    /// Lowers `ready_at` after an inbox insert (never raises it).
    static let updateReadyAt = """
        UPDATE instances SET ready_at = min(coalesce(ready_at, ?2), ?2) WHERE instance_id = ?1
        """
    /// When the next orchestration work item becomes available: an inbox event becoming visible or a
    /// lease on an instance with pending events expiring.
    static let nextOrchestrationWork = """
        SELECT min(max(ready_at, coalesce(lock_expires, ready_at))) FROM instances WHERE ready_at IS NOT NULL
        """

    // MARK: History and inbox

    static let insertHistory = "INSERT INTO history (instance_id, seq, event) VALUES (?1, ?2, ?3)"
    static let selectHistory = "SELECT event FROM history WHERE instance_id = ?1 ORDER BY seq"
    static let insertInbox = "INSERT INTO inbox (instance_id, event, visible_at) VALUES (?1, ?2, ?3)"
    static let selectVisibleInbox = """
        SELECT id, event FROM inbox WHERE instance_id = ?1 AND visible_at <= ?2 ORDER BY id
        """
    /// A visible inbox event the work item did not carry (it arrived, or became due, after the lease).
    static let selectUnconsumedInbox = """
        SELECT 1 FROM inbox WHERE instance_id = ?1 AND visible_at <= ?2 AND NOT (id <= ?3 AND visible_at <= ?4) LIMIT 1
        """
    static let deleteConsumedInbox = """
        DELETE FROM inbox WHERE instance_id = ?1 AND id <= ?2 AND visible_at <= ?3
        """

    // MARK: Activities

    static let insertActivity = """
        INSERT INTO activities (instance_id, execution_id, task_id, name, input, visible_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        """
    /// An activity leased to the worker whose episode scheduled it (eager dispatch), as
    /// ``leaseActivities(redelivered:)`` leases: the row shows again (`visible_at`) when the lease ends.
    static let insertLeasedActivity = """
        INSERT INTO activities (instance_id, execution_id, task_id, name, input, visible_at, locked_by, lock_token, lock_expires, dequeue_count)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?6, 1)
        """
    /// Leases up to `?5` visible activities that were never delivered (`redelivered: false`) or whose
    /// last lease ended without a result (`true`), each through its own partial index.
    static func leaseActivities(redelivered: Bool) -> String {
        """
        UPDATE activities SET locked_by = ?2, lock_token = ?3, lock_expires = ?4, visible_at = ?4,
        dequeue_count = dequeue_count + 1
        WHERE id IN (SELECT id FROM activities WHERE \(redelivered ? "dequeue_count >= \(Redelivery.isolatedAfter)" : "dequeue_count < \(Redelivery.isolatedAfter)")
                     AND visible_at <= ?1 ORDER BY visible_at, id LIMIT ?5)
        RETURNING instance_id, execution_id, task_id, name, input, dequeue_count, id
        """
    }
    static let leaseFreshActivities = leaseActivities(redelivered: false)
    static let leaseRedeliveredActivities = leaseActivities(redelivered: true)
    // Work items carry the row ID as their receipt, so these are primary-key lookups; the lock token
    // fences off a lease that expired and was taken over.
    static let deleteCompletedActivity = "DELETE FROM activities WHERE id = ?1 AND lock_token = ?2"
    /// A hand-back (the worker is stopping), not a failed delivery: the lease's count is taken back.
    static let abandonActivity = """
        UPDATE activities SET locked_by = NULL, lock_token = NULL, lock_expires = NULL, visible_at = ?3,
        dequeue_count = max(0, dequeue_count - 1)
        WHERE id = ?1 AND lock_token = ?2
        """
    /// Makes every activity leased by an owner that died visible now; the delivery stays counted.
    static let releaseOwnerActivities = """
        UPDATE activities SET locked_by = NULL, lock_token = NULL, lock_expires = NULL, visible_at = ?2
        WHERE locked_by = ?1
        """
    static let renewActivity = """
        UPDATE activities SET lock_expires = ?3, visible_at = ?3 WHERE id = ?1 AND lock_token = ?2
        """
    /// When the next activity becomes available (new, abandoned with a delay, or lease expiring).
    /// Through both partial indexes: the aggregate `min` skips the NULL of an empty one.
    static let nextActivityWork = """
        SELECT min(due) FROM (SELECT min(visible_at) AS due FROM activities WHERE dequeue_count < \(Redelivery.isolatedAfter)
                              UNION ALL SELECT min(visible_at) FROM activities WHERE dequeue_count >= \(Redelivery.isolatedAfter))
        """

    // MARK: Queries and purge

    /// The instance query; filters are appended as `AND` clauses with numbered parameters.
    static func queryInstances(
        status: Int?, name: Bool, createdFrom: Bool, createdTo: Bool, prefix: Bool,
        after: Bool
    ) -> String {
        var sql = "SELECT \(metadataColumns) FROM instances WHERE 1"
        if let status {
            sql += " AND status IN (" + (0..<status).map { "?\(20 + $0)" }.joined(separator: ", ") + ")"
        }
        if name { sql += " AND name = ?1" }
        if createdFrom { sql += " AND created_at >= ?2" }
        if createdTo { sql += " AND created_at < ?3" }
        if prefix { sql += " AND substr(instance_id, 1, length(?4)) = ?4" }
        if after { sql += " AND instance_id > ?5" }
        sql += " ORDER BY instance_id LIMIT ?6"
        return sql
    }

    static let selectInstanceStatus = "SELECT status, execution_id FROM instances WHERE instance_id = ?1"
    static let selectPurgeCandidates =
        "SELECT instance_id, status, created_at FROM instances WHERE status IN (\(TaskHubRules.finishedStatusesSQL))"

    // MARK: Opening

    static let countUserTables = """
        SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'
        """
}
