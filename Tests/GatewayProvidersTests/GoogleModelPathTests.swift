import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Gemini takes the model in the URL path (`/v1beta/models/{model}:generateContent`): only ids of
/// `[A-Za-z0-9][A-Za-z0-9._-]*` (at most 128 characters) get there; anything else is a 400 naming
/// `model` before a URL is built, for chat (streamed or not) and embeddings.
@Suite("Google model path")
struct GoogleModelPathTests {
    let adapter = GoogleAdapter()
    let settings = Fixture.settings(.google)

    static let refused = [
        "gemini-1.5-pro/../../files", "a?b", "a#b", "%2e%2e", "x y", "", "models/", "gémini", "gemini-🌍", "..", ".hidden",
        "-flag", "_x", "a/b", "a\\b", "a:b", "a\u{0}b", "a\nb", "models/../files", String(repeating: "a", count: 129),
    ]

    func expectRefused(_ error: GatewayError?, _ model: String) {
        #expect(error?.status == 400, "\(model.debugDescription)")
        #expect(error?.param == "model", "\(model.debugDescription)")
        #expect(error?.code == "invalid_value", "\(model.debugDescription)")
        #expect(error?.message.contains("[A-Za-z0-9][A-Za-z0-9._-]*") == true, "\(model.debugDescription)")
    }

    @Test(arguments: refused)
    func unsafeModelIdsAreRefusedForChatAndEmbeddings(_ model: String) throws {
        for stream in [false, true] {
            var chat = try ChatRequest.parse(Array(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}"#.utf8))
            chat = chat.retargeted(model: model)
            chat.stream = stream
            let result = Result { () throws(GatewayError) -> UpstreamRequest in try adapter.makeChatRequest(chat, settings: settings) }
            guard case .failure(let error) = result else {
                Issue.record("\(model.debugDescription) was sent: \((try? result.get())?.url ?? "")")
                continue
            }
            expectRefused(error, model)
        }
        var body = JSONObject([("model", .string("text-embedding-004")), ("input", "hello")])
        var embeddings = try EmbeddingsRequest.parse(JSON.object(body).serialized())
        embeddings.model = model
        body["model"] = .string(model)
        embeddings.body = body
        let result = Result { () throws(GatewayError) -> UpstreamRequest in try adapter.makeEmbeddingsRequest(embeddings, settings: settings) }
        guard case .failure(let error) = result else {
            Issue.record("\(model.debugDescription) was sent for embeddings")
            return
        }
        expectRefused(error, model)
    }

    @Test(arguments: ["gemini-2.5-flash", "models/gemini-1.5-pro-002", "gemini-2.0-flash-exp_01", "text-embedding-004", "9b.x",
                      String(repeating: "a", count: 128)])
    func ordinaryModelIdsGoIntoThePathUnchanged(_ model: String) throws {
        var chat = try ChatRequest.parse(Array(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}"#.utf8))
        chat = chat.retargeted(model: model)
        let request = try adapter.makeChatRequest(chat, settings: settings)
        let id = model.hasPrefix("models/") ? String(model.dropFirst("models/".count)) : model
        #expect(request.url == "http://127.0.0.1:9000/google/v1beta/models/\(id):generateContent")
        let embeddings = try EmbeddingsRequest.parse(Array(#"{"model":"\#(model)","input":"hello"}"#.utf8))
        #expect(try adapter.makeEmbeddingsRequest(embeddings, settings: settings).url
                    == "http://127.0.0.1:9000/google/v1beta/models/\(id):batchEmbedContents")
    }
}
