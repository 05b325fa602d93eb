import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Every adapter against fixtures of its provider's real wire format, one folder per case under
/// `Fixtures/<provider>/<case>/`:
/// - `client.request.json` → golden `upstream.request.json` (the body the provider receives), and
///   optionally `upstream.target.json` (`{"url": …, "headers": {…}}`, non-secret headers only);
/// - `upstream.response.json` → golden `client.response.json`; `upstream.sse` → golden `client.sse`
///   (fed whole, byte by byte and in seeded random chunks, all identical);
/// - `upstream.error.json` (`{"status", "headers", "body"}`) or `upstream.response.raw` → golden
///   `client.error.json` (`{"status", "retry_after", "failure_class", "body"}`);
/// - `expected.usage.json`: normalised usage and `model` as served;
/// - cases named `embeddings*` run through the embeddings translation instead of chat.
@Suite("Provider adapter fixtures")
struct ProviderAdapterFixtureTests {
    /// The case table every chat provider must cover (issue: same table for every provider).
    static let requiredCases = [
        "basic", "system_prompt", "multi_turn", "image", "tools_round_trip", "stream_text", "stream_tool_call",
        "length_stop", "error_400", "error_401", "error_429", "error_500", "stream_midstream_error", "stream_usage",
    ]
    static let embeddingProviders: [Provider] = [.openai, .google, .mistral, .cohere]

    static let allCases: [FixtureCase] = Provider.allCases.flatMap { provider in
        Fixture.cases(provider: provider.rawValue).map { FixtureCase(provider: provider, name: $0) }
    }
    static var chatCases: [FixtureCase] { allCases.filter { !$0.name.hasPrefix("embeddings") } }
    static var embeddingCases: [FixtureCase] { allCases.filter { $0.name.hasPrefix("embeddings") } }

    @Test(arguments: Provider.allCases)
    func everyProviderCoversTheCaseTable(_ provider: Provider) {
        let present = Set(Fixture.cases(provider: provider.rawValue))
        for name in Self.requiredCases {
            #expect(present.contains(name), "\(provider.rawValue) lacks fixture case \(name)")
        }
        if Self.embeddingProviders.contains(provider) {
            #expect(present.contains { $0.hasPrefix("embeddings") }, "\(provider.rawValue) lacks an embeddings fixture")
        }
        #expect(ProviderRegistry.adapter(for: provider) != nil, "no adapter for \(provider.rawValue)")
    }

    @Test(arguments: chatCases)
    func upstreamRequest(_ test: FixtureCase) throws {
        let fixture = test.fixture
        let adapter = try #require(ProviderRegistry.adapter(for: test.provider))
        let chat = try fixture.chatRequest()
        let settings = Fixture.settings(test.provider)
        let request = try adapter.makeChatRequest(chat, settings: settings)
        #expect(request.url.hasPrefix(settings.effectiveBaseURL.trimmingCharacters(in: CharacterSet(charactersIn: "/"))))
        #expect(!request.url.contains(settings.apiKey.value), "the provider key must never be in a URL")
        #expect(request.headers.contains { $0.value.contains(settings.apiKey.value) }, "the provider key goes in a header")
        if fixture.exists("upstream.target.json") {
            let target = try fixture.json("upstream.target.json")
            if let url = target["url"]?.stringValue { #expect(request.url == url) }
            for (name, value) in target["headers"]?.objectValue ?? JSONObject() {
                #expect(request.headers.first { $0.name.lowercased() == name.lowercased() }?.value == value.stringValue, "header \(name)")
            }
        }
        #expect(try JSON.parse(request.body) == fixture.json("upstream.request.json"))
    }

    @Test(arguments: chatCases.filter { $0.fixture.exists("upstream.response.json") })
    func nonStreamResponse(_ test: FixtureCase) throws {
        let fixture = test.fixture
        let adapter = try #require(ProviderRegistry.adapter(for: test.provider))
        let result = try adapter.decodeChatResponse(fixture.bytes("upstream.response.json"), for: fixture.chatRequest())
        #expect(try JSON.parse(result.body) == fixture.json("client.response.json"))
        if fixture.exists("expected.usage.json") { try fixture.expectUsage(result.usage, model: result.modelServed) }
    }

    @Test(arguments: chatCases.filter { $0.fixture.exists("upstream.sse") })
    func streamWholeByteByByteAndRandomChunks(_ test: FixtureCase) throws {
        let fixture = test.fixture
        let adapter = try #require(ProviderRegistry.adapter(for: test.provider))
        let chat = try fixture.chatRequest()
        let upstream = try fixture.bytes("upstream.sse")
        let expected = try fixture.text("client.sse")

        func run(_ chunks: [ArraySlice<UInt8>]) -> (String, StreamRelay) {
            var relay = StreamRelay(providerName: test.provider.rawValue, translator: adapter.makeStreamTranslator(for: chat))
            var output: [UInt8] = []
            for chunk in chunks { output += relay.feed(chunk) }
            output += relay.finish()
            return (String(decoding: output, as: UTF8.self), relay)
        }

        let (whole, relay) = run([upstream[...]])
        #expect(whole == expected)
        let (bytewise, _) = run(upstream.indices.map { upstream[$0...$0] })
        #expect(bytewise == expected)
        for seed in [1, 2, 3, 99] as [UInt64] {
            var random = SplitMix(seed: seed)
            var chunks: [ArraySlice<UInt8>] = []
            var index = 0
            while index < upstream.count {
                let end = min(upstream.count, index + Int(random.next() % 17) + 1)
                chunks.append(upstream[index..<end])
                index = end
            }
            #expect(run(chunks).0 == expected, "seed \(seed)")
        }
        if fixture.exists("expected.usage.json") {
            try fixture.expectUsage(relay.usage, model: relay.modelServed)
        }
    }

    @Test(arguments: allCases.filter { $0.fixture.exists("client.error.json") })
    func errors(_ test: FixtureCase) throws {
        let fixture = test.fixture
        let adapter = try #require(ProviderRegistry.adapter(for: test.provider))
        let settings = Fixture.settings(test.provider)
        let expected = try fixture.json("client.error.json")
        let error: GatewayError
        if fixture.exists("upstream.error.json") {
            let upstream = try fixture.json("upstream.error.json")
            let headers = upstream["headers"]?.objectValue?.map { (name: $0.key, value: $0.value.stringValue ?? "") } ?? []
            let body: [UInt8] = upstream["body"]?.stringValue.map { Array($0.utf8) } ?? upstream["body"]!.serialized()
            error = adapter.decodeError(status: Int(upstream["status"]!.intValue!), headers: headers, body: body, settings: settings)
        } else {
            let raw = try fixture.bytes("upstream.response.raw")
            let chat = try fixture.chatRequest()
            let result = Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(raw, for: chat) }
            guard case .failure(let decoded) = result else {
                Issue.record("expected a malformed-response error")
                return
            }
            error = decoded
        }
        #expect(error.status == Int(expected["status"]!.intValue!))
        #expect(error.retryAfter == expected["retry_after"]?.intValue.map(Int.init))
        if let failureClass = expected["failure_class"]?.stringValue {
            #expect("\(error.failureClass)" == failureClass)
        }
        #expect(error.body == expected["body"])
        #expect(!error.body.serializedString().contains(settings.apiKey.value))
    }

