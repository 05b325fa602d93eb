import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Numbers from providers clamp or are refused, never trap: token counts (`TokenCount`),
/// `Retry-After` and its relatives (`RetryAfter`), `created`, choice and tool-call indices,
/// embeddings counts — through every adapter, on its own fixtures.
@Suite("Provider numbers")
struct ProviderNumbersTests {
    /// JSON a provider could send where a count belongs, and the count it must become.
    static let hostileCounts: [(JSON, Int)] = [
        (.int(9_000_000_000_000_000_000), TokenCount.maximum),
        (.int(Int64.max), TokenCount.maximum),
        (.double(9e18), TokenCount.maximum),
        (.double(1e300), TokenCount.maximum),
        (.int(-5), 0),
        (.int(Int64.min), 0),
        (.double(-1e300), 0),
        (.double(12.9), 12),
    ]

    /// Every usage key of the five wire formats.
    static let countKeys: Set<String> = [
        "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
        "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
        "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "totalTokenCount",
        "cachedContentTokenCount", "toolUsePromptTokenCount",
    ]

    func expectSane(_ usage: TokenUsage?, _ expected: Int, _ label: String) {
        guard let usage else {
            Issue.record("\(label): no usage")
            return
        }
        let range = 0...TokenCount.maximum
        #expect(range.contains(usage.promptTokens), "\(label)")
        #expect(range.contains(usage.completionTokens), "\(label)")
        #expect(usage.cachedPromptTokens <= usage.promptTokens && usage.cachedPromptTokens >= 0, "\(label)")
        #expect(usage.reasoningTokens <= usage.completionTokens && usage.reasoningTokens >= 0, "\(label)")
        #expect(usage.cacheWriteTokens >= 0 && usage.cacheWriteTokens + usage.cachedPromptTokens <= usage.promptTokens, "\(label)")
        #expect(usage.totalTokens <= 2 * TokenCount.maximum, "\(label)")
        // Gemini's completion is candidates + thoughts: one or two counts.
        #expect(usage.completionTokens == expected || usage.completionTokens == min(2 * expected, TokenCount.maximum), "\(label)")
    }

    @Test func tokenCountClampsEveryKindOfNumber() {
        for (value, expected) in Self.hostileCounts {
            #expect(TokenCount.clamp(value) == expected, "\(value)")
        }
        #expect(TokenCount.clamp(.int(42)) == 42)
        #expect(TokenCount.clamp(nil) == nil)
        #expect(TokenCount.clamp(.null) == nil)
        #expect(TokenCount.clamp(.string("7")) == nil)
        #expect(TokenCount.sum(TokenCount.maximum, TokenCount.maximum, 5) == TokenCount.maximum)
        #expect(TokenCount.sum(Int.max, Int.max) == TokenCount.maximum)
        #expect(TokenCount.sum(-3, 4) == 4)
    }

    @Test(arguments: Provider.allCases)
    func nonStreamedUsageIsClamped(_ provider: Provider) throws {
        let fixture = Fixture(provider: provider.rawValue, name: "basic")
        let adapter = try #require(ProviderRegistry.adapter(for: provider))
        let original = try fixture.json("upstream.response.json")
        for (value, expected) in Self.hostileCounts {
            let body = original.replacingValues(forKeys: Self.countKeys) { _ in value }
            let result = try adapter.decodeChatResponse(body.serialized(), for: fixture.chatRequest())
            expectSane(result.usage, expected, "\(provider.rawValue) \(value)")
            if provider != .openai {  // OpenAI's bytes pass through; the others are rebuilt with the clamped counts
                let usage = try JSON.parse(result.body)["usage"]
                #expect(usage?["prompt_tokens"]?.intValue.map { Int($0) } == result.usage?.promptTokens)
                #expect(usage?["completion_tokens"]?.intValue.map { Int($0) } == result.usage?.completionTokens)
            }
        }
    }

    @Test(arguments: Provider.allCases)
    func streamedUsageIsClamped(_ provider: Provider) throws {
        let fixture = Fixture(provider: provider.rawValue, name: "stream_usage")
        for (value, expected) in Self.hostileCounts {
            let upstream = try fixture.sse { $0.replacingValues(forKeys: Self.countKeys) { _ in value } }
            let (output, relay) = try fixture.relay(upstream, provider: provider)
            #expect(relay.error == nil, "\(provider.rawValue) \(value): \(output)")
            #expect(relay.isComplete)
            expectSane(relay.usage, expected, "\(provider.rawValue) \(value)")
        }
    }

