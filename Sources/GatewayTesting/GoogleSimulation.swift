import Foundation
import NIOCore
import NIOHTTP1

/// The simulated Gemini API (Generative Language `v1beta`), mounted at `/google`:
/// `POST /v1beta/models/{m}:generateContent`, `:streamGenerateContent?alt=sse` (CRLF-framed
/// data-only SSE ending at EOF; without `alt=sse` one JSON array), `:batchEmbedContents`,
/// `:embedContent`, `GET /v1beta/models[/{m}]`. The key is read from `x-goog-api-key` (or
/// `?key=`); "sk-invalid" gets Gemini's 400 API_KEY_INVALID, no key a 403.
struct GoogleSimulation: SimulatedProvider {
    let mountPoints = ["/google"]

    private enum Route {
        case generate(model: String, stream: Bool)
        case batchEmbed(model: String)
        case embed(model: String)
        case models
        case model(id: String)
    }

    func respond(to request: SimulatorRequest, path: String, script: inout SimulatorScript, context: SimulationContext) -> SimulatedResponse {
        guard let route = Self.route(method: request.method, path: path) else {
            return Self.error(.notFound, message: "The requested URL \(request.path) was not found on this server.", status: "NOT_FOUND")
        }
        // Gemini checks the key before it reads the body.
        let key = request.header("x-goog-api-key") ?? Self.queryValue("key", in: request.query)
        guard let key, !key.isEmpty else {
            return .json(.forbidden, GoogleWireFormat.missingKey)
        }
        if Self.rejectedKeys.contains(key) {
            return .json(.badRequest, GoogleWireFormat.invalidKey)
        }
        switch route {
        case .generate(let model, let stream):
            let sse = Self.queryValue("alt", in: request.query) == "sse"
            return generate(request, model: model, stream: stream, sse: sse, &script, context)
        case .batchEmbed(let model): return embed(request, model: model, batch: true, &script)
        case .embed(let model): return embed(request, model: model, batch: false, &script)
        case .models: return Self.scripted(script) ?? .json(.ok, GoogleWireFormat.modelList())
        case .model(let id):
            if let failure = Self.scripted(script) { return failure }
            guard let model = GoogleWireFormat.models.first(where: { $0.id == id }) else {
                return Self.error(.notFound, message: "models/\(id) is not found for API version v1beta.", status: "NOT_FOUND")
            }
            return .json(.ok, GoogleWireFormat.model(model))
        }
    }

    private static func route(method: HTTPMethod, path: String) -> Route? {
        let prefix = "/v1beta/models"
        if method == .GET && path == prefix { return .models }
        guard path.hasPrefix(prefix + "/") else { return nil }
        let resource = String(path.dropFirst(prefix.count + 1))
        if method == .GET {
            let id = resource.removingPercentEncoding ?? resource
            return id.isEmpty || id.contains(":") ? nil : .model(id: id)
        }
        guard method == .POST, let colon = resource.lastIndex(of: ":") else { return nil }
        let model = String(resource[..<colon]).removingPercentEncoding ?? String(resource[..<colon])
        guard !model.isEmpty else { return nil }
        switch resource[resource.index(after: colon)...] {
        case "generateContent": return .generate(model: model, stream: false)
        case "streamGenerateContent": return .generate(model: model, stream: true)
        case "batchEmbedContents": return .batchEmbed(model: model)
        case "embedContent": return .embed(model: model)
        default: return nil
        }
    }

