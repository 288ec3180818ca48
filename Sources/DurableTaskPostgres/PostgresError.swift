import DurableTask

/// An error reported by libpq or the PostgreSQL server, with enough context to debug from one log line:
/// the SQLSTATE code, the server's message and the SQL that failed.
///
/// The backend turns the ones that say nothing about the work item (the connection lost, the server
/// restarting, a statement timeout, a full disk) into `DurableTaskError(.storage)`, which the worker
/// retries and never counts toward poisoning; see ``storageError(server:)``.
public struct PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The five-character SQLSTATE, e.g. `57P01` (the server is shutting down); `nil` when libpq reported
    /// an error without one.
    public var sqlState: String?
    /// The server's or libpq's message.
    public var message: String
    /// The statement that failed, if any.
    public var sql: String?
    /// Whether the connection to the server was lost (or could not be made).
    public var isConnectionFailure: Bool

    /// Creates an error.
    public init(sqlState: String?, message: String, sql: String? = nil, connectionFailure: Bool = false) {
        self.sqlState = sqlState
        self.message = message
        self.sql = sql
        isConnectionFailure =
            connectionFailure || sqlState.map { $0.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains($0) } ?? false
    }

    /// A conflict between concurrent transactions (a deadlock, a serialization failure, two creators of
    /// one row): the transaction was rolled back and running it again is safe.
    var isConflict: Bool { ["40001", "40P01", "23505"].contains(sqlState ?? "") }

    public var description: String {
        var text = "PostgreSQL error \(sqlState ?? "(no SQLSTATE)"): \(message)"
        if let sql { text += " — while executing `\(sql.prefix(200))`" }
        return text
    }

    /// This error as the worker should see it: `DurableTaskError(.storage)` with a message for a
    /// person when the failure is about the server, not about the work; otherwise the error itself.
    /// - Parameter server: names the server in the message (host and database).
    func storageError(server: String) -> any Error {
        let detail = " [\(self)]"
        let state = sqlState ?? ""
        if isConnectionFailure {
            switch state {
            case "57P01", "57P02":
                return DurableTaskError(
                    .storage,
                    "\(server) is shutting down or restarting; the transaction was rolled back and nothing was lost. "
                        + "The backend reconnects when the server is back" + detail)
            case "57P03":
                return DurableTaskError(.storage, "\(server) is starting up and does not accept connections yet; retry shortly" + detail)
            case "08001":
                // A connection that could not be opened at all: nothing had started, so nothing was lost.
                return DurableTaskError(
                    .storage, "cannot connect to \(server): is the server running and reachable at that address, and the URL right?" + detail)
            default:
                return DurableTaskError(
                    .storage,
                    "lost the connection to \(server) (the server stopped, restarted, or the network failed); "
                        + "an unfinished transaction was rolled back. The backend reconnects with back-off" + detail)
            }
        }
        switch state {
        case "57014":
            return DurableTaskError(
                .storage,
                "a statement on \(server) took longer than the statement timeout and was cancelled; "
                    + "the transaction was rolled back and nothing was written" + detail)
        case "55P03":
            return DurableTaskError(.storage, "a lock on \(server) was not granted in time; nothing was written, retry later" + detail)
        case "40001", "40P01", "23505":
            return DurableTaskError(
                .storage, "concurrent transactions on \(server) kept conflicting; nothing was written, retry later" + detail)
        case "53100":
            return DurableTaskError(
                .storage,
                "\(server) has no disk space left; the transaction was rolled back and nothing was lost. "
                    + "Free space and it resumes" + detail)
        case "53200":
            return DurableTaskError(.storage, "\(server) is out of memory; nothing was written" + detail)
        case "53300":
            return DurableTaskError(
                .storage,
                "\(server) has too many connections (max_connections); lower PostgresBackend.Options.connections "
                    + "or raise the server's limit" + detail)
        case "25006":
            return DurableTaskError(.storage, "\(server) is read-only (a standby, or default_transaction_read_only); nothing was written" + detail)
        case "42501":
            return DurableTaskError(.storage, "the database user may not do this on \(server) (permissions); nothing was written" + detail)
        case let code where code.hasPrefix("28") || code == "3D000":
            return DurableTaskError(.storage, "cannot log in to \(server): \(message)" + detail)
        case let code where code.hasPrefix("58") || code.hasPrefix("XX"):
            return DurableTaskError(.storage, "\(server) reported a system or internal error; nothing was written" + detail)
        default:
            return self
        }
    }
}
