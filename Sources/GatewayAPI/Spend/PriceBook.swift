import Foundation
import Synchronization
import GatewayCore
import GatewayProviders
import GatewayStore

/// The worker's copy of the price table. It is re-read when the store's settings version (read
/// with every key lookup, so at no extra query) differs from the one it was loaded at: a
/// `price set` reaches the very next request in every worker, and the request path does not
/// query prices each time.
final class PriceBook: Sendable {
    private let store: any RequestStore
    /// The table and the settings version it was loaded at.
    private let loaded = Mutex<(table: PriceTable, version: Int64?)>((PriceTable([]), nil))

    init(store: any RequestStore) {
        self.store = store
    }

    /// USD for `usage` of the first of `models` that has a price; nil (unknown) when none has one.
    func cost(models: [String?], usage: TokenUsage?, settingsVersion: Int64) -> Double? {
        guard let usage else { return nil }
        let table = current(settingsVersion)
        for model in models.compactMap({ $0 }) {
            if let price = table.price(for: model) {
                return price.cost(prompt: usage.promptTokens, completion: usage.completionTokens,
                                  cached: usage.cachedPromptTokens, cacheWrite: usage.cacheWriteTokens)
            }
        }
        return nil
    }

    /// Under a monthly budget every answer must be priced, or spend would never reach the cap:
    /// an unpriced model is refused with a 400 that says how an operator prices it.
    func requirePrice(for model: String, key: AuthenticatedKey) throws(GatewayError) {
        guard key.hasMonthlyBudget, current(key.settingsVersion).price(for: model) == nil else { return }
        throw GatewayError.modelNotPriced(model: model)
    }

    private func current(_ version: Int64) -> PriceTable {
        loaded.withLock { loaded in
            if loaded.version != version {
                // On a store error keep the last table and try again on the next request: pricing
                // must not fail a request.
                if let prices = try? store.prices() { loaded = (PriceTable(prices), version) }
            }
            return loaded.table
        }
    }
}
