import Foundation

// View models for the dashboard pages. Plain values filled by the controller; the renderers do
// no I/O. All money is US dollars, all durations milliseconds, all dates absolute (shown in UTC).

// MARK: - Common

/// A project, as `org/name`.
public struct ProjectRef: Sendable, Equatable {
    public var org: String
    public var name: String
    /// `"org/name"`.
    public var slug: String { "\(org)/\(name)" }
    public init(org: String, name: String) {
        self.org = org
        self.name = name
    }
}

/// A one-shot message shown at the top of the page (after a redirect).
public struct Flash: Sendable, Equatable {
    public var message: String
    /// Error (red) rather than success (green).
    public var isError: Bool
    public init(message: String, isError: Bool = false) {
        self.message = message
        self.isError = isError
    }
}

/// Who is signed in, and what every page's chrome needs.
public struct DashboardSession: Sendable, Equatable {
    /// The admin token's name.
    public var tokenName: String
    /// The token's org scope; nil = whole installation.
    public var scopeOrg: String?
    /// The token's project scope (within `scopeOrg`); nil = the whole org (or installation).
    public var scopeProject: String?
    /// Read-only tokens see no change forms.
    public var readOnly: Bool
    /// The CSRF token put in every POST form (field `csrf`).
    public var csrf: String
    /// Projects the token can see, for the nav's project picker.
    public var projects: [ProjectRef]
    /// The gateway's public base URL (no trailing slash), for curl examples, e.g. `https://ai.example.com`.
    public var gatewayBaseURL: String
    /// Message to show once at the top of the page.
    public var flash: Flash?

    public init(tokenName: String, scopeOrg: String? = nil, scopeProject: String? = nil, readOnly: Bool = false,
                csrf: String, projects: [ProjectRef] = [], gatewayBaseURL: String = "http://localhost:8080",
                flash: Flash? = nil) {
        self.tokenName = tokenName
        self.scopeOrg = scopeOrg
        self.scopeProject = scopeProject
        self.readOnly = readOnly
        self.csrf = csrf
        self.projects = projects
        self.gatewayBaseURL = gatewayBaseURL
        self.flash = flash
    }

    /// "whole installation", "org acme", "project acme/web", with ", read-only" when so.
    public var scopeLabel: String {
        var s: String
        if let org = scopeOrg, let project = scopeProject { s = "project \(org)/\(project)" }
        else if let org = scopeOrg { s = "org \(org)" }
        else { s = "whole installation" }
        if readOnly { s += ", read-only" }
        return s
    }
}

// MARK: - Login

/// `GET /dashboard/login`.
public struct LoginPage: Sendable, Equatable {
    /// CSRF token for the form (pre-session).
    public var csrf: String
    /// e.g. "That token is not valid, or was revoked."
    public var error: String?
    /// Where to go after signing in (hidden field `next`), if any.
    public var next: String?
    public init(csrf: String, error: String? = nil, next: String? = nil) {
        self.csrf = csrf
        self.error = error
        self.next = next
    }
}

// MARK: - Charts

/// One line or one stack of bars: a value per bucket (nil = no data in that bucket).
public struct ChartSeries: Sendable, Equatable {
    /// Group name (model, project, user) or measure name ("p50").
    public var name: String
    /// Aligned with `TimeSeries.buckets`.
    public var values: [Double?]
    public init(name: String, values: [Double?]) {
        self.name = name
        self.values = values
    }
}

/// Data for one chart over time. Series beyond `maxSeries` (by total) are folded into "Other" by
/// the renderer, so the controller may pass every group.
public struct TimeSeries: Sendable, Equatable {
    /// Bucket start times, ascending.
    public var buckets: [Date]
    /// Bucket length in seconds (3600 = hourly, 86400 = daily).
    public var bucketSeconds: Double
    public var series: [ChartSeries]
    public init(buckets: [Date], bucketSeconds: Double, series: [ChartSeries]) {
        self.buckets = buckets
        self.bucketSeconds = bucketSeconds
        self.series = series
    }
}

// MARK: - Overview

