import GatewayCore

/// The client's Chat Completions request read into typed values, so that every non-OpenAI
/// adapter translates from the same understanding of messages, content parts, tools and
/// parameters instead of re-reading raw JSON (and re-validating it differently) each time.
public struct ChatConversation: Sendable, Equatable {
    public var messages: [ChatMessage]
    public var tools: [ToolDefinition]
    public var toolChoice: ToolChoice?
    public var parameters: ChatParameters

    /// Every system/developer message's text, in order, wherever it appeared.
    public var systemTexts: [String] {
        messages.compactMap { if case .system(let text) = $0 { return text } else { return nil } }
    }

    /// Ids of the tool calls the assistant turns made, and of the calls the tool messages answer
    /// (providers that refuse unpaired calls and results drop both).
    public var toolCallPairing: (called: Set<String>, answered: Set<String>) {
        var called: Set<String> = []
        var answered: Set<String> = []
        for message in messages {
            switch message {
            case .assistant(_, let calls): called.formUnion(calls.map(\.id))
            case .tool(let callID, _): answered.insert(callID)
            default: break
            }
        }
        return (called, answered)
    }

    /// Tool name by tool-call id, from the assistant turns (Gemini needs the name on results).
    public var toolNamesByCallID: [String: String] {
        var names: [String: String] = [:]
        for case .assistant(_, let calls) in messages {
            for call in calls { names[call.id] = call.name }
        }
        return names
    }
}

/// One message of the conversation. `system` covers OpenAI's `system` and `developer` roles.
public enum ChatMessage: Sendable, Equatable {
    case system(String)
    case user([ContentPart])
    /// `text` is nil (or empty) for a turn that only calls tools.
    case assistant(text: String?, toolCalls: [ToolCall])
    case tool(callID: String, content: String)
}

public enum ContentPart: Sendable, Equatable {
    case text(String)
    case image(ImageSource)
}

public enum ImageSource: Sendable, Equatable {
    /// From a `data:` URL: MIME type and the base64 payload, unchanged.
    case base64(mediaType: String, data: String)
    /// An http(s) URL the provider would have to fetch.
    case url(String)

    /// The source as a URL again: the http(s) URL, or `data:<mime>;base64,<payload>` (extra MIME
    /// parameters dropped), for providers that take OpenAI-style image URLs.
    public var urlString: String {
        switch self {
        case .base64(let mediaType, let data): return "data:\(mediaType);base64,\(data)"
        case .url(let url): return url
        }
    }

    /// Parses `data:<mime>[;param]*;base64,<payload>` (extra parameters allowed) or an http(s) URL.
    public static func parse(_ url: String) -> ImageSource? {
        if url.hasPrefix("http://") || url.hasPrefix("https://") { return .url(url) }
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        let fields = header.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
        guard fields.count >= 2, fields.last?.lowercased() == "base64" else { return nil }
        let mediaType = fields[0].lowercased()
        guard mediaType.contains("/") else { return nil }
        let payload = String(url[url.index(after: comma)...])
        guard !payload.isEmpty else { return nil }
        return .base64(mediaType: mediaType, data: payload)
    }
}

/// An assistant tool call; `arguments` is the JSON-encoded string OpenAI uses.
public struct ToolCall: Sendable, Equatable {
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }

    /// The arguments as a JSON object (providers other than OpenAI want an object). Empty → `{}`.
    public func argumentsObject(param: String) throws(GatewayError) -> JSONObject {
        let trimmed = arguments.trimmingWhitespace()
        if trimmed.isEmpty { return JSONObject() }
        guard let json = try? JSON.parse(Array(trimmed.utf8)), case .object(let object) = json else {
            throw .invalidRequest("'\(param)' must be a JSON-encoded object.", param: param, code: "invalid_value")
        }
        return object
    }
}

public struct ToolDefinition: Sendable, Equatable {
    public var name: String
    public var description: String?
    /// JSON Schema of the arguments; `{"type":"object","properties":{}}` when the client gave none.
    public var parameters: JSONObject
    public var strict: Bool?
}

public enum ToolChoice: Sendable, Equatable {
    case auto, none, required
    case function(String)
}

