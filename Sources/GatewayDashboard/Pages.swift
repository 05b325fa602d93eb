import Foundation

extension Dashboard {
    // MARK: 1. Login

    /// `GET /dashboard/login` (and the re-render after a failed attempt).
    public static func renderLogin(_ page: LoginPage) -> String {
        let error: HTML = page.error.map {
            "<div class=\"flash flash-error\" role=\"alert\" id=\"login-error\" data-testid=\"login-error\">\($0)</div>"
        } ?? .empty
        let next: HTML = page.next.map { hidden("next", $0) } ?? .empty
        let form = postForm(action: "/dashboard/login", csrf: page.csrf, id: "login-form", content: """
        \(next)
        <label class="field" for="login-token"><span>Admin token</span><input type="password" name="token" id="login-token" autocomplete="current-password" required autofocus spellcheck="false"></label>
        <button type="submit" class="btn btn-primary btn-block" id="login-submit">Sign in</button>
        """)
        let body: HTML = """
        <main id="main" class="login-main">
        <div class="login-card card">
        <div class="brand brand-large"><svg class="logo" viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path d="M4 4h9a7 7 0 0 1 0 14H9v2H4z" fill="currentColor"/><path d="M9 8h4a3 3 0 0 1 0 6H9z" class="logo-hole"/></svg><span>Deploxa Gateway</span></div>
        <h1>Sign in</h1>
        \(error)
        \(form)
        <p class="hint">No token? On the gateway host, run <code>deploxa-gateway admin-token create --name you</code> and paste the token it prints.</p>
        </div>
        </main>
        """
        return document(title: "Sign in", bodyClass: "login", body: body)
    }

    // MARK: 2. Overview

    static let rangeChoices: [(String, String)] = [("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d"), ("mtd", "Month to date")]
    static let groupChoices: [(String, String)] = [("model", "Model"), ("project", "Project"), ("user", "User")]

