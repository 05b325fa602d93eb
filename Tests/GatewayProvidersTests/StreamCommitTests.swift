import Foundation
import GatewayCore
@testable import GatewayProviders
import Testing

/// `StreamCommit` on every provider's stream fixtures, driven as the request handler drives it
/// (`CommitRun`): the answer's head is held until the first content chunk (or the stream's end);
/// a failure before it abandons the attempt (nothing written, the request can fall back); a
/// failure after it becomes a final error event and `[DONE]`. The decision and the bytes written
/// must not depend on how the provider's body was split into reads.
///
/// "Content" is judged here from the chunks the client would get (`ClientStream.hasContent`:
/// non-empty `content` or `refusal`, or tool calls), independently of the relay's own judgement
/// (`StreamRelay.hasContent`), which `StreamCommit` goes by. (An earlier rule counted chunks,
/// "the second one is content"; OpenAI's first chunk can carry content, which these tests caught.)
@Suite("Stream commit")
struct StreamCommitTests {
    static let streamCases: [FixtureCase] = ProviderAdapterFixtureTests.chatCases.filter { $0.fixture.exists("upstream.sse") }
    static let midstreamErrorCases = streamCases.filter { $0.name == "stream_midstream_error" }
    static let truncatedCases = streamCases.filter { $0.name == "stream_truncated" }

    // MARK: - Checks shared by the tests

    /// What holds for every run, whatever the stream: one `open` at most and nothing written before
    /// it; nothing written after an `abandon`; a committed answer is everything the relay produced,
    /// in order; an abandoned one wrote nothing; every run ends decided.
    static func expectWellFormed(_ run: CommitRun, _ label: String) {
        #expect(run.openSteps.count <= 1, "opened \(run.openSteps.count) times (\(label))")
        if let open = run.openSteps.first {
            for step in run.steps[..<open] {
                #expect(step.action == .hold, "\(step.action) before open (\(label))")
            }
            for step in run.steps[open...].dropFirst() {
                #expect(step.action != .abandon, "abandoned after open (\(label))")
                #expect(step.action == (step.produced.isEmpty ? .hold : .send(step.produced)), "after open, each read is sent as produced (\(label))")
            }
        }
        if let abandon = run.firstAbandon {
            for step in run.steps[abandon...] {
                #expect(step.action == .hold || step.action == .abandon, "\(step.action) after abandon (\(label))")
            }
            #expect(run.steps[..<abandon].allSatisfy { $0.action == .hold }, "wrote before abandoning (\(label))")
        }
        #expect(run.decision != .undecided, "neither opened nor abandoned after the body ended (\(label))")
        #expect(run.commit.isCommitted == (run.decision == .committed), "isCommitted disagrees with the actions (\(label))")
        switch run.decision {
        case .committed:
            #expect(run.written == run.produced, "committed, yet the client bytes are not the relay's output (\(label))")
            #expect(ClientStream.events(run.written).allSatisfy { $0.hasPrefix("data: ") }, "\(label)")
            #expect(ClientStream.payloads(run.written).last == "[DONE]", "a committed answer ends with [DONE] (\(label))")
        case .abandoned:
            #expect(run.written.isEmpty, "abandoned after writing \(run.written.count) bytes (\(label))")
            #expect(run.relay.error != nil, "abandoned without a failure (\(label))")
        case .undecided:
            break
        }
    }

    /// The commit rule with content judged from the chunks: the actions `run` should have taken.
    static func referenceActions(_ run: CommitRun) -> [StreamCommit.Action] {
        var committed = false
        var sawContent = false
        var held: [UInt8] = []
        return run.steps.map { step in
            if committed { return step.produced.isEmpty ? .hold : .send(step.produced) }
            sawContent = sawContent || ClientStream.hasContent(step.produced)
            if step.failed && !sawContent { return .abandon }
            held += step.produced
            guard !held.isEmpty, sawContent || step.complete else { return .hold }
            committed = true
            defer { held = [] }
            return .open(held)
        }
    }