public enum ResponseFormat: Sendable, Equatable {
    case text
    case jsonObject
    case jsonSchema(name: String, schema: JSONObject, strict: Bool?)
}

/// Sampling and output parameters, validated. Absent means "provider default".
public struct ChatParameters: Sendable, Equatable {
    /// `max_completion_tokens`, else `max_tokens`.
    public var maxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var stop: [String] = []
    public var seed: Int64?
    public var n: Int?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var responseFormat: ResponseFormat?
    public var user: String?
    public var parallelToolCalls: Bool?
}

extension ChatRequest {
    /// Reads the body into a `ChatConversation`; every malformed field is a 400 naming it.
    public func conversation() throws(GatewayError) -> ChatConversation {
        var messages: [ChatMessage] = []
        guard case .array(let rawMessages)? = body["messages"] else {
            throw .invalidRequest("'messages' must be an array.", param: "messages", code: "invalid_type")
        }
        for (index, raw) in rawMessages.enumerated() {
            messages.append(try Self.message(raw, param: "messages[\(index)]"))
        }
        return ChatConversation(messages: messages, tools: try tools(), toolChoice: try toolChoice(),
                                parameters: try parameters())
    }

    private static func message(_ raw: JSON, param: String) throws(GatewayError) -> ChatMessage {
        guard case .object(let object) = raw, case .string(let role)? = object["role"] else {
            throw .invalidRequest("'\(param)' must be an object with a role.", param: param, code: "invalid_type")
        }
        let content = object["content"] ?? .null
        switch role {
        case "system", "developer":
            return .system(try text(of: content, param: "\(param).content"))
        case "user":
            return .user(try parts(of: content, param: "\(param).content"))
        case "assistant":
            var calls: [ToolCall] = []
            if case .array(let rawCalls)? = object["tool_calls"] {
                for (index, rawCall) in rawCalls.enumerated() {
                    calls.append(try toolCall(rawCall, param: "\(param).tool_calls[\(index)]"))
                }
            } else if case .object(let legacy)? = object["function_call"] {
                // Deprecated single function call: give it a stable id.
                guard case .string(let name)? = legacy["name"] else {
                    throw .invalidRequest("'\(param).function_call.name' must be a string.", param: "\(param).function_call.name", code: "invalid_type")
                }
                calls.append(ToolCall(id: "call_\(name)", name: name, arguments: legacy["arguments"]?.stringValue ?? "{}"))
            }
            let text = content == .null ? nil : try self.text(of: content, param: "\(param).content")
            if (text ?? "").isEmpty && calls.isEmpty && content == .null {
                throw .invalidRequest("'\(param)' must have content or tool_calls.", param: "\(param).content", code: "invalid_value")
            }
            return .assistant(text: text, toolCalls: calls)
        case "tool":
            guard case .string(let callID)? = object["tool_call_id"], !callID.isEmpty else {
                throw .invalidRequest("'\(param).tool_call_id' is required for a tool message.", param: "\(param).tool_call_id", code: "missing_required_parameter")
            }
            return .tool(callID: callID, content: try text(of: content, param: "\(param).content"))
        case "function":
            guard case .string(let name)? = object["name"] else {
                throw .invalidRequest("'\(param).name' is required for a function message.", param: "\(param).name", code: "missing_required_parameter")
            }
            return .tool(callID: "call_\(name)", content: try text(of: content, param: "\(param).content"))
        default:
            throw .invalidRequest("'\(param).role' is not a known role.", param: "\(param).role", code: "invalid_value")
        }
    }

    /// Text content: a string, or an array of text parts joined (images are not allowed here).
    private static func text(of content: JSON, param: String) throws(GatewayError) -> String {
        switch content {
        case .null: return ""
        case .string(let text): return text
        case .array(let items):
            var pieces: [String] = []
            for (index, item) in items.enumerated() {
                guard case .text(let text) = try part(item, param: "\(param)[\(index)]") else {
                    throw .invalidRequest("'\(param)[\(index)]': only text parts are allowed in this message.", param: "\(param)[\(index)]", code: "invalid_value")
                }
                pieces.append(text)
            }
            return pieces.joined(separator: "\n")
        default:
            throw .invalidRequest("'\(param)' must be a string or an array of content parts.", param: param, code: "invalid_type")
        }
    }

