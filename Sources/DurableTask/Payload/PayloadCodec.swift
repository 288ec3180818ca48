import Foundation

/// Encodes and decodes payloads, with hand-written fast paths for the scalar types that dominate
/// fan-outs (`Int`, `String`, `Bool`, `Double`) because Foundation's JSON coders cost microseconds
/// per call, which is most of the per-item budget of a large fan-out.
package enum PayloadCodec {
    /// The default maximum payload size: 16 MiB.
    package static let defaultMaxPayloadBytes = 16 * 1024 * 1024

    /// Encodes a value to JSON, failing with `payloadTooLarge` when the bytes exceed `limit`.
    package static func encode<T: Encodable>(_ value: T, limit: Int = defaultMaxPayloadBytes, what: @autoclosure () -> String = "payload") throws -> Payload {
        let data: Data
        if let fast = fastEncode(value) {
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
                        UnsafeMutableRawBufferPointer(rebasing: bytes[1..<(utf8.count + 1)]).copyMemory(from: UnsafeRawBufferPointer(start: base, count: utf8.count))
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
                    out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                            hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
            return Data(out)
        }
    }

    private static func fastDecode<T: Decodable>(_ type: T.Type, _ data: Data) -> T? {
        if T.self == Int.self {
            guard data.count < 20, !data.isEmpty else { return nil }
            let parsed: Int? = data.withUnsafeBytes { bytes in
                var value = 0
                var index = 0
                let negative = bytes[0] == UInt8(ascii: "-")
                if negative { index = 1 }
                guard index < bytes.count else { return nil }
                while index < bytes.count {
                    let byte = bytes[index]
                    guard byte >= 48 && byte <= 57 else { return nil }
                    value = value * 10 + Int(byte - 48)
                    index += 1
                }
                return negative ? -value : value
            }
            // T is Int here: a bit cast avoids a dynamic cast per decode.
            return parsed.map { unsafeBitCast($0, to: T.self) }
        }
        if T.self == String.self {
            guard data.count >= 2, data.first == UInt8(ascii: "\""), data.last == UInt8(ascii: "\"") else { return nil }
            let parsed: String? = data.withUnsafeBytes { bytes in
                let inner = UnsafeRawBufferPointer(rebasing: bytes[1..<(bytes.count - 1)])
                // Escapes need a real JSON parser; plain strings (the common case) are copied as is.
                if inner.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x20 }) { return nil }
                return String(decoding: inner, as: UTF8.self)
            }
            return parsed.map { unsafeBitCast($0, to: T.self) }
        }
        if T.self == Bool.self {
            if data.elementsEqual("true".utf8) { return true as? T }
            if data.elementsEqual("false".utf8) { return false as? T }
            return nil
        }
        return nil
    }
}
