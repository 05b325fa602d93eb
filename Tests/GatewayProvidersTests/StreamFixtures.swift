import Foundation
import GatewayCore
import GatewayProviders

/// Drives a `StreamRelay` and a `StreamCommit` the way the request handler does, and records
/// every step, so the commit tests can look at what was held, opened, sent and abandoned.
///
/// Per upstream read: `out = relay.feed(read)`, `commit.next(out, relay: relay)`; then either the
/// body's end (`relay.finish()`) or a transport failure (`relay.fail(error)`), through `next` too.
/// The driver keeps calling `next` after an `abandon` (the handler would stop there), so the tests
/// can check that nothing is ever written after one.
struct CommitRun {
    struct Step: Equatable {
        var produced: [UInt8]
        var action: StreamCommit.Action
        /// The relay after producing `produced`.
        var payloadEvents: Int
        var failed: Bool
        var complete: Bool
    }

    enum Decision: String, Equatable, CustomStringConvertible {
        case committed, abandoned, undecided
        var description: String { rawValue }
    }

    var steps: [Step] = []
    var relay: StreamRelay
    var commit = StreamCommit()

    init(provider: Provider, chat: ChatRequest, reads: [ArraySlice<UInt8>], transportFailure: GatewayError? = nil) {
        let adapter = ProviderRegistry.adapter(for: provider)!
        relay = StreamRelay(providerName: provider.rawValue, translator: adapter.makeStreamTranslator(for: chat))
        for read in reads { record(relay.feed(read)) }
        if let transportFailure {
            record(relay.fail(transportFailure))
        } else {
            record(relay.finish())
        }
    }

    private mutating func record(_ produced: [UInt8]) {
        let action = commit.next(produced, relay: relay)
        steps.append(Step(produced: produced, action: action, payloadEvents: relay.payloadEvents,
                          failed: relay.error != nil, complete: relay.isComplete))
    }

    /// Everything the relay produced, whether or not it was written.
    var produced: [UInt8] { steps.flatMap(\.produced) }

    /// What reached the client: the bytes of `open` and of every `send`, in order.
    var written: [UInt8] {
        steps.flatMap { step -> [UInt8] in
            switch step.action {
            case .open(let bytes), .send(let bytes): return bytes
            case .hold, .abandon: return []
            }
        }
    }

    var openSteps: [Int] { steps.indices.filter { if case .open = steps[$0].action { true } else { false } } }
    var firstAbandon: Int? { steps.firstIndex { $0.action == .abandon } }

    var decision: Decision {
        if !openSteps.isEmpty { return .committed }
        if firstAbandon != nil { return .abandoned }
        return .undecided
    }

    /// The bytes the answer was opened with.
    var openBytes: [UInt8]? {
        for step in steps { if case .open(let bytes) = step.action { return bytes } }
        return nil
    }
}

/// The client side of a relay's output: `data: …` events, one per `\n\n`.
enum ClientStream {
    /// The events' raw text (with the `data: ` prefix), in order.
    static func events(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }
    }

    /// The `data:` payloads (the text after `data: `); events without the prefix come back whole.
    static func payloads(_ bytes: [UInt8]) -> [String] {
        events(bytes).map { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : $0 }
    }

    static func object(_ payload: String) -> JSON? {
        guard payload != "[DONE]", let json = try? JSON.parse(Array(payload.utf8)), case .object = json else { return nil }
        return json
    }

    /// A chunk the client would call content: a delta with non-empty `content` or `refusal` text,
    /// or with tool calls.
    static func isContent(_ payload: String) -> Bool {
        guard let json = object(payload), case .array(let choices)? = json["choices"] else { return false }
        return choices.contains { choice in
            let delta = choice["delta"]
            if let text = delta?["content"]?.stringValue, !text.isEmpty { return true }
            if let text = delta?["refusal"]?.stringValue, !text.isEmpty { return true }
            if case .array(let calls)? = delta?["tool_calls"], !calls.isEmpty { return true }
            return false
        }
    }

    /// The gateway's final error event, `{"error": {…}}`.
    static func isError(_ payload: String) -> Bool {
        guard let json = object(payload), let error = json["error"] else { return false }
        return error != .null
    }

    static func hasContent(_ bytes: [UInt8]) -> Bool { payloads(bytes).contains(where: isContent) }

    /// The chunks the relay counts in `payloadEvents` (not the error event, not `[DONE]`).
    static func chunkPayloads(_ bytes: [UInt8]) -> [String] {
        payloads(bytes).filter { $0 != "[DONE]" && !isError($0) }
    }
}