/// The selected time range. `key` is one of "24h", "7d", "30d", "mtd", "custom".
public struct RangeSelection: Sendable, Equatable {
    public var key: String
    /// Inclusive start.
    public var from: Date
    /// Exclusive end.
    public var to: Date
    public init(key: String, from: Date, to: Date) {
        self.key = key
        self.from = from
        self.to = to
    }
}

/// Headline figures for the range.
public struct OverviewTotals: Sendable, Equatable {
    public var spendUSD: Double
    /// Requests whose cost is unknown (no price): not in `spendUSD`.
    public var unknownCostRequests: Int
    public var requests: Int
    public var promptTokens: Int
    public var completionTokens: Int
    /// Requests with status ≥ 400, as a ratio 0…1 of `requests`.
    public var errorRate: Double
    /// Served from the gateway cache, ratio 0…1.
    public var cacheHitRate: Double
    public var p50Ms: Double?
    public var p95Ms: Double?
    public var p99Ms: Double?
    /// Streams only.
    public var ttftP50Ms: Double?
    public init(spendUSD: Double, unknownCostRequests: Int = 0, requests: Int, promptTokens: Int, completionTokens: Int,
                errorRate: Double, cacheHitRate: Double, p50Ms: Double?, p95Ms: Double?, p99Ms: Double?, ttftP50Ms: Double?) {
        self.spendUSD = spendUSD
        self.unknownCostRequests = unknownCostRequests
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.errorRate = errorRate
        self.cacheHitRate = cacheHitRate
        self.p50Ms = p50Ms
        self.p95Ms = p95Ms
        self.p99Ms = p99Ms
        self.ttftP50Ms = ttftP50Ms
    }
}

/// One row of the usage table (one model, project or user).
public struct UsageRow: Sendable, Equatable {
    public var group: String
    public var requests: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var costUSD: Double
    /// Requests with unknown cost (not included in `costUSD`).
    public var unknownCost: Int
    public var errors: Int
    public var cacheHits: Int
    public var p50Ms: Double?
    public var p95Ms: Double?
    public var p99Ms: Double?
    public init(group: String, requests: Int, promptTokens: Int, completionTokens: Int, costUSD: Double, unknownCost: Int,
                errors: Int, cacheHits: Int, p50Ms: Double?, p95Ms: Double?, p99Ms: Double?) {
        self.group = group
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.costUSD = costUSD
        self.unknownCost = unknownCost
        self.errors = errors
        self.cacheHits = cacheHits
        self.p50Ms = p50Ms
        self.p95Ms = p95Ms
        self.p99Ms = p99Ms
    }
}

/// Month-to-date spend against a budget, for one org / project / key.
public struct BudgetRow: Sendable, Equatable {
    /// e.g. "project acme/web", "key prod-1 (acme/web)".
    public var scope: String
    public var spentUSD: Double
    /// nil = no budget (the row shows spend only).
    public var budgetUSD: Double?
    public init(scope: String, spentUSD: Double, budgetUSD: Double?) {
        self.scope = scope
        self.spentUSD = spentUSD
        self.budgetUSD = budgetUSD
    }
}

/// `GET /dashboard?range=…&from=…&to=…&group=…`.
public struct OverviewPage: Sendable, Equatable {
    public var session: DashboardSession
    public var range: RangeSelection
    /// "model", "project" or "user".
    public var groupBy: String
    public var totals: OverviewTotals
    /// Spend (USD) per bucket, one series per group.
    public var spend: TimeSeries
    /// Requests per bucket, one series per group.
    public var requests: TimeSeries
    /// Tokens (prompt + completion) per bucket, one series per group.
    public var tokens: TimeSeries
    /// Latency per bucket: series named e.g. "p50", "p95", "p99", "TTFT p50" (milliseconds).
    public var latency: TimeSeries
    public var usage: [UsageRow]
    public var budgets: [BudgetRow]
    public init(session: DashboardSession, range: RangeSelection, groupBy: String, totals: OverviewTotals,
                spend: TimeSeries, requests: TimeSeries, tokens: TimeSeries, latency: TimeSeries,
                usage: [UsageRow], budgets: [BudgetRow]) {
        self.session = session
        self.range = range
        self.groupBy = groupBy
        self.totals = totals
        self.spend = spend
        self.requests = requests
        self.tokens = tokens
        self.latency = latency
        self.usage = usage
        self.budgets = budgets
    }
}

