import Foundation
import GatewayHTTP
import Synchronization

/// Collects what the pipeline writes; can pretend the client left after N body writes.
public final class RecordingWriter: ResponseWriter, Sendable {
    private struct State {
        var status = 0
        var headers = HTTPHeaders()
        var body: [UInt8] = []
        var flushes = 0
        var ended = false
        var writes = 0
    }

    private let state = Mutex(State())
    public let disconnectAfterWrites: Int?

    public var status: Int { state.withLock { $0.status } }
    public var headers: HTTPHeaders { state.withLock { $0.headers } }
    public var body: [UInt8] { state.withLock { $0.body } }
    public var flushes: Int { state.withLock { $0.flushes } }
    public var ended: Bool { state.withLock { $0.ended } }

    public init(disconnectAfterWrites: Int? = nil) { self.disconnectAfterWrites = disconnectAfterWrites }

    public func writeHead(status: Int, headers: HTTPHeaders) async throws(ClientDisconnected) {
        state.withLock { $0.status = status; $0.headers = headers }
    }

    public func writeBody(_ bytes: [UInt8], flush: Bool) async throws(ClientDisconnected) {
        let leave = state.withLock { state -> Bool in
            state.writes += 1
            if let limit = disconnectAfterWrites, state.writes > limit { return true }
            state.body += bytes
            if flush { state.flushes += 1 }
            return false
        }
        if leave { throw ClientDisconnected() }
    }

    public func end() async { state.withLock { $0.ended = true } }

    public var text: String { String(decoding: body, as: UTF8.self) }
}
