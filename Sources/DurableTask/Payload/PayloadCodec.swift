import Foundation

/// Encodes and decodes payloads, with hand-written fast paths for the scalar types that dominate
/// fan-outs because Foundation's JSON coders cost microseconds per call, which is most of the per-item
/// budget of a large fan-out: decoding `Int`, `String`, `Bool` and `Double`, encoding `Int`, `String`
/// and `Bool`. (`Double` is encoded by `JSONEncoder`, whose number formatting a fast path would have
/// to copy digit for digit.)
package enum PayloadCodec {
    /// The default maximum payload size: 16 MiB.
    package static let defaultMaxPayloadBytes = 16 * 1024 * 1024

    /// Encodes a value to JSON, failing with `payloadTooLarge` when the bytes exceed `limit`.
    package static func encode<T: Encodable>(_ value: T, limit: Int = defaultMaxPayloadBytes, what: @autoclosure () -> String = "payload") throws -> Payload {
        let data: Data
        if let fast = fastEncode(value) {
            data = fast
        } else if let fast = FastJSON.encode(value) {
            data = fast
        } else {
            do {
                data = try makeEncoder().encode(value)
            } catch {
                throw DurableTaskError(.payloadInvalid, "\(what()) could not be encoded as JSON: \(error)")
            }
        }
        if data.count > limit {
            throw DurableTaskError(.payloadTooLarge, "\(what()) is \(data.count) bytes, over the limit of \(limit) bytes")
        }
        return Payload(data: data)
    }

    /// Decodes a value from a payload. A missing payload decodes as JSON `null`.
    package static func decode<T: Decodable>(_ type: T.Type, from payload: Payload?, what: @autoclosure () -> String = "payload") throws -> T {
        let data = payload?.data ?? Data("null".utf8)
        if let fast = fastDecode(type, data) { return fast }
        if let fast = FastJSON.decode(T.self, from: data) { return fast }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            let text = String(decoding: data.prefix(200), as: UTF8.self)
            throw DurableTaskError(.payloadInvalid, "\(what()) could not be decoded as \(T.self) from \(text): \(error)")
        }
    }

    private static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    private static func fastEncode<T: Encodable>(_ value: T) -> Data? {
        // Type comparisons plus a bit cast are much cheaper than `as?` casts on a generic value.
        if T.self == Int.self { return Data(String(unsafeBitCast(value, to: Int.self)).utf8) }
        if T.self == String.self { return encodeString(unsafeBitCast(value, to: String.self)) }
        if T.self == Bool.self { return Data((unsafeBitCast(value, to: Bool.self) ? "true" : "false").utf8) }
        return nil
    }

    private static func encodeString(_ s: String) -> Data {
        var string = s
        return string.withUTF8 { utf8 -> Data in
            // Most strings need no escaping: copy them in one go.
            if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                // One allocation and one copy; appending to a Data piece by piece costs several times more.
                var data = Data(count: utf8.count + 2)
                data.withUnsafeMutableBytes { bytes in
                    bytes[0] = UInt8(ascii: "\"")
                    if let base = utf8.baseAddress, utf8.count > 0 {
                        UnsafeMutableRawBufferPointer(rebasing: bytes[1..<(utf8.count + 1)]).copyMemory(
                            from: UnsafeRawBufferPointer(start: base, count: utf8.count))
                    }
                    bytes[utf8.count + 1] = UInt8(ascii: "\"")
                }
                return data
            }
            var out = [UInt8]()
            out.reserveCapacity(utf8.count + 8)
            out.append(UInt8(ascii: "\""))
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out += [
                        UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                        hex[Int(byte >> 4)], hex[Int(byte & 0xF)]
                    ]
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
            return Data(out)
        }
    }

    /// Decodes the common shapes of the scalar types without Foundation, or returns `nil` to leave the
    /// payload to `JSONDecoder`.
    ///
    /// Each fast path answers only for input it fully understands and must give exactly what
    /// `JSONDecoder` gives for it; everything else (whitespace, escapes, exponents, values out of range,
    /// malformed bytes) falls back, so `JSONDecoder` stays the single judge of what is valid and every
    /// rejection is the same `.payloadInvalid` error. `PayloadCodecFuzzTests` holds the two to that.
    private static func fastDecode<T: Decodable>(_ type: T.Type, _ data: Data) -> T? {
        // T is the type compared against in each branch: a bit cast avoids a dynamic cast per decode.
        if T.self == Int.self {
            return data.withUnsafeBytes { parseInt($0) }.map { unsafeBitCast($0, to: T.self) }
        }
        if T.self == String.self {
            return data.withUnsafeBytes { parseString($0) }.map { unsafeBitCast($0, to: T.self) }
        }
        if T.self == Bool.self {
            return data.withUnsafeBytes { parseBool($0) }.map { unsafeBitCast($0, to: T.self) }
        }
        if T.self == Double.self {
            return data.withUnsafeBytes { parseDouble($0) }.map { unsafeBitCast($0, to: T.self) }
        }
        return nil
    }

    /// A JSON integer in canonical form (`-?(0|[1-9][0-9]*)`, nothing around it) that fits in `Int`.
    ///
    /// Values outside `Int`'s range return `nil` rather than trapping, so `JSONDecoder` rejects them as
    /// it rejects any other number that does not fit.
    private static func parseInt(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { index = 1 }
        let digits = bytes.count - index
        // 19 digits hold every Int; leading zeros are not JSON.
        guard digits >= 1, digits <= 19, bytes[index] != UInt8(ascii: "0") || digits == 1 else { return nil }
        // 19 digits never overflow a UInt64, so the loop needs no overflow checks; the range check
        // comes once at the end.
        var magnitude: UInt64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            magnitude = magnitude &* 10 &+ UInt64(digit)
            index += 1
        }
        if negative {
            // Int.min's magnitude is one more than Int.max.
            guard magnitude <= UInt64(Int.max) + 1 else { return nil }
            return Int(truncatingIfNeeded: 0 &- magnitude)
        }
        guard magnitude <= UInt64(Int.max) else { return nil }
        return Int(magnitude)
    }

    /// `true` or `false`, with nothing around it.
    private static func parseBool(_ bytes: UnsafeRawBufferPointer) -> Bool? {
        // Comparing buffers: iterating `Data` byte by byte costs more than the rest of the decode.
        if bytes.elementsEqual("true".utf8) { return true }
        if bytes.elementsEqual("false".utf8) { return false }
        return nil
    }

    /// A JSON string with nothing to unescape: quotes around valid UTF-8 with no quote, backslash or
    /// control character inside.
    private static func parseString(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\""), bytes[bytes.count - 1] == UInt8(ascii: "\"") else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[1..<(bytes.count - 1)]).assumingMemoryBound(to: UInt8.self)
        var highBits: UInt8 = 0
        for byte in inner {
            // Escapes need a real JSON parser, and a raw quote or control character is not JSON.
            if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") || byte < 0x20 { return nil }
            highBits |= byte
        }
        if highBits < 0x80 { return String(decoding: inner, as: UTF8.self) }
        // `String(decoding:)` would repair invalid UTF-8 with U+FFFD, which JSONDecoder rejects:
        // validate instead, and leave invalid bytes to JSONDecoder's error.
        return String(validating: inner, as: UTF8.self)
    }

    /// Exact powers of ten: every one up to 10^22 is a Double without rounding.
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        (0..<exponent).reduce(1.0) { value, _ in value * 10 }
    }

    /// A plain JSON decimal (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`, no exponent) whose digits form an integer
    /// below 2^53 with at most 22 digits after the point.
    ///
    /// Such a number is that integer divided by an exact power of ten, and one IEEE division rounds
    /// correctly, so the result is the correctly rounded value `JSONDecoder` (strtod) gives. Longer
    /// mantissas, exponents and anything else fall back.
    private static func parseDouble(_ bytes: UnsafeRawBufferPointer) -> Double? {
        var index = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < bytes.count else { return nil }
        var mantissa: UInt64 = 0
        var digits = 0
        var fractionDigits = 0
        if bytes[index] == UInt8(ascii: "0") {
            // A leading zero stands alone: "01" is not JSON.
            index += 1
        } else {
            while index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 {
                mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- UInt8(ascii: "0"))
                digits += 1
                index += 1
                // 19 digits cannot overflow UInt64; longer mantissas are over 2^53 anyway.
                guard digits <= 19 else { return nil }
            }
            guard digits > 0 else { return nil }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 {
                mantissa = mantissa &* 10 &+ UInt64(bytes[index] &- UInt8(ascii: "0"))
                digits += 1
                fractionDigits += 1
                index += 1
                guard digits <= 19, fractionDigits <= 22 else { return nil }
            }
            guard fractionDigits > 0 else { return nil }
        }
        guard index == bytes.count, mantissa <= 1 << 53 else { return nil }
        let value = Double(mantissa) / powersOfTen[fractionDigits]
        return negative ? -value : value
    }
}
