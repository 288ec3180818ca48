import Foundation
import Synchronization

/// Random identifiers (execution IDs, instance IDs the client picks, lease tokens) without a system
/// call each: Foundation's `UUID()` opens `/dev/urandom` for every value, which with 10,000
/// orchestrations started at once was a twentieth of the run's CPU.
///
/// Instance IDs are time-ordered (version 7, ``timeOrdered()``): they are the leading key of every
/// index of a database backend, and random keys put each new instance, and each of its history rows,
/// on a different page of those B-trees. Instances that run at about the same time were created at
/// about the same time, so with time-ordered keys an episode's writes land on the pages the
/// episodes before it wrote, and a commit of many episodes writes few pages.
///
/// A xoshiro256** generator seeded once from the system's random source: its values do not repeat
/// within a process, and across processes two seeds of 256 random bits collide with negligible odds.
/// Not for secrets.
@_spi(Backend) public enum UniqueID {
    private struct Xoshiro256 {
        var s: (UInt64, UInt64, UInt64, UInt64)

        init() {
            var system = SystemRandomNumberGenerator()
            s = (system.next(), system.next(), system.next(), system.next())
            if s == (0, 0, 0, 0) { s.0 = 1 }
        }

        mutating func next() -> UInt64 {
            let result = rotate(s.1 &* 5, 7) &* 9
            let t = s.1 << 17
            s.2 ^= s.0
            s.3 ^= s.1
            s.1 ^= s.2
            s.0 ^= s.3
            s.2 ^= t
            s.3 = rotate(s.3, 45)
            return result
        }

        private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
    }

    private struct State {
        var random = Xoshiro256()
        /// The last timestamp ``timeOrdered()`` used, in 1/4096 ms since 1970: never goes back, so
        /// the identifiers of one process sort in the order they were made.
        var lastTick: UInt64 = 0
    }

    private static let generator = Mutex(State())

    /// A new random (version 4) UUID.
    @_spi(Backend) public static func uuid() -> UUID {
        let (high, low) = generator.withLock { ($0.random.next(), $0.random.next()) }
        return uuid(version: 4, high: high, low: low)
    }

    /// The UUID of the 128 bits `high`, `low` with the version nibble and RFC 9562's variant bits set.
    private static func uuid(version: UInt64, high: UInt64, low: UInt64) -> UUID {
        let high = high & ~0xf000 | version << 12
        let low = low & ~(0b11 << 62) | 0b10 << 62
        return withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { b in
            UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
        }
    }

    /// ``uuid()`` as its usual string.
    @_spi(Backend) public static func string() -> String { uuid().uuidString }

    /// A new time-ordered (version 7, RFC 9562) UUID string: 48 bits of Unix time in milliseconds,
    /// 12 bits of sub-millisecond time (the RFC's "increased clock precision"), 62 random bits.
    /// Within a process each is greater than the one before, also when the clock steps back or
    /// many are made in one tick.
    @_spi(Backend) public static func timeOrdered() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let tick = UInt64(max(0, now.tv_sec)) * 4_096_000 + UInt64(max(0, now.tv_nsec)) * 4096 / 1_000_000
        let (stamp, low) = generator.withLock { state in
            state.lastTick = max(tick, state.lastTick + 1)
            return (state.lastTick, state.random.next())
        }
        // unix_ts_ms (48) | ver (4) | rand_a = sub-ms ticks (12) || var (2) | rand_b (62)
        return uuid(version: 7, high: (stamp >> 12) << 16 | (stamp & 0x0fff), low: low).uuidString
    }
}
