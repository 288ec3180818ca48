@testable import DurableTask
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
}
