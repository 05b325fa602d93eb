import Foundation
import Dispatch
import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream

/// POST /v1/chat/completions: validate, answer from the cache or pick the targets, translate,
/// send (falling back down the chain), translate back.
struct ChatCompletionsHandler: RouteHandler {
    let application: GatewayApplication

    func handle(_ request: HTTPRequest, key: AuthenticatedKey, context: RequestContext, writer: any ResponseWriter) async throws {
        var chat = try ChatRequest.parse(request.body)
        chat.responseID = "chatcmpl-" + context.requestID.dropFirst("req_".count)
        context.audit.modelRequested = chat.model
        context.audit.user = chat.user
        context.audit.stream = chat.stream
        let requested = try RequestedTargets.read(request, model: chat.model, allowFallback: true, context: context)
        let meter = RequestMeter(application: application, key: key, context: context)
        let estimatedTokens = RequestLimiter.estimateTokens(bodyBytes: request.body.count, maxTokens: chat.maxTokens)
        guard case .miss(let cache) = try await application.cacheStep(
            request, body: chat.body, provider: requested.primary.provider, key: key, estimatedTokens: estimatedTokens, meter: meter,
            context: context, writer: writer)
        else { return }
        defer { cache?.finish() }
        let chain = try TargetChain.resolve(requested, key: key, store: application.store)
        try application.priceBook.requirePrice(for: chain.primary.model, key: key)

        try meter.admit(estimatedTokens: estimatedTokens)
        var providerAnswered = false
        defer { meter.finish(providerAnswered: providerAnswered) }

        let runner = FallbackRunner(chain: chain, breaker: application.breaker, projectID: key.project.id, context: context)
        try await runner.run { target in
            let targetChat = chat.retargeted(model: target.model)
            let upstreamRequest: UpstreamRequest
            do {
                try application.priceBook.requirePrice(for: target.model, key: key)
                upstreamRequest = try target.adapter.makeChatRequest(targetChat, settings: target.settings)
            } catch let error as GatewayError {
                throw TargetUnusable(error: error)
            }
            let call = ProviderCall(application: application, target: target, context: context)
            let response = try await call.send(upstreamRequest)
            providerAnswered = true
            if chat.stream {
                try await relayStream(response, call: call, chat: targetChat, promptEstimate: request.body.count / 4, meter: meter,
                                      cache: cache, context: context, writer: writer)
                return
            }
            let body = try await call.body(of: response)
            let result = try call.decode(status: response.status) { () throws(GatewayError) in
                try target.adapter.decodeChatResponse(body, for: targetChat)
            }
            try await deliverAnswer(result.body, usage: result.usage, modelServed: result.modelServed, target: target,
                                    meter: meter, cache: cache, context: context, writer: writer)
        }
    }