// MARK: - Requests

/// A choice in a filter select.
public struct FilterOption: Sendable, Equatable {
    public var value: String
    public var label: String
    public init(value: String, label: String? = nil) {
        self.value = value
        self.label = label ?? value
    }
}

/// The current filters (query parameters of the same names). Empty string = any.
public struct RequestFilters: Sendable, Equatable {
    /// "org/project".
    public var project: String
    /// Key id.
    public var key: String
    public var model: String
    public var provider: String
    public var user: String
    /// "", "ok" (2xx), "error" (≥ 400), or an exact status code such as "429".
    public var status: String
    /// `yyyy-MM-dd` (UTC), inclusive.
    public var from: String
    /// `yyyy-MM-dd` (UTC), inclusive.
    public var to: String
    public init(project: String = "", key: String = "", model: String = "", provider: String = "", user: String = "",
                status: String = "", from: String = "", to: String = "") {
        self.project = project
        self.key = key
        self.model = model
        self.provider = provider
        self.user = user
        self.status = status
        self.from = from
        self.to = to
    }

    /// The filters as query items (empty ones are dropped when the URL is built).
    public var queryItems: [(String, String)] {
        [("project", project), ("key", key), ("model", model), ("provider", provider), ("user", user),
         ("status", status), ("from", from), ("to", to)]
    }
}

/// Values seen in the data, for the filter selects. An empty list makes that filter a text input.
public struct FilterOptions: Sendable, Equatable {
    public var projects: [FilterOption]
    public var keys: [FilterOption]
    public var models: [FilterOption]
    public var providers: [FilterOption]
    public var users: [FilterOption]
    public init(projects: [FilterOption] = [], keys: [FilterOption] = [], models: [FilterOption] = [],
                providers: [FilterOption] = [], users: [FilterOption] = []) {
        self.projects = projects
        self.keys = keys
        self.models = models
        self.providers = providers
        self.users = users
    }
}

/// One audit row in the requests table.
public struct RequestRow: Sendable, Equatable {
    public var id: String
    public var time: Date
    /// "org/project", nil when unauthenticated.
    public var project: String?
    public var keyID: String?
    public var keyName: String?
    public var user: String?
    public var provider: String?
    /// The model served (or requested when none was served).
    public var model: String?
    public var status: Int
    public var errorCode: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    /// nil = unknown.
    public var costUSD: Double?
    public var latencyMs: Double
    public var cacheHit: Bool
    public var stream: Bool
    /// Provider calls made (more than one = fallback happened).
    public var attempts: Int
    public init(id: String, time: Date, project: String?, keyID: String?, keyName: String? = nil, user: String?,
                provider: String?, model: String?, status: Int, errorCode: String? = nil, promptTokens: Int?,
                completionTokens: Int?, costUSD: Double?, latencyMs: Double, cacheHit: Bool, stream: Bool, attempts: Int = 1) {
        self.id = id
        self.time = time
        self.project = project
        self.keyID = keyID
        self.keyName = keyName
        self.user = user
        self.provider = provider
        self.model = model
        self.status = status
        self.errorCode = errorCode
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.costUSD = costUSD
        self.latencyMs = latencyMs
        self.cacheHit = cacheHit
        self.stream = stream
        self.attempts = attempts
    }
}

/// `GET /dashboard/requests?…`.
public struct RequestsPage: Sendable, Equatable {
    public var session: DashboardSession
    public var filters: RequestFilters
    public var options: FilterOptions
    /// Newest first.
    public var rows: [RequestRow]
    /// Cursor of the next page (query parameter `cursor`); nil on the last page.
    public var nextCursor: String?
    /// Export of the same selection, e.g. `/api/v1/audit?…&format=csv`.
    public var csvURL: String
    public var ndjsonURL: String
    public init(session: DashboardSession, filters: RequestFilters, options: FilterOptions, rows: [RequestRow],
                nextCursor: String?, csvURL: String, ndjsonURL: String) {
        self.session = session
        self.filters = filters
        self.options = options
        self.rows = rows
        self.nextCursor = nextCursor
        self.csvURL = csvURL
        self.ndjsonURL = ndjsonURL
    }
}

