import Foundation

/// A JSON encoder and decoder for `Codable` values made of the common types (structs, enums, arrays,
/// dictionaries, optionals, strings, booleans and fixed-width integers), which `PayloadCodec` tries
/// before Foundation's coders because those cost microseconds per call for a small struct, a sizeable
/// share of the cost of a short orchestration.
///
/// Both directions answer only for what they fully understand and return `nil` for everything else,
/// so Foundation stays the single judge of what can be encoded and decoded and of every error:
///
/// - `encode` gives the bytes swift-foundation's `JSONEncoder` with `.sortedKeys` gives (the same
///   escapes, keys in the order of their UTF-8 bytes, the last value of a key written twice), so
///   payloads do not change with it, and leaves to `JSONEncoder` floating-point values, `Date`, `Data`,
///   `URL`, `Decimal`, 128-bit integers, super encoders, keys that are equal as Strings but spelled
///   differently, and anything nested deeper than ``maxDepth``.
/// - `decode` succeeds only where `JSONDecoder` succeeds, with the same value: it parses strict
///   RFC 8259 JSON and gives up on duplicate keys, numbers an integer type would have to round or
///   convert, `Float`, the types `JSONDecoder` special-cases, super decoders and any error, even one
///   the decoded type catches (JSONDecoder might not have thrown it).
enum FastJSON {
    /// The deepest nesting of arrays and objects handled; deeper documents are left to Foundation,
    /// whose own limit (512) is higher, so nothing Foundation rejects for depth is accepted here.
    static let maxDepth = 256

    /// The JSON for `value`, or `nil` to leave it to `JSONEncoder`.
    static func encode<T: Encodable>(_ value: T) -> Data? {
        let state = EncodingState()
        // The containers hold the state, and the state holds the tree through its root: let go of the
        // tree so the cycle does not outlive the call.
        defer { state.root = .pending }
        do {
            if let direct = directValue(value, state) {
                state.root = direct
            } else {
                guard !isSpecial(T.self) else { return nil }
                try value.encode(to: SlotEncoder(state: state, box: nil, slot: 0, pathDepth: 0))
            }
        } catch {
            return nil
        }
        return state.failed ? nil : state.serialize()
    }

    /// The value of type `T` in `data`, or `nil` to leave the decoding, and any error, to `JSONDecoder`.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) -> T? {
        let count = data.count
        guard count < Int(UInt32.max) else { return nil }
        // An owned copy: decoders and containers keep pointing into it for as long as anyone holds them.
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: max(count, 1))
        data.withUnsafeBytes { source in
            if let base = source.baseAddress { bytes.update(from: base.assumingMemoryBound(to: UInt8.self), count: count) }
        }
        var parser = Parser(bytes: UnsafePointer(bytes), count: count)
        guard parser.parseDocument() else {
            bytes.deallocate()
            return nil
        }
        let state = DecodingState(bytes: bytes, tape: parser.tape)
        do {
            let value: T
            if let kind = DirectType(T.self) {
                value = try state.direct(kind, as: T.self, at: 0)
            } else {
                guard !isSpecial(T.self) else { return nil }
                value = try T(from: NodeDecoder(state: state, node: 0, pathDepth: 0))
            }
            return state.failed ? nil : value
        } catch {
            return nil
        }
    }
}

/// Thrown for anything left to Foundation; caught by `FastJSON` and never seen outside it.
private struct Unsupported: Error {}

/// The types Foundation's coders treat differently from their own `Codable` conformance (`Date`,
/// `Data`, `URL`, `Decimal`), and the floating-point types, whose formatting is left to `JSONEncoder`
/// and (for `Float`) whose parsing is left to `JSONDecoder`.
@inline(__always)
private func isSpecial<T>(_ type: T.Type) -> Bool {
    T.self == Double.self || T.self == Float.self || T.self == Date.self || T.self == Data.self || T.self == URL.self
        || T.self == Decimal.self
}

/// The key of an array element in a coding path, spelled as Foundation spells it.
private struct IndexKey: CodingKey {
    let index: Int

    init(index: Int) { self.index = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.index = intValue }

    var stringValue: String { "Index \(index)" }
    var intValue: Int? { index }
}

// MARK: - Encoding

/// A value in the tree the encoder builds before it writes the bytes, which it cannot do as it goes
/// because object keys are written sorted.
private enum EncodedValue {
    /// A slot whose encoder has written nothing yet: `JSONEncoder` writes `{}` for a nested value that
    /// encodes nothing.
    case pending
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case string(String)
    case container(ContainerBox)
}

/// An object member: its key, as a range of `EncodingState.keyBytes`, and its value.
private struct Member {
    var keyOffset: UInt32
    var keyLength: UInt32
    var value: EncodedValue
}

/// An object or an array being encoded. A class, so writes through a nested container (or a child
/// encoder) land in the tree its parent holds.
///
/// The mutable properties of this file's classes opt out of dynamic exclusivity checks, a fifth of the
/// cost of a small encode: every access is a short one made by this file, with no user code inside it,
/// so no two can overlap.
private final class ContainerBox {
    let state: EncodingState
    let isObject: Bool
    /// An object's members, in the order written.
    @exclusivity(unchecked) var members: [Member] = []
    /// An array's elements.
    @exclusivity(unchecked) var values: [EncodedValue] = []

    /// Most structs have a few fields: room for `capacity` (8 by default) is one allocation instead of
    /// growing through 1, 2 and 4.
    init(state: EncodingState, isObject: Bool, capacity: Int = 8) {
        self.state = state
        self.isObject = isObject
        if isObject { members.reserveCapacity(capacity) } else { values.reserveCapacity(capacity) }
    }

    /// Appends a member and returns its index.
    @discardableResult
    func append(_ key: some CodingKey, _ value: EncodedValue) -> Int {
        let (offset, length) = state.storeKey(key)
        members.append(Member(keyOffset: offset, keyLength: length, value: value))
        return members.count - 1
    }

    /// A new container stored under `key`, or, for a key already written, a detached one and the
    /// encode left to Foundation (`JSONEncoder` reuses or converts what is there).
    func nestedContainer(forKey key: some CodingKey, isObject: Bool) -> ContainerBox {
        let child = ContainerBox(state: state, isObject: isObject)
        let index = append(key, .container(child))
        let new = members[index]
        for member in members.dropLast() where state.sameKeyBytes(member, new) {
            state.failed = true
            break
        }
        return child
    }

    /// A new container appended to this array.
    func appendContainer(isObject: Bool) -> ContainerBox {
        let child = ContainerBox(state: state, isObject: isObject)
        values.append(.container(child))
        return child
    }

    /// The value in `slot`: a member's for an object, an element for an array.
    @inline(__always)
    subscript(slot: Int) -> EncodedValue {
        get { isObject ? members[slot].value : values[slot] }
        set {
            if isObject { members[slot].value = newValue } else { values[slot] = newValue }
        }
    }
}

/// What one call to `FastJSON.encode` shares between its encoders and containers.
private final class EncodingState {
    /// Set by anything left to Foundation, including calls that cannot throw (`superEncoder`) and
    /// errors the value being encoded catches: the whole encode then returns `nil`.
    @exclusivity(unchecked) var failed = false
    /// The coding path of the value being encoded: each encoder's path is a prefix of it.
    @exclusivity(unchecked) var codingPath: [any CodingKey] = []
    /// The top-level value.
    @exclusivity(unchecked) var root = EncodedValue.pending
    /// The UTF-8 bytes of every object key, one after the other: keys are compared and copied as
    /// bytes, without going back to their Strings.
    @exclusivity(unchecked) var keyBytes: [UInt8] = []
    /// Whether some key is not ASCII, and so might be canonically equivalent to another spelling.
    @exclusivity(unchecked) var nonASCIIKeys = false

    init() {
        keyBytes.reserveCapacity(64)
        // Never read, but it gives the bytes an address even when there is no key.
        keyBytes.append(0)
    }

    /// The error for anything left to Foundation, marking the encode failed so that catching it does
    /// not help.
    func unsupported() -> Unsupported {
        failed = true
        return Unsupported()
    }

