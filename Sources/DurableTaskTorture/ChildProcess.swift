import Foundation

/// A child process running this same executable in another mode, which the torture kills with SIGKILL.
final class ChildProcess {
    let process = Process()
    let stderrPath: String

    init(arguments: [String], stderrPath: String) throws {
        self.stderrPath = stderrPath
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = arguments
        if !FileManager.default.fileExists(atPath: stderrPath) {
            // Children of one run share a log; append to it rather than truncate it.
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        }
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        errors.seekToEndOfFile()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        Foundation.kill(process.processIdentifier, SIGCONT)
        process.waitUntilExit()
    }

    /// Freezes the process (SIGSTOP), as a long GC pause or an overloaded machine would.
    func pause() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGSTOP)
    }

    /// Lets a paused process continue (SIGCONT).
    func resume() {
        Foundation.kill(process.processIdentifier, SIGCONT)
    }

    func terminate() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGTERM)
    }

    /// Waits for the process to exit on its own, up to `timeout` seconds.
    func wait(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return false }
            usleep(2_000)
        }
        return true
    }

    var exitStatus: Int32 { process.terminationStatus }
}