// MARK: - Request detail

/// One provider call made while serving a request.
public struct AttemptRow: Sendable, Equatable {
    public var provider: String
    public var model: String
    public var status: Int
    public var latencyMs: Double
    public var errorCode: String?
    public init(provider: String, model: String, status: Int, latencyMs: Double, errorCode: String?) {
        self.provider = provider
        self.model = model
        self.status = status
        self.latencyMs = latencyMs
        self.errorCode = errorCode
    }
}

/// Every field of one audit row (mirrors GatewayCore's `AuditRecord`).
public struct RequestDetail: Sendable, Equatable {
    public var id: String
    public var time: Date
    public var method: String
    public var route: String
    /// "org/project".
    public var project: String?
    public var keyID: String?
    public var keyName: String?
    public var user: String?
    public var provider: String?
    public var modelRequested: String?
    public var modelServed: String?
    public var status: Int
    public var errorCode: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var cachedTokens: Int?
    public var reasoningTokens: Int?
    public var cacheWriteTokens: Int?
    public var costUSD: Double?
    public var latencyMs: Double
    public var upstreamLatencyMs: Double?
    public var timeToFirstTokenMs: Double?
    public var cacheHit: Bool
    public var stream: Bool
    public var attempts: [AttemptRow]
    public init(id: String, time: Date, method: String, route: String, project: String?, keyID: String?, keyName: String? = nil,
                user: String?, provider: String?, modelRequested: String?, modelServed: String?, status: Int, errorCode: String?,
                promptTokens: Int?, completionTokens: Int?, cachedTokens: Int?, reasoningTokens: Int? = nil,
                cacheWriteTokens: Int? = nil, costUSD: Double?, latencyMs: Double, upstreamLatencyMs: Double?,
                timeToFirstTokenMs: Double?, cacheHit: Bool, stream: Bool, attempts: [AttemptRow]) {
        self.id = id
        self.time = time
        self.method = method
        self.route = route
        self.project = project
        self.keyID = keyID
        self.keyName = keyName
        self.user = user
        self.provider = provider
        self.modelRequested = modelRequested
        self.modelServed = modelServed
        self.status = status
        self.errorCode = errorCode
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.costUSD = costUSD
        self.latencyMs = latencyMs
        self.upstreamLatencyMs = upstreamLatencyMs
        self.timeToFirstTokenMs = timeToFirstTokenMs
        self.cacheHit = cacheHit
        self.stream = stream
        self.attempts = attempts
    }
}

/// `GET /dashboard/requests/REQUEST_ID`.
public struct RequestDetailPage: Sendable, Equatable {
    public var session: DashboardSession
    public var request: RequestDetail
    public init(session: DashboardSession, request: RequestDetail) {
        self.session = session
        self.request = request
    }
}

// MARK: - API keys

/// One virtual key of a project.
public struct KeyRow: Sendable, Equatable {
    public var id: String
    public var name: String
    /// nil = no limit.
    public var rpm: Int?
    public var tpm: Int?
    public var monthlyBudgetUSD: Double?
    public var created: Date
    /// nil = active.
    public var revoked: Date?
    public init(id: String, name: String, rpm: Int?, tpm: Int?, monthlyBudgetUSD: Double?, created: Date, revoked: Date? = nil) {
        self.id = id
        self.name = name
        self.rpm = rpm
        self.tpm = tpm
        self.monthlyBudgetUSD = monthlyBudgetUSD
        self.created = created
        self.revoked = revoked
    }
}

/// A key just created: its secret is shown once.
public struct NewKeySecret: Sendable, Equatable {
    public var id: String
    public var name: String
    public var secret: String
    public init(id: String, name: String, secret: String) {
        self.id = id
        self.name = name
        self.secret = secret
    }
}

