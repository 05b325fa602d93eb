/// How a failure should be treated by retry and fallback logic, kept apart from the error's
/// label: the label tells the client what happened, the class tells the gateway what to do.
public enum FailureClass: String, Sendable {
    /// The request itself is wrong; another provider would refuse it too.
    case callerFault
    /// Credentials are missing or refused (gateway key or provider key).
    case credentials
    /// Someone's limit was hit; worth retrying elsewhere or later.
    case rateLimit
    /// The provider or the network failed; worth retrying elsewhere.
    case transient
    /// The gateway itself failed.
    case gatewayFault
}

/// Every error a client can see. Each case knows its HTTP status and OpenAI error body; the
/// mapping lives here and nowhere else.
public struct GatewayError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    /// OpenAI's `error.type`.
    public var type: String
    /// OpenAI's `error.code`.
    public var code: String?
    public var param: String?
    /// Safe to show: never contains a secret.
    public var message: String
    public var failureClass: FailureClass
    /// Seconds, for `Retry-After`.
    public var retryAfter: Int?

    public init(status: Int, type: String, code: String?, param: String? = nil, message: String,
                failureClass: FailureClass, retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.message = message
        self.failureClass = failureClass
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status) \(code ?? type): \(message)" }

    /// `{"error": {"message", "type", "param", "code"}}`.
    public var body: JSON {
        [
            "error": [
                "message": .string(message),
                "type": .string(type),
                "param": param.map(JSON.string) ?? .null,
                "code": code.map(JSON.string) ?? .null,
            ]
        ]
    }

    /// The short label stored in the audit row's `error_code`.
    public var auditCode: String { code ?? type }
}

extension GatewayError {
    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> GatewayError {
        GatewayError(status: 400, type: "invalid_request_error", code: code, param: param, message: message, failureClass: .callerFault)
    }

    /// A model with no price asked for under a monthly budget (it could never fill the budget).
    public static func modelNotPriced(model: String) -> GatewayError {
        let model = model.count > 128 ? String(model.prefix(128)) + "…" : model
        return .invalidRequest("Model '\(model)' has no price, and a monthly budget applies to this key, project or org, so its cost "
                        + "could not be counted. An operator can price it with: deploxa-gateway price set \(model) "
                        + "--input USD_PER_1M_TOKENS --output USD_PER_1M_TOKENS", param: "model", code: "model_not_priced")
    }

    public static func invalidAPIKey(_ message: String) -> GatewayError {
        GatewayError(status: 401, type: "authentication_error", code: "invalid_api_key", message: message, failureClass: .credentials)
    }

    /// A missing, wrong or revoked admin token or dashboard session (a gateway key is never one).
    public static func invalidAdminToken(_ message: String) -> GatewayError {
        GatewayError(status: 401, type: "authentication_error", code: "invalid_admin_token", message: message, failureClass: .credentials)
    }

    /// An admin token that may not do this: a read-only token asked for a change, or a scoped one
    /// for an installation-wide setting (the price table).
    public static func forbidden(_ message: String) -> GatewayError {
        GatewayError(status: 403, type: "permission_error", code: "forbidden", message: message, failureClass: .credentials)
    }

    /// The change collides with what exists (a project of that name, say).
    public static func conflict(_ message: String) -> GatewayError {
        GatewayError(status: 409, type: "invalid_request_error", code: "conflict", message: message, failureClass: .callerFault)
    }

    public static func notFound(_ message: String) -> GatewayError {
        GatewayError(status: 404, type: "invalid_request_error", code: "not_found", message: message, failureClass: .callerFault)
    }

    public static func methodNotAllowed(_ message: String) -> GatewayError {
        GatewayError(status: 405, type: "invalid_request_error", code: "method_not_allowed", message: message, failureClass: .callerFault)
    }

    public static func requestTooLarge(limitBytes: Int) -> GatewayError {
        GatewayError(status: 413, type: "invalid_request_error", code: "request_too_large",
                     message: "Request body is larger than the gateway's limit of \(limitBytes) bytes.", failureClass: .callerFault)
    }

    public static func rateLimited(_ message: String, retryAfter: Int) -> GatewayError {
        GatewayError(status: 429, type: "rate_limit_exceeded", code: "rate_limit_exceeded", message: message,
                     failureClass: .rateLimit, retryAfter: retryAfter)
    }

    public static func insufficientQuota(_ message: String, retryAfter: Int? = nil) -> GatewayError {
        GatewayError(status: 429, type: "insufficient_quota", code: "insufficient_quota", message: message,
                     failureClass: .rateLimit, retryAfter: retryAfter)
    }

    /// No usable answer from the provider (connection refused, malformed response, every target failed).
    public static func upstreamError(_ message: String) -> GatewayError {
        GatewayError(status: 502, type: "upstream_error", code: "upstream_error", message: message, failureClass: .transient)
    }

    public static func upstreamTimeout(_ message: String) -> GatewayError {
        GatewayError(status: 504, type: "upstream_timeout", code: "upstream_timeout", message: message, failureClass: .transient)
    }

    /// The provider answered with an error of its own. A 4xx is the caller's business and keeps
    /// its status and the provider's message; a 5xx (Anthropic's 529 too) becomes docs/api.md's 502
    /// `upstream_error` naming the provider's error.
    public static func provider(status: Int, message: String, type: String? = nil, code: String? = nil,
                                param: String? = nil, retryAfter: Int? = nil) -> GatewayError {
        if status >= 500 {
            let detail = [type, code].compactMap { $0 }.first.map { " (\($0))" } ?? ""
            return GatewayError(status: 502, type: "upstream_error", code: "upstream_error",
                                message: "Provider returned HTTP \(status)\(detail): \(message)", failureClass: .transient,
                                retryAfter: retryAfter)
        }
        let failureClass: FailureClass
        switch status {
        case 401, 403: failureClass = .credentials
        case 408, 409: failureClass = .transient
        case 429: failureClass = .rateLimit
        default: failureClass = .callerFault
        }
        let defaultType: String
        switch status {
        case 401: defaultType = "authentication_error"
        case 403: defaultType = "permission_error"
        case 404: defaultType = "not_found_error"
        case 429: defaultType = "rate_limit_error"
        default: defaultType = "invalid_request_error"
        }
        return GatewayError(status: status, type: type ?? defaultType, code: code, param: param, message: message,
                            failureClass: failureClass, retryAfter: retryAfter)
    }

    public static func serviceUnavailable(_ message: String, retryAfter: Int = 1) -> GatewayError {
        GatewayError(status: 503, type: "service_unavailable", code: "service_unavailable", message: message,
                     failureClass: .gatewayFault, retryAfter: retryAfter)
    }

    public static func internalError(_ message: String) -> GatewayError {
        GatewayError(status: 500, type: "api_error", code: "internal_error", message: message, failureClass: .gatewayFault)
    }
}
