import Foundation
import Synchronization

/// Random identifiers (execution IDs, instance IDs the client picks, lease tokens) without a system
/// call each: Foundation's `UUID()` opens `/dev/urandom` for every value, which with 10,000
/// orchestrations started at once was a twentieth of the run's CPU.
///
/// A xoshiro256** generator seeded once from the system's random source: its values do not repeat
/// within a process, and across processes two seeds of 256 random bits collide with negligible odds.
/// Not for secrets.
package enum UniqueID {
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

    private static let generator = Mutex(Xoshiro256())

    /// A new random (version 4) UUID.
    package static func uuid() -> UUID {
        let (high, low) = generator.withLock { ($0.next(), $0.next()) }
        return withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { b in
            UUID(
                uuid: (
                    b[0], b[1], b[2], b[3], b[4], b[5], (b[6] & 0x0f) | 0x40, b[7],
                    (b[8] & 0x3f) | 0x80, b[9], b[10], b[11], b[12], b[13], b[14], b[15]
                ))
        }
    }

    /// ``uuid()`` as its usual string.
    package static func string() -> String { uuid().uuidString }
}
