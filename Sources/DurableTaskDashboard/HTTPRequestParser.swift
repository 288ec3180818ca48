/// Limits the server enforces on every request, and its timeouts.
public struct HTTPServerLimits: Sendable {
    /// The longest request line (method, target, version) in bytes; longer is `414`.
    public var maxRequestLineBytes: Int
    /// The most bytes of request line plus header fields; more is `431`.
    public var maxHeaderBytes: Int
    /// The most header fields; more is `431`.
    public var maxHeaderCount: Int
    /// The largest body; larger is `413`, answered before the body is read.
    public var maxBodyBytes: Int
    /// How long a client may take to send its whole request; slower is `408` (slow-client defence).
    public var requestTimeout: Duration
    /// How long a client may take to read the response before the connection is dropped.
    public var writeTimeout: Duration
    /// Open connections at most; beyond, new connections are answered `503` and closed at once.
    public var maxConnections: Int
    /// Requests handled at once; later complete requests wait their turn.
    public var maxConcurrentRequests: Int

    /// Creates limits; the defaults suit a dashboard used by a few people.
    public init(
        maxRequestLineBytes: Int = 8 * 1024, maxHeaderBytes: Int = 32 * 1024, maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 1024 * 1024, requestTimeout: Duration = .seconds(10), writeTimeout: Duration = .seconds(30),
        maxConnections: Int = 1024, maxConcurrentRequests: Int = 8
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.writeTimeout = writeTimeout
        self.maxConnections = maxConnections
        self.maxConcurrentRequests = maxConcurrentRequests
    }
}

