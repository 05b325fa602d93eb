import Foundation
import GatewayCore
import GatewayDashboard
import GatewayHTTP
import GatewayStore

/// Fills the dashboard's view models from the store (rollups, audit pages, settings) and hands
/// them to `GatewayDashboard`'s renderers. Everything read here is scoped by the session's token,
/// through `AdminActions` / `AdminAccess`, exactly as the REST API is.
struct DashboardPages {
    let database: AdminDatabase
    let visit: DashboardController.Visit
    /// Why the form just posted was refused, shown on the page drawn again in its place.
    var failure: String? = nil

    var access: AdminAccess { visit.access! }
    var actions: AdminActions { AdminActions(database: database, access: access) }
    var query: [String: String] { visit.request.queryParameters }

    static func keysPath(_ slug: String) -> String { DashboardURL.keys(ProjectRef(slug: slug)) }
    static func settingsPath(_ slug: String) -> String { DashboardURL.settings(ProjectRef(slug: slug)) }

    // MARK: - Chrome

    /// Draws a page on the admin queue, not on the cooperative pool the worker's chat requests share.
    func render<Page: Sendable>(_ page: Page, _ renderer: @escaping @Sendable (Page) -> String) async throws -> String {
        try await database.run { _ in renderer(page) }
    }

    func render<Page: Sendable>(_ renderer: @escaping @Sendable (Page) -> String, _ page: Page) async throws -> String {
        try await render(page, renderer)
    }

    /// Flash messages after a redirect (`?notice=`): fixed texts, never echoed input.
    static let notices: [String: String] = [
        "key-created": "Key created.", "key-updated": "Key limits saved.", "key-revoked": "Key revoked; it stops working at once.",
        "limits-saved": "Project plan and limits saved.", "provider-saved": "Provider key saved.",
        "provider-removed": "Provider settings removed.", "fallback-saved": "Fallback chain saved.",
        "fallback-removed": "Fallback chain removed.", "price-saved": "Price saved; it applies to the next request.",
    ]

    func session(notice: String? = nil) async throws -> GatewayDashboard.DashboardSession {
        let token = access.token
        var org: String?, project: String?
        switch token.scope {
        case .installation: break
        case .org(_, let name): org = name
        case .project(_, _, let slug):
            let parts = slug.split(separator: "/", maxSplits: 1).map(String.init)
            org = parts.first
            project = parts.count > 1 ? parts[1] : nil
        }
        // The nav needs names only: no month-to-date figures per project on every page.
        let access = self.access
        let projects = try await database.run { try access.projects(in: $0) }.map { ProjectRef(org: $0.orgName, name: $0.name) }
        return GatewayDashboard.DashboardSession(
            tokenName: token.name ?? token.id, scopeOrg: org, scopeProject: project, readOnly: token.readOnly, csrf: visit.csrf,
            projects: projects, gatewayBaseURL: visit.request.publicBaseURL,
            flash: failure.map { Flash(message: $0, isError: true) } ?? notice.flatMap { Self.notices[$0] }.map { Flash(message: $0) })
    }

    static func login(csrf: String, error: String?) -> String {
        Dashboard.renderLogin(LoginPage(csrf: csrf, error: error))
    }

    static func error(_ error: GatewayError, visit: DashboardController.Visit) -> String {
        Dashboard.renderError(ErrorPage(status: error.status, message: error.message))
    }

    static func asset(_ name: String) -> (type: String, text: String)? {
        switch name {
        case "app.css": return ("text/css; charset=utf-8", DashboardAssets.css)
        case "app.js": return ("text/javascript; charset=utf-8", DashboardAssets.javascript)
        default: return nil
        }
    }

    // MARK: - Overview

    /// The range picked by `range` (24h, 7d, 30d, mtd, custom with `from`/`to` as UTC dates,
    /// `to` inclusive), and the chart bucket that suits it.
    func range(now: Date = Date()) -> (selection: RangeSelection, bucket: UsageBucket) {
        let calendar = SpendAmount.utcCalendar
        let hourEnd = calendar.dateInterval(of: .hour, for: now)!.end
        switch query["range"] ?? "24h" {
        case "7d": return (RangeSelection(key: "7d", from: hourEnd.addingTimeInterval(-7 * 86_400), to: hourEnd), .hour)
        case "30d":
            let dayEnd = calendar.dateInterval(of: .day, for: now)!.end
            return (RangeSelection(key: "30d", from: dayEnd.addingTimeInterval(-30 * 86_400), to: dayEnd), .day)
        case "mtd":
            let month = calendar.dateInterval(of: .month, for: now)!
            return (RangeSelection(key: "mtd", from: month.start, to: calendar.dateInterval(of: .day, for: now)!.end), .day)
        case "custom":
            if let from = query["from"].flatMap({ AuditExport.parseDate($0) }), let toDay = query["to"].flatMap({ AuditExport.parseDate($0) }), toDay >= from {
                let to = toDay.addingTimeInterval(86_400)
                let bucket: UsageBucket = to.timeIntervalSince(from) > 3 * 86_400 ? .day : .hour
                return (RangeSelection(key: "custom", from: from, to: min(to, from.addingTimeInterval(400 * 86_400))), bucket)
            }
            fallthrough
        default:
            return (RangeSelection(key: "24h", from: hourEnd.addingTimeInterval(-86_400), to: hourEnd), .hour)
        }
    }

