import Foundation
@testable import GatewayDashboard

/// View models filled with either plain or hostile values, shared by the tests.
enum Fixtures {
    static let hostile = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;"
    static let csrf = "csrf-TOKEN-123"
    static let t0 = Date(timeIntervalSince1970: 1_764_806_400) // 2025-12-04 00:00:00 UTC

    /// `v` for the plain fixtures, or the hostile string with a distinguishing suffix.
    static func name(_ v: String, _ evil: Bool) -> String { evil ? "\(hostile)\(v)" : v }

    static func session(evil: Bool = false, readOnly: Bool = false, flash: Flash? = nil) -> DashboardSession {
        DashboardSession(tokenName: name("alice", evil), scopeOrg: name("acme", evil), scopeProject: nil, readOnly: readOnly,
                         csrf: csrf, projects: [project(evil), ProjectRef(org: "acme", name: "mobile")],
                         gatewayBaseURL: "https://ai.example.com", flash: flash ?? Flash(message: name("Saved.", evil)))
    }

    static func project(_ evil: Bool) -> ProjectRef { ProjectRef(org: name("acme", evil), name: name("web", evil)) }

    static let hours = (0..<6).map { t0.addingTimeInterval(Double($0) * 3600) }

    static func overview(evil: Bool = false, empty: Bool = false) -> OverviewPage {
        let groups = ["gpt-4o", "claude-sonnet-4", "gemini-2.0-flash"].map { name($0, evil) }
        let spend = TimeSeries(buckets: empty ? [] : hours, bucketSeconds: 3600, series: empty ? [] : [
            ChartSeries(name: groups[0], values: [1234.5678, 0.0042, nil, 2, 0, 3.5]),
            ChartSeries(name: groups[1], values: [0.5, 0.25, 0.125, nil, 1, 2]),
            ChartSeries(name: groups[2], values: [0.01, nil, nil, nil, nil, 0.02]),
        ])
        let requests = TimeSeries(buckets: empty ? [] : hours, bucketSeconds: 3600, series: empty ? [] : [
            ChartSeries(name: groups[0], values: [1200, 3, nil, 40, 0, 12_345]),
            ChartSeries(name: groups[1], values: [5, 6, 7, nil, 8, 9]),
        ])
        let tokens = TimeSeries(buckets: empty ? [] : hours, bucketSeconds: 3600, series: empty ? [] : [
            ChartSeries(name: groups[0], values: [1_500_000, 3000, nil, 40, 0, 10]),
        ])
        let latency = TimeSeries(buckets: empty ? [] : hours, bucketSeconds: 3600, series: empty ? [] : [
            ChartSeries(name: "p50", values: [850, 900, nil, 700, 640, 600]),
            ChartSeries(name: "p95", values: [1234, 1500, nil, 1200, 1100, 1000]),
            ChartSeries(name: "p99", values: [2500, 3000, nil, 2100, 2000, 1900]),
            ChartSeries(name: "TTFT p50", values: [300, nil, nil, 250, 240, 230]),
        ])
        return OverviewPage(
            session: session(evil: evil), range: RangeSelection(key: "24h", from: t0, to: t0.addingTimeInterval(86_400)),
            groupBy: "model",
            totals: OverviewTotals(spendUSD: empty ? 0 : 1244.68, unknownCostRequests: empty ? 0 : 3, requests: empty ? 0 : 13_634,
                                   promptTokens: 1_200_000, completionTokens: 303_050, errorRate: 0.025, cacheHitRate: 0.0042,
                                   p50Ms: 850, p95Ms: 1234, p99Ms: 2500, ttftP50Ms: 300),
            spend: spend, requests: requests, tokens: tokens, latency: latency,
            usage: empty ? [] : groups.map {
                UsageRow(group: $0, requests: 1234, promptTokens: 1000, completionTokens: 500, costUSD: 12.5, unknownCost: 1,
                         errors: 2, cacheHits: 3, p50Ms: 850, p95Ms: 1200, p99Ms: 2400)
            },
            budgets: empty ? [] : [
                BudgetRow(scope: name("project acme/web", evil), spentUSD: 45, budgetUSD: 50),
                BudgetRow(scope: name("key prod", evil), spentUSD: 12, budgetUSD: nil),
                BudgetRow(scope: name("org acme", evil), spentUSD: 150, budgetUSD: 100),
            ])
    }

