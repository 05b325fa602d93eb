import Foundation

/// The upstream providers the gateway speaks to, named as in the `X-AI-Provider` header.
public enum Provider: String, Sendable, CaseIterable, Codable {
    case openai, anthropic, google, mistral, cohere

    /// The root to which the provider's own API paths are appended (docs/api.md, "Choosing the provider").
    public var defaultBaseURL: String {
        switch self {
        case .openai: return "https://api.openai.com"
        case .anthropic: return "https://api.anthropic.com"
        case .google: return "https://generativelanguage.googleapis.com"
        case .mistral: return "https://api.mistral.ai"
        case .cohere: return "https://api.cohere.com"
        }
    }

    /// docs/api.md's inference rule for requests without `X-AI-Provider`.
    public static func inferred(fromModel model: String) -> Provider? {
        let name = model.lowercased()
        if name.hasPrefix("gpt-") || name.hasPrefix("o1") || name.hasPrefix("o3") || name.hasPrefix("o4") { return .openai }
        if name.hasPrefix("claude-") { return .anthropic }
        if name.hasPrefix("gemini-") { return .google }
        if name.hasPrefix("mistral-") || name.hasPrefix("codestral") || name.hasPrefix("open-mistral") { return .mistral }
        if name.hasPrefix("command") { return .cohere }
        return nil
    }
}

/// Limits that can be set on an org, a project or a key. `nil` means "no limit at this scope".
public struct Limits: Sendable, Equatable, Codable {
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var monthlyBudgetUSD: Double?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, monthlyBudgetUSD: Double? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.monthlyBudgetUSD = monthlyBudgetUSD
    }

    public static let none = Limits()
}

public enum Plan: String, Sendable, Codable, CaseIterable {
    case free, pro, team
}

public struct Org: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var limits: Limits
    public var createdAt: Date

    public init(id: Int64, name: String, limits: Limits, createdAt: Date) {
        self.id = id
        self.name = name
        self.limits = limits
        self.createdAt = createdAt
    }
}

public struct Project: Sendable, Equatable {
    public var id: Int64
    public var orgID: Int64
    public var orgName: String
    public var name: String
    public var plan: Plan
    public var limits: Limits
    public var createdAt: Date

    /// "org/project", the form every command takes.
    public var slug: String { "\(orgName)/\(name)" }

    public init(id: Int64, orgID: Int64, orgName: String, name: String, plan: Plan, limits: Limits, createdAt: Date) {
        self.id = id
        self.orgID = orgID
        self.orgName = orgName
        self.name = name
        self.plan = plan
        self.limits = limits
        self.createdAt = createdAt
    }
}

/// A gateway key as stored: never the secret, only its public id and metadata.
public struct GatewayKey: Sendable, Equatable {
    /// Public identifier, `gk_` followed by 12 lowercase hex digits; also the prefix of the secret.
    public var id: String
    public var projectID: Int64
    public var name: String?
    public var limits: Limits
    public var createdAt: Date
    public var revokedAt: Date?

    public var isRevoked: Bool { revokedAt != nil }

