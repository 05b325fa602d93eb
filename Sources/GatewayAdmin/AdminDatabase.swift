import Dispatch
import GatewayStore

/// The admin API's and dashboard's own database connection, used on its own serial Dispatch
/// queue. Admin reads (a usage report, a page of an export) can take milliseconds; run on the
/// request path's connection or on Swift's cooperative pool (two threads on a two-core box) they
/// would delay chat requests. WAL lets this connection read while the request path writes, and a
/// long export is read page by page, so no read transaction stays open between pages.
public final class AdminDatabase: @unchecked Sendable {
    private let store: GatewayStore
    private let queue = DispatchQueue(label: "deploxa-admin-db")

    public init(store: GatewayStore) {
        self.store = store
    }

    /// Runs `body` with the admin connection, off the cooperative pool.
    public func run<T: Sendable>(_ body: @escaping @Sendable (GatewayStore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.store) })
            }
        }
    }

    public func close() {
        queue.sync { store.close() }
    }
}
