import Foundation
import NIOHTTP1

/// Anthropic Messages API objects (docs/providers/anthropic.md): messages, stream events, usage, errors and
/// models — pure builders, no I/O.
enum AnthropicWireFormat {
    struct Usage {
        var inputTokens: Int
        var outputTokens: Int

        var object: [String: Any] {
            [
                "input_tokens": inputTokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": outputTokens,
            ]
        }
    }

    /// What the simulated model answers: text, or one tool call.
    enum Reply {
        case text([String])
        case toolUse(id: String, name: String)
    }

    /// The arguments of every simulated tool call, and the fragments they stream in.
    static var toolInput: [String: Any] { ["city": "Paris"] }
    static let toolInputFragments = ["", "{\"city\": ", "\"Par", "is\"}"]
    /// Output tokens a simulated tool call costs (one per non-empty argument fragment).
    static let toolCallTokens = 3

    static func message(id: String, model: String, reply: Reply, stopReason: String, usage: Usage) -> [String: Any] {
        let content: [[String: Any]]
        switch reply {
        case .text(let words):
            content = words.isEmpty ? [] : [["type": "text", "text": words.joined(separator: " ")]]
        case .toolUse(let id, let name):
            content = [["type": "tool_use", "id": id, "name": name, "input": toolInput]]
        }
        return [
            "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stopReason, "stop_sequence": NSNull(), "usage": usage.object,
        ]
    }

    static func messageStart(id: String, model: String, inputTokens: Int) -> [UInt8] {
        SimulatedSSE.event("message_start", ["message": [
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [Any](),
            "stop_reason": NSNull(), "stop_sequence": NSNull(),
            "usage": Usage(inputTokens: inputTokens, outputTokens: 1).object,
        ] as [String: Any]])
    }

    static func blockStart(_ index: Int, _ block: [String: Any]) -> [UInt8] {
        SimulatedSSE.event("content_block_start", ["index": index, "content_block": block])
    }

    static func textDelta(_ index: Int, _ text: String) -> [UInt8] {
        SimulatedSSE.event("content_block_delta", ["index": index, "delta": ["type": "text_delta", "text": text]])
    }

    static func inputJSONDelta(_ index: Int, _ fragment: String) -> [UInt8] {
        SimulatedSSE.event("content_block_delta", ["index": index, "delta": ["type": "input_json_delta", "partial_json": fragment]])
    }

    static func blockStop(_ index: Int) -> [UInt8] { SimulatedSSE.event("content_block_stop", ["index": index]) }

    /// `message_delta` with the stop reason and cumulative usage.
    static func messageDelta(stopReason: String, usage: Usage) -> [UInt8] {
        SimulatedSSE.event("message_delta", [
            "delta": ["stop_reason": stopReason, "stop_sequence": NSNull()] as [String: Any],
            "usage": usage.object,
        ])
    }

    static let messageStop = SimulatedSSE.event("message_stop", [:])
    static let ping = SimulatedSSE.event("ping", [:])

    /// `{"type":"error","error":{"type","message"},"request_id"}`.
    static func error(type: String, message: String) -> [String: Any] {
        ["type": "error", "error": ["type": type, "message": message], "request_id": "req_sim_error"]
    }

    /// The mid-stream `event: error`.
    static func errorEvent(type: String, message: String) -> [UInt8] {
        SimulatedSSE.event("error", ["error": ["type": type, "message": message]])
    }

    /// Anthropic's error type for an HTTP status (docs/providers/anthropic.md).
    static func errorType(for status: Int) -> String {
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

    static func simulatedErrorMessage(status: Int) -> String {
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        switch status {
        case 401: return "invalid x-api-key (simulated HTTP 401 \(reason))"
        case 429: return "This request would exceed the rate limit for your organization. (simulated HTTP 429 \(reason))"
        case 529: return "Overloaded (simulated HTTP 529)"
        default: return SimulatedReply.scriptedErrorMessage(status: status)
        }
    }

    static let models: [(id: String, displayName: String, createdAt: String)] = [
        ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
        ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
        ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ]

    static func model(_ model: (id: String, displayName: String, createdAt: String)) -> [String: Any] {
        ["type": "model", "id": model.id, "display_name": model.displayName, "created_at": model.createdAt]
    }

    static func modelList() -> [String: Any] {
        [
            "data": models.map(model), "has_more": false,
            "first_id": models.first.map { $0.id as Any } ?? NSNull(),
            "last_id": models.last.map { $0.id as Any } ?? NSNull(),
        ]
    }
}
