import NIOCore
import NIOHTTP1

/// One step of sending a response. The handler executes steps in order; keeping the plan a
/// plain list makes timing, splitting and disconnects easy to read and to test without sockets.
enum PlaybackStep: Equatable {
    /// Wait on an event-loop timer.
    case wait(milliseconds: Int)
    case head(HTTPResponseHead)
    /// Write and flush these bytes as one body part (one HTTP chunk when chunked).
    case write([UInt8])
    /// Finish the response normally, then close the connection unless it is kept alive.
    case end(closeConnection: Bool)
    /// Drop the connection mid-response.
    case disconnect
}

/// Turns a `SimulatedResponse` into the steps that send it.
enum SimulatorPlayback {
    /// Seed for `split=1`: the same response is always cut into the same pieces.
    static let splitSeed: UInt64 = 0x5EED_5EED

    static func steps(for response: SimulatedResponse, version: HTTPVersion, keepAlive: Bool) -> [PlaybackStep] {
        var headers = response.headers
        // HTTP/1.0 has no chunked encoding: a stream there is delimited by closing the connection.
        var keepAlive = keepAlive
        if case .events = response.body, version.major == 1, version.minor == 0 { keepAlive = false }
        if !keepAlive {
            headers.replaceOrAdd(name: "connection", value: "close")
        } else if version.major == 1, version.minor == 0 {
            headers.replaceOrAdd(name: "connection", value: "keep-alive")
        }
        var steps: [PlaybackStep] = []
        if response.latencyMs > 0 { steps.append(.wait(milliseconds: response.latencyMs)) }

        var random = SimulatorRandom(seed: splitSeed)
        func appendWrites(_ bytes: [UInt8]) {
            guard !bytes.isEmpty else { return }
            guard response.splitWrites else { return steps.append(.write(bytes)) }
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...3, using: &random))
                steps.append(.write(Array(bytes[start..<end])))
                start = end
            }
        }

        switch response.body {
        case .full(let body):
            headers.replaceOrAdd(name: "content-length", value: String(body.count))
            steps.append(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
            if response.interruption != nil {
                appendWrites(Array(body.prefix(body.count / 2)))
                steps.append(.disconnect)
            } else {
                appendWrites(body)
                steps.append(.end(closeConnection: !keepAlive))
            }

        case .events(let events):
            steps.append(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
            var sendCount = events.count
            if case .afterEvents(let limit) = response.interruption { sendCount = min(limit, events.count) }
            for (index, event) in events.prefix(sendCount).enumerated() {
                if index > 0 && response.eventDelayMs > 0 { steps.append(.wait(milliseconds: response.eventDelayMs)) }
                if index > 0 && index == response.pauseAfterEvents && response.pauseMs > 0 { steps.append(.wait(milliseconds: response.pauseMs)) }
                appendWrites(event)
            }
            if response.interruption == nil {
                steps.append(.end(closeConnection: !keepAlive))
            } else {
                // Drop the connection where the next event would have come.
                if sendCount > 0 && response.eventDelayMs > 0 { steps.append(.wait(milliseconds: response.eventDelayMs)) }
                steps.append(.disconnect)
            }
        }
        return steps
    }
}
