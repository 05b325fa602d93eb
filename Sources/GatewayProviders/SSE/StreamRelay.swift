import GatewayCore

/// The pure half of relaying a provider stream: upstream bytes in, client bytes out. It owns the
/// SSE parser and the provider's translator, writes `data: …` framing, sends `[DONE]` exactly
/// once, and turns any failure after the stream started into a final error event. The request
/// handler only moves bytes; tests drive this type with fixtures.
public struct StreamRelay: Sendable {
    private var parser = SSEParser()
    private var translator: any StreamTranslator
    private let providerName: String
    /// Redacted from every error the stream ends with (the project's provider key), on top of
    /// the key shapes `SecretRedactor` always removes.
    private let secrets: [String]
    /// `[DONE]` has been written.
    public private(set) var isComplete = false
    /// The error that ended the stream, if one did.
    public private(set) var error: GatewayError?
    /// Chunk payloads written so far (`data:` events, not counting `[DONE]`).
    public private(set) var payloadEvents = 0
    /// A chunk with content has been written: non-empty `content` or `refusal`, or a tool call.
    /// The role chunk and bare finish or usage chunks are not content (see `StreamCommit`).
    public private(set) var hasContent = false

    /// `secrets`: the project's provider key (`settings.apiKey.value`), so a provider echoing it
    /// in a mid-stream error event does not hand it to the client.
    public init(providerName: String, translator: any StreamTranslator, secrets: [String] = []) {
        self.providerName = providerName
        self.translator = translator
        self.secrets = secrets
    }

    public var usage: TokenUsage? { translator.usage }
    public var modelServed: String? { translator.modelServed }
    public var isFinished: Bool { isComplete || error != nil }

    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        guard !isFinished else { return [] }
        var output: [UInt8] = []
        do {
            for event in try parser.feed(bytes) {
                try emit(translator.translate(event), into: &output)
                if isComplete { break }
            }
        } catch let parseError as SSEParseError {
            output += fail(.upstreamError("\(providerName): \(parseError.message)"))
        } catch let gatewayError as GatewayError {
            output += fail(gatewayError)
        } catch {
            output += fail(.upstreamError("\(providerName): unreadable stream"))
        }
        return output
    }

    /// The upstream body ended.
    public mutating func finish() -> [UInt8] {
        guard !isFinished else { return [] }
        var output: [UInt8] = []
        do {
            if let last = try parser.finishChecked() { try emit(translator.translate(last), into: &output) }
            if !isComplete { try emit(translator.finish(), into: &output) }
            if !isComplete {
                isComplete = true
                output += SSEWriter.done
            }
        } catch let parseError as SSEParseError {
            output += fail(.upstreamError("\(providerName): \(parseError.message)"))
        } catch let gatewayError as GatewayError {
            output += fail(gatewayError)
        } catch {
            output += fail(.upstreamError("\(providerName): unreadable stream"))
        }
        return output
    }

    /// Ends the stream with an error event and `[DONE]` (the client already has a 200). The
    /// error is redacted (`SecretRedactor`) before it is written or kept as `error`.
    public mutating func fail(_ failure: GatewayError) -> [UInt8] {
        guard !isFinished else { return [] }
        let redacted = SecretRedactor.redact(failure, secrets: secrets)
        error = redacted
        isComplete = true
        return SSEWriter.data(redacted.body) + SSEWriter.done
    }

    private mutating func emit(_ outputs: [StreamOutput], into output: inout [UInt8]) throws {
        for item in outputs {
            switch item {
            case .data(let payload):
                payloadEvents += 1
                // Only until the first one: later chunks need not be looked at again.
                if !hasContent { hasContent = Self.carriesContent(payload) }
                output += SSEWriter.data(payload)
            case .done:
                if !isComplete {
                    isComplete = true
                    output += SSEWriter.done
                }
            }
        }
    }

    /// Whether an OpenAI chunk carries content for the client: in any choice's delta, a non-empty
    /// `content` or `refusal`, or tool calls (also the legacy `function_call`).
    static func carriesContent(_ payload: [UInt8]) -> Bool {
        guard let chunk = try? JSON.parse(payload), let choices = chunk.objectValue?["choices"]?.arrayValue else { return false }
        return choices.contains { choice in
            guard let delta = choice.objectValue?["delta"]?.objectValue else { return false }
            if let content = delta["content"]?.stringValue, !content.isEmpty { return true }
            if let refusal = delta["refusal"]?.stringValue, !refusal.isEmpty { return true }
            if let calls = delta["tool_calls"]?.arrayValue, !calls.isEmpty { return true }
            return delta["function_call"]?.objectValue != nil
        }
    }
}
