import DurableTask
import Foundation
import Testing

/// SplitMix64: a tiny deterministic generator, so a failing case can be reproduced from the seed
/// printed with it (`SystemRandomNumberGenerator` cannot be seeded).
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The struct decoded alongside the scalars: it always goes through `JSONDecoder`, so it checks that the
/// scalar fast paths never intercept a type they were not written for.
private struct FuzzRecord: Codable, Equatable {
    var x: Int
    var name: String
    var ratio: Double
    var flag: Bool?
}

/// Decodes random and edge-case byte strings through `PayloadCodec` and through `JSONDecoder`, which the
/// fast paths stand in for: both must give the same value or both must fail, and the codec must fail with
/// `.payloadInvalid` rather than trap.
///
/// The seed is fixed so a failure reproduces; set `DURABLETASK_FUZZ_SEED` to explore other seeds.
/// Serialized: each test keeps a core busy for seconds, and five at once starved the worker tests that
/// run beside them on a two-core machine.
@Suite(.serialized) struct PayloadCodecFuzzTests {
    static let seed: UInt64 =
        ProcessInfo.processInfo.environment["DURABLETASK_FUZZ_SEED"].flatMap { UInt64($0) }
        ?? 0x0D75_2A11_C0DE_C0DE

    @Test func handPickedEdgeCasesAgreeWithJSONDecoder() async throws { try await offThePool { try Self.handPickedEdgeCasesAgreeWithJSONDecoderCases() } }

    static func handPickedEdgeCasesAgreeWithJSONDecoderCases() throws {
        var mismatches: [String] = []
        for bytes in Self.edgeCases() { Self.compareAll(bytes, into: &mismatches) }
        Self.report(mismatches, seeded: false)
    }

    @Test func digitStringsAgreeWithJSONDecoder() async throws { try await offThePool { try Self.digitStringsAgreeWithJSONDecoderCases() } }

    static func digitStringsAgreeWithJSONDecoderCases() throws {
        var rng = SeededGenerator(seed: Self.seed)
        var mismatches: [String] = []
        var cases = 0
        // Every length from 1 to 25 digits, with and without a minus sign and leading zeros: the
        // lengths around 19 and 20 are where an Int fast path overflows.
        for length in 1...25 {
            for _ in 0..<600 {
                var text = Bool.random(using: &rng) ? "-" : ""
                let leading: UInt8 = rng.next() % 8 == 0 ? 0 : UInt8.random(in: 1...9, using: &rng)
                text += String(leading)
                for _ in 1..<length { text += String(UInt8.random(in: 0...9, using: &rng)) }
                Self.compareAll(Array(text.utf8), into: &mismatches)
                cases += 1
            }
        }
        // Every value within 1000 of the ends of Int's range, inside and outside it.
        for offset in 0..<1000 {
            let beyondMax = UInt64(Int.max) + 1 + UInt64(offset)
            for text in [
                String(Int.max - offset), String(Int.min + offset), String(beyondMax), "-\(beyondMax + 1)",
                String(UInt64.max - UInt64(offset)), "-\(UInt64.max - UInt64(offset))"
            ] {
                Self.compareAll(Array(text.utf8), into: &mismatches)
                cases += 1
            }
        }
        #expect(cases > 20_000)
        Self.report(mismatches, seeded: true)
    }

    @Test func randomBytesAgreeWithJSONDecoder() async throws { try await offThePool { try Self.randomBytesAgreeWithJSONDecoderCases() } }

    static func randomBytesAgreeWithJSONDecoderCases() throws {
        var rng = SeededGenerator(seed: Self.seed &+ 1)
        var mismatches: [String] = []
        // Mostly bytes that mean something to JSON or to UTF-8, so short strings hit the interesting cases.
        let alphabet =
            Array("0123456789-+.eE \t\n\"\\truefalsn{}[]:,u".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xA9, 0xE2, 0xED, 0xA0, 0xF0, 0xF4, 0x90, 0xFF]
        for index in 0..<15_000 {
            let count = Int.random(in: 0...10, using: &rng)
            let bytes: [UInt8] = (0..<count).map { _ in
                index % 4 == 0 ? UInt8.random(in: 0...255, using: &rng) : alphabet.randomElement(using: &rng) ?? 0
            }
            Self.compareAll(bytes, into: &mismatches)
        }
        Self.report(mismatches, seeded: true)
    }

