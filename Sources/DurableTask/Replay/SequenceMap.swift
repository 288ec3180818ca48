/// A map from increasing integer keys (sequence numbers, receipts) to values, stored in an array
/// offset by the smallest live key.
///
/// Keys arrive in increasing order and leave in any order; lookups are an index, not a hash. A fan-out
/// keeps 100,000 entries live, where a `Dictionary` spends its time hashing, probing and resizing.
package struct SequenceMap<Value> {
    private var base = 0
    private var slots: [Value?] = []
    private var head = 0
    /// How many keys have a value.
    package private(set) var count = 0

    package init() {}

    /// The value for `key`, if any. Setting `nil` removes it.
    package subscript(key: Int) -> Value? {
        get {
            let index = key - base
            guard index >= head, index < slots.count else { return nil }
            return slots[index]
        }
        set {
            if let newValue {
                insert(newValue, at: key)
            } else {
                _ = removeValue(forKey: key)
            }
        }
    }

    private mutating func insert(_ value: Value, at key: Int) {
        if slots.count == head {
            // Empty: restart the window at this key.
            slots.removeAll(keepingCapacity: true)
            head = 0
            base = key
        }
        var index = key - base
        if index < head {
            // A key below the window (rare: keys normally increase); grow the window downwards.
            let missing = head - index
            slots.insert(contentsOf: repeatElement(nil, count: missing), at: head)
            slots.removeFirst(head)
            base -= missing
            head = 0
            index = key - base
        }
        if index == slots.count {
            // The common case: keys arrive in order.
            slots.append(value)
            count += 1
            return
        }
        if index > slots.count {
            slots.append(contentsOf: repeatElement(nil, count: index - slots.count + 1))
        }
        if slots[index] == nil { count += 1 }
        slots[index] = value
    }

    /// Removes and returns the value for `key`.
    @discardableResult
    package mutating func removeValue(forKey key: Int) -> Value? {
        let index = key - base
        guard index >= head, index < slots.count, let value = slots[index] else { return nil }
        slots[index] = nil
        count -= 1
        while head < slots.count, slots[head] == nil { head += 1 }
        if head == slots.count {
            slots.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024, head * 2 > slots.count {
            slots.removeFirst(head)
            base += head
            head = 0
        }
        return value
    }

    /// The values in key order.
    package var values: [Value] { slots[head...].compactMap { $0 } }

    /// Calls `body` with each key and value in key order, without building an array.
    package func forEach(_ body: (Int, Value) throws -> Void) rethrows {
        for index in head..<slots.count {
            if let value = slots[index] { try body(base + index, value) }
        }
    }

    /// The keys and values in key order.
    package var entries: [(key: Int, value: Value)] {
        slots[head...].indices.compactMap { index in slots[index].map { (base + index, $0) } }
    }

    /// Removes everything.
    package mutating func removeAll() {
        slots.removeAll(keepingCapacity: true)
        head = 0
        count = 0
    }
}
