import Foundation
import GatewayCore

/// Everything the admin REST API and the dashboard read and change, on either backend: the
/// command line's operations plus admin tokens and sessions, the audit browser and month-to-date
/// figures. `GatewayStore` (SQLite) and the PostgreSQL backend both provide it, so /api/v1 and
/// /dashboard work the same on one machine and on several.
public protocol AdminStore: ConfigurationStore, Sendable {
    func orgs() throws -> [Org]
    func project(id: Int64) throws -> Project?
    func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings?
    func removeProvider(projectID: Int64, provider: Provider) throws -> Bool
    /// Month-to-date requests and spend of one scope (`month` as "YYYY-MM", UTC).
    func monthToDate(_ scope: LimitScope, month: String) throws -> (requests: Int, costUSD: Double)

    /// Newest first, keyset-paged on (time, seq): see `GatewayStore.auditPage`.
    func auditPage(_ filter: AuditFilter, limit: Int, after cursor: AuditCursor?) throws -> (rows: [AuditRow], next: AuditCursor?)
    func auditRow(requestID: String, scope: AdminScope) throws -> AuditRow?
    func dimensions(scope: AdminScope) throws -> AuditDimensions

    func createAdminToken(name: String?, orgName: String?, projectSlug: String?, readOnly: Bool) throws -> (token: AdminToken, secret: String)
    func adminTokens() throws -> [AdminToken]
    func revokeAdminToken(id: String) throws -> Bool
    func authenticateAdmin(secret: String) throws -> AdminToken?
    func createAdminSession(tokenID: String, lifetimeSeconds: Int) throws -> (secret: String, expiresAt: Date)
    func adminSession(secret: String, now: Date) throws -> AdminToken?
    func revokeAdminSession(secret: String) throws
    func pruneAdminSessions(now: Date) throws -> Int

    /// Lets go of the connection(s); later calls fail.
    func close()
}

extension AdminStore {
    public func adminSession(secret: String) throws -> AdminToken? { try adminSession(secret: secret, now: Date()) }
}

extension GatewayStore: AdminStore {}

extension AdminScope {
    /// The org of an org-scoped token (nil for the other scopes), as stored in `admin_tokens.org_id`.
    public var orgOnlyID: Int64? {
        if case .org(let id, _) = self { return id }
        return nil
    }

    public var projectID: Int64? {
        if case .project(let id, _, _) = self { return id }
        return nil
    }
}
