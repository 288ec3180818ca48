@_spi(Backend) import DurableTask

/// The task hub's tables and every SQL statement of the Postgres backend, in one place, for one schema.
///
/// Times are `float8` seconds since 2001-01-01 (`Date.timeIntervalSinceReferenceDate`), read from the
/// backend's clock rather than the server's, so tests drive leases and timers with a ``ManualClock``
/// and values round-trip exactly. Events are `bytea` in ``HistoryEventCodec``'s format; payloads their
/// JSON bytes. The layout follows the SQLite backend's (see its `Schema`), with these differences:
///
/// - Inbox rows get their IDs from a sequence, and IDs are handed out in commit order per instance only
///   because every insert locks the instance's row first (`lockInstances`) and the lease holds the
///   same row lock: a row with a smaller ID can then never commit after a lease read past it, which
///   ``TaskHubRules/consumes(_:entryID:visibleAt:leasedAt:)`` relies on.
/// - Leases are taken with `FOR UPDATE SKIP LOCKED`, so competing workers never wait for each other.
/// - Batches (history, activities, results) are one statement each over `unnest` of arrays.
struct PostgresSchema: Sendable {
    /// The schema version this code writes. Older versions are migrated forward at open; newer ones
    /// are refused (an older library must not misread them).
    static let version = 3

    /// Marks the schema as a DurableTask task hub in its `durabletask_meta` table.
    static let application = "DurableTask"

    /// The schema name, validated (lower-case letters, digits, underscores).
    let name: String
    /// The quoted schema name, to prefix table names.
    let s: String
    /// The `LISTEN`/`NOTIFY` channel of the task hub.
    let channel: String

    init(name: String) {
        self.name = name
        s = "\"\(name)\""
        channel = "durabletask_\(name)"
    }