    /// What a fresh installation shows for "24 h": 24 hourly buckets, data in the last one only,
    /// sub-cent costs, and a project whose name is one long word.
    static func sparseOverview(evil: Bool = false) -> OverviewPage {
        let day = (0..<24).map { t0.addingTimeInterval(Double($0) * 3600) }
        let models = [name("gpt-4o", evil), name("gpt-4o-mini", evil)]
        func last(_ v: Double?) -> [Double?] { Array(repeating: nil, count: 23) + [v] }
        let project = ProjectRef(org: name("dash43e8a8b7", evil), name: "app")
        var s = session(evil: evil)
        s.projects = [project]
        return OverviewPage(
            session: s, range: RangeSelection(key: "24h", from: t0, to: t0.addingTimeInterval(86_400)), groupBy: "model",
            totals: OverviewTotals(spendUSD: 0.0008779, requests: 20, promptTokens: 160, completionTokens: 160, errorRate: 0,
                                   cacheHitRate: 0, p50Ms: 5.4, p95Ms: 18, p99Ms: 56, ttftP50Ms: nil),
            spend: TimeSeries(buckets: day, bucketSeconds: 3600, series: [
                ChartSeries(name: models[0], values: last(0.0008)), ChartSeries(name: models[1], values: last(0.00007785))]),
            requests: TimeSeries(buckets: day, bucketSeconds: 3600, series: [
                ChartSeries(name: models[0], values: last(8)), ChartSeries(name: models[1], values: last(12))]),
            tokens: TimeSeries(buckets: day, bucketSeconds: 3600, series: [
                ChartSeries(name: models[0], values: last(128)), ChartSeries(name: models[1], values: last(192))]),
            latency: TimeSeries(buckets: day, bucketSeconds: 3600, series: [
                ChartSeries(name: "p50", values: last(5.4)), ChartSeries(name: "p95", values: last(18)),
                ChartSeries(name: "p99", values: last(56)), ChartSeries(name: "TTFT p50", values: last(nil))]),
            usage: [
                UsageRow(group: models[0], requests: 8, promptTokens: 64, completionTokens: 64, costUSD: 0.0008, unknownCost: 0,
                         errors: 0, cacheHits: 0, p50Ms: 4.6, p95Ms: 5.9, p99Ms: 5.9),
                UsageRow(group: models[1], requests: 12, promptTokens: 96, completionTokens: 96, costUSD: 0.00007785, unknownCost: 0,
                         errors: 0, cacheHits: 0, p50Ms: 5.9, p95Ms: 56, p99Ms: 56),
            ],
            budgets: [BudgetRow(scope: name("project dash43e8a8b7/app", evil), spentUSD: 0.0008779, budgetUSD: nil)])
    }

    static func requests(evil: Bool = false, empty: Bool = false, filters: RequestFilters = RequestFilters()) -> RequestsPage {
        let row = RequestRow(id: name("req_1", evil), time: t0, project: name("acme/web", evil), keyID: name("key_1", evil),
                             keyName: name("backend", evil), user: name("bob", evil), provider: name("openai", evil),
                             model: name("gpt-4o", evil), status: 429, errorCode: name("rate_limited", evil), promptTokens: 1200,
                             completionTokens: 34, costUSD: 0.0042, latencyMs: 1234, cacheHit: true, stream: true, attempts: 2)
        let row2 = RequestRow(id: "req_2", time: t0.addingTimeInterval(-60), project: nil, keyID: nil, user: nil, provider: nil,
                              model: nil, status: 401, promptTokens: nil, completionTokens: nil, costUSD: nil, latencyMs: 3,
                              cacheHit: false, stream: false, attempts: 0)
        let opts = [FilterOption(value: name("v", evil), label: name("label", evil))]
        return RequestsPage(session: session(evil: evil), filters: filters,
                            options: FilterOptions(projects: opts, keys: opts, models: opts, providers: [], users: opts),
                            rows: empty ? [] : [row, row2], nextCursor: empty ? nil : name("c42", evil),
                            csvURL: "/api/v1/audit?model=" + DashboardURL.encode(name("gpt-4o", evil)) + "&format=csv",
                            ndjsonURL: "/api/v1/audit?format=ndjson")
    }

