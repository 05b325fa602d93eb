import Foundation
import NIOHTTP1

/// Cohere's v2 JSON objects (docs/providers/cohere.md): chat responses, stream events, usage, errors,
/// embeddings and the model list — pure builders, no I/O.
enum CohereWireFormat {
    /// Tokens Cohere's own prompt template adds to `usage.tokens.input_tokens` (not billed), so
    /// the simulated `tokens` and `billed_units` differ the way the real ones do.
    static let templateTokens = 61

    struct Usage {
        /// Billed counts (the deterministic word arithmetic of `SimulatedReply`).
        var inputTokens: Int
        var outputTokens: Int

        var object: [String: Any] {
            [
                "billed_units": ["input_tokens": inputTokens, "output_tokens": outputTokens],
                "tokens": ["input_tokens": inputTokens + CohereWireFormat.templateTokens, "output_tokens": outputTokens],
            ]
        }
    }

    /// A uuid-shaped response id that counts simulated completions.
    static func responseID(_ number: Int) -> String {
        let digits = String(number)
        return "00000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    /// A tool-call id in Cohere's `name_xxxx` style.
    static func toolCallID(name: String, number: Int) -> String {
        var random = SimulatorRandom(seedText: "\(name)#\(number)")
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let suffix = String((0..<12).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
        return "\(name)_\(suffix)"
    }

    /// The `tool_plan` of a simulated tool call and its word count (its completion tokens).
    static func toolPlan(name: String) -> String { "I will call \(name)." }

    static func toolCall(id: String, name: String, arguments: String) -> [String: Any] {
        ["id": id, "type": "function", "function": ["name": name, "arguments": arguments]]
    }

    /// The non-streamed answer: text content, or a tool plan and tool calls.
    static func response(id: String, text: String?, toolPlan: String? = nil, toolCalls: [[String: Any]] = [],
                         finishReason: String, usage: Usage) -> [String: Any] {
        var message: [String: Any] = ["role": "assistant"]
        if let text { message["content"] = [["type": "text", "text": text]] }
        if let toolPlan { message["tool_plan"] = toolPlan }
        if !toolCalls.isEmpty { message["tool_calls"] = toolCalls }
        return ["id": id, "finish_reason": finishReason, "message": message, "usage": usage.object]
    }

    // MARK: Stream events

    static func messageStart(id: String) -> [UInt8] {
        SimulatedSSE.event("message-start", ["id": id, "delta": ["message": [
            "role": "assistant", "content": [Any](), "tool_plan": "", "tool_calls": [Any](), "citations": [Any](),
        ] as [String: Any]]])
    }

    static func contentStart(index: Int) -> [UInt8] {
        SimulatedSSE.event("content-start", ["index": index, "delta": ["message": ["content": ["type": "text", "text": ""]]]])
    }

    static func contentDelta(index: Int, text: String) -> [UInt8] {
        SimulatedSSE.event("content-delta", ["index": index, "delta": ["message": ["content": ["text": text]]]])
    }

    static func contentEnd(index: Int) -> [UInt8] { SimulatedSSE.event("content-end", ["index": index]) }

    static func toolPlanDelta(_ text: String) -> [UInt8] {
        SimulatedSSE.event("tool-plan-delta", ["delta": ["message": ["tool_plan": text]]])
    }

    static func toolCallStart(index: Int, id: String, name: String) -> [UInt8] {
        SimulatedSSE.event("tool-call-start", ["index": index, "delta": ["message": ["tool_calls": toolCall(id: id, name: name, arguments: "")]]])
    }

    static func toolCallDelta(index: Int, fragment: String) -> [UInt8] {
        SimulatedSSE.event("tool-call-delta", ["index": index, "delta": ["message": ["tool_calls": ["function": ["arguments": fragment]]]]])
    }

    static func toolCallEnd(index: Int) -> [UInt8] { SimulatedSSE.event("tool-call-end", ["index": index]) }

    static func messageEnd(finishReason: String, usage: Usage, error: String? = nil) -> [UInt8] {
        var delta: [String: Any] = ["finish_reason": finishReason, "usage": usage.object]
        if let error { delta["error"] = error }
        return SimulatedSSE.event("message-end", ["delta": delta])
    }

    // MARK: Errors

    /// `{"id": …, "message": …}`, Cohere's error body.
    static func error(message: String) -> [String: Any] {
        ["id": "00000000-0000-4000-9000-000000000000", "message": message]
    }

    /// The message for a `status=CODE` directive, in Cohere's wording where it has one.
    static func simulatedErrorMessage(status: Int) -> String {
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        switch status {
        case 400: return "invalid request: simulated HTTP 400 \(reason)"
        case 401, 498: return "invalid api token (simulated HTTP \(status) \(reason))"
        case 402: return "Please add or update your payment method (simulated HTTP 402 \(reason))"
        case 404: return "model not found, make sure the correct model ID was used (simulated HTTP 404 \(reason))"
        case 429: return "You are past the per minute request limit, please wait and try again later. (simulated HTTP 429 \(reason))"
        case 500...: return "internal server error, this has been reported to our developers. (simulated HTTP \(status) \(reason))"
        default: return "simulated HTTP \(status) \(reason) from the provider simulator"
        }
    }

    // MARK: Embeddings and models

    static func embeddings(id: String, texts: [String], dimensions: Int, billedTokens: Int) -> [String: Any] {
        [
            "id": id,
            "response_type": "embeddings_by_type",
            "embeddings": ["float": texts.map { SimulatedReply.embeddingVector(for: $0, dimensions: dimensions) }],
            "texts": texts,
            "meta": ["api_version": ["version": "2"], "billed_units": ["input_tokens": billedTokens]] as [String: Any],
        ]
    }

    static let models: [(name: String, endpoints: [String], contextLength: Int)] = [
        ("command-a-03-2025", ["chat"], 256_000),
        ("command-r-plus", ["chat"], 128_000),
        ("command-r", ["chat"], 128_000),
        ("embed-english-v3.0", ["embed"], 512),
    ]

    static func modelList() -> [String: Any] {
        ["models": models.map { model -> [String: Any] in
            ["name": model.name, "endpoints": model.endpoints, "context_length": model.contextLength,
             "finetuned": false, "is_deprecated": false]
        }]
    }
}
