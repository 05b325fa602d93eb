import GatewayCore

/// Reading OpenAI-shaped answers from providers that speak "OpenAI with quirks" (Mistral):
/// typed views of a response's choices and of a stream chunk, tolerant of the usual
/// differences (content as a list of chunks, arguments as an object, missing ids, empty
/// `choices`). OpenAI itself is passed through byte for byte and does not use these.
public enum OpenAICompatible {
    /// Bearer auth and a JSON body, as OpenAI-compatible APIs (OpenAI, Mistral) take them.
    public static func headers(_ settings: ProviderSettings, accept: String?) -> [(name: String, value: String)] {
        var headers = [
            (name: "Authorization", value: "Bearer \(settings.apiKey.value)"),
            (name: "Content-Type", value: "application/json"),
        ]
        if let accept { headers.append((name: "Accept", value: accept)) }
        return headers
    }

    /// One choice of a non-streamed answer.
    public struct Choice: Sendable, Equatable {
        public var index: Int
        public var text: String?
        public var toolCalls: [ToolCall]
        public var finishReason: String?
    }

    /// One tool-call delta of a stream chunk; fields absent from the delta are nil.
    public struct ToolCallDelta: Sendable, Equatable {
        public var index: Int
        public var id: String?
        public var name: String?
        public var arguments: String?
    }

    /// One choice of a stream chunk.
    public struct DeltaChoice: Sendable, Equatable {
        public var index: Int
        public var text: String?
        public var toolCalls: [ToolCallDelta]
        public var finishReason: String?
    }

    /// `message.content` / `delta.content`: a string, or a list of chunks whose `text` chunks are
    /// joined (reasoning chunks such as Mistral's `thinking` are left out); nil for null/absent.
    public static func text(_ content: JSON?, provider: Provider) throws(GatewayError) -> String? {
        switch content {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .array(let chunks)?:
            var text = ""
            for chunk in chunks {
                if case .string(let piece) = chunk { text += piece; continue }
                guard case .object(let object) = chunk else {
                    throw .upstreamError("\(provider.rawValue) returned a content chunk that is not an object.")
                }
                if object["type"]?.stringValue == "text", case .string(let piece)? = object["text"] { text += piece }
            }
            return text
        default:
            throw .upstreamError("\(provider.rawValue) returned 'content' as \(content?.typeName ?? "nothing"), expected a string.")
        }
    }

    /// `function.arguments` as the JSON-encoded string clients expect (an object is serialised).
    public static func arguments(_ value: JSON?, provider: Provider) throws(GatewayError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .object?, .array?: return value?.serializedString()
        default:
            throw .upstreamError("\(provider.rawValue) returned tool-call arguments as \(value?.typeName ?? "nothing").")
        }
    }

    /// The choices of a non-streamed `chat.completion`. Tool calls without an id get
    /// `call_<fallbackID>_<n>` (stable for one answer, unique within it).
    public static func choices(_ object: JSONObject, fallbackID: String, provider: Provider) throws(GatewayError) -> [Choice] {
        guard case .array(let rawChoices)? = object["choices"] else {
            throw .upstreamError("\(provider.rawValue) returned a response without 'choices'.")
        }
        var choices: [Choice] = []
        for (position, raw) in rawChoices.enumerated() {
            guard case .object(let choice) = raw else {
                throw .upstreamError("\(provider.rawValue) returned a choice that is not an object.")
            }
            let message = choice["message"]?.objectValue ?? JSONObject()
            var calls: [ToolCall] = []
            switch message["tool_calls"] {
            case nil, .null?: break
            case .array(let rawCalls)?:
                for (ordinal, rawCall) in rawCalls.enumerated() {
                    guard case .object(let call) = rawCall, let name = call["function"]?["name"]?.stringValue else {
                        throw .upstreamError("\(provider.rawValue) returned a tool call without function.name.")
                    }
                    let id = call["id"]?.stringValue.nonEmpty ?? "call_\(fallbackID)_\(position)_\(ordinal)"
                    let arguments = try Self.arguments(call["function"]?["arguments"], provider: provider) ?? "{}"
                    calls.append(ToolCall(id: id, name: name, arguments: arguments))
                }
            default:
                throw .upstreamError("\(provider.rawValue) returned 'tool_calls' that is not an array.")
            }
            let index = ProviderNumber.index(choice["index"]) ?? position
            choices.append(Choice(index: index, text: try text(message["content"], provider: provider), toolCalls: calls,
                                  finishReason: choice["finish_reason"]?.stringValue))
        }
        return choices
    }

    /// The choices of one `chat.completion.chunk` (an empty list for a usage-only chunk).
    public static func deltaChoices(_ chunk: JSONObject, provider: Provider) throws(GatewayError) -> [DeltaChoice] {
        switch chunk["choices"] {
        case nil, .null?: return []
        case .array(let rawChoices)?:
            var choices: [DeltaChoice] = []
            for (position, raw) in rawChoices.enumerated() {
                guard case .object(let choice) = raw else {
                    throw .upstreamError("\(provider.rawValue) sent a stream choice that is not an object.")
                }
                let delta = choice["delta"]?.objectValue ?? JSONObject()
                var calls: [ToolCallDelta] = []
                switch delta["tool_calls"] {
                case nil, .null?: break
                case .array(let rawCalls)?:
                    for (ordinal, rawCall) in rawCalls.enumerated() {
                        guard case .object(let call) = rawCall else {
                            throw .upstreamError("\(provider.rawValue) sent a tool-call delta that is not an object.")
                        }
                        calls.append(ToolCallDelta(
                            index: ProviderNumber.index(call["index"]) ?? ordinal,
                            id: call["id"]?.stringValue.nonEmpty,
                            name: call["function"]?["name"]?.stringValue,
                            arguments: try arguments(call["function"]?["arguments"], provider: provider)))
                    }
                default:
                    throw .upstreamError("\(provider.rawValue) sent 'tool_calls' that is not an array.")
                }
                choices.append(DeltaChoice(
                    index: ProviderNumber.index(choice["index"]) ?? position,
                    text: try text(delta["content"], provider: provider), toolCalls: calls,
                    finishReason: choice["finish_reason"]?.stringValue))
            }
            return choices
        default:
            throw .upstreamError("\(provider.rawValue) sent 'choices' that is not an array.")
        }
    }

    /// A message that may be a string, an object or a list (422 validation details): readable text.
    public static func describe(_ value: JSON) -> String {
        switch value {
        case .string(let text): return text
        case .object(let object):
            if let detail = object["detail"] { return describe(detail) }
            if let message = object["message"] { return describe(message) }
            if let msg = object["msg"]?.stringValue {
                let location = object["loc"]?.arrayValue?.compactMap(locationPart).filter { $0 != "body" }.joined(separator: ".") ?? ""
                return location.isEmpty ? msg : "\(location): \(msg)"
            }
            return value.serializedString()
        case .array(let items): return items.map(describe).joined(separator: "; ")
        default: return value.serializedString()
        }
    }

    /// The parameter a FastAPI-style validation `loc` names (`["body","messages",0,"content"]` → `messages[0].content`).
    public static func parameter(fromLocation location: [JSON]) -> String? {
        var result = ""
        for part in location {
            switch part {
            case .string(let name) where name == "body" && result.isEmpty: continue
            case .string(let name): result += result.isEmpty ? name : ".\(name)"
            case .int(let index): result += "[\(index)]"
            default: continue
            }
        }
        return result.isEmpty ? nil : result
    }

    private static func locationPart(_ value: JSON) -> String? {
        switch value {
        case .string(let text): return text
        case .int(let number): return String(number)
        default: return nil
        }
    }
}
