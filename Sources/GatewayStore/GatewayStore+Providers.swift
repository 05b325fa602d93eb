import Foundation
import GatewayCore

/// Provider credentials per project. The key must be sent upstream, so it is stored as given;
/// the file is created 0600 and the key is only ever handled as a `Secret`, which never prints.
extension GatewayStore {
    /// Creates or replaces the project's settings for `provider`. `.notFound` if the project is unknown.
    public func setProvider(projectID: Int64, provider: Provider, apiKey: Secret, baseURL: String?) throws {
        guard !apiKey.value.isEmpty else { throw StoreError(.invalidArgument, "the \(provider.rawValue) API key is empty") }
        try connection.writeTransaction {
            guard try connection.queryFirst("SELECT 1 FROM projects WHERE id = ?", [.integer(projectID)], { _ in true }) != nil else {
                throw StoreError(.notFound, "no project with id \(projectID)")
            }
            try connection.execute("""
                INSERT INTO provider_settings (project_id, provider, api_key, base_url, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (project_id, provider) DO UPDATE
                SET api_key = excluded.api_key, base_url = excluded.base_url, updated_at = excluded.updated_at
                """,
                [.integer(projectID), .text(provider.rawValue), .text(apiKey.value), .string(baseURL),
                 .integer(StoreTime.nowMilliseconds())])
        }
    }

    public static let providerSelect = "SELECT project_id, provider, api_key, base_url, updated_at FROM provider_settings"

    /// The project's configured providers, by name. Rows naming a provider this build does not
    /// know are skipped.
    public func providers(projectID: Int64) throws -> [ProviderSettings] {
        try connection.query(
            Self.providerSelect + " WHERE project_id = ? ORDER BY provider",
            [.integer(projectID)], Self.providerSettings(from:)
        ).compactMap { $0 }
    }

    public func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings? {
        try connection.queryFirst(
            Self.providerSelect + " WHERE project_id = ? AND provider = ?",
            [.integer(projectID), .text(provider.rawValue)], Self.providerSettings(from:)) ?? nil
    }

    /// Removes the project's settings for `provider`; `false` if there were none.
    @discardableResult
    public func removeProvider(projectID: Int64, provider: Provider) throws -> Bool {
        try connection.writeTransaction {
            try connection.execute("DELETE FROM provider_settings WHERE project_id = ? AND provider = ?",
                                   [.integer(projectID), .text(provider.rawValue)])
            return connection.changes > 0
        }
    }

    private static func providerSettings(from row: SQLiteRow) -> ProviderSettings? {
        guard let provider = Provider(rawValue: row.string(1)) else { return nil }
        return ProviderSettings(projectID: row.int64(0), provider: provider, apiKey: Secret(row.string(2)),
                                baseURL: row.optionalString(3), updatedAt: StoreTime.date(row.int64(4)))
    }
}
