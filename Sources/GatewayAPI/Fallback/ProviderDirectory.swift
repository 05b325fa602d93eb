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
        try lookup(\.settings, SettingsKey(projectID: key.project.id, provider: provider), version: key.settingsVersion) {
            try store.providerSettings(projectID: key.project.id, provider: provider)
        }
    }

    /// The project's fallback chain for `primary`, if it has one, as of the key's settings version.
    func fallbackChain(for key: AuthenticatedKey, primary: FallbackTarget) throws -> FallbackChain? {
        try lookup(\.chains, ChainKey(projectID: key.project.id, primary: primary), version: key.settingsVersion) {
            try store.fallbackChain(projectID: key.project.id, primary: primary)
        }
    }

    /// The copy's value (itself optional: "none" is remembered too) when the copy is of `version`;
    /// otherwise `load`'s, kept. A newer version first empties the copy; a value read for an older
    /// version than the copy's is not kept.
    private func lookup<Key: Hashable & Sendable, Value: Sendable>(_ table: WritableKeyPath<Entries, [Key: Value?]> & Sendable, _ key: Key, version: Int64,
                                                                      load: () throws -> Value?) throws -> Value? {
        if let known = entries.withLock({ $0.version == version ? $0[keyPath: table][key] : nil }) { return known }
        let value = try load()
        entries.withLock { entries in
            if entries.version != version {
                guard entries.version.map({ version > $0 }) ?? true else { return }
                entries = Entries(version: version)
            }
            entries[keyPath: table][key] = .some(value)
        }
        return value
    }
}
