import Foundation
import NIOHTTP1

/// Gemini's JSON objects (docs/providers/google.md): `GenerateContentResponse`, `usageMetadata`,
/// google.rpc.Status error bodies, embeddings and models — pure builders, no I/O.
enum GoogleWireFormat {
    struct Usage {
        var promptTokens: Int
        var candidatesTokens: Int

        var object: [String: Any] {
            var object: [String: Any] = [
                "promptTokenCount": promptTokens,
                "totalTokenCount": promptTokens + candidatesTokens,
                "promptTokensDetails": [["modality": "TEXT", "tokenCount": promptTokens]],
            ]
            // Gemini omits the count until the first output token exists.
            if candidatesTokens > 0 { object["candidatesTokenCount"] = candidatesTokens }
            return object
        }
    }

    struct Identity {
        var responseID: String
        var model: String
    }

    /// One `GenerateContentResponse`; `parts` nil leaves the candidate without `content`.
    static func response(
        _ identity: Identity, candidates: [(parts: [[String: Any]]?, finishReason: String?)], usage: Usage
    ) -> [String: Any] {
        [
            "candidates": candidates.enumerated().map { index, candidate -> [String: Any] in
                var object: [String: Any] = ["index": index]
                if let parts = candidate.parts { object["content"] = ["parts": parts, "role": "model"] }
                if let finishReason = candidate.finishReason { object["finishReason"] = finishReason }
                return object
            },
            "usageMetadata": usage.object,
            "modelVersion": identity.model,
            "responseId": identity.responseID,
        ]
    }

    static func textPart(_ text: String) -> [String: Any] { ["text": text] }

    static func functionCallPart(name: String) -> [String: Any] {
        ["functionCall": ["name": name, "args": ["city": "Paris"]]]
    }

    /// One SSE event with Gemini's CRLF framing: `data: <payload>\r\n\r\n`.
    static func event(_ object: [String: Any]) -> [UInt8] {
        Array("data: ".utf8) + SimulatorJSON.encode(object) + Array("\r\n\r\n".utf8)
    }

    static func event(raw payload: String) -> [UInt8] {
        Array("data: \(payload)\r\n\r\n".utf8)
    }

    // MARK: Errors

    /// `{"error": {"code", "message", "status", "details"?}}`.
    static func error(code: Int, message: String, status: String, details: [[String: Any]]? = nil) -> [String: Any] {
        var error: [String: Any] = ["code": code, "message": message, "status": status]
        if let details { error["details"] = details }
        return ["error": error]
    }

    /// The google.rpc status name for an HTTP status.
    static func statusName(for status: Int) -> String {
        switch status {
        case 400: return "INVALID_ARGUMENT"
        case 401: return "UNAUTHENTICATED"
        case 403: return "PERMISSION_DENIED"
        case 404: return "NOT_FOUND"
        case 409: return "ABORTED"
        case 429: return "RESOURCE_EXHAUSTED"
        case 499: return "CANCELLED"
        case 500: return "INTERNAL"
        case 501: return "UNIMPLEMENTED"
        case 503: return "UNAVAILABLE"
        case 504: return "DEADLINE_EXCEEDED"
        case 400..<500: return "FAILED_PRECONDITION"
        default: return "UNKNOWN"
        }
    }

    /// The body for a `status=CODE` directive; the message names the status so tests can tell a
    /// scripted failure from a real one. 429 carries QuotaFailure + RetryInfo like the real API.
    static func scriptedError(status: Int, retryAfter: Int?) -> [String: Any] {
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        switch status {
        case 429:
            return error(
                code: 429,
                message: "You exceeded your current quota, please check your plan and billing details. (simulated HTTP 429 \(reason))",
                status: "RESOURCE_EXHAUSTED",
                details: [
                    ["@type": "type.googleapis.com/google.rpc.QuotaFailure",
                     "violations": [["quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"]]],
                    ["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "\(retryAfter ?? 1)s"],
                ])
        case 503:
            return error(code: 503, message: "The model is overloaded. Please try again later. (simulated HTTP 503 \(reason))",
                         status: "UNAVAILABLE")
        default:
            return error(code: status, message: SimulatedReply.scriptedErrorMessage(status: status), status: statusName(for: status))
        }
    }

    /// What Gemini answers for a refused key: HTTP 400 with reason API_KEY_INVALID.
    static var invalidKey: [String: Any] { error(
        code: 400, message: "API key not valid. Please pass a valid API key.", status: "INVALID_ARGUMENT",
        details: [["@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                   "metadata": ["service": "generativelanguage.googleapis.com"]]])
    }

    /// What Gemini answers without any credential: HTTP 403.
    static var missingKey: [String: Any] { error(
        code: 403,
        message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        status: "PERMISSION_DENIED")
    }

    /// The mid-stream error event of a `stream_error_after=K` script.
    static var streamError: [String: Any] { error(code: 500, message: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
                                   status: "INTERNAL")
    }

    // MARK: Models and embeddings

    static let models: [(id: String, methods: [String])] = [
        ("gemini-2.5-flash", ["generateContent", "countTokens"]),
        ("gemini-2.5-pro", ["generateContent", "countTokens"]),
        ("text-embedding-004", ["embedContent"]),
    ]

    static func model(_ model: (id: String, methods: [String])) -> [String: Any] {
        ["name": "models/\(model.id)", "baseModelId": model.id, "version": "001", "displayName": model.id,
         "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536, "supportedGenerationMethods": model.methods]
    }

    static func modelList() -> [String: Any] { ["models": models.map(model)] }

    /// The deterministic vector for `text`: 8 values, fewer when `dimensions` asks for fewer.
    static func embedding(for text: String, dimensions: Int?) -> [String: Any] {
        let standard = SimulatedReply.embeddingDimensions
        let length = dimensions.flatMap { (1..<standard).contains($0) ? $0 : nil } ?? standard
        return ["values": SimulatedReply.embeddingVector(for: text, dimensions: length)]
    }
}
