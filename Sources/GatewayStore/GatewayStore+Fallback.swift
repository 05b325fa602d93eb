import Foundation
import GatewayCore

/// A project's fallback chain for requests to one provider/model.
public struct FallbackChain: Sendable, Equatable {
    public var projectID: Int64
    public var primary: FallbackTarget
    public var targets: [FallbackTarget]

    public init(projectID: Int64, primary: FallbackTarget, targets: [FallbackTarget]) {
        self.projectID = projectID
        self.primary = primary
        self.targets = targets
    }

    /// The stored `targets` column: a JSON array of "provider/model" strings. Entries this build
    /// cannot read are skipped; nil when the column is not such an array.
    public static func decodeTargets(_ json: String) -> [FallbackTarget]? {
        guard case .array(let items)? = try? JSON.parse(Array(json.utf8)) else { return nil }
        return items.compactMap { item -> FallbackTarget? in
            guard case .string(let text) = item else { return nil }
            return try? FallbackTarget.parse(text).get()
        }
    }
}

/// A provider's circuit breaker in one project: consecutive failures and until when it is skipped.
public struct BreakerState: Sendable, Equatable {
    public var failures: Int
    /// Milliseconds since the epoch; 0 when never opened.
    public var openUntil: Int64

    public init(failures: Int, openUntil: Int64) {
        self.failures = failures
        self.openUntil = openUntil
    }
}

/// Fallback chains (`fallback set`) and the circuit breakers every worker shares (migration 3).
extension GatewayStore {
    // MARK: - Chains

    /// Creates or replaces the chain for `primary` in the project.
    public func setFallbackChain(_ chain: FallbackChain) throws {
        guard !chain.targets.isEmpty else { throw StoreError(.invalidArgument, "a fallback chain needs at least one target") }
        guard !chain.targets.contains(chain.primary) else {
            throw StoreError(.invalidArgument, "\(chain.primary) cannot fall back to itself")
        }
        let targets = JSON.array(chain.targets.map { .string($0.description) }).serializedString()
        try connection.writeTransaction {
            guard try connection.queryFirst("SELECT 1 FROM projects WHERE id = ?", [.integer(chain.projectID)], { _ in true }) != nil else {
                throw StoreError(.notFound, "no project with id \(chain.projectID)")
            }
            try connection.execute(
                """
                INSERT INTO fallback_chains (project_id, provider, model, targets, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (project_id, provider, model) DO UPDATE SET targets = excluded.targets, updated_at = excluded.updated_at
                """,
                [.integer(chain.projectID), .text(chain.primary.provider.rawValue), .text(chain.primary.model), .text(targets),
                 .integer(StoreTime.nowMilliseconds())])
        }
    }

    /// The project's chain for `primary`, or nil.
    public func fallbackChain(projectID: Int64, primary: FallbackTarget) throws -> FallbackChain? {
        try connection.queryFirst(
            "SELECT project_id, provider, model, targets FROM fallback_chains WHERE project_id = ? AND provider = ? AND model = ?",
            [.integer(projectID), .text(primary.provider.rawValue), .text(primary.model)], Self.fallbackChain(from:)) ?? nil
    }

    public func fallbackChains(projectID: Int64) throws -> [FallbackChain] {
        try connection.query(
            "SELECT project_id, provider, model, targets FROM fallback_chains WHERE project_id = ? ORDER BY provider, model",
            [.integer(projectID)], Self.fallbackChain(from:)
        ).compactMap { $0 }
    }

    /// Removes the chain for `primary`; false if there was none.
    @discardableResult
    public func removeFallbackChain(projectID: Int64, primary: FallbackTarget) throws -> Bool {
        try connection.writeTransaction {
            try connection.execute("DELETE FROM fallback_chains WHERE project_id = ? AND provider = ? AND model = ?",
                                   [.integer(projectID), .text(primary.provider.rawValue), .text(primary.model)])
            return connection.changes > 0
        }
    }

    /// Rows naming a provider or target this build cannot read are skipped.
    private static func fallbackChain(from row: SQLiteRow) -> FallbackChain? {
        guard let provider = Provider(rawValue: row.string(1)), let targets = FallbackChain.decodeTargets(row.string(3)) else { return nil }
        return FallbackChain(projectID: row.int64(0), primary: FallbackTarget(provider: provider, model: row.string(2)), targets: targets)
    }

    // MARK: - Circuit breakers

    public func breakerState(projectID: Int64, provider: Provider) throws -> BreakerState? {
        try connection.queryFirst("SELECT failures, open_until FROM circuit_breakers WHERE project_id = ? AND provider = ?",
                                  [.integer(projectID), .text(provider.rawValue)]) { BreakerState(failures: $0.int(0), openUntil: $0.int64(1)) }
    }

    /// Counts a failure. At `threshold` consecutive failures (and on every failure after, e.g. a
    /// failed probe) the breaker opens until `now + cooldown`; a provider's Retry-After keeps it
    /// open at least that long. Returns the new state.
    @discardableResult
    public func recordProviderFailure(projectID: Int64, provider: Provider, threshold: Int, cooldownSeconds: Double,
                                      retryAfterSeconds: Int?, now: Date = Date()) throws -> BreakerState {
        let nowMs = StoreTime.milliseconds(now)
        let cooldownEnd = nowMs + Int64(cooldownSeconds * 1000)
        let retryEnd = retryAfterSeconds.map { nowMs + Int64($0) * 1000 } ?? 0
        return try connection.writeTransaction {
            let previous = try connection.queryFirst(
                "SELECT failures, open_until FROM circuit_breakers WHERE project_id = ? AND provider = ?",
                [.integer(projectID), .text(provider.rawValue)]) { BreakerState(failures: $0.int(0), openUntil: $0.int64(1)) }
                ?? BreakerState(failures: 0, openUntil: 0)
            var state = BreakerState(failures: previous.failures + 1, openUntil: previous.openUntil)
            if state.failures >= threshold { state.openUntil = max(state.openUntil, cooldownEnd) }
            state.openUntil = max(state.openUntil, retryEnd)
            try connection.execute(
                "INSERT OR REPLACE INTO circuit_breakers (project_id, provider, failures, open_until) VALUES (?, ?, ?, ?)",
                [.integer(projectID), .text(provider.rawValue), .integer(Int64(state.failures)), .integer(state.openUntil)])
            return state
        }
    }

    /// After a cool-down: lets exactly one request (across all workers) probe the provider, by
    /// moving `open_until` from the value the caller read to `until`. True: the caller probes.
    public func claimBreakerProbe(projectID: Int64, provider: Provider, seenOpenUntil: Int64, until: Date) throws -> Bool {
        try connection.writeTransaction {
            try connection.execute(
                "UPDATE circuit_breakers SET open_until = ? WHERE project_id = ? AND provider = ? AND open_until = ?",
                [.integer(StoreTime.milliseconds(until)), .integer(projectID), .text(provider.rawValue), .integer(seenOpenUntil)])
            return connection.changes > 0
        }
    }

    /// A success closes the breaker (forgets the failures).
    public func recordProviderSuccess(projectID: Int64, provider: Provider) throws {
        try connection.writeTransaction {
            try connection.execute("DELETE FROM circuit_breakers WHERE project_id = ? AND provider = ?",
                                   [.integer(projectID), .text(provider.rawValue)])
        }
    }
}
