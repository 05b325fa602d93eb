import Dispatch
import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream

/// Relays one provider's SSE stream to the client as OpenAI chunks, one flush per upstream read.
/// `StreamCommit` decides when the answer becomes the client's: a failure before the first
/// content chunk throws, so the next target can answer instead; after it, a failure becomes a
/// final error event and `[DONE]`. The usage is metered (and the answer stored in the cache) when
/// the provider says it is done, before `[DONE]` reaches the client.
struct StreamDelivery {
    let call: ProviderCall
    let chat: ChatRequest
    /// Prompt tokens to charge when the provider's usage never arrives (the client left early).
    let promptEstimate: Int
    let session: CacheSession?
    let store: any RequestStore

    /// `meter` records the answer's usage and settles the limits (called once).
    func run(_ response: UpstreamResponse, outcome: inout RequestOutcome, ticket: inout AuditTicket, writer: any ResponseWriter,
             meter: (TokenUsage?, String?, inout RequestOutcome) -> Void) async throws {
        let target = call.target
        let provider = target.provider.rawValue
        var relay = StreamRelay(providerName: provider, translator: target.adapter.makeStreamTranslator(for: chat),
                                secrets: [target.settings.apiKey.value])
        var commit = StreamCommit()
        var capture = AnswerCapture(enabled: session?.storesAnswer == true, limit: session?.maxEntryBytes ?? 0)
        var metered = false

        func meterOnce(_ usage: TokenUsage?) {
            guard !metered else { return }
            metered = true
            meter(usage, relay.modelServed, &outcome)
        }

        func emit(_ produced: [UInt8]) async throws {
            let bytes: [UInt8]
            switch commit.next(produced, relay: relay) {
            case .hold, .abandon:
                return
            case .open(let held):
                try await AnswerWriter.streamHead(provider: provider, outcome: &outcome, ticket: &ticket, store: store, writer: writer)
                outcome.timeToFirstTokenMs = outcome.elapsedMs
                bytes = held
            case .send(let more):
                bytes = more
            }
            capture.append(bytes)
            if relay.isComplete && relay.error == nil {
                meterOnce(relay.usage)
                if let captured = capture.bytes {
                    session?.save(CachedAnswer(provider: provider, modelServed: relay.modelServed, stream: true, body: captured))
                }
            }
            try await writer.writeBody(bytes, flush: true)
        }

        do {
            do {
                try await call.upstream.readBody(response) { body in
                    var chunks = body.makeAsyncIterator()
                    do {
                        while let chunk = try await chunks.next() {
                            try await emit(relay.feed(chunk))
                            // After an error event nothing more is read; after [DONE] the rest is
                            // drained so the connection can be reused.
                            if relay.error != nil { break }
                        }
                        try await emit(relay.finish())
                    } catch let failure as UpstreamFailure where !Task.isCancelled {
                        // (A cancelled read is the watchdog's doing; readBody reports it below.)
                        try await emit(relay.fail(failure.gatewayError(provider: provider)))
                    } catch let disconnected as ClientDisconnected {
                        // OpenAI and Mistral send usage only in the stream's last chunk: a client
                        // that leaves right after the content must not leave the answer unmetered.
                        await Self.drainForUsage(&chunks, relay: &relay)
                        throw disconnected
                    }
                }
            } catch let failure as UpstreamFailure {
                // The idle or total deadline stopped the read.
                try await emit(relay.fail(failure.gatewayError(provider: provider)))
            }
        } catch let disconnected as ClientDisconnected {
            // The provider did answer; the row lists that call before saying the client left.
            call.record(status: response.status, error: nil, outcome: &outcome)
            meterOnce(relay.usage ?? Self.estimatedUsage(promptEstimate: promptEstimate, relay: relay))
            throw disconnected
        }
        call.record(status: response.status, error: relay.error, outcome: &outcome)
        guard commit.isCommitted else {
            throw relay.error ?? GatewayError.upstreamError("\(provider) ended the stream without any event.")
        }
        // Usage is metered from what arrived, whether or not the client asked for it.
        meterOnce(relay.usage)
        if let error = relay.error { outcome.errorCode = error.auditCode }
    }

    /// After the client left: how much more of the provider's stream is read, looking for its
    /// usage. Enough for the final chunks of an answer that was complete; little enough that a
    /// client leaving mid-generation does not keep a long answer running.
    static let drainLimitBytes = 256 * 1024
    static let drainLimitNanoseconds: UInt64 = 2_000_000_000

    /// Feeds the rest of the stream to the relay (its output goes nowhere) until the usage is
    /// known, the stream ends, or the byte or time bound is reached.
    static func drainForUsage(_ chunks: inout UpstreamBody.AsyncIterator, relay: inout StreamRelay) async {
        let deadline = DispatchTime.now().uptimeNanoseconds &+ drainLimitNanoseconds
        var drained = 0
        while relay.usage == nil && !relay.isFinished && drained < drainLimitBytes && DispatchTime.now().uptimeNanoseconds < deadline {
            guard let chunk = try? await chunks.next() else { break }
            drained += chunk.count
            _ = relay.feed(chunk)
        }
    }

    /// The provider's usage never came (the client left and the stream did not end in time): the
    /// answer was delivered, so it is charged on an estimate instead of as free — the prompt from
    /// the body's size, the completion one token per content chunk sent.
    static func estimatedUsage(promptEstimate: Int, relay: StreamRelay) -> TokenUsage {
        TokenUsage(promptTokens: max(1, promptEstimate), completionTokens: max(1, relay.payloadEvents - 1))
    }
}

/// A copy of the bytes sent, kept for the cache; an answer over the entry limit is not kept at all.
struct AnswerCapture {
    private(set) var bytes: [UInt8]?
    private let limit: Int

    init(enabled: Bool, limit: Int) {
        bytes = enabled ? [] : nil
        self.limit = limit
    }

    mutating func append(_ more: [UInt8]) {
        guard bytes != nil else { return }
        if bytes!.count + more.count > limit { bytes = nil } else { bytes!.append(contentsOf: more) }
    }
}