    /// The rule, checked on one run: the same actions as the reference; the answer opens with the
    /// first content chunk, at the read that produced it (not before, not after); an abandoned
    /// attempt had no content. Returns what is wrong (empty when nothing is), so a known issue is
    /// reported once per case rather than once per split.
    static func ruleViolations(_ run: CommitRun, _ label: String) -> [String] {
        var violations: [String] = []
        if run.steps.map(\.action) != referenceActions(run) {
            violations.append("\(label): actions \(run.steps.map(\.action.summary)), the rule says \(referenceActions(run).map(\.summary))")
        }
        let firstContent = ClientStream.payloads(run.produced).first(where: ClientStream.isContent)
        switch run.decision {
        case .committed:
            let open = run.openSteps[0]
            let opening = run.openBytes ?? []
            let heldBefore = Array(opening.dropLast(run.steps[open].produced.count))
            if ClientStream.hasContent(heldBefore) { violations.append("\(label): content was held back past its read") }
            if !ClientStream.hasContent(run.steps[open].produced) && !(run.steps[open].complete && !run.steps[open].failed) {
                violations.append("\(label): opened at read \(open) without content, before the end")
            }
            if let firstContent, !ClientStream.payloads(opening).contains(firstContent) {
                violations.append("\(label): the opening lacks the first content chunk")
            }
        case .abandoned:
            let abandon = run.firstAbandon!
            if ClientStream.hasContent(run.steps[...abandon].flatMap(\.produced)) {
                violations.append("\(label): abandoned an answer that had content")
            }
        case .undecided:
            violations.append("\(label): undecided")
        }
        return violations
    }

