@testable import DurableTask
import Foundation
import Testing

// MARK: - Types under test

private struct Small: Codable, Equatable {
    var iterations: Int
    var parallel: Int
    var offset: Int
}

private struct Integers: Codable, Equatable {
    var int: Int
    var int8: Int8
    var int16: Int16
    var int32: Int32
    var int64: Int64
    var uint: UInt
    var uint8: UInt8
    var uint16: UInt16
    var uint32: UInt32
    var uint64: UInt64
    var flag: Bool
    var text: String

    static let minimum = Integers(
        int: .min, int8: .min, int16: .min, int32: .min, int64: .min, uint: .min, uint8: .min, uint16: .min, uint32: .min, uint64: .min,
        flag: false, text: "")
    static let maximum = Integers(
        int: .max, int8: .max, int16: .max, int32: .max, int64: .max, uint: .max, uint8: .max, uint16: .max, uint32: .max, uint64: .max,
        flag: true, text: "max")
    static let small = Integers(
        int: -1, int8: 7, int16: -300, int32: 70_000, int64: -5_000_000_000, uint: 1, uint8: 200, uint16: 60_000, uint32: 4_000_000_000,
        uint64: 10_000_000_000_000_000_000, flag: true, text: "small")
}

private struct Inner: Codable, Equatable {
    var name: String
    var tags: [String]
}

private enum Shape: Codable, Equatable {
    case point
    case circle(radius: Int)
    case rect(width: Int, height: Int)
    case labeled(String, Int8)
    case wrapped(Inner?)
}

private enum Color: String, Codable {
    case red, green
    case blue = "BLUE"
}

private enum Level: Int, Codable {
    case low = 1
    case high = 99
}

private struct Empty: Codable, Equatable {}

private struct Everything: Codable, Equatable {
    var title: String
    var numbers: [Int]
    var inner: Inner?
    var counts: [String: Int]
    var names: [Int: String]
    var optionals: [Int?]
    var grid: [[UInt8]]
    var shape: Shape
    var shapes: [Shape]
    var color: Color
    var level: Level?
    var empty: Empty
    var emptyList: [String]
    var emptyMap: [String: Bool]
    var nested: [String: [Inner]]
    var unsigned: UInt64?
    var maybeNot: Int?
}

/// The second struct of the benchmark: a string, ten integers, an optional nested struct and a
/// dictionary of three.
private struct Medium: Codable, Equatable {
    var name: String
    var values: [Int]
    var inner: Inner?
    var scores: [String: Int]
}

/// A plain decimal `Double` beside an integer: FastJSON decodes these (encoding them is left to
/// JSONEncoder).
private struct WithDouble: Codable, Equatable {
    var ratio: Double
    var count: Int
}

/// Encodes into, and decodes from, one object through two keyed containers, as a class and its
/// superclass do.
private struct TwoContainers: Codable, Equatable {
    var a: Int
    var b: String

    enum AKeys: CodingKey { case a }
    enum BKeys: CodingKey { case b }

    init(a: Int, b: String) {
        self.a = a
        self.b = b
    }

    init(from decoder: any Decoder) throws {
        a = try decoder.container(keyedBy: AKeys.self).decode(Int.self, forKey: .a)
        b = try decoder.container(keyedBy: BKeys.self).decode(String.self, forKey: .b)
    }

    func encode(to encoder: any Encoder) throws {
        var first = encoder.container(keyedBy: AKeys.self)
        try first.encode(a, forKey: .a)
        var second = encoder.container(keyedBy: BKeys.self)
        try second.encode(b, forKey: .b)
    }
}

/// Writes a key twice; JSONEncoder keeps the last value.
private struct WritesTwice: Encodable {
    enum Keys: CodingKey { case a, b }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(1, forKey: .b)
        try container.encode("first", forKey: .a)
        try container.encode("second", forKey: .a)
    }
}

/// Records the coding path its coder reports, so FastJSON's paths can be held against Foundation's.
private struct PathProbe: Codable, Equatable {
    var path: String

    init(path: String) { self.path = path }

    static func describe(_ path: [any CodingKey]) -> String {
        path.map { "\($0.stringValue)|\($0.intValue.map(String.init) ?? "-")" }.joined(separator: "/")
    }

