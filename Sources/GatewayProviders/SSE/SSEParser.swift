import GatewayCore

/// One Server-Sent Event as the provider framed it.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field, nil when absent (OpenAI, Mistral and Gemini send data-only events).
    public var event: String?
    /// All `data:` lines joined with "\n".
    public var data: String
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

public struct SSEParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Incremental SSE decoder: feed it bytes as they arrive, in chunks of any size, and it yields
/// complete events. It buffers bytes (never partial UTF-8), accepts `\n`, `\r\n` and `\r` line
/// ends (Gemini uses CRLF), skips `:` comments, and decodes text only for complete lines, so a
/// multi-byte character split across reads comes out whole.
///
/// Memory is bounded twice: one line may hold at most `maximumLineLength` bytes, and one event's
/// `data:` lines together at most `maximumEventBytes` (counting the newlines that join them), so
/// an upstream sending endless short `data:` lines without the blank line that ends an event is
/// refused too. Data lines are kept as the bytes they will be joined into, nothing more.
public struct SSEParser: Sendable {
    /// A single line longer than this is refused: a hostile or broken upstream must not make a
    /// worker buffer without bound.
    public var maximumLineLength: Int
    /// The `data:` payload of one event (its lines joined with "\n") larger than this is refused.
    public var maximumEventBytes: Int

    private var line: [UInt8] = []
    private var lastWasCarriageReturn = false
    /// The current event's data lines, already joined with "\n".
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var eventID: String?

    public init(maximumLineLength: Int = 16 * 1024 * 1024, maximumEventBytes: Int = 16 * 1024 * 1024) {
        self.maximumLineLength = maximumLineLength
        self.maximumEventBytes = maximumEventBytes
    }

    /// Feeds the next bytes of the stream; returns the events they completed.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws(SSEParseError) -> [SSEEvent] where Bytes.Element == UInt8 {
        // Contiguous input (arrays, slices, NIO buffers) is scanned line by line in bulk; a
        // per-byte loop over a generic sequence costs ~50 ns a byte across module boundaries.
        var failure: SSEParseError?
        let fast = bytes.withContiguousStorageIfAvailable { buffer -> [SSEEvent] in
            let result = Result { () throws(SSEParseError) -> [SSEEvent] in try feed(buffer: buffer) }
            switch result {
            case .success(let events): return events
            case .failure(let error): failure = error; return []
            }
        }
        if let failure { throw failure }
        if let fast { return fast }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer throws(SSEParseError) -> [SSEEvent] in try feed(buffer: buffer) }
    }

    private mutating func feed(buffer: UnsafeBufferPointer<UInt8>) throws(SSEParseError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        var index = 0
        let count = buffer.count
        while index < count {
            if lastWasCarriageReturn {
                lastWasCarriageReturn = false
                if buffer[index] == 0x0A {  // the LF of a CRLF pair
                    index += 1
                    continue
                }
            }
            var end = index
            while end < count, buffer[end] != 0x0A, buffer[end] != 0x0D { end += 1 }
            if end > index {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[index..<end]))
                if line.count > maximumLineLength {
                    throw SSEParseError(message: "upstream sent a stream line longer than \(maximumLineLength) bytes")
                }
            }
            guard end < count else { break }
            if buffer[end] == 0x0D { lastWasCarriageReturn = true }
            if let event = try endLine() { events.append(event) }
            index = end + 1
        }
        return events
    }

    /// Call at end of stream: an event not followed by a blank line is still delivered (Gemini
    /// ends at EOF; a truncated stream may lack the final separator). Throws if the last line
    /// takes the event over `maximumEventBytes`.
    public mutating func finishChecked() throws(SSEParseError) -> SSEEvent? {
        var pending: SSEEvent?
        if !line.isEmpty { pending = try endLine() }
        if pending == nil { pending = dispatch() }
        return pending
    }

    /// `finishChecked()`, with an oversized last event dropped (nil) instead of thrown.
    public mutating func finish() -> SSEEvent? {
        (try? finishChecked()) ?? nil
    }

    private mutating func endLine() throws(SSEParseError) -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }  // comment / keep-alive
        var fieldEnd = line.count
        var valueStart = line.count
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            fieldEnd = colon
            valueStart = colon + 1
            if valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        }
        let field = String(decoding: line[0..<fieldEnd], as: UTF8.self)
        switch field {
        case "data":
            let added = (hasData ? 1 : 0) + (line.count - valueStart)
            guard data.count + added <= maximumEventBytes else {
                data.removeAll()
                hasData = false
                throw SSEParseError(message: "upstream sent a stream event larger than \(maximumEventBytes) bytes")
            }
            if hasData { data.append(0x0A) }
            data.append(contentsOf: line[valueStart...])
            hasData = true
        case "event":
            eventName = String(decoding: line[valueStart...], as: UTF8.self)
        case "id":
            eventID = String(decoding: line[valueStart...], as: UTF8.self)
        default:
            break  // `retry` and unknown fields are ignored
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            data.removeAll(keepingCapacity: data.count <= 64 * 1024)
            hasData = false
            eventName = nil
        }
        guard hasData || eventName != nil else { return nil }
        return SSEEvent(event: eventName, data: String(decoding: data, as: UTF8.self), id: eventID)
    }
}

/// Writes events in the framing OpenAI clients expect: `data: …\n\n`.
public enum SSEWriter {
    public static func data(_ payload: [UInt8]) -> [UInt8] {
        var output: [UInt8] = Array("data: ".utf8)
        output.reserveCapacity(payload.count + 8)
        output.append(contentsOf: payload)
        output.append(contentsOf: [0x0A, 0x0A])
        return output
    }

    public static func data(_ json: JSON) -> [UInt8] { data(json.serialized()) }

    public static let done: [UInt8] = Array("data: [DONE]\n\n".utf8)
}
