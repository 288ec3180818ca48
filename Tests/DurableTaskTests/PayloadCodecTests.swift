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

    @Test(arguments: [0, 7, -42, Int.max, Int.min + 1, Int.min])
    func integersRoundTrip(value: Int) throws {
        let payload = try PayloadCodec.encode(value)
        #expect(payload.json == String(value))
        #expect(try PayloadCodec.decode(Int.self, from: payload) == value)
    }

    /// Each of these used to trap or to decode to something JSONDecoder rejects; each must fail only
    /// the decode, with `.payloadInvalid`.
    @Test(arguments: [
        ("9223372036854775808", "one above Int.max"), ("9999999999999999999", "19 digits above Int.max"),
        ("-9223372036854775809", "one below Int.min"), ("00", "a leading zero"), ("-01", "a leading zero"),
        ("\"a\"b\"", "a raw quote inside a string"), ("\"", "a lone quote")
    ])
    func invalidScalarsFailTheDecodeOnly(json: String, what: String) throws {
        let payload = Payload(json: json)
        var decodes: [() throws -> Void] = [
            { _ = try PayloadCodec.decode(Int.self, from: payload) },
            { _ = try PayloadCodec.decode(String.self, from: payload) }
        ]
        // Out of Int's range is still a fine Double.
        if !what.contains("Int.") { decodes.append { _ = try PayloadCodec.decode(Double.self, from: payload) } }
        for decode in decodes {
            let error = try #require(throws: DurableTaskError.self, "\(what)") { try decode() }
            #expect(error.code == .payloadInvalid)
        }
    }

    @Test func invalidUTF8InAStringIsRejectedNotRepaired() throws {
        // String(decoding:) would turn the lone 0xFF into U+FFFD; JSONDecoder rejects the payload.
        let payload = Payload(data: Data([0x22, 0x61, 0xFF, 0x22]))
        let error = try #require(throws: DurableTaskError.self) { try PayloadCodec.decode(String.self, from: payload) }
        #expect(error.code == .payloadInvalid)
        #expect(try PayloadCodec.decode(String.self, from: Payload(data: Data([0x22, 0xC3, 0xA9, 0x22]))) == "é")
    }

    @Test(arguments: ["0", "-0", "1.5", "-0.1", "123456789.125", "0.30000000000000004", "9007199254740993", "1e3", " 2.5"])
    func doublesMatchFoundationJSON(json: String) throws {
        let expected = try JSONDecoder().decode(Double.self, from: Data(json.utf8))
        #expect(try PayloadCodec.decode(Double.self, from: Payload(json: json)).bitPattern == expected.bitPattern)
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