    private static func parts(of content: JSON, param: String) throws(GatewayError) -> [ContentPart] {
        switch content {
        case .string(let text): return [.text(text)]
        case .null: return []
        case .array(let items):
            var parts: [ContentPart] = []
            for (index, item) in items.enumerated() { parts.append(try part(item, param: "\(param)[\(index)]")) }
            return parts
        default:
            throw .invalidRequest("'\(param)' must be a string or an array of content parts.", param: param, code: "invalid_type")
        }
    }

    private static func part(_ item: JSON, param: String) throws(GatewayError) -> ContentPart {
        guard case .object(let object) = item, case .string(let type)? = object["type"] else {
            throw .invalidRequest("'\(param)' must be a content part object with a type.", param: param, code: "invalid_type")
        }
        switch type {
        case "text":
            guard case .string(let text)? = object["text"] else {
                throw .invalidRequest("'\(param).text' must be a string.", param: "\(param).text", code: "invalid_type")
            }
            return .text(text)
        case "image_url":
            let url = object["image_url"]?["url"]?.stringValue ?? object["image_url"]?.stringValue
            guard let url else {
                throw .invalidRequest("'\(param).image_url.url' must be a string.", param: "\(param).image_url.url", code: "invalid_type")
            }
            guard let source = ImageSource.parse(url) else {
                throw .invalidRequest("'\(param).image_url.url' must be an http(s) URL or a base64 data URL.", param: "\(param).image_url.url", code: "invalid_value")
            }
            return .image(source)
        default:
            throw .invalidRequest("'\(param).type' \(type) is not supported; use text or image_url.", param: "\(param).type", code: "invalid_value")
        }
    }

    private static func toolCall(_ raw: JSON, param: String) throws(GatewayError) -> ToolCall {
        guard case .object(let object) = raw, case .string(let id)? = object["id"],
              case .object(let function)? = object["function"], case .string(let name)? = function["name"] else {
            throw .invalidRequest("'\(param)' must have an id and function.name.", param: param, code: "invalid_type")
        }
        let arguments: String
        switch function["arguments"] {
        case .string(let text)?: arguments = text
        case .object(let object)?: arguments = JSON.object(object).serializedString()
        case nil, .null?: arguments = "{}"
        default:
            throw .invalidRequest("'\(param).function.arguments' must be a JSON-encoded string.", param: "\(param).function.arguments", code: "invalid_type")
        }
        return ToolCall(id: id, name: name, arguments: arguments)
    }

    private func tools() throws(GatewayError) -> [ToolDefinition] {
        guard let value = body["tools"], value != .null else {
            // Deprecated `functions`.
            guard case .array(let functions)? = body["functions"] else { return [] }
            var tools: [ToolDefinition] = []
            for (index, function) in functions.enumerated() {
                tools.append(try Self.function(function, param: "functions[\(index)]"))
            }
            return tools
        }
        guard case .array(let items) = value else {
            throw .invalidRequest("'tools' must be an array.", param: "tools", code: "invalid_type")
        }
        var tools: [ToolDefinition] = []
        for (index, item) in items.enumerated() {
            guard case .object(let object) = item, object["type"]?.stringValue == "function", let function = object["function"] else {
                throw .invalidRequest("'tools[\(index)]' must be {\"type\": \"function\", \"function\": {...}}.", param: "tools[\(index)]", code: "invalid_value")
            }
            tools.append(try Self.function(function, param: "tools[\(index)].function"))
        }
        return tools
    }

    private static func function(_ value: JSON, param: String) throws(GatewayError) -> ToolDefinition {
        guard case .object(let function) = value, case .string(let name)? = function["name"], !name.isEmpty else {
            throw .invalidRequest("'\(param).name' must be a non-empty string.", param: "\(param).name", code: "invalid_value")
        }
        var parameters = JSONObject([("type", "object"), ("properties", .object(JSONObject()))])
        if let raw = function["parameters"], raw != .null {
            guard case .object(let object) = raw else {
                throw .invalidRequest("'\(param).parameters' must be a JSON Schema object.", param: "\(param).parameters", code: "invalid_type")
            }
            if !object.keys.isEmpty { parameters = object }
        }
        return ToolDefinition(name: name, description: function["description"]?.stringValue, parameters: parameters,
                              strict: function["strict"]?.boolValue)
    }

