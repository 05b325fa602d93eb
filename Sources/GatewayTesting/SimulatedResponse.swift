import NIOCore
import NIOHTTP1

/// What a simulated provider answers, as a value: the status, headers and body, plus how to
/// misbehave while sending it. Providers build these; `SimulatorPlayback` turns them into writes.
struct SimulatedResponse: Sendable {
    enum Body: Sendable {
        /// A body sent with `Content-Length`.
        case full([UInt8])
        /// Stream events (already framed, e.g. `data: …\n\n`) sent with chunked encoding.
        case events([[UInt8]])
    }

    /// Where the connection is dropped, without finishing the response.
    enum Interruption: Sendable, Equatable {
        /// After this many stream events.
        case afterEvents(Int)
        /// After half of a full body.
        case afterHalfBody
    }

    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: Body
    /// Delay before the response head.
    var latencyMs = 0
    /// Delay between stream events.
    var eventDelayMs = 0
    /// An extra silence after this many stream events (`pause_after`), of `pauseMs`.
    var pauseAfterEvents: Int?
    var pauseMs = 0
    /// Write the body in flushed pieces of 1–3 bytes.
    var splitWrites = false
    var interruption: Interruption?

    init(status: HTTPResponseStatus, contentType: String, body: Body) {
        self.status = status
        self.headers = HTTPHeaders([("content-type", contentType)])
        self.body = body
    }

    /// A JSON response.
    static func json(_ status: HTTPResponseStatus, _ object: Any) -> SimulatedResponse {
        SimulatedResponse(status: status, contentType: "application/json", body: .full(SimulatorJSON.encode(object)))
    }

    /// A 200 whose body is `text` as is, labelled JSON: how a `malformed=1` script gets cut-off JSON.
    static func rawJSON(_ text: String) -> SimulatedResponse {
        SimulatedResponse(status: .ok, contentType: "application/json", body: .full(Array(text.utf8)))
    }

    /// A `text/event-stream` response.
    static func eventStream(_ events: [[UInt8]]) -> SimulatedResponse {
        var response = SimulatedResponse(status: .ok, contentType: "text/event-stream", body: .events(events))
        response.headers.add(name: "cache-control", value: "no-cache")
        return response
    }
}

/// Server-sent event framing shared by the providers that end events with `\n\n`.
enum SimulatedSSE {
    /// `event: NAME\ndata: {...}\n\n`, the JSON's `type` set to the event name (Anthropic, Cohere).
    static func event(_ name: String, _ object: [String: Any]) -> [UInt8] {
        var object = object
        object["type"] = name
        return Array("event: \(name)\ndata: ".utf8) + SimulatorJSON.encode(object) + Array("\n\n".utf8)
    }

    static func event(_ name: String, raw payload: String) -> [UInt8] {
        Array("event: \(name)\ndata: \(payload)\n\n".utf8)
    }

    /// `data: [DONE]\n\n`, the end of an OpenAI-style (and Cohere) stream.
    static let done = Array("data: [DONE]\n\n".utf8)
}