    init(from decoder: any Decoder) throws {
        _ = try decoder.singleValueContainer().decode(String.self)
        path = Self.describe(decoder.codingPath)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Self.describe(encoder.codingPath))
    }
}

private enum ProbeCase: Codable, Equatable {
    case one(PathProbe)
    case two(first: PathProbe, second: [PathProbe])
}

private struct Paths: Codable, Equatable {
    var single: PathProbe
    var list: [PathProbe]
    var map: [String: PathProbe]
    var byNumber: [Int: PathProbe]
    var optional: PathProbe?
    var deep: [[PathProbe]]
    var cases: [ProbeCase]

    static let sample = Paths(
        single: PathProbe(path: ""), list: [PathProbe(path: ""), PathProbe(path: "")], map: ["k": PathProbe(path: "")],
        byNumber: [7: PathProbe(path: "")], optional: PathProbe(path: ""), deep: [[PathProbe(path: "")]],
        cases: [.one(PathProbe(path: "")), .two(first: PathProbe(path: ""), second: [PathProbe(path: "")])])
}

/// A list of lists of any depth.
private struct Nest: Codable, Equatable {
    var children: [Nest]

    init(depth: Int) {
        children = depth > 1 ? [Nest(depth: depth - 1)] : []
    }

    init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        children = []
        while !container.isAtEnd { children.append(try container.decode(Nest.self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        for child in children { try container.encode(child) }
    }
}

/// Catches its decoding errors and carries on, so an error FastJSON throws but JSONDecoder would not
/// (`1.0` is an `Int` to JSONDecoder) would change the value if FastJSON did not give up altogether.
private struct CatchesErrors: Decodable, Equatable {
    var x: Int

    enum Keys: CodingKey { case x }

    init(x: Int) { self.x = x }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        x = (try? container.decode(Int.self, forKey: .x)) ?? -1
    }
}

/// Catches the error of encoding a `Double`, which FastJSON leaves to JSONEncoder.
private struct CatchesEncodingErrors: Encodable {
    enum Keys: CodingKey { case x, y }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try? container.encode(1.5, forKey: .x)
        try container.encode(1, forKey: .y)
    }
}

/// Reads its fields past the end of an array with `decodeIfPresent`, where JSONDecoder still counts
/// the elements.
private struct ReadsPastTheEnd: Decodable, Equatable {
    var values: [Int?]
    var index: Int

    init(values: [Int?], index: Int) {
        self.values = values
        self.index = index
    }

    init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        values = []
        for _ in 0..<4 { values.append(try container.decodeIfPresent(Int.self)) }
        index = container.currentIndex
    }
}

private class Base: Codable {
    var id: Int
    init(id: Int) { self.id = id }
}

/// A subclass encoding its superclass through `superEncoder`, which FastJSON leaves to Foundation.
private final class Derived: Base {
    var extra: String

    enum Keys: CodingKey { case extra }

    init(id: Int, extra: String) {
        self.extra = extra
        super.init(id: id)
    }

    required init(from decoder: any Decoder) throws {
        extra = try decoder.container(keyedBy: Keys.self).decode(String.self, forKey: .extra)
        try super.init(from: decoder.container(keyedBy: Keys.self).superDecoder())
    }

    override func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(extra, forKey: .extra)
        try super.encode(to: container.superEncoder())
    }
}

private struct Special<T: Codable & Equatable>: Codable, Equatable {
    var value: T
    var count: Int
}

/// Field names that are not ASCII, so keys are compared as Strings.
private struct Accents: Codable, Equatable {
    var café: Int
    var naïve: String
    var plain: Bool
}

/// Writes two spellings of one key (precomposed and decomposed "é"), one key to JSONEncoder.
private struct WritesEquivalentKeys: Encodable {
    struct Key: CodingKey {
        var stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(1, forKey: Key(stringValue: "caf\u{E9}"))
        try container.encode(2, forKey: Key(stringValue: "cafe\u{301}"))
    }
}

private struct EncodesNothing: Encodable {
    func encode(to encoder: any Encoder) throws {}
}

// MARK: - Tests

