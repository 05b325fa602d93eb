/// When a streamed answer becomes the client's. A provider can fail after its HTTP 200 but before
/// any content (an error event first, a stream that ends empty); until then the client has been
/// sent nothing, so the request may still fall back to the next target. The rule: hold the
/// response head and everything the relay produced until the first chunk with content (the role
/// chunk alone is not content) or the stream's end; from then on the answer is committed and
/// every failure becomes a final error event (docs/api.md, "Streaming").
///
/// Pure: the relay's output and progress in, what to do with it out. Whether content came first
/// depends on the events, never on how the provider's bytes were split into reads, which the
/// tests check on every provider's stream fixtures.
public struct StreamCommit: Sendable {
    public enum Action: Equatable, Sendable {
        /// Nothing to write yet (held, or nothing produced).
        case hold
        /// Write the response head, then these bytes (everything held so far): the answer is now
        /// the client's.
        case open([UInt8])
        /// Write these bytes (the answer was opened before).
        case send([UInt8])
        /// The stream failed before any content: nothing was sent, the attempt fails over. The
        /// bytes the relay produced (its error event) are dropped.
        case abandon
    }

    public private(set) var isCommitted = false
    private var held: [UInt8] = []

    public init() {}

    /// What to do with `produced`, the relay's output for one read (or for the stream's end).
    /// `relay` is the relay after producing it.
    public mutating func next(_ produced: [UInt8], relay: StreamRelay) -> Action {
        next(produced, contentSeen: relay.hasContent, failed: relay.error != nil, complete: relay.isComplete)
    }

    /// The same, from the relay's progress: `contentSeen` once a chunk with content was produced
    /// (judged from the chunks, not counted: OpenAI's first chunk may carry role and content
    /// together, and a bare finish chunk is not content), `failed` when an error ended the stream,
    /// `complete` once `[DONE]` was written.
    public mutating func next(_ produced: [UInt8], contentSeen: Bool, failed: Bool, complete: Bool) -> Action {
        if isCommitted { return produced.isEmpty ? .hold : .send(produced) }
        let hasContent = contentSeen
        if failed && !hasContent { return .abandon }
        held += produced
        guard !held.isEmpty, hasContent || complete else { return .hold }
        isCommitted = true
        defer { held = [] }
        return .open(held)
    }
}