    func overview() async throws -> String {
        let (selection, bucket) = range()
        let groupBy: UsageGrouping
        switch query["group"] {
        case "project": groupBy = .project
        case "user": groupBy = .user
        default: groupBy = .model
        }
        let scope = access.token.scope
        let (groups, total, points) = try await database.run { store in
            (try store.usage(groupBy: groupBy, scope: scope, projectID: nil, from: selection.from, to: selection.to),
             try store.usageTotal(scope: scope, projectID: nil, from: selection.from, to: selection.to),
             try store.usageSeries(bucket: bucket, groupBy: groupBy, scope: scope, projectID: nil, from: selection.from, to: selection.to,
                                   percentiles: false))
        }
        let latencyPoints = try await database.run { store in
            try store.usageSeries(bucket: bucket, groupBy: nil, scope: scope, projectID: nil, from: selection.from, to: selection.to)
        }
        let step: TimeInterval = bucket == .hour ? 3600 : 86_400
        var buckets: [Date] = []
        var time = selection.from
        while time < selection.to { buckets.append(time); time += step }
        let index = Dictionary(uniqueKeysWithValues: buckets.enumerated().map { ($1, $0) })
        func series(_ value: (UsageSeriesPoint) -> Double) -> TimeSeries {
            var byGroup: [String: [Double?]] = [:]
            for point in points {
                guard let at = index[point.bucketStart] else { continue }
                byGroup[point.group, default: Array(repeating: nil, count: buckets.count)][at] = value(point)
            }
            return TimeSeries(buckets: buckets, bucketSeconds: step,
                              series: byGroup.keys.sorted().map { ChartSeries(name: $0, values: byGroup[$0]!) })
        }
        var latency: [String: [Double?]] = [:]
        for point in latencyPoints {
            guard let at = index[point.bucketStart] else { continue }
            for (name, value) in [("p50", point.latencyP50Ms), ("p95", point.latencyP95Ms), ("p99", point.latencyP99Ms),
                                  ("TTFT p50", point.ttftP50Ms)] {
                latency[name, default: Array(repeating: nil, count: buckets.count)][at] = value
            }
        }
        let requests = max(total.requests, 1)
        let totals = OverviewTotals(
            spendUSD: total.costUSD, unknownCostRequests: total.unknownCostRequests, requests: total.requests,
            promptTokens: total.promptTokens, completionTokens: total.completionTokens,
            errorRate: Double(total.errors) / Double(requests), cacheHitRate: Double(total.cacheHits) / Double(requests),
            p50Ms: total.latencyP50Ms, p95Ms: total.latencyP95Ms, p99Ms: total.latencyP99Ms, ttftP50Ms: total.ttftP50Ms)
        let usage = groups.map {
            GatewayDashboard.UsageRow(group: $0.group, requests: $0.requests, promptTokens: $0.promptTokens, completionTokens: $0.completionTokens,
                                      costUSD: $0.costUSD, unknownCost: $0.unknownCostRequests, errors: $0.errors, cacheHits: $0.cacheHits,
                                      p50Ms: $0.latencyP50Ms, p95Ms: $0.latencyP95Ms, p99Ms: $0.latencyP99Ms)
        }
        let page = OverviewPage(
            session: try await session(), range: selection, groupBy: groupBy.rawValue, totals: totals,
            spend: series { $0.costUSD }, requests: series { Double($0.requests) }, tokens: series { Double($0.totalTokens) },
            latency: TimeSeries(buckets: buckets, bucketSeconds: step,
                                series: ["p50", "p95", "p99", "TTFT p50"].compactMap { name in latency[name].map { ChartSeries(name: name, values: $0) } }),
            usage: usage, budgets: try await budgets())
        return try await render(page, Dashboard.renderOverview)
    }