    @Test func randomJSONishTextAgreesWithJSONDecoder() async throws { try await offThePool { try Self.randomJSONishTextAgreesWithJSONDecoderCases() } }

    static func randomJSONishTextAgreesWithJSONDecoderCases() throws {
        var rng = SeededGenerator(seed: Self.seed &+ 2)
        var mismatches: [String] = []
        for _ in 0..<8_000 {
            Self.compareAll(Self.randomQuoted(using: &rng), into: &mismatches)
            Self.compareAll(Array(Self.randomNumber(using: &rng).utf8), into: &mismatches)
        }
        for _ in 0..<3_000 {
            let x = Bool.random(using: &rng) ? String(Int.random(in: -1000...1000, using: &rng)) : Self.randomNumber(using: &rng)
            let name = String(decoding: Self.randomQuoted(using: &rng), as: UTF8.self)
            let ratio = Self.randomNumber(using: &rng)
            let flag = ["true", "false", "null", "1"].randomElement(using: &rng) ?? "null"
            var object = "{\"x\":\(x),\"name\":\(name),\"ratio\":\(ratio),\"flag\":\(flag)}"
            if rng.next() % 5 == 0 { object.removeLast() }
            Self.compareAll(Array(object.utf8), into: &mismatches)
        }
        Self.report(mismatches, seeded: true)
    }

    @Test func randomDoublesAgreeWithJSONDecoder() async throws { try await offThePool { try Self.randomDoublesAgreeWithJSONDecoderCases() } }

    static func randomDoublesAgreeWithJSONDecoderCases() throws {
        var rng = SeededGenerator(seed: Self.seed &+ 3)
        var mismatches: [String] = []
        for _ in 0..<10_000 {
            // Any bit pattern, printed the way Swift and JSONEncoder print it (shortest round trip)...
            let value = Double(bitPattern: rng.next())
            if value.isFinite { Self.compareAll(Array(value.description.utf8), into: &mismatches) }
            // ...and plain decimals with up to 20 significant digits, where a hand-written Double parser
            // would round differently from strtod.
            let digits = Int.random(in: 1...20, using: &rng)
            var text = String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
            while text.count > 1 && text.hasPrefix("0") { text.removeFirst() }
            let point = Int.random(in: 0...text.count, using: &rng)
            if point > 0 && point < text.count { text.insert(".", at: text.index(text.startIndex, offsetBy: point)) }
            if point == 0 { text = "0." + text }
            Self.compareAll(Array(((Bool.random(using: &rng) ? "-" : "") + text).utf8), into: &mismatches)
        }
        Self.report(mismatches, seeded: true)
    }

    @Test func encodedValuesDecodeToThemselvesInJSONDecoder() async throws {
        try await offThePool { try Self.encodedValuesDecodeToThemselvesInJSONDecoderCases() }
    }

    static func encodedValuesDecodeToThemselvesInJSONDecoderCases() throws {
        var rng = SeededGenerator(seed: Self.seed &+ 4)
        for _ in 0..<5_000 {
            let int = Int(bitPattern: UInt(rng.next()))
            #expect(try JSONDecoder().decode(Int.self, from: PayloadCodec.encode(int).data) == int)
            let double = Double(bitPattern: rng.next())
            if double.isFinite {
                let decoded = try JSONDecoder().decode(Double.self, from: PayloadCodec.encode(double).data)
                #expect(decoded.bitPattern == double.bitPattern)
                #expect(try PayloadCodec.decode(Double.self, from: PayloadCodec.encode(double)).bitPattern == double.bitPattern)
            }
            // Any scalars, including controls, quotes, backslashes, line separators and astral planes.
            let string = String(
                String.UnicodeScalarView(
                    (0..<Int.random(in: 0...8, using: &rng)).compactMap { _ in
                        let ranges: [ClosedRange<UInt32>] = [0...0x7F, 0x80...0x7FF, 0x2028...0x2029, 0xE000...0xFFFF, 0x10000...0x10FFFF]
                        return Unicode.Scalar(UInt32.random(in: ranges.randomElement(using: &rng) ?? 0...0x7F, using: &rng))
                    }))
            let payload = try PayloadCodec.encode(string)
            #expect(try JSONDecoder().decode(String.self, from: payload.data) == string)
            #expect(try PayloadCodec.decode(String.self, from: payload) == string)
        }
    }

