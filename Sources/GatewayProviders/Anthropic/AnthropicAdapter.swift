import GatewayCore

/// Anthropic's Messages API (docs/providers/anthropic.md): `POST /v1/messages` with `x-api-key` and
/// `anthropic-version`, translated to and from OpenAI Chat Completions. No embeddings API.
public struct AnthropicAdapter: ProviderAdapter {
    /// The `anthropic-version` header value (still the current one).
    public static let apiVersion = "2023-06-01"
    /// `max_tokens` is required by Anthropic; used when the client sends neither
    /// `max_tokens` nor `max_completion_tokens` (docs/providers/anthropic.md).
    public static let defaultMaxTokens = 4096
    /// The forced tool that carries `response_format` JSON answers (docs/providers/anthropic.md,
    /// "JSON mode"); its call comes back to the client as `message.content`, never as a tool call.
    public static let jsonToolName = "json_tool_call"

    public init() {}

    public var provider: Provider { .anthropic }
    public var knownModels: [String] {
        ["claude-opus-4", "claude-sonnet-4", "claude-haiku-4", "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-7-sonnet-latest", "claude-3-5-haiku-latest"]
    }

    public func makeChatRequest(_ request: ChatRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let body = try AnthropicRequestBuilder.body(for: request)
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1/messages"),
            headers: [
                (name: "x-api-key", value: settings.apiKey.value),
                (name: "anthropic-version", value: Self.apiVersion),
                (name: "content-type", value: "application/json"),
                (name: "accept", value: request.stream ? "text/event-stream" : "application/json"),
            ],
            body: JSON.object(body).serialized())
    }

    public func decodeChatResponse(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        try AnthropicResponseDecoder.decode(body, for: request)
    }

    public func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator {
        AnthropicStreamTranslator(request: request)
    }

    public func readError(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        AnthropicErrorDecoder.decode(status: status, headers: headers, body: body)
    }
}
