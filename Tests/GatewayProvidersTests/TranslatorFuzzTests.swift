import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Property tests over every adapter's response and stream translation and the SSE parser: the
/// provider's real fixtures, mutated (wrong types, missing fields, truncation, flipped bytes,
/// invalid UTF-8, huge lines), must give either a valid OpenAI answer or a 502-class
/// `GatewayError` — never a trap. Bounded: `DEPLOXA_FUZZ_ITERATIONS` mutations per fixture
/// (default 300; CI uses the default, a soak run sets more).
///
/// Every case draws from its own fixed sequence (`seed(for:)`), so a failing round fails again on
/// the next run and on another machine. The coverage-guided fuzzers in Fuzz/ (run by
/// Tests/fuzz/run-fuzz.sh) search the same code without a fixed budget.
@Suite("Translator fuzzing")
struct TranslatorFuzzTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["DEPLOXA_FUZZ_ITERATIONS"] ?? "") ?? 300

    /// A seed that depends only on the case's name and the test (FNV-1a over the bytes).
    /// `hashValue` is not usable here: Swift randomises string hashing per process, so a failure
    /// seen once could never be replayed.
    static func seed(for name: String, salt: UInt64) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash &+ salt
    }

    static let responseCases: [FixtureCase] = ProviderAdapterFixtureTests.allCases.filter { $0.fixture.exists("upstream.response.json") && !$0.name.hasPrefix("embeddings") }
    static let streamCases: [FixtureCase] = ProviderAdapterFixtureTests.allCases.filter { $0.fixture.exists("upstream.sse") }

    @Test(arguments: responseCases)
    func mutatedResponsesNeverCrash(_ test: FixtureCase) throws {
        let adapter = try #require(ProviderRegistry.adapter(for: test.provider))
        let chat = try test.fixture.chatRequest()
        let original = try test.fixture.json("upstream.response.json")
        var random = SplitMix(seed: Self.seed(for: test.testDescription, salt: 7))
        var accepted = 0
        for round in 0..<Self.iterations {
            let bytes: [UInt8]
            if round % 3 == 0 {
                bytes = Mutator.bytes(original.serialized(), random: &random)
            } else {
                bytes = Mutator.json(original, random: &random).serialized()
            }
            let result = Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(bytes, for: chat) }
            switch result {
            case .success(let answer):
                accepted += 1
                // Whatever was accepted is a chat.completion a client can read.
                let json = try JSON.parse(answer.body)
                #expect(json["choices"]?.arrayValue != nil, "\(test.testDescription) round \(round): accepted an answer without choices")
            case .failure(let error):
                #expect(error.status == 502 || error.status == 504, "\(test.testDescription) round \(round): \(error.status) \(error.message)")
            }
        }
        #expect(accepted < Self.iterations)  // the mutations did reach the error paths
    }

    @Test(arguments: streamCases)
    func mutatedStreamsEndCleanly(_ test: FixtureCase) throws {
        let adapter = try #require(ProviderRegistry.adapter(for: test.provider))
        let chat = try test.fixture.chatRequest()
        let original = try test.fixture.bytes("upstream.sse")
        var random = SplitMix(seed: Self.seed(for: test.testDescription, salt: 11))
        for round in 0..<Self.iterations {
            let bytes = Mutator.stream(original, random: &random)
            var relay = StreamRelay(providerName: test.provider.rawValue, translator: adapter.makeStreamTranslator(for: chat))
            var output: [UInt8] = []
            var index = 0
            while index < bytes.count {
                let end = min(bytes.count, index + Int(random.next() % 64) + 1)
                output += relay.feed(bytes[index..<end])
                index = end
            }
            output += relay.finish()
            let text = String(decoding: output, as: UTF8.self)
            // Every stream the client sees ends with exactly one [DONE], error or not, and every
            // payload before it is JSON.
            #expect(text.hasSuffix("data: [DONE]\n\n"), "\(test.testDescription) round \(round): stream did not end with [DONE]")
            #expect(text.components(separatedBy: "data: [DONE]").count == 2, "\(test.testDescription) round \(round): [DONE] count")
            for block in text.components(separatedBy: "\n\n") where block.hasPrefix("data: ") && block != "data: [DONE]" {
                #expect((try? JSON.parse(Array(block.dropFirst(6).utf8))) != nil, "\(test.testDescription) round \(round): non-JSON payload")
            }
        }
    }

    @Test(arguments: Provider.allCases)
    func aTenMegabyteLineIsAnErrorNotACrash(_ provider: Provider) throws {
        guard let adapter = ProviderRegistry.adapter(for: provider) else { return }
        let chat = try ChatRequest.parse(Array(#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"#.utf8))
        let line = Array("data: {\"x\":\"".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 10 << 20) + Array("\n\n".utf8)
        var relay = StreamRelay(providerName: provider.rawValue, translator: adapter.makeStreamTranslator(for: chat))
        var output = relay.feed(line)
        output += relay.finish()
        let text = String(decoding: output, as: UTF8.self)
        #expect(text.hasSuffix("data: [DONE]\n\n"))
        #expect(relay.error != nil || relay.isComplete)
        // And as a non-streamed body: a 502, not a crash.
        let body = [UInt8](repeating: UInt8(ascii: "{"), count: 10 << 20)
        let result = Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(body, for: chat) }
        guard case .failure(let error) = result else {
            Issue.record("\(provider.rawValue) accepted 10 MB of '{'")
            return
        }
        #expect(error.status == 502)
    }

    @Test func theSSEParserSurvivesRandomBytes() throws {
        var random = SplitMix(seed: 42)
        for _ in 0..<(Self.iterations * 10) {
            let length = Int(random.next() % 512)
            var bytes: [UInt8] = []
            for _ in 0..<length {
                // Bias towards the bytes SSE cares about.
                switch random.next() % 6 {
                case 0: bytes.append(UInt8(ascii: "\n"))
                case 1: bytes.append(UInt8(ascii: "\r"))
                case 2: bytes.append(UInt8(ascii: ":"))
                case 3: bytes += Array("data".utf8)
                default: bytes.append(UInt8(truncatingIfNeeded: random.next()))
                }
            }
            var whole = SSEParser(maximumLineLength: 256)
            var pieces = SSEParser(maximumLineLength: 256)
            let all = Result { () throws(SSEParseError) -> [SSEEvent] in
                var events = try whole.feed(bytes)
                if let last = whole.finish() { events.append(last) }
                return events
            }
            var split: [SSEEvent] = []
            var splitFailed = false
            var index = 0
            while index < bytes.count && !splitFailed {
                let end = min(bytes.count, index + Int(random.next() % 7) + 1)
                do { split += try pieces.feed(bytes[index..<end]) } catch { splitFailed = true }
                index = end
            }
            if !splitFailed, let last = pieces.finish() { split.append(last) }
            // Chunking never changes what the parser sees.
            if case .success(let events) = all, !splitFailed {
                #expect(events == split)
            }
        }
    }
}

