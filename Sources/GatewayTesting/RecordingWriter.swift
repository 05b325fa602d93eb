import Foundation
import GatewayHTTP

/// Collects what the pipeline writes; can pretend the client left after N body writes.
public final class RecordingWriter: ResponseWriter, @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var status = 0
    public private(set) var headers = HTTPHeaders()
    public private(set) var body: [UInt8] = []
    public private(set) var flushes = 0
    public private(set) var ended = false
    public let disconnectAfterWrites: Int?
    private var writes = 0

    public init(disconnectAfterWrites: Int? = nil) { self.disconnectAfterWrites = disconnectAfterWrites }

    public func writeHead(status: Int, headers: HTTPHeaders) async throws(ClientDisconnected) {
        lock.withLock { self.status = status; self.headers = headers }
    }

    public func writeBody(_ bytes: [UInt8], flush: Bool) async throws(ClientDisconnected) {
        let leave = lock.withLock { () -> Bool in
            writes += 1
            if let limit = disconnectAfterWrites, writes > limit { return true }
            body += bytes
            if flush { flushes += 1 }
            return false
        }
        if leave { throw ClientDisconnected() }
    }

    public func end() async { lock.withLock { ended = true } }

    public var text: String { String(decoding: body, as: UTF8.self) }
}