    static func detail(evil: Bool = false, attempts: Bool = true) -> RequestDetailPage {
        let r = RequestDetail(id: name("req_1", evil), time: t0, method: "POST", route: name("/v1/chat/completions", evil),
                              project: name("acme/web", evil), keyID: name("key_1", evil), keyName: name("backend", evil),
                              user: name("bob", evil), provider: name("anthropic", evil), modelRequested: name("gpt-4o", evil),
                              modelServed: name("claude-sonnet-4", evil), status: 200, errorCode: name("none", evil),
                              promptTokens: 1200, completionTokens: 40, cachedTokens: 1000, reasoningTokens: 7, cacheWriteTokens: 9,
                              costUSD: 0.0123, latencyMs: 1500, upstreamLatencyMs: 1400, timeToFirstTokenMs: 320,
                              cacheHit: false, stream: true,
                              attempts: attempts ? [
                                AttemptRow(provider: name("openai", evil), model: name("gpt-4o", evil), status: 503, latencyMs: 80,
                                           errorCode: name("upstream_unavailable", evil)),
                                AttemptRow(provider: name("anthropic", evil), model: name("claude-sonnet-4", evil), status: 200,
                                           latencyMs: 1400, errorCode: nil),
                              ] : [])
        return RequestDetailPage(session: session(evil: evil), request: r)
    }

    static func keys(evil: Bool = false, readOnly: Bool = false, newKey: Bool = false, empty: Bool = false) -> KeysPage {
        KeysPage(session: session(evil: evil, readOnly: readOnly), project: project(evil),
                 keys: empty ? [] : [
                    KeyRow(id: name("key_1", evil), name: name("backend", evil), rpm: 600, tpm: 100_000, monthlyBudgetUSD: 250,
                           created: t0),
                    KeyRow(id: "key_2", name: "old", rpm: nil, tpm: nil, monthlyBudgetUSD: nil, created: t0, revoked: t0.addingTimeInterval(60)),
                 ],
                 newKey: newKey ? NewKeySecret(id: "key_3", name: name("fresh", evil), secret: name("dpx_secret_abc", evil)) : nil,
                 exampleModel: name("gpt-4o-mini", evil))
    }

    static func settings(evil: Bool = false, readOnly: Bool = false, empty: Bool = false) -> SettingsPage {
        SettingsPage(session: session(evil: evil, readOnly: readOnly), project: project(evil), plan: name("pro", evil),
                     rpm: 1000, tpm: nil, monthlyBudgetUSD: 99.5,
                     providerKeys: empty ? [] : [ProviderKeyRow(provider: name("openai", evil), last4: name("abcd", evil),
                                                                baseURL: name("https://eu.api.openai.com", evil), updated: t0)],
                     knownProviders: ["openai", name("anthropic", evil)],
                     fallbacks: empty ? [] : [FallbackRow(primary: name("openai/gpt-4o", evil),
                                                          targets: [name("anthropic/claude-sonnet-4", evil), "gemini/gemini-2.0-flash"])])
    }

