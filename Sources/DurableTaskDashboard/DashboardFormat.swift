#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import DurableTask
import Foundation

/// Text formatting shared by the pages, the JSON API and the command: fixed, locale-independent
/// output (UTC times, `,` thousands) so golden tests and users in any locale see the same thing.
public enum DashboardFormat {
    /// `2027-01-15 08:00:00.123Z`.
    public static func timestamp(_ date: Date) -> String {
        let (seconds, millis) = split(date)
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// `2027-01-15T08:00:00.123Z`, for JSON.
    public static func iso8601(_ date: Date) -> String {
        timestamp(date).replacingOccurrences(of: " ", with: "T")
    }

    private static func split(_ date: Date) -> (Int, Int) {
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        guard ms.isFinite, abs(ms) < 1e17 else { return (0, 0) }
        let total = Int(ms)
        let seconds = total >= 0 ? total / 1000 : (total - 999) / 1000
        return (seconds, total - seconds * 1000)
    }

    /// Parses the forms a person types or an HTML `datetime-local` field sends: `2027-01-15`,
    /// `2027-01-15T08:00`, `2027-01-15 08:00:00`, with an optional `Z` (UTC is assumed either way).
    public static func parseDate(_ text: String) -> Date? {
        var s = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "T", with: " ")
        if s.hasSuffix("Z") { s.removeLast() }
        let pieces = s.split(whereSeparator: { $0 == " " || $0 == "-" || $0 == ":" || $0 == "." }).map(String.init)
        guard pieces.count >= 3, pieces.count <= 7, pieces.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return nil }
        let numbers = pieces.compactMap { Int($0) }
        guard numbers.count == pieces.count else { return nil }
        var c = DateComponents()
        c.timeZone = TimeZone(identifier: "UTC")
        c.year = numbers[0]; c.month = numbers[1]; c.day = numbers[2]
        c.hour = numbers.count > 3 ? numbers[3] : 0
        c.minute = numbers.count > 4 ? numbers[4] : 0
        c.second = numbers.count > 5 ? numbers[5] : 0
        guard let month = c.month, (1...12).contains(month), let day = c.day, (1...31).contains(day) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        return calendar.date(from: c)
    }

    /// `1,234,567`.
    public static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "–" }
        let s = max(0, seconds)
        if s < 1 { return "\(Int((s * 1000).rounded())) ms" }
        if s < 60 { return String(format: "%.1f s", s) }
        if s < 3600 { return String(format: "%d min %02d s", Int(s) / 60, Int(s) % 60) }
        return String(format: "%d h %02d min", Int(s) / 3600, (Int(s) % 3600) / 60)
    }

    /// A payload shortened to `limit` characters for a table cell or a terminal line.
    public static func preview(_ payload: Payload?, limit: Int = 80) -> String {
        guard let payload else { return "–" }
        let text = payload.json
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }
}

/// Escaping for HTML text and attribute values. Every string that did not come from this module's own
/// literals goes through it: instance IDs, names, payloads, error messages, query parameters.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Controls other than tab/newline would be invisible or break a terminal copying it.
                if scalar.value < 32 && scalar != "\n" && scalar != "\t" || scalar.value == 127 {
                    out += "&#\(scalar.value);"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A URL path segment or query value: everything but unreserved characters percent-encoded.
    static func urlComponent(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

/// Building JSON text by hand: payloads are already JSON and are embedded as they are, never decoded
/// and re-encoded (a history page can hold a thousand of them).
enum JSON {
    static func string(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"  // so JSON is safe to paste into a <script> too
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            default:
                if scalar.value < 32 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func optionalString(_ text: String?) -> String { text.map(string) ?? "null" }

    static func date(_ date: Date?) -> String { date.map { string(DashboardFormat.iso8601($0)) } ?? "null" }

    /// A payload as the JSON value it holds; bytes that are not valid JSON (a damaged row) become a
    /// string, so one bad payload cannot break the whole response.
    static func payload(_ payload: Payload?) -> String {
        guard let payload else { return "null" }
        if (try? JSONSerialization.jsonObject(with: payload.data, options: [.fragmentsAllowed])) != nil {
            return payload.json.replacingOccurrences(of: "<", with: "\\u003c")
        }
        return string(payload.json)
    }

    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(string($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }

    static func failure(_ failure: FailureDetails?) -> String {
        guard let failure else { return "null" }
        return object([
            ("errorType", string(failure.errorType)), ("message", string(failure.message)),
            ("isRetriable", failure.isRetriable ? "true" : "false"), ("inner", array(failure.inner.map { JSON.failure($0) }))
        ])
    }
}