    @Test func embeddingsCountsAreClamped() throws {
        let keys: Set<String> = ["prompt_tokens", "total_tokens", "input_tokens"]
        for provider in [Provider.openai, .mistral, .cohere] {
            let fixture = Fixture(provider: provider.rawValue, name: "embeddings")
            let adapter = try #require(ProviderRegistry.adapter(for: provider))
            let request = try EmbeddingsRequest.parse(fixture.bytes("client.request.json"))
            for (value, expected) in Self.hostileCounts {
                let body = try fixture.json("upstream.response.json").replacingValues(forKeys: keys) { _ in value }
                let result = try adapter.decodeEmbeddingsResponse(body.serialized(), for: request)
                #expect(result.usage?.promptTokens == expected, "\(provider.rawValue) \(value)")
            }
        }
        // A Mistral vector index of 2^62 is only a label.
        let fixture = Fixture(provider: "mistral", name: "embeddings")
        let body = try fixture.json("upstream.response.json").replacingValues(forKeys: ["index"]) { _ in .int(1 << 62) }
        let result = try MistralAdapter().decodeEmbeddingsResponse(body.serialized(),
                                                                   for: EmbeddingsRequest.parse(fixture.bytes("client.request.json")))
        #expect(try JSON.parse(result.body)["data"]?[0]?["index"] == .int(1 << 62))
    }

    @Test(arguments: [JSON.int(9_000_000_000_000_000_000), .int(-5), .double(1e300), .int(Int64.max)])
    func anImplausibleCreatedFallsBackToTheGatewayClock(_ created: JSON) throws {
        let fixture = Fixture(provider: "mistral", name: "basic")
        let chat = try fixture.chatRequest()
        let body = try fixture.json("upstream.response.json").replacingValues(forKeys: ["created"]) { _ in created }
        let result = try MistralAdapter().decodeChatResponse(body.serialized(), for: chat)
        #expect(try JSON.parse(result.body)["created"] == .int(Int64(chat.created)))

        let stream = Fixture(provider: "mistral", name: "stream_text")
        let upstream = try stream.sse { $0.replacingValues(forKeys: ["created"]) { _ in created } }
        let (output, relay) = try stream.relay(upstream, provider: .mistral)
        #expect(relay.error == nil)
        #expect(output.contains("\"created\":\(chat.created)"))
    }

    @Test func hugeChoiceAndToolIndicesAreLabelsNotAllocations() throws {
        let huge: JSON = .int(1 << 62)
        // Non-streamed choices (Mistral's OpenAI shape, Gemini's candidates): the index is kept as sent.
        for provider in [Provider.mistral, .google] {
            let fixture = Fixture(provider: provider.rawValue, name: "basic")
            let body = try fixture.json("upstream.response.json").replacingValues(forKeys: ["index"]) { _ in huge }
            let adapter = try #require(ProviderRegistry.adapter(for: provider))
            let result = try adapter.decodeChatResponse(body.serialized(), for: fixture.chatRequest())
            #expect(try JSON.parse(result.body)["choices"]?[0]?["index"] == huge, "\(provider.rawValue)")
        }
        // Streamed tool calls with indices 2^62 and 2^62 + 1: numbered 0 and 1 for the client.
        func shifted(_ old: JSON) -> JSON { old.intValue.map { .int((1 << 62) + $0) } ?? old }
        let mistral = Fixture(provider: "mistral", name: "stream_tool_call")
        let mistralUpstream = try mistral.sse { json in
            json.replacingValues(forKeys: ["tool_calls"]) { $0.replacingValues(forKeys: ["index"], with: shifted) }
        }
        let cohere = Fixture(provider: "cohere", name: "stream_tool_call")
        let cohereUpstream = try cohere.sse { json in
            json["type"]?.stringValue?.hasPrefix("tool-call") == true ? json.replacingValues(forKeys: ["index"], with: shifted) : json
        }
        for (fixture, upstream, provider) in [(mistral, mistralUpstream, Provider.mistral), (cohere, cohereUpstream, .cohere)] {
            #expect(String(decoding: upstream, as: UTF8.self).contains("\(1 << 62)"))
            let (output, relay) = try fixture.relay(upstream, provider: provider)
            #expect(relay.error == nil, "\(provider.rawValue): \(output)")
            #expect(output.contains("\"tool_calls\":[{\"index\":0"), "\(provider.rawValue): \(output)")
            #expect(!output.contains("\(1 << 62)"), "\(provider.rawValue): \(output)")
            #expect(output == (try fixture.relay(fixture.bytes("upstream.sse"), provider: provider).output), "\(provider.rawValue)")
        }
        // Anthropic's content-block index out of range is refused (a 502 ending the stream), not a trap.
        let fixture = Fixture(provider: "anthropic", name: "stream_text")
        let upstream = try fixture.sse { $0.replacingValues(forKeys: ["index"]) { _ in huge } }
        let (_, relay) = try fixture.relay(upstream, provider: .anthropic)
        #expect(relay.error?.status == 502)
    }