    /// Whether a schema name is accepted: it becomes part of SQL, and of a channel name of at most 63 bytes.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 48 else { return false }
        let allowed = { (c: Unicode.Scalar) in ("a"..."z").contains(c) || ("0"..."9").contains(c) || c == "_" }
        return (("a"..."z").contains(first) || first == "_") && name.unicodeScalars.allSatisfy(allowed)
    }

    /// The migrations, in order: `migrations[n]` takes the schema from version `n` to `n + 1`.
    var migrations: [String] { [v1, v2, v3] }

    /// Version 1. See the type's documentation for the layout.
    var v1: String {
        """
        CREATE TABLE \(s).instances (
            instance_id text COLLATE "C" PRIMARY KEY,
            name text NOT NULL,
            execution_id text NOT NULL,
            status text NOT NULL,
            input bytea,
            output bytea,
            custom_status bytea,
            failure bytea,
            created_at float8 NOT NULL,
            updated_at float8 NOT NULL,
            completed_at float8,
            parent_instance_id text,
            locked_by text,
            lock_token text,
            lock_expires float8,
            lease_time float8,
            history_length int8 NOT NULL DEFAULT 0,
            dequeue_count int8 NOT NULL DEFAULT 0,
            ready_at float8
        );
        CREATE INDEX instances_ready ON \(s).instances (ready_at) WHERE ready_at IS NOT NULL;
        CREATE INDEX instances_created ON \(s).instances (created_at);
        CREATE INDEX instances_locked_by ON \(s).instances (locked_by) WHERE locked_by IS NOT NULL;
        CREATE TABLE \(s).history (
            instance_id text NOT NULL,
            seq int8 NOT NULL,
            event bytea NOT NULL,
            PRIMARY KEY (instance_id, seq)
        );
        CREATE TABLE \(s).inbox (
            id bigserial PRIMARY KEY,
            instance_id text NOT NULL,
            event bytea NOT NULL,
            visible_at float8 NOT NULL
        );
        CREATE INDEX inbox_instance ON \(s).inbox (instance_id, id);
        CREATE TABLE \(s).activities (
            id bigserial PRIMARY KEY,
            instance_id text NOT NULL,
            execution_id text NOT NULL,
            task_id int8 NOT NULL,
            name text NOT NULL,
            input bytea,
            locked_by text,
            lock_token text,
            lock_expires float8,
            dequeue_count int8 NOT NULL DEFAULT 0,
            visible_at float8 NOT NULL
        );
        CREATE INDEX activities_fresh ON \(s).activities (visible_at, id) WHERE dequeue_count < \(Redelivery.isolatedAfter);
        CREATE INDEX activities_redelivered ON \(s).activities (visible_at, id) WHERE dequeue_count >= \(Redelivery.isolatedAfter);
        CREATE INDEX activities_locked_by ON \(s).activities (locked_by) WHERE locked_by IS NOT NULL;
        CREATE INDEX activities_instance ON \(s).activities (instance_id);
        """
    }

    /// Version 2: the ready instances in two partial indexes, never-delivered ones and redeliveries
    /// (`dequeue_count >= 2`, `Redelivery.isolatedAfter`), as the activities have, so that a lease of
    /// either kind reads the first rows of its own index. A lease of redeliveries through one index
    /// of every ready instance walked all of them to find none (6 ms a lease at 10,000 instances).
    var v2: String {
        """
        CREATE INDEX instances_ready_fresh ON \(s).instances (ready_at)
            WHERE ready_at IS NOT NULL AND dequeue_count < \(Redelivery.isolatedAfter);
        CREATE INDEX instances_ready_redelivered ON \(s).instances (ready_at)
            WHERE ready_at IS NOT NULL AND dequeue_count >= \(Redelivery.isolatedAfter);
        DROP INDEX \(s).instances_ready;
        """
    }

    /// Version 3.
    ///
    /// - A `history` row may hold several consecutive events of one episode
    ///   (``HistoryEventCodec/encodeRows(_:maxRowBytes:)``), its `seq` the position of the first. Rows
    ///   of earlier versions hold one event each and read unchanged, so no row is converted; the
    ///   version keeps a library that reads one event per row from opening the schema.
    /// - `instances.last_owner`: the worker that committed the instance's last episode, which has it
    ///   in its cache; ``leaseInstances`` gives it that instance first (see ``stickyFor``). NULL once
    ///   the instance has ended or that worker stopped (``clearOwner``), so its index holds running
    ///   instances only.
    var v3: String {
        """
        COMMENT ON TABLE \(s).history IS 'A row holds one event, or several of one episode (a group); seq is the position of the first.';
        ALTER TABLE \(s).instances ADD COLUMN last_owner text;
        CREATE INDEX instances_last_owner ON \(s).instances (last_owner, ready_at) WHERE last_owner IS NOT NULL;
        """
    }

    /// Hands the instances a stopped worker `$1` ran last to anybody.
    var clearOwner: String { "UPDATE \(s).instances SET last_owner = NULL WHERE last_owner = $1" }

    /// How long a ready instance is left to the worker that ran its last episode before another
    /// worker takes it. That worker holds the instance in its cache and applies only the new events;
    /// any other reads the whole history and replays it. With four worker processes on one task hub
    /// three episodes in four went to a worker without the instance cached (history rows read 4.8
    /// times those of one process). A worker that stopped, or has more ready than it can take, loses
    /// its instances to the others after this long (one stopped with `DurableTaskWorker.stop()` at
    /// once); a new instance goes to whoever leases first. Measured in the backend's clock, as leases.
    static let stickyFor = 0.1

    // MARK: Opening

    /// Planner settings for every session of the backend: no sequential and no bitmap scans.
    ///
    /// Every statement here finds its rows through an index — by key, or the first rows of an index
    /// in its order for a lease (`ORDER BY ... LIMIT ... SKIP LOCKED`, O(batch) only as an ordered
    /// index scan). The tables are queues that grow from empty within seconds, so their statistics
    /// are always stale (a new task hub has none) and a prepared statement's cached plan is made while
    /// they are small. With those, the server sequentially scanned all instances for every new
    /// instance's `ready_at` (quadratic over 10,000 new instances: 25 ms each at the end), and bitmap-
    /// scanned and sorted every visible activity for each lease (9,488 rows to lease 512). A query with
    /// no index to use (the dashboard's filters, purge) still runs, as a full scan.
    ///
    /// And no JIT compilation: it pays off for long analytical queries, not for statements of a few
    /// rows, and a plan's cost, inflated by the settings above where no index applies, would start it
    /// (100 ms of compiling for a statement of one millisecond).
    var sessionSettings: [String] { ["SET enable_seqscan = off", "SET enable_bitmapscan = off", "SET jit = off"] }

    /// Serializes concurrent opens of one task hub (creating or migrating it) across processes.
    var lockSchemaSetup: String { "SELECT pg_advisory_xact_lock(hashtext('durabletask schema'), hashtext($1::text))" }
    var schemaExists: String { "SELECT count(*) FROM pg_namespace WHERE nspname = $1::text" }
    var countRelations: String {
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1::text AND c.relkind IN ('r', 'v', 'm', 'p', 'f')"
    }
    var metaExists: String {
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1::text AND c.relname = 'durabletask_meta'"
    }
    var createSchema: String { "CREATE SCHEMA IF NOT EXISTS \(s)" }
    var createMeta: String {
        """
        CREATE TABLE \(s).durabletask_meta (key text PRIMARY KEY, value text NOT NULL);
        INSERT INTO \(s).durabletask_meta VALUES ('application', '\(Self.application)'), ('version', '0');
        """
    }
    var selectMeta: String { "SELECT key, value FROM \(s).durabletask_meta" }
    var updateVersion: String { "UPDATE \(s).durabletask_meta SET value = $1::text WHERE key = 'version'" }

    // MARK: Instances

    var selectInstanceStatus: String { "SELECT status, execution_id FROM \(s).instances WHERE instance_id = $1" }
    var selectInstanceStatusForUpdate: String { "SELECT status, execution_id FROM \(s).instances WHERE instance_id = $1 FOR UPDATE" }
    /// Locks the rows of several instances, in ID order so that two transactions never deadlock on them.
    var lockInstances: String {
        "SELECT instance_id, status, execution_id FROM \(s).instances WHERE instance_id = ANY($1) ORDER BY instance_id FOR UPDATE"
    }
    var selectInstanceState: String {
        "SELECT lock_token, lease_time, history_length, status FROM \(s).instances WHERE instance_id = $1 FOR UPDATE"
    }
    var metadataColumns: String {
        """
        instance_id, name, execution_id, status, input, output, custom_status, failure, created_at, updated_at, \
        completed_at, parent_instance_id
        """
    }
    var selectMetadata: String { "SELECT \(metadataColumns) FROM \(s).instances WHERE instance_id = $1" }
    var selectManyMetadata: String { "SELECT \(metadataColumns) FROM \(s).instances WHERE instance_id = ANY($1)" }
    var insertInstance: String {
        """
        INSERT INTO \(s).instances (instance_id, name, execution_id, status, input, created_at, updated_at, \
        parent_instance_id, history_length, dequeue_count, ready_at)
        VALUES ($1, $2, $3, 'pending', $4, $5, $5, $6, 0, 0, NULL)
        """
    }
    var deleteInstance: String { "DELETE FROM \(s).instances WHERE instance_id = $1" }
    var deleteHistory: String { "DELETE FROM \(s).history WHERE instance_id = $1" }
    var deleteInbox: String { "DELETE FROM \(s).inbox WHERE instance_id = $1" }
    var deleteActivities: String { "DELETE FROM \(s).activities WHERE instance_id = $1" }

    /// Leases up to `$5` instances with a visible inbox event and no live lease, with the lease token
    /// `$3`: first up to `$6` of those whose last two deliveries ended without a commit (redeliveries,
    /// through their own partial index, as for activities), then those whose last episode owner `$2`
    /// committed, then the others — new instances, and those of other owners ready since `$7` (now
    /// less ``stickyFor``) — each kind in `ready_at` order. A `WITH` query runs only as far as it is
    /// read, so the later ones lock only the rows the batch takes. ``selectLeasedInbox`` then reads
    /// their events.
    ///
    /// The events are read by a statement of their own, after this one: it takes its snapshot after
    /// the rows were locked. Read in this statement (a join), they came from the snapshot it started
    /// with, while the lock waits for and then sees the newest version of an instance's row — an
    /// episode that committed in between (its consumed inbox rows deleted) had its events delivered
    /// again.
    var leaseInstances: String {
        func ready(_ kind: String) -> String {
            """
            SELECT instance_id FROM \(s).instances
                WHERE ready_at IS NOT NULL AND ready_at <= $1 AND (lock_expires IS NULL OR lock_expires <= $1) AND \(kind)
                ORDER BY ready_at LIMIT
            """
        }
        let fresh = "dequeue_count < \(Redelivery.isolatedAfter)"
        return """
            WITH redelivered AS (\(ready("dequeue_count >= \(Redelivery.isolatedAfter)")) $6 FOR UPDATE SKIP LOCKED),
            mine AS (\(ready("\(fresh) AND last_owner IS NOT NULL AND last_owner = $2")) $5 FOR UPDATE SKIP LOCKED),
            others AS (\(ready("\(fresh) AND (last_owner IS NULL OR (last_owner <> $2 AND ready_at <= $7))")) $5 FOR UPDATE SKIP LOCKED),
            ready AS (
                SELECT instance_id FROM redelivered UNION ALL SELECT instance_id FROM mine UNION ALL SELECT instance_id FROM others LIMIT $5
            )
            UPDATE \(s).instances i SET locked_by = $2, lock_token = $3, lock_expires = $4, lease_time = $1,
            dequeue_count = i.dequeue_count + 1
            FROM ready WHERE i.instance_id = ready.instance_id
            RETURNING i.instance_id, i.execution_id, i.history_length, i.dequeue_count
            """
    }
    /// Leases to owner `$2`, with token `$3` until `$4`, up to `$6` of the instances `$5` that it ran
    /// last and that have a visible inbox event and no live lease, never a redelivery: the instances a
    /// commit of activity results made ready, whose rows that transaction holds locked already (see
    /// ``leaseInstances`` for the columns it returns).
    var leaseReadyInstances: String {
        """
        UPDATE \(s).instances i SET locked_by = $2, lock_token = $3, lock_expires = $4, lease_time = $1,
        dequeue_count = i.dequeue_count + 1
        FROM (
            SELECT instance_id FROM \(s).instances
            WHERE instance_id = ANY($5) AND last_owner = $2 AND ready_at IS NOT NULL AND ready_at <= $1
            AND (lock_expires IS NULL OR lock_expires <= $1) AND dequeue_count < \(Redelivery.isolatedAfter)
            AND EXISTS (SELECT 1 FROM \(s).inbox WHERE inbox.instance_id = instances.instance_id COLLATE "default" AND visible_at <= $1)
            ORDER BY ready_at LIMIT $6
        ) ready
        WHERE i.instance_id = ready.instance_id
        RETURNING i.instance_id, i.execution_id, i.history_length, i.dequeue_count
        """
    }
    /// The visible inbox rows of the instances leased to owner `$2` with token `$3`, by instance and ID.
    /// The instances are looked up first (`= ANY(ARRAY(...))`), then their rows through the inbox's
    /// index; as a semi-join (`IN`), the planner scanned the whole inbox for each lease. The IDs take
    /// the inbox's collation: with the instances table's (`"C"`), its index could not be used. Unordered:
    /// an `ORDER BY` made it walk the whole index in order rather than sort a few rows (the caller
    /// orders them by ID).
    var selectLeasedInbox: String {
        """
        SELECT instance_id, id, event FROM \(s).inbox
        WHERE instance_id = ANY(ARRAY(SELECT instance_id COLLATE "default" FROM \(s).instances WHERE locked_by = $2 AND lock_token = $3))
        AND visible_at <= $1
        """
    }
    /// Takes back the lease of an instance that had no visible event after all, without counting it as
    /// a delivery, and recomputes its `ready_at` from the inbox.
    var unleaseStaleInstance: String {
        """
        UPDATE \(s).instances SET locked_by = NULL, lock_token = NULL, lock_expires = NULL, lease_time = NULL,
        dequeue_count = greatest(0, dequeue_count - 1),
        ready_at = (SELECT min(visible_at) FROM \(s).inbox WHERE inbox.instance_id = $1)
        WHERE instance_id = $1
        """
    }
    /// Releases a lease; `$4` is 1 when the lease is handed back without counting as a delivery.
    var unlockInstance: String {
        """
        UPDATE \(s).instances SET locked_by = NULL, lock_token = NULL, lock_expires = $2, lease_time = NULL,
        dequeue_count = greatest(0, dequeue_count - $4)
        WHERE instance_id = $1 AND lock_token = $3
        """
    }
    var updateInstanceAfterEpisode: String {
        """
        UPDATE \(s).instances SET status = $2, output = $3, failure = $4, custom_status = $5, updated_at = $6,
        completed_at = coalesce($7, completed_at), history_length = $8,
        last_owner = CASE WHEN $7 IS NULL THEN locked_by END, locked_by = NULL, lock_token = NULL, lock_expires = NULL,
        lease_time = NULL, dequeue_count = 0,
        ready_at = (SELECT min(visible_at) FROM \(s).inbox WHERE inbox.instance_id = $1)
        WHERE instance_id = $1
        RETURNING ready_at
        """
    }
    var updateInstanceContinuedAsNew: String {
        """
        UPDATE \(s).instances SET execution_id = $2, status = $3, input = $4, output = NULL, failure = NULL,
        custom_status = $5, updated_at = $6, completed_at = coalesce($7, completed_at), history_length = 0, last_owner = locked_by, locked_by = NULL,
        lock_token = NULL, lock_expires = NULL, lease_time = NULL, dequeue_count = 0,
        ready_at = (SELECT min(visible_at) FROM \(s).inbox WHERE inbox.instance_id = $1)
        WHERE instance_id = $1
        RETURNING ready_at
        """
    }
    /// Lowers `ready_at` of the instances after inbox inserts (never raises it).
    var updateReadyAt: String {
        "UPDATE \(s).instances SET ready_at = least(coalesce(ready_at, $2), $2) WHERE instance_id = ANY($1)"
    }
    /// When the next orchestration work item becomes available: an inbox event becoming visible or a
    /// lease on an instance with pending events expiring.
    ///
    /// An instance another worker ran last counts from when ``stickyFor`` lets anybody take it: the
    /// worker that ran it is woken by the commit that made it ready, the others need not be.
    var nextOrchestrationWork: String {
        """
        SELECT min(greatest(ready_at + CASE WHEN last_owner IS NULL THEN 0 ELSE \(Self.stickyFor) END, coalesce(lock_expires, ready_at)))
        FROM \(s).instances WHERE ready_at IS NOT NULL
        """
    }

    // MARK: History and inbox

    var insertHistory: String {
        "INSERT INTO \(s).history (instance_id, seq, event) SELECT $1, $2 + o, e FROM unnest($3::int8[], $4::bytea[]) AS t(o, e)"
    }
    var selectHistory: String { "SELECT event FROM \(s).history WHERE instance_id = $1 ORDER BY seq" }
    /// Inserts inbox rows for several instances (in array order, so IDs follow it).
    var insertInbox: String {
        "INSERT INTO \(s).inbox (instance_id, event, visible_at) SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[])"
    }
    /// A visible inbox event the work item did not carry (it arrived, or became due, after the lease).
    /// It reads the lease time itself (`now` when unset), so it runs beside the read of the instance.
    var selectUnconsumedInbox: String {
        """
        SELECT 1 FROM \(s).inbox WHERE instance_id = $1 AND visible_at <= $2
        AND NOT (id <= $3 AND visible_at <= coalesce((SELECT lease_time FROM \(s).instances WHERE instance_id = $1), $2)) LIMIT 1
        """
    }
    var deleteConsumedInbox: String { "DELETE FROM \(s).inbox WHERE instance_id = $1 AND id <= $2 AND visible_at <= $3" }

    // MARK: Activities

    var insertActivities: String {
        """
        INSERT INTO \(s).activities (instance_id, execution_id, task_id, name, input, visible_at)
        SELECT $1, $2, t, n, i, $6 FROM unnest($3::int8[], $4::text[], $5::bytea[]) AS a(t, n, i)
        """
    }
    /// Activities leased to the worker whose episode scheduled them (eager dispatch), as
    /// ``leaseActivities(redelivered:)`` leases: each row shows again (`visible_at`) when its lease ends.
    var insertLeasedActivities: String {
        """
        INSERT INTO \(s).activities (instance_id, execution_id, task_id, name, input, visible_at, locked_by, lock_token, lock_expires, dequeue_count)
        SELECT $1, $2, t, n, i, $6, $7, $8, $6, 1 FROM unnest($3::int8[], $4::text[], $5::bytea[]) AS a(t, n, i)
        RETURNING id, task_id
        """
    }
    /// Leases up to `$5` visible activities that were never delivered (`redelivered: false`) or whose
    /// last lease ended without a result (`true`), each through its own partial index.
    ///
    /// `id = ANY(ARRAY(...))`, not `id IN (...)`: the IDs are picked first and the rows updated by
    /// primary key. With `IN`, and a table whose statistics are stale (a queue's always are; a new
    /// task hub has none), the server hash-joined the picked IDs against a scan of the whole table,
    /// every lease: O(N) per lease, quadratic over a fan-out.
    func leaseActivities(redelivered: Bool) -> String {
        """
        UPDATE \(s).activities SET locked_by = $2, lock_token = $3, lock_expires = $4, visible_at = $4,
        dequeue_count = dequeue_count + 1
        WHERE id = ANY(ARRAY(
            SELECT id FROM \(s).activities WHERE \(redelivered ? "dequeue_count >= \(Redelivery.isolatedAfter)" : "dequeue_count < \(Redelivery.isolatedAfter)")
            AND visible_at <= $1 ORDER BY visible_at, id LIMIT $5 FOR UPDATE SKIP LOCKED))
        RETURNING instance_id, execution_id, task_id, name, input, dequeue_count, id
        """
    }
    /// Deletes the completed activities whose lease is still held; returns the deleted IDs.
    var deleteCompletedActivities: String {
        """
        DELETE FROM \(s).activities a USING unnest($1::int8[], $2::text[]) AS c(id, token)
        WHERE a.id = c.id AND a.lock_token = c.token RETURNING a.id, a.lock_token
        """
    }
    /// A hand-back (the worker is stopping), not a failed delivery: the lease's count is taken back.
    var abandonActivity: String {
        """
        UPDATE \(s).activities SET locked_by = NULL, lock_token = NULL, lock_expires = NULL, visible_at = $3,
        dequeue_count = greatest(0, dequeue_count - 1)
        WHERE id = $1 AND lock_token = $2
        """
    }
    var renewActivities: String {
        """
        UPDATE \(s).activities a SET lock_expires = $3, visible_at = $3 FROM unnest($1::int8[], $2::text[]) AS c(id, token)
        WHERE a.id = c.id AND a.lock_token = c.token RETURNING a.id, a.lock_token
        """
    }
    var nextActivityWork: String {
        """
        SELECT min(due) FROM (SELECT min(visible_at) AS due FROM \(s).activities WHERE dequeue_count < \(Redelivery.isolatedAfter)
                              UNION ALL SELECT min(visible_at) FROM \(s).activities WHERE dequeue_count >= \(Redelivery.isolatedAfter)) AS d
        """
    }

    // MARK: Owners (liveness)

    /// Takes the session advisory lock that says "this owner's process is alive" (see `PostgresLiveness`).
    var lockOwner: String { "SELECT pg_try_advisory_lock(hashtext($1::text), hashtext($2::text))" }
    /// Lease owners whose advisory lock nobody holds: their process (its connection) is gone. Owners
    /// that instances with events waiting stick to count too: the others are not woken for those
    /// (see ``notifyReady``), so they must learn of the death here.
    var selectDeadOwners: String {
        """
        SELECT o.owner FROM (SELECT DISTINCT locked_by AS owner FROM \(s).instances WHERE locked_by IS NOT NULL
                             UNION SELECT DISTINCT locked_by FROM \(s).activities WHERE locked_by IS NOT NULL
                             UNION SELECT DISTINCT last_owner FROM \(s).instances WHERE last_owner IS NOT NULL AND ready_at IS NOT NULL) AS o
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid = (hashtext($1::text)::int8 & 4294967295)::oid
            AND l.objid = (hashtext(o.owner)::int8 & 4294967295)::oid)
        """
    }
    /// Releases every instance lease of an owner that died; the delivery stays counted (the process
    /// may have died of that very item).
    var releaseOwnerInstances: String {
        "UPDATE \(s).instances SET locked_by = NULL, lock_token = NULL, lock_expires = $2, lease_time = NULL WHERE locked_by = $1"
    }
    var releaseOwnerActivities: String {
        "UPDATE \(s).activities SET locked_by = NULL, lock_token = NULL, lock_expires = NULL, visible_at = $2 WHERE locked_by = $1"
    }

    // MARK: Queries and purge

    /// The instance query; filters are `AND` clauses, absent ones skipped by NULL parameters.
    var queryInstances: String {
        """
        SELECT \(metadataColumns) FROM \(s).instances
        WHERE ($1::text[] IS NULL OR status = ANY($1)) AND ($2::text IS NULL OR name = $2)
        AND ($3::float8 IS NULL OR created_at >= $3) AND ($4::float8 IS NULL OR created_at < $4)
        AND ($5::text IS NULL OR left(instance_id, length($5)) = $5) AND ($6::text IS NULL OR instance_id > $6)
        ORDER BY instance_id LIMIT $7
        """
    }
    var selectPurgeCandidates: String {
        "SELECT instance_id, status, created_at FROM \(s).instances WHERE status IN (\(TaskHubRules.finishedStatusesSQL))"
    }

    // MARK: Wake-ups

    var notify: String { "SELECT pg_notify($1, $2)" }
    /// The notification of a commit that may leave orchestration work: `$2` (the sender's line and
    /// its flags), then — when some instance of `$3` has events ready and no lease on it — `o` and,
    /// tab-separated, who should lease them: the worker that ran each last (it has the instance
    /// cached, and the others may not take it for ``stickyFor`` anyway) or `*` (anybody), then `$4`.
    ///
    /// The other processes then wake only when the work is theirs: with every commit waking every
    /// process, most leases found nothing, and the server's work grew with the number of processes.
    /// An instance under a lease is left out: its holder sees the new events when it commits.
    var notifyReady: String {
        """
        SELECT pg_notify($1, $2 || coalesce((SELECT 'o' || chr(9) || string_agg(DISTINCT coalesce(last_owner, '*'), chr(9)) \
        FROM \(s).instances WHERE instance_id = ANY($3) AND ready_at IS NOT NULL AND locked_by IS NULL), '') || $4)
        """
    }
    var listen: String { "LISTEN \(channel)" }
}