/// An incremental, strict HTTP/1.1 request parser: bytes in, a request or a 4xx/5xx out.
///
/// A pure state machine with no I/O, so every hostile input can be tested byte by byte. Strict on
/// purpose: only what a browser or curl sends is accepted (CRLF line ends, a token method, an
/// origin-form target, `Content-Length` bodies). Anything ambiguous — obsolete line folding,
/// `Transfer-Encoding`, conflicting lengths — is refused rather than guessed, which is what closes the
/// door on request smuggling.
package struct HTTPRequestParser {
    package enum Outcome: Equatable {
        case needMore
        case request(HTTPRequest)
        case reject(status: Int, message: String)
    }

    let limits: HTTPServerLimits
    private(set) var buffer: [UInt8] = []
    private var headerEnd: Int?
    /// Where the search for the end of the head resumes, so a client sending one byte at a time costs
    /// linear time, not quadratic.
    private var scanned = 0
    private var requestLineEnd: Int?
    private var head: (method: String, target: String, headers: [(name: String, value: String)], contentLength: Int)?

    package init(limits: HTTPServerLimits) { self.limits = limits }

    /// Adds bytes and says whether a request is complete, needs more bytes, or is refused.
    package mutating func feed(_ bytes: some Collection<UInt8>) -> Outcome {
        let previousCount = buffer.count
        buffer.append(contentsOf: bytes)
        if head == nil {
            let headEnd = findHeaderEnd()
            // A bare LF is refused as soon as it arrives, not after waiting for a CRLF CRLF that a
            // client using LF line ends will never send. Only the head is searched: when the body
            // arrives in the same read, its line breaks are the client's data, not framing.
            let searchEnd = headEnd.map { $0 + 4 } ?? buffer.count
            if previousCount < searchEnd {
                for i in previousCount..<searchEnd where buffer[i] == 10 && (i == 0 || buffer[i - 1] != 13) {
                    return .reject(status: 400, message: "bare LF in the request head (lines end with CRLF)")
                }
            }
            guard let end = headEnd else {
                if let lineEnd = requestLineEnd, lineEnd > limits.maxRequestLineBytes {
                    return .reject(status: 414, message: "request line longer than \(limits.maxRequestLineBytes) bytes")
                }
                if requestLineEnd == nil, buffer.count > limits.maxRequestLineBytes {
                    return .reject(status: 414, message: "request line longer than \(limits.maxRequestLineBytes) bytes")
                }
                if buffer.count > limits.maxHeaderBytes {
                    return .reject(status: 431, message: "request header larger than \(limits.maxHeaderBytes) bytes")
                }
                return .needMore
            }
            if end > limits.maxHeaderBytes {
                return .reject(status: 431, message: "request header larger than \(limits.maxHeaderBytes) bytes")
            }
            switch parseHead(Array(buffer[0..<end])) {
            case let .failure(rejection): return .reject(status: rejection.status, message: rejection.message)
            case let .success(parsed):
                head = parsed
                headerEnd = end + 4
            }
        }
        guard let head, let headerEnd else { return .needMore }
        let available = buffer.count - headerEnd
        if available < head.contentLength { return .needMore }
        if available > head.contentLength {
            // One request per connection: bytes after the body are a pipelined request we will not
            // serve; refusing them keeps the framing unambiguous.
            return .reject(status: 400, message: "unexpected bytes after the request body (one request per connection)")
        }
        return .request(
            HTTPRequest(
                method: head.method, target: head.target, headers: head.headers,
                body: Array(buffer[headerEnd...])))
    }

    private struct Rejection: Error { var status: Int; var message: String }

    private mutating func findHeaderEnd() -> Int? {
        var i = scanned
        while i + 1 < buffer.count {
            if buffer[i] == 13, buffer[i + 1] == 10 {
                if requestLineEnd == nil { requestLineEnd = i }
                if i + 3 < buffer.count, buffer[i + 2] == 13, buffer[i + 3] == 10 { return i }
                if i + 3 >= buffer.count { break }
            }
            i += 1
        }
        scanned = i
        return nil
    }

    private func parseHead(
        _ bytes: [UInt8]
    ) -> Result<(method: String, target: String, headers: [(name: String, value: String)], contentLength: Int), Rejection> {
        // Bare LF or CR, NUL and other control bytes in the head are refused outright.
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 13 {
                guard i + 1 < bytes.count, bytes[i + 1] == 10 else { return .failure(Rejection(status: 400, message: "bare CR in the request head")) }
                lines.append(bytes[start..<i])
                i += 2
                start = i
                continue
            }
            if b == 10 { return .failure(Rejection(status: 400, message: "bare LF in the request head")) }
            if b == 0 || (b < 32 && b != 9) || b == 127 {
                return .failure(Rejection(status: 400, message: "control character in the request head"))
            }
            i += 1
        }
        lines.append(bytes[start..<bytes.count])
        guard let requestLine = lines.first, !requestLine.isEmpty else {
            return .failure(Rejection(status: 400, message: "empty request line"))
        }
        if requestLine.count > limits.maxRequestLineBytes {
            return .failure(Rejection(status: 414, message: "request line longer than \(limits.maxRequestLineBytes) bytes"))
        }
        let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(Rejection(status: 400, message: "malformed request line")) }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = String(decoding: parts[1], as: UTF8.self)
        let version = String(decoding: parts[2], as: UTF8.self)
        guard !method.isEmpty, method.utf8.allSatisfy({ Self.isTokenByte($0) }) else {
            return .failure(Rejection(status: 400, message: "malformed method"))
        }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            if version.hasPrefix("HTTP/") { return .failure(Rejection(status: 505, message: "only HTTP/1.0 and HTTP/1.1 are served")) }
            return .failure(Rejection(status: 400, message: "malformed HTTP version"))
        }
        guard target.hasPrefix("/"), target.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            return .failure(Rejection(status: 400, message: "the request target must be a path starting with /"))
        }
        let fieldLines = lines.dropFirst()
        if fieldLines.count > limits.maxHeaderCount {
            return .failure(Rejection(status: 431, message: "more than \(limits.maxHeaderCount) header fields"))
        }
        var headers: [(name: String, value: String)] = []
        var contentLength: Int?
        for line in fieldLines {
            guard let first = line.first else { return .failure(Rejection(status: 400, message: "empty header line")) }
            if first == 32 || first == 9 { return .failure(Rejection(status: 400, message: "obsolete header line folding")) }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                return .failure(Rejection(status: 400, message: "header line without a colon"))
            }
            let nameBytes = line[line.startIndex..<colon]
            guard !nameBytes.isEmpty, nameBytes.allSatisfy({ Self.isTokenByte($0) }) else {
                return .failure(Rejection(status: 400, message: "malformed header name"))
            }
            let name = String(decoding: nameBytes, as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: [" ", "\t"])
            switch name {
            case "content-length":
                guard !value.isEmpty, value.utf8.count <= 12, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let length = Int(value) else {
                    return .failure(Rejection(status: 400, message: "malformed Content-Length"))
                }
                if let contentLength, contentLength != length {
                    return .failure(Rejection(status: 400, message: "conflicting Content-Length fields"))
                }
                contentLength = length
            case "transfer-encoding":
                return .failure(Rejection(status: 501, message: "Transfer-Encoding is not supported; send Content-Length"))
            default: break
            }
            headers.append((name, value))
        }
        if version == "HTTP/1.1", !headers.contains(where: { $0.name == "host" }) {
            return .failure(Rejection(status: 400, message: "HTTP/1.1 request without Host"))
        }
        let length = contentLength ?? 0
        if length > limits.maxBodyBytes {
            return .failure(Rejection(status: 413, message: "body of \(length) bytes is larger than the limit of \(limits.maxBodyBytes)"))
        }
        return .success((method, target, headers, length))
    }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
