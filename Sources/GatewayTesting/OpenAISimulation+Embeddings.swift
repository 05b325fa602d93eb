import NIOCore
import NIOHTTP1

/// `/v1/embeddings` and `/v1/models` for the simulated OpenAI API.
extension OpenAISimulation {
    // MARK: Embeddings

    func embeddings(_ request: SimulatorRequest, _ script: inout SimulatorScript) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return Self.invalidJSON(request.body)
        }
        let inputs = Self.embeddingInputs(body["input"])
        for input in inputs ?? [] { script.scan(input.text) }
        guard let model = body["model"] as? String, !model.isEmpty else {
            return Self.error(status: .badRequest, message: "you must provide a model parameter", param: "model", code: nil)
        }
        guard let inputs, !inputs.isEmpty else {
            return Self.error(
                status: .badRequest, message: "'input' must be a string, an array of strings or an array of token arrays.",
                param: "input", code: nil)
        }
        if let failure = Self.scripted(script) { return failure }
        var response = SimulatedResponse.json(.ok, OpenAIWireFormat.embeddings(model: model, inputs: inputs))
        if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        return response
    }

    /// `input` as texts with token counts: a string, strings, a token array or token arrays.
    static func embeddingInputs(_ input: Any?) -> [(text: String, tokens: Int)]? {
        if let text = input as? String { return [(text, SimulatedReply.wordCount(text))] }
        guard let items = input as? [Any], !items.isEmpty else { return nil }
        if items.allSatisfy({ $0 is String }) {
            return items.map { let text = $0 as! String; return (text, SimulatedReply.wordCount(text)) }
        }
        func tokens(_ value: Any) -> [Int]? {
            guard let array = value as? [Any] else { return nil }
            let ints = array.compactMap(SimulatorJSON.int)
            return ints.count == array.count ? ints : nil
        }
        if let single = tokens(items) { return [(single.map(String.init).joined(separator: " "), single.count)] }
        var result: [(String, Int)] = []
        for item in items {
            guard let ints = tokens(item) else { return nil }
            result.append((ints.map(String.init).joined(separator: " "), ints.count))
        }
        return result
    }

    // MARK: Models

    static func model(id: String) -> SimulatedResponse {
        guard let model = OpenAIWireFormat.models.first(where: { $0.id == id }) else {
            return error(status: .notFound, message: "The model '\(id)' does not exist", param: "model", code: "model_not_found")
        }
        return .json(.ok, OpenAIWireFormat.model(model))
    }
}
