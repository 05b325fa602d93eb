import NIOHTTP1

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

    /// The reply words a script asks for (`words=N`, default 8), cut to the request's
    /// max-tokens `limit` when that is smaller; `truncated` says whether it was cut.
    static func words(for script: SimulatorScript, limit: Int?) -> (words: [String], truncated: Bool) {
        let requested = script.words ?? defaultWordCount
        let count = limit.flatMap { (0..<requested).contains($0) ? $0 : nil } ?? requested
        return (words(count: count, unicode: script.unicode), count < requested)
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

    /// Whitespace-separated words in all of `texts`.
    static func wordCount(_ texts: [String]) -> Int {
        texts.reduce(0) { $0 + wordCount($1) }
    }

    /// The prompt tokens of messages given as their texts: each message's words plus 4.
    static func promptTokens(_ messages: [[String]]) -> Int {
        messages.reduce(0) { $0 + tokensPerMessage + wordCount($1) }
    }

    // MARK: Scripted tool calls

    /// The arguments of every scripted tool call.
    static let toolCallArguments = #"{"city":"Paris"}"#

    /// `{"city":"Paris"}` → `{"city":` + `"Paris"}`: the pieces a streamed call's arguments arrive in.
    static func argumentFragments(_ arguments: String) -> [String] {
        guard let colon = arguments.firstIndex(of: ":") else { return [arguments] }
        let cut = arguments.index(after: colon)
        return [String(arguments[..<cut]), String(arguments[cut...])].filter { !$0.isEmpty }
    }

    // MARK: Embeddings and errors

    /// The length of an embedding vector unless the request asks for another.
    static let embeddingDimensions = 8

    /// `dimensions` deterministic floats in [-1, 1) derived from the text, rounded to 6 decimals.
    /// A shorter vector is a prefix of a longer one for the same text.
    static func embeddingVector(for text: String, dimensions: Int = embeddingDimensions) -> [Double] {
        var random = SimulatorRandom(seedText: text)
        return (0..<dimensions).map { _ in
            let unit = Double(random.next() >> 11) / Double(1 << 53)
            return ((unit * 2 - 1) * 1_000_000).rounded() / 1_000_000
        }
    }

    /// The generic message for a `status=CODE` directive; it names the status so tests can
    /// tell a scripted failure from a real one.
    static func scriptedErrorMessage(status: Int) -> String {
        "Simulated HTTP \(status) \(HTTPResponseStatus(statusCode: status).reasonPhrase) from the provider simulator."
    }
}
