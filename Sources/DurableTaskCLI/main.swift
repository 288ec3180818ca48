import DurableTask
import DurableTaskDashboard
import DurableTaskPostgres
import DurableTaskSQLite
import Foundation

// `durabletask … --db FILE` or `… --postgres URL [--schema NAME]`: opens the task hub and runs the
// command (DurableTaskCommand holds the logic, so it works for any backend and is tested in-process).
func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("durabletask: \(message)\n".utf8))
    exit(status)
}

/// Removes `--name VALUE` from the arguments and returns the value.
func take(_ name: String, from arguments: inout [String]) -> String? {
    guard let index = arguments.firstIndex(of: name) else { return nil }
    guard index + 1 < arguments.count else { fail("\(name) needs a value", status: 2) }
    defer { arguments.removeSubrange(index...(index + 1)) }
    return arguments[index + 1]
}

var arguments = Array(CommandLine.arguments.dropFirst())
let path = take("--db", from: &arguments)
let url = take("--postgres", from: &arguments)
let schema = take("--schema", from: &arguments)
let wantsHelp = arguments.isEmpty || arguments.contains("--help") || arguments.contains("-h") || arguments.first == "help"
if wantsHelp {
    print(DurableTaskCommand.usage)
    exit(0)
}
let log: @Sendable (LogLevel, String) -> Void = { level, message in
    if level != .debug { FileHandle.standardError.write(Data("durabletask: \(message)\n".utf8)) }
}
let backend: any Backend
switch (path, url) {
case let (path?, nil):
    if schema != nil { fail("--schema goes with --postgres, not --db", status: 2) }
    // Looking at a task hub must not create one: a mistyped path is an error, not a new empty database.
    guard FileManager.default.fileExists(atPath: path) else { fail("no task hub at '\(path)'", status: 1) }
    do {
        backend = try SQLiteBackend(path: path, options: .init(logHandler: log))
    } catch {
        fail("cannot open '\(path)': \(error)", status: 1)
    }
case let (nil, url?):
    do {
        // Nor a mistyped schema name a new, empty schema.
        backend = try PostgresBackend(
            url: url, options: .init(schema: schema ?? "durabletask", connections: 2, logHandler: log, createIfMissing: false))
    } catch {
        fail("cannot open the task hub: \(error)", status: 1)
    }
case (nil, nil):
    fail("--db FILE (an SQLite task hub) or --postgres URL (a PostgreSQL one) is required\n\n\(DurableTaskCommand.usage)", status: 2)
case (_?, _?):
    fail("--db and --postgres name two task hubs; give one", status: 2)
}
let status = await DurableTaskCommand.run(arguments, client: DurableTaskClient(backend: backend)) {
    // Unbuffered, so the dashboard's "listening" line reaches a pipe at once.
    FileHandle.standardOutput.write(Data($0.utf8))
}
if let postgres = backend as? PostgresBackend { await postgres.close() }
if let sqlite = backend as? SQLiteBackend { await sqlite.close() }
exit(status)