    private func toolChoice() throws(GatewayError) -> ToolChoice? {
        let raw = body["tool_choice"] ?? body["function_call"]
        switch raw {
        case nil, .null?: return nil
        case .string("auto")?: return .auto
        case .string("none")?: return ToolChoice.none
        case .string("required")?, .string("any")?: return .required
        case .object(let object)?:
            if case .string(let name)? = object["function"]?["name"] ?? object["name"] { return .function(name) }
        default: break
        }
        throw .invalidRequest("'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}.",
                              param: "tool_choice", code: "invalid_value")
    }

    private func parameters() throws(GatewayError) -> ChatParameters {
        var parameters = ChatParameters()
        parameters.maxTokens = maxTokens
        parameters.temperature = try number("temperature", in: 0...2)
        parameters.topP = try number("top_p", in: 0...1)
        parameters.presencePenalty = try number("presence_penalty", in: -2...2)
        parameters.frequencyPenalty = try number("frequency_penalty", in: -2...2)
        switch body["stop"] {
        case nil, .null?: break
        case .string(let stop)?: parameters.stop = [stop]
        case .array(let items)?:
            for item in items {
                guard case .string(let stop) = item else {
                    throw .invalidRequest("'stop' must be a string or an array of strings.", param: "stop", code: "invalid_type")
                }
                parameters.stop.append(stop)
            }
        default:
            throw .invalidRequest("'stop' must be a string or an array of strings.", param: "stop", code: "invalid_type")
        }
        if let seed = body["seed"], seed != .null {
            guard let value = seed.intValue else {
                throw .invalidRequest("'seed' must be an integer.", param: "seed", code: "invalid_type")
            }
            parameters.seed = value
        }
        parameters.n = choices
        if let format = body["response_format"], format != .null {
            switch format["type"]?.stringValue {
            case "text": parameters.responseFormat = .text
            case "json_object": parameters.responseFormat = .jsonObject
            case "json_schema":
                guard case .object(let spec)? = format["json_schema"] else {
                    throw .invalidRequest("'response_format.json_schema' is required for type json_schema.", param: "response_format.json_schema", code: "missing_required_parameter")
                }
                parameters.responseFormat = .jsonSchema(name: spec["name"]?.stringValue ?? "response",
                                                        schema: spec["schema"]?.objectValue ?? JSONObject(),
                                                        strict: spec["strict"]?.boolValue)
            default:
                throw .invalidRequest("'response_format.type' must be text, json_object or json_schema.", param: "response_format", code: "invalid_value")
            }
        }
        parameters.user = user
        parameters.parallelToolCalls = body["parallel_tool_calls"]?.boolValue
        return parameters
    }

    private func number(_ name: String, in range: ClosedRange<Double>) throws(GatewayError) -> Double? {
        guard let value = body[name], value != .null else { return nil }
        guard let number = value.doubleValue else {
            throw .invalidRequest("'\(name)' must be a number.", param: name, code: "invalid_type")
        }
        guard range.contains(number) else {
            throw .invalidRequest("'\(name)' must be between \(range.lowerBound) and \(range.upperBound).", param: name, code: "invalid_value")
        }
        return number
    }

    /// A 400 naming the first field in `unsupported` that the client set (for parameters a
    /// provider cannot honour and that would change the answer if silently dropped).
    public func rejectUnsupported(_ unsupported: [String], provider: Provider) throws(GatewayError) {
        for name in unsupported {
            guard let value = body[name], value != .null else { continue }
            if name == "n", value.intValue == 1 { continue }
            throw .invalidRequest("'\(name)' is not supported by \(provider.rawValue).", param: name, code: "unsupported_parameter")
        }
    }
}

extension Optional where Wrapped == String {
    /// nil for nil and for "" (providers send empty ids and models where they mean none).
    var nonEmpty: String? {
        guard let self, !self.isEmpty else { return nil }
        return self
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
