import Foundation

/// A serialized value: the JSON bytes of an input, output or event payload.
///
/// Payloads are encoded once, where they are produced, and passed along as bytes: history, work items
/// and backends never re-encode them.
public struct Payload: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The JSON bytes.
    public var data: Data

    /// Wraps already-encoded JSON bytes.
    public init(data: Data) { self.data = data }

    /// Wraps a JSON text.
    public init(json: String) { self.data = Data(json.utf8) }

    /// The size in bytes.
    public var count: Int { data.count }

    /// The payload as text (JSON), for logs and error messages.
    public var json: String { String(decoding: data, as: UTF8.self) }

    public var description: String {
        let text = json
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    public init(from decoder: any Decoder) throws {
        // Stored as the JSON text so recorded histories stay readable.
        let container = try decoder.singleValueContainer()
        self.init(json: try container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(json)
    }
}
