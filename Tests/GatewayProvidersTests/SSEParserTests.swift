import GatewayCore
import GatewayProviders
import Testing

@Suite("SSE parser")
struct SSEParserTests {
    static let stream = Array((
        "data: {\"a\":\"héllo 🌍 日本語\"}\n\n" +
        ": keep-alive comment\n\n" +
        "event: content_block_delta\r\ndata: {\"b\":1}\r\n\r\n" +
        "data: line one\ndata: line two\n\n" +
        "event: ping\ndata:\n\n" +
        "data:no-space\r\rdata: [DONE]\n\n"
    ).utf8)

    static let expected = [
        SSEEvent(data: "{\"a\":\"héllo 🌍 日本語\"}"),
        SSEEvent(event: "content_block_delta", data: "{\"b\":1}"),
        SSEEvent(data: "line one\nline two"),
        SSEEvent(event: "ping", data: ""),
        SSEEvent(data: "no-space"),
        SSEEvent(data: "[DONE]"),
    ]

    @Test func wholeBuffer() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Self.stream) == Self.expected)
        #expect(parser.finish() == nil)
    }

    /// Every split point: lines and multi-byte characters cut across reads come out whole.
    @Test func splitAtEveryByte() throws {
        for cut in 0...Self.stream.count {
            var parser = SSEParser()
            var events = try parser.feed(Self.stream[0..<cut])
            events += try parser.feed(Self.stream[cut...])
            #expect(events == Self.expected, "split at \(cut)")
        }
    }

    @Test func byteByByte() throws {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in Self.stream { events += try parser.feed([byte]) }
        #expect(events == Self.expected)
    }

    @Test(arguments: [1, 7, 42, 1234])
    func seededRandomChunks(_ seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        var parser = SSEParser()
        var events: [SSEEvent] = []
        var index = 0
        while index < Self.stream.count {
            let size = Int(random.next() % 9) + 1
            let end = min(Self.stream.count, index + size)
            events += try parser.feed(Self.stream[index..<end])
            index = end
        }
        #expect(events == Self.expected)
    }

    @Test func eventWithoutTrailingBlankLineIsDeliveredAtFinish() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Array("data: {\"x\":1}\n".utf8)).isEmpty)
        #expect(parser.finish() == SSEEvent(data: "{\"x\":1}"))
        var second = SSEParser()
        _ = try second.feed(Array("data: tail".utf8))
        #expect(second.finish() == SSEEvent(data: "tail"))
    }

    @Test func refusesUnboundedLines() {
        var parser = SSEParser(maximumLineLength: 1024)
        #expect(throws: SSEParseError.self) { try parser.feed([UInt8](repeating: 0x61, count: 2048)) }
    }

    @Test func refusesAnEventOfManyShortDataLinesWithoutABlankLine() throws {
        // 1 KiB cap: each "data: xxxxxxx" line adds 7 bytes (+1 for the joining newline).
        var parser = SSEParser(maximumLineLength: 1024, maximumEventBytes: 1024)
        let line = Array("data: xxxxxxx\n".utf8)
        var fed = 0
        var failure: SSEParseError?
        for _ in 0..<1000 {
            do {
                #expect(try parser.feed(line).isEmpty)
                fed += 1
            } catch {
                failure = error
                break
            }
        }
        #expect(failure?.message.contains("larger than 1024 bytes") == true)
        #expect(fed == 128, "refused at the line that takes the event over 1,024 bytes (128 × 8 = 1,024)")

        // The default cap is 16 MiB; an endless event is refused there, whatever the chunking.
        var defaults = SSEParser()
        #expect(defaults.maximumEventBytes == 16 * 1024 * 1024)
        let chunk = Array(String(repeating: "data: " + String(repeating: "y", count: 1017) + "\n", count: 1024).utf8)
        #expect(throws: SSEParseError.self) {
            for _ in 0..<17 { _ = try defaults.feed(chunk) }  // 17 MiB of data lines, no blank line
        }
        // An empty `data:` line counts its joining newline: endless empty lines are bounded too.
        var empty = SSEParser(maximumEventBytes: 100)
        #expect(throws: SSEParseError.self) { _ = try empty.feed(Array(String(repeating: "data:\n", count: 200).utf8)) }
        // The last line, at the end of the stream, counts as well.
        var tail = SSEParser(maximumEventBytes: 10)
        #expect(try tail.feed(Array("data: 12345\ndata: 67890".utf8)).isEmpty)
        #expect(throws: SSEParseError.self) { _ = try tail.finishChecked() }
    }

    @Test func eventsUpToTheCapAreDeliveredWhole() throws {
        var parser = SSEParser(maximumEventBytes: 17)
        let events = try parser.feed(Array("data: 12345678\ndata: 12345678\n\ndata: a\n\n".utf8))
        #expect(events == [SSEEvent(data: "12345678\n12345678"), SSEEvent(data: "a")])
        // The count starts again with every event.
        for _ in 0..<100 { #expect(try parser.feed(Array("data: 12345678\ndata: 12345678\n\n".utf8)).count == 1) }
        var roomy = SSEParser(maximumEventBytes: 64)
        #expect(try roomy.feed(Self.stream) == Self.expected)
    }

    @Test func theRelayEndsAnOversizedEventWithAnErrorEvent() throws {
        let fixture = Fixture(provider: "openai", name: "stream_text")
        let adapter = OpenAIAdapter()
        var relay = StreamRelay(providerName: "openai", translator: adapter.makeStreamTranslator(for: try fixture.chatRequest()))
        var output: [UInt8] = []
        let line = Array(("data: " + String(repeating: "z", count: 4000) + "\n").utf8)
        for _ in 0..<5000 where !relay.isFinished { output += relay.feed(line) }
        #expect(relay.error?.status == 502)
        #expect(relay.error?.message.contains("larger than 16777216 bytes") == true)
        let text = String(decoding: output, as: UTF8.self)
        #expect(text.hasSuffix("data: [DONE]\n\n"))
        #expect(text.contains("\"upstream_error\""))
    }

    /// Found by the fuzzer: an OpenAI event spread over several `data:` lines is valid SSE, but
    /// forwarding its joined text as is put raw newlines into the client's one-line framing.
    @Test func anOpenAIEventOnSeveralDataLinesReachesTheClientOnOne() throws {
        let fixture = Fixture(provider: "openai", name: "stream_text")
        var relay = StreamRelay(providerName: "openai", translator: OpenAIAdapter().makeStreamTranslator(for: try fixture.chatRequest()))
        let upstream = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\r\n"
            + "data: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n"
        let output = String(decoding: relay.feed(Array(upstream.utf8)), as: UTF8.self)
        let events = output.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.count == 2)
        #expect(events.allSatisfy { $0.hasPrefix("data: ") && !$0.dropFirst(6).contains("\n") })
        let chunk = try JSON.parse(String(events[0].dropFirst(6)))
        #expect(chunk["choices"]?[0]?["delta"]?["content"]?.stringValue == "Hi")
    }
}

/// A tiny deterministic generator so random chunking is reproducible.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