    public init(id: String, projectID: Int64, name: String?, limits: Limits, createdAt: Date, revokedAt: Date?) {
        self.id = id
        self.projectID = projectID
        self.name = name
        self.limits = limits
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// What a successful authentication yields: the key and everything the pipeline needs about its owner.
public struct AuthenticatedKey: Sendable, Equatable {
    public var key: GatewayKey
    public var project: Project
    public var org: Org
    /// The store's settings version when the key was read: a worker's cached settings (the
    /// price table) older than this are stale and re-read before use.
    public var settingsVersion: Int64 = 0
    /// Whether the project had any circuit-breaker row when the key was read. Without one (every
    /// provider healthy, the usual case) the request's first breaker check needs no read of its own.
    public var projectHasBreakerState = true
    /// Set when the store answered from memory instead of reading the key (a backend across the
    /// network saves the round trip): a fingerprint of the key's row as remembered. The request's
    /// admission then checks it against the database in the same round trip, before anything is
    /// counted or answered (`AdmissionPlan.keyCheck`). Nil: read from the store for this request,
    /// or confirmed since.
    public var pendingCheck: String?

    /// Whether any scope of this key has a monthly spend cap (then every answer must be priced).
    public var hasMonthlyBudget: Bool {
        key.limits.monthlyBudgetUSD != nil || project.limits.monthlyBudgetUSD != nil || org.limits.monthlyBudgetUSD != nil
    }

    public init(key: GatewayKey, project: Project, org: Org) {
        self.key = key
        self.project = project
        self.org = org
    }
}

/// A secret string that never prints itself (logs, errors, `String(describing:)`).
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// A provider as configured for one project.
public struct ProviderSettings: Sendable, Equatable {
    public var projectID: Int64
    public var provider: Provider
    public var apiKey: Secret
    /// nil means the provider's default base URL.
    public var baseURL: String?
    public var updatedAt: Date

    public var effectiveBaseURL: String { baseURL ?? provider.defaultBaseURL }

    public init(projectID: Int64, provider: Provider, apiKey: Secret, baseURL: String?, updatedAt: Date) {
        self.projectID = projectID
        self.provider = provider
        self.apiKey = apiKey
        self.baseURL = baseURL
        self.updatedAt = updatedAt
    }
}

/// One call to a provider made while serving a request (several when fallback kicks in).
public struct AuditAttempt: Sendable, Equatable, Codable {
    public var provider: String
    public var model: String
    public var status: Int
    public var latencyMs: Double
    public var errorCode: String?

    public init(provider: String, model: String, status: Int, latencyMs: Double, errorCode: String? = nil) {
        self.provider = provider
        self.model = model
        self.status = status
        self.latencyMs = latencyMs
        self.errorCode = errorCode
    }
}

/// One row of the audit log: every request to /v1/*, whatever its outcome. Never holds prompts,
/// completions or secrets.
public struct AuditRecord: Sendable, Equatable {
    public var requestID: String
    /// When the request arrived.
    public var time: Date
    public var method: String
    public var route: String
    public var orgID: Int64?
    public var projectID: Int64?
    public var keyID: String?
    /// The body's `user` field.
    public var user: String?
    public var provider: String?
    public var modelRequested: String?
    public var modelServed: String?
    /// The HTTP status the client got (499 when the client went away first).
    public var status: Int
    public var errorCode: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var cachedTokens: Int?
    /// Subset of completion tokens spent on reasoning (OpenAI o-series, Gemini thinking).
    public var reasoningTokens: Int?
    /// Subset of prompt tokens written to the provider's prompt cache (Anthropic).
    public var cacheWriteTokens: Int?
    /// The request's spend was already added to the month-to-date totals by the limiter (so
    /// the audit writer must not add it again). Not stored.
    public var spendSettled = false
    /// nil when unknown (no price, or no usage), never silently zero.
    public var costUSD: Double?
    public var latencyMs: Double
    public var upstreamLatencyMs: Double?
    /// Streams only: time from arrival to the first content byte sent to the client.
    public var timeToFirstTokenMs: Double?
    public var cacheHit: Bool
    public var stream: Bool
    public var attempts: [AuditAttempt]

    public init(
        requestID: String, time: Date, method: String, route: String,
        orgID: Int64? = nil, projectID: Int64? = nil, keyID: String? = nil, user: String? = nil,
        provider: String? = nil, modelRequested: String? = nil, modelServed: String? = nil,
        status: Int, errorCode: String? = nil,
        promptTokens: Int? = nil, completionTokens: Int? = nil, cachedTokens: Int? = nil,
        costUSD: Double? = nil, latencyMs: Double, upstreamLatencyMs: Double? = nil,
        timeToFirstTokenMs: Double? = nil, cacheHit: Bool = false, stream: Bool = false,
        attempts: [AuditAttempt] = []
    ) {
        self.requestID = requestID
        self.time = time
        self.method = method
        self.route = route
        self.orgID = orgID
        self.projectID = projectID
        self.keyID = keyID
        self.user = user
        self.provider = provider
        self.modelRequested = modelRequested
        self.modelServed = modelServed
        self.status = status
        self.errorCode = errorCode
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.costUSD = costUSD
        self.latencyMs = latencyMs
        self.upstreamLatencyMs = upstreamLatencyMs
        self.timeToFirstTokenMs = timeToFirstTokenMs
        self.cacheHit = cacheHit
        self.stream = stream
        self.attempts = attempts
    }
}

/// Which audit rows to read back (export, admin API).
public struct AuditQuery: Sendable, Equatable {
    public var projectID: Int64?
    public var keyID: String?
    public var model: String?
    public var status: Int?
    /// Inclusive lower bound on `time`.
    public var from: Date?
    /// Exclusive upper bound on `time`.
    public var to: Date?
    public var limit: Int?
    /// Rows after this cursor (the `seq` of the last row of the previous page).
    public var afterSequence: Int64?

    public init(projectID: Int64? = nil, keyID: String? = nil, model: String? = nil, status: Int? = nil,
                from: Date? = nil, to: Date? = nil, limit: Int? = nil, afterSequence: Int64? = nil) {
        self.projectID = projectID
        self.keyID = keyID
        self.model = model
        self.status = status
        self.from = from
        self.to = to
        self.limit = limit
        self.afterSequence = afterSequence
    }
}

/// An audit row as read back, with the names needed to show it.
public struct AuditRow: Sendable, Equatable {
    /// Insertion order; the export cursor.
    public var sequence: Int64
    public var record: AuditRecord
    /// "org/project" when the request was authenticated.
    public var projectSlug: String?

    public init(sequence: Int64, record: AuditRecord, projectSlug: String?) {
        self.sequence = sequence
        self.record = record
        self.projectSlug = projectSlug
    }
}