    /// Month-to-date spend of every org, project and key in scope that has a budget, and of every
    /// project in scope (spend only when it has none).
    func budgets() async throws -> [BudgetRow] {
        let access = self.access
        return try await database.run { store in
            let month = SpendAmount.month(of: Date())
            var rows: [BudgetRow] = []
            let projects = try access.projects(in: store)
            var seenOrgs = Set<Int64>()
            for project in projects where access.isInstallationWide || { if case .org = access.token.scope { return true } else { return false } }() {
                guard seenOrgs.insert(project.orgID).inserted, let org = try store.org(named: project.orgName),
                      let budget = org.limits.monthlyBudgetUSD else { continue }
                rows.append(BudgetRow(scope: "org \(org.name)", spentUSD: try store.monthToDate(LimitScope(.org, String(org.id)), month: month).costUSD,
                                      budgetUSD: budget))
            }
            for project in projects {
                rows.append(BudgetRow(scope: "project \(project.slug)",
                                      spentUSD: try store.monthToDate(LimitScope(.project, String(project.id)), month: month).costUSD,
                                      budgetUSD: project.limits.monthlyBudgetUSD))
                for key in try store.keys(projectID: project.id) where !key.isRevoked {
                    guard let budget = key.limits.monthlyBudgetUSD else { continue }
                    rows.append(BudgetRow(scope: "key \(key.name ?? key.id) (\(project.slug))",
                                          spentUSD: try store.monthToDate(LimitScope(.key, key.id), month: month).costUSD, budgetUSD: budget))
                }
            }
            return rows
        }
    }

    // MARK: - Requests

    func requests() async throws -> String {
        let query = self.query
        let access = self.access
        var filters = RequestFilters(project: query["project"] ?? "", key: query["key"] ?? "", model: query["model"] ?? "",
                                     provider: query["provider"] ?? "", user: query["user"] ?? "", status: query["status"] ?? "",
                                     from: query["from"] ?? "", to: query["to"] ?? "")
        var filter = AuditFilter()
        filter.keyID = filters.key.isEmpty ? nil : filters.key
        filter.model = filters.model.isEmpty ? nil : filters.model
        filter.provider = filters.provider.isEmpty ? nil : filters.provider
        filter.user = filters.user.isEmpty ? nil : filters.user
        switch filters.status {
        case "": break
        case "ok": filter.statusClass = 2
        case "error": filter.minimumStatus = 400
        default:
            guard let status = Int(filters.status), (100...599).contains(status) else {
                throw GatewayError.invalidRequest("Status must be ok, error or an HTTP status code.", param: "status")
            }
            filter.status = status
        }
        if !filters.from.isEmpty {
            guard let from = AuditExport.parseDate(filters.from) else { throw GatewayError.invalidRequest("From must be a date.", param: "from") }
            filter.from = from
        }
        if !filters.to.isEmpty {
            guard let to = AuditExport.parseDate(filters.to) else { throw GatewayError.invalidRequest("To must be a date.", param: "to") }
            filter.to = filters.to.count == 10 ? to.addingTimeInterval(86_400) : to
        }
        let cursor = query["cursor"].flatMap(AuditCursor.init(token:))
        let projectSlug = filters.project
        let baseFilter = filter
        let (page, dimensions, projects) = try await database.run { store in
            let filter = try access.scoped(baseFilter, projectSlug: projectSlug.isEmpty ? nil : projectSlug, in: store)
            return (try store.auditPage(filter, limit: 50, after: cursor), try store.dimensions(scope: access.token.scope),
                    try access.projects(in: store))
        }
        filters.project = projectSlug
        let rows = page.rows.map { row -> RequestRow in
            let r = row.record
            return RequestRow(id: r.requestID, time: r.time, project: row.projectSlug, keyID: r.keyID, user: r.user, provider: r.provider,
                              model: r.modelServed ?? r.modelRequested, status: r.status, errorCode: r.errorCode, promptTokens: r.promptTokens,
                              completionTokens: r.completionTokens, costUSD: r.costUSD, latencyMs: r.latencyMs, cacheHit: r.cacheHit,
                              stream: r.stream, attempts: r.attempts.count)
        }
        // The export links carry the same selection (times as RFC 3339; the status class filters
        // are the page's own, so an export of "ok"/"error" exports every status).
        var exportQuery: [(String, String)] = [("project", filters.project), ("key", filters.key), ("model", filters.model),
                                               ("provider", filters.provider), ("user", filters.user)]
        if let status = filter.status { exportQuery.append(("status", String(status))) }
        if let from = filter.from { exportQuery.append(("from", AuditExport.timestamp(from))) }
        if let to = filter.to { exportQuery.append(("to", AuditExport.timestamp(to))) }
        let options = FilterOptions(projects: projects.map { FilterOption(value: $0.slug) }, keys: dimensions.keyIDs.map { FilterOption(value: $0) },
                                    models: dimensions.models.map { FilterOption(value: $0) },
                                    providers: dimensions.providers.map { FilterOption(value: $0) },
                                    users: dimensions.users.count <= 500 ? dimensions.users.map { FilterOption(value: $0) } : [])
        return try await render(Dashboard.renderRequests, RequestsPage(
            session: try await session(), filters: filters, options: options, rows: rows, nextCursor: page.next?.token,
            csvURL: DashboardURL.query("/api/v1/audit", exportQuery + [("format", "csv")]),
            ndjsonURL: DashboardURL.query("/api/v1/audit", exportQuery + [("format", "ndjson")])))
    }

