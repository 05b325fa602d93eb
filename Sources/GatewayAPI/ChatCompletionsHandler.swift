import Foundation
import Dispatch
import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream

/// POST /v1/chat/completions: validate, pick the provider, translate, send, translate back.
struct ChatCompletionsHandler: RouteHandler {
    let application: GatewayApplication

    func handle(_ request: HTTPRequest, key: AuthenticatedKey, context: RequestContext, writer: any ResponseWriter) async throws {
        var chat = try ChatRequest.parse(request.body)
        chat.responseID = "chatcmpl-" + context.requestID.dropFirst("req_".count)
        context.audit.modelRequested = chat.model
        context.audit.user = chat.user
        context.audit.stream = chat.stream

        let target = try ProviderTarget.resolve(request, model: chat.model, key: key, application: application, context: context)
        let provider = target.provider
        let upstreamRequest = try target.adapter.makeChatRequest(chat, settings: target.settings)

        let meter = RequestMeter(application: application, key: key, context: context)
        try meter.admit(estimatedTokens: RequestLimiter.estimateTokens(bodyBytes: request.body.count, maxTokens: chat.maxTokens))
        var providerAnswered = false
        defer { meter.finish(providerAnswered: providerAnswered) }

        let call = ProviderCall(application: application, target: target, model: chat.model, context: context)
        let response = try await call.send(upstreamRequest)
        providerAnswered = true

        if chat.stream {
            do {
                let streamError = try await relayStream(response, adapter: target.adapter, chat: chat, provider: provider,
                                                        meter: meter, context: context, writer: writer)
                call.record(status: response.status, error: streamError)
            } catch let disconnected as ClientDisconnected {
                // The provider did answer; the row lists that call before saying the client left.
                call.record(status: response.status, error: nil)
                throw disconnected
            }
        } else {
            let body = try await call.body(of: response)
            let result = try call.decode(status: response.status) { () throws(GatewayError) in try target.adapter.decodeChatResponse(body, for: chat) }
            // Settled before the answer leaves, so the client's next request sees this one's tokens and spend.
            let cost = meter.record(result.usage, modelServed: result.modelServed)
            try await writeAnswer(result.body, provider: provider, cost: cost, context: context, writer: writer)
        }
    }

    /// Relays a provider's SSE stream as OpenAI chunks, one flush per upstream read. Once the
    /// first byte has gone out, failures become a final error event and `[DONE]`.
    private func relayStream(_ response: UpstreamResponse, adapter: any ProviderAdapter, chat: ChatRequest, provider: Provider,
                             meter: RequestMeter, context: RequestContext, writer: any ResponseWriter) async throws -> GatewayError? {
        var headers = baseHeaders(context, contentType: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-cache")
        headers.add(name: "X-Accel-Buffering", value: "no")
        headers.add(name: "X-AI-Provider", value: provider.rawValue)
        context.audit.status = 200
        try await writer.writeHead(status: 200, headers: headers)

        let state = RelayState(StreamRelay(providerName: provider.rawValue, translator: adapter.makeStreamTranslator(for: chat)))
        defer {
            // Usage is metered from what arrived, whether or not the client asked for it.
            meter.record(state.relay.usage, modelServed: state.relay.modelServed)
            if let error = state.relay.error { context.audit.errorCode = error.auditCode }
        }
        do {
            try await application.upstream.readBody(response) { body in
                do {
                    for try await chunk in body {
                        let out = state.relay.feed(chunk)
                        // The provider said it is done: meter before [DONE] reaches the client.
                        if state.relay.isComplete { meter.record(state.relay.usage, modelServed: state.relay.modelServed) }
                        if !out.isEmpty {
                            if context.audit.timeToFirstTokenMs == nil { context.audit.timeToFirstTokenMs = context.elapsedMs }
                            try await writer.writeBody(out, flush: true)
                        }
                        // After an error event nothing more is read; after [DONE] the rest is
                        // drained so the connection can be reused.
                        if state.relay.error != nil { break }
                    }
                    let out = state.relay.finish()
                    if state.relay.isComplete { meter.record(state.relay.usage, modelServed: state.relay.modelServed) }
                    if !out.isEmpty { try await writer.writeBody(out, flush: true) }
                } catch let failure as UpstreamFailure where !Task.isCancelled {
                    // (A cancelled read is the idle watchdog's doing; readBody reports it below.)
                    let out = state.relay.fail(failure.gatewayError(provider: provider.rawValue))
                    if !out.isEmpty { try await writer.writeBody(out, flush: true) }
                }
            }
        } catch let failure as UpstreamFailure {
            // The idle watchdog stopped the read.
            let out = state.relay.fail(failure.gatewayError(provider: provider.rawValue))
            if !out.isEmpty { try await writer.writeBody(out, flush: true) }
        }
        return state.relay.error
    }
}

/// The relay shared between the body reader task and the handler; used by one task at a time.
private final class RelayState: @unchecked Sendable {
    var relay: StreamRelay
    init(_ relay: StreamRelay) { self.relay = relay }
}

/// A non-streamed answer: 200 with `X-AI-Provider` and, when the price is known, `X-Gateway-Cost-USD`.
func writeAnswer(_ body: [UInt8], provider: Provider, cost: Double?, context: RequestContext, writer: any ResponseWriter) async throws {
    var headers = baseHeaders(context)
    headers.add(name: "X-AI-Provider", value: provider.rawValue)
    if let cost { headers.add(name: "X-Gateway-Cost-USD", value: SpendAmount.text(cost, fractionDigits: 10, keepPoint: true)) }
    context.audit.status = 200
    try await writer.writeHead(status: 200, headers: headers)
    try await writer.writeBody(body, flush: false)
}

/// SPEC: the `X-AI-Provider` header, else inferred from the model name, else 400.
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
