import CLibPQ
import DurableTask
import Foundation

/// A statement parameter, sent to the server in PostgreSQL's binary format.
///
/// Binary rather than text: payloads and events are `bytea`, which in text form would be hex-escaped
/// on the way in and out, and numbers and times round-trip bit for bit.
enum PostgresValue {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bytes([UInt8])
    case data(Data)
    case bool(Bool)
    case intArray([Int64])
    case doubleArray([Double])
    case textArray([String])
    case bytesArray([[UInt8]])
    /// An array of `bytea` values that may be NULL (payload columns).
    case dataArray([Data?])

    // Type OIDs from pg_type.
    static let int8OID: Oid = 20
    static let float8OID: Oid = 701
    static let textOID: Oid = 25
    static let byteaOID: Oid = 17
    static let boolOID: Oid = 16

    /// The type the server is told at prepare time; 0 (NULL) lets it infer one from the statement.
    var typeOID: Oid {
        switch self {
        case .null: 0
        case .int: Self.int8OID
        case .double: Self.float8OID
        case .text: Self.textOID
        case .bytes, .data: Self.byteaOID
        case .bool: Self.boolOID
        case .intArray: 1016
        case .doubleArray: 1022
        case .textArray: 1009
        case .bytesArray, .dataArray: 1001
        }
    }

    /// The value in binary wire format; `nil` for NULL.
    var encoded: [UInt8]? {
        switch self {
        case .null: return nil
        case let .int(v): return Self.bigEndian(UInt64(bitPattern: v))
        case let .double(v): return Self.bigEndian(v.bitPattern)
        case let .text(v): return Array(v.utf8)
        case let .bytes(v): return v
        case let .data(v): return [UInt8](v)
        case let .bool(v): return [v ? 1 : 0]
        case let .intArray(v): return Self.array(Self.int8OID, v.map { Self.bigEndian(UInt64(bitPattern: $0)) })
        case let .doubleArray(v): return Self.array(Self.float8OID, v.map { Self.bigEndian($0.bitPattern) })
        case let .textArray(v): return Self.array(Self.textOID, v.map { Array($0.utf8) })
        case let .bytesArray(v): return Self.array(Self.byteaOID, v)
        case let .dataArray(v): return Self.array(Self.byteaOID, v.map { $0.map { [UInt8]($0) } })
        }
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
    }

    private static func appendInt32(_ value: Int32, to buffer: inout [UInt8]) {
        let bits = UInt32(bitPattern: value)
        buffer.append(contentsOf: [
            UInt8(bits >> 24), UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 8), UInt8(truncatingIfNeeded: bits)
        ])
    }

    /// A one-dimensional array (`array_send`'s layout: dimensions, null flag, element type, then each
    /// element as a length and its bytes, -1 for NULL).
    private static func array(_ elementOID: Oid, _ elements: [[UInt8]?]) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(20 + elements.reduce(0) { $0 + 4 + ($1?.count ?? 0) })
        let hasNull = elements.contains { $0 == nil }
        appendInt32(elements.isEmpty ? 0 : 1, to: &buffer)
        appendInt32(hasNull ? 1 : 0, to: &buffer)
        appendInt32(Int32(bitPattern: elementOID), to: &buffer)
        guard !elements.isEmpty else { return buffer }
        appendInt32(Int32(elements.count), to: &buffer)
        appendInt32(1, to: &buffer)
        for element in elements {
            if let element {
                appendInt32(Int32(element.count), to: &buffer)
                buffer.append(contentsOf: element)
            } else {
                appendInt32(-1, to: &buffer)
            }
        }
        return buffer
    }
}

/// The rows of one statement's result, in binary format. Owns its `PGresult`.
final class PostgresRows {
    private let result: OpaquePointer
    /// The number of rows.
    let count: Int

    init(_ result: OpaquePointer) {
        self.result = result
        count = Int(PQntuples(result))
    }

    deinit { PQclear(result) }