    func requestDetail(_ requestID: String) async throws -> String {
        let scope = access.token.scope
        guard let row = try await database.run({ try $0.auditRow(requestID: requestID, scope: scope) }) else {
            throw GatewayError.notFound("No request '\(requestID)' in the audit log (it may be older than the retention period).")
        }
        let r = row.record
        let detail = RequestDetail(
            id: r.requestID, time: r.time, method: r.method, route: r.route, project: row.projectSlug, keyID: r.keyID, user: r.user,
            provider: r.provider, modelRequested: r.modelRequested, modelServed: r.modelServed, status: r.status, errorCode: r.errorCode,
            promptTokens: r.promptTokens, completionTokens: r.completionTokens, cachedTokens: r.cachedTokens,
            reasoningTokens: r.reasoningTokens, cacheWriteTokens: r.cacheWriteTokens, costUSD: r.costUSD, latencyMs: r.latencyMs,
            upstreamLatencyMs: r.upstreamLatencyMs, timeToFirstTokenMs: r.timeToFirstTokenMs, cacheHit: r.cacheHit, stream: r.stream,
            attempts: r.attempts.map { AttemptRow(provider: $0.provider, model: $0.model, status: $0.status, latencyMs: $0.latencyMs,
                                                  errorCode: $0.errorCode) })
        return try await render(Dashboard.renderRequestDetail, RequestDetailPage(session: try await session(), request: detail))
    }

    // MARK: - Projects, keys, settings, prices

    /// `/dashboard/projects`: the first project's keys page (the nav lists them all).
    func projects() async throws -> String {
        guard let first = try await actions.projects().first else {
            throw GatewayError.notFound("No projects yet. Create one: deploxa-gateway project create ORG/PROJECT, or POST /api/v1/projects.")
        }
        return try await keys(first.project.slug, notice: nil)
    }

    func keys(_ slug: String, notice: String?, newSecret: (id: String, secret: String)? = nil) async throws -> String {
        let (project, keys) = try await actions.keys(slug)
        let rows = keys.map { KeyRow(id: $0.id, name: $0.name ?? "", rpm: $0.limits.requestsPerMinute, tpm: $0.limits.tokensPerMinute,
                                     monthlyBudgetUSD: $0.limits.monthlyBudgetUSD, created: $0.createdAt, revoked: $0.revokedAt) }
        let newKey = newSecret.map { secret in
            NewKeySecret(id: secret.id, name: keys.first { $0.id == secret.id }?.name ?? "", secret: secret.secret)
        }
        return try await render(Dashboard.renderKeys, KeysPage(session: try await session(notice: notice), project: ProjectRef(org: project.orgName, name: project.name),
                                             keys: rows, newKey: newKey, exampleModel: "gpt-4o-mini"))
    }

    func settings(_ slug: String, notice: String?) async throws -> String {
        let (project, providers) = try await actions.providers(slug)
        let chains = try await actions.fallbacks(slug).chains
        return try await render(Dashboard.renderSettings, SettingsPage(
            session: try await session(notice: notice), project: ProjectRef(org: project.orgName, name: project.name),
            plan: project.plan.rawValue, plans: Plan.allCases.map(\.rawValue), rpm: project.limits.requestsPerMinute,
            tpm: project.limits.tokensPerMinute, monthlyBudgetUSD: project.limits.monthlyBudgetUSD,
            providerKeys: providers.map { ProviderKeyRow(provider: $0.provider.rawValue, last4: AdminJSON.lastFour($0.apiKey),
                                                         baseURL: $0.baseURL, updated: $0.updatedAt) },
            knownProviders: Provider.allCases.map(\.rawValue),
            fallbacks: chains.map { FallbackRow(primary: $0.primary.description, targets: $0.targets.map(\.description)) }))
    }

    func prices(notice: String?) async throws -> String {
        let prices = try await actions.prices()
        return try await render(Dashboard.renderPrices, PricesPage(
            session: try await session(notice: notice),
            prices: prices.map { PriceRow(model: $0.model, provider: $0.provider ?? "", input: $0.input, output: $0.output,
                                          cachedInput: $0.cachedInput, cacheWrite: $0.cacheWrite, source: $0.source ?? "", updated: nil) },
            canEdit: access.isInstallationWide && !access.isReadOnly))
    }
}

extension ProjectRef {
    init(slug: String) {
        let parts = slug.split(separator: "/", maxSplits: 1).map(String.init)
        self.init(org: parts.first ?? "", name: parts.count > 1 ? parts[1] : "")
    }
}
