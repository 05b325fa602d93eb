/// The scripted behaviour of one simulated response, read from `[sim k=v ...]` directives.
///
/// Directives ride inside message text so they pass through the gateway untouched; the
/// `X-Sim` header (same `k=v k=v` syntax) serves direct tests. Header directives are applied
/// first, then every `[sim ...]` block in message order, so later values win. Unknown keys
/// and malformed values are ignored. A key prefixed with a provider's name (`openai:status=500`)
/// applies only when that provider answers, so one prompt can script a failure on the first
/// target of a fallback chain and a success on the next.
struct SimulatorScript: Sendable, Equatable {
    /// The simulated provider answering (`openai`, `anthropic`, …), for provider-scoped keys.
    let provider: String

    /// `words=N`: reply length in words.
    var words: Int?
    /// `status=CODE`: answer with this HTTP status and the provider's error body.
    var status: Int?
    /// `retry_after=S`: add `Retry-After: S`.
    var retryAfterSeconds: Int?
    /// `latency_ms=N`: wait before sending the response head.
    var latencyMs: Int?
    /// `chunk_delay_ms=N`: wait between stream events.
    var chunkDelayMs: Int?
    /// `split=1`: write the body in flushed pieces of 1–3 bytes.
    var split = false
    /// `unicode=1`: reply with multi-byte words.
    var unicode = false
    /// `disconnect_after=K`: stream K word chunks (non-stream: half the body), then drop the connection.
    var disconnectAfter: Int?
    /// `malformed=1`: send invalid JSON.
    var malformed = false
    /// `empty_body=1`: 200 with an empty body.
    var emptyBody = false
    /// `tool=NAME`: answer with one call of tool NAME, arguments `{"city":"Paris"}` (streamed in
    /// fragments where the provider streams argument fragments). A request whose last message
    /// is a tool result is answered with text instead, so a tool round trip ends.
    var tool: String?
    /// `stream_error_after=K`: stream K word chunks, then the provider's own mid-stream error event.
    var streamErrorAfter: Int?
    /// `pause_after=K pause_ms=N`: after the first K stream events (the provider's own events,
    /// e.g. OpenAI's role chunk then one per word), stay silent N ms more.
    var pauseAfter: Int?
    var pauseMs: Int?

    /// The script from a request's `X-Sim` header; the provider then `scan`s the message texts.
    init(header: String?, provider: String) {
        self.provider = provider
        if let header { apply(directives: header) }
    }

    /// The status a `status=` directive asks the provider to fail with; nil for none or 200.
    var failureStatus: Int? { status == 200 ? nil : status }

    /// Applies every `[sim ...]` block found in `text`.
    mutating func scan(_ text: String) {
        var rest = text[...]
        while let open = rest.range(of: "[sim") {
            let after = rest[open.upperBound...]
            guard let first = after.first, first == "]" || first.isWhitespace else {
                rest = after
                continue
            }
            guard let close = after.firstIndex(of: "]") else { return }
            apply(directives: String(after[..<close]))
            rest = after[after.index(after: close)...]
        }
    }

    /// Applies a `k=v k=v` list.
    mutating func apply(directives: String) {
        for pair in directives.split(whereSeparator: { $0.isWhitespace }) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            var key = parts[0].lowercased()[...]
            if let colon = key.firstIndex(of: ":") {
                guard key[..<colon] == provider else { continue }
                key = key[key.index(after: colon)...]
            }
            set(key: String(key), value: String(parts[1]))
        }
    }

    private mutating func set(key: String, value: String) {
        switch key {
        case "words": words = Self.integer(value, in: 0...100_000) ?? words
        case "status": status = Self.integer(value, in: 200...599) ?? status
        case "retry_after": retryAfterSeconds = Self.integer(value, in: 0...86_400) ?? retryAfterSeconds
        case "latency_ms": latencyMs = Self.integer(value, in: 0...600_000) ?? latencyMs
        case "chunk_delay_ms": chunkDelayMs = Self.integer(value, in: 0...600_000) ?? chunkDelayMs
        case "disconnect_after": disconnectAfter = Self.integer(value, in: 0...100_000) ?? disconnectAfter
        case "split": split = Self.flag(value) ?? split
        case "unicode": unicode = Self.flag(value) ?? unicode
        case "malformed": malformed = Self.flag(value) ?? malformed
        case "empty_body": emptyBody = Self.flag(value) ?? emptyBody
        case "tool": tool = value.isEmpty ? tool : value
        case "stream_error_after": streamErrorAfter = Self.integer(value, in: 0...100_000) ?? streamErrorAfter
        case "pause_after": pauseAfter = Self.integer(value, in: 1...100_000) ?? pauseAfter
        case "pause_ms": pauseMs = Self.integer(value, in: 0...600_000) ?? pauseMs
        default: break
        }
    }

    private static func integer(_ text: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = Int(text), range.contains(value) else { return nil }
        return value
    }

    private static func flag(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: return nil
        }
    }

    /// Applies the transport-level parts of the script (timing, write pattern, `Retry-After`,
    /// empty body) to a response a provider built. Provider-specific parts — error bodies,
    /// malformed payloads, where a disconnect falls — are the provider's job.
    func decorate(_ response: SimulatedResponse) -> SimulatedResponse {
        var response = response
        response.latencyMs = latencyMs ?? 0
        response.eventDelayMs = chunkDelayMs ?? 0
        response.pauseAfterEvents = pauseAfter
        response.pauseMs = pauseMs ?? 0
        response.splitWrites = split
        if let retryAfterSeconds { response.headers.replaceOrAdd(name: "retry-after", value: String(retryAfterSeconds)) }
        if emptyBody && response.status == .ok {
            response.body = .full([])
            response.interruption = nil
        }
        return response
    }
}