@Suite struct FastJSONTests {
    static let strings = [
        "", "plain", "quote \" and backslash \\", "slash / and \\/", "line\nbreak\ttab\rreturn", "\u{08}\u{0C}", "\u{00}\u{01}\u{1F}\u{7F}",
        "ünïcødé ✓ 🎉", "e\u{301} and é", "\u{2028}\u{2029}", "日本語", "\u{FEFF}bom", "\u{10FFFF}", "ends with backslash \\"
    ]

    fileprivate static let everything = Everything(
        title: "a \"title\" with / and \\ and \n",
        numbers: [0, -1, 1, .max, .min, 42],
        inner: Inner(name: "inner", tags: ["x", "", "é"]),
        counts: ["b": 2, "a": 1, "é": 5, "Z": -3, "": 0, "a/b": 9, "\"q\"": 4],
        names: [3: "three", -1: "minus one", 10: "ten", 0: "zero"],
        optionals: [1, nil, 3, nil],
        grid: [[1, 2], [], [255]],
        shape: .rect(width: 3, height: 4),
        shapes: [.point, .circle(radius: 2), .labeled("l", -8), .wrapped(nil), .wrapped(Inner(name: "w", tags: []))],
        color: .blue,
        level: .high,
        empty: Empty(),
        emptyList: [],
        emptyMap: [:],
        nested: ["group": [Inner(name: "n", tags: ["t"])], "none": []],
        unsigned: .max,
        maybeNot: nil)

    fileprivate static let medium = Medium(
        name: "medium", values: Array(0..<10), inner: Inner(name: "inner", tags: ["a", "b"]), scores: ["alpha": 1, "beta": 2, "gamma": 3])

    // MARK: Round trips