    /// Relays a provider's SSE stream as OpenAI chunks, one flush per upstream read. The response
    /// head waits for the first content chunk: a failure before it throws, so the next target can
    /// answer instead. Once the first byte has gone out, failures become a final error event and
    /// `[DONE]`.
    private func relayStream(_ response: UpstreamResponse, call: ProviderCall, chat: ChatRequest, promptEstimate: Int, meter: RequestMeter,
                             cache: CacheSession?, context: RequestContext, writer: any ResponseWriter) async throws {
        let target = call.target
        let state = RelayState(StreamRelay(providerName: target.provider.rawValue, translator: target.adapter.makeStreamTranslator(for: chat),
                                           secrets: [target.settings.apiKey.value]),
                               capturing: cache?.storesAnswer == true, captureLimit: cache?.maxEntryBytes ?? 0)

        /// Writes what the relay produced. The head and the opening role chunk wait for the first
        /// chunk with content (or the end): a provider that fails before producing any, even after
        /// its HTTP 200, has sent the client nothing, and the attempt fails over. Whether content
        /// came first is a matter of the events, not of how the bytes were split into reads.
        func emit(_ produced: [UInt8]) async throws {
            guard !produced.isEmpty else { return }
            var out = produced
            if !state.committed {
                // The role chunk is one payload; an error event is not counted.
                let hasContent = state.relay.payloadEvents >= 2
                if state.relay.error != nil && !hasContent { return }
                state.held += produced
                guard hasContent || state.relay.isComplete else { return }
                out = state.held
                state.held = []
                try await writeStreamHead(provider: target.provider.rawValue, context: context, writer: writer)
                state.committed = true
                context.audit.timeToFirstTokenMs = context.elapsedMs
            }
            state.capture(out)
            if state.relay.isComplete && state.relay.error == nil {
                // The provider said it is done: meter and store before [DONE] reaches the client.
                meter.record(state.relay.usage, modelServed: state.relay.modelServed, priceModel: target.model)
                if let captured = state.captured {
                    cache?.save(CachedAnswer(provider: target.provider.rawValue, modelServed: state.relay.modelServed, stream: true, body: captured))
                }
            }
            try await writer.writeBody(out, flush: true)
        }

        do {
            do {
                try await application.upstream.readBody(response) { body in
                    var chunks = body.makeAsyncIterator()
                    do {
                        while let chunk = try await chunks.next() {
                            try await emit(state.relay.feed(chunk))
                            // After an error event nothing more is read; after [DONE] the rest is
                            // drained so the connection can be reused.
                            if state.relay.error != nil { break }
                        }
                        try await emit(state.relay.finish())
                    } catch let failure as UpstreamFailure where !Task.isCancelled {
                        // (A cancelled read is the watchdog's doing; readBody reports it below.)
                        try await emit(state.relay.fail(failure.gatewayError(provider: target.provider.rawValue)))
                    } catch let disconnected as ClientDisconnected {
                        // OpenAI and Mistral send usage only in the stream's last chunk: a client
                        // that leaves right after the content must not leave the answer unmetered.
                        await Self.drainForUsage(&chunks, relay: state)
                        throw disconnected
                    }
                }
            } catch let failure as UpstreamFailure {
                // The idle or total deadline stopped the read.
                try await emit(state.relay.fail(failure.gatewayError(provider: target.provider.rawValue)))
            }
        } catch let disconnected as ClientDisconnected {
            // The provider did answer; the row lists that call before saying the client left.
            call.record(status: response.status, error: nil)
            let usage = state.relay.usage ?? Self.estimatedUsage(promptEstimate: promptEstimate, relay: state.relay)
            meter.record(usage, modelServed: state.relay.modelServed, priceModel: target.model)
            throw disconnected
        }
        call.record(status: response.status, error: state.relay.error)
        guard state.committed else {
            throw state.relay.error ?? GatewayError.upstreamError("\(target.provider.rawValue) ended the stream without any event.")
        }
        // Usage is metered from what arrived, whether or not the client asked for it.
        meter.record(state.relay.usage, modelServed: state.relay.modelServed, priceModel: target.model)
        if let error = state.relay.error { context.audit.errorCode = error.auditCode }
    }
}

extension ChatCompletionsHandler {
    /// After the client left: how much more of the provider's stream is read, looking for its
    /// usage. Enough for the final chunks of an answer that was complete; little enough that a
    /// client leaving mid-generation does not keep a long answer running.
    static let drainLimitBytes = 256 * 1024
    static let drainLimitNanoseconds: UInt64 = 2_000_000_000

    /// Feeds the rest of the stream to the relay (its output goes nowhere) until the usage is
    /// known, the stream ends, or the byte or time bound is reached.
    static func drainForUsage(_ chunks: inout UpstreamBody.AsyncIterator, relay state: RelayState) async {
        let deadline = DispatchTime.now().uptimeNanoseconds &+ drainLimitNanoseconds
        var drained = 0
        while state.relay.usage == nil && !state.relay.isFinished && drained < drainLimitBytes
            && DispatchTime.now().uptimeNanoseconds < deadline {
            guard let chunk = try? await chunks.next() else { break }
            drained += chunk.count
            _ = state.relay.feed(chunk)
        }
    }

    /// The provider's usage never came (the client left and the stream did not end in time): the
    /// answer was delivered, so it is charged on an estimate instead of as free — the prompt from
    /// the body's size, the completion one token per content chunk sent.
    static func estimatedUsage(promptEstimate: Int, relay: StreamRelay) -> TokenUsage {
        TokenUsage(promptTokens: max(1, promptEstimate), completionTokens: max(1, relay.payloadEvents - 1))
    }
}

