import Foundation
import NIOHTTP1

/// OpenAI's JSON objects (docs/providers/openai.md): completions, chunks, usage, errors,
/// models and embeddings — pure builders, no I/O.
enum OpenAIWireFormat {
    struct Usage {
        var promptTokens: Int
        var completionTokens: Int

        var object: [String: Any] {
            [
                "prompt_tokens": promptTokens,
                "completion_tokens": completionTokens,
                "total_tokens": promptTokens + completionTokens,
                "prompt_tokens_details": ["cached_tokens": 0],
                "completion_tokens_details": ["reasoning_tokens": 0],
            ]
        }
    }

    /// The fields every completion object and every chunk of one stream share.
    struct Identity {
        var id: String
        var created: Int
        var model: String
    }

    static func completion(_ identity: Identity, content: String, finishReason: String, usage: Usage) -> [String: Any] {
        [
            "id": identity.id,
            "object": "chat.completion",
            "created": identity.created,
            "model": identity.model,
            "system_fingerprint": NSNull(),
            "choices": [[
                "index": 0,
                "message": ["role": "assistant", "content": content, "refusal": NSNull()],
                "logprobs": NSNull(),
                "finish_reason": finishReason,
            ] as [String: Any]],
            "usage": usage.object,
        ]
    }

    /// One tool call of a scripted `tool=NAME` reply.
    struct ToolCall {
        var id: String
        var name: String
        var arguments: String
    }

    /// `completion_tokens` of a reply that is one scripted tool call.
    static let toolCallCompletionTokens = 5

    /// The message of a `stream_error_after=K` mid-stream error.
    static let simulatedStreamErrorMessage = "The server had an error while processing your request. (simulated mid-stream error)"

    /// A completion whose only output is one tool call: `content: null`, `finish_reason: tool_calls`.
    static func toolCallCompletion(_ identity: Identity, call: ToolCall, usage: Usage) -> [String: Any] {
        var completion = completion(identity, content: "", finishReason: "tool_calls", usage: usage)
        completion["choices"] = [[
            "index": 0,
            "message": [
                "role": "assistant", "content": NSNull(), "refusal": NSNull(),
                "tool_calls": [[
                    "id": call.id, "type": "function", "function": ["name": call.name, "arguments": call.arguments],
                ] as [String: Any]],
            ] as [String: Any],
            "logprobs": NSNull(),
            "finish_reason": "tool_calls",
        ] as [String: Any]]
        return completion
    }

    /// A `chat.completion.chunk` with one choice. With `includeUsage`, carries `"usage": null`
    /// as OpenAI does on every chunk but the final usage chunk.
    static func chunk(_ identity: Identity, delta: [String: Any], finishReason: String?, includeUsage: Bool) -> [String: Any] {
        var chunk = chunkEnvelope(identity)
        chunk["choices"] = [[
            "index": 0,
            "delta": delta,
            "logprobs": NSNull(),
            "finish_reason": finishReason ?? NSNull(),
        ] as [String: Any]]
        if includeUsage { chunk["usage"] = NSNull() }
        return chunk
    }

    /// The final usage chunk: `choices: []`.
    static func usageChunk(_ identity: Identity, usage: Usage) -> [String: Any] {
        var chunk = chunkEnvelope(identity)
        chunk["choices"] = [Any]()
        chunk["usage"] = usage.object
        return chunk
    }

    private static func chunkEnvelope(_ identity: Identity) -> [String: Any] {
        [
            "id": identity.id,
            "object": "chat.completion.chunk",
            "created": identity.created,
            "model": identity.model,
            "system_fingerprint": NSNull(),
        ]
    }

    /// One SSE event: `data: <payload>\n\n`.
    static func event(_ object: [String: Any]) -> [UInt8] {
        Array("data: ".utf8) + SimulatorJSON.encode(object) + Array("\n\n".utf8)
    }

    static func event(raw payload: String) -> [UInt8] {
        Array("data: \(payload)\n\n".utf8)
    }

    /// `{"error": {"message", "type", "param", "code"}}`.
    static func error(message: String, type: String, param: String? = nil, code: String?) -> [String: Any] {
        ["error": ["message": message, "type": type, "param": param ?? NSNull(), "code": code ?? NSNull()] as [String: Any]]
    }

    /// OpenAI's `type` and `code` for an HTTP error status (docs/providers/openai.md).
    static func errorKind(for status: Int) -> (type: String, code: String?) {
        switch status {
        case 400: return ("invalid_request_error", nil)
        case 401: return ("invalid_request_error", "invalid_api_key")
        case 403: return ("invalid_request_error", "unsupported_country_region_territory")
        case 404: return ("invalid_request_error", "model_not_found")
        case 408: return ("server_error", "timeout")
        case 409: return ("invalid_request_error", "conflict")
        case 413: return ("invalid_request_error", "request_too_large")
        case 422: return ("invalid_request_error", "unprocessable_entity")
        case 429: return ("requests", "rate_limit_exceeded")
        case 500: return ("server_error", nil)
        case 502: return ("server_error", "bad_gateway")
        case 503: return ("service_unavailable", "service_unavailable")
        case 504: return ("server_error", "timeout")
        case 500...: return ("server_error", nil)
        default: return ("invalid_request_error", nil)
        }
    }

    /// The message for a `status=CODE` directive; it names the status so tests can tell
    /// a scripted failure from a real one.
    static func simulatedErrorMessage(status: Int) -> String {
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        switch status {
        case 401: return "Incorrect API key provided. (simulated HTTP 401 \(reason))"
        case 404: return "The model does not exist or you do not have access to it. (simulated HTTP 404 \(reason))"
        case 429: return "Rate limit reached for requests. Please try again later. (simulated HTTP 429 \(reason))"
        default: return SimulatedReply.scriptedErrorMessage(status: status)
        }
    }

    static let models: [(id: String, created: Int, ownedBy: String)] = [
        ("gpt-4o", 1_715_367_049, "system"),
        ("gpt-4o-mini", 1_721_172_741, "system"),
        ("gpt-3.5-turbo", 1_677_610_602, "openai"),
    ]

    static func model(_ model: (id: String, created: Int, ownedBy: String)) -> [String: Any] {
        ["id": model.id, "object": "model", "created": model.created, "owned_by": model.ownedBy]
    }

    static func modelList() -> [String: Any] {
        ["object": "list", "data": models.map(model)]
    }

    static func embeddings(model: String, inputs: [(text: String, tokens: Int)]) -> [String: Any] {
        let tokens = inputs.reduce(0) { $0 + $1.tokens }
        return [
            "object": "list",
            "data": inputs.enumerated().map { index, input -> [String: Any] in
                ["object": "embedding", "index": index, "embedding": SimulatedReply.embeddingVector(for: input.text)]
            },
            "model": model,
            "usage": ["prompt_tokens": tokens, "total_tokens": tokens],
        ]
    }
}
