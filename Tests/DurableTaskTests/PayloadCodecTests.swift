@testable import DurableTask
import Foundation
import Testing

@Suite struct PayloadCodecTests {
    @Test(arguments: ["plain", "", "quote \" and backslash \\", "line\nbreak\ttab\r", "control \u{01}\u{1f}", "ünïcødé ✓ 🎉"])
    func stringsRoundTripAndMatchFoundationJSON(text: String) throws {
        let payload = try PayloadCodec.encode(text)
        #expect(try JSONDecoder().decode(String.self, from: payload.data) == text)
        #expect(try PayloadCodec.decode(String.self, from: payload) == text)
    }

    @Test(arguments: [0, 7, -42, Int.max, Int.min + 1])
    func integersRoundTrip(value: Int) throws {
        let payload = try PayloadCodec.encode(value)
        #expect(payload.json == String(value))
        #expect(try PayloadCodec.decode(Int.self, from: payload) == value)
    }

    @Test func structsUseFoundationAndBadBytesGiveAClearError() throws {
        struct Point: Codable, Equatable { var x: Int; var y: String }
        let payload = try PayloadCodec.encode(Point(x: 1, y: "a"))
        #expect(try PayloadCodec.decode(Point.self, from: payload) == Point(x: 1, y: "a"))
        #expect(throws: DurableTaskError.self) { try PayloadCodec.decode(Int.self, from: Payload(json: "\"x\"")) }
        #expect(throws: DurableTaskError.self) { try PayloadCodec.decode(Int.self, from: Payload(json: "-")) }
        #expect(throws: DurableTaskError.self) { try PayloadCodec.encode(String(repeating: "a", count: 100), limit: 10) }
    }
}
