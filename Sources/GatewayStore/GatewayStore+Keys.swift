import Crypto
import Foundation
import GatewayCore

/// The outcome of presenting a gateway key secret.
public enum AuthenticationResult: Sendable, Equatable {
    case valid(AuthenticatedKey)
    /// Malformed, no such key, or the secret does not match: all look the same to a client.
    case unknown
    /// The secret is right but the key was revoked.
    case revoked
}

/// Gateway keys: created with a random secret shown once, stored as SHA-256 only.
extension GatewayStore {
    /// Creates a key for the project and returns it with its secret, which is not stored and
    /// cannot be shown again. `.notFound` if the project is unknown.
    public func createKey(projectID: Int64, name: String? = nil, limits: Limits = .none) throws -> (key: GatewayKey, secret: String) {
        try Self.validate(limits)
        let now = StoreTime.nowMilliseconds()
        return try connection.writeTransaction {
            guard try connection.queryFirst("SELECT 1 FROM projects WHERE id = ?", [.integer(projectID)], { _ in true }) != nil else {
                throw StoreError(.notFound, "no project with id \(projectID)")
            }
            // 48 random bits of id: a collision is unlikely but would be a primary-key clash, so retry.
            for _ in 0..<8 {
                let (id, secret) = KeySecret.generate()
                let taken = try connection.queryFirst("SELECT 1 FROM gateway_keys WHERE id = ?", [.text(id)], { _ in true }) != nil
                if taken { continue }
                let hash = KeySecret.hashBytes(secret)
                try connection.execute("""
                    INSERT INTO gateway_keys (id, project_id, name, secret_hash, rpm, tpm, monthly_budget_usd, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.text(id), .integer(projectID), .string(name), .blob(hash)] + Self.limitValues(limits) + [.integer(now)])
                let key = GatewayKey(id: id, projectID: projectID, name: name, limits: limits,
                                     createdAt: StoreTime.date(now), revokedAt: nil)
                return (key, secret)
            }
            throw StoreError(.other, "could not find a free key id")
        }
    }

    /// The project's keys, oldest first, revoked ones included.
    public func keys(projectID: Int64) throws -> [GatewayKey] {
        try connection.query(Self.keySelect + " WHERE project_id = ? ORDER BY created_at, id", [.integer(projectID)],
                             { Self.key($0, 0) })
    }

    public func key(id: String) throws -> GatewayKey? {
        try connection.queryFirst(Self.keySelect + " WHERE id = ?", [.text(id)], { Self.key($0, 0) })
    }

    /// Revokes a key from now on; `false` if no key has that id. Revoking twice keeps the first time.
    @discardableResult
    public func revokeKey(id: String) throws -> Bool {
        try connection.writeTransaction {
            try connection.execute("UPDATE gateway_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                                   [.integer(StoreTime.nowMilliseconds()), .text(id)])
            return connection.changes > 0
        }
    }

    /// Checks a presented secret: on every request's path, so one cached statement looking the
    /// key up by primary key with its project and org, and a constant-time digest comparison.
    /// A malformed secret is `.unknown` without a database read.
    public func authenticate(secret: String) throws -> AuthenticationResult {
        try lookUp(secret: secret, withKeyVersion: false).result
    }

    /// `authenticate(secret:)` with the `key_version` (migration 6) read in the same statement, so
    /// in the same snapshot: what a worker that remembers keys confirms them by at admission
    /// (`SQLiteRequestStore`). The version is nil when the key is not valid.
    public func authenticateWithKeyVersion(secret: String) throws -> (result: AuthenticationResult, keyVersion: Int64?) {
        try lookUp(secret: secret, withKeyVersion: true)
    }

    private func lookUp(secret: String, withKeyVersion: Bool) throws -> (result: AuthenticationResult, keyVersion: Int64?) {
        guard let id = KeySecret.keyID(fromSecret: secret) else { return (.unknown, nil) }
        let digest = KeySecret.digest(secret)
        return try connection.withStatement(withKeyVersion ? Self.authenticateSelectWithKeyVersion : Self.authenticateSelect) { statement in
            try statement.bind(id, at: 1)
            guard try statement.step() else { return (.unknown, nil) }
            let row = statement.row
            guard row.withBlob(8, { KeySecret.constantTimeEquals(digest, $0) }) else { return (.unknown, nil) }
            let key = Self.key(row, 0)
            if key.isRevoked { return (.revoked, nil) }
            let project = Self.project(row, 9)
            let org = Org(id: project.orgID, name: project.orgName, limits: Self.limits(row, 18),
                          createdAt: StoreTime.date(row.int64(21)))
            var authenticated = AuthenticatedKey(key: key, project: project, org: org)
            authenticated.settingsVersion = row.optionalInt64(22) ?? 0
            authenticated.projectHasBreakerState = row.int64(23) != 0
            return (.valid(authenticated), withKeyVersion ? row.int64(24) : nil)
        }
    }

    /// The counter every change to a key lookup's result bumps (migration 6, `key_version`).
    public func keyVersion() throws -> Int64 {
        try connection.queryFirst("SELECT version FROM key_version WHERE id = 1", [], { $0.int64(0) }) ?? 0
    }

    /// Whether a key answered from memory was read at the current `key_version`.
    func isCurrent(_ check: AdmissionPlan.KeyCheck) throws -> Bool {
        try keyVersion() == Int64(check.fingerprint)
    }

    // MARK: - Row mapping

    /// Shared with the PostgreSQL backend, as the other `…Select` texts: plain SQL both read alike.
    public static let keySelect = """
        SELECT id, project_id, name, rpm, tpm, monthly_budget_usd, created_at, revoked_at FROM gateway_keys
        """

    /// Columns 0–7: the key; 8: its hash; 9–17: the project as in `projectSelect`; 18–21: the org;
    /// 22: the settings version (so cached settings are checked at no extra query); 23: whether the
    /// project has any circuit-breaker row (without one, the breaker needs no read of its own).
    static let authenticateSelect = authenticateColumns + " WHERE k.id = ?"

    /// The lookup and, as column 24, the `key_version`: one statement, one snapshot.
    static let authenticateSelectWithKeyVersion =
        "SELECT lookup.*, (SELECT version FROM key_version WHERE id = 1) FROM (\(authenticateSelect)) lookup"

    /// The lookup without its WHERE clause. PostgreSQL's `deploxa_authenticate` (its migration
    /// step 4) returns the same columns in the same order: change both together.
    static let authenticateColumns = """
        SELECT k.id, k.project_id, k.name, k.rpm, k.tpm, k.monthly_budget_usd, k.created_at, k.revoked_at,
               k.secret_hash,
               p.id, p.org_id, o.name, p.name, p.plan, p.rpm, p.tpm, p.monthly_budget_usd, p.created_at,
               o.rpm, o.tpm, o.monthly_budget_usd, o.created_at,
               (SELECT version FROM settings_version WHERE id = 1),
               EXISTS (SELECT 1 FROM circuit_breakers b WHERE b.project_id = p.id)
        FROM gateway_keys k
        JOIN projects p ON p.id = k.project_id
        JOIN orgs o ON o.id = p.org_id
        """

    static func key(_ row: SQLiteRow, _ start: Int32) -> GatewayKey {
        GatewayKey(id: row.string(start), projectID: row.int64(start + 1), name: row.optionalString(start + 2),
                   limits: limits(row, start + 3), createdAt: StoreTime.date(row.int64(start + 6)),
                   revokedAt: row.optionalInt64(start + 7).map(StoreTime.date))
    }
}