    @Test(arguments: embeddingCases)
    func embeddings(_ test: FixtureCase) throws {
        let fixture = test.fixture
        let adapter = try #require(ProviderRegistry.adapter(for: test.provider))
        let settings = Fixture.settings(test.provider)
        let request = try EmbeddingsRequest.parse(fixture.bytes("client.request.json"))
        let upstream = try adapter.makeEmbeddingsRequest(request, settings: settings)
        #expect(!upstream.url.contains(settings.apiKey.value))
        if fixture.exists("upstream.target.json"), let url = try fixture.json("upstream.target.json")["url"]?.stringValue {
            #expect(upstream.url == url)
        }
        #expect(try JSON.parse(upstream.body) == fixture.json("upstream.request.json"))
        let result = try adapter.decodeEmbeddingsResponse(fixture.bytes("upstream.response.json"), for: request)
        #expect(try JSON.parse(result.body) == fixture.json("client.response.json"))
        if fixture.exists("expected.usage.json") { try fixture.expectUsage(result.usage, model: result.modelServed) }
    }
}

struct FixtureCase: Sendable, CustomTestStringConvertible {
    let provider: Provider
    let name: String
    var fixture: Fixture { Fixture(provider: provider.rawValue, name: name) }
    var testDescription: String { "\(provider.rawValue)/\(name)" }
}

struct Fixture {
    let directory: URL

    init(provider: String, name: String) {
        directory = Fixture.root.appendingPathComponent(provider).appendingPathComponent(name)
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Fake credentials and a simulator-style base URL per provider; the tests check the key is
    /// sent in a header and never lands in a URL or an error.
    static func settings(_ provider: Provider) -> ProviderSettings {
        ProviderSettings(projectID: 1, provider: provider, apiKey: Secret("test-key-\(provider.rawValue)-abcd1234"),
                         baseURL: "http://127.0.0.1:9000/\(provider.rawValue)/", updatedAt: Date(timeIntervalSince1970: 0))
    }

    static func cases(provider: String) -> [String] {
        let folder = root.appendingPathComponent(provider)
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    func exists(_ file: String) -> Bool { FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) }
    func bytes(_ file: String) throws -> [UInt8] { Array(try Data(contentsOf: directory.appendingPathComponent(file))) }
    func text(_ file: String) throws -> String { String(decoding: try bytes(file), as: UTF8.self) }
    func json(_ file: String) throws -> JSON { try JSON.parse(bytes(file)) }

    /// The client request with the gateway-synthesised id and clock fixed, so goldens are stable.
    func chatRequest() throws -> ChatRequest {
        var chat = try ChatRequest.parse(bytes("client.request.json"))
        chat.responseID = "chatcmpl-fixture"
        chat.created = 1767225600
        return chat
    }

    func expectUsage(_ usage: TokenUsage?, model: String?) throws {
        let expected = try json("expected.usage.json")
        #expect(usage?.promptTokens == expected["prompt_tokens"]?.intValue.map(Int.init))
        #expect(usage?.completionTokens == expected["completion_tokens"]?.intValue.map(Int.init))
        #expect(usage?.cachedPromptTokens == expected["cached_tokens"]?.intValue.map(Int.init))
        if let reasoning = expected["reasoning_tokens"]?.intValue { #expect(usage?.reasoningTokens == Int(reasoning)) }
        if let writes = expected["cache_write_tokens"]?.intValue { #expect(usage?.cacheWriteTokens == Int(writes)) }
        #expect(model == expected["model"]?.stringValue)
    }
}
