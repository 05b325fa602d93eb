#if canImport(Glibc)
import Glibc
#endif
import CFastCGI
import Dispatch
import GatewayHTTP

/// Writes one response to its libfcgi request. Every libfcgi call that could block on a slow
/// client runs on the request's own serial queue (a Dispatch thread), never on the Swift
/// cooperative pool; async callers just await the queue's answer. The one exception is a whole
/// answer of at most 64 KiB written at `end`: it fits in the socket's send buffer, so it is
/// written and the request finished in place, saving two thread hops per plain JSON answer.
final class FastCGIResponseWriter: ResponseWriter, @unchecked Sendable {
    private let request: UnsafeMutablePointer<FCGX_Request>
    /// Made on first use: a whole answer written at `end` never needs it.
    private lazy var queue = DispatchQueue(label: "fcgi-request")
    private let onFinish: @Sendable () -> Void
    private let trace: RequestTrace?
    // Touched only on `queue` once `usedQueue` is set; before that, only by the caller.
    private var failed = false
    private var finished = false
    /// Something was written through the queue (so `end` must go through it too, in order).
    private var usedQueue = false
    /// Head and unflushed body bytes, held by the (sequential) caller until a flush or `end`,
    /// so a plain JSON answer costs one hop to the queue instead of three.
    private var pending: [UInt8] = []
    private static let pendingLimit = 64 * 1024

    init(request: UnsafeMutablePointer<FCGX_Request>, trace: RequestTrace? = nil, onFinish: @escaping @Sendable () -> Void) {
        self.request = request
        self.trace = trace
        self.onFinish = onFinish
    }

    func writeHead(status: Int, headers: HTTPHeaders) async throws(ClientDisconnected) {
        trace?.status = status
        pending.append(contentsOf: CGIResponseHead.encode(status: status, headers: headers))
    }

    func writeBody(_ bytes: [UInt8], flush: Bool) async throws(ClientDisconnected) {
        if !flush && pending.count + bytes.count <= Self.pendingLimit {
            pending.append(contentsOf: bytes)
            return
        }
        var out = pending
        pending = []
        out.append(contentsOf: bytes)
        try await write(out, flush: flush)
    }

    private func write(_ bytes: [UInt8], flush: Bool) async throws(ClientDisconnected) {
        usedQueue = true
        let ok: Bool = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: self.writeOnQueue(bytes, flush: flush))
            }
        }
        if !ok { throw ClientDisconnected() }
    }

    private func writeOnQueue(_ bytes: [UInt8], flush: Bool) -> Bool {
        if failed || finished { return false }
        let out = request.pointee.out
        var offset = 0
        while offset < bytes.count {
            let count = min(bytes.count - offset, Int(Int32.max))
            let written = bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.advanced(by: offset).withMemoryRebound(to: CChar.self, capacity: count) {
                    FCGX_PutStr($0, Int32(count), out)
                }
            }
            if written < 0 { failed = true; return false }
            offset += Int(written)
        }
        if flush, FCGX_FFlush(out) < 0 { failed = true; return false }
        if FCGX_GetError(out) != 0 { failed = true; return false }
        return true
    }

    func end() async {
        let last = pending
        pending = []
        guard usedQueue else {
            // The whole answer is `last` (≤ 64 KiB): no hop.
            finish(writing: last)
            return
        }
        // Nobody waits for the end: the queue keeps the writer alive until it has run.
        queue.async { self.finish(writing: last) }
    }

    /// Whether nginx has sent nothing this request left unread. Then the connection is closed at
    /// once: libfcgi's own close (for a request not `detached`) shuts down the sending side and
    /// waits, up to 2 s, for nginx to close first, so that unread input cannot make the kernel
    /// reset the connection under the answer — a sleep and a wake-up of the request thread per
    /// request, and a thread stalled for as long as nginx is busy elsewhere. With nothing unread
    /// there is nothing to reset for. (A body over the size limit is left unread: that request
    /// keeps libfcgi's wait.)
    static func nothingUnread(on fd: Int32) -> Bool {
        guard fd >= 0 else { return false }
        var byte: UInt8 = 0
        let peeked = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return peeked == 0 || (peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    }

    private func finish(writing last: [UInt8]) {
        if !last.isEmpty { _ = writeOnQueue(last, flush: false) }
        if !finished {
            finished = true
            if Self.nothingUnread(on: request.pointee.ipcFd) { request.pointee.detached = 1 }
            FCGX_Finish_r(request)
            request.deinitialize(count: 1)
            request.deallocate()
            onFinish()
        }
    }
}