    /// `GET /dashboard`. Query parameters it links to: `range` (24h, 7d, 30d, mtd, custom),
    /// `from`/`to` (yyyy-MM-dd, with range=custom), `group` (model, project, user).
    public static func renderOverview(_ page: OverviewPage) -> String {
        let s = page.session
        let t = page.totals
        let rangeQuery: [(String, String)] = page.range.key == "custom"
            ? [("range", "custom"), ("from", Format.day(page.range.from)), ("to", Format.day(page.range.to.addingTimeInterval(-1)))]
            : [("range", page.range.key)]

        let rangeLinks: [HTML] = rangeChoices.map { key, label in
            let current = page.range.key == key
            return "<a class=\"seg\(current ? " on" as HTML : .empty)\" href=\"\(DashboardURL.query("/dashboard", [("range", key), ("group", page.groupBy)]))\" data-testid=\"range-\(key)\"\(current ? " aria-current=\"true\"" as HTML : .empty)>\(label)</a>"
        }
        let groupLinks: [HTML] = groupChoices.map { key, label in
            let current = page.groupBy == key
            return "<a class=\"seg\(current ? " on" as HTML : .empty)\" href=\"\(DashboardURL.query("/dashboard", rangeQuery + [("group", key)]))\" data-testid=\"group-\(key)\"\(current ? " aria-current=\"true\"" as HTML : .empty)>\(label)</a>"
        }
        let custom: HTML = """
        <form method="get" action="/dashboard" class="range-form" id="range-form">
        <input type="hidden" name="range" value="custom">
        \(hidden("group", page.groupBy))
        \(input("From", name: "from", value: Format.day(page.range.from), type: "date", id: "range-from"))
        \(input("To", name: "to", value: Format.day(page.range.to.addingTimeInterval(-1)), type: "date", id: "range-to"))
        <button type="submit" class="btn">Apply</button>
        </form>
        """
        let toolbar: HTML = """
        <div class="toolbar">
        <div class="segmented" role="group" aria-label="Range" data-testid="range-picker">\(rangeLinks)</div>
        \(custom)
        <div class="segmented" role="group" aria-label="Group by" data-testid="group-picker"><span class="seg-label">Group by</span>\(groupLinks)</div>
        </div>
        """

        func card(_ label: String, _ value: String, _ testid: String, _ sub: String? = nil) -> HTML {
            let subHTML: HTML = sub.map { "<span class=\"card-sub\">\($0)</span>" } ?? .empty
            return "<div class=\"card stat\" data-testid=\"\(testid)\"><span class=\"stat-label\">\(label)</span><span class=\"stat-value\">\(value)</span>\(subHTML)</div>"
        }
        let tokens = t.promptTokens + t.completionTokens
        // One card for the three percentiles (each figure keeps its own test id).
        let latency: HTML = """
        <div class="card stat stat-wide" data-testid="card-latency"><span class="stat-label">Latency p50 / p95 / p99</span><span class="stat-value"><span data-testid="card-p50">\(Format.ms(t.p50Ms))</span><span class="stat-sep" aria-hidden="true"> / </span><span data-testid="card-p95">\(Format.ms(t.p95Ms))</span><span class="stat-sep" aria-hidden="true"> / </span><span data-testid="card-p99">\(Format.ms(t.p99Ms))</span></span></div>
        """
        let cards: HTML = """
        <section class="stats" aria-label="Headline figures" data-testid="headline-cards">
        \(card("Spend", Format.usd(t.spendUSD), "card-spend", t.unknownCostRequests > 0 ? "+ \(Format.int(t.unknownCostRequests)) requests of unknown cost" : nil))
        \(card("Requests", Format.int(t.requests), "card-requests"))
        \(card("Tokens", Format.int(tokens), "card-tokens", "\(Format.int(t.promptTokens)) in · \(Format.int(t.completionTokens)) out"))
        \(card("Error rate", Format.percent(t.errorRate), "card-error-rate"))
        \(card("Cache hits", Format.percent(t.cacheHitRate), "card-cache-hit-rate"))
        \(latency)
        \(card("TTFT p50", Format.ms(t.ttftP50Ms), "card-ttft-p50", "streams only"))
        </section>
        """

        let hint = noRequestsHint(s)
        let noun = page.groupBy
        let charts: HTML = """
        \(Chart.render(title: "Spend over time", testid: "chart-spend", data: page.spend, kind: .stackedBars, unit: .usd, groupNoun: noun, emptyHint: hint))
        \(Chart.render(title: "Requests over time", testid: "chart-requests", data: page.requests, kind: .stackedBars, unit: .requests, groupNoun: noun, emptyHint: hint))
        \(Chart.render(title: "Tokens over time", testid: "chart-tokens", data: page.tokens, kind: .stackedBars, unit: .tokens, groupNoun: noun, emptyHint: hint))
        \(Chart.render(title: "Latency percentiles", testid: "chart-latency", data: page.latency, kind: .lines, unit: .milliseconds, groupNoun: "percentile", emptyHint: hint))
        """

        let groupLabel = groupChoices.first { $0.0 == page.groupBy }?.1 ?? page.groupBy
        let usage: HTML
        if page.usage.isEmpty {
            usage = """
            <section class="card" data-testid="usage-table"><h2>Usage by \(page.groupBy)</h2>\(emptyState("No requests in this range.", hint, testid: "usage-empty"))</section>
            """
        } else {
            let rows: [HTML] = page.usage.map { u in
                """
                <tr data-testid="usage-row"><th scope="row">\(u.group)</th><td class="num">\(Format.int(u.requests))</td><td class="num">\(Format.int(u.promptTokens + u.completionTokens))</td><td class="num">\(Format.usd(u.costUSD))</td><td class="num">\(Format.int(u.unknownCost))</td><td class="num">\(Format.int(u.errors))</td><td class="num">\(Format.int(u.cacheHits))</td><td class="num">\(Format.ms(u.p50Ms))</td><td class="num">\(Format.ms(u.p95Ms))</td><td class="num">\(Format.ms(u.p99Ms))</td></tr>
                """
            }
            usage = """
            <section class="card">
            <h2>Usage by \(page.groupBy)</h2>
            <div class="table-wrap"><table class="data" data-testid="usage-table">
            <thead><tr><th scope="col">\(groupLabel)</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Tokens</th><th scope="col" class="num">Cost</th><th scope="col" class="num">Unknown cost</th><th scope="col" class="num">Errors</th><th scope="col" class="num">Cache hits</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            </section>
            """
        }

        let budgets: HTML
        if page.budgets.isEmpty {
            budgets = """
            <section class="card" data-testid="budget-table"><h2>Month-to-date spend vs budget</h2>\(emptyState("No budgets set.", "Set a monthly budget on a project's Settings page or on a key.", testid: "budget-empty"))</section>
            """
        } else {
            let rows: [HTML] = page.budgets.map { b in
                let pct: Double? = b.budgetUSD.flatMap { $0 > 0 ? b.spentUSD / $0 : nil }
                let level = pct.map { $0 >= 1 ? "over" : ($0 >= 0.8 ? "warn" : "ok") } ?? "none"
                let bar: HTML = pct.map { p in
                    let width = Chart.num(min(1, max(0, p)) * 100)
                    return "<svg class=\"budget-bar\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" width=\"100%\" height=\"8\" role=\"img\" aria-label=\"\(Format.percent(p)) of budget\"><rect class=\"track\" x=\"0\" y=\"0\" width=\"100\" height=\"8\" rx=\"2\"/><rect class=\"fill fill-\(level)\" x=\"0\" y=\"0\" width=\"\(width)\" height=\"8\" rx=\"2\"><title>\(Format.usd(b.spentUSD)) of \(Format.usd(b.budgetUSD ?? 0))</title></rect></svg>"
                } ?? "<span class=\"muted\">no budget</span>"
                return """
                <tr data-testid="budget-row" class="budget-\(level)"><th scope="row">\(b.scope)</th><td class="num">\(Format.usd(b.spentUSD))</td><td class="num">\(b.budgetUSD.map { Format.usd($0) } ?? "—")</td><td class="bar-cell">\(bar)</td><td class="num">\(pct.map { Format.percent($0) } ?? "—")</td></tr>
                """
            }
            budgets = """
            <section class="card">
            <h2>Month-to-date spend vs budget</h2>
            <div class="table-wrap"><table class="data" data-testid="budget-table">
            <thead><tr><th scope="col">Scope</th><th scope="col" class="num">Spent</th><th scope="col" class="num">Budget</th><th scope="col">Used</th><th scope="col" class="num">%</th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            </section>
            """
        }

        let content: HTML = """
        \(pageHeader("Overview", subtitle: "\(Format.minute(page.range.from)) to \(Format.minute(page.range.to)) UTC, grouped by \(page.groupBy)"))
        \(toolbar)
        \(cards)
        <div class="charts">\(charts)</div>
        \(usage)
        \(budgets)
        """
        return Dashboard.page(title: "Overview", session: s, section: .overview, content: content)
    }

    static func noRequestsHint(_ s: DashboardSession) -> HTML {
        "Send one with <code>curl \(s.gatewayBaseURL)/v1/chat/completions -H \"Authorization: Bearer YOUR_KEY\" -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'</code> or pick a longer range."
    }

    // MARK: 3. Requests

    /// `GET /dashboard/requests?project=&key=&model=&provider=&user=&status=&from=&to=&cursor=`.
    public static func renderRequests(_ page: RequestsPage) -> String {
        let f = page.filters
        let o = page.options
        func dim(_ label: String, _ name: String, _ options: [FilterOption], _ value: String) -> HTML {
            options.isEmpty
                ? input(label, name: name, value: value, id: "filter-\(name)", placeholder: "any")
                : select(label, name: name, id: "filter-\(name)", options: options, selected: value, anyLabel: "Any")
        }
        let statusOptions = [FilterOption(value: "ok", label: "Success (2xx)"), FilterOption(value: "error", label: "Errors (4xx/5xx)"),
                             FilterOption(value: "429", label: "429 rate limited")]
        let filters: HTML = """
        <form method="get" action="/dashboard/requests" class="card filters" id="filter-form" data-testid="filter-form">
        \(dim("Project", "project", o.projects, f.project))
        \(dim("Key", "key", o.keys, f.key))
        \(dim("Model", "model", o.models, f.model))
        \(dim("Provider", "provider", o.providers, f.provider))
        \(dim("User", "user", o.users, f.user))
        \(select("Status", name: "status", id: "filter-status", options: statusOptions, selected: f.status, anyLabel: "Any"))
        \(input("From (UTC)", name: "from", value: f.from, type: "date", id: "filter-from"))
        \(input("To (UTC)", name: "to", value: f.to, type: "date", id: "filter-to"))
        <div class="filter-actions"><button type="submit" class="btn btn-primary">Filter</button> <a class="btn btn-ghost" href="/dashboard/requests">Reset</a></div>
        </form>
        """
        let exports: HTML = """
        <a class="btn btn-small" href="\(page.csvURL)" id="export-csv" data-testid="export-csv" download>Export CSV</a>
        <a class="btn btn-small" href="\(page.ndjsonURL)" id="export-ndjson" data-testid="export-ndjson" download>Export NDJSON</a>
        """
        let table: HTML
        if page.rows.isEmpty {
            let anyFilter = f.queryItems.contains { !$0.1.isEmpty }
            table = anyFilter
                ? emptyState("No requests match these filters.", "Widen the date range or <a href=\"/dashboard/requests\">reset the filters</a>.", testid: "requests-empty")
                : emptyState("No requests yet.", noRequestsHint(page.session), testid: "requests-empty")
        } else {
            let rows: [HTML] = page.rows.map { r in
                let href = DashboardURL.request(r.id)
                let tokens: String = (r.promptTokens == nil && r.completionTokens == nil) ? "—" : Format.int((r.promptTokens ?? 0) + (r.completionTokens ?? 0))
                var badges: [HTML] = []
                if r.cacheHit { badges.append(badge("cache hit", "info")) }
                if r.stream { badges.append(badge("stream", "neutral")) }
                if r.attempts > 1 { badges.append(badge("fallback ×\(r.attempts - 1)", "warn")) }
                // No usage (rejected, failed): nothing to price. Usage without a price: "unknown".
                let cost: String = r.costUSD.map { Format.usd($0) } ?? (tokens == "—" ? "—" : "unknown")
                let err: HTML = r.errorCode.map { " <code class=\"err\">\($0)</code>" } ?? .empty
                // The key's name, its id on hover (or the id alone when the name is unknown).
                let key: HTML = r.keyName.map { name in r.keyID.map { "<span title=\"\($0)\">\(name)</span>" } ?? "\(name)" }
                    ?? "\(r.keyID ?? "—")"
                return """
                <tr data-testid="request-row"><td><a href="\(href)" data-testid="request-link">\(time(r.time))</a></td><td>\(r.project ?? "—")</td><td>\(key)</td><td>\(r.user ?? "—")</td><td>\(r.provider ?? "—")</td><td>\(r.model ?? "—")</td><td class="status-cell">\(statusBadge(r.status))\(err)\(badges.isEmpty ? HTML.empty : " ")\(badges)</td><td class="num">\(tokens)</td><td class="num">\(cost)</td><td class="num">\(Format.ms(r.latencyMs))</td></tr>
                """
            }
            table = """
            <div class="table-wrap"><table class="data" data-testid="requests-table">
            <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Project</th><th scope="col">Key</th><th scope="col">User</th><th scope="col">Provider</th><th scope="col">Model</th><th scope="col">Status</th><th scope="col" class="num">Tokens</th><th scope="col" class="num">Cost</th><th scope="col" class="num">Latency</th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            """
        }
        let next: HTML = page.nextCursor.map { cursor in
            "<a class=\"btn\" rel=\"next\" id=\"next-page\" data-testid=\"next-page\" href=\"\(DashboardURL.query("/dashboard/requests", f.queryItems + [("cursor", cursor)]))\">Next page →</a>"
        } ?? .empty
        let content: HTML = """
        \(pageHeader("Requests", subtitle: "Every request to the gateway, newest first.", actions: exports))
        \(filters)
        <section class="card">\(table)<div class="pager">\(next)</div></section>
        """
        return Dashboard.page(title: "Requests", session: page.session, section: .requests, content: content)
    }

    // MARK: 4. Request detail

    /// `GET /dashboard/requests/REQUEST_ID`.
    public static func renderRequestDetail(_ page: RequestDetailPage) -> String {
        let r = page.request
        func opt(_ n: Int?) -> String { n.map { Format.int($0) } ?? "—" }
        func row(_ label: String, _ value: HTML, _ id: String) -> HTML {
            "<div class=\"dl-row\"><dt>\(label)</dt><dd data-testid=\"field-\(id)\">\(value)</dd></div>"
        }
        func text(_ s: String?) -> HTML { s.map { "\($0)" } ?? "—" }
        func code(_ s: String?) -> HTML { s.map { "<code>\($0)</code>" } ?? "—" }
        let key: HTML
        if let name = r.keyName {
            let idCode: HTML = r.keyID.map { "<code>\($0)</code>" } ?? .empty
            key = "\(name) \(idCode)"
        } else {
            key = code(r.keyID)
        }
        let fields: [HTML] = [
            row("Request ID", code(r.id), "id"),
            row("Time (UTC)", time(r.time), "time"),
            row("Method and route", "<code>\(r.method) \(r.route)</code>", "route"),
            row("Project", text(r.project), "project"),
            row("Key", key, "key"),
            row("User", text(r.user), "user"),
            row("Provider", text(r.provider), "provider"),
            row("Model requested", text(r.modelRequested), "model-requested"),
            row("Model served", text(r.modelServed), "model-served"),
            row("Status", statusBadge(r.status), "status"),
            row("Error code", code(r.errorCode), "error-code"),
            row("Prompt tokens", text(opt(r.promptTokens)), "prompt-tokens"),
            row("Completion tokens", text(opt(r.completionTokens)), "completion-tokens"),
            row("Cached prompt tokens", text(opt(r.cachedTokens)), "cached-tokens"),
            row("Reasoning tokens", text(opt(r.reasoningTokens)), "reasoning-tokens"),
            row("Cache-write tokens", text(opt(r.cacheWriteTokens)), "cache-write-tokens"),
            row("Cost", text(Format.usd(r.costUSD)), "cost"),
            row("Latency", text(Format.ms(r.latencyMs)), "latency"),
            row("Upstream latency", text(Format.ms(r.upstreamLatencyMs)), "upstream-latency"),
            row("Time to first token", text(Format.ms(r.timeToFirstTokenMs)), "ttft"),
            row("Gateway cache", text(r.cacheHit ? "hit" : "miss"), "cache-hit"),
            row("Stream", text(r.stream ? "yes" : "no"), "stream"),
        ]
        let attempts: HTML
        if r.attempts.isEmpty {
            attempts = "<p class=\"muted\" data-testid=\"attempts-empty\">No provider was called (rejected before sending, or served from the cache).</p>"
        } else {
            let rows: [HTML] = r.attempts.enumerated().map { i, a in
                "<tr data-testid=\"attempt-row\"><td class=\"num\">\(i + 1)</td><td>\(a.provider)</td><td>\(a.model)</td><td>\(statusBadge(a.status))</td><td class=\"num\">\(Format.ms(a.latencyMs))</td><td>\(code(a.errorCode))</td></tr>"
            }
            attempts = """
            <div class="table-wrap"><table class="data" data-testid="attempts-table">
            <thead><tr><th scope="col" class="num">#</th><th scope="col">Provider</th><th scope="col">Model</th><th scope="col">Status</th><th scope="col" class="num">Latency</th><th scope="col">Error code</th></tr></thead>
            <tbody>\(rows)</tbody>
            </table></div>
            """
        }
        let content: HTML = """
        <p class="crumbs"><a href="/dashboard/requests">← Requests</a></p>
        \(pageHeader("Request", subtitle: "<code>\(r.id)</code>"))
        <section class="card"><dl class="fields" data-testid="request-fields">\(fields)</dl></section>
        <section class="card"><h2>Provider attempts</h2>\(attempts)</section>
        """
        return Dashboard.page(title: "Request \(r.id)", session: page.session, section: .requests, content: content)
    }
}
