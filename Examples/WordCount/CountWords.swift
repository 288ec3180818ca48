import DurableTask
import Foundation

/// One thing to count: a file the activity reads, or text carried in the input itself.
///
/// Files travel as paths, not contents, so the orchestration's history stays small: the history
/// records each activity's input and result, and a path is a few bytes where a file may be megabytes.
struct Document: Codable, Sendable {
    /// Where the words come from.
    enum Source: Codable, Sendable {
        /// An absolute path, read by the activity (so a worker in another directory finds it too).
        case file(path: String)
        /// Text to count as is (the generated sentences of `--items N`).
        case text(String)
    }

    /// The name printed next to the count: the path as the user wrote it, or "sentence 7".
    var name: String
    /// Where the words come from.
    var source: Source
}

/// The activity: counts the whitespace-separated words of one document, as `wc -w` does for ASCII text.
///
/// Activities are where I/O belongs: reading a file here is fine, while the orchestrator only
/// schedules and sums. If the worker crashes mid-way, the activity runs again (at least once), which
/// is harmless because counting is idempotent.
struct CountWords: Activity {
    /// Thrown when a file cannot be read; the orchestrator reports it next to the file's name.
    struct UnreadableFile: Error, CustomStringConvertible {
        /// The file that could not be read.
        var path: String
        /// Why, in the operating system's words.
        var reason: String

        var description: String { "cannot read \(path): \(reason)" }
    }

    /// Prints a line per document counted, so the worker terminal of the two-terminal mode shows
    /// which process does the work.
    var announce = false

    /// Pretend each word takes this long to count (`--ms-per-word`), so a run lasts long enough to watch
    /// its progress, or to stop a worker in the middle.
    var millisecondsPerWord = 0

    /// Counts the words of `document`.
    /// - Throws: ``UnreadableFile`` when the document is a file that cannot be read.
    func run(context: ActivityContext, input document: Document) async throws -> Int {
        let words: Int
        switch document.source {
        case .text(let text):
            words = Self.countWords(in: Data(text.utf8))
        case .file(let path):
            do {
                words = Self.countWords(in: try Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw UnreadableFile(path: path, reason: error.localizedDescription)
            }
        }
        if millisecondsPerWord > 0 {
            // `try?`: when the worker stops, the pause ends early and the count is still recorded,
            // rather than a cancellation being recorded as this document's failure.
            try? await Task.sleep(for: .milliseconds(words * millisecondsPerWord))
        }
        if announce {
            print("  counted \(document.name): \(words) words")
        }
        return words
    }

    /// Counts maximal runs of bytes other than the six ASCII whitespace bytes (space, tab, newline,
    /// vertical tab, form feed, carriage return).
    ///
    /// That is `wc -w` for ASCII text. GNU `wc` differs on other text: in a UTF-8 locale it also splits
    /// at Unicode spaces (U+00A0, U+2000 to U+200A, U+3000, ...), and it does not count a run with no
    /// printable character (a lone control byte; in the C locale also a run of non-ASCII bytes, such as
    /// "é"). Working on bytes keeps the count the same on every machine, whatever its locale, and never
    /// fails on a file that is not valid UTF-8.
    static func countWords(in data: Data) -> Int {
        var count = 0
        var inWord = false
        for byte in data {
            let isSpace = byte == 0x20 || (0x09...0x0D).contains(byte)
            if isSpace {
                inWord = false
            } else if !inWord {
                inWord = true
                count += 1
            }
        }
        return count
    }
}