    /// The number of rows the statement changed (`UPDATE`, `DELETE`, `INSERT`).
    var changes: Int { Int(String(cString: PQcmdTuples(result))) ?? 0 }

    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(column)) == 1 }

    private func withValue<T>(_ row: Int, _ column: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        guard let pointer = PQgetvalue(result, Int32(row), Int32(column)) else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// An integer column (`int2`, `int4` or `int8`).
    func int64(_ row: Int, _ column: Int) -> Int64 {
        withValue(row, column) { bytes in
            var value: UInt64 = 0
            for byte in bytes { value = value << 8 | UInt64(byte) }
            // Sign-extend the narrower integer types.
            let width = bytes.count * 8
            guard width > 0, width < 64 else { return Int64(bitPattern: value) }
            let shift = UInt64(64 - width)
            return Int64(bitPattern: value << shift) >> Int64(shift)
        }
    }

    func int(_ row: Int, _ column: Int) -> Int { Int(int64(row, column)) }

    func double(_ row: Int, _ column: Int) -> Double {
        withValue(row, column) { bytes in
            var value: UInt64 = 0
            for byte in bytes { value = value << 8 | UInt64(byte) }
            return Double(bitPattern: value)
        }
    }

    func date(_ row: Int, _ column: Int) -> Date { Date(timeIntervalSinceReferenceDate: double(row, column)) }

    func optionalDate(_ row: Int, _ column: Int) -> Date? { isNull(row, column) ? nil : date(row, column) }

    func bool(_ row: Int, _ column: Int) -> Bool { withValue(row, column) { $0.first.map { $0 != 0 } ?? false } }

    func text(_ row: Int, _ column: Int) -> String {
        withValue(row, column) { String(decoding: $0, as: UTF8.self) }
    }

    func optionalText(_ row: Int, _ column: Int) -> String? { isNull(row, column) ? nil : text(row, column) }

    /// A `bytea` column as `Data`, `nil` when NULL.
    func data(_ row: Int, _ column: Int) -> Data? {
        isNull(row, column) ? nil : withValue(row, column) { Data($0) }
    }

    /// Runs `body` on a `bytea` column's bytes without copying them.
    func withBytes<T, E: Error>(_ row: Int, _ column: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        let pointer = PQgetvalue(result, Int32(row), Int32(column))
        return try body(UnsafeRawBufferPointer(start: pointer.map { UnsafeRawPointer($0) }, count: length))
    }
}

/// A statement and its parameters, for ``PostgresConnection/pipeline(_:)``.
struct PostgresStatement {
    var sql: String
    var parameters: [PostgresValue]

    init(_ sql: String, _ parameters: [PostgresValue] = []) {
        self.sql = sql
        self.parameters = parameters
    }
}

/// One libpq connection. Not `Sendable`: it belongs to the thread that opened it (see
/// ``PostgresThreadPool``), so the compiler keeps every call on that thread.
final class PostgresConnection {
    private var conn: OpaquePointer?
    /// Prepared statement names by SQL text, as GRDB caches statements by SQL.
    private var prepared: [String: String] = [:]
    /// Set while COMMIT is in flight and left set when it fails: a connection lost then leaves the
    /// outcome unknown, so the transaction must not be run again blindly.
    private(set) var commitInFlight = false
    /// The statements that open the current transaction, not sent yet: they go with the body's first
    /// statement, in its round trip (see ``transaction(durable:_:)``).
    private var pendingBegin: [PostgresStatement] = []
    /// Set when a pipeline ended the current transaction with its COMMIT.
    private var committedInPipeline = false
    /// A short name of the server for messages (host and database, never the password).
    let serverName: String

    /// Opens a connection.
    /// - Parameters:
    ///   - url: a libpq connection string or URL.
    ///   - settings: `SET` statements run once connected (statement timeout).
    /// - Throws: ``PostgresError`` with ``PostgresError/isConnectionFailure`` when the server cannot be reached.
    init(url: String, applicationName: String, connectTimeoutSeconds: Int, settings: [String]) throws {
        // Keywords before `dbname` are defaults that the URL overrides (libpq's expand_dbname rule).
        let keywords = [
            "application_name", "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
            "tcp_user_timeout", "dbname"
        ]
        let values = [applicationName, String(connectTimeoutSeconds), "1", "5", "2", "3", "10000", url]
        let connection = Self.withCStrings(keywords) { k in Self.withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
        conn = connection
        serverName = Self.describe(connection)
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            close()
            throw PostgresError(sqlState: "08001", message: message.trimmingCharacters(in: .whitespacesAndNewlines), connectionFailure: true)
        }
        // libpq prints the server's notices (and the FATAL a terminated session gets) to standard
        // error by default; the errors that matter reach the caller as PostgresError.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        for setting in settings { try execute(setting) }
    }

    deinit { close() }

    func close() {
        if let conn { PQfinish(conn) }
        conn = nil
        prepared = [:]
    }

    /// Whether the connection is (as far as libpq knows) still up.
    var isOpen: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The socket, for waiting on notifications.
    var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    private static func describe(_ connection: OpaquePointer?) -> String {
        guard let connection else { return "PostgreSQL" }
        let host = PQhost(connection).map { String(cString: $0) } ?? "?"
        let port = PQport(connection).map { String(cString: $0) } ?? "?"
        let db = PQdb(connection).map { String(cString: $0) } ?? "?"
        return host.hasPrefix("/") ? "PostgreSQL at \(host)/.s.PGSQL.\(port), database \(db)" : "PostgreSQL at \(host):\(port), database \(db)"
    }

