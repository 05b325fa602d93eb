import Dispatch
import GatewayStore

/// The admin API's and dashboard's own database connection, used on its own serial Dispatch
/// queue. Admin reads (a usage report, a page of an export) can take milliseconds; run on the
/// request path's connection or on Swift's cooperative pool (two threads on a two-core box) they
/// would delay chat requests. WAL lets this connection read while the request path writes, and a
/// long export is read page by page, so no read transaction stays open between pages.
///
/// The connection is opened on first use: a worker that never serves an admin request (and a CGI
/// process, which serves one request) never opens it.
public final class AdminDatabase: @unchecked Sendable {
    private let open: @Sendable () throws -> GatewayStore
    private let queue = DispatchQueue(label: "deploxa-admin-db")
    /// Touched only on `queue`.
    private var store: GatewayStore?

    public init(open: @escaping @Sendable () throws -> GatewayStore) {
        self.open = open
    }

    public convenience init(store: GatewayStore) {
        self.init(open: { store })
    }

    /// Runs `body` with the admin connection, off the cooperative pool.
    public func run<T: Sendable>(_ body: @escaping @Sendable (GatewayStore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    let store = try self.store ?? self.open()
                    self.store = store
                    return try body(store)
                })
            }
        }
    }

    public func close() {
        queue.sync {
            store?.close()
            store = nil
        }
    }
}