    /// An array of `elements`, as `Array.encode(to:)` writes it.
    func array<Element>(_ elements: [Element], _ value: (Element) -> EncodedValue) -> EncodedValue {
        let box = ContainerBox(state: self, isObject: false, capacity: elements.count)
        for element in elements { box.values.append(value(element)) }
        return .container(box)
    }

    /// An object of `dictionary`'s entries, as `Dictionary.encode(to:)` writes it.
    func object<Value>(_ dictionary: [String: Value], _ value: (Value) -> EncodedValue) -> EncodedValue {
        let box = ContainerBox(state: self, isObject: true, capacity: dictionary.count)
        for (key, element) in dictionary {
            let (offset, length) = storeKey(key)
            box.members.append(Member(keyOffset: offset, keyLength: length, value: value(element)))
        }
        return .container(box)
    }

    /// Appends the bytes of `key`'s string value to `keyBytes` and returns where they are.
    func storeKey(_ key: some CodingKey) -> (UInt32, UInt32) { storeKey(key.stringValue) }

    /// Appends the bytes of `key` to `keyBytes` and returns where they are; marks the encode failed if
    /// the keys outgrow 32-bit offsets.
    func storeKey(_ key: String) -> (UInt32, UInt32) {
        var name = key
        return name.withUTF8 { utf8 in
            let offset = keyBytes.count
            guard offset + utf8.count < Int(UInt32.max) else {
                failed = true
                return (0, 0)
            }
            keyBytes.append(contentsOf: utf8)
            if !nonASCIIKeys, utf8.contains(where: { $0 >= 0x80 }) { nonASCIIKeys = true }
            return (UInt32(offset), UInt32(utf8.count))
        }
    }

    /// Whether two members' keys are the same bytes.
    func sameKeyBytes(_ a: Member, _ b: Member) -> Bool {
        guard a.keyLength == b.keyLength else { return false }
        return keyBytes.withUnsafeBufferPointer { bytes in
            guard let base = bytes.baseAddress, a.keyLength > 0 else { return true }
            return memcmp(base + Int(a.keyOffset), base + Int(b.keyOffset), Int(a.keyLength)) == 0
        }
    }

    /// Encodes a non-scalar `value` into `slot` of `box` (or the root for `nil`) through a child
    /// encoder whose coding path is the container's encoder's plus `key`. Like JSONEncoder's, it
    /// leaves out the keys of nested containers in between (the containers' own `codingPath` has them).
    func encodeChild<T: Encodable>(_ value: T, box: ContainerBox, slot: Int, pathDepth: Int, key: any CodingKey) throws {
        // A container used outside the encode that made it would get a wrong path: leave it to Foundation.
        guard codingPath.count == pathDepth, slot <= Int(Int32.max) else { throw unsupported() }
        codingPath.append(key)
        // Restored on throws too: the value being encoded may catch the error and carry on.
        defer { codingPath.removeLast(codingPath.count - pathDepth) }
        try value.encode(to: SlotEncoder(state: self, box: box, slot: slot, pathDepth: codingPath.count))
    }

    /// The JSON of the finished tree.
    func serialize() -> Data? {
        guard case .pending = root else {
            return keyBytes.withUnsafeBufferPointer { keys -> Data? in
                guard let base = keys.baseAddress, var output = OutputBuffer(capacity: 128, keys: base, checkEquivalentKeys: nonASCIIKeys) else {
                    return nil
                }
                do {
                    try output.write(root, depth: 0)
                } catch {
                    output.discard()
                    return nil
                }
                return output.finish()
            }
        }
        // A top-level value that wrote nothing is an error in JSONEncoder.
        return nil
    }
}

/// The value of a scalar, or of an array or dictionary of the commonest scalars built without the
/// standard library's generic conformances (as JSONEncoder does for arrays), or `nil` for any other
/// type. Compares types rather than casting, which is much cheaper for a generic value.
@inline(__always)
private func directValue<T: Encodable>(_ value: T, _ state: EncodingState) -> EncodedValue? {
    if T.self == String.self { return .string(unsafeBitCast(value, to: String.self)) }
    if T.self == Int.self { return .int(Int64(unsafeBitCast(value, to: Int.self))) }
    if T.self == Bool.self { return .bool(unsafeBitCast(value, to: Bool.self)) }
    if T.self == Int64.self { return .int(unsafeBitCast(value, to: Int64.self)) }
    if T.self == UInt64.self { return .uint(unsafeBitCast(value, to: UInt64.self)) }
    if T.self == Int32.self { return .int(Int64(unsafeBitCast(value, to: Int32.self))) }
    if T.self == UInt32.self { return .uint(UInt64(unsafeBitCast(value, to: UInt32.self))) }
    if T.self == UInt.self { return .uint(UInt64(unsafeBitCast(value, to: UInt.self))) }
    if T.self == Int16.self { return .int(Int64(unsafeBitCast(value, to: Int16.self))) }
    if T.self == UInt16.self { return .uint(UInt64(unsafeBitCast(value, to: UInt16.self))) }
    if T.self == Int8.self { return .int(Int64(unsafeBitCast(value, to: Int8.self))) }
    if T.self == UInt8.self { return .uint(UInt64(unsafeBitCast(value, to: UInt8.self))) }
    if T.self == [Int].self { return state.array(unsafeBitCast(value, to: [Int].self)) { .int(Int64($0)) } }
    if T.self == [String].self { return state.array(unsafeBitCast(value, to: [String].self)) { .string($0) } }
    if T.self == [String: Int].self { return state.object(unsafeBitCast(value, to: [String: Int].self)) { .int(Int64($0)) } }
    if T.self == [String: String].self { return state.object(unsafeBitCast(value, to: [String: String].self)) { .string($0) } }
    return nil
}

/// The encoder of one value, which it writes into a slot of its parent's container (or the root): a
/// struct of three words, so passing it as `any Encoder` allocates nothing. It is its own
/// single-value container, as in JSONEncoder.
private struct SlotEncoder: Encoder, SingleValueEncodingContainer {
    let state: EncodingState
    /// The container holding the slot; `nil` for the top-level value.
    let box: ContainerBox?
    let slot: Int32
    /// The length of the prefix of `state.codingPath` that is this encoder's coding path.
    let pathDepth: Int32

    init(state: EncodingState, box: ContainerBox?, slot: Int, pathDepth: Int) {
        self.state = state
        self.box = box
        self.slot = Int32(truncatingIfNeeded: slot)
        self.pathDepth = Int32(truncatingIfNeeded: pathDepth)
    }

