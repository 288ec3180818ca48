@_spi(Backend) @testable import DurableTask
import Foundation
import Testing

/// The identifiers that replaced Foundation's `UUID()` in hot paths: version 4 UUIDs that do not repeat.
struct UniqueIDTests {
    @Test func identifiersAreVersionFourUUIDsThatDoNotRepeat() async throws {
        // From several tasks at once, as the worker and the client make them.
        let batches = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<4 { group.addTask { (0..<10_000).map { _ in UniqueID.string() } } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let all = batches.flatMap { $0 }
        #expect(Set(all).count == all.count, "an identifier repeated")
        for id in all.prefix(1_000) {
            let uuid = try #require(UUID(uuidString: id))
            #expect(uuid.uuidString == id)
            #expect(uuid.uuid.6 >> 4 == 4, "version \(uuid.uuid.6 >> 4) in \(id)")
            #expect(uuid.uuid.8 >> 6 == 0b10, "variant bits of \(id)")
        }
    }

    @Test func instanceIDsAreVersionSevenUUIDsInCreationOrder() async throws {
        let before = Date().timeIntervalSince1970
        let batches = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<4 { group.addTask { (0..<10_000).map { _ in UniqueID.timeOrdered() } } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let after = Date().timeIntervalSince1970
        let all = batches.flatMap { $0 }
        #expect(Set(all).count == all.count, "an identifier repeated")
        for batch in batches {
            // Each task's identifiers increase as strings, which is how an index orders them.
            #expect(zip(batch, batch.dropFirst()).allSatisfy { $0 < $1 }, "out of creation order")
        }
        for id in all.prefix(1_000) + all.suffix(1_000) {
            let uuid = try #require(UUID(uuidString: id))
            #expect(uuid.uuidString == id)
            #expect(uuid.uuid.6 >> 4 == 7, "version \(uuid.uuid.6 >> 4) in \(id)")
            #expect(uuid.uuid.8 >> 6 == 0b10, "variant bits of \(id)")
            let milliseconds = withUnsafeBytes(of: uuid.uuid) { b in b.prefix(6).reduce(0.0) { $0 * 256 + Double($1) } }
            // 40,000 made in one burst may run ahead of the clock by at most 40,000 ticks of 1/4096 ms.
            #expect(milliseconds / 1000 >= before.rounded(.down) - 1 && milliseconds / 1000 <= after + 11, "timestamp of \(id)")
        }
    }
}