    // MARK: - Cases

    static func edgeCases() -> [[UInt8]] {
        let texts = [
            "0", "-0", "00", "-00", "01", "-01", "1", "-1", "+1", " 1", "1 ", "\t1\n", "1.", ".5", "1.0", "-1.0", "1.5",
            "1e3", "1E3", "1e+3", "1e-3", "-1e0", "1e19", "0x10", "-", "--1", "1-", "", " ", "null", "true", "false",
            "True", "tru", "truee", " true", "false ", "\"true\"",
            "9223372036854775807", "9223372036854775808", "9223372036854775809", "9999999999999999999",
            "-9223372036854775808", "-9223372036854775809", "-9999999999999999999", "18446744073709551615",
            "18446744073709551616", "99999999999999999999", "-99999999999999999999", "10000000000000000000000",
            "0000000000000000000", "-0000000000000000000", "1000000000000000000", "-1000000000000000000",
            "1e400", "-1e400", "1e-400", "4.9e-324", "2e-324", "3e-324", "2.2250738585072014e-308", "1.7976931348623157e308",
            "1.7976931348623159e308", "0.1", "0.30000000000000004", "123456789012345678901234567890", "NaN", "Infinity",
            "-Infinity", "\"NaN\"", "9007199254740993", "9007199254740993.0", "0.000000000000000000001", "-0.0", "0.0e0",
            "\"", "\"\"", "\"\"\"", "\"a\"", "\"a\"b\"", "\"a\\\"b\"", "\"\\\"", "\"\\\\\"", "\"\\n\"", "\"\\u0000\"",
            "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\x41\"", "\"/\"", "\"\\/\"", "\" \"",
            "\"abc", "abc\"", "'a'", " \"a\"", "\"a\" ", "\"ünïcødé ✓ 🎉\"", "\"\u{7F}\"", "\"\u{2028}\"", "\"\u{FEFF}\"",
            "{}", "[]", "[1]", "{\"x\":1,\"name\":\"n\",\"ratio\":0.5}", "{\"x\":1,\"name\":\"n\",\"ratio\":0.5,\"flag\":true}",
            "{\"x\":9999999999999999999,\"name\":\"n\",\"ratio\":0.5}", "{\"x\":1,\"name\":\"\\u0000\",\"ratio\":-0}"
        ]
        var cases = texts.map { Array($0.utf8) }
        let raw: [[UInt8]] = [
            [0x22], [0x22, 0x00, 0x22], [0x22, 0x1F, 0x22], [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xC3, 0xA9, 0x22],
            [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
            [0x22, 0xF0, 0x9F, 0x98, 0x22], [0x22, 0xEF, 0xBF, 0xBF, 0x22], [0x22, 0x80, 0x22], [0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22],
            [0xEF, 0xBB, 0xBF, 0x22, 0x61, 0x22], [0xEF, 0xBB, 0xBF, 0x31], [0x00], [0x31, 0x00], [0x00, 0x31], [0x22, 0x00, 0x61, 0x00, 0x22, 0x00],
            [0x74, 0x72, 0x75, 0x65, 0x00], [0x31, 0xFF]
        ]
        cases += raw
        return cases
    }

    static func randomQuoted(using rng: inout SeededGenerator) -> [UInt8] {
        let pieces: [[UInt8]] = [
            Array("a".utf8), Array("Z9 ".utf8), Array("é".utf8), Array("✓".utf8), Array("🎉".utf8), Array("\\n".utf8),
            Array("\\\"".utf8), Array("\\\\".utf8), Array("\\u0041".utf8), Array("\\u0000".utf8), Array("\\ud83d\\ude00".utf8),
            Array("\\ud83d".utf8), Array("\\q".utf8), Array("\\".utf8), [0x22], [0x00], [0x09], [0x1F], [0x7F], [0x80], [0xC3],
            [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xEF, 0xBF, 0xBE]
        ]
        var bytes: [UInt8] = rng.next() % 16 == 0 ? [] : [0x22]
        for _ in 0..<Int.random(in: 0...6, using: &rng) {
            // Plain text most of the time, as in real payloads.
            bytes += rng.next() % 3 == 0 ? (pieces.randomElement(using: &rng) ?? []) : Array("word".utf8)
        }
        if rng.next() % 16 != 0 { bytes.append(0x22) }
        return bytes
    }

    static func randomNumber(using rng: inout SeededGenerator) -> String {
        var text = rng.next() % 3 == 0 ? "-" : ""
        text += String(UInt64.random(in: 0...UInt64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng))
        if rng.next() % 2 == 0 { text += "." + String(UInt32.random(in: 0...UInt32.max, using: &rng) >> UInt32.random(in: 0...31, using: &rng)) }
        if rng.next() % 3 == 0 { text += ["e", "E", "e+", "e-", "E-"].randomElement(using: &rng) ?? "e" }
        if text.last == "e" || text.last == "E" || text.last == "+" || text.last == "-" { text += String(Int.random(in: 0...400, using: &rng)) }
        if rng.next() % 10 == 0 { text = [" ", "+", "0", "."].randomElement(using: &rng).map { $0 + text } ?? text }
        return text
    }

    // MARK: - Comparing

    /// Decodes `bytes` as every type the fuzz covers, appending a line per disagreement.
    static func compareAll(_ bytes: [UInt8], into mismatches: inout [String]) {
        compare(Int.self, bytes, into: &mismatches)
        compare(String.self, bytes, into: &mismatches)
        compare(Bool.self, bytes, into: &mismatches)
        compare(Double.self, bytes, into: &mismatches) { $0.bitPattern == $1.bitPattern }
        compare(FuzzRecord.self, bytes, into: &mismatches)
    }

    private static func compare<T: Decodable & Equatable>(
        _ type: T.Type, _ bytes: [UInt8], into mismatches: inout [String], same: (T, T) -> Bool = { $0 == $1 }
    ) {
        let data = Data(bytes)
        let expected = try? JSONDecoder().decode(T.self, from: data)
        let actual: T?
        do {
            actual = try PayloadCodec.decode(T.self, from: Payload(data: data))
        } catch let error as DurableTaskError where error.code == .payloadInvalid {
            actual = nil
        } catch {
            mismatches.append("\(T.self) \(describe(bytes)): PayloadCodec threw \(error), not payloadInvalid")
            return
        }
        switch (expected, actual) {
        case (nil, nil): return
        case let (expected?, actual?) where same(expected, actual): return
        default:
            mismatches.append(
                "\(T.self) \(describe(bytes)): JSONDecoder \(expected.map { "\($0)" } ?? "fails"), PayloadCodec \(actual.map { "\($0)" } ?? "fails")")
        }
    }

    /// Records one issue listing the first disagreements, with the seed that reproduces them.
    private static func report(_ mismatches: [String], seeded: Bool) {
        guard !mismatches.isEmpty else { return }
        let origin = seeded ? "DURABLETASK_FUZZ_SEED=\(seed)" : "hand-picked cases"
        Issue.record("\(origin): \(mismatches.count) disagreements with JSONDecoder, first ones:\n\(mismatches.prefix(20).joined(separator: "\n"))")
    }

    private static func describe(_ bytes: [UInt8]) -> String {
        "[\(bytes.map { String(format: "%02x", $0) }.joined(separator: " "))] \(String(decoding: bytes, as: UTF8.self).debugDescription)"
    }
}
