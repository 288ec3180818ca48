import DurableTask
import DurableTaskDashboard
import DurableTaskSQLite
import Foundation

// `durabletask … --db FILE`: opens the SQLite task hub and runs the command (DurableTaskCommand holds
// the logic, so it works for any backend and is tested in-process).
var arguments = Array(CommandLine.arguments.dropFirst())
var path: String?
if let index = arguments.firstIndex(of: "--db") {
    guard index + 1 < arguments.count else {
        FileHandle.standardError.write(Data("durabletask: --db needs a file\n".utf8))
        exit(2)
    }
    path = arguments[index + 1]
    arguments.removeSubrange(index...(index + 1))
}
let wantsHelp = arguments.isEmpty || arguments.contains("--help") || arguments.contains("-h") || arguments.first == "help"
guard let path, !wantsHelp else {
    if wantsHelp {
        print(DurableTaskCommand.usage)
        exit(0)
    }
    FileHandle.standardError.write(Data("durabletask: --db FILE is required (the SQLite task hub)\n\n\(DurableTaskCommand.usage)\n".utf8))
    exit(2)
}
// Looking at a task hub must not create one: a mistyped path is an error, not a new empty database.
guard FileManager.default.fileExists(atPath: path) else {
    FileHandle.standardError.write(Data("durabletask: no task hub at '\(path)'\n".utf8))
    exit(1)
}
let backend: SQLiteBackend
do {
    backend = try SQLiteBackend(
        path: path,
        options: .init(logHandler: { level, message in
            if level != .debug { FileHandle.standardError.write(Data("durabletask: \(message)\n".utf8)) }
        }))
} catch {
    FileHandle.standardError.write(Data("durabletask: cannot open '\(path)': \(error)\n".utf8))
    exit(1)
}
let status = await DurableTaskCommand.run(arguments, client: DurableTaskClient(backend: backend)) {
    // Unbuffered, so the dashboard's "listening" line reaches a pipe at once.
    FileHandle.standardOutput.write(Data($0.utf8))
}
exit(status)
