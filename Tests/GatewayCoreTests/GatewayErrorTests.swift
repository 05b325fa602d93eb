import GatewayCore
import Testing

@Suite("GatewayError mapping")
struct GatewayErrorTests {
    /// docs/api.md's error table: status, type and code for each case.
    @Test(arguments: [
        (GatewayError.invalidRequest("bad", param: "model"), 400, "invalid_request_error", nil as String?),
        (GatewayError.invalidAPIKey("no"), 401, "authentication_error", "invalid_api_key"),
        (GatewayError.notFound("where"), 404, "invalid_request_error", "not_found"),
        (GatewayError.requestTooLarge(limitBytes: 10), 413, "invalid_request_error", "request_too_large"),
        (GatewayError.rateLimited("slow down", retryAfter: 3), 429, "rate_limit_exceeded", "rate_limit_exceeded"),
        (GatewayError.insufficientQuota("cap"), 429, "insufficient_quota", "insufficient_quota"),
        (GatewayError.upstreamError("down"), 502, "upstream_error", "upstream_error"),
        (GatewayError.upstreamTimeout("slow"), 504, "upstream_timeout", "upstream_timeout"),
    ])
    func statusTypeAndCode(_ error: GatewayError, _ status: Int, _ type: String, _ code: String?) throws {
        #expect(error.status == status)
        let body = error.body
        #expect(body["error"]?["type"] == .string(type))
        #expect(body["error"]?["code"] == (code.map(JSON.string) ?? .null))
        #expect(body["error"]?["message"]?.stringValue?.isEmpty == false)
        #expect(body["error"]?.objectValue?.keys.sorted() == ["code", "message", "param", "type"])
    }

    @Test func providerErrorsKeepStatusAndClassify() {
        #expect(GatewayError.provider(status: 429, message: "x").failureClass == .rateLimit)
        #expect(GatewayError.provider(status: 503, message: "x").failureClass == .transient)
        #expect(GatewayError.provider(status: 529, message: "x").failureClass == .transient)
        // docs/api.md: a provider 5xx reaches the client as 502 upstream_error naming the provider's error.
        let overloaded = GatewayError.provider(status: 529, message: "anthropic: Overloaded", type: "overloaded_error")
        #expect(overloaded.status == 502)
        #expect(overloaded.code == "upstream_error")
        #expect(overloaded.message.contains("529") && overloaded.message.contains("Overloaded"))
        #expect(GatewayError.provider(status: 400, message: "x").failureClass == .callerFault)
        #expect(GatewayError.provider(status: 401, message: "x").failureClass == .credentials)
        #expect(GatewayError.provider(status: 400, message: "x", code: "context_length_exceeded").body["error"]?["code"] == "context_length_exceeded")
    }

    @Test func providerInference() {
        #expect(Provider.inferred(fromModel: "gpt-4o") == .openai)
        #expect(Provider.inferred(fromModel: "o3-mini") == .openai)
        #expect(Provider.inferred(fromModel: "claude-sonnet-4-6") == .anthropic)
        #expect(Provider.inferred(fromModel: "gemini-2.0-flash") == .google)
        #expect(Provider.inferred(fromModel: "codestral-latest") == .mistral)
        #expect(Provider.inferred(fromModel: "open-mistral-nemo") == .mistral)
        #expect(Provider.inferred(fromModel: "command-r-plus") == .cohere)
        #expect(Provider.inferred(fromModel: "llama-3") == nil)
    }

    @Test func secretsDoNotPrint() {
        let secret = Secret("sk-live-1234567890")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
    }
}
