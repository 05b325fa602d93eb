import Foundation
import GatewayCore

/// A client's Chat Completions request, validated, with the fields the pipeline needs pulled out.
/// The whole body is kept: adapters translate from it.
public struct ChatRequest: Sendable {
    public var body: JSONObject
    public var model: String
    public var stream: Bool
    /// The client asked for the final usage chunk (`stream_options.include_usage`).
    public var clientWantsUsage: Bool
    /// The body's `user` field, recorded in the audit row.
    public var user: String?
    /// `max_completion_tokens`, else `max_tokens` (validated: 1…`maximumTokens`).
    public var maxTokens: Int?
    /// `n`, the number of choices asked for (validated: 1…`maximumChoices`).
    public var choices: Int?
    /// The `id` the translated answer carries when the provider gives none (`chatcmpl-…`); the
    /// pipeline derives it from the request id so one request has one id everywhere.
    public var responseID: String = "chatcmpl-gateway"
    /// Unix seconds for `created` when the provider gives none (gateway clock).
    public var created: Int = Int(Date().timeIntervalSince1970)

    /// The same request for another model (a fallback target): field and body agree.
    public func retargeted(model: String) -> ChatRequest {
        var copy = self
        copy.model = model
        copy.body["model"] = .string(model)
        return copy
    }

    /// The largest `max_tokens` accepted: the 32-bit range every provider's API takes. Bigger
    /// values are refused here, so no token arithmetic downstream (reservations, limits) can overflow.
    public static let maximumTokens: Int64 = 2_147_483_647
    /// The largest `n` (choices) accepted, as OpenAI's own API.
    public static let maximumChoices: Int64 = 128

    private static let roles: Set<String> = ["system", "developer", "user", "assistant", "tool", "function"]

    /// Parses and checks the body; every problem is a 400 naming the parameter.
    public static func parse(_ bytes: [UInt8]) throws(GatewayError) -> ChatRequest {
        guard !bytes.isEmpty else {
            throw .invalidRequest("The request body is empty; expected a JSON object.", code: "invalid_json")
        }
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch {
            throw .invalidRequest("We could not parse the JSON body of your request (\(error.description)).", code: "invalid_json")
        }
        guard case .object(let body) = json else {
            throw .invalidRequest("The request body must be a JSON object, got \(json.typeName).", code: "invalid_json")
        }
        guard let modelValue = body["model"] else {
            throw .invalidRequest("Missing required parameter: 'model'.", param: "model", code: "missing_required_parameter")
        }
        guard case .string(let model) = modelValue, !model.isEmpty else {
            throw .invalidRequest("'model' must be a non-empty string, got \(modelValue.typeName).", param: "model", code: "invalid_type")
        }
        guard let messagesValue = body["messages"] else {
            throw .invalidRequest("Missing required parameter: 'messages'.", param: "messages", code: "missing_required_parameter")
        }
        guard case .array(let messages) = messagesValue else {
            throw .invalidRequest("'messages' must be an array, got \(messagesValue.typeName).", param: "messages", code: "invalid_type")
        }
        guard !messages.isEmpty else {
            throw .invalidRequest("'messages' must contain at least one message.", param: "messages", code: "empty_array")
        }
        for (index, message) in messages.enumerated() {
            guard case .object(let object) = message else {
                throw .invalidRequest("'messages[\(index)]' must be an object, got \(message.typeName).", param: "messages[\(index)]", code: "invalid_type")
            }
            guard case .string(let role)? = object["role"], roles.contains(role) else {
                throw .invalidRequest("'messages[\(index)].role' must be one of system, developer, user, assistant, tool.",
                                      param: "messages[\(index)].role", code: "invalid_value")
            }
            if let content = object["content"] {
                switch content {
                case .string, .array, .null: break
                default:
                    throw .invalidRequest("'messages[\(index)].content' must be a string, an array of content parts or null.",
                                          param: "messages[\(index)].content", code: "invalid_type")
                }
            }
        }
        var stream = false
        if let value = body["stream"], value != .null {
            guard case .bool(let flag) = value else {
                throw .invalidRequest("'stream' must be a boolean, got \(value.typeName).", param: "stream", code: "invalid_type")
            }
            stream = flag
        }
        var wantsUsage = false
        if let options = body["stream_options"], options != .null {
            guard case .object(let object) = options else {
                throw .invalidRequest("'stream_options' must be an object.", param: "stream_options", code: "invalid_type")
            }
            guard stream else {
                throw .invalidRequest("'stream_options' is only allowed when 'stream' is true.", param: "stream_options", code: "invalid_value")
            }
            if let include = object["include_usage"], include != .null {
                guard case .bool(let flag) = include else {
                    throw .invalidRequest("'stream_options.include_usage' must be a boolean.", param: "stream_options.include_usage", code: "invalid_type")
                }
                wantsUsage = flag
            }
        }
        var limits: [String: Int] = [:]
        for name in ["max_tokens", "max_completion_tokens"] {
            if let value = body[name], value != .null {
                guard let count = value.intValue, (1...Self.maximumTokens).contains(count) else {
                    throw .invalidRequest("'\(name)' must be an integer from 1 to \(Self.maximumTokens).", param: name, code: "invalid_value")
                }
                limits[name] = Int(count)
            }
        }
        var choices: Int?
        if let value = body["n"], value != .null {
            guard let count = value.intValue, (1...Self.maximumChoices).contains(count) else {
                throw .invalidRequest("'n' must be an integer from 1 to \(Self.maximumChoices).", param: "n", code: "invalid_value")
            }
            choices = Int(count)
        }
        var user: String?
        if let value = body["user"], value != .null {
            guard case .string(let name) = value else {
                throw .invalidRequest("'user' must be a string.", param: "user", code: "invalid_type")
            }
            user = name
        }
        return ChatRequest(body: body, model: model, stream: stream, clientWantsUsage: wantsUsage, user: user,
                           maxTokens: limits["max_completion_tokens"] ?? limits["max_tokens"], choices: choices)
    }
}

/// Token counts normalised to OpenAI's meaning: prompt includes cached, completion includes reasoning.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedPromptTokens: Int
    public var reasoningTokens: Int
    /// Prompt tokens written to the provider's prompt cache (Anthropic `cache_creation_input_tokens`),
    /// a subset of `promptTokens` that some providers bill above the input price.
    public var cacheWriteTokens: Int

    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int = 0, reasoningTokens: Int = 0,
                cacheWriteTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.reasoningTokens = reasoningTokens
        self.cacheWriteTokens = cacheWriteTokens
    }
}
