import DurableTask

/// Creating, checking and migrating a task hub's schema when a backend opens it.
enum PostgresSetup {
    /// Makes `schema` a task hub of the current version, in one transaction: creates it when it does
    /// not exist (or is empty), migrates it forward from an older version, refuses anything else.
    ///
    /// Serialized across processes by a transaction advisory lock, so several workers starting at once
    /// create the schema once.
    /// - Throws: `DurableTaskError(.corruptData)` when the schema holds tables but is not a DurableTask
    ///   task hub, or was written by a newer version of this library; ``PostgresError`` from the server.
    /// - Parameter createIfMissing: `false` to refuse, with `DurableTaskError(.invalidArgument)`, a
    ///   schema that holds no task hub instead of creating one.
    static func prepare(_ c: PostgresConnection, _ schema: PostgresSchema, createIfMissing: Bool = true) throws {
        try c.transaction {
            try c.query(schema.lockSchemaSetup, [.text(schema.name)])
            var version = 0
            let exists = try c.query(schema.schemaExists, [.text(schema.name)]).int(0, 0) > 0
            let hasMeta = try exists && c.query(schema.metaExists, [.text(schema.name)]).int(0, 0) > 0
            if hasMeta {
                let rows = try c.query(schema.selectMeta)
                var meta: [String: String] = [:]
                for row in 0..<rows.count { meta[rows.text(row, 0)] = rows.text(row, 1) }
                guard meta["application"] == PostgresSchema.application, let stored = meta["version"].flatMap(Int.init) else {
                    throw foreign(schema, "its durabletask_meta table belongs to another application")
                }
                guard stored <= PostgresSchema.version else {
                    throw DurableTaskError(
                        .corruptData,
                        "the task hub schema '\(schema.name)' has version \(stored), newer than this library's "
                            + "\(PostgresSchema.version); it was not modified. Upgrade DurableTask to open it")
                }
                version = stored
            } else {
                if exists, try c.query(schema.countRelations, [.text(schema.name)]).int(0, 0) > 0 {
                    throw foreign(schema, "it holds tables but no durabletask_meta table")
                }
                guard createIfMissing else {
                    throw DurableTaskError(.invalidArgument, "there is no task hub in schema '\(schema.name)' (nothing was created)")
                }
                try c.execute(schema.createSchema)
                try c.execute(schema.createMeta)
            }
            guard version < PostgresSchema.version else { return }
            for migration in schema.migrations[version...] { try c.execute(migration) }
            try c.query(schema.updateVersion, [.text(String(PostgresSchema.version))])
        }
    }

    private static func foreign(_ schema: PostgresSchema, _ why: String) -> DurableTaskError {
        DurableTaskError(
            .corruptData,
            "the schema '\(schema.name)' is not a DurableTask task hub (\(why)); it was not modified. "
                + "Choose another schema name (PostgresBackend.Options.schema)")
    }
}
