import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// No provider error hands a secret to the client or a log: key-shaped strings and the project's
/// own provider key are redacted from `message`, `type`, `code` and `param`, for HTTP error bodies
/// (`decodeError`) and mid-stream error events (`StreamRelay`), for every provider.
@Suite("Secret redaction")
struct SecretRedactorTests {
    static let openAIKey = "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA"
    static let googleKey = "AIzaSyA-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

    /// What must not survive, for a project whose provider key is `projectKey`.
    static func forbidden(_ projectKey: String) -> [String] {
        [openAIKey, googleKey, projectKey, "AAAAAAAAAAAAAAAAAAAA", "xxxxxxxxxxxxxxxxxxxx"]
    }

    /// The secrets as providers echo them: bare, quoted, after `key=`, in parentheses, masked.
    static func leak(_ projectKey: String) -> String {
        "leaked \(openAIKey) key=\(googleKey), ('\(projectKey)') Bearer \(projectKey)"
    }

    func expectClean(_ error: GatewayError, projectKey: String, _ label: String) {
        let texts = [error.body.serializedString(), String(describing: error), error.message, error.type, error.code ?? "", error.param ?? ""]
        for text in texts {
            for secret in Self.forbidden(projectKey) {
                #expect(!text.contains(secret), "\(label): \(text)")
            }
        }
    }

