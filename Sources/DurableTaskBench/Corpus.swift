/// Deterministic sentences for the word-count fan-out, with their word counts known in advance.
///
/// Sentence `i` is a pure function of `i` (a SplitMix64 hash, no global random state), so the
/// orchestrator can generate its own inputs deterministically on every replay, and the benchmark can
/// compute the exact expected total without running the activities — the check is independent of
/// the code under test.
enum Corpus {
    private static let vocabulary = [
        "durable", "task", "orchestration", "activity", "replay", "history", "event", "worker",
        "backend", "sqlite", "swift", "fan", "out", "in", "the", "a", "of", "and", "to", "count",
        "word", "sentence", "benchmark", "linear", "cost", "episode", "cache", "commit", "batch", "lease"
    ]

    /// SplitMix64: a well-mixed 64-bit hash of `seed`, enough to vary sentence length and words.
    private static func mix(_ seed: UInt64) -> UInt64 {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// How many words sentence `index` has: 3 to 14.
    static func wordCount(_ index: Int) -> Int {
        3 + Int(mix(UInt64(index)) % 12)
    }

    /// Sentence `index`: ``wordCount(_:)`` words from a fixed vocabulary, separated by single spaces.
    static func sentence(_ index: Int) -> String {
        var state = mix(UInt64(index) &* 31 &+ 7)
        var words: [String] = []
        let count = wordCount(index)
        words.reserveCapacity(count)
        for _ in 0..<count {
            state = mix(state)
            words.append(vocabulary[Int(state % UInt64(vocabulary.count))])
        }
        return words.joined(separator: " ")
    }

    /// The total word count of sentences `range`, computed from the generator, not by counting.
    static func expectedTotal(_ range: Range<Int>) -> Int {
        range.reduce(0) { $0 + wordCount($1) }
    }
}
