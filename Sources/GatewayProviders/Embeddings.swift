import GatewayCore

/// A client's POST /v1/embeddings request (OpenAI format), validated.
public struct EmbeddingsRequest: Sendable {
    public var body: JSONObject
    public var model: String
    /// The texts to embed; a single string input is one text. Token-id arrays are accepted
    /// only by OpenAI-compatible providers (`tokenInput` keeps them as sent).
    public var texts: [String]
    public var tokenInput: Bool
    /// `float` (default) or `base64`.
    public var encodingFormat: String
    public var dimensions: Int?
    public var user: String?

    public static func parse(_ bytes: [UInt8]) throws(GatewayError) -> EmbeddingsRequest {
        guard !bytes.isEmpty, let json = try? JSON.parse(bytes) else {
            throw .invalidRequest("We could not parse the JSON body of your request.", code: "invalid_json")
        }
        guard case .object(let body) = json else {
            throw .invalidRequest("The request body must be a JSON object, got \(json.typeName).", code: "invalid_json")
        }
        guard case .string(let model)? = body["model"], !model.isEmpty else {
            throw .invalidRequest("Missing required parameter: 'model'.", param: "model", code: "missing_required_parameter")
        }
        var texts: [String] = []
        var tokenInput = false
        switch body["input"] {
        case .string(let text)?: texts = [text]
        case .array(let items)? where !items.isEmpty:
            if items.allSatisfy({ $0.stringValue != nil }) {
                texts = items.compactMap(\.stringValue)
            } else if items.allSatisfy({ $0.intValue != nil || $0.arrayValue != nil }) {
                tokenInput = true
            } else {
                throw .invalidRequest("'input' must be a string, an array of strings or an array of token arrays.", param: "input", code: "invalid_type")
            }
        case nil, .null?:
            throw .invalidRequest("Missing required parameter: 'input'.", param: "input", code: "missing_required_parameter")
        default:
            throw .invalidRequest("'input' must be a non-empty string or array.", param: "input", code: "invalid_value")
        }
        if texts.contains(where: \.isEmpty) {
            throw .invalidRequest("'input' must not contain empty strings.", param: "input", code: "invalid_value")
        }
        let format = body["encoding_format"]?.stringValue ?? "float"
        guard format == "float" || format == "base64" else {
            throw .invalidRequest("'encoding_format' must be float or base64.", param: "encoding_format", code: "invalid_value")
        }
        var dimensions: Int?
        if let value = body["dimensions"], value != .null {
            guard let count = value.intValue, count >= 1 else {
                throw .invalidRequest("'dimensions' must be a positive integer.", param: "dimensions", code: "invalid_value")
            }
            dimensions = Int(count)
        }
        return EmbeddingsRequest(body: body, model: model, texts: texts, tokenInput: tokenInput, encodingFormat: format,
                                 dimensions: dimensions, user: body["user"]?.stringValue)
    }

    /// A 400 for adapters that need text input.
    public func requireTexts(provider: Provider) throws(GatewayError) -> [String] {
        if tokenInput {
            throw .invalidRequest("\(provider.rawValue) embeds text only; token-id arrays are not supported.", param: "input", code: "unsupported_parameter")
        }
        return texts
    }
}

/// A translated embeddings answer in OpenAI's list shape.
public struct EmbeddingsResult: Sendable {
    public var body: [UInt8]
    public var usage: TokenUsage?
    public var modelServed: String?

    public init(body: [UInt8], usage: TokenUsage?, modelServed: String?) {
        self.body = body
        self.usage = usage
        self.modelServed = modelServed
    }

    /// `{"object":"list","data":[{"object":"embedding","index":i,"embedding":[...]}],"model","usage"}`;
    /// base64 is little-endian float32, as OpenAI encodes it.
    public static func make(model: String, vectors: [[Double]], promptTokens: Int?, encodingFormat: String) -> EmbeddingsResult {
        var data: [JSON] = []
        for (index, vector) in vectors.enumerated() {
            let embedding: JSON
            if encodingFormat == "base64" {
                var bytes: [UInt8] = []
                bytes.reserveCapacity(vector.count * 4)
                for value in vector {
                    let bits = Float(value).bitPattern
                    bytes += [UInt8(bits & 0xff), UInt8((bits >> 8) & 0xff), UInt8((bits >> 16) & 0xff), UInt8(bits >> 24)]
                }
                embedding = .string(Base64.encode(bytes))
            } else {
                embedding = .array(vector.map { .double($0) })
            }
            data.append(["object": "embedding", "index": .int(Int64(index)), "embedding": embedding])
        }
        return make(model: model, data: data, promptTokens: promptTokens)
    }

    /// The list around already-built `data` entries.
    public static func make(model: String, data: [JSON], promptTokens: Int?) -> EmbeddingsResult {
        let usage = promptTokens.map { TokenUsage(promptTokens: $0, completionTokens: 0) }
        let body: JSON = .object(JSONObject([
            ("object", "list"), ("data", .array(data)), ("model", .string(model)),
            ("usage", usage.map { ["prompt_tokens": .int(Int64($0.promptTokens)), "total_tokens": .int(Int64($0.promptTokens))] } ?? .null),
        ]))
        return EmbeddingsResult(body: body.serialized(), usage: usage, modelServed: model)
    }
}

extension EmbeddingsResult {
    /// A provider's vector as numbers; anything else is a 502 with `failure` as its message.
    public static func numbers(_ values: [JSON], failure: String) throws(GatewayError) -> [Double] {
        var vector: [Double] = []
        vector.reserveCapacity(values.count)
        for value in values {
            guard let number = value.doubleValue else { throw .upstreamError(failure) }
            vector.append(number)
        }
        return vector
    }
}

/// Standard base64 (RFC 4648) for embedding vectors; Foundation-free so translators stay pure.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output += [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], alphabet[Int(value & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let value = UInt32(bytes[index]) << 16
            output += [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output += [alphabet[Int(value >> 18 & 63)], alphabet[Int(value >> 12 & 63)], alphabet[Int(value >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: output, as: UTF8.self)
    }
}