    var codingPath: [any CodingKey] { Array(state.codingPath.prefix(Int(pathDepth))) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    private var value: EncodedValue {
        get { box?[Int(slot)] ?? state.root }
        nonmutating set {
            if let box { box[Int(slot)] = newValue } else { state.root = newValue }
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(ObjectEncoder<Key>(box: openContainer(isObject: true), pathDepth: Int(pathDepth), extraPath: []))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        ArrayEncoder(box: openContainer(isObject: false), pathDepth: Int(pathDepth), extraPath: [])
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    /// The container of this value: a new one, or the one asked for before, as `JSONEncoder` does (a
    /// class and its superclass encode into the same object).
    private func openContainer(isObject: Bool) -> ContainerBox {
        switch value {
        case .pending:
            let child = ContainerBox(state: state, isObject: isObject)
            value = .container(child)
            return child
        case .container(let existing) where existing.isObject == isObject:
            return existing
        default:
            state.failed = true
            return ContainerBox(state: state, isObject: isObject)
        }
    }

    /// Writes this value, once: a second value is a precondition failure in `JSONEncoder`.
    private func store(_ newValue: EncodedValue) throws {
        guard case .pending = value else { throw state.unsupported() }
        value = newValue
    }

    func encodeNil() throws { try store(.null) }
    func encode(_ value: Bool) throws { try store(.bool(value)) }
    func encode(_ value: String) throws { try store(.string(value)) }
    func encode(_ value: Double) throws { throw state.unsupported() }
    func encode(_ value: Float) throws { throw state.unsupported() }
    func encode(_ value: Int) throws { try store(.int(Int64(value))) }
    func encode(_ value: Int8) throws { try store(.int(Int64(value))) }
    func encode(_ value: Int16) throws { try store(.int(Int64(value))) }
    func encode(_ value: Int32) throws { try store(.int(Int64(value))) }
    func encode(_ value: Int64) throws { try store(.int(value)) }
    func encode(_ value: UInt) throws { try store(.uint(UInt64(value))) }
    func encode(_ value: UInt8) throws { try store(.uint(UInt64(value))) }
    func encode(_ value: UInt16) throws { try store(.uint(UInt64(value))) }
    func encode(_ value: UInt32) throws { try store(.uint(UInt64(value))) }
    func encode(_ value: UInt64) throws { try store(.uint(value)) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    func encode(_ value: Int128) throws { throw state.unsupported() }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    func encode(_ value: UInt128) throws { throw state.unsupported() }

    func encode<T: Encodable>(_ value: T) throws {
        if let direct = directValue(value, state) { return try store(direct) }
        guard !isSpecial(T.self), case .pending = self.value else { throw state.unsupported() }
        // JSONEncoder encodes the value with this same encoder and path.
        try value.encode(to: self)
    }
}

/// A keyed container writing into an object box.
private struct ObjectEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: ContainerBox
    let pathDepth: Int
    /// The keys between this container's encoder and the container (nested containers).
    let extraPath: [any CodingKey]

    var state: EncodingState { box.state }
    var codingPath: [any CodingKey] { Array(state.codingPath.prefix(pathDepth)) + extraPath }

    mutating func encodeNil(forKey key: Key) throws { box.append(key, .null) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { box.append(key, .bool(value)) }
    mutating func encode(_ value: String, forKey key: Key) throws { box.append(key, .string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { throw state.unsupported() }
    mutating func encode(_ value: Float, forKey key: Key) throws { throw state.unsupported() }
    mutating func encode(_ value: Int, forKey key: Key) throws { box.append(key, .int(Int64(value))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { box.append(key, .int(Int64(value))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { box.append(key, .int(Int64(value))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { box.append(key, .int(Int64(value))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { box.append(key, .int(value)) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { box.append(key, .uint(UInt64(value))) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { box.append(key, .uint(UInt64(value))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { box.append(key, .uint(UInt64(value))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { box.append(key, .uint(UInt64(value))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { box.append(key, .uint(value)) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: Int128, forKey key: Key) throws { throw state.unsupported() }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: UInt128, forKey key: Key) throws { throw state.unsupported() }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        if let direct = directValue(value, state) {
            box.append(key, direct)
            return
        }
        guard !isSpecial(T.self) else { throw state.unsupported() }
        let slot = box.append(key, .pending)
        try state.encodeChild(value, box: box, slot: slot, pathDepth: pathDepth, key: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = box.nestedContainer(forKey: key, isObject: true)
        return KeyedEncodingContainer(ObjectEncoder<NestedKey>(box: child, pathDepth: pathDepth, extraPath: extraPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = box.nestedContainer(forKey: key, isObject: false)
        return ArrayEncoder(box: child, pathDepth: pathDepth, extraPath: extraPath + [key])
    }

    mutating func superEncoder() -> any Encoder { detachedEncoder(state) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { detachedEncoder(state) }
}

/// An unkeyed container writing into an array box: three words, so `any UnkeyedEncodingContainer`
/// holds it without allocating.
private struct ArrayEncoder: UnkeyedEncodingContainer {
    let box: ContainerBox
    let pathDepth: Int
    let extraPath: [any CodingKey]

    var state: EncodingState { box.state }
    var codingPath: [any CodingKey] { Array(state.codingPath.prefix(pathDepth)) + extraPath }
    var count: Int { box.values.count }

    mutating func encodeNil() throws { box.values.append(.null) }
    mutating func encode(_ value: Bool) throws { box.values.append(.bool(value)) }
    mutating func encode(_ value: String) throws { box.values.append(.string(value)) }
    mutating func encode(_ value: Double) throws { throw state.unsupported() }
    mutating func encode(_ value: Float) throws { throw state.unsupported() }
    mutating func encode(_ value: Int) throws { box.values.append(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { box.values.append(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { box.values.append(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { box.values.append(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { box.values.append(.int(value)) }
    mutating func encode(_ value: UInt) throws { box.values.append(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { box.values.append(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt16) throws { box.values.append(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt32) throws { box.values.append(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt64) throws { box.values.append(.uint(value)) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: Int128) throws { throw state.unsupported() }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func encode(_ value: UInt128) throws { throw state.unsupported() }

    mutating func encode<T: Encodable>(_ value: T) throws {
        if let direct = directValue(value, state) {
            box.values.append(direct)
            return
        }
        guard !isSpecial(T.self) else { throw state.unsupported() }
        let slot = box.values.count
        box.values.append(.pending)
        try state.encodeChild(value, box: box, slot: slot, pathDepth: pathDepth, key: IndexKey(index: slot))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let index = box.values.count
        return KeyedEncodingContainer(
            ObjectEncoder<NestedKey>(box: box.appendContainer(isObject: true), pathDepth: pathDepth, extraPath: extraPath + [IndexKey(index: index)]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let index = box.values.count
        return ArrayEncoder(box: box.appendContainer(isObject: false), pathDepth: pathDepth, extraPath: extraPath + [IndexKey(index: index)])
    }

    mutating func superEncoder() -> any Encoder { detachedEncoder(state) }
}

/// An encoder writing into a box that nothing serializes, for calls that cannot throw but are left to
/// Foundation: marks the encode failed.
private func detachedEncoder(_ state: EncodingState) -> any Encoder {
    state.failed = true
    let box = ContainerBox(state: state, isObject: false)
    box.values.append(.pending)
    return SlotEncoder(state: state, box: box, slot: 0, pathDepth: state.codingPath.count)
}

/// Writes the JSON of a tree into memory that becomes the `Data` without a copy.
private struct OutputBuffer {
    private var start: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int
    /// `EncodingState.keyBytes`, which members' keys point into.
    private let keys: UnsafePointer<UInt8>
    /// Whether objects must be checked for keys equal as Strings but spelled differently.
    private let checkEquivalentKeys: Bool

    init?(capacity: Int, keys: UnsafePointer<UInt8>, checkEquivalentKeys: Bool) {
        guard let memory = malloc(capacity) else { return nil }
        start = memory.assumingMemoryBound(to: UInt8.self)
        self.capacity = capacity
        self.keys = keys
        self.checkEquivalentKeys = checkEquivalentKeys
    }

    /// Hands the bytes to a `Data`, which frees them.
    consuming func finish() -> Data {
        Data(bytesNoCopy: start, count: count, deallocator: .free)
    }

    consuming func discard() { free(start) }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    private mutating func reserve(_ extra: Int) throws {
        if capacity - count < extra { try grow(extra) }
    }

    private mutating func grow(_ extra: Int) throws {
        let (needed, overflow) = count.addingReportingOverflow(extra)
        guard !overflow else { throw Unsupported() }
        let newCapacity = max(needed, capacity * 2)
        guard let memory = realloc(start, newCapacity) else { throw Unsupported() }
        start = memory.assumingMemoryBound(to: UInt8.self)
        capacity = newCapacity
    }

    @inline(__always)
    private mutating func append(_ byte: UInt8) throws {
        try reserve(1)
        start[count] = byte
        count += 1
    }

    private mutating func append(_ text: StaticString) throws {
        try reserve(text.utf8CodeUnitCount)
        (start + count).update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        count += text.utf8CodeUnitCount
    }

    /// Writes `value`, whose containers start at nesting level `depth + 1`.
    mutating func write(_ value: EncodedValue, depth: Int) throws {
        switch value {
        case .pending:
            guard depth < FastJSON.maxDepth else { throw Unsupported() }
            try append("{}")
        case .null: try append("null")
        case .bool(let bool): try bool ? append("true") : append("false")
        case .int(let int):
            if int < 0 { try append(UInt8(ascii: "-")) }
            try writeDigits(int.magnitude)
        case .uint(let uint): try writeDigits(uint)
        case .string(let string):
            var string = string
            try string.withUTF8 { try writeString($0) }
        case .container(let box):
            guard depth < FastJSON.maxDepth else { throw Unsupported() }
            if box.isObject {
                try writeObject(box.members, depth: depth + 1)
            } else {
                try append(UInt8(ascii: "["))
                for (index, element) in box.values.enumerated() {
                    if index > 0 { try append(UInt8(ascii: ",")) }
                    try write(element, depth: depth + 1)
                }
                try append(UInt8(ascii: "]"))
            }
        }
    }

    /// The order of two members' keys by their UTF-8 bytes: negative, zero or positive.
    @inline(__always)
    private func compareKeys(_ a: Member, _ b: Member) -> Int {
        let common = Int(min(a.keyLength, b.keyLength))
        if common > 0 {
            let order = memcmp(keys + Int(a.keyOffset), keys + Int(b.keyOffset), common)
            if order != 0 { return Int(order) }
        }
        return Int(a.keyLength) - Int(b.keyLength)
    }

    /// Writes an object as `JSONEncoder` with `.sortedKeys` does: keys in the order of their UTF-8
    /// bytes and, for a key written more than once, the last value only (its object is a dictionary).
    private mutating func writeObject(_ members: [Member], depth: Int) throws {
        try withUnsafeTemporaryAllocation(of: Int.self, capacity: members.count) { order in
            for index in members.indices { order.initializeElement(at: index, to: index) }
            defer { order.deinitialize() }
            // An insertion sort, stable so the writes of one key stay in order, the last one last: it
            // does nothing more than check the order when the keys come sorted, and most objects are
            // small. Large ones get the library's sort, with ties broken by position.
            if members.count <= 16 {
                for index in members.indices.dropFirst() {
                    let moving = order[index]
                    var position = index
                    while position > 0, compareKeys(members[moving], members[order[position - 1]]) < 0 {
                        order[position] = order[position - 1]
                        position -= 1
                    }
                    order[position] = moving
                }
            } else {
                var unsorted = order
                unsorted.sort { first, second in
                    let result = compareKeys(members[first], members[second])
                    return result < 0 || (result == 0 && first < second)
                }
            }
            if checkEquivalentKeys { try checkNoEquivalentKeys(members, order) }
            try append(UInt8(ascii: "{"))
            var first = true
            for (position, index) in order.enumerated() {
                if position + 1 < order.count, compareKeys(members[index], members[order[position + 1]]) == 0 { continue }
                if !first { try append(UInt8(ascii: ",")) }
                first = false
                let member = members[index]
                try writeString(UnsafeBufferPointer(start: keys + Int(member.keyOffset), count: Int(member.keyLength)))
                try append(UInt8(ascii: ":"))
                try write(member.value, depth: depth)
            }
            try append(UInt8(ascii: "}"))
        }
    }

    /// Keys equal as Strings but spelled differently (canonically equivalent) are one key in
    /// JSONEncoder's dictionary, with a spelling and a value that depend on it: left to it.
    private func checkNoEquivalentKeys(_ members: [Member], _ order: UnsafeMutableBufferPointer<Int>) throws {
        var distinct = 0
        var strings = Set<String>()
        for (position, index) in order.enumerated() {
            if position + 1 < order.count, compareKeys(members[index], members[order[position + 1]]) == 0 { continue }
            distinct += 1
            let member = members[index]
            strings.insert(String(decoding: UnsafeBufferPointer(start: keys + Int(member.keyOffset), count: Int(member.keyLength)), as: UTF8.self))
        }
        guard strings.count == distinct else { throw Unsupported() }
    }

    /// Writes the decimal digits of `value`.
    private mutating func writeDigits(_ value: UInt64) throws {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        try reserve(digits)
        var index = count + digits - 1
        rest = value
        repeat {
            start[index] = UInt8(truncatingIfNeeded: rest % 10) &+ UInt8(ascii: "0")
            rest /= 10
            index -= 1
        } while rest > 0
        count += digits
    }

    /// Writes a string with JSONEncoder's escapes: the quote, the backslash, the slash, the control
    /// characters (short forms where JSON has one, `\u00XX` otherwise); everything else as UTF-8.
    private mutating func writeString(_ utf8: UnsafeBufferPointer<UInt8>) throws {
        try reserve(utf8.count + 2)
        start[count] = UInt8(ascii: "\"")
        count += 1
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "/") }) {
            if let base = utf8.baseAddress { (start + count).update(from: base, count: utf8.count) }
            count += utf8.count
        } else {
            // Six bytes per byte at most (\u00XX).
            try reserve(utf8.count * 6 + 1)
            for byte in utf8 { writeEscaped(byte) }
        }
        start[count] = UInt8(ascii: "\"")
        count += 1
    }

    /// Writes one byte of a string, escaped if it must be; the room is reserved by the caller.
    @inline(__always)
    private mutating func writeEscaped(_ byte: UInt8) {
        let short: UInt8
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): short = byte
        case 0x08: short = UInt8(ascii: "b")
        case 0x0C: short = UInt8(ascii: "f")
        case UInt8(ascii: "\n"): short = UInt8(ascii: "n")
        case UInt8(ascii: "\r"): short = UInt8(ascii: "r")
        case UInt8(ascii: "\t"): short = UInt8(ascii: "t")
        case 0..<0x20:
            let hex: StaticString = "0123456789abcdef"
            start[count] = UInt8(ascii: "\\")
            start[count + 1] = UInt8(ascii: "u")
            start[count + 2] = UInt8(ascii: "0")
            start[count + 3] = UInt8(ascii: "0")
            start[count + 4] = hex.utf8Start[Int(byte >> 4)]
            start[count + 5] = hex.utf8Start[Int(byte & 0xF)]
            count += 6
            return
        default:
            start[count] = byte
            count += 1
            return
        }
        start[count] = UInt8(ascii: "\\")
        start[count + 1] = short
        count += 2
    }
}

// MARK: - Parsing

/// What a tape node holds.
private enum NodeKind: UInt8 {
    case null, falseValue, trueValue, number, string, array, object
}

/// One value of a parsed document. The nodes are in document order, an object's members as key and
/// value nodes in turn, and a container records where its descendants end so a decoder can skip it.
private struct TapeNode {
    var kind: NodeKind
    /// For strings, `escaped` and `nonASCII`; for numbers, `integer` and `negative`.
    var flags: UInt8
    /// Scalars: the offset of the first byte (for strings, after the quote). Containers: the number of
    /// elements or members.
    var first: UInt32
    /// Scalars: the length in bytes (for strings, without the quotes). Containers: the index of the
    /// node after the last descendant.
    var second: UInt32

    static let escaped: UInt8 = 1
    static let nonASCII: UInt8 = 2
    static let integer: UInt8 = 1
    static let negative: UInt8 = 2

    var isContainer: Bool { kind.rawValue >= NodeKind.array.rawValue }
}

/// A strict RFC 8259 parser (no BOM, no comments, no trailing commas, no leading zeros, valid UTF-8,
/// valid escapes with paired surrogates) that writes the tape in one pass. Strings and numbers are
/// validated here and converted only when decoded.
private struct Parser {
    let bytes: UnsafePointer<UInt8>
    let count: Int
    var index = 0
    var tape: [TapeNode] = []

    init(bytes: UnsafePointer<UInt8>, count: Int) {
        self.bytes = bytes
        self.count = count
        tape.reserveCapacity(min(count / 2 + 1, 1024))
    }

    /// Parses one value with nothing but whitespace around it; `false` for anything else.
    mutating func parseDocument() -> Bool {
        guard parseValue(depth: 0) else { return false }
        skipWhitespace()
        return index == count
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// Parses the value at `index` (after whitespace) inside `depth` containers.
    private mutating func parseValue(depth: Int) -> Bool {
        skipWhitespace()
        guard index < count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""): return parseString()
        case UInt8(ascii: "{"): return parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return parseArray(depth: depth + 1)
        case UInt8(ascii: "t"): return parseLiteral("true", .trueValue)
        case UInt8(ascii: "f"): return parseLiteral("false", .falseValue)
        case UInt8(ascii: "n"): return parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return parseNumber()
        default: return false
        }
    }

    /// Parses `true`, `false` or `null`.
    private mutating func parseLiteral(_ literal: StaticString, _ kind: NodeKind) -> Bool {
        let length = literal.utf8CodeUnitCount
        guard count - index >= length, memcmp(bytes + index, literal.utf8Start, length) == 0 else { return false }
        tape.append(TapeNode(kind: kind, flags: 0, first: UInt32(index), second: UInt32(length)))
        index += length
        return true
    }

    /// Parses an object, whose node is patched with its member count and end once its members are in.
    private mutating func parseObject(depth: Int) -> Bool {
        guard depth <= FastJSON.maxDepth else { return false }
        let node = tape.count
        tape.append(TapeNode(kind: .object, flags: 0, first: 0, second: 0))
        index += 1
        skipWhitespace()
        var members: UInt32 = 0
        if index < count, bytes[index] == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard index < count, bytes[index] == UInt8(ascii: "\""), parseString() else { return false }
                skipWhitespace()
                guard index < count, bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
                guard parseValue(depth: depth) else { return false }
                members += 1
                skipWhitespace()
                guard index < count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    break
                } else {
                    return false
                }
            }
        }
        tape[node].first = members
        tape[node].second = UInt32(tape.count)
        return true
    }

    /// Parses an array, whose node is patched with its element count and end once its elements are in.
    private mutating func parseArray(depth: Int) -> Bool {
        guard depth <= FastJSON.maxDepth else { return false }
        let node = tape.count
        tape.append(TapeNode(kind: .array, flags: 0, first: 0, second: 0))
        index += 1
        skipWhitespace()
        var elements: UInt32 = 0
        if index < count, bytes[index] == UInt8(ascii: "]") {
            index += 1
        } else {
            while true {
                guard parseValue(depth: depth) else { return false }
                elements += 1
                skipWhitespace()
                guard index < count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    break
                } else {
                    return false
                }
            }
        }
        tape[node].first = elements
        tape[node].second = UInt32(tape.count)
        return true
    }

    /// Checks a number against the JSON grammar (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) and
    /// records whether it is a plain integer; its value is read only when it is decoded.
    private mutating func parseNumber() -> Bool {
        let start = index
        var flags = TapeNode.integer
        if bytes[index] == UInt8(ascii: "-") {
            flags |= TapeNode.negative
            index += 1
        }
        guard index < count else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            guard skipDigits() else { return false }
        }
        if index < count, bytes[index] == UInt8(ascii: ".") {
            flags &= ~TapeNode.integer
            index += 1
            guard skipDigits() else { return false }
        }
        if index < count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            flags &= ~TapeNode.integer
            index += 1
            if index < count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard skipDigits() else { return false }
        }
        tape.append(TapeNode(kind: .number, flags: flags, first: UInt32(start), second: UInt32(index - start)))
        return true
    }

    /// Skips one or more digits; `false` if there is none.
    private mutating func skipDigits() -> Bool {
        let start = index
        while index < count, bytes[index] &- UInt8(ascii: "0") < 10 { index += 1 }
        return index > start
    }

    /// Checks a string (valid UTF-8, valid escapes, no raw control characters) and records whether it
    /// has escapes or non-ASCII bytes, which decide how it is compared and converted later.
    private mutating func parseString() -> Bool {
        index += 1
        let start = index
        var flags: UInt8 = 0
        while index < count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                tape.append(TapeNode(kind: .string, flags: flags, first: UInt32(start), second: UInt32(index - start)))
                index += 1
                return true
            }
            if byte == UInt8(ascii: "\\") {
                flags |= TapeNode.escaped
                guard skipEscape() else { return false }
            } else if byte >= 0x80 {
                flags |= TapeNode.nonASCII
                guard skipUTF8Sequence() else { return false }
            } else {
                // A raw control character is not JSON.
                guard byte >= 0x20 else { return false }
                index += 1
            }
        }
        return false
    }

    /// Skips a valid escape; `\u` escapes of surrogates must come in high-low pairs.
    private mutating func skipEscape() -> Bool {
        guard index + 1 < count else { return false }
        switch bytes[index + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
            UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 2
            return true
        case UInt8(ascii: "u"):
            guard let unit = hexQuad(at: index + 2) else { return false }
            switch unit {
            case 0xD800...0xDBFF:
                guard index + 7 < count, bytes[index + 6] == UInt8(ascii: "\\"), bytes[index + 7] == UInt8(ascii: "u"),
                    let low = hexQuad(at: index + 8), (0xDC00...0xDFFF).contains(low)
                else { return false }
                index += 12
            case 0xDC00...0xDFFF:
                return false
            default:
                index += 6
            }
            return true
        default:
            return false
        }
    }

    /// The four hex digits at `offset`, if there are four.
    private func hexQuad(at offset: Int) -> UInt16? {
        guard offset + 4 <= count else { return nil }
        var value: UInt16 = 0
        for position in offset..<(offset + 4) {
            guard let digit = hexDigit(bytes[position]) else { return nil }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// Skips one well-formed UTF-8 sequence of two to four bytes (Unicode table 3-7: no overlong forms,
    /// no surrogates, nothing above U+10FFFF).
    private mutating func skipUTF8Sequence() -> Bool {
        let lead = bytes[index]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            high = 0x9F
        case 0xF0:
            length = 4
            low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            high = 0x8F
        default: return false
        }
        guard count - index >= length, (low...high).contains(bytes[index + 1]) else { return false }
        for position in (index + 2)..<(index + length) where !(0x80...0xBF).contains(bytes[position]) {
            return false
        }
        index += length
        return true
    }
}

/// The value of a hex digit.
@inline(__always)
private func hexDigit(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

// MARK: - Decoding

/// The types decoded straight from a node: the scalars, and arrays and dictionaries of the commonest
/// ones, which skip the standard library's generic conformances. Finding the kind first keeps generic
/// code free of `T?`, whose metadata unspecialized code would look up on every call.
private enum DirectType {
    case int, string, bool, double, int64, uint64, int32, uint32, uint, int16, uint16, int8, uint8
    case intArray, stringArray, intDictionary, stringDictionary

    /// The kind of `T`, if it is one of these; compares types rather than casting, which is much
    /// cheaper for a generic type.
    @inline(__always)
    init?<T>(_ type: T.Type) {
        if T.self == Int.self {
            self = .int
        } else if T.self == String.self {
            self = .string
        } else if T.self == Bool.self {
            self = .bool
        } else if T.self == Double.self {
            self = .double
        } else if T.self == Int64.self {
            self = .int64
        } else if T.self == UInt64.self {
            self = .uint64
        } else if T.self == Int32.self {
            self = .int32
        } else if T.self == UInt32.self {
            self = .uint32
        } else if T.self == UInt.self {
            self = .uint
        } else if T.self == Int16.self {
            self = .int16
        } else if T.self == UInt16.self {
            self = .uint16
        } else if T.self == Int8.self {
            self = .int8
        } else if T.self == UInt8.self {
            self = .uint8
        } else if T.self == [Int].self {
            self = .intArray
        } else if T.self == [String].self {
            self = .stringArray
        } else if T.self == [String: Int].self {
            self = .intDictionary
        } else if T.self == [String: String].self {
            self = .stringDictionary
        } else {
            return nil
        }
    }
}

/// The parsed document and what one call to `FastJSON.decode` shares between its decoders and
/// containers. Its mutable properties opt out of dynamic exclusivity checks, as `ContainerBox`'s do.
private final class DecodingState {
    let bytes: UnsafeMutablePointer<UInt8>
    let tape: [TapeNode]
    /// Set by anything left to Foundation: the whole decode then returns `nil`, even if the value being
    /// decoded caught the error.
    @exclusivity(unchecked) var failed = false
    /// The coding path of the value being decoded: each decoder's path is a prefix of it.
    @exclusivity(unchecked) var codingPath: [any CodingKey] = []

    init(bytes: UnsafeMutablePointer<UInt8>, tape: [TapeNode]) {
        self.bytes = bytes
        self.tape = tape
    }

    deinit { bytes.deallocate() }

    /// The error for anything left to Foundation, marking the decode failed so that catching it does
    /// not help.
    func unsupported() -> Unsupported {
        failed = true
        return Unsupported()
    }

    /// The index of the node after `node` and its descendants.
    @inline(__always)
    func next(_ node: Int) -> Int {
        let entry = tape[node]
        return entry.isContainer ? Int(entry.second) : node + 1
    }

    // MARK: Scalars

    /// The value of type `T` (`kind`) at `node`.
    @inline(__always)
    func direct<T>(_ kind: DirectType, as type: T.Type, at node: Int) throws -> T {
        switch kind {
        case .int: return unsafeBitCast(try integer(Int.self, at: node), to: T.self)
        case .string: return unsafeBitCast(try string(at: node), to: T.self)
        case .bool: return unsafeBitCast(try bool(at: node), to: T.self)
        case .double: return unsafeBitCast(try double(at: node), to: T.self)
        case .int64: return unsafeBitCast(try integer(Int64.self, at: node), to: T.self)
        case .uint64: return unsafeBitCast(try integer(UInt64.self, at: node), to: T.self)
        case .int32: return unsafeBitCast(try integer(Int32.self, at: node), to: T.self)
        case .uint32: return unsafeBitCast(try integer(UInt32.self, at: node), to: T.self)
        case .uint: return unsafeBitCast(try integer(UInt.self, at: node), to: T.self)
        case .int16: return unsafeBitCast(try integer(Int16.self, at: node), to: T.self)
        case .uint16: return unsafeBitCast(try integer(UInt16.self, at: node), to: T.self)
        case .int8: return unsafeBitCast(try integer(Int8.self, at: node), to: T.self)
        case .uint8: return unsafeBitCast(try integer(UInt8.self, at: node), to: T.self)
        case .intArray: return unsafeBitCast(try array(at: node) { try integer(Int.self, at: $0) }, to: T.self)
        case .stringArray: return unsafeBitCast(try array(at: node, string(at:)), to: T.self)
        case .intDictionary: return unsafeBitCast(try dictionary(at: node) { try integer(Int.self, at: $0) }, to: T.self)
        case .stringDictionary: return unsafeBitCast(try dictionary(at: node, string(at:)), to: T.self)
        }
    }

    /// The array at `node`, as `Array.init(from:)` decodes it.
    private func array<Element>(at node: Int, _ element: (Int) throws -> Element) throws -> [Element] {
        let entry = tape[node]
        guard entry.kind == .array else { throw unsupported() }
        var result: [Element] = []
        result.reserveCapacity(Int(entry.first))
        var child = node + 1
        for _ in 0..<entry.first {
            result.append(try element(child))
            child = next(child)
        }
        return result
    }

    /// The dictionary at `node`, as `Dictionary.init(from:)` decodes one with String keys; a key that
    /// comes twice (as Strings, so canonically equivalent spellings too) is left to JSONDecoder.
    private func dictionary<Value>(at node: Int, _ value: (Int) throws -> Value) throws -> [String: Value] {
        let entry = tape[node]
        guard entry.kind == .object else { throw unsupported() }
        var result: [String: Value] = [:]
        result.reserveCapacity(Int(entry.first))
        var key = node + 1
        for _ in 0..<entry.first {
            guard result.updateValue(try value(key + 1), forKey: stringValue(at: key)) == nil else { throw unsupported() }
            key = next(key + 1)
        }
        return result
    }

    func isNull(_ node: Int) -> Bool { tape[node].kind == .null }

    /// The boolean at `node`: only `true` and `false` are booleans.
    func bool(at node: Int) throws -> Bool {
        switch tape[node].kind {
        case .trueValue: return true
        case .falseValue: return false
        default: throw unsupported()
        }
    }

    /// An integer from a canonical integer literal in `T`'s range; JSONDecoder's conversions of other
    /// numbers ("1.0", "1e2") are left to it.
    func integer<T: FixedWidthInteger>(_ type: T.Type, at node: Int) throws -> T {
        let entry = tape[node]
        guard entry.kind == .number, entry.flags & TapeNode.integer != 0 else { throw unsupported() }
        let negative = entry.flags & TapeNode.negative != 0
        guard !negative || T.isSigned else { throw unsupported() }
        var position = Int(entry.first) + (negative ? 1 : 0)
        let end = Int(entry.first) + Int(entry.second)
        var magnitude: UInt64 = 0
        while position < end {
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(bytes[position] &- UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw unsupported() }
            magnitude = sum
            position += 1
        }
        if negative {
            // T.min's magnitude is one more than T.max.
            guard magnitude <= UInt64(T.max) + 1 else { throw unsupported() }
            return T(truncatingIfNeeded: 0 &- magnitude)
        }
        guard magnitude <= UInt64(T.max) else { throw unsupported() }
        return T(truncatingIfNeeded: magnitude)
    }

    /// A plain decimal (no exponent) whose digits form an integer below 2^53 with at most 22 of them
    /// after the point: that integer divided by an exact power of ten, which one IEEE division rounds
    /// correctly, so it is the value strtod (JSONDecoder) gives. Anything else is left to JSONDecoder.
    func double(at node: Int) throws -> Double {
        let entry = tape[node]
        guard entry.kind == .number else { throw unsupported() }
        var position = Int(entry.first)
        let end = position + Int(entry.second)
        let negative = entry.flags & TapeNode.negative != 0
        if negative { position += 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var fractionDigits = 0
        var inFraction = false
        while position < end {
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: ".") {
                inFraction = true
                continue
            }
            // An exponent: the parser has checked the syntax, so any non-digit here is one.
            guard byte &- UInt8(ascii: "0") < 10 else { throw unsupported() }
            mantissa = mantissa &* 10 &+ UInt64(byte &- UInt8(ascii: "0"))
            digits += 1
            if inFraction { fractionDigits += 1 }
            // 19 digits cannot overflow UInt64; longer mantissas are above 2^53 anyway.
            guard digits <= 19, fractionDigits <= 22 else { throw unsupported() }
        }
        guard mantissa <= 1 << 53 else { throw unsupported() }
        let value = Double(mantissa) / Self.exactPowersOfTen[fractionDigits]
        return negative ? -value : value
    }

    /// Exact powers of ten: every one up to 10^22 is a Double without rounding.
    private static let exactPowersOfTen: [Double] = (0...22).map { exponent in
        (0..<exponent).reduce(1.0) { value, _ in value * 10 }
    }

    /// The string at `node`; any other kind of value is left to JSONDecoder.
    func string(at node: Int) throws -> String {
        guard tape[node].kind == .string else { throw unsupported() }
        return stringValue(at: node)
    }

    /// The text of the string node `node`, whose bytes the parser has validated.
    func stringValue(at node: Int) -> String {
        let entry = tape[node]
        let start = bytes + Int(entry.first)
        let length = Int(entry.second)
        guard entry.flags & TapeNode.escaped != 0 else {
            return String(decoding: UnsafeBufferPointer(start: start, count: length), as: UTF8.self)
        }
        // Unescaping never lengthens: the longest output, four bytes, comes from a twelve-byte pair.
        return String(unsafeUninitializedCapacity: length) { output in
            var input = 0
            var written = 0
            while input < length {
                let byte = start[input]
                guard byte == UInt8(ascii: "\\") else {
                    output[written] = byte
                    written += 1
                    input += 1
                    continue
                }
                let escape = start[input + 1]
                input += 2
                let simple: UInt8
                switch escape {
                case UInt8(ascii: "b"): simple = 0x08
                case UInt8(ascii: "f"): simple = 0x0C
                case UInt8(ascii: "n"): simple = 0x0A
                case UInt8(ascii: "r"): simple = 0x0D
                case UInt8(ascii: "t"): simple = 0x09
                case UInt8(ascii: "u"):
                    var scalar = UInt32(Self.hexQuad(start + input))
                    input += 4
                    if (0xD800...0xDBFF).contains(scalar) {
                        let low = UInt32(Self.hexQuad(start + input + 2))
                        input += 6
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    written += Self.writeUTF8(scalar, to: output.baseAddress.map { $0 + written })
                    continue
                default: simple = escape  // \" \\ \/
                }
                output[written] = simple
                written += 1
            }
            return written
        }
    }

    /// Four hex digits the parser has validated.
    private static func hexQuad(_ digits: UnsafePointer<UInt8>) -> UInt16 {
        var value: UInt16 = 0
        for offset in 0..<4 { value = value << 4 | UInt16(hexDigit(digits[offset]) ?? 0) }
        return value
    }

    /// Writes a scalar value as UTF-8 and returns the number of bytes.
    private static func writeUTF8(_ scalar: UInt32, to output: UnsafeMutablePointer<UInt8>?) -> Int {
        guard let output else { return 0 }
        switch scalar {
        case 0..<0x80:
            output[0] = UInt8(truncatingIfNeeded: scalar)
            return 1
        case 0x80..<0x800:
            output[0] = 0xC0 | UInt8(truncatingIfNeeded: scalar >> 6)
            output[1] = 0x80 | UInt8(truncatingIfNeeded: scalar & 0x3F)
            return 2
        case 0x800..<0x10000:
            output[0] = 0xE0 | UInt8(truncatingIfNeeded: scalar >> 12)
            output[1] = 0x80 | UInt8(truncatingIfNeeded: (scalar >> 6) & 0x3F)
            output[2] = 0x80 | UInt8(truncatingIfNeeded: scalar & 0x3F)
            return 3
        default:
            output[0] = 0xF0 | UInt8(truncatingIfNeeded: scalar >> 18)
            output[1] = 0x80 | UInt8(truncatingIfNeeded: (scalar >> 12) & 0x3F)
            output[2] = 0x80 | UInt8(truncatingIfNeeded: (scalar >> 6) & 0x3F)
            output[3] = 0x80 | UInt8(truncatingIfNeeded: scalar & 0x3F)
            return 4
        }
    }

    // MARK: Values

    /// Decodes the value at `node` as `T`: scalars directly, anything else through a child decoder
    /// whose coding path is the caller's plus `extraPath` and `key`.
    func decodeValue<T: Decodable>(_ type: T.Type, at node: Int, pathDepth: Int, extraPath: [any CodingKey], key: any CodingKey) throws -> T {
        if let kind = DirectType(T.self) { return try direct(kind, as: T.self, at: node) }
        // JSONDecoder decodes these its own way (Data from base64, URL from a string...).
        guard !isSpecial(T.self), codingPath.count == pathDepth else { throw unsupported() }
        codingPath.append(contentsOf: extraPath)
        codingPath.append(key)
        // Restored on throws too: the value being decoded may catch the error and carry on.
        defer { codingPath.removeLast(codingPath.count - pathDepth) }
        return try T(from: NodeDecoder(state: self, node: node, pathDepth: codingPath.count))
    }

    // MARK: Objects

    /// Whether the keys of two members are the same String, which is what JSONDecoder's dictionary
    /// compares (canonical equivalence, so "é" precomposed and decomposed are the same key).
    func sameKey(_ a: Int, _ b: Int) -> Bool {
        let first = tape[a]
        let second = tape[b]
        // Plain ASCII is its own normal form: equal as Strings exactly when the bytes are equal.
        if first.flags == 0, second.flags == 0 {
            return first.second == second.second
                && memcmp(bytes + Int(first.first), bytes + Int(second.first), Int(first.second)) == 0
        }
        return stringValue(at: a) == stringValue(at: b)
    }

    /// The index of the value of the member named `name` in the object `node`, if there is one.
    func member(named name: String, in node: Int) -> Int? {
        let members = Int(tape[node].first)
        var copy = name
        return copy.withUTF8 { utf8 -> Int? in
            var ascii = true
            for byte in utf8 where byte >= 0x80 {
                ascii = false
                break
            }
            var key = node + 1
            for _ in 0..<members {
                let entry = tape[key]
                if ascii, entry.flags == 0 {
                    if Int(entry.second) == utf8.count, bytesEqual(at: Int(entry.first), utf8) { return key + 1 }
                } else if stringValue(at: key) == name {
                    return key + 1
                }
                key = next(key + 1)
            }
            return nil
        }
    }

    /// Whether the document's bytes at `offset` are those of `other`.
    private func bytesEqual(at offset: Int, _ other: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = other.baseAddress, !other.isEmpty else { return true }
        return memcmp(bytes + offset, base, other.count) == 0
    }

    /// Checks that no two members of the object `node` have the same key: JSONDecoder keeps the first,
    /// others the last, so such documents are left to it. Large objects get a table for lookups.
    func checkMembers(of node: Int) throws -> [String: Int]? {
        let members = Int(tape[node].first)
        if members <= ObjectDecoderLimits.linearMembers {
            var key = node + 1
            for _ in 0..<members {
                var earlier = node + 1
                while earlier < key {
                    if sameKey(earlier, key) { throw unsupported() }
                    earlier = next(earlier + 1)
                }
                key = next(key + 1)
            }
            return nil
        }
        var table: [String: Int] = [:]
        table.reserveCapacity(members)
        var key = node + 1
        for _ in 0..<members {
            guard table.updateValue(key + 1, forKey: stringValue(at: key)) == nil else { throw unsupported() }
            key = next(key + 1)
        }
        return table
    }
}

/// Sizes for keyed containers.
private enum ObjectDecoderLimits {
    /// Objects with up to this many members are searched key by key; larger ones get a hash table.
    static let linearMembers = 16
}

/// The decoder of one node: a struct of three words, so passing it as `any Decoder` allocates nothing.
/// It is its own single-value container, as in JSONDecoder.
private struct NodeDecoder: Decoder, SingleValueDecodingContainer {
    let state: DecodingState
    let node: Int
    /// The length of the prefix of `state.codingPath` that is this decoder's coding path.
    let pathDepth: Int

    var codingPath: [any CodingKey] { Array(state.codingPath.prefix(pathDepth)) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(try ObjectDecoder<Key>(state: state, node: node, pathDepth: pathDepth, extraPath: []))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try ArrayDecoder(state: state, node: node, pathDepth: pathDepth, extraPath: [])
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { state.isNull(node) }
    func decode(_ type: Bool.Type) throws -> Bool { try state.bool(at: node) }
    func decode(_ type: String.Type) throws -> String { try state.string(at: node) }
    func decode(_ type: Double.Type) throws -> Double { try state.double(at: node) }
    func decode(_ type: Float.Type) throws -> Float { throw state.unsupported() }
    func decode(_ type: Int.Type) throws -> Int { try state.integer(type, at: node) }
    func decode(_ type: Int8.Type) throws -> Int8 { try state.integer(type, at: node) }
    func decode(_ type: Int16.Type) throws -> Int16 { try state.integer(type, at: node) }
    func decode(_ type: Int32.Type) throws -> Int32 { try state.integer(type, at: node) }
    func decode(_ type: Int64.Type) throws -> Int64 { try state.integer(type, at: node) }
    func decode(_ type: UInt.Type) throws -> UInt { try state.integer(type, at: node) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try state.integer(type, at: node) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try state.integer(type, at: node) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try state.integer(type, at: node) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try state.integer(type, at: node) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    func decode(_ type: Int128.Type) throws -> Int128 { throw state.unsupported() }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    func decode(_ type: UInt128.Type) throws -> UInt128 { throw state.unsupported() }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if let kind = DirectType(T.self) { return try state.direct(kind, as: T.self, at: node) }
        guard !isSpecial(T.self) else { throw state.unsupported() }
        // JSONDecoder decodes the value with this same decoder and path.
        return try T(from: self)
    }
}

/// A keyed container over an object node.
private struct ObjectDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let state: DecodingState
    let node: Int
    let pathDepth: Int
    /// The keys between this container's decoder and the container (nested containers).
    let extraPath: [any CodingKey]
    /// Member name to value node, for objects too large to search one key at a time.
    let table: [String: Int]?

    /// A container over the object `node`, which must not repeat a key.
    init(state: DecodingState, node: Int, pathDepth: Int, extraPath: [any CodingKey]) throws {
        guard state.tape[node].kind == .object else { throw state.unsupported() }
        self.state = state
        self.node = node
        self.pathDepth = pathDepth
        self.extraPath = extraPath
        self.table = try state.checkMembers(of: node)
    }

    var codingPath: [any CodingKey] { Array(state.codingPath.prefix(pathDepth)) + extraPath }

    /// The keys `Key` knows, in document order. JSONDecoder's order is its dictionary's, so a type
    /// whose result depended on the order would differ between runs of JSONDecoder already; the one
    /// case that does not is caught: two names for one integer key ("1" and "01" in an `[Int: V]`),
    /// where which value wins would depend on the order.
    var allKeys: [Key] {
        let members = Int(state.tape[node].first)
        var keys: [Key] = []
        keys.reserveCapacity(members)
        var integerKeys = 0
        var key = node + 1
        for _ in 0..<members {
            if let codingKey = Key(stringValue: state.stringValue(at: key)) {
                keys.append(codingKey)
                if codingKey.intValue != nil { integerKeys += 1 }
            }
            key = state.next(key + 1)
        }
        if integerKeys > 1 {
            var seen = Set<Int>()
            for codingKey in keys {
                if let int = codingKey.intValue, !seen.insert(int).inserted {
                    state.failed = true
                    break
                }
            }
        }
        return keys
    }

    /// The value node of `key`, found as JSONDecoder's dictionary finds it (by String equality).
    private func find(_ key: Key) -> Int? {
        if let table { return table[key.stringValue] }
        return state.member(named: key.stringValue, in: node)
    }

    /// The value node of `key`; a missing key is an error in JSONDecoder.
    private func value(_ key: Key) throws -> Int {
        guard let value = find(key) else { throw state.unsupported() }
        return value
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { state.isNull(try value(key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try state.bool(at: value(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try state.string(at: value(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try state.double(at: value(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw state.unsupported() }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try state.integer(type, at: value(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try state.integer(type, at: value(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try state.integer(type, at: value(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try state.integer(type, at: value(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try state.integer(type, at: value(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try state.integer(type, at: value(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try state.integer(type, at: value(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try state.integer(type, at: value(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try state.integer(type, at: value(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try state.integer(type, at: value(key)) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    func decode(_ type: Int128.Type, forKey key: Key) throws -> Int128 { throw state.unsupported() }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    func decode(_ type: UInt128.Type, forKey key: Key) throws -> UInt128 { throw state.unsupported() }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try state.decodeValue(type, at: value(key), pathDepth: pathDepth, extraPath: extraPath, key: key)
    }

    // The protocol's decodeIfPresent calls contains, decodeNil and decode: three lookups. These give
    // the same answers (nil for a missing key or a null) with one.
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(type, key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(type, key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try present(type, key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try present(type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(type, key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try present(type, key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try present(type, key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try present(type, key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try present(type, key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try present(type, key) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try present(type, key) }

    /// The value of `key`, or `nil` if it is missing or null.
    private func present<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        guard let value = find(key), !state.isNull(value) else { return nil }
        return try state.decodeValue(type, at: value, pathDepth: pathDepth, extraPath: extraPath, key: key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(try ObjectDecoder<NestedKey>(state: state, node: value(key), pathDepth: pathDepth, extraPath: extraPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ArrayDecoder(state: state, node: value(key), pathDepth: pathDepth, extraPath: extraPath + [key])
    }

    func superDecoder() throws -> any Decoder { throw state.unsupported() }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw state.unsupported() }
}

/// An unkeyed container over an array node.
private struct ArrayDecoder: UnkeyedDecodingContainer {
    let state: DecodingState
    let pathDepth: Int
    let extraPath: [any CodingKey]
    let elements: Int
    /// The node of the element at `currentIndex`.
    private var cursor: Int
    private(set) var currentIndex = 0

    /// A container over the array `node`.
    init(state: DecodingState, node: Int, pathDepth: Int, extraPath: [any CodingKey]) throws {
        guard state.tape[node].kind == .array else { throw state.unsupported() }
        self.state = state
        self.pathDepth = pathDepth
        self.extraPath = extraPath
        self.elements = Int(state.tape[node].first)
        self.cursor = node + 1
    }

    var codingPath: [any CodingKey] { Array(state.codingPath.prefix(pathDepth)) + extraPath }
    var count: Int? { elements }
    var isAtEnd: Bool { currentIndex >= elements }

    /// The node of the next element; past the end is an error in JSONDecoder.
    private func current() throws -> Int {
        guard !isAtEnd else { throw state.unsupported() }
        return cursor
    }

    /// Moves past the element at `currentIndex`, skipping its descendants.
    private mutating func advance() {
        cursor = state.next(cursor)
        currentIndex += 1
    }

    mutating func decodeNil() throws -> Bool {
        guard state.isNull(try current()) else { return false }
        advance()
        return true
    }

    /// The next element as an integer; a failure does not move past it.
    private mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let value = try state.integer(type, at: current())
        advance()
        return value
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool {
        let value = try state.bool(at: current())
        advance()
        return value
    }

    mutating func decode(_ type: String.Type) throws -> String {
        let value = try state.string(at: current())
        advance()
        return value
    }

    mutating func decode(_ type: Double.Type) throws -> Double {
        let value = try state.double(at: current())
        advance()
        return value
    }

    mutating func decode(_ type: Float.Type) throws -> Float { throw state.unsupported() }
    mutating func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func decode(_ type: Int128.Type) throws -> Int128 { throw state.unsupported() }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func decode(_ type: UInt128.Type) throws -> UInt128 { throw state.unsupported() }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try state.decodeValue(type, at: current(), pathDepth: pathDepth, extraPath: extraPath, key: IndexKey(index: currentIndex))
        advance()
        return value
    }

    // As in JSONDecoder, which differs from the protocol's default here: past the end, decodeIfPresent
    // gives nil and still counts the element.
    mutating func decodeIfPresent(_ type: Bool.Type) throws -> Bool? { try present(type) }
    mutating func decodeIfPresent(_ type: String.Type) throws -> String? { try present(type) }
    mutating func decodeIfPresent(_ type: Double.Type) throws -> Double? { try present(type) }
    mutating func decodeIfPresent(_ type: Int.Type) throws -> Int? { try present(type) }
    mutating func decodeIfPresent(_ type: Int8.Type) throws -> Int8? { try present(type) }
    mutating func decodeIfPresent(_ type: Int16.Type) throws -> Int16? { try present(type) }
    mutating func decodeIfPresent(_ type: Int32.Type) throws -> Int32? { try present(type) }
    mutating func decodeIfPresent(_ type: Int64.Type) throws -> Int64? { try present(type) }
    mutating func decodeIfPresent(_ type: UInt.Type) throws -> UInt? { try present(type) }
    mutating func decodeIfPresent(_ type: UInt8.Type) throws -> UInt8? { try present(type) }
    mutating func decodeIfPresent(_ type: UInt16.Type) throws -> UInt16? { try present(type) }
    mutating func decodeIfPresent(_ type: UInt32.Type) throws -> UInt32? { try present(type) }
    mutating func decodeIfPresent(_ type: UInt64.Type) throws -> UInt64? { try present(type) }
    mutating func decodeIfPresent(_ type: Float.Type) throws -> Float? { try present(type) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func decodeIfPresent(_ type: Int128.Type) throws -> Int128? { try present(type) }
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, visionOS 2.0, *)
    mutating func decodeIfPresent(_ type: UInt128.Type) throws -> UInt128? { try present(type) }
    mutating func decodeIfPresent<T: Decodable>(_ type: T.Type) throws -> T? { try present(type) }

    /// The next element, or `nil` past the end or for a null, counting the element either way.
    private mutating func present<T: Decodable>(_ type: T.Type) throws -> T? {
        if isAtEnd {
            currentIndex += 1
            return nil
        }
        if state.isNull(cursor) {
            advance()
            return nil
        }
        return try decode(type)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let path = extraPath + [IndexKey(index: currentIndex)]
        let container = try ObjectDecoder<NestedKey>(state: state, node: current(), pathDepth: pathDepth, extraPath: path)
        advance()
        return KeyedDecodingContainer(container)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let path = extraPath + [IndexKey(index: currentIndex)]
        let container = try ArrayDecoder(state: state, node: current(), pathDepth: pathDepth, extraPath: path)
        advance()
        return container
    }

    mutating func superDecoder() throws -> any Decoder { throw state.unsupported() }
}
