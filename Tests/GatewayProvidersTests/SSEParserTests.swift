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
