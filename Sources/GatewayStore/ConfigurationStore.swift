import Foundation
import GatewayCore

/// What the command line needs to set a gateway up and read its audit log, on either backend:
/// orgs, projects, providers, keys, limits, fallback chains, settings and the audit export.
/// `GatewayStore` (SQLite) and the PostgreSQL backend both provide it, so `org create`,
/// `key create`, `audit export` and the rest work the same against a shared database.
public protocol ConfigurationStore: RollupSource {
    /// Brings the schema up to date; returns the names of the steps this call applied.
    func migrate() throws -> [String]

    func createOrg(name: String, limits: Limits) throws -> Org
    func org(named name: String) throws -> Org?
    func createProject(orgName: String, name: String, plan: Plan, limits: Limits) throws -> Project
    /// `slug` is "org/project".
    func project(slug: String) throws -> Project?
    func projects() throws -> [Project]

    func setProvider(projectID: Int64, provider: Provider, apiKey: Secret, baseURL: String?) throws
    func providers(projectID: Int64) throws -> [ProviderSettings]

    func createKey(projectID: Int64, name: String?, limits: Limits) throws -> (key: GatewayKey, secret: String)
    func key(id: String) throws -> GatewayKey?
    func keys(projectID: Int64) throws -> [GatewayKey]
    func revokeKey(id: String) throws -> Bool

    func updateLimits(orgName: String, limits: Limits) throws
    func updateLimits(projectID: Int64, limits: Limits) throws
    func updateLimits(keyID: String, limits: Limits) throws
    func updatePlan(projectID: Int64, plan: Plan) throws
    /// Sets a scope's month-to-date request count (operators moving from another gateway; tests).
    func setMonthlyRequests(_ scope: LimitScope, month: String, to count: Int) throws

    func setFallbackChain(_ chain: FallbackChain) throws
    func fallbackChains(projectID: Int64) throws -> [FallbackChain]
    func removeFallbackChain(projectID: Int64, primary: FallbackTarget) throws -> Bool

    func prices() throws -> [Price]
    /// Adds or replaces a model's price.
    func setPrice(_ price: Price) throws

    func setting(_ key: String) throws -> String?
    func setSetting(_ key: String, to value: String?) throws

    /// Rows matching every filter of `query`, in export order (`seq` ascending).
    func auditRows(_ query: AuditQuery) throws -> [AuditRow]
}

extension GatewayStore: ConfigurationStore {}