    static func queryValue(_ name: String, in query: String?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.first.map(String.init) == name {
                let value = parts.count == 2 ? String(parts[1]) : ""
                return value.removingPercentEncoding ?? value
            }
        }
        return nil
    }

    // MARK: generateContent

    private func generate(
        _ request: SimulatorRequest, model: String, stream: Bool, sse: Bool, _ script: inout SimulatorScript, _ context: SimulationContext
    ) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return Self.error(.badRequest, message: "Invalid JSON payload received.", status: "INVALID_ARGUMENT")
        }
        let contents = body["contents"] as? [[String: Any]] ?? []
        let system = body["systemInstruction"] as? [String: Any]
        // One "message" per content, plus the system instruction as one more.
        let messages = (system.map { [$0] } ?? []) + contents
        let texts = messages.map(Self.texts(of:))
        for text in texts.joined() { script.scan(text) }

        guard !contents.isEmpty else {
            return Self.error(.badRequest, message: "* GenerateContentRequest.contents: contents is not specified",
                              status: "INVALID_ARGUMENT")
        }
        for content in contents {
            guard let role = content["role"] as? String, role == "user" || role == "model" else {
                return Self.error(.badRequest, message: "Please use a valid role: user, model.", status: "INVALID_ARGUMENT")
            }
        }
        if let failure = Self.scripted(script) { return failure }

        let config = body["generationConfig"] as? [String: Any] ?? [:]
        let (words, truncated) = SimulatedReply.words(for: script, limit: SimulatorJSON.int(config["maxOutputTokens"]))
        let promptTokens = SimulatedReply.promptTokens(texts)
        let lastIsToolResult = (contents.last?["parts"] as? [[String: Any]] ?? []).contains { $0["functionResponse"] != nil }
        let toolName = lastIsToolResult ? nil : script.tool
        let candidates = max(1, min(8, SimulatorJSON.int(config["candidateCount"]) ?? 1))
        let identity = GoogleWireFormat.Identity(responseID: "sim-\(context.stats.nextCompletionNumber())", model: model)

        var response: SimulatedResponse
        if stream {
            let events = Self.streamEvents(identity, words: words, truncated: truncated, tool: toolName,
                                           promptTokens: promptTokens, script: script)
            if sse {
                response = .eventStream(events.map { $0.sse })
            } else {
                // Without alt=sse Gemini streams one JSON array.
                var bytes = Array("[".utf8)
                for (index, event) in events.enumerated() {
                    if index > 0 { bytes += Array("\r\n,".utf8) }
                    bytes += event.json
                }
                bytes += Array("]".utf8)
                response = SimulatedResponse(status: .ok, contentType: "application/json", body: .full(bytes))
            }
            if let k = script.disconnectAfter, sse { response.interruption = .afterEvents(min(k, words.count)) }
        } else if script.malformed {
            response = .rawJSON(#"{"candidates":[{"content":{"parts":[{"text":"#)
        } else {
            let parts: [[String: Any]]
            let completion: Int
            let finishReason: String
            if let toolName {
                parts = [GoogleWireFormat.functionCallPart(name: toolName)]
                completion = Self.toolCallTokens
                finishReason = "STOP"
            } else {
                parts = [GoogleWireFormat.textPart(words.joined(separator: " "))]
                completion = words.count
                finishReason = truncated ? "MAX_TOKENS" : "STOP"
            }
            let usage = GoogleWireFormat.Usage(promptTokens: promptTokens, candidatesTokens: completion * candidates)
            response = .json(.ok, GoogleWireFormat.response(
                identity, candidates: Array(repeating: (parts, finishReason), count: candidates), usage: usage))
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        return response
    }

    /// Completion tokens billed for the scripted tool call.
    static let toolCallTokens = 2

    /// Gemini's stream: one event per word with running usage totals, `finishReason` on the last
    /// one; a tool call arrives whole in one event. No terminator.
    static func streamEvents(
        _ identity: GoogleWireFormat.Identity, words: [String], truncated: Bool, tool: String?, promptTokens: Int,
        script: SimulatorScript
    ) -> [(sse: [UInt8], json: [UInt8])] {
        func event(_ object: [String: Any]) -> (sse: [UInt8], json: [UInt8]) {
            (GoogleWireFormat.event(object), SimulatorJSON.encode(object))
        }
        func usage(_ candidates: Int) -> GoogleWireFormat.Usage {
            GoogleWireFormat.Usage(promptTokens: promptTokens, candidatesTokens: candidates)
        }
        if let tool {
            return [event(GoogleWireFormat.response(
                identity, candidates: [([GoogleWireFormat.functionCallPart(name: tool)], "STOP")], usage: usage(toolCallTokens)))]
        }
        let pieces = SimulatedReply.streamPieces(words)
        var events: [(sse: [UInt8], json: [UInt8])] = []
        if script.malformed {
            events.append(event(GoogleWireFormat.response(identity, candidates: [([GoogleWireFormat.textPart(pieces.first ?? "x")], nil)],
                                                          usage: usage(1))))
            events.append((GoogleWireFormat.event(raw: #"{"candidates": [{"content": {"parts": [{"text": "x""#), Array(#"{"candidates""#.utf8)))
            return events
        }
        if let k = script.streamErrorAfter {
            // K word events, then Gemini's own error event, then EOF.
            for (index, piece) in pieces.prefix(k).enumerated() {
                events.append(event(GoogleWireFormat.response(
                    identity, candidates: [([GoogleWireFormat.textPart(piece)], nil)], usage: usage(index + 1))))
            }
            let error = GoogleWireFormat.streamError
            events.append((GoogleWireFormat.event(error), SimulatorJSON.encode(error)))
            return events
        }
        let finishReason = truncated ? "MAX_TOKENS" : "STOP"
        for (index, piece) in pieces.enumerated() {
            let last = index == pieces.count - 1
            events.append(event(GoogleWireFormat.response(
                identity, candidates: [([GoogleWireFormat.textPart(piece)], last ? finishReason : nil)], usage: usage(index + 1))))
        }
        if pieces.isEmpty {
            events.append(event(GoogleWireFormat.response(
                identity, candidates: [([GoogleWireFormat.textPart("")], finishReason)], usage: usage(0))))
        }
        return events
    }

    /// The text parts of a content (or of the system instruction).
    static func texts(of content: [String: Any]) -> [String] {
        (content["parts"] as? [Any] ?? []).compactMap { ($0 as? [String: Any])?["text"] as? String }
    }

    // MARK: Embeddings

    private func embed(_ request: SimulatorRequest, model: String, batch: Bool, _ script: inout SimulatorScript) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return Self.error(.badRequest, message: "Invalid JSON payload received.", status: "INVALID_ARGUMENT")
        }
        let items: [[String: Any]] = batch ? (body["requests"] as? [[String: Any]] ?? []) : [body]
        let texts = items.map { Self.texts(of: $0["content"] as? [String: Any] ?? [:]).joined(separator: " ") }
        for text in texts { script.scan(text) }
        guard !items.isEmpty, texts.allSatisfy({ !$0.isEmpty }) else {
            return Self.error(.badRequest, message: "* BatchEmbedContentsRequest.requests: contents must have text parts",
                              status: "INVALID_ARGUMENT")
        }
        if batch {
            for item in items where (item["model"] as? String).map({ $0 != "models/\(model)" }) ?? false {
                return Self.error(
                    .badRequest, message: "* BatchEmbedContentsRequest.model: unexpected model name format", status: "INVALID_ARGUMENT")
            }
        }
        if let failure = Self.scripted(script) { return failure }
        let vectors = zip(items, texts).map { item, text in
            GoogleWireFormat.embedding(for: text, dimensions: SimulatorJSON.int(item["outputDimensionality"]))
        }
        var response = SimulatedResponse.json(.ok, batch ? ["embeddings": vectors] : ["embedding": vectors.first ?? [:]])
        if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        return response
    }

    // MARK: Errors

    /// The error response for a `status=` directive (any status but 200).
    static func scripted(_ script: SimulatorScript) -> SimulatedResponse? {
        guard let status = script.failureStatus else { return nil }
        return .json(HTTPResponseStatus(statusCode: status),
                     GoogleWireFormat.scriptedError(status: status, retryAfter: script.retryAfterSeconds))
    }

    static func error(_ status: HTTPResponseStatus, message: String, status name: String) -> SimulatedResponse {
        .json(status, GoogleWireFormat.error(code: Int(status.code), message: message, status: name))
    }
}
