@testable import DurableTask
import Testing

/// The worker's cache of live orchestrations: bounded, least recently checked in evicted first.
@Suite struct OrchestrationCacheTests {
    static func engine(_ id: String) -> ReplayEngine {
        ReplayEngine(instanceID: id, options: EngineOptions(), resolveOrchestrator: { _ in nil })
    }

    /// Which of `ids` are still cached; each found one goes back in, in the order given.
    static func cached(_ ids: [String], in cache: OrchestrationCache) async -> [String] {
        var found: [String] = []
        for id in ids {
            if let engine = await cache.checkOut(id) {
                found.append(id)
                cache.checkIn(engine)
            } else {
                cache.release(id)
            }
        }
        return found
    }

    @Test func evictsTheLeastRecentlyCheckedIn() async {
        let cache = OrchestrationCache(capacity: 3)
        for id in ["a", "b", "c"] { cache.checkIn(Self.engine(id)) }
        // "a" used again: now "b" is the oldest.
        if let a = await cache.checkOut("a") { cache.checkIn(a) }
        cache.checkIn(Self.engine("d"))
        #expect(await Self.cached(["a", "b", "c", "d"], in: cache) == ["a", "c", "d"])
        cache.removeAll()
    }

    /// Many checkouts and check-ins of a few instances leave stale entries in the check-in order;
    /// eviction must still take the oldest live one.
    @Test func evictionStaysRightAfterManyCycles() async {
        let cache = OrchestrationCache(capacity: 4)
        let ids = ["a", "b", "c", "d"]
        for id in ids { cache.checkIn(Self.engine(id)) }
        for round in 0..<5_000 {
            let id = ids[round % ids.count]
            if let engine = await cache.checkOut(id) { cache.checkIn(engine) }
        }
        // The last round checked in "d" (4,999 % 4 == 3), so "a" is the oldest.
        cache.checkIn(Self.engine("e"))
        #expect(await Self.cached(["b", "c", "d", "e", "a"], in: cache) == ["b", "c", "d", "e"])
        cache.removeAll()
    }
}
