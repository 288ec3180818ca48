#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
import Synchronization

/// A small HTTP/1.1 server on the system's sockets: one request per connection, strict limits.
///
/// One I/O thread polls every connection (non-blocking sockets), so a thousand idle or slow clients
/// cost a thousand file descriptors and no threads; each complete request is handed to the async
/// handler, at most ``HTTPServerLimits/maxConcurrentRequests`` at a time. Every connection has a
/// deadline for sending its request and one for reading the answer; a client that misses either is
/// dropped without affecting the others. Bytes of one connection never reach another's parser.
///
/// `package` so tests can start one with a stand-in for `accept` (to run out of descriptors on cue).
package final class HTTPServer: Sendable {
    package typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse
    /// Accepts one connection on the listening descriptor: the new descriptor, or -1 with `errno` set.
    package typealias Accept = @Sendable (Int32) -> Int32

    /// How long the listener is left alone after `accept` ran out of file descriptors.
    static let acceptPause: Duration = .milliseconds(100)

    /// The port the server listens on (the one the system picked when asked for port 0).
    package let port: Int
    private let listenFD: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let limits: HTTPServerLimits
    private let handler: Handler
    fileprivate let acceptConnection: Accept
    private let finished = Mutex<[(id: Int, bytes: [UInt8])]>([])
    private let stopping = Atomic<Bool>(false)
    private let done = Mutex<(isDone: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Binds and listens; the I/O thread starts with ``start()``.
    /// - Parameter accept: the system's `accept` unless a test stands in for it.
    /// - Throws: ``DashboardError`` when the address is invalid or the port cannot be bound.
    package init(
        host: String, port: Int, limits: HTTPServerLimits, accept: @escaping Accept = HTTPServer.systemAccept,
        handler: @escaping Handler
    ) throws {
        self.limits = limits
        self.handler = handler
        self.acceptConnection = accept
        let address = host == "localhost" ? "127.0.0.1" : host
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        guard (0...65535).contains(port) else { throw DashboardError("port \(port) is out of range 0-65535") }
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else {
            throw DashboardError("'\(host)' is not an IPv4 address (use 127.0.0.1, 0.0.0.0 or an interface's address)")
        }
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw DashboardError("socket() failed: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw DashboardError("cannot listen on \(host):\(port): \(message)")
        }
        guard listen(fd, 128) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw DashboardError("listen() failed: \(message)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            close(fd)
            throw DashboardError("pipe() failed: \(String(cString: strerror(errno)))")
        }
        listenFD = fd
        wakeRead = fds[0]
        wakeWrite = fds[1]
        for descriptor in [listenFD, wakeRead, wakeWrite] { Self.setNonBlocking(descriptor) }
    }

    /// The system's `accept`, without the peer's address (the server does not log it).
    package static let systemAccept: Accept = { fd in
        #if canImport(Glibc)
            Glibc.accept(fd, nil, nil)
        #else
            Darwin.accept(fd, nil, nil)
        #endif
    }

    /// Starts the I/O thread.
    package func start() {
        let thread = Thread { [self] in
            var loop = IOLoop(server: self)
            loop.run()
            close(listenFD)
            close(wakeRead)
            close(wakeWrite)
            let waiters = done.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.isDone = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
        thread.name = "DurableTaskDashboard HTTP"
        thread.start()
    }

    /// Stops accepting, drops open connections and ends the I/O thread.
    package func stop() {
        stopping.store(true, ordering: .releasing)
        wake()
    }

    /// Returns when the I/O thread has ended.
    package func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let ready = done.withLock { state -> Bool in
                if state.isDone { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    fileprivate var isStopping: Bool { stopping.load(ordering: .acquiring) }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    fileprivate func dispatch(id: Int, request: HTTPRequest) {
        let handler = self.handler
        Task { [self] in
            let response = await handler(request)
            finished.withLock { $0.append((id, response.serialized())) }
            wake()
        }
    }

    fileprivate func takeFinished() -> [(id: Int, bytes: [UInt8])] {
        finished.withLock { list in
            defer { list.removeAll() }
            return list
        }
    }

    fileprivate static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// The loop that owns every connection; it lives on the I/O thread alone, so it needs no locks.
    private struct IOLoop {
        enum Phase { case reading, handling, writing, lingering }

        struct Connection {
            let fd: Int32
            var phase: Phase = .reading
            var parser: HTTPRequestParser
            var deadline: ContinuousClock.Instant
            var output: [UInt8] = []
            var written = 0
        }

        let server: HTTPServer
        var connections: [Int: Connection] = [:]
        var nextID = 0
        var handling = 0
        var waiting: [(id: Int, request: HTTPRequest)] = []
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        /// Set when `accept` ran out of file descriptors; until then the listener is not polled.
        var acceptPausedUntil: ContinuousClock.Instant?

        init(server: HTTPServer) { self.server = server }

        var limits: HTTPServerLimits { server.limits }

        mutating func run() {
            while !server.isStopping {
                let now = ContinuousClock.now
                var nearest = now + .seconds(1)
                if let until = acceptPausedUntil, until <= now { acceptPausedUntil = nil }
                if let until = acceptPausedUntil { nearest = min(nearest, until) }
                // poll() skips a negative descriptor: that is how the listener sits out a pause.
                var fds: [pollfd] = [
                    pollfd(fd: acceptPausedUntil == nil ? server.listenFD : -1, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: server.wakeRead, events: Int16(POLLIN), revents: 0)
                ]
                var ids: [Int] = [-1, -1]
                for (id, connection) in connections {
                    nearest = min(nearest, connection.deadline)
                    switch connection.phase {
                    case .reading, .lingering: fds.append(pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0))
                    case .writing: fds.append(pollfd(fd: connection.fd, events: Int16(POLLOUT), revents: 0))
                    case .handling: continue
                    }
                    ids.append(id)
                }
                let wait = max(0, min(1000, Self.milliseconds(nearest - now) + 1))
                let ready = poll(&fds, nfds_t(fds.count), Int32(wait))
                if ready < 0 && errno != EINTR { break }
                if fds[1].revents != 0 { drainWakePipe() }
                for response in server.takeFinished() { respond(response.id, response.bytes, handled: true) }
                if fds[0].revents != 0 { acceptAll() }
                for index in 2..<fds.count where fds[index].revents != 0 { service(ids[index], revents: fds[index].revents) }
                expireDeadlines()
                startWaiting()
            }
            for connection in connections.values { close(connection.fd) }
            connections.removeAll()
        }

        static func milliseconds(_ duration: Duration) -> Int {
            let (seconds, attoseconds) = duration.components
            return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
        }

        mutating func drainWakePipe() {
            var scratch = [UInt8](repeating: 0, count: 256)
            while read(server.wakeRead, &scratch, scratch.count) > 0 {}
        }

        mutating func acceptAll() {
            while true {
                let fd = server.acceptConnection(server.listenFD)
                if fd < 0 {
                    // Out of descriptors: the pending connection stays queued and the listener stays
                    // readable, so polling it again at once would spin a core until a descriptor frees
                    // up. Sit out a short pause instead; open connections are served meanwhile.
                    if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                        acceptPausedUntil = .now + HTTPServer.acceptPause
                    }
                    return
                }
                HTTPServer.setNonBlocking(fd)
                var one: Int32 = 1
                #if canImport(Darwin)
                    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
                #endif
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                if connections.count >= limits.maxConnections {
                    // Over the limit: a best-effort 503 without waiting on the client, then close.
                    let bytes = HTTPResponse.text("too many connections\n", status: 503).serialized()
                    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Self.sendFlags) }
                    close(fd)
                    continue
                }
                let id = nextID
                nextID += 1
                connections[id] = Connection(
                    fd: fd, parser: HTTPRequestParser(limits: limits),
                    deadline: .now + limits.requestTimeout)
            }
        }

        static var sendFlags: Int32 {
            #if canImport(Glibc)
                Int32(MSG_NOSIGNAL)
            #else
                0
            #endif
        }

        mutating func service(_ id: Int, revents: Int16) {
            guard var connection = connections[id] else { return }
            switch connection.phase {
            case .reading:
                let count = read(connection.fd, &readBuffer, readBuffer.count)
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    drop(id)
                    return
                }
                guard count > 0 else { return }
                switch connection.parser.feed(readBuffer[0..<count]) {
                case .needMore:
                    connections[id] = connection
                case let .request(request):
                    connection.phase = .handling
                    connections[id] = connection
                    waiting.append((id, request))
                case let .reject(status, message):
                    connections[id] = connection
                    respond(id, HTTPResponse.text("\(status) \(HTTPResponse.reason(status)): \(message)\n", status: status).serialized(), handled: false)
                }
            case .writing:
                writeSome(id)
            case .lingering:
                let count = read(connection.fd, &readBuffer, readBuffer.count)
                if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { drop(id) }
            case .handling:
                break
            }
        }

        mutating func respond(_ id: Int, _ bytes: [UInt8], handled: Bool) {
            if handled { handling -= 1 }
            guard var connection = connections[id] else { return }
            connection.phase = .writing
            connection.output = bytes
            connection.written = 0
            connection.deadline = .now + limits.writeTimeout
            connection.parser = HTTPRequestParser(limits: limits)
            connections[id] = connection
            writeSome(id)
        }

        mutating func writeSome(_ id: Int) {
            guard var connection = connections[id] else { return }
            while connection.written < connection.output.count {
                let count = connection.output.withUnsafeBytes { buffer in
                    send(connection.fd, buffer.baseAddress.map { $0 + connection.written }, buffer.count - connection.written, Self.sendFlags)
                }
                if count > 0 {
                    connection.written += count
                } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    connections[id] = connection
                    return
                } else {
                    drop(id)
                    return
                }
            }
            // Half-close and read what the client still sends for a moment: closing with unread bytes
            // (an oversized body we refused) makes the kernel send a reset that can destroy the
            // response before the client reads it.
            shutdown(connection.fd, Int32(SHUT_WR))
            connection.phase = .lingering
            connection.output = []
            connection.deadline = .now + .seconds(2)
            connections[id] = connection
        }

        mutating func expireDeadlines() {
            let now = ContinuousClock.now
            for (id, connection) in connections where connection.deadline <= now {
                switch connection.phase {
                case .reading:
                    let status = 408
                    respond(
                        id,
                        HTTPResponse.text(
                            "\(status) Request Timeout: the request did not arrive within \(limits.requestTimeout)\n",
                            status: status
                        ).serialized(), handled: false)
                case .writing, .lingering:
                    drop(id)
                case .handling:
                    break
                }
            }
        }

        mutating func startWaiting() {
            while handling < limits.maxConcurrentRequests, !waiting.isEmpty {
                let next = waiting.removeFirst()
                guard connections[next.id] != nil else { continue }
                handling += 1
                server.dispatch(id: next.id, request: next.request)
            }
        }

        mutating func drop(_ id: Int) {
            guard let connection = connections.removeValue(forKey: id) else { return }
            close(connection.fd)
        }
    }
}

/// A dashboard or server setup error, with a message for a person.
public struct DashboardError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
