import Crypto
import Foundation
import GatewayCore

/// What an admin token may see and change.
public enum AdminScope: Sendable, Equatable {
    case installation
    case org(id: Int64, name: String)
    /// `slug` is "org/project".
    case project(id: Int64, orgID: Int64, slug: String)
}

/// A credential for the admin API and the dashboard. Its secret is shown once, at creation.
public struct AdminToken: Sendable, Equatable {
    /// "at_" + 12 lowercase hex digits.
    public var id: String
    public var name: String?
    public var scope: AdminScope
    public var readOnly: Bool
    public var createdAt: Date
    public var revokedAt: Date?

    public init(id: String, name: String?, scope: AdminScope, readOnly: Bool, createdAt: Date, revokedAt: Date?) {
        self.id = id
        self.name = name
        self.scope = scope
        self.readOnly = readOnly
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    public var isRevoked: Bool { revokedAt != nil }
}

/// Admin tokens (`dpa_…` secrets, the same shape as gateway keys but their own prefix, so one
/// kind never authenticates as the other) and the dashboard's sessions (random cookies).
extension GatewayStore {
    /// A new token and its secret, which is not stored and cannot be shown again. `orgName` /
    /// `projectSlug`: at most one (`.invalidArgument` otherwise), `.notFound` if it does not
    /// exist; neither is an installation-wide token.
    public func createAdminToken(name: String?, orgName: String?, projectSlug: String?, readOnly: Bool) throws
        -> (token: AdminToken, secret: String)
    {
        if orgName != nil && projectSlug != nil {
            throw StoreError(.invalidArgument, "an admin token is scoped to an org or a project, not both")
        }
        let now = StoreTime.nowMilliseconds()
        return try connection.writeTransaction {
            var scope = AdminScope.installation
            if let orgName {
                guard let org = try self.org(named: orgName) else { throw StoreError(.notFound, "no org named '\(orgName)'") }
                scope = .org(id: org.id, name: org.name)
            } else if let projectSlug {
                guard let project = try self.project(slug: projectSlug) else {
                    throw StoreError(.notFound, "no project '\(projectSlug)'")
                }
                scope = .project(id: project.id, orgID: project.orgID, slug: project.slug)
            }
            // 48 random bits of id: a collision is unlikely but would be a primary-key clash, so retry.
            for _ in 0..<8 {
                let (id, secret) = KeySecret.generate(idPrefix: KeySecret.adminIDPrefix, secretPrefix: KeySecret.adminSecretPrefix)
                let taken = try connection.queryFirst("SELECT 1 FROM admin_tokens WHERE id = ?", [.text(id)], { _ in true }) != nil
                if taken { continue }
                try connection.execute("""
                    INSERT INTO admin_tokens (id, name, org_id, project_id, read_only, secret_hash, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.text(id), .string(name), .int64(scope.orgOnlyID), .int64(scope.projectID), .bool(readOnly),
                     .blob(KeySecret.hashBytes(secret)), .integer(now)])
                let token = AdminToken(id: id, name: name, scope: scope, readOnly: readOnly,
                                       createdAt: StoreTime.date(now), revokedAt: nil)
                return (token, secret)
            }
            throw StoreError(.other, "could not find a free admin token id")
        }
    }

    /// Every admin token, newest first, revoked ones included.
    public func adminTokens() throws -> [AdminToken] {
        try connection.query(Self.adminTokenSelect + " ORDER BY t.created_at DESC, t.id DESC", [], { Self.adminToken($0) })
    }

    /// Revokes a token from now on, and ends its sessions. `false` when unknown or already revoked.
    @discardableResult
    public func revokeAdminToken(id: String) throws -> Bool {
        try connection.writeTransaction {
            try connection.execute("UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                   [.integer(StoreTime.nowMilliseconds()), .text(id)])
            let revoked = connection.changes > 0
            if revoked { try connection.execute("DELETE FROM admin_sessions WHERE token_id = ?", [.text(id)]) }
            return revoked
        }
    }

    /// The live token a presented secret belongs to; nil for anything else (unknown, revoked,
    /// malformed, a gateway key). Found by the id inside the secret, compared in constant time.
    public func authenticateAdmin(secret: String) throws -> AdminToken? {
        guard let id = KeySecret.id(fromSecret: secret, secretPrefix: KeySecret.adminSecretPrefix,
                                    idPrefix: KeySecret.adminIDPrefix) else { return nil }
        let digest = KeySecret.digest(secret)
        return try connection.queryFirst(Self.adminTokenSelect + " WHERE t.id = ?", [.text(id)]) { row -> AdminToken? in
            guard row.withBlob(Self.adminTokenHashColumn, { KeySecret.constantTimeEquals(digest, $0) }) else { return nil }
            let token = Self.adminToken(row)
            return token.isRevoked ? nil : token
        } ?? nil
    }

    // MARK: - Sessions

    /// A dashboard login for a live token: a random cookie value (256 bits, base64url) whose
    /// SHA-256 alone is stored. `.notFound` if the token is unknown or revoked.
    public func createAdminSession(tokenID: String, lifetimeSeconds: Int) throws -> (secret: String, expiresAt: Date) {
        guard lifetimeSeconds > 0 else { throw StoreError(.invalidArgument, "a session lifetime must be positive") }
        let now = StoreTime.nowMilliseconds()
        let expires = now + Int64(lifetimeSeconds) * 1000
        let secret = Self.randomSessionSecret()
        try connection.writeTransaction {
            let live = try connection.queryFirst("SELECT 1 FROM admin_tokens WHERE id = ? AND revoked_at IS NULL",
                                                 [.text(tokenID)], { _ in true }) ?? false
            guard live else { throw StoreError(.notFound, "no live admin token \(tokenID)") }
            try connection.execute(
                "INSERT INTO admin_sessions (secret_hash, token_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                [.blob(KeySecret.hashBytes(secret)), .text(tokenID), .integer(now), .integer(expires)])
        }
        return (secret, StoreTime.date(expires))
    }

    /// The token a live session acts as; nil when the session is unknown, expired, logged out,
    /// or its token was revoked. Looked up by the cookie's hash (the primary key), so an equal
    /// hash is the whole check.
    public func adminSession(secret: String, now: Date = Date()) throws -> AdminToken? {
        try connection.queryFirst(
            Self.adminTokenSelect + """
             JOIN admin_sessions s ON s.token_id = t.id
             WHERE s.secret_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL
            """,
            [.blob(KeySecret.hashBytes(secret)), .integer(StoreTime.milliseconds(now))], { Self.adminToken($0) })
    }

    /// Logs a session out (nothing happens for an unknown one).
    public func revokeAdminSession(secret: String) throws {
        try connection.writeTransaction {
            try connection.execute("DELETE FROM admin_sessions WHERE secret_hash = ?", [.blob(KeySecret.hashBytes(secret))])
        }
    }

    /// Deletes expired sessions (the janitor's job); returns how many.
    @discardableResult
    public func pruneAdminSessions(now: Date = Date()) throws -> Int {
        try connection.writeTransaction {
            try connection.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", [.integer(StoreTime.milliseconds(now))])
            return connection.changes
        }
    }

    /// 32 bytes from the system's cryptographic generator, base64url without padding (43 characters).
    public static func randomSessionSecret() -> String {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    // MARK: - Row mapping

    /// Columns 0–5: the token; 6–7: its org's id and name; 8–10: its project's id, org id and
    /// slug; 11: the hash.
    public static let adminTokenSelect = """
        SELECT t.id, t.name, t.read_only, t.created_at, t.revoked_at, t.org_id,
               o.id, o.name, p.id, p.org_id, po.name || '/' || p.name, t.secret_hash
        FROM admin_tokens t
        LEFT JOIN orgs o ON o.id = t.org_id
        LEFT JOIN projects p ON p.id = t.project_id
        LEFT JOIN orgs po ON po.id = p.org_id
        """
    static let adminTokenHashColumn: Int32 = 11

    static func adminToken(_ row: SQLiteRow) -> AdminToken {
        var scope = AdminScope.installation
        if let orgID = row.optionalInt64(6) {
            scope = .org(id: orgID, name: row.string(7))
        } else if let projectID = row.optionalInt64(8) {
            scope = .project(id: projectID, orgID: row.int64(9), slug: row.string(10))
        }
        return AdminToken(id: row.string(0), name: row.optionalString(1), scope: scope, readOnly: row.bool(2),
                          createdAt: StoreTime.date(row.int64(3)), revokedAt: row.optionalInt64(4).map(StoreTime.date))
    }
}
