import GatewayCore

/// OpenAI Chat Completions → Gemini `GenerateContentRequest` (docs/providers/google.md).
enum GoogleRequestBuilder {
    /// Replayed `functionCall` parts carry this documented sentinel: OpenAI clients do not
    /// round-trip Gemini's `thoughtSignature`, and Gemini 3 rejects replayed calls without one.
    static let skipThoughtSignature = "skip_thought_signature_validator"

    static func body(for request: ChatRequest) throws(GatewayError) -> JSONObject {
        try rejectUnsupported(request)
        let conversation = try request.conversation()
        var body = JSONObject()
        body["contents"] = .array(try contents(conversation))

        let system = conversation.systemTexts.filter { !$0.isEmpty }
        if !system.isEmpty {
            body["systemInstruction"] = ["parts": .array(system.map { ["text": .string($0)] })]
        }

        if !conversation.tools.isEmpty {
            let declarations: [JSON] = conversation.tools.map { tool in
                var declaration = JSONObject([("name", .string(tool.name))])
                if let description = tool.description, !description.isEmpty { declaration["description"] = .string(description) }
                let schema = cleanSchema(tool.parameters)
                // Zero-argument functions: no `parameters` at all (docs/providers/google.md, "Request translation").
                if !isEmptyObjectSchema(schema) { declaration["parameters"] = .object(schema) }
                return .object(declaration)
            }
            body["tools"] = [["functionDeclarations": .array(declarations)]]
        }
        if let choice = conversation.toolChoice {
            if conversation.tools.isEmpty {
                if choice != .none && choice != .auto {
                    throw .invalidRequest("'tool_choice' requires 'tools'.", param: "tool_choice", code: "invalid_value")
                }
            } else {
                let config: JSONObject
                switch choice {
                case .auto: config = JSONObject([("mode", "AUTO")])
                case .none: config = JSONObject([("mode", "NONE")])
                case .required: config = JSONObject([("mode", "ANY")])
                case .function(let name):
                    guard conversation.tools.contains(where: { $0.name == name }) else {
                        throw .invalidRequest("'tool_choice' names function '\(name)', which is not in 'tools'.",
                                              param: "tool_choice", code: "invalid_value")
                    }
                    config = JSONObject([("mode", "ANY"), ("allowedFunctionNames", [.string(name)])])
                }
                body["toolConfig"] = ["functionCallingConfig": .object(config)]
            }
        }

        let generation = try generationConfig(conversation.parameters, request: request)
        if generation.count > 0 { body["generationConfig"] = .object(generation) }
        return body
    }

    /// Parameters Gemini cannot honour and that would change the answer if dropped.
    private static func rejectUnsupported(_ request: ChatRequest) throws(GatewayError) {
        try request.rejectUnsupported(["audio", "prediction", "web_search_options", "top_logprobs"], provider: .google)
        if request.body["logprobs"]?.boolValue == true {
            throw .invalidRequest("'logprobs' is not supported by google.", param: "logprobs", code: "unsupported_parameter")
        }
        if case .object(let bias)? = request.body["logit_bias"], bias.count > 0 {
            throw .invalidRequest("'logit_bias' is not supported by google.", param: "logit_bias", code: "unsupported_parameter")
        }
        if case .array(let modalities)? = request.body["modalities"], modalities.contains(where: { $0 != "text" }) {
            throw .invalidRequest("'modalities' other than text are not supported by google.", param: "modalities", code: "unsupported_parameter")
        }
    }

    // MARK: Contents