    @Test func keyShapedStringsAndGivenSecretsAreRedacted() {
        let text = "a \(Self.openAIKey). b sk-ant-api03-abcdefghijklmnop c \(Self.googleKey)) d dpx_0123456789abcdef e Bearer abcdefgh12"
            + " f sk-proj-********************abcd g 0123456789abcdefghijABCDEFGHIJ0123456789 h my-secret-value"
        let redacted = SecretRedactor.redact(text, secrets: ["my-secret-value"])
        #expect(redacted == "a sk-<redacted>. b sk-<redacted> c AIza<redacted>) d dpx_<redacted> e Bearer <redacted>"
                    + " f sk-<redacted> g <redacted> h <redacted>")
        // Idempotent, and ordinary text (ids, UUIDs, URLs, parameter names) is left alone.
        #expect(SecretRedactor.redact(redacted, secrets: ["my-secret-value"]) == redacted)
        let ordinary = "req_011CSHoEeqs5C35K2UUqR7Fy 5d2f3b6c-8a7e-4ebd-ac2b-9a8f7e6d5c4b https://platform.openai.com/account/api-keys messages[0].content task-force"
        #expect(SecretRedactor.redact(ordinary, secrets: []) == ordinary)
    }

    @Test func everyFieldOfAnErrorIsRedacted() {
        let key = "project-key-0123456789"
        let error = GatewayError(status: 400, type: "t \(Self.openAIKey)", code: "c \(key)", param: "p \(Self.googleKey)",
                                 message: "m \(Self.leak(key))", failureClass: .callerFault, retryAfter: 3)
        let redacted = SecretRedactor.redact(error, secrets: [key])
        expectClean(redacted, projectKey: key, "error")
        #expect(redacted.status == 400 && redacted.retryAfter == 3 && redacted.failureClass == .callerFault)
    }

    /// Each provider's real error bodies, with the secrets added to every string field and to
    /// `param`/`code` where the provider sent null.
    @Test(arguments: Provider.allCases)
    func httpErrorBodiesAreRedacted(_ provider: Provider) throws {
        let adapter = try #require(ProviderRegistry.adapter(for: provider))
        let settings = Fixture.settings(provider)
        let projectKey = settings.apiKey.value
        let cases = Fixture.cases(provider: provider.rawValue).filter { $0.hasPrefix("error_") }
        #expect(cases.count >= 4)
        var carried = 0
        for name in cases {
            let upstream = try Fixture(provider: provider.rawValue, name: name).upstreamError()
            var body = upstream.body.mappingStrings { "\($0) \(Self.leak(projectKey))" }
            body = body.replacingValues(forKeys: ["param", "code"]) { old in
                old == .null ? .string("field \(Self.leak(projectKey))") : old
            }
            let bytes: [UInt8] = body.stringValue.map { Array($0.utf8) } ?? body.serialized()
            // What the adapter read, unredacted: the secrets did reach it (not for bodies it cannot read).
            let raw = adapter.readError(status: upstream.status, headers: upstream.headers, body: bytes)
            let rawText = raw.body.serializedString()
            let error = adapter.decodeError(status: upstream.status, headers: upstream.headers, body: bytes, settings: settings)
            expectClean(error, projectKey: projectKey, "\(provider.rawValue)/\(name)")
            if rawText.contains(projectKey) {
                carried += 1
                #expect(error.body.serializedString().contains("<redacted>"), "\(provider.rawValue)/\(name): \(error.message)")
            }
        }
        #expect(carried >= 4, "\(provider.rawValue): the leaked secrets reached the decoder in most cases")
    }

    /// Each provider's real mid-stream error event, with the secrets added to its fields.
    @Test(arguments: Provider.allCases)
    func midStreamErrorsAreRedacted(_ provider: Provider) throws {
        let fixture = Fixture(provider: provider.rawValue, name: "stream_midstream_error")
        let projectKey = Fixture.settings(provider).apiKey.value
        let upstream = try fixture.sse { json in
            if json["object"]?.stringValue == "error" {  // Mistral's error chunk
                return json.replacingValues(forKeys: ["message", "type", "code", "param"]) { _ in .string("x \(Self.leak(projectKey))") }
            }
            if json["type"]?.stringValue == "message-end" {  // Cohere's failed generation
                return json.replacingValues(forKeys: ["error"]) { _ in .string("failed \(Self.leak(projectKey))") }
            }
            return json.replacingValues(forKeys: ["error"]) { error in
                error.mappingStrings { "\($0) \(Self.leak(projectKey))" }
                    .replacingValues(forKeys: ["param", "code"]) { $0 == .null ? .string("f \(Self.leak(projectKey))") : $0 }
            }
        }
        #expect(String(decoding: upstream, as: UTF8.self).contains(projectKey))
        let (output, relay) = try fixture.relay(upstream, provider: provider, secrets: [projectKey])
        let error = try #require(relay.error, "\(provider.rawValue): \(output)")
        expectClean(error, projectKey: projectKey, provider.rawValue)
        for secret in Self.forbidden(projectKey) {
            #expect(!output.contains(secret), "\(provider.rawValue): \(output)")
        }
        #expect(output.contains("<redacted>"), "\(provider.rawValue): \(output)")

        // Without the project key, the relay still removes every key-shaped string.
        let (shapeOnly, _) = try fixture.relay(upstream, provider: provider)
        #expect(!shapeOnly.contains(Self.openAIKey) && !shapeOnly.contains(Self.googleKey), "\(provider.rawValue): \(shapeOnly)")
    }

    /// Errors inside a 200 body (Anthropic's `{"type":"error"}`, Gemini's and Mistral's error objects).
    @Test func errorsInsideASuccessfulBodyAreRedacted() throws {
        let bodies: [(Provider, String)] = [
            (.anthropic, #"{"type":"error","error":{"type":"overloaded_error","message":"LEAK"}}"#),
            (.google, #"{"error":{"code":500,"message":"LEAK","status":"INTERNAL"}}"#),
            (.mistral, #"{"object":"error","message":"LEAK","type":"x","param":null,"code":"1000"}"#),
        ]
        for (provider, template) in bodies {
            let adapter = try #require(ProviderRegistry.adapter(for: provider))
            let fixture = Fixture(provider: provider.rawValue, name: "basic")
            let body = template.replacingOccurrences(of: "LEAK", with: "leaked \(Self.openAIKey) and \(Self.googleKey)")
            let chat = try fixture.chatRequest()
            let result = Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(Array(body.utf8), for: chat) }
            guard case .failure(let error) = result else {
                Issue.record("\(provider.rawValue): expected an error")
                continue
            }
            expectClean(error, projectKey: "unused-project-key-000", provider.rawValue)
        }
    }
}
