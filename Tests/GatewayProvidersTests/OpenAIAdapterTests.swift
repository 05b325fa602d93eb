import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Fixtures of OpenAI's real wire format, one folder per case:
/// client.request.json → golden upstream.request.json; upstream.response.json or upstream.sse →
/// golden client.response.json or client.sse; upstream.error.json → golden client.error.json.
@Suite("OpenAI adapter fixtures")
struct OpenAIAdapterTests {
    static let settings = ProviderSettings(projectID: 1, provider: .openai, apiKey: Secret("sk-proj-test-key-abcd"),
                                           baseURL: "http://127.0.0.1:9000/openai/", updatedAt: Date(timeIntervalSince1970: 0))

    static let cases = Fixture.cases(provider: "openai")

    @Test(arguments: cases)
    func upstreamRequest(_ name: String) throws {
        let fixture = Fixture(provider: "openai", name: name)
        let chat = try ChatRequest.parse(fixture.bytes("client.request.json"))
        let request = try OpenAIAdapter().makeChatRequest(chat, settings: Self.settings)
        #expect(request.url == "http://127.0.0.1:9000/openai/v1/chat/completions")
        #expect(request.headers.contains { $0.name == "Authorization" && $0.value == "Bearer sk-proj-test-key-abcd" })
        #expect(!request.url.contains("sk-proj"))
        #expect(try JSON.parse(request.body) == fixture.json("upstream.request.json"))
    }

    @Test(arguments: cases.filter { Fixture(provider: "openai", name: $0).exists("upstream.response.json") })
    func nonStreamResponse(_ name: String) throws {
        let fixture = Fixture(provider: "openai", name: name)
        let chat = try ChatRequest.parse(fixture.bytes("client.request.json"))
        let result = try OpenAIAdapter().decodeChatResponse(fixture.bytes("upstream.response.json"), for: chat)
        #expect(try JSON.parse(result.body) == fixture.json("client.response.json"))
        try fixture.expectUsage(result.usage, model: result.modelServed)
    }

    @Test(arguments: cases.filter { Fixture(provider: "openai", name: $0).exists("upstream.sse") })
    func streamWholeByteByByteAndRandomChunks(_ name: String) throws {
        let fixture = Fixture(provider: "openai", name: name)
        let chat = try ChatRequest.parse(fixture.bytes("client.request.json"))
        let upstream = try fixture.bytes("upstream.sse")
        let expected = try fixture.text("client.sse")

        func run(_ chunks: [ArraySlice<UInt8>]) -> (String, StreamRelay) {
            var relay = StreamRelay(providerName: "openai", translator: OpenAIAdapter().makeStreamTranslator(for: chat))
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

    @Test(arguments: cases.filter { Fixture(provider: "openai", name: $0).exists("client.error.json") })
    func errors(_ name: String) throws {
        let fixture = Fixture(provider: "openai", name: name)
        let expected = try fixture.json("client.error.json")
        let error: GatewayError
        if fixture.exists("upstream.error.json") {
            let upstream = try fixture.json("upstream.error.json")
            let headers = upstream["headers"]?.objectValue?.map { (name: $0.key, value: $0.value.stringValue ?? "") } ?? []
            error = OpenAIAdapter().decodeError(status: Int(upstream["status"]!.intValue!), headers: headers,
                                                body: upstream["body"]!.serialized(), settings: Self.settings)
        } else {
            let chat = try ChatRequest.parse(fixture.bytes("client.request.json"))
            let raw = try fixture.bytes("upstream.response.raw")
            guard let decoded = Self.decodeFailure(raw, chat: chat) else {
                Issue.record("expected a malformed-response error")
                return
            }
            error = decoded
        }
        #expect(error.status == Int(expected["status"]!.intValue!))
        #expect(error.retryAfter == expected["retry_after"]?.intValue.map(Int.init))
        #expect(error.body == expected["body"])
        #expect(!error.body.serializedString().contains("sk-proj-test-key-abcd"))
    }
}

extension OpenAIAdapterTests {
    static func decodeFailure(_ raw: [UInt8], chat: ChatRequest) -> GatewayError? {
        let result = Result { () throws(GatewayError) -> ChatResult in try OpenAIAdapter().decodeChatResponse(raw, for: chat) }
        if case .failure(let error) = result { return error }
        return nil
    }
}

struct Fixture {
    let directory: URL

    init(provider: String, name: String) {
        directory = Fixture.root.appendingPathComponent(provider).appendingPathComponent(name)
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func cases(provider: String) -> [String] {
        let folder = root.appendingPathComponent(provider)
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    func exists(_ file: String) -> Bool { FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) }
    func bytes(_ file: String) throws -> [UInt8] { Array(try Data(contentsOf: directory.appendingPathComponent(file))) }
    func text(_ file: String) throws -> String { String(decoding: try bytes(file), as: UTF8.self) }
    func json(_ file: String) throws -> JSON { try JSON.parse(bytes(file)) }

    func expectUsage(_ usage: TokenUsage?, model: String?) throws {
        let expected = try json("expected.usage.json")
        #expect(usage?.promptTokens == expected["prompt_tokens"]?.intValue.map(Int.init))
        #expect(usage?.completionTokens == expected["completion_tokens"]?.intValue.map(Int.init))
        #expect(usage?.cachedPromptTokens == expected["cached_tokens"]?.intValue.map(Int.init))
        #expect(model == expected["model"]?.stringValue)
    }
}