    @Test(arguments: [
        ("1e99", RetryAfter.maximumSeconds), ("-5", 0), ("nan", 1), ("inf", RetryAfter.maximumSeconds),
        ("-inf", 0), ("99999999999999999999", RetryAfter.maximumSeconds), ("120", 120), ("1.2", 2),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 1), ("86401", RetryAfter.maximumSeconds),
    ])
    func retryAfterHeadersAreClampedThroughEveryAdapter(_ header: String, _ expected: Int) throws {
        #expect(RetryAfter.seconds([(name: "Retry-After", value: header)]) == expected)
        for provider in Provider.allCases {
            let fixture = Fixture(provider: provider.rawValue, name: "error_429")
            let adapter = try #require(ProviderRegistry.adapter(for: provider))
            let upstream = try fixture.upstreamError()
            // Gemini's RetryInfo would win over the header: drop it for this case.
            let body = upstream.body.replacingValues(forKeys: ["details"]) { _ in .array([]) }
            let error = adapter.decodeError(status: 429, headers: [(name: "retry-after", value: header)], body: body.serialized(),
                                            settings: Fixture.settings(provider))
            #expect(error.retryAfter == expected, "\(provider.rawValue) Retry-After: \(header)")
        }
    }

    @Test(arguments: [("1e99", RetryAfter.maximumSeconds), ("-5", 0), ("inf", RetryAfter.maximumSeconds), ("2500", 3)])
    func anthropicRetryAfterMillisecondsIsClamped(_ header: String, _ expected: Int) throws {
        let upstream = try Fixture(provider: "anthropic", name: "error_429").upstreamError()
        let error = AnthropicAdapter().decodeError(status: 429, headers: [(name: "retry-after-ms", value: header)],
                                                   body: upstream.body.serialized(), settings: Fixture.settings(.anthropic))
        #expect(error.retryAfter == expected)
        // NaN is no number: the plain Retry-After is used instead.
        let fallback = AnthropicAdapter().decodeError(status: 429, headers: [(name: "retry-after-ms", value: "nan"), (name: "retry-after", value: "7")],
                                                      body: upstream.body.serialized(), settings: Fixture.settings(.anthropic))
        #expect(fallback.retryAfter == 7)
    }

    @Test(arguments: [("1e300s", RetryAfter.maximumSeconds), ("-5s", 0), ("infs", RetryAfter.maximumSeconds), ("11.2s", 12)])
    func geminiRetryDelayIsClamped(_ delay: String, _ expected: Int) throws {
        let upstream = try Fixture(provider: "google", name: "error_429").upstreamError()
        let body = upstream.body.replacingValues(forKeys: ["retryDelay"]) { _ in .string(delay) }
        let error = GoogleAdapter().decodeError(status: 429, headers: [], body: body.serialized(), settings: Fixture.settings(.google))
        #expect(error.retryAfter == expected)
        // The same RetryInfo in a mid-stream error event.
        let stream = Fixture(provider: "google", name: "stream_midstream_error")
        let upstreamSSE = try stream.sse { json in
            guard json["error"] != nil else { return json }
            return json.replacingValues(forKeys: ["error"]) { _ in
                ["code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
                 "details": [["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": .string(delay)]]]
            }
        }
        let (_, relay) = try stream.relay(upstreamSSE, provider: .google)
        #expect(relay.error?.retryAfter == expected)
    }
}