    static func expectFollowsTheRule(_ runs: [(String, CommitRun)], sourceLocation: SourceLocation = #_sourceLocation) {
        let violations = runs.flatMap { ruleViolations($0.1, $0.0) }
        #expect(violations.isEmpty, "\(violations.count) violations of the commit rule; the first: \(violations.prefix(3))",
                sourceLocation: sourceLocation)
    }

    static func run(_ test: FixtureCase, _ reads: [ArraySlice<UInt8>], failure: GatewayError? = nil) throws -> CommitRun {
        CommitRun(provider: test.provider, chat: try test.fixture.chatRequest(), reads: reads, transportFailure: failure)
    }

    // MARK: - 1. Split invariance

    @Test("The client bytes and the decision do not depend on how the body was split", arguments: streamCases)
    func splitInvariance(_ test: FixtureCase) throws {
        let upstream = try test.fixture.bytes("upstream.sse")
        let golden = try test.fixture.bytes("client.sse")
        let baseline = try Self.run(test, Splits.whole(upstream))
        Self.expectWellFormed(baseline, "whole")
        // The golden is what the relay produces; it reaches the client only if the answer was committed.
        #expect(baseline.produced == golden)
        #expect(baseline.written == (baseline.decision == .committed ? golden : []))

        let splits = Splits.all(upstream)
        #expect(splits.count == 1 + 64 + 2 + Splits.seeds.count)
        #expect(splits.contains { $0.reads.count > 1 && $0.reads.contains(where: \.isEmpty) }, "a split with empty reads")
        for (name, reads) in splits {
            #expect(reads.flatMap { $0 } == upstream, "the split \(name) loses bytes")
            let run = try Self.run(test, reads)
            Self.expectWellFormed(run, name)
            #expect(run.decision == baseline.decision, "\(name): \(run.decision), whole: \(baseline.decision)")
            #expect(run.written == baseline.written, "\(name): different client bytes")
            #expect(run.produced == baseline.produced, "\(name): different relay output")
        }
    }

    // MARK: - 2. Commit point

    @Test("The answer opens once, with its first content chunk", arguments: streamCases)
    func commitPoint(_ test: FixtureCase) throws {
        let upstream = try test.fixture.bytes("upstream.sse")
        let runs = try Splits.all(upstream).map { ($0.name, try Self.run(test, $0.reads)) }

        // Structural, for every fixture: no known issue here.
        for (name, run) in runs {
            Self.expectWellFormed(run, name)
            if ClientStream.hasContent(run.produced) && run.relay.error == nil {
                #expect(run.openSteps.count == 1, "\(name)")
                #expect(ClientStream.hasContent(run.openBytes ?? []), "\(name): opened without content")
            }
        }

        Self.expectFollowsTheRule(runs)
    }

    // MARK: - 3. Failures before and after content

    /// Bodies that fail before any content, derived from each provider's fixtures.
    enum EarlyFailure: String, CaseIterable, CustomTestStringConvertible {
        /// The events of `stream_usage` before its content, then `stream_midstream_error`'s error event.
        case errorAfterTheLeadingEvents = "leading events, then the provider's error event"
        /// The provider's error event as the first thing in the body.
        case errorFirst = "the provider's error event first"
        /// The events of `stream_usage` before its content, then the body ends.
        case endsBeforeContent = "leading events, then the body ends"
        /// The events of `stream_usage` before its content, then the connection fails.
        case transportFailureBeforeContent = "leading events, then a transport failure"
        case emptyBody = "an empty body"
        case transportFailureFirst = "a transport failure before any byte"

        var testDescription: String { rawValue }

        func body(_ provider: Provider) throws -> (upstream: [UInt8], failure: GatewayError?) {
            let usage = Fixture(provider: provider.rawValue, name: "stream_usage")
            let midstream = Fixture(provider: provider.rawValue, name: "stream_midstream_error")
            let reset = GatewayError.upstreamError("\(provider.rawValue): connection reset by peer")
            switch self {
            case .errorAfterTheLeadingEvents:
                return (try usage.eventsBeforeContent(provider: provider) + midstream.firstErrorEvent(), nil)
            case .errorFirst: return (try midstream.firstErrorEvent(), nil)
            case .endsBeforeContent: return (try usage.eventsBeforeContent(provider: provider), nil)
            case .transportFailureBeforeContent: return (try usage.eventsBeforeContent(provider: provider), reset)
            case .emptyBody: return ([], nil)
            case .transportFailureFirst: return ([], reset)
            }
        }
    }

    @Test("A failure before any content abandons the attempt", arguments: Provider.allCases, EarlyFailure.allCases)
    func failureBeforeContentAbandons(_ provider: Provider, _ failure: EarlyFailure) throws {
        let (upstream, transportFailure) = try failure.body(provider)
        let chat = try Fixture(provider: provider.rawValue, name: "stream_usage").chatRequest()
        for (name, reads) in Splits.all(upstream) {
            let run = CommitRun(provider: provider, chat: chat, reads: reads, transportFailure: transportFailure)
            Self.expectWellFormed(run, name)
            // The body really failed, before any content, and the relay wrote its error event…
            #expect(run.relay.error != nil, "\(name): the relay did not fail")
            #expect(!ClientStream.hasContent(run.produced), "\(name): the derived body has content")
            #expect(ClientStream.payloads(run.produced).suffix(2).first.map(ClientStream.isError) == true, "\(name)")
            // …which the client never sees: the request can fall back.
            #expect(run.decision == .abandoned, "\(name): \(run.decision)")
            #expect(run.written.isEmpty, "\(name)")
            #expect(run.steps.last?.action == .abandon, "\(name)")
        }
    }

    @Test("The role chunk alone is not content: role, then an error, abandons", arguments: Provider.allCases)
    func roleChunkThenErrorAbandons(_ provider: Provider) throws {
        let (upstream, _) = try EarlyFailure.errorAfterTheLeadingEvents.body(provider)
        let chat = try Fixture(provider: provider.rawValue, name: "stream_usage").chatRequest()
        for reads in [Splits.whole(upstream), Splits.perEvent(upstream), Splits.fixed(upstream, size: 1)] {
            let run = CommitRun(provider: provider, chat: chat, reads: reads)
            // The leading events made exactly one chunk, the role chunk, before the error event.
            let chunks = ClientStream.chunkPayloads(run.produced)
            #expect(chunks.count == 1, "\(chunks)")
            #expect(chunks.first.flatMap(ClientStream.object)?["choices"]?[0]?["delta"]?["role"]?.stringValue == "assistant")
            #expect(run.relay.payloadEvents == 1)
            #expect(run.relay.error != nil)
            #expect(run.decision == .abandoned)
            #expect(run.written.isEmpty)
        }
    }

    @Test("A mid-stream error after content is the answer's last event", arguments: midstreamErrorCases)
    func midstreamErrorAfterContentCommits(_ test: FixtureCase) throws {
        let upstream = try test.fixture.bytes("upstream.sse")
        let golden = try test.fixture.bytes("client.sse")
        let whole = try Self.run(test, Splits.whole(upstream))
        #expect(whole.relay.error != nil, "the fixture's error event ends the stream")
        #expect(ClientStream.hasContent(whole.produced), "the fixture has content before its error")

        let runs = try Splits.all(upstream).map { ($0.name, try Self.run(test, $0.reads)) }
        for (name, run) in runs {
            Self.expectWellFormed(run, name)
            #expect(run.decision == whole.decision, "\(name)")
        }
        let abandoned = runs.filter { $0.1.decision != .committed }.map(\.0)
        #expect(abandoned.isEmpty, "abandoned although content came first: \(abandoned.prefix(5)) (\(abandoned.count) splits)")
        // Every split wrote the same bytes (split invariance), so one look at the bytes will do.
        #expect(whole.decision == .committed)
        #expect(whole.written == golden)
        let payloads = ClientStream.payloads(whole.written)
        #expect(payloads.last == "[DONE]")
        #expect(payloads.dropLast().last.map(ClientStream.isError) == true, "no error event before [DONE]")
        #expect(payloads.filter(ClientStream.isError).count == 1)
        #expect(String(decoding: whole.written, as: UTF8.self).hasSuffix("}\n\ndata: [DONE]\n\n"))
        // The content arrived before the error, and nothing the provider sent after it did.
        let errorIndex = payloads.firstIndex(where: ClientStream.isError) ?? 0
        #expect(payloads[..<errorIndex].contains(where: ClientStream.isContent))
        #expect(!String(decoding: whole.written, as: UTF8.self).contains("ignored"))
    }

    /// The connection fails after every prefix of every stream fixture: committed exactly when
    /// content came before the cut (then the last events are the error and `[DONE]`), abandoned
    /// otherwise; the same whether the prefix came in one read or in many.
    @Test("A transport failure at any byte", arguments: streamCases)
    func transportFailureAtEveryByte(_ test: FixtureCase) throws {
        let upstream = try test.fixture.bytes("upstream.sse")
        let whole = try Self.run(test, Splits.whole(upstream))
        let failure = GatewayError.upstreamError("\(test.provider.rawValue): connection reset by peer")
        // Within an event the relay only buffers, so most cuts repeat the previous cut's run
        // exactly; those are checked once.
        var runs: [(cut: Int, run: CommitRun, openBeforeFailure: Bool)] = []
        for cut in 0...upstream.count {
            let prefix = Array(upstream[..<cut])
            let run = try Self.run(test, Splits.whole(prefix), failure: failure)
            if let previous = runs.last, previous.run.steps == run.steps { continue }
            Self.expectWellFormed(run, "cut at \(cut)")
            let split = try Self.run(test, Splits.random(prefix, seed: UInt64(cut) &+ 7), failure: failure)
            Self.expectWellFormed(split, "cut at \(cut), random reads")
            #expect(split.decision == run.decision, "cut at \(cut)")
            #expect(split.written == run.written, "cut at \(cut)")
            // The relay after the reads, before the failure (steps: the one read, then the failure).
            let openBeforeFailure = !run.steps[0].complete
            if openBeforeFailure {
                #expect(run.relay.error?.message.contains("connection reset by peer") == true, "cut at \(cut)")
                if run.decision == .committed {
                    // Still streaming when the connection failed: the answer ends with our error, then [DONE].
                    let payloads = ClientStream.payloads(run.written)
                    #expect(payloads.last == "[DONE]", "cut at \(cut)")
                    #expect(payloads.dropLast().last?.contains("connection reset by peer") == true, "cut at \(cut)")
                }
            } else {
                // The reads had ended the stream already ([DONE] or the provider's error): the
                // failure changes nothing.
                #expect(run.steps.last?.produced.isEmpty == true, "cut at \(cut)")
            }
            runs.append((cut, run, openBeforeFailure))
        }
        // The distinct cuts reach the whole body's output (the last one read everything).
        #expect(runs.count >= 2)
        #expect(runs.last?.run.steps.dropLast().flatMap(\.produced) == whole.steps[0].produced)
        // The whole body, then the failure: if the body's events had ended the stream, the same answer.
        let last = try Self.run(test, Splits.whole(upstream), failure: failure)
        if whole.steps[0].complete {
            #expect(last.written == whole.written)
            #expect(last.decision == whole.decision)
        }

        let wrongDecisions = runs.filter { cut, run, openBeforeFailure in
            openBeforeFailure && run.decision != (ClientStream.hasContent(run.produced) ? .committed : .abandoned)
        }.map { "cut at \($0.cut): \($0.run.decision)" }
        #expect(wrongDecisions.isEmpty, "\(wrongDecisions.count) cuts with the wrong decision, the first: \(wrongDecisions.prefix(5))")
        Self.expectFollowsTheRule(runs.map { ("cut at \($0.cut)", $0.run) })
    }

    // MARK: - 4. Truncated streams

    /// A body that ends without the provider's terminal event: the relay ends it with an error
    /// event (the translators' "ended the stream before …", or OpenAI's malformed last event). The
    /// fixtures all have content before the cut, so the answer is committed and ends with that
    /// error and `[DONE]`.
    @Test("A truncated stream with content ends with the relay's error", arguments: truncatedCases)
    func truncatedStream(_ test: FixtureCase) throws {
        let upstream = try test.fixture.bytes("upstream.sse")
        let golden = try test.fixture.bytes("client.sse")
        let whole = try Self.run(test, Splits.whole(upstream))
        let error = try #require(whole.relay.error, "a truncated body is an error")
        #expect(error.status == 502)
        #expect(whole.produced == golden)
        let payloads = ClientStream.payloads(golden)
        #expect(Array(payloads.suffix(2)) == [String(decoding: error.body.serialized(), as: UTF8.self), "[DONE]"])
        #expect(ClientStream.hasContent(golden))
        // The error came from the body's end (`finish`), not from a read: every read held or opened.
        #expect(whole.steps.last?.failed == true)
        #expect(whole.steps.dropLast().allSatisfy { !$0.failed })

        for (name, reads) in Splits.all(upstream) {
            let run = try Self.run(test, reads)
            Self.expectWellFormed(run, name)
            #expect(run.decision == whole.decision, "\(name)")
            #expect(run.written == whole.written, "\(name)")
        }
        #expect(whole.decision == .committed)
        #expect(whole.written == golden)
        #expect(whole.openSteps.first == 0, "the first read had content and should have opened")
    }

    // MARK: - Streams that complete without content

    /// Provider bodies that end properly but carry no content: committed at the end (an empty
    /// answer, with its finish chunk), never abandoned.
    static func emptyAnswer(_ provider: Provider) -> String {
        switch provider {
        case .openai:
            return """
                data: {"id":"chatcmpl-E","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

                data: {"id":"chatcmpl-E","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

                data: [DONE]


                """
        case .anthropic:
            return """
                event: message_start
                data: {"type":"message_start","message":{"id":"msg_E","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}

                event: message_delta
                data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":1}}

                event: message_stop
                data: {"type":"message_stop"}


                """
        case .google:
            return "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],"
                + "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"e-1\"}\r\n\r\n"
        case .mistral:
            return """
                data: {"id":"e1","object":"chat.completion.chunk","created":1767225600,"model":"mistral-small-2503","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

                data: [DONE]


                """
        case .cohere:
            return """
                event: message-start
                data: {"id":"e-1","type":"message-start","delta":{"message":{"role":"assistant","content":[]}}}

                event: message-end
                data: {"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"tokens":{"input_tokens":3,"output_tokens":0}}}}


                """
        }
    }

    @Test("A stream that completes without content commits at its end", arguments: Provider.allCases)
    func completeWithoutContent(_ provider: Provider) throws {
        let upstream = Array(Self.emptyAnswer(provider).utf8)
        let chat = try Fixture(provider: provider.rawValue, name: "stream_text").chatRequest()
        let whole = CommitRun(provider: provider, chat: chat, reads: Splits.whole(upstream))
        #expect(whole.relay.error == nil, "\(String(describing: whole.relay.error))")
        #expect(whole.relay.isComplete)
        #expect(!ClientStream.hasContent(whole.produced))
        var runs: [(String, CommitRun)] = []
        for (name, reads) in Splits.all(upstream) {
            let run = CommitRun(provider: provider, chat: chat, reads: reads)
            Self.expectWellFormed(run, name)
            #expect(run.decision == .committed, "\(name)")
            #expect(run.written == whole.written, "\(name)")
            let payloads = ClientStream.payloads(run.written)
            #expect(payloads.first.flatMap(ClientStream.object)?["choices"]?[0]?["delta"]?["role"]?.stringValue == "assistant", "\(name)")
            #expect(payloads.contains { ClientStream.object($0)?["choices"]?[0]?["finish_reason"]?.stringValue == "stop" }, "\(name)")
            runs.append((name, run))
        }
        // "Hold until the first content chunk or the stream's end": no content, so the end.
        let early = runs.filter { _, run in run.openSteps.first.map { !run.steps[$0].complete } ?? true }.map(\.0)
        #expect(early.isEmpty, "\(early.count) splits opened before the end, the first: \(early.prefix(5))")
    }

    /// The other side of counting: a chunk that is not content, as the second chunk, then an error.
    /// OpenAI-compatible streams can carry such chunks before any content (Azure's
    /// `prompt_filter_results` chunk with `choices: []`; a bare finish chunk).
    @Test("Chunks without content, then an error, abandon (OpenAI pass-through)")
    func nonContentChunksThenErrorAbandon() throws {
        let chat = try Fixture(provider: "openai", name: "stream_text").chatRequest()
        let role = #"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#
        let filter = #"data: {"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#
        let error = #"data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#
        let upstream = Array([filter, role, error].map { $0 + "\n\n" }.joined().utf8)
        let whole = CommitRun(provider: .openai, chat: chat, reads: Splits.whole(upstream))
        #expect(whole.relay.error != nil)
        #expect(!ClientStream.hasContent(whole.produced))
        #expect(whole.relay.payloadEvents == 2)
        for (name, reads) in Splits.all(upstream) {
            let run = CommitRun(provider: .openai, chat: chat, reads: reads)
            Self.expectWellFormed(run, name)
            #expect(run.decision == whole.decision, "\(name)")
        }
        #expect(whole.decision == .abandoned, "no content came, yet the answer (role chunk and error) was sent")
    }

    // MARK: - 5. The state machine on its own

    static let role = Array("data: {\"role\"}\n\n".utf8)
    static let content = Array("data: {\"content\"}\n\n".utf8)
    static let errorEvent = Array("data: {\"error\"}\n\n".utf8)
    static let done = Array("data: [DONE]\n\n".utf8)

    @Test func nothingProducedHolds() {
        var commit = StreamCommit()
        #expect(commit.next([], contentSeen: false, failed: false, complete: false) == .hold)
        #expect(!commit.isCommitted)
        // Still nothing after a read that produced nothing either.
        #expect(commit.next([], contentSeen: false, failed: false, complete: false) == .hold)
        #expect(commit.next(Self.content, contentSeen: true, failed: false, complete: false) == .open(Self.content))
    }

    @Test func roleChunkIsHeldUntilContent() {
        var commit = StreamCommit()
        #expect(commit.next(Self.role, contentSeen: false, failed: false, complete: false) == .hold)
        #expect(!commit.isCommitted)
        #expect(commit.next([], contentSeen: false, failed: false, complete: false) == .hold)
        #expect(commit.next(Self.content, contentSeen: true, failed: false, complete: false) == .open(Self.role + Self.content))
        #expect(commit.isCommitted)
        // Later output is sent as it comes, without what was held before.
        #expect(commit.next(Self.content, contentSeen: true, failed: false, complete: false) == .send(Self.content))
        #expect(commit.next([], contentSeen: true, failed: false, complete: false) == .hold)
        #expect(commit.next(Self.done, contentSeen: true, failed: false, complete: true) == .send(Self.done))
    }

    @Test func roleChunkThenTheEndCommitsAtTheEnd() {
        var commit = StreamCommit()
        #expect(commit.next(Self.role, contentSeen: false, failed: false, complete: false) == .hold)
        #expect(commit.next(Self.done, contentSeen: false, failed: false, complete: true) == .open(Self.role + Self.done))
        #expect(commit.isCommitted)
    }

    @Test func heldBytesGoOutWhenTheEndProducesNothingMore() {
        var commit = StreamCommit()
        #expect(commit.next(Self.role, contentSeen: false, failed: false, complete: false) == .hold)
        #expect(commit.next([], contentSeen: false, failed: false, complete: true) == .open(Self.role))
    }

    /// What counts as content, chunk by chunk (the relay's judgement that the rule goes by).
    @Test(arguments: [
        (#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#, false),
        (#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#, true),
        (#"{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}"#, false),
        (#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#, false),
        (#"{"choices":[{"index":0,"delta":{"refusal":"No."}}]}"#, true),
        (#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#, true),
        (#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#, false),
    ])
    func whatCountsAsContent(chunk: String, content: Bool) {
        #expect(StreamRelay.carriesContent(Array(chunk.utf8)) == content, "\(chunk)")
    }

    @Test func bareDoneCommits() {
        var commit = StreamCommit()
        #expect(commit.next(Self.done, contentSeen: false, failed: false, complete: true) == .open(Self.done))
        #expect(commit.isCommitted)
    }

    @Test func roleAndContentInOneReadOpenAtOnce() {
        var commit = StreamCommit()
        #expect(commit.next(Self.role + Self.content, contentSeen: true, failed: false, complete: false) == .open(Self.role + Self.content))
    }

    @Test func errorBeforeAnythingAbandons() {
        var commit = StreamCommit()
        #expect(commit.next(Self.errorEvent + Self.done, contentSeen: false, failed: true, complete: true) == .abandon)
        #expect(!commit.isCommitted)
        // Whatever follows (the relay produces nothing more), nothing is written.
        #expect(commit.next([], contentSeen: false, failed: true, complete: true) == .abandon)
    }

    @Test func errorAfterTheRoleChunkAbandonsAndDropsIt() {
        var commit = StreamCommit()
        #expect(commit.next(Self.role, contentSeen: false, failed: false, complete: false) == .hold)
        #expect(commit.next(Self.errorEvent + Self.done, contentSeen: false, failed: true, complete: true) == .abandon)
        #expect(!commit.isCommitted)
    }

    @Test func errorAfterContentIsSent() {
        var commit = StreamCommit()
        #expect(commit.next(Self.role + Self.content, contentSeen: true, failed: false, complete: false) == .open(Self.role + Self.content))
        #expect(commit.next(Self.errorEvent + Self.done, contentSeen: true, failed: true, complete: true) == .send(Self.errorEvent + Self.done))
        #expect(commit.isCommitted)
        #expect(commit.next([], contentSeen: true, failed: true, complete: true) == .hold)
    }

    @Test func contentAndErrorInTheSameReadOpenWithBoth() {
        var commit = StreamCommit()
        #expect(commit.next(Self.role, contentSeen: false, failed: false, complete: false) == .hold)
        let tail = Self.content + Self.errorEvent + Self.done
        #expect(commit.next(tail, contentSeen: true, failed: true, complete: true) == .open(Self.role + tail))
        #expect(commit.isCommitted)
    }
}
