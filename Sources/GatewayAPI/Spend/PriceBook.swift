import Foundation
import GatewayCore
import GatewayProviders
import GatewayStore

/// The worker's copy of the price table, re-read every few seconds so `price set` reaches every
/// worker without a restart and the request path does not query prices each time.
final class PriceBook: @unchecked Sendable {
    private let store: GatewayStore
    private let refreshInterval: TimeInterval
    private let lock = NSLock()
    private var table = PriceTable([])
    private var loadedAt = Date.distantPast

    init(store: GatewayStore, refreshInterval: TimeInterval = 5) {
        self.store = store
        self.refreshInterval = refreshInterval
    }

    /// USD for `usage` of the first of `models` that has a price; nil (unknown) when none has one.
    func cost(models: [String?], usage: TokenUsage?) -> Double? {
        guard let usage else { return nil }
        let table = current()
        for model in models.compactMap({ $0 }) {
            if let price = table.price(for: model) {
                return price.cost(prompt: usage.promptTokens, completion: usage.completionTokens,
                                  cached: usage.cachedPromptTokens, cacheWrite: usage.cacheWriteTokens)
            }
        }
        return nil
    }

    private func current() -> PriceTable {
        lock.lock()
        defer { lock.unlock() }
        if Date().timeIntervalSince(loadedAt) > refreshInterval {
            // On a store error keep the last table: pricing must not fail a request.
            if let prices = try? store.prices() { table = PriceTable(prices) }
            loadedAt = Date()
        }
        return table
    }
}