    private static func contents(_ conversation: ChatConversation) throws(GatewayError) -> [JSON] {
        var turns: [(role: String, parts: [JSON])] = []
        // Names come from the assistant turns *before* each tool result.
        var names: [String: String] = [:]

        func append(_ role: String, _ parts: [JSON]) {
            guard !parts.isEmpty else { return }
            if let last = turns.last, last.role == role {
                // Consecutive same-role turns are merged (docs/providers/google.md, "Request translation").
                turns[turns.count - 1].parts += parts
            } else {
                turns.append((role, parts))
            }
        }

        for (index, message) in conversation.messages.enumerated() {
            let param = "messages[\(index)]"
            switch message {
            case .system:
                continue  // all of them go to systemInstruction
            case .user(let items):
                var parts: [JSON] = []
                for (partIndex, item) in items.enumerated() {
                    switch item {
                    case .text(let text):
                        if !text.isEmpty { parts.append(["text": .string(text)]) }
                    case .image(.base64(let mediaType, let data)):
                        parts.append(["inlineData": ["mimeType": .string(mediaType), "data": .string(data)]])
                    case .image(.url):
                        let name = "\(param).content[\(partIndex)].image_url.url"
                        throw .invalidRequest(
                            "'\(name)': google accepts images only inline; send a base64 data URL (data:image/png;base64,…) instead of an http(s) URL.",
                            param: name, code: "unsupported_parameter")
                    }
                }
                append("user", parts)
            case .assistant(let text, let calls):
                var parts: [JSON] = []
                if let text, !text.isEmpty { parts.append(["text": .string(text)]) }
                for (callIndex, call) in calls.enumerated() {
                    let args = try call.argumentsObject(param: "\(param).tool_calls[\(callIndex)].function.arguments")
                    names[call.id] = call.name
                    parts.append(.object(JSONObject([
                        ("functionCall", ["name": .string(call.name), "args": .object(args)]),
                        ("thoughtSignature", .string(skipThoughtSignature)),
                    ])))
                }
                append("model", parts)
            case .tool(let callID, let content):
                guard let name = names[callID] else {
                    throw .invalidRequest(
                        "'\(param).tool_call_id' \(callID) does not match a tool call of an earlier assistant message; google needs the function name of every tool result.",
                        param: "\(param).tool_call_id", code: "invalid_value")
                }
                append("user", [["functionResponse": ["name": .string(name), "response": .object(toolResponse(content))]]])
            }
        }
        guard !turns.isEmpty else {
            throw .invalidRequest("'messages' must contain at least one user or assistant message with content; google needs contents besides the system prompt.",
                                  param: "messages", code: "invalid_value")
        }
        return turns.map { ["role": .string($0.role), "parts": .array($0.parts)] }
    }

    /// A tool result as Gemini's `response` object: a JSON object as is, anything else as `{"output": …}`.
    static func toolResponse(_ content: String) -> JSONObject {
        if let json = try? JSON.parse(Array(content.utf8)) {
            if case .object(let object) = json { return object }
            return JSONObject([("output", json)])
        }
        return JSONObject([("output", .string(content))])
    }

    // MARK: Tools and schemas

    /// Gemini takes an OpenAPI 3.0 subset: JSON-Schema-only keys are dropped, recursively;
    /// names under `properties` are property names, not keywords, and stay.
    static func cleanSchema(_ schema: JSONObject) -> JSONObject {
        let dropped: Set<String> = ["$schema", "additionalProperties", "strict", "$id", "$comment"]
        var output = JSONObject()
        for (key, value) in schema where !dropped.contains(key) {
            if key == "properties" || key == "$defs" || key == "definitions", case .object(let properties) = value {
                var cleaned = JSONObject()
                for (name, property) in properties { cleaned[name] = cleanValue(property) }
                output[key] = .object(cleaned)
            } else {
                output[key] = cleanValue(value)
            }
        }
        return output
    }

    private static func cleanValue(_ value: JSON) -> JSON {
        switch value {
        case .object(let object): return .object(cleanSchema(object))
        case .array(let items): return .array(items.map(cleanValue))
        default: return value
        }
    }

    private static func isEmptyObjectSchema(_ schema: JSONObject) -> Bool {
        guard schema["type"]?.stringValue?.lowercased() == "object" else { return schema.count == 0 }
        let properties = schema["properties"]?.objectValue
        return (properties == nil || properties?.count == 0) && schema.keys.allSatisfy { ["type", "properties", "required"].contains($0) }
            && (schema["required"]?.arrayValue ?? []).isEmpty
    }

    // MARK: generationConfig

    private static func generationConfig(_ parameters: ChatParameters, request: ChatRequest) throws(GatewayError) -> JSONObject {
        var config = JSONObject()
        let stream = request.stream
        // Numbers are copied as the client wrote them (validated by `conversation()`), so 1 stays 1.
        func number(_ name: String, _ value: Double?) -> JSON? {
            guard let value else { return nil }
            return request.body[name] ?? .double(value)
        }
        if let maxTokens = parameters.maxTokens { config["maxOutputTokens"] = .int(Int64(maxTokens)) }
        config["temperature"] = number("temperature", parameters.temperature)
        config["topP"] = number("top_p", parameters.topP)
        if !parameters.stop.isEmpty { config["stopSequences"] = .array(parameters.stop.map { .string($0) }) }
        if let seed = parameters.seed { config["seed"] = .int(seed) }
        config["presencePenalty"] = number("presence_penalty", parameters.presencePenalty)
        config["frequencyPenalty"] = number("frequency_penalty", parameters.frequencyPenalty)
        if let n = parameters.n {
            if n > 1 && stream {
                throw .invalidRequest("'n' greater than 1 is not supported with stream=true for google.", param: "n", code: "unsupported_parameter")
            }
            config["candidateCount"] = .int(Int64(n))
        }
        switch parameters.responseFormat {
        case nil, .text?: break
        case .jsonObject?:
            config["responseMimeType"] = "application/json"
        case .jsonSchema(_, let schema, _)?:
            config["responseMimeType"] = "application/json"
            if schema.count > 0 { config["responseSchema"] = .object(cleanSchema(schema)) }
        }
        return config
    }
}