    private static func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
        let pointers = strings.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        let constant = pointers.map { UnsafePointer($0) } + [nil]
        return constant.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { preconditionFailure("the array holds at least the terminating nil") }
            return body(base)
        }
    }

    private func connection(_ sql: String) throws -> OpaquePointer {
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            throw PostgresError(sqlState: "08003", message: "the connection to the server is closed", sql: sql, connectionFailure: true)
        }
        return conn
    }

    /// Turns a finished `PGresult` into rows, or throws the server's error.
    private func check(_ result: OpaquePointer?, _ sql: String, _ conn: OpaquePointer) throws -> PostgresRows {
        guard let result else {
            throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(conn)), sql: sql, connectionFailure: PQstatus(conn) != CONNECTION_OK)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(result)
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
            let message = primary ?? String(cString: PQresultErrorMessage(result))
            PQclear(result)
            let lost = PQstatus(conn) != CONNECTION_OK
            throw PostgresError(
                sqlState: state ?? (lost ? "08006" : nil), message: message.trimmingCharacters(in: .whitespacesAndNewlines), sql: sql, connectionFailure: lost)
        }
    }

    /// Runs SQL without parameters (one or more statements), in text format.
    @discardableResult
    func execute(_ sql: String) throws -> PostgresRows {
        let conn = try connection(sql)
        // A transaction's pending BEGIN goes first, in the same simple query.
        let text = (pendingBegin.map(\.sql) + [sql]).joined(separator: "; ")
        pendingBegin = []
        return try check(PQexec(conn, text), sql, conn)
    }

    /// Runs a prepared statement (prepared on first use on this connection) with binary parameters
    /// and binary results.
    @discardableResult
    func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresRows {
        if !pendingBegin.isEmpty {
            guard let rows = try pipeline([PostgresStatement(sql, parameters)]).first else {
                preconditionFailure("a pipeline returns one result per statement")
            }
            return rows
        }
        let conn = try connection(sql)
        let name = try preparedName(sql, parameters, conn)
        let result = Self.withParameters(parameters) { count, values, lengths, formats in
            PQexecPrepared(conn, name, count, values, lengths, formats, 1)
        }
        return try check(result, sql, conn)
    }

    /// Runs statements in one round trip (libpq's pipeline mode) and returns their rows in order;
    /// throws the first statement's error that failed, after which the server skipped the rest.
    ///
    /// For statements whose parameters do not depend on each other's results: an episode commit sends
    /// its five to ten statements at once instead of waiting for each. The caller's transaction
    /// decides what a failure undoes, as for statements run one by one.
    ///
    /// Inside ``transaction(durable:_:)``, the transaction's BEGIN goes with the first statements
    /// run, and `commit` ends it with a COMMIT in the same round trip (the transaction then sends none).
    @discardableResult
    func pipeline(_ statements: [PostgresStatement], commit: Bool = false) throws -> [PostgresRows] {
        let begin = pendingBegin
        pendingBegin = []
        let all = begin + statements + (commit ? [PostgresStatement("COMMIT")] : [])
        if commit { commitInFlight = true }
        do {
            let results = try send(all)
            if commit {
                commitInFlight = false
                committedInPipeline = true
            }
            return Array(results.dropFirst(begin.count).prefix(statements.count))
        } catch let error as PostgresError where !error.isConnectionFailure {
            // The server answered: a COMMIT it skipped or refused did not commit.
            commitInFlight = false
            throw error
        }
    }

    private func send(_ statements: [PostgresStatement]) throws -> [PostgresRows] {
        if statements.count <= 1 { return try statements.map { try query($0.sql, $0.parameters) } }
        let conn = try connection(statements[0].sql)
        // Prepared first, outside the pipeline: a statement's first use costs its round trip once.
        let names = try statements.map { try preparedName($0.sql, $0.parameters, conn) }
        guard PQenterPipelineMode(conn) == 1 else {
            throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(conn)), sql: statements[0].sql, connectionFailure: !isOpen)
        }
        var results: [PostgresRows] = []
        results.reserveCapacity(statements.count)
        var failure: (any Error)?
        do {
            for (statement, name) in zip(statements, names) {
                let sent = Self.withParameters(statement.parameters) { count, values, lengths, formats in
                    PQsendQueryPrepared(conn, name, count, values, lengths, formats, 1)
                }
                guard sent == 1 else { throw lostPipeline(conn, statement.sql) }
            }
            guard PQpipelineSync(conn) == 1 else { throw lostPipeline(conn, statements[0].sql) }
            for statement in statements {
                // Each statement's result, then a NULL that ends it.
                guard let result = PQgetResult(conn) else { throw lostPipeline(conn, statement.sql) }
                if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                    PQclear(result)
                } else {
                    do {
                        results.append(try check(result, statement.sql, conn))
                    } catch {
                        failure = failure ?? error
                    }
                }
                while let extra = PQgetResult(conn) { PQclear(extra) }
            }
            // The sync point's own result.
            guard let sync = PQgetResult(conn) else { throw lostPipeline(conn, statements[0].sql) }
            PQclear(sync)
        } catch let error as PostgresError {
            // A pipeline cut short (the connection broke, or libpq refused a statement) leaves the
            // session in a state nobody knows: closed, so that the pool opens a new one and the server
            // rolls the transaction back.
            close()
            throw PostgresError(sqlState: error.sqlState ?? "08006", message: error.message, sql: error.sql, connectionFailure: true)
        }
        PQexitPipelineMode(conn)
        if let failure { throw failure }
        return results
    }

    private func lostPipeline(_ conn: OpaquePointer, _ sql: String) -> PostgresError {
        PostgresError(
            sqlState: PQstatus(conn) == CONNECTION_OK ? nil : "08006",
            message: String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines), sql: sql,
            connectionFailure: PQstatus(conn) != CONNECTION_OK)
    }

    /// The name `sql` is prepared under on this connection, preparing it on first use.
    private func preparedName(_ sql: String, _ parameters: [PostgresValue], _ conn: OpaquePointer) throws -> String {
        if let existing = prepared[sql] { return existing }
        let name = "dt\(prepared.count)"
        let types = parameters.map(\.typeOID)
        let result = types.withUnsafeBufferPointer { PQprepare(conn, name, sql, Int32(parameters.count), $0.baseAddress) }
        _ = try check(result, sql, conn)
        prepared[sql] = name
        return name
    }

    /// Calls `body` with libpq's parameter arrays (binary format), valid during the call only.
    private static func withParameters<T>(
        _ parameters: [PostgresValue],
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> T
    ) -> T {
        let encoded = parameters.map(\.encoded)
        let lengths = encoded.map { Int32($0?.count ?? 0) }
        let formats = [Int32](repeating: 1, count: parameters.count)
        let copies: [UnsafeMutablePointer<CChar>?] = encoded.map { bytes in
            guard let bytes else { return nil }
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, bytes.count))
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawPointer(pointer).copyMemory(from: source.baseAddress ?? UnsafeRawPointer(pointer), byteCount: source.count)
            }
            return pointer
        }
        defer { copies.forEach { $0?.deallocate() } }
        let values = copies.map { UnsafePointer($0) }
        return values.withUnsafeBufferPointer { v in
            lengths.withUnsafeBufferPointer { l in
                formats.withUnsafeBufferPointer { f in body(Int32(parameters.count), v.baseAddress, l.baseAddress, f.baseAddress) }
            }
        }
    }

    /// Runs `body` in a transaction: begin, run, commit; rolls back and rethrows when it throws.
    /// - Parameter durable: `false` lets the commit return before the server flushed it to its disk
    ///   (`synchronous_commit = off` for this transaction only). The server's write-ahead log keeps
    ///   commits in order, so the next durable commit flushes this one too; a crash of the server
    ///   before that loses it, and only it and the ones after it.
    ///
    /// The BEGIN is not sent on its own: it goes with the body's first statement (``query(_:_:)``,
    /// ``pipeline(_:commit:)``), and a body that ends with `pipeline(_:commit: true)` sends its COMMIT
    /// there too — an episode's transaction is two round trips.
    func transaction<T>(durable: Bool = true, _ body: () throws -> T) throws -> T {
        commitInFlight = false
        committedInPipeline = false
        pendingBegin = [PostgresStatement("BEGIN")] + (durable ? [] : [PostgresStatement("SET LOCAL synchronous_commit = off")])
        let value: T
        do {
            value = try body()
        } catch {
            let begun = pendingBegin.isEmpty
            pendingBegin = []
            // Also after a COMMIT in a pipeline failed: a ROLLBACK outside a transaction only warns.
            if begun && isOpen { _ = try? execute("ROLLBACK") }
            throw error
        }
        guard pendingBegin.isEmpty else {
            // The body ran no statement: there is no transaction to end.
            pendingBegin = []
            return value
        }
        if committedInPipeline { return value }
        // Stays set when COMMIT fails, for the caller to see (cleared by the next transaction).
        commitInFlight = true
        try execute("COMMIT")
        commitInFlight = false
        return value
    }

    /// Reads the notifications that arrived (after the socket became readable).
    /// - Throws: ``PostgresError`` when the connection broke.
    func notifications() throws -> [(channel: String, payload: String)] {
        let conn = try connection("LISTEN")
        guard PQconsumeInput(conn) == 1 else {
            throw PostgresError(sqlState: "08006", message: String(cString: PQerrorMessage(conn)), connectionFailure: true)
        }
        var received: [(String, String)] = []
        while let notify = PQnotifies(conn) {
            received.append((String(cString: notify.pointee.relname), String(cString: notify.pointee.extra)))
            PQfreemem(notify)
        }
        return received
    }
}