    static func prices(evil: Bool = false, readOnly: Bool = false, empty: Bool = false) -> PricesPage {
        PricesPage(session: session(evil: evil, readOnly: readOnly),
                   prices: empty ? [] : [PriceRow(model: name("gpt-4o", evil), provider: name("openai", evil), input: 2.5, output: 10,
                                                  cachedInput: 1.25, cacheWrite: nil, source: name("built-in", evil), updated: t0)],
                   canEdit: true)
    }

    static func login(evil: Bool = false) -> LoginPage {
        LoginPage(csrf: csrf, error: name("That token is not valid, or was revoked.", evil), next: name("/dashboard/requests", evil))
    }

    static func error(evil: Bool = false, signedIn: Bool = true) -> ErrorPage {
        ErrorPage(status: 404, message: evil ? name("gone", true) : nil, session: signedIn ? session(evil: evil) : nil)
    }

    /// Every page, rendered with plain or hostile values (name → HTML).
    static func allPages(evil: Bool) -> [(String, String)] {
        [
            ("login", Dashboard.renderLogin(login(evil: evil))),
            ("overview", Dashboard.renderOverview(overview(evil: evil))),
            ("overview-empty", Dashboard.renderOverview(overview(evil: evil, empty: true))),
            ("overview-sparse", Dashboard.renderOverview(sparseOverview(evil: evil))),
            ("requests", Dashboard.renderRequests(requests(evil: evil, filters: RequestFilters(project: name("p", evil), model: name("m", evil), status: name("error", evil))))),
            ("requests-empty", Dashboard.renderRequests(requests(evil: evil, empty: true))),
            ("detail", Dashboard.renderRequestDetail(detail(evil: evil))),
            ("detail-no-attempts", Dashboard.renderRequestDetail(detail(evil: evil, attempts: false))),
            ("keys", Dashboard.renderKeys(keys(evil: evil, newKey: true))),
            ("keys-empty", Dashboard.renderKeys(keys(evil: evil, empty: true))),
            ("keys-readonly", Dashboard.renderKeys(keys(evil: evil, readOnly: true))),
            ("settings", Dashboard.renderSettings(settings(evil: evil))),
            ("settings-empty", Dashboard.renderSettings(settings(evil: evil, empty: true))),
            ("settings-readonly", Dashboard.renderSettings(settings(evil: evil, readOnly: true))),
            ("prices", Dashboard.renderPrices(prices(evil: evil))),
            ("prices-empty", Dashboard.renderPrices(prices(evil: evil, empty: true))),
            ("error", Dashboard.renderError(error(evil: evil))),
            ("error-anon", Dashboard.renderError(error(evil: evil, signedIn: false))),
            ("error-500", Dashboard.renderError(ErrorPage(status: 500))),
        ]
    }
}

/// Small HTML scanning helpers (regular expressions over the rendered markup).
enum Scan {
    static func matches(_ pattern: String, in text: String, options: NSRegularExpression.Options = []) -> [[String]] {
        let re = try! NSRegularExpression(pattern: pattern, options: options)
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (0..<m.numberOfRanges).map { i in
                let r = m.range(at: i)
                return r.location == NSNotFound ? "" : ns.substring(with: r)
            }
        }
    }

    /// Every start tag, with its quoted attribute values blanked (escaped values cannot contain `"`),
    /// so what is left is tag names and attribute names.
    static func tagsWithoutValues(_ html: String) -> [String] {
        matches(#"<[A-Za-z][^>]*>"#, in: html).map { m in
            m[0].replacingOccurrences(of: #""[^"]*""#, with: "\"\"", options: .regularExpression)
        }
    }

    /// The markup of the element whose start tag carries `data-testid="id"` (up to the next
    /// `</section>` — enough for the chart cards).
    static func section(_ testid: String, in html: String) -> String {
        guard let start = html.range(of: "data-testid=\"\(testid)\"") else { return "" }
        let rest = html[start.lowerBound...]
        guard let end = rest.range(of: "</section>") else { return String(rest) }
        return String(rest[..<end.lowerBound])
    }

    /// Decodes the five entities `HTML.escape` produces.
    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
