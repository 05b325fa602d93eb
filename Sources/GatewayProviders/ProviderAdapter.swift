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
    /// The translator for one streamed answer. Its mid-stream errors are redacted by `StreamRelay`
    /// (give it the provider key as `secrets`).
    func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator
    /// The provider's error answer read into the client's shape, as the provider worded it.
    /// Callers use `decodeError`, which redacts it; adapters implement only this.
    func readError(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError
    /// POST /v1/embeddings. The default answers 400: the provider has no embeddings API.
    func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest
    func decodeEmbeddingsResponse(_ body: [UInt8], for request: EmbeddingsRequest) throws(GatewayError) -> EmbeddingsResult
}

extension ProviderAdapter {
    /// The provider's error answer as the client should see it: `readError`'s result with the
    /// project's provider key and anything key-shaped removed from every field, so no adapter can
    /// forget to (see `SecretRedactor`).
    public func decodeError(status: Int, headers: [(name: String, value: String)], body: [UInt8], settings: ProviderSettings) -> GatewayError {
        SecretRedactor.redact(readError(status: status, headers: headers, body: body), secrets: [settings.apiKey.value])
    }

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