/// `GET /dashboard/projects/ORG/PROJECT/keys`.
public struct KeysPage: Sendable, Equatable {
    public var session: DashboardSession
    public var project: ProjectRef
    public var keys: [KeyRow]
    /// Set only on the response right after creation.
    public var newKey: NewKeySecret?
    /// A model for the curl example.
    public var exampleModel: String
    public init(session: DashboardSession, project: ProjectRef, keys: [KeyRow], newKey: NewKeySecret? = nil,
                exampleModel: String = "gpt-4o-mini") {
        self.session = session
        self.project = project
        self.keys = keys
        self.newKey = newKey
        self.exampleModel = exampleModel
    }
}

// MARK: - Settings

/// A provider credential as stored (the secret itself is never shown).
public struct ProviderKeyRow: Sendable, Equatable {
    public var provider: String
    /// The last four characters of the API key.
    public var last4: String
    public var baseURL: String?
    public var updated: Date
    public init(provider: String, last4: String, baseURL: String?, updated: Date) {
        self.provider = provider
        self.last4 = last4
        self.baseURL = baseURL
        self.updated = updated
    }
}

/// A fallback chain: when `primary` ("provider/model") fails, try `targets` in order.
public struct FallbackRow: Sendable, Equatable {
    public var primary: String
    public var targets: [String]
    public init(primary: String, targets: [String]) {
        self.primary = primary
        self.targets = targets
    }
}

/// `GET /dashboard/projects/ORG/PROJECT/settings`.
public struct SettingsPage: Sendable, Equatable {
    public var session: DashboardSession
    public var project: ProjectRef
    /// "free", "pro" or "team".
    public var plan: String
    public var plans: [String]
    public var rpm: Int?
    public var tpm: Int?
    public var monthlyBudgetUSD: Double?
    public var providerKeys: [ProviderKeyRow]
    /// Providers offered in the "set provider key" forms.
    public var knownProviders: [String]
    public var fallbacks: [FallbackRow]
    public init(session: DashboardSession, project: ProjectRef, plan: String, plans: [String] = ["free", "pro", "team"],
                rpm: Int?, tpm: Int?, monthlyBudgetUSD: Double?, providerKeys: [ProviderKeyRow],
                knownProviders: [String] = ["openai", "anthropic", "gemini", "mistral", "cohere"], fallbacks: [FallbackRow]) {
        self.session = session
        self.project = project
        self.plan = plan
        self.plans = plans
        self.rpm = rpm
        self.tpm = tpm
        self.monthlyBudgetUSD = monthlyBudgetUSD
        self.providerKeys = providerKeys
        self.knownProviders = knownProviders
        self.fallbacks = fallbacks
    }
}

// MARK: - Prices

/// A model's price, USD per 1M tokens.
public struct PriceRow: Sendable, Equatable {
    public var model: String
    public var provider: String
    public var input: Double
    public var output: Double
    public var cachedInput: Double?
    public var cacheWrite: Double?
    /// e.g. "built-in", "admin".
    public var source: String
    public var updated: Date?
    public init(model: String, provider: String, input: Double, output: Double, cachedInput: Double?, cacheWrite: Double?,
                source: String, updated: Date?) {
        self.model = model
        self.provider = provider
        self.input = input
        self.output = output
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.source = source
        self.updated = updated
    }
}

/// `GET /dashboard/prices`.
public struct PricesPage: Sendable, Equatable {
    public var session: DashboardSession
    public var prices: [PriceRow]
    /// The token may change prices (installation-wide, not read-only).
    public var canEdit: Bool
    public init(session: DashboardSession, prices: [PriceRow], canEdit: Bool) {
        self.session = session
        self.prices = prices
        self.canEdit = canEdit
    }
}

// MARK: - Errors

/// 404 / 403 / 500.
public struct ErrorPage: Sendable, Equatable {
    public var status: Int
    /// Extra explanation; a friendly default per status otherwise.
    public var message: String?
    /// Signed-in session, to keep the nav; nil when not signed in.
    public var session: DashboardSession?
    public init(status: Int, message: String? = nil, session: DashboardSession? = nil) {
        self.status = status
        self.message = message
        self.session = session
    }
}