/// A small linear congruential generator (Knuth's MMIX constants): fixed seeds, the same splits
/// on every run and machine.
struct LCG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    /// A number in `0..<bound`.
    mutating func next(below bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(bound))
    }
}

/// Ways of cutting an upstream body into reads.
enum Splits {
    static func whole(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] { [bytes[...]] }

    static func fixed(_ bytes: [UInt8], size: Int) -> [ArraySlice<UInt8>] {
        stride(from: 0, to: bytes.count, by: size).map { bytes[$0..<min(bytes.count, $0 + size)] }
    }

    /// Reads of 0…`maximum` bytes (empty reads included), drawn from `seed`.
    static func random(_ bytes: [UInt8], seed: UInt64, maximum: Int = 40) -> [ArraySlice<UInt8>] {
        var generator = LCG(seed: seed)
        var reads: [ArraySlice<UInt8>] = []
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + generator.next(below: maximum + 1))
            reads.append(bytes[index..<end])
            index = end
        }
        return reads
    }

    /// One read per SSE event: cut after every blank line (`\n\n` or `\r\n\r\n`).
    static func perEvent(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var reads: [ArraySlice<UInt8>] = []
        var start = 0
        var lineStart = 0
        for index in bytes.indices where bytes[index] == 0x0A {
            let line = bytes[lineStart..<index]
            if line.isEmpty || line == [0x0D] {
                reads.append(bytes[start...index])
                start = index + 1
            }
            lineStart = index + 1
        }
        if start < bytes.count { reads.append(bytes[start...]) }
        return reads
    }

    /// One read per event with an empty read before, between and after them (a transport may
    /// hand over an empty buffer).
    static func perEventWithEmptyReads(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        [bytes[0..<0]] + perEvent(bytes).flatMap { [$0, bytes[0..<0]] }
    }

    static let seeds: [UInt64] = [1, 2, 3, 42, 1234, 0xDEAD_BEEF]

    /// Whole, every fixed size from 1 to 64, one read per event (also with empty reads around
    /// them), and the seeded random splits (which have empty reads too).
    static func all(_ bytes: [UInt8]) -> [(name: String, reads: [ArraySlice<UInt8>])] {
        var splits: [(name: String, reads: [ArraySlice<UInt8>])] = [("whole", whole(bytes))]
        for size in 1...64 { splits.append(("\(size)-byte reads", fixed(bytes, size: size))) }
        splits.append(("one read per event", perEvent(bytes)))
        splits.append(("one read per event, empty reads between", perEventWithEmptyReads(bytes)))
        for seed in seeds { splits.append(("random reads, seed \(seed)", random(bytes, seed: seed))) }
        return splits
    }
}

extension Fixture {
    /// `upstream.sse`'s events (one element per SSE event, blank line included).
    func upstreamEvents() throws -> [[UInt8]] {
        Splits.perEvent(try bytes("upstream.sse")).map(Array.init)
    }

    /// The longest run of leading upstream events whose relay output holds no content chunk (the
    /// role chunk, comments, pings, block starts…), judged by feeding them to a fresh relay.
    func eventsBeforeContent(provider: Provider) throws -> [UInt8] {
        let events = try upstreamEvents()
        var prefix: [UInt8] = []
        for event in events {
            let run = CommitRun(provider: provider, chat: try chatRequest(), reads: [(prefix + event)[...]],
                                transportFailure: .upstreamError("probe"))
            if ClientStream.hasContent(run.produced) { break }
            prefix += event
        }
        return prefix
    }

    /// The first upstream event that carries the provider's error (its text mentions "error").
    func firstErrorEvent() throws -> [UInt8] {
        guard let event = try upstreamEvents().first(where: { String(decoding: $0, as: UTF8.self).contains("error") }) else {
            throw FixtureMissing(description: "no error event in \(directory.lastPathComponent)")
        }
        return event
    }
}

extension StreamCommit.Action {
    /// Short, for messages: `hold`, `open(312)`, `send(88)`, `abandon`.
    var summary: String {
        switch self {
        case .hold: return "hold"
        case .open(let bytes): return "open(\(bytes.count))"
        case .send(let bytes): return "send(\(bytes.count))"
        case .abandon: return "abandon"
        }
    }
}

struct FixtureMissing: Error, CustomStringConvertible {
    var description: String
}