/// The relay shared between the body reader task and the handler; used by one task at a time.
/// Also keeps a copy of the bytes sent, when the answer is to be cached.
final class RelayState: @unchecked Sendable {
    var relay: StreamRelay
    /// The response head has been written: no falling back from here on.
    var committed = false
    /// Output held back until the first content chunk.
    var held: [UInt8] = []
    private(set) var captured: [UInt8]?
    private let captureLimit: Int

    init(_ relay: StreamRelay, capturing: Bool, captureLimit: Int) {
        self.relay = relay
        self.captured = capturing ? [] : nil
        self.captureLimit = captureLimit
    }

    /// Keeps `bytes` for the cache; an answer over the entry limit is not kept at all.
    func capture(_ bytes: [UInt8]) {
        guard captured != nil else { return }
        if captured!.count + bytes.count > captureLimit {
            captured = nil
        } else {
            captured!.append(contentsOf: bytes)
        }
    }
}

/// A provider's non-streamed answer: metered and stored first — so the client's next request
/// sees this one's tokens, spend and cache entry — then written.
func deliverAnswer(_ body: [UInt8], usage: TokenUsage?, modelServed: String?, target: ProviderTarget, meter: RequestMeter,
                   cache: CacheSession?, context: RequestContext, writer: any ResponseWriter) async throws {
    let cost = meter.record(usage, modelServed: modelServed, priceModel: target.model)
    cache?.save(CachedAnswer(provider: target.provider.rawValue, modelServed: modelServed, stream: false, body: body))
    try await writeAnswer(body, provider: target.provider.rawValue, cost: cost, context: context, writer: writer)
}

/// A non-streamed answer: 200 with `X-AI-Provider` and, when the price is known, `X-Gateway-Cost-USD`.
func writeAnswer(_ body: [UInt8], provider: String, cost: Double?, context: RequestContext, writer: any ResponseWriter) async throws {
    var headers = baseHeaders(context)
    headers.add(name: "X-AI-Provider", value: provider)
    if let cost { headers.add(name: "X-Gateway-Cost-USD", value: costText(cost)) }
    context.audit.status = 200
    try await writer.writeHead(status: 200, headers: headers)
    try await writer.writeBody(body, flush: false)
}

private func costText(_ cost: Double) -> String { SpendAmount.text(cost, fractionDigits: 10, keepPoint: true) }

/// The head of a streamed answer: SSE, never buffered by nginx. `cost` only when known up
/// front (a replayed stream); a live stream's cost is in its audit row.
func writeStreamHead(provider: String, cost: Double? = nil, context: RequestContext, writer: any ResponseWriter) async throws {
    var headers = baseHeaders(context, contentType: "text/event-stream")
    headers.add(name: "Cache-Control", value: "no-cache")
    headers.add(name: "X-Accel-Buffering", value: "no")
    headers.add(name: "X-AI-Provider", value: provider)
    if let cost { headers.add(name: "X-Gateway-Cost-USD", value: costText(cost)) }
    context.audit.status = 200
    // The head leaves with the first flushed bytes, before the request ends: journal the row now.
    context.journalAnswerStarted()
    try await writer.writeHead(status: 200, headers: headers)
}

/// docs/api.md: the `X-AI-Provider` header, else inferred from the model name, else 400.
enum ProviderSelection {
    static func provider(header: String?, model: String) throws(GatewayError) -> Provider {
        if let header, !header.isEmpty {
            guard let provider = Provider(rawValue: header.lowercased()) else {
                throw .invalidRequest("Unknown provider '\(header)' in X-AI-Provider; use one of: \(Provider.allCases.map(\.rawValue).joined(separator: ", ")).",
                                      param: "X-AI-Provider", code: "unknown_provider")
            }
            return provider
        }
        guard let provider = Provider.inferred(fromModel: model) else {
            throw .invalidRequest("Cannot tell the provider from model '\(model)'; set the X-AI-Provider header.",
                                  param: "model", code: "unknown_provider")
        }
        return provider
    }
}
