/// The deterministic reply text and token arithmetic shared by every simulated provider.
///
/// Tokens are words: `completion_tokens` is the number of reply words and a prompt costs
/// its whitespace-separated words plus 4 per message, so tests can predict usage exactly.
enum SimulatedReply {
    static let defaultWordCount = 8
    static let plainVocabulary = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog."]
    static let unicodeVocabulary = ["héllo", "日本語", "🌍", "naïve", "Ωmega", "emoji🎉", "ok", "done."]
    static let tokensPerMessage = 4

    /// `count` words cycling through the vocabulary.
    static func words(count: Int, unicode: Bool) -> [String] {
        let vocabulary = unicode ? unicodeVocabulary : plainVocabulary
        return (0..<max(0, count)).map { vocabulary[$0 % vocabulary.count] }
    }

    /// The stream pieces for `words`: each word plus a trailing space, except the last,
    /// so the pieces concatenate to exactly `words.joined(separator: " ")`.
    static func streamPieces(_ words: [String]) -> [String] {
        words.enumerated().map { index, word in index == words.count - 1 ? word : word + " " }
    }

    /// Whitespace-separated words in `text`.
    static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: { $0.isWhitespace }).count
    }
}
