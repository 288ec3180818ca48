import Foundation

/// Resident-set figures of this process, from `/proc/self/status` (Linux).
enum Memory {
    /// Peak resident set size (`VmHWM`) in bytes, or 0 where `/proc` is unavailable.
    static func peakRSS() -> Int { statusField("VmHWM:") }

    /// Current resident set size (`VmRSS`) in bytes, or 0 where `/proc` is unavailable.
    static func currentRSS() -> Int { statusField("VmRSS:") }

    /// Resets `VmHWM` to the current RSS (writing "5" to `/proc/self/clear_refs`, Linux ≥ 4.0), so
    /// each run of a `--repeat` series reports its own peak instead of the process's all-time peak.
    /// Returns whether the reset worked; when it did not, peaks are process-wide (said in the output).
    @discardableResult
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }

    private static func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            // "VmHWM:	   12345 kB"
            let number = line.dropFirst(name.count).filter(\.isNumber)
            return (Int(number) ?? 0) * 1024
        }
        return 0
    }
}

/// A JSON value for the one-line reports; only what the reports need.
enum JSONValue {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    var rendered: String {
        switch self {
        case .int(let value): return String(value)
        case .double(let value): return value.isFinite ? String(format: "%.6g", value) : "null"
        case .bool(let value): return value ? "true" : "false"
        case .string(let value):
            var out = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
    }
}

/// Prints one JSON object on one line, keys in the given order (stable output for scripts to diff).
func printJSON(_ fields: KeyValuePairs<String, JSONValue>) {
    printJSON(fields.map { ($0.key, $0.value) })
}

/// Prints one JSON object on one line, keys in the given order.
func printJSON(_ fields: [(String, JSONValue)]) {
    let body = fields.map { "\(JSONValue.string($0.0).rendered):\($0.1.rendered)" }.joined(separator: ",")
    print("{\(body)}")
}

/// Seconds elapsed since `start` on the monotonic clock.
func seconds(since start: ContinuousClock.Instant) -> Double {
    seconds(ContinuousClock.now - start)
}

/// A duration in seconds, as a `Double`.
func seconds(_ duration: Duration) -> Double {
    let parts = duration.components
    return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
}

/// The `p`-quantile (0...1) of ascending `sorted` values, nearest rank; 0 for an empty array.
func quantile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

/// The median of `values` (mean of the middle two for an even count).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// `value` with thousands separators, for the human-readable lines.
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (index, character) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
        out.append(character)
    }
    return value < 0 ? "-" + out : out
}

/// `value` rounded to an integer with thousands separators.
func grouped(_ value: Double) -> String {
    value.isFinite ? grouped(Int(value.rounded())) : "n/a"
}

/// A byte count as MiB with one decimal.
func mebibytes(_ bytes: Int) -> String {
    String(format: "%.1f MiB", Double(bytes) / 1_048_576)
}
