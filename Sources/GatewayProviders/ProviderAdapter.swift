import Foundation
import GatewayCore

/// A translated, non-streamed answer in OpenAI's `chat.completion` shape.
public struct ChatResult: Sendable {
    /// The body to send to the client.
    public var body: [UInt8]
    public var usage: TokenUsage?
    /// `model` as the provider reported it.
    public var modelServed: String?

    public init(body: [UInt8], usage: TokenUsage?, modelServed: String?) {
        self.body = body
        self.usage = usage
        self.modelServed = modelServed
    }
}

/// What a stream translator emits for the client.
public enum StreamOutput: Sendable, Equatable {
    /// One `chat.completion.chunk` (or other JSON payload) to send as `data: …`.
    case data([UInt8])
    /// The stream is complete: send `data: [DONE]`.
    case done
}

/// Turns one provider's SSE events into OpenAI chunks. A value type fed one event at a time;
/// unknown events are skipped, never a crash. Throws a `GatewayError` for a mid-stream error
/// from the provider or an event it cannot read.
public protocol StreamTranslator: Sendable {
    mutating func translate(_ event: SSEEvent) throws(GatewayError) -> [StreamOutput]
    /// End of the upstream body. Throws if the stream ended before the provider said it was complete.
    mutating func finish() throws(GatewayError) -> [StreamOutput]
    var usage: TokenUsage? { get }
    var modelServed: String? { get }
}

/// One provider's wire format. Pure translation: no I/O, so every line is testable on fixtures.
public protocol ProviderAdapter: Sendable {
    var provider: Provider { get }
    /// Models listed by GET /v1/models for a project that configured this provider.
    var knownModels: [String] { get }
    func makeChatRequest(_ request: ChatRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest
    func decodeChatResponse(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult
    func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator
    /// The provider's error answer as the client should see it; the message never carries secrets.
    func decodeError(status: Int, headers: [(name: String, value: String)], body: [UInt8], settings: ProviderSettings) -> GatewayError
    /// POST /v1/embeddings. The default answers 400: the provider has no embeddings API.
    func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest
    func decodeEmbeddingsResponse(_ body: [UInt8], for request: EmbeddingsRequest) throws(GatewayError) -> EmbeddingsResult
}

extension ProviderAdapter {
    public func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        throw .invalidRequest("\(provider.rawValue) does not offer an embeddings API; use openai, google, mistral or cohere.",
                              param: "model", code: "unsupported_provider")
    }

    public func decodeEmbeddingsResponse(_ body: [UInt8], for request: EmbeddingsRequest) throws(GatewayError) -> EmbeddingsResult {
        throw .upstreamError("\(provider.rawValue) does not offer an embeddings API.")
    }
}

/// The adapters this build ships, by provider.
public enum ProviderRegistry {
    public static func adapter(for provider: Provider) -> (any ProviderAdapter)? {
        switch provider {
        case .openai: return OpenAIAdapter()
        case .anthropic: return AnthropicAdapter()
        case .cohere: return CohereAdapter()
        case .google: return GoogleAdapter()
        case .mistral: return MistralAdapter()
        }
    }
}

/// Secrets must never reach a client, a log line or an audit row, even when a provider echoes
/// (part of) a key in its error message.
public enum SecretRedactor {
    public static func redact(_ text: String, secrets: [String]) -> String {
        var result = text
        for secret in secrets where secret.count >= 6 {
            result = result.replacingOccurrences(of: secret, with: "<redacted>")
        }
        // Key-shaped tokens ("sk-abc***xyz", "dpx_…"): keep only the prefix.
        var words: [Substring] = []
        for word in result.split(separator: " ", omittingEmptySubsequences: false) {
            if (word.hasPrefix("sk-") || word.hasPrefix("dpx_")) && word.count > 8 {
                words.append(word.prefix(3) + "<redacted>")
            } else {
                words.append(word)
            }
        }
        return words.joined(separator: " ")
    }
}

/// Parses `Retry-After` (seconds; an HTTP date is treated as 1 s).
public func retryAfterSeconds(_ headers: [(name: String, value: String)]) -> Int? {
    guard let value = headers.first(where: { $0.name.lowercased() == "retry-after" })?.value.trimmingCharacters(in: .whitespaces) else { return nil }
    if let seconds = Int(value) { return max(0, seconds) }
    if let seconds = Double(value) { return max(0, Int(seconds.rounded(.up))) }
    return 1
}
