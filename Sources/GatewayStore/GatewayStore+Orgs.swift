import Foundation
import GatewayCore

/// Orgs and projects: the owners of keys, provider settings and limits.
extension GatewayStore {
    /// Org and project names: lowercase, digits, `_` and `-`, 1–63 characters, not starting
    /// with `_` or `-` (they appear in `org/project` slugs and URLs).
    public static func isValidName(_ name: String) -> Bool {
        let bytes = name.utf8
        guard let first = bytes.first, bytes.count <= 63, isLowerOrDigit(first) else { return false }
        return bytes.allSatisfy { isLowerOrDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isLowerOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    // MARK: - Orgs

    public func createOrg(name: String, limits: Limits = .none) throws -> Org {
        try Self.validate(name, what: "org")
        try Self.validate(limits)
        let now = StoreTime.nowMilliseconds()
        let id = try connection.writeTransaction { () throws -> Int64 in
            do {
                try connection.execute(
                    "INSERT INTO orgs (name, rpm, tpm, monthly_budget_usd, created_at) VALUES (?, ?, ?, ?, ?)",
                    [.text(name)] + Self.limitValues(limits) + [.integer(now)])
            } catch let error as StoreError where error.kind == .constraint {
                throw StoreError(.constraint, "an org named '\(name)' already exists", resultCode: error.resultCode)
            }
            return connection.lastInsertRowID
        }
        return Org(id: id, name: name, limits: limits, createdAt: StoreTime.date(now))
    }

    public func org(named name: String) throws -> Org? {
        try connection.queryFirst(
            Self.orgSelect + " WHERE name = ?", [.text(name)],
            Self.org(from:))
    }

    public func orgs() throws -> [Org] {
        try connection.query(Self.orgSelect + " ORDER BY name",
                             [], Self.org(from:))
    }

    // MARK: - Projects

    public func createProject(orgName: String, name: String, plan: Plan = .pro, limits: Limits = .none) throws -> Project {
        try Self.validate(name, what: "project")
        try Self.validate(limits)
        let now = StoreTime.nowMilliseconds()
        let orgID = try connection.writeTransaction { () throws -> (Int64, Int64) in
            guard let orgID = try connection.queryFirst("SELECT id FROM orgs WHERE name = ?", [.text(orgName)], { $0.int64(0) }) else {
                throw StoreError(.notFound, "no org named '\(orgName)'")
            }
            do {
                try connection.execute(
                    "INSERT INTO projects (org_id, name, plan, rpm, tpm, monthly_budget_usd, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [.integer(orgID), .text(name), .text(plan.rawValue)] + Self.limitValues(limits) + [.integer(now)])
            } catch let error as StoreError where error.kind == .constraint {
                throw StoreError(.constraint, "a project named '\(orgName)/\(name)' already exists", resultCode: error.resultCode)
            }
            return (orgID, connection.lastInsertRowID)
        }
        return Project(id: orgID.1, orgID: orgID.0, orgName: orgName, name: name, plan: plan, limits: limits,
                       createdAt: StoreTime.date(now))
    }

    /// `slug` is "org/project".
    public func project(slug: String) throws -> Project? {
        guard let slash = slug.firstIndex(of: "/") else { return nil }
        let orgName = String(slug[..<slash])
        let name = String(slug[slug.index(after: slash)...])
        return try connection.queryFirst(Self.projectSelect + " WHERE o.name = ? AND p.name = ?",
                                         [.text(orgName), .text(name)], Self.project(from:))
    }

    public func project(id: Int64) throws -> Project? {
        try connection.queryFirst(Self.projectSelect + " WHERE p.id = ?", [.integer(id)], Self.project(from:))
    }

    /// Every project, ordered by slug.
    public func projects() throws -> [Project] {
        try connection.query(Self.projectSelect + " ORDER BY o.name, p.name", [], Self.project(from:))
    }

    // MARK: - Limits

    /// Replaces the org's limits (nil fields remove a limit). `.notFound` if there is no such org.
    public func updateLimits(orgName: String, limits: Limits) throws {
        try updateLimits(table: "orgs", key: "name", value: .text(orgName), limits: limits, what: "org '\(orgName)'")
    }

    /// Replaces the project's limits. `.notFound` if there is no such project.
    public func updateLimits(projectID: Int64, limits: Limits) throws {
        try updateLimits(table: "projects", key: "id", value: .integer(projectID), limits: limits, what: "project \(projectID)")
    }

    /// Replaces the key's limits. `.notFound` if there is no such key.
    public func updateLimits(keyID: String, limits: Limits) throws {
        try updateLimits(table: "gateway_keys", key: "id", value: .text(keyID), limits: limits, what: "key \(keyID)")
    }

    /// `table` and `key` are constants from the three methods above, never caller input.
    private func updateLimits(table: StaticString, key: StaticString, value: SQLValue, limits: Limits, what: String) throws {
        try Self.validate(limits)
        try connection.writeTransaction {
            try connection.execute("UPDATE \(table) SET rpm = ?, tpm = ?, monthly_budget_usd = ? WHERE \(key) = ?",
                                   Self.limitValues(limits) + [value])
            if connection.changes == 0 { throw StoreError(.notFound, "no \(what)") }
        }
    }

    // MARK: - Row mapping

    public static let orgSelect = "SELECT id, name, rpm, tpm, monthly_budget_usd, created_at FROM orgs"

    public static let projectSelect = """
        SELECT p.id, p.org_id, o.name, p.name, p.plan, p.rpm, p.tpm, p.monthly_budget_usd, p.created_at
        FROM projects p JOIN orgs o ON o.id = p.org_id
        """

    static func org(from row: SQLiteRow) -> Org {
        Org(id: row.int64(0), name: row.string(1), limits: limits(row, 2), createdAt: StoreTime.date(row.int64(5)))
    }

    static func project(from row: SQLiteRow) -> Project {
        project(row, 0)
    }

    /// A project from 9 columns starting at `start`, in `projectSelect`'s order.
    static func project(_ row: SQLiteRow, _ start: Int32) -> Project {
        Project(id: row.int64(start), orgID: row.int64(start + 1), orgName: row.string(start + 2),
                name: row.string(start + 3), plan: Plan(rawValue: row.string(start + 4)) ?? .pro,
                limits: limits(row, start + 5), createdAt: StoreTime.date(row.int64(start + 8)))
    }

    /// Limits from the three columns rpm, tpm, monthly_budget_usd starting at `start`.
    static func limits(_ row: SQLiteRow, _ start: Int32) -> Limits {
        Limits(requestsPerMinute: row.optionalInt(start), tokensPerMinute: row.optionalInt(start + 1),
               monthlyBudgetUSD: row.optionalDouble(start + 2))
    }

    static func limitValues(_ limits: Limits) -> [SQLValue] {
        [.int(limits.requestsPerMinute), .int(limits.tokensPerMinute), .real(limits.monthlyBudgetUSD)]
    }

    /// Shared by both backends, so a name or limit is refused the same way everywhere.
    public static func validate(_ name: String, what: String) throws {
        guard isValidName(name) else {
            throw StoreError(.invalidArgument,
                             "invalid \(what) name '\(name.prefix(80))': use 1-63 of a-z 0-9 _ -, starting with a letter or digit")
        }
    }

    public static func validate(_ limits: Limits) throws {
        if let rpm = limits.requestsPerMinute, rpm < 0 { throw StoreError(.invalidArgument, "rpm must not be negative") }
        if let tpm = limits.tokensPerMinute, tpm < 0 { throw StoreError(.invalidArgument, "tpm must not be negative") }
        if let budget = limits.monthlyBudgetUSD, !(budget >= 0 && budget.isFinite) {
            throw StoreError(.invalidArgument, "monthly budget must be a non-negative number of USD")
        }
    }
}

extension GatewayStore {
    /// Moves a project to another plan (the free plan's monthly cap applies from the next request).
    public func updatePlan(projectID: Int64, plan: Plan) throws {
        try connection.writeTransaction {
            try connection.execute("UPDATE projects SET plan = ? WHERE id = ?", [.text(plan.rawValue), .integer(projectID)])
            guard connection.changes > 0 else { throw StoreError(.notFound, "no project with id \(projectID)") }
        }
    }
}
