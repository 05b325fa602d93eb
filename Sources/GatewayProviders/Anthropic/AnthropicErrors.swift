import GatewayCore

/// Anthropic error bodies, `{"type":"error","error":{"type","message"},"request_id"}` → the
/// client's error (docs/providers/anthropic.md, "Errors"): 4xx keep their status and Anthropic's
/// message, 5xx and 529 `overloaded_error` become 502 `upstream_error`. `code` keeps Anthropic's
/// own error type.
enum AnthropicErrorDecoder {
    static func decode(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        let fields = OpenAIErrorDecoder.fields(providerName: "anthropic", status: status, body: body)
        let message = fields.message
        let anthropicType = fields.type
        let retryAfter = RetryAfter.milliseconds(headers) ?? RetryAfter.seconds(headers)
        if status >= 500 {
            return .provider(status: status, message: message, type: nil, code: anthropicType ?? defaultType(status),
                             retryAfter: retryAfter)
        }
        return .provider(status: status, message: message, type: openAIType(status), code: anthropicType ?? defaultType(status),
                         retryAfter: retryAfter)
    }

    /// OpenAI's error `type` for an Anthropic status (docs/providers/anthropic.md, "Errors").
    static func openAIType(_ status: Int) -> String {
        switch status {
        case 401: return "authentication_error"
        case 402: return "insufficient_quota"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 408: return "timeout"
        case 409: return "conflict"
        case 429: return "rate_limit_error"
        default: return "invalid_request_error"
        }
    }

    /// Anthropic's error type for a status, when the body did not say (docs/providers/anthropic.md, "Errors").
    static func defaultType(_ status: Int) -> String {
        switch status {
        case 401: return "authentication_error"
        case 402: return "billing_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 504: return "timeout_error"
        case 529: return "overloaded_error"
        case 500...: return "api_error"
        default: return "invalid_request_error"
        }
    }
}
