import GatewayCore
import GatewayStore
import Synchronization

/// The worker's copy of the projects' provider settings and fallback chains, as `PriceBook` is of
/// the prices: read from the store once, then again only when the settings version (read with
/// every key lookup, at no extra query) moves. Every change of a provider setting or a chain
/// bumps that version, so the very next request in every worker sees it; a request that needs
/// nothing new costs no store read here.
final class ProviderDirectory: Sendable {
    private struct Entries {
        var version: Int64?
        var settings: [SettingsKey: ProviderSettings?] = [:]
        var chains: [ChainKey: FallbackChain?] = [:]
    }

    private struct SettingsKey: Hashable {
        let projectID: Int64
        let provider: Provider
    }

    private struct ChainKey: Hashable {
        let projectID: Int64
        let primary: FallbackTarget
    }

    private let store: any RequestStore
    private let entries = Mutex(Entries())

    init(store: any RequestStore) { self.store = store }

    /// The project's settings for `provider` (nil: not configured), as of the key's settings version.
    func providerSettings(for key: AuthenticatedKey, provider: Provider) throws -> ProviderSettings? {
        let cacheKey = SettingsKey(projectID: key.project.id, provider: provider)
        if let known = cached(key.settingsVersion, { $0.settings[cacheKey] }) { return known }
        let settings = try store.providerSettings(projectID: key.project.id, provider: provider)
        remember(key.settingsVersion) { $0.settings[cacheKey] = .some(settings) }
        return settings
    }

    /// The project's fallback chain for `primary`, if it has one, as of the key's settings version.
    func fallbackChain(for key: AuthenticatedKey, primary: FallbackTarget) throws -> FallbackChain? {
        let cacheKey = ChainKey(projectID: key.project.id, primary: primary)
        if let known = cached(key.settingsVersion, { $0.chains[cacheKey] }) { return known }
        let chain = try store.fallbackChain(projectID: key.project.id, primary: primary)
        remember(key.settingsVersion) { $0.chains[cacheKey] = .some(chain) }
        return chain
    }

    /// The cached value (itself optional) when the copy is of `version`; nil when it must be read.
    private func cached<T>(_ version: Int64, _ read: (Entries) -> T??) -> T?? {
        entries.withLock { entries in entries.version == version ? read(entries) : nil }
    }

    /// Stores a value read at `version`; a newer version first empties the copy. (A value read
    /// for an older version than the copy's is not kept.)
    private func remember(_ version: Int64, _ write: (inout Entries) -> Void) {
        entries.withLock { entries in
            if entries.version != version {
                guard entries.version.map({ version > $0 }) ?? true else { return }
                entries = Entries(version: version)
            }
            write(&entries)
        }
    }
}