    /// FastJSON's bytes are JSONEncoder's bytes; both decoders read them back; FastJSON reads
    /// JSONEncoder's output, plain and pretty-printed, to the same value.
    private func roundTrip<T: Codable & Equatable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let foundation = try Self.sortedEncoder.encode(value)
        let fast = try #require(FastJSON.encode(value), "FastJSON.encode fell back for \(value)", sourceLocation: sourceLocation)
        #expect(
            String(decoding: fast, as: UTF8.self) == String(decoding: foundation, as: UTF8.self), "bytes differ from JSONEncoder's",
            sourceLocation: sourceLocation)
        #expect(try JSONDecoder().decode(T.self, from: fast) == value, sourceLocation: sourceLocation)
        #expect(FastJSON.decode(T.self, from: fast) == value, "FastJSON → FastJSON", sourceLocation: sourceLocation)
        #expect(FastJSON.decode(T.self, from: foundation) == value, "JSONEncoder → FastJSON", sourceLocation: sourceLocation)
        let pretty = try Self.prettyEncoder.encode(value)
        #expect(FastJSON.decode(T.self, from: pretty) == value, "pretty JSONEncoder → FastJSON", sourceLocation: sourceLocation)
    }

    static let sortedEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let prettyEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted]
        return encoder
    }()

    @Test func structsRoundTrip() throws {
        try roundTrip(Small(iterations: 10, parallel: 2, offset: -3))
        try roundTrip(Integers.minimum)
        try roundTrip(Integers.maximum)
        try roundTrip(Integers.small)
        try roundTrip(Self.everything)
        try roundTrip(Self.medium)
        try roundTrip(Medium(name: "", values: [], inner: nil, scores: [:]))
        try roundTrip(Empty())
        try roundTrip(TwoContainers(a: 1, b: "two"))
    }

    @Test func enumsAndOptionalsRoundTrip() throws {
        for shape in Self.everything.shapes + [Self.everything.shape] { try roundTrip(shape) }
        try roundTrip([Color.red, .green, .blue])
        try roundTrip([Level.low, .high])
        try roundTrip([Int?.none, 1, nil])
        try roundTrip([Inner?.none, Inner(name: "x", tags: [])])
        try roundTrip(Int?.none)
        try roundTrip(Inner?.none)
        try roundTrip(Int8?.some(-8))
        try roundTrip(Shape?.some(.point))
    }

    @Test func collectionsAndScalarsRoundTrip() throws {
        try roundTrip([Int]())
        try roundTrip([String: Int]())
        try roundTrip([[Int]]())
        try roundTrip([[Int]()])
        try roundTrip(["b": [1], "a": []])
        try roundTrip([5: "five", -5: "minus five"])
        try roundTrip([UInt64.max, 0])
        try roundTrip([true, false])
        try roundTrip(Int8.min)
        try roundTrip(UInt16.max)
        try roundTrip(true)
        try roundTrip(-0)
        try roundTrip(["b": "2", "a": "1"])
        try roundTrip([String]())
        try roundTrip([true: 1])
    }

    @Test func nonASCIIKeysMatchAsStrings() throws {
        try roundTrip(Accents(café: 1, naïve: "n", plain: true))
        // The decomposed spelling of "café" is the same key to JSONDecoder's dictionary.
        let decomposed = Data("{\"cafe\u{301}\":1,\"naïve\":\"n\",\"plain\":true}".utf8)
        let expected = try JSONDecoder().decode(Accents.self, from: decomposed)
        #expect(FastJSON.decode(Accents.self, from: decomposed) == expected)
        #expect(FastJSON.encode(WritesEquivalentKeys()) == nil)
    }

    @Test func directCollectionsFallBackLikeTheGenericPath() {
        #expect(FastJSON.decode([Int].self, from: Data("[1,2.0]".utf8)) == nil)
        #expect(FastJSON.decode([String].self, from: Data("[\"a\",null]".utf8)) == nil)
        #expect(FastJSON.decode([String: Int].self, from: Data(#"{"a":1,"b":"2"}"#.utf8)) == nil)
        #expect(FastJSON.decode([String: String].self, from: Data(#"{"a":"1","a":"2"}"#.utf8)) == nil)
        #expect(FastJSON.decode([String: String].self, from: Data(#"{"a":"1","b":"2"}"#.utf8)) == ["a": "1", "b": "2"])
        #expect(FastJSON.decode([Int].self, from: Data("null".utf8)) == nil)
    }

    @Test(arguments: strings)
    func stringsRoundTrip(text: String) throws {
        try roundTrip(text)
        try roundTrip([text: text])
        try roundTrip(Inner(name: text, tags: [text, text]))
    }

    @Test func manyKeysAndLongStringsRoundTrip() throws {
        // Objects over the size searched key by key get a table; strings long enough to need growth.
        let many = Dictionary(uniqueKeysWithValues: (0..<300).map { ("key\($0)", $0) })
        try roundTrip(many)
        try roundTrip(Dictionary(uniqueKeysWithValues: (0..<40).map { ($0 * 7 - 100, String($0)) }))
        try roundTrip(String(repeating: "long \"text\" / ", count: 500))
        try roundTrip((0..<1000).map { $0 * $0 })
    }

    @Test func codingPathsMatchFoundation() throws {
        let fast = try #require(FastJSON.encode(Paths.sample))
        #expect(String(decoding: fast, as: UTF8.self) == String(decoding: try Self.sortedEncoder.encode(Paths.sample), as: UTF8.self))
        let decoded = try #require(FastJSON.decode(Paths.self, from: fast))
        #expect(decoded == (try JSONDecoder().decode(Paths.self, from: fast)))
        // The probes did see non-trivial paths.
        #expect(decoded.deep[0][0].path == "deep|-/Index 0|0/Index 0|0")
        #expect(decoded.byNumber[7]?.path == "byNumber|-/7|7")
    }

    @Test func aKeyWrittenTwiceKeepsTheLastValue() throws {
        let fast = try #require(FastJSON.encode(WritesTwice()))
        #expect(String(decoding: fast, as: UTF8.self) == #"{"a":"second","b":1}"#)
        #expect(fast == (try Self.sortedEncoder.encode(WritesTwice())))
    }

    @Test func decodeIfPresentPastTheEndCountsLikeJSONDecoder() throws {
        let data = Data("[1,null]".utf8)
        let expected = try JSONDecoder().decode(ReadsPastTheEnd.self, from: data)
        #expect(expected == ReadsPastTheEnd(values: [1, nil, nil, nil], index: 4))
        #expect(FastJSON.decode(ReadsPastTheEnd.self, from: data) == expected)
    }

    @Test func plainDecimalsDecodeAsJSONDecoderDoes() throws {
        for text in ["0.5", "-0.1", "3", "123456789.125", "0.3000000000000004", "9007199254740992", "-0"] {
            let data = Data(#"{"ratio":\#(text),"count":1}"#.utf8)
            let expected = try JSONDecoder().decode(WithDouble.self, from: data)
            let fast = try #require(FastJSON.decode(WithDouble.self, from: data), "\(text)")
            #expect(fast.ratio.bitPattern == expected.ratio.bitPattern, "\(text)")
        }
        // Exponents and long mantissas are left to JSONDecoder.
        for text in ["1e2", "1E-2", "0.30000000000000004", "9007199254740993", "12345678901234567890", "0.12345678901234567890123"] {
            #expect(FastJSON.decode(WithDouble.self, from: Data(#"{"ratio":\#(text),"count":1}"#.utf8)) == nil, "\(text)")
        }
    }

    @Test func nestingUpToTheLimitIsHandled() throws {
        let limit = FastJSON.maxDepth
        try roundTrip(Nest(depth: limit))
        #expect(FastJSON.encode(Nest(depth: limit + 1)) == nil)
        let deepest = Data((String(repeating: "[", count: limit) + String(repeating: "]", count: limit)).utf8)
        #expect(FastJSON.decode(Nest.self, from: deepest) == Nest(depth: limit))
        let tooDeep = Data((String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)).utf8)
        #expect(FastJSON.decode(Nest.self, from: tooDeep) == nil)
        #expect(try JSONDecoder().decode(Nest.self, from: tooDeep) == Nest(depth: limit + 1))
    }

    // MARK: Fallbacks

    @Test func encodingLeavesFoundationsSpecialTypesToIt() throws {
        #expect(FastJSON.encode(Special(value: 1.5, count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: Float(1.5), count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: Date(timeIntervalSince1970: 0), count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: Data([1, 2]), count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: URL(fileURLWithPath: "/tmp"), count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: Decimal(string: "1.25") ?? 0, count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: Int128(5), count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: UInt128(5), count: 1)) == nil)
        #expect(FastJSON.encode(Special(value: [Date?.some(Date())], count: 1)) == nil)
        #expect(FastJSON.encode(1.5) == nil)
        #expect(FastJSON.encode([1.5]) == nil)
        #expect(FastJSON.encode(Date()) == nil)
        #expect(FastJSON.encode(Derived(id: 1, extra: "x")) == nil)
        #expect(FastJSON.encode(EncodesNothing()) == nil)
        #expect(FastJSON.encode(CatchesEncodingErrors()) == nil)
        // A nested value that encodes nothing is `{}` to JSONEncoder, not a failure.
        #expect(FastJSON.encode([EncodesNothing()]) == (try Self.sortedEncoder.encode([EncodesNothing()])))
    }

    @Test func decodingLeavesFoundationsSpecialTypesToIt() throws {
        func check<T: Codable & Equatable>(_ value: T) throws {
            let data = try Self.sortedEncoder.encode(Special(value: value, count: 1))
            #expect(try JSONDecoder().decode(Special<T>.self, from: data) == Special(value: value, count: 1))
            #expect(FastJSON.decode(Special<T>.self, from: data) == nil, "\(T.self)")
        }
        try check(Float(1.5))
        try check(Date(timeIntervalSince1970: 0))
        try check(Data([1, 2]))
        try check(try #require(URL(string: "https://example.com/a?b=1")))
        try check(Decimal(string: "1.25") ?? 0)
        try check(Int128(5))
        try check([Date?.some(Date(timeIntervalSince1970: 0))])
        try check(["k": Data([3])])
        let derived = try Self.sortedEncoder.encode(Derived(id: 1, extra: "x"))
        #expect(FastJSON.decode(Derived.self, from: derived) == nil)
    }

    @Test(arguments: [
        #"{"iterations":1,"parallel":2,"offset":3,"offset":4}"#, #"{"iterations":1,"parallel":2,"offset":3,}"#,
        #"{"iterations":01,"parallel":2,"offset":3}"#, #"{"iterations":1.0,"parallel":2,"offset":3}"#,
        #"{"iterations":1e2,"parallel":2,"offset":3}"#, #"{"iterations":1,"parallel":2}"#, #"{"iterations":"1","parallel":2,"offset":3}"#,
        #"{"iterations":null,"parallel":2,"offset":3}"#, #"{"iterations":true,"parallel":2,"offset":3}"#,
        #"{"iterations":9223372036854775808,"parallel":2,"offset":3}"#, #"{"iterations":-9223372036854775809,"parallel":2,"offset":3}"#,
        #"[1,2,3]"#, #"{"iterations":1,"parallel":2,"offset":3} x"#, #"{"iterations":1,"parallel":2,"offset":3}}"#,
        #"{"iterations":1 "parallel":2,"offset":3}"#, #"{"iterations":1,"parallel":2,"offset":3 // comment"#,
        #"{'iterations':1,"parallel":2,"offset":3}"#, #"{"iterations":NaN,"parallel":2,"offset":3}"#, "", " ", "null",
        "\u{FEFF}{\"iterations\":1,\"parallel\":2,\"offset\":3}"
    ])
    func invalidOrUnsupportedObjectsFallBack(json: String) {
        #expect(FastJSON.decode(Small.self, from: Data(json.utf8)) == nil)
    }

    @Test func scalarsOutOfRangeOrInTheWrongFormFallBack() {
        func none<T: Decodable & Equatable>(_ type: T.Type, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(FastJSON.decode(type, from: Data(json.utf8)) == nil, "\(json) as \(T.self)", sourceLocation: sourceLocation)
        }
        none(Int8.self, "128")
        none(Int8.self, "-129")
        none(UInt8.self, "256")
        none(UInt8.self, "-1")
        none(UInt.self, "-0")
        none(UInt64.self, "18446744073709551616")
        none(Int64.self, "9223372036854775808")
        none(Int.self, "1.0")
        none(Int.self, "1e2")
        none(Int.self, "-")
        none(Int.self, "--1")
        none(Int.self, "+1")
        none(Int.self, "01")
        none(Int.self, "1.")
        none(Int.self, ".5")
        none(Int.self, "[1,]")
        none([Int].self, "[1,]")
        none([Int].self, "[,1]")
        none([Int].self, "[1 2]")
        none([Int].self, "[01]")
        none([Int].self, "[1]]")
        none(Bool.self, "1")
        none(Bool.self, "True")
        none(String.self, "1")
        none(Int.self, "\"1\"")
        none(Int.self, "null")
        none([Int].self, "{}")
        none([String: Int].self, "[]")
        none(Float.self, "1.5")
        none([Float].self, "[1.5]")
        none(Double.self, "1e400")
        #expect(FastJSON.decode(Int8.self, from: Data("-128".utf8)) == -128)
        #expect(FastJSON.decode(UInt64.self, from: Data("18446744073709551615".utf8)) == .max)
        #expect(FastJSON.decode(Int.self, from: Data(" -0 ".utf8)) == 0)
        #expect(FastJSON.decode([Int].self, from: Data(" [ 1 , 2 ]\n".utf8)) == [1, 2])
    }

    @Test func badStringsFallBack() {
        let cases: [[UInt8]] = [
            Array(#""\ud800""#.utf8), Array(#""\udc00""#.utf8), Array(#""\ud800\u0041""#.utf8), Array(#""\ud800\ud800""#.utf8),
            Array(#""\u12""#.utf8), Array(#""\u12g4""#.utf8), Array(#""\x41""#.utf8), Array(#""\""#.utf8), Array(#""abc"#.utf8),
            [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xE0, 0x80, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xF0, 0x9F, 0x98, 0x22], [0x22, 0x80, 0x22], [0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22],
            [0x22, 0x00, 0x22], [0x22, 0x0A, 0x22], [0x22, 0x1F, 0x22], [0x22, 0x09, 0x22]
        ]
        for bytes in cases {
            #expect(FastJSON.decode(String.self, from: Data(bytes)) == nil, "\(bytes)")
            #expect(FastJSON.decode([String: Int].self, from: Data([0x7B] + bytes + Array(":1}".utf8))) == nil, "key \(bytes)")
        }
        #expect(FastJSON.decode(String.self, from: Data(#""\ud83d\ude00 \u00e9 \u0000 \/ \b\f\n\r\t""#.utf8)) == "😀 é \u{0} / \u{8}\u{C}\n\r\t")
        #expect(FastJSON.decode(String.self, from: Data([0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22])) == "\u{10FFFF}")
    }

    @Test func duplicateKeysFallBack() throws {
        #expect(FastJSON.decode([String: Int].self, from: Data(#"{"a":1,"b":2,"a":3}"#.utf8)) == nil)
        // Canonically equivalent keys are one key to JSONDecoder's dictionary.
        #expect(FastJSON.decode([String: Int].self, from: Data("{\"é\":1,\"e\u{301}\":2}".utf8)) == nil)
        #expect(FastJSON.decode([String: Int].self, from: Data("{\"é\":1,\"\\u00e9\":2}".utf8)) == nil)
        // Large objects, whose keys go through a table.
        let members = (0..<40).map { "\"k\($0)\":\($0)" } + ["\"k3\":0"]
        #expect(FastJSON.decode([String: Int].self, from: Data("{\(members.joined(separator: ","))}".utf8)) == nil)
        #expect(FastJSON.decode([String: Int].self, from: Data("{\(members.dropLast().joined(separator: ","))}".utf8))?.count == 40)
        // Two spellings of one integer key: which value wins would depend on JSONDecoder's order.
        #expect(FastJSON.decode([Int: String].self, from: Data(#"{"1":"a","01":"b"}"#.utf8)) == nil)
        #expect(FastJSON.decode([Int: String].self, from: Data(#"{"1":"a","2":"b"}"#.utf8)) == [1: "a", 2: "b"])
    }

    @Test func errorsTheDecodedTypeCatchesStillFallBack() throws {
        // JSONDecoder reads 1.0 as the Int 1, and FastJSON leaves that to it: the value must come from
        // JSONDecoder, not from the type's catch.
        let data = Data(#"{"x":1.0}"#.utf8)
        #expect(try JSONDecoder().decode(CatchesErrors.self, from: data) == CatchesErrors(x: 1))
        #expect(FastJSON.decode(CatchesErrors.self, from: data) == nil)
        #expect(FastJSON.decode(CatchesErrors.self, from: Data(#"{"x":2}"#.utf8)) == CatchesErrors(x: 2))
    }

    // MARK: Fuzz

    /// Mutates valid encodings and holds FastJSON to JSONDecoder: whenever FastJSON decodes a text, JSONDecoder
    /// decodes it to the same value; and FastJSON decodes every unmutated encoding.
    @Test func mutatedEncodingsNeverDecodeWhereJSONDecoderWouldNot() throws {
        var random = FuzzRandom(seed: 0xFA57_1503)
        var checks = FuzzChecks()
        for _ in 0..<300 {
            try checks.run(Small(iterations: random.int(), parallel: random.int(), offset: random.int()), &random)
            let inner = random.below(2) == 0 ? nil : Inner(name: random.text(), tags: [random.text()])
            let values = (0..<random.below(4)).map { _ in random.int() }
            try checks.run(Medium(name: random.text(), values: values, inner: inner, scores: [random.text(): random.int()]), &random)
            try checks.run(WithDouble(ratio: Double(random.int() % 100_000) / 64, count: random.int()), &random)
            try checks.run(Dictionary([(random.text(), random.int()), (random.text(), random.int())]) { first, _ in first }, &random)
            try checks.run([random.int(), random.int()].map { $0 % 3 == 0 ? nil : $0 }, &random)
            try checks.run(Self.everything.shapes[random.below(Self.everything.shapes.count)], &random)
            try checks.run([Int8(truncatingIfNeeded: random.int()): UInt16(truncatingIfNeeded: random.int())], &random)
        }
        try checks.run(Self.everything, &random, mutations: 300)
        try checks.run(Integers.maximum, &random, mutations: 100)
        try checks.run(Integers.minimum, &random, mutations: 100)
        if !checks.mismatches.isEmpty {
            Issue.record("\(checks.mismatches.count) disagreements with JSONDecoder, first ones:\n\(checks.mismatches.prefix(5).joined(separator: "\n"))")
        }
        // The fuzz reaches both outcomes: mutated texts FastJSON decodes and ones it leaves to JSONDecoder.
        #expect(checks.fastSuccesses > 200)
        #expect(checks.fallbacks > 1000)
    }

    // MARK: PayloadCodec

    @Test func payloadCodecRoundTripsStructsWithFoundationsBytes() throws {
        let small = Small(iterations: 10_000, parallel: 1, offset: 0)
        let payload = try PayloadCodec.encode(small)
        #expect(payload.data == (try Self.sortedEncoder.encode(small)))
        #expect(try PayloadCodec.decode(Small.self, from: payload) == small)
        let everything = try PayloadCodec.encode(Self.everything)
        #expect(try PayloadCodec.decode(Everything.self, from: everything) == Self.everything)
        // What FastJSON leaves to Foundation still works, and fails, as before.
        let withDouble = WithDouble(ratio: 1e-7, count: 2)
        #expect(try PayloadCodec.decode(WithDouble.self, from: PayloadCodec.encode(withDouble)) == withDouble)
        let error = try #require(throws: DurableTaskError.self) {
            try PayloadCodec.decode(Small.self, from: Payload(json: #"{"iterations":1}"#))
        }
        #expect(error.code == .payloadInvalid)
        #expect(error.message.contains("keyNotFound"))
    }
}

// MARK: - Fuzz support

/// The fuzz tests' seeded generator (so a failure reproduces), with the draws these tests need.
private struct FuzzRandom {
    var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// Mostly small numbers, sometimes extreme ones.
    mutating func int() -> Int {
        switch below(8) {
        case 0: return Int(bitPattern: UInt(next()))
        case 1: return [Int.max, Int.min, 0, -1][below(4)]
        default: return below(2000) - 1000
        }
    }

    mutating func text() -> String {
        let pieces = ["a", "key", "é", "🎉", "\"", "\\", "/", "\n", "\u{0}", " ", "日"]
        return (0..<below(4)).map { _ in pieces[below(pieces.count)] }.joined()
    }
}

/// Decodes mutations of a value's encodings with FastJSON and, where it succeeds, with JSONDecoder.
private struct FuzzChecks {
    var mismatches: [String] = []
    var fastSuccesses = 0
    var fallbacks = 0

    /// Bytes that mean something to JSON or to UTF-8.
    static let alphabet = Array("{}[]:,\"\\ \n0123456789-+.eEtrufalsn".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xA0, 0xF4, 0xFF]

    mutating func run<T: Codable & Equatable>(_ value: T, _ random: inout FuzzRandom, mutations: Int = 3) throws {
        let sorted = try FastJSONTests.sortedEncoder.encode(value)
        for text in [sorted, try JSONEncoder().encode(value), try FastJSONTests.prettyEncoder.encode(value)] {
            // Unmutated: JSONDecoder decodes it, so FastJSON must too, to the same value.
            if FastJSON.decode(T.self, from: text) != value {
                mismatches.append("\(T.self): FastJSON did not decode valid \(String(decoding: text, as: UTF8.self))")
            }
        }
        for _ in 0..<mutations {
            var bytes = Array(sorted)
            for _ in 0..<(1 + random.below(3)) { Self.mutate(&bytes, &random) }
            let data = Data(bytes)
            guard let fast = FastJSON.decode(T.self, from: data) else {
                fallbacks += 1
                continue
            }
            fastSuccesses += 1
            let foundation = try? JSONDecoder().decode(T.self, from: data)
            if foundation != fast {
                mismatches.append(
                    "\(T.self) \(bytes.map { String($0, radix: 16) }) \(String(decoding: bytes, as: UTF8.self).debugDescription): "
                        + "FastJSON \(fast), JSONDecoder \(foundation.map { "\($0)" } ?? "fails")")
            }
        }
    }

    static func mutate(_ bytes: inout [UInt8], _ random: inout FuzzRandom) {
        let position = bytes.isEmpty ? 0 : random.below(bytes.count)
        let byte = random.below(4) == 0 ? UInt8(truncatingIfNeeded: random.next()) : alphabet[random.below(alphabet.count)]
        switch random.below(5) {
        case 0 where !bytes.isEmpty: bytes.remove(at: position)
        case 1: bytes.insert(byte, at: position)
        case 2 where !bytes.isEmpty: bytes[position] = byte
        case 3 where bytes.count > 1:
            // A digit for a digit keeps the text valid more often, reaching the decoders' range checks.
            if bytes[position] &- UInt8(ascii: "0") < 10 {
                bytes[position] = UInt8(ascii: "0") + UInt8(random.below(10))
            } else {
                bytes.swapAt(position, random.below(bytes.count))
            }
        default:
            let end = min(bytes.count, position + 1 + random.below(8))
            bytes.insert(contentsOf: bytes[position..<end], at: random.below(bytes.count + 1))
        }
    }
}
