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

    /// A `text/event-stream` response.
    static func eventStream(_ events: [[UInt8]]) -> SimulatedResponse {
        var response = SimulatedResponse(status: .ok, contentType: "text/event-stream", body: .events(events))
        response.headers.add(name: "cache-control", value: "no-cache")
        return response
    }
}