/// Mutations of provider output.
enum Mutator {
    /// Byte-level: truncate, flip bytes, insert invalid UTF-8.
    static func bytes(_ input: [UInt8], random: inout SplitMix) -> [UInt8] {
        var bytes = input
        switch random.next() % 4 {
        case 0:
            bytes = Array(bytes.prefix(Int(random.next() % UInt64(max(1, bytes.count)))))
        case 1:
            for _ in 0..<(1 + random.next() % 4) where !bytes.isEmpty {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
        case 2:
            let at = Int(random.next() % UInt64(bytes.count + 1))
            bytes.insert(contentsOf: [0xC3, 0x28, 0xFF, 0xE2, 0x82], at: at)
        default:
            bytes = Array(bytes.suffix(Int(random.next() % UInt64(max(1, bytes.count)))))
        }
        return bytes
    }

    /// Structure-level: a random node gets a value of another type, or a key disappears.
    static func json(_ value: JSON, random: inout SplitMix) -> JSON {
        var count = 0
        countNodes(value, &count)
        let target = Int(random.next() % UInt64(max(1, count)))
        var index = 0
        return replace(value, target: target, index: &index, random: &random) ?? .null
    }

    /// SSE streams: mutate one event's JSON, drop an event, truncate, or break framing.
    static func stream(_ input: [UInt8], random: inout SplitMix) -> [UInt8] {
        let text = String(decoding: input, as: UTF8.self)
        var events = text.components(separatedBy: "\n\n")
        guard !events.isEmpty else { return input }
        let pick = Int(random.next() % UInt64(events.count))
        switch random.next() % 5 {
        case 0:
            events.remove(at: pick)
        case 1:
            let lines = events[pick].components(separatedBy: "\n").map { line -> String in
                guard line.hasPrefix("data: "), let json = try? JSON.parse(Array(line.dropFirst(6).utf8)) else { return line }
                return "data: " + Mutator.json(json, random: &random).serializedString()
            }
            events[pick] = lines.joined(separator: "\n")
        case 2:
            return bytes(input, random: &random)
        case 3:
            events.insert("data: {\"type\":\"unknown_future_event\",\"x\":[1,2,3]}", at: pick)
        default:
            events = Array(events.prefix(pick))
        }
        return Array(events.joined(separator: "\n\n").utf8)
    }

    private static func countNodes(_ value: JSON, _ count: inout Int) {
        count += 1
        switch value {
        case .array(let items): items.forEach { countNodes($0, &count) }
        case .object(let object): object.forEach { countNodes($0.value, &count) }
        default: break
        }
    }

    /// Pre-order numbering; the node numbered `target` is replaced, or (nil) removed.
    private static func replace(_ value: JSON, target: Int, index: inout Int, random: inout SplitMix) -> JSON? {
        let number = index
        index += 1
        if number == target {
            switch random.next() % 8 {
            case 0: return nil
            case 1: return .null
            case 2: return .int(Int64(bitPattern: random.next()))
            case 3: return .string("\u{FFFD}mutated")
            case 4: return .array([])
            case 5: return .object(JSONObject())
            case 6: return .double(-1.5)
            default: return .bool(true)
            }
        }
        switch value {
        case .array(let items):
            return .array(items.compactMap { replace($0, target: target, index: &index, random: &random) })
        case .object(let object):
            var copy = JSONObject()
            for (key, child) in object {
                if let replaced = replace(child, target: target, index: &index, random: &random) { copy[key] = replaced }
            }
            return .object(copy)
        default:
            return value
        }
    }
}
