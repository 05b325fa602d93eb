import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Counters and the last provider request, shared by every connection of one simulator.
///
/// Event loops call in from several threads, so everything sits behind one lock; the work
/// under it is a few dictionary updates.
final class SimulatorStats: Sendable {
    /// The last provider request, with credentials already replaced by their SHA-256.
    struct LastRequest: Sendable {
        var method: String
        var path: String
        var headers: [String: String]
        /// Kept raw; parsed only when `/_sim/last` is asked for.
        var body: ByteBuffer
    }

    private struct State {
        var requests = 0
        var byPath: [String: Int] = [:]
        var inFlight = 0
        var lastRequest: LastRequest?
        var completionCounter = 0
    }

    private let state = Mutex(State())

    /// Headers whose values are credentials: shown as a SHA-256 so tests can tell keys apart.
    static let credentialHeaders: Set<String> = [
        "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
    ]

    /// Counts a provider request and remembers it for `/_sim/last`.
    func record(method: HTTPMethod, path: String, headers: HTTPHeaders, body: ByteBuffer) {
        let last = LastRequest(method: method.rawValue, path: path, headers: Self.redacted(headers), body: body)
        state.withLock { state in
            state.requests += 1
            state.byPath[path, default: 0] += 1
            state.lastRequest = last
        }
    }

    func enterFlight() { state.withLock { $0.inFlight += 1 } }
    func leaveFlight() { state.withLock { $0.inFlight -= 1 } }

    /// Zeroes the counters and forgets the last request. `in_flight` is a gauge of open
    /// responses, so it keeps counting them.
    func reset() {
        state.withLock { state in
            state.requests = 0
            state.byPath = [:]
            state.lastRequest = nil
        }
    }

    /// The next number for ids like `chatcmpl-sim-<n>`; never reset, so ids stay unique per simulator.
    func nextCompletionNumber() -> Int {
        state.withLock { state in
            state.completionCounter += 1
            return state.completionCounter
        }
    }

    /// `{"requests", "by_path", "in_flight"}`.
    func snapshot() -> [String: Any] {
        let (requests, byPath, inFlight) = state.withLock { ($0.requests, $0.byPath, $0.inFlight) }
        return ["requests": requests, "by_path": byPath, "in_flight": inFlight]
    }

    /// `{"method", "path", "headers", "body"}` for the last provider request, or `nil` if none.
    /// `body` is the parsed JSON, or `null` when the body was empty or not JSON.
    func lastRequestObject() -> [String: Any]? {
        guard let last = state.withLock({ $0.lastRequest }) else { return nil }
        return [
            "method": last.method,
            "path": last.path,
            "headers": last.headers,
            "body": SimulatorJSON.parse(last.body) ?? NSNull(),
        ]
    }

    static func redacted(_ headers: HTTPHeaders) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in headers {
            let shown = credentialHeaders.contains(name.lowercased()) ? redactedCredential(name: name, value: value) : value
            if let existing = result[name] { result[name] = existing + ", " + shown } else { result[name] = shown }
        }
        return result
    }

    /// `Authorization: Bearer k` → `Bearer <sha256(k)>`; other credential headers → `<sha256(value)>`.
    static func redactedCredential(name: String, value: String) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if trimmed.lowercased().hasPrefix("bearer ") {
            let key = trimmed.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
            return "Bearer " + sha256Hex(key)
        }
        return sha256Hex(trimmed)
    }

    /// Lower-case hex SHA-256 of the UTF-8 bytes of `text`.
    static func sha256Hex(_ text: String) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in SHA256.hash(data: Array(text.utf8)) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
