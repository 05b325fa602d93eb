import Foundation
import Testing
@testable import GatewayDashboard

@Suite("HTML escaping")
struct EscapingTests {
    @Test func escapeCoversTheFiveCharacters() {
        #expect(HTML.escape(#"<a href="x" title='y'>&</a>"#) == "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;")
        #expect(HTML.escape("café ✓") == "café ✓")
    }

    @Test func interpolatedStringsAreEscapedAndFragmentsAreNot() {
        let evil = "<b>"
        let frag: HTML = "<i>ok</i>"
        let out: HTML = "<p title=\"\(evil)\">\(evil)\(frag)</p>"
        #expect(out.rendered == "<p title=\"&lt;b&gt;\">&lt;b&gt;<i>ok</i></p>")
    }

    @Test(arguments: Fixtures.allPages(evil: true).map(\.0))
    func hostileValuesAreEscapedOnEveryPage(_ page: String) {
        let html = Fixtures.allPages(evil: true).first { $0.0 == page }!.1
        #expect(!html.contains(Fixtures.hostile), "raw hostile value on \(page)")
        #expect(!html.contains("<script>alert"), "script injected on \(page)")
        #expect(!html.contains("<img"), "img injected on \(page)")
        #expect(!html.contains("'><"), "quote breakout on \(page)")
        // The value is there, escaped, so the test is not vacuous (the 500 page shows no user data).
        if page != "error-500" {
            #expect(html.contains(HTML.escape(Fixtures.hostile)), "escaped hostile value missing on \(page)")
        }
    }

    @Test func hostileValuesReachEveryUserField() {
        // Each user-supplied field's marker appears escaped on its page.
        let evil = HTML.escape(Fixtures.hostile)
        let overview = Dashboard.renderOverview(Fixtures.overview(evil: true))
        for v in ["alice", "acme", "gpt-4o", "claude-sonnet-4", "project acme/web", "key prod", "Saved."] {
            #expect(overview.contains(evil + HTML.escape(v)), "overview: \(v)")
        }
        let requests = Dashboard.renderRequests(Fixtures.requests(evil: true))
        for v in ["acme/web", "backend", "bob", "openai", "gpt-4o", "rate_limited", "label"] {
            #expect(requests.contains(evil + HTML.escape(v)), "requests: \(v)")
        }
        let detail = Dashboard.renderRequestDetail(Fixtures.detail(evil: true))
        for v in ["req_1", "acme/web", "key_1", "backend", "bob", "anthropic", "gpt-4o", "claude-sonnet-4", "none", "upstream_unavailable"] {
            #expect(detail.contains(evil + HTML.escape(v)), "detail: \(v)")
        }
        let keys = Dashboard.renderKeys(Fixtures.keys(evil: true, newKey: true))
        for v in ["key_1", "backend", "fresh", "dpx_secret_abc", "web"] {
            #expect(keys.contains(evil + HTML.escape(v)), "keys: \(v)")
        }
        let settings = Dashboard.renderSettings(Fixtures.settings(evil: true))
        for v in ["openai", "abcd", "https://eu.api.openai.com", "openai/gpt-4o", "anthropic/claude-sonnet-4", "pro", "anthropic"] {
            #expect(settings.contains(evil + HTML.escape(v)), "settings: \(v)")
        }
        let prices = Dashboard.renderPrices(Fixtures.prices(evil: true))
        for v in ["gpt-4o", "openai", "built-in"] {
            #expect(prices.contains(evil + HTML.escape(v)), "prices: \(v)")
        }
    }

    @Test func pathSegmentsArePercentEncoded() {
        let p = ProjectRef(org: "a b", name: "x/y?z&\"")
        #expect(DashboardURL.keys(p) == "/dashboard/projects/a%20b/x%2Fy%3Fz%26%22/keys")
        #expect(DashboardURL.request("../admin") == "/dashboard/requests/..%2Fadmin")
        #expect(DashboardURL.query("/d", [("a", "1 2"), ("b", ""), ("c", "&=")]) == "/d?a=1%202&c=%26%3D")
        let html = Dashboard.renderKeys(Fixtures.keys(evil: true))
        // Revoke/limits actions use the encoded key id; no raw `<` can reach an attribute.
        #expect(html.contains("action=\"/dashboard/keys/%3Cscript%3E"))
    }
}

@Suite("Content-Security-Policy compliance")
struct CSPTests {
    static let pages = Fixtures.allPages(evil: false) + Fixtures.allPages(evil: true).map { ("evil-" + $0.0, $0.1) }

    @Test func noInlineScriptsHandlersOrStyles() {
        for (name, html) in Self.pages {
            for tag in Scan.tagsWithoutValues(html) {
                let lower = tag.lowercased()
                #expect(!lower.contains("style="), "style= in \(tag) on \(name)")
                #expect(Scan.matches(#"\son[a-z]+\s*="#, in: lower).isEmpty, "event handler in \(tag) on \(name)")
                if lower.hasPrefix("<script") {
                    #expect(lower.contains(" src="), "inline script on \(name)")
                }
                #expect(!lower.hasPrefix("<style"), "style element on \(name)")
            }
            #expect(!html.lowercased().contains("javascript:"), "javascript: URL on \(name)")
            // Every script element is empty (src only).
            for m in Scan.matches(#"<script[^>]*>([\s\S]*?)</script>"#, in: html) {
                #expect(m[1].isEmpty, "script with content on \(name)")
            }
        }
    }

    @Test func everyPostFormCarriesTheCSRFField() {
        for (name, html) in Self.pages {
            let forms = Scan.matches(#"<form([^>]*)>([\s\S]*?)</form>"#, in: html)
            #expect(forms.count == html.components(separatedBy: "<form").count - 1, "nested or unclosed form on \(name)")
            for f in forms {
                let attrs = f[1], body = f[2]
                if attrs.contains("method=\"post\"") {
                    #expect(body.contains("<input type=\"hidden\" name=\"csrf\" value=\"\(Fixtures.csrf)\">"), "POST form without csrf on \(name): \(attrs)")
                } else {
                    #expect(attrs.contains("method=\"get\""), "form without an explicit method on \(name)")
                    #expect(!body.contains("name=\"csrf\""), "GET form leaking csrf on \(name)")
                }
            }
        }
    }

    @Test func logoutIsAPostFormInTheHeader() {
        let html = Dashboard.renderOverview(Fixtures.overview())
        #expect(html.contains("<form method=\"post\" action=\"/dashboard/logout\" id=\"logout-form\""))
        #expect(!html.contains("href=\"/dashboard/logout\""))
    }

    @Test func assetsAreLinkedNotInlined() {
        for (name, html) in Self.pages {
            #expect(html.contains("<link rel=\"stylesheet\" href=\"/dashboard/assets/app.css\">"), "\(name)")
            #expect(html.contains("<script src=\"/dashboard/assets/app.js\" defer></script>"), "\(name)")
        }
        #expect(DashboardAssets.css.contains("prefers-color-scheme: dark"))
        #expect(DashboardAssets.css.contains("tabular-nums"))
        #expect(DashboardAssets.css.contains(":focus-visible"))
        #expect(DashboardAssets.javascript.contains("navigator.clipboard"))
        #expect(DashboardAssets.javascript.contains("confirm("))
    }
}

@Suite("Formatting")
struct FormatTests {
    @Test func dollars() {
        #expect(Format.usd(1234.5678) == "$1,234.57")
        #expect(Format.usd(0.0042) == "$0.0042")
        #expect(Format.usd(0.5) == "$0.50")
        #expect(Format.usd(0.123456) == "$0.12")
        #expect(Format.usd(0.01) == "$0.01")
        // Below a cent: two significant digits, whatever the page (card, table, detail).
        #expect(Format.usd(0.0008779) == "$0.00088")
        #expect(Format.usd(0.0008) == "$0.0008")
        #expect(Format.usd(0.00007785) == "$0.000078")
        #expect(Format.usd(0.00001234) == "$0.000012")
        #expect(Format.usd(0.0001) == "$0.0001")
        #expect(Format.usd(0.005) == "$0.005")
        #expect(Format.usd(0.00999) == "$0.01")
        #expect(Format.usd(0.009949) == "$0.0099")
        #expect(Format.usd(-0.0008779) == "-$0.00088")
        #expect(Format.usd(1e-25) == "$0.00")
        #expect(Format.usd(0) == "$0.00")
        #expect(Format.usd(1) == "$1.00")
        #expect(Format.usd(0.99999) == "$1.00")
        #expect(Format.usd(1_000_000) == "$1,000,000.00")
        #expect(Format.usd(-12.345) == "-$12.35")
        #expect(Format.usd(nil as Double?) == "unknown")
    }

    @Test func pricesKeepTheirDecimals() {
        #expect(Format.usdRate(2.5) == "$2.50")
        #expect(Format.usdRate(10) == "$10.00")
        #expect(Format.usdRate(0.075) == "$0.075")
        #expect(Format.usdRate(0.0375) == "$0.0375")
        #expect(Format.usdRate(1234.5) == "$1,234.50")
        #expect(Format.usdRate(0.00005) == "$0.00005")
        #expect(Format.usdRate(0) == "$0.00")
    }

    @Test func oneMoneyRuleOnEveryPage() {
        // The reviewer's figures: card, chart table, usage table, budget table, request log, detail.
        let overview = Dashboard.renderOverview(Fixtures.sparseOverview())
        #expect(overview.contains("data-testid=\"card-spend\"><span class=\"stat-label\">Spend</span><span class=\"stat-value\">$0.00088</span>"))
        let spendTable = Scan.section("chart-spend", in: overview)
        #expect(spendTable.contains(">$0.0008<") && spendTable.contains(">$0.000078<") && spendTable.contains(">$0.00088<"))
        #expect(!overview.contains("$0.0008779") && !overview.contains("$0.00007785"))
        var requests = Fixtures.requests()
        requests.rows[0].costUSD = 0.00007785
        #expect(Dashboard.renderRequests(requests).contains("<td class=\"num\">$0.000078</td>"))
        var detail = Fixtures.detail()
        detail.request.costUSD = 0.0001234
        #expect(Dashboard.renderRequestDetail(detail).contains("data-testid=\"field-cost\">$0.00012<"))
    }

    @Test func thousands() {
        #expect(Format.int(0) == "0")
        #expect(Format.int(999) == "999")
        #expect(Format.int(1000) == "1,000")
        #expect(Format.int(1_234_567) == "1,234,567")
        #expect(Format.int(-1234) == "-1,234")
    }

    @Test func percentages() {
        #expect(Format.percent(0.025) == "2.5%")
        #expect(Format.percent(0.0042) == "0.42%")
        #expect(Format.percent(1) == "100%")
        #expect(Format.percent(0) == "0%")
        #expect(Format.percent(0.5) == "50%")
        #expect(Format.percent(12.345) == "1,234.5%")
        #expect(Format.percent(0.0000001) == "<0.01%")
    }

    @Test func durations() {
        #expect(Format.ms(850) == "850 ms")
        #expect(Format.ms(1234) == "1.2 s")
        #expect(Format.ms(4.26) == "4.3 ms")
        #expect(Format.ms(3) == "3 ms")
        #expect(Format.ms(999.4) == "999 ms")
        #expect(Format.ms(999.6) == "1.0 s")
        #expect(Format.ms(75_000) == "75 s")
        #expect(Format.ms(nil as Double?) == "—")
    }

    @Test func timesAreUTC() {
        let d = Date(timeIntervalSince1970: 1_764_811_545) // 2025-12-04 01:25:45 UTC
        #expect(Format.dateTime(d) == "2025-12-04 01:25:45")
        #expect(Format.day(d) == "2025-12-04")
        #expect(Format.iso(d) == "2025-12-04T01:25:45Z")
        for (name, html) in Fixtures.allPages(evil: false) where name.hasPrefix("overview") || name.hasPrefix("requests") {
            #expect(html.contains("All times UTC"), "\(name)")
        }
    }
}

@Suite("Charts")
struct ChartTests {
    /// (title text, figure) for every `<title>` inside an SVG of the chart card.
    static func pointTitles(_ card: String) -> [String] {
        let svg = Scan.matches(#"<svg class="chart-svg"[\s\S]*?</svg>"#, in: card).first?[0] ?? ""
        return Scan.matches(#"<title>([^<]*)</title>"#, in: svg).map { Scan.unescape($0[1]) }
    }

    static func tableCells(_ card: String) -> [String] {
        let table = Scan.matches(#"<table[\s\S]*?</table>"#, in: card).first?[0] ?? ""
        return Scan.matches(#"<td class="num[^"]*">([^<]*)</td>"#, in: table).map { Scan.unescape($0[1]) }
    }

    @Test func oneTitlePerPointWithTheExactFigureAlsoInTheTable() {
        let page = Fixtures.overview()
        let html = Dashboard.renderOverview(page)
        let checks: [(String, TimeSeries, (Double) -> String)] = [
            ("chart-spend", page.spend, { Format.usd($0) }),
            ("chart-requests", page.requests, { Format.int(Int($0)) }),
            ("chart-tokens", page.tokens, { Format.int(Int($0)) }),
            ("chart-latency", page.latency, { Format.ms($0) }),
        ]
        for (id, data, fmt) in checks {
            let card = Scan.section(id, in: html)
            let titles = Self.pointTitles(card)
            let isBars = id != "chart-latency"
            // Bars: one per positive value; lines: one point per present value.
            let expected = data.series.flatMap { $0.values }.filter { v in v.map { isBars ? $0 > 0 : true } ?? false }.count
            #expect(titles.count == expected, "\(id): \(titles.count) titles, \(expected) points")
            let cells = Self.tableCells(card)
            for s in data.series {
                for (i, v) in s.values.enumerated() {
                    guard let v, !isBars || v > 0 else { continue }
                    let when = Format.minute(data.buckets[i]) + " UTC"
                    let title = "\(s.name), \(when): \(fmt(v))"
                    #expect(titles.contains(title), "\(id): missing title \(title)")
                    #expect(cells.contains(fmt(v)), "\(id): table lacks \(fmt(v))")
                }
            }
            #expect(card.contains("Time (UTC)"), "\(id): axis not labelled")
            #expect(card.contains("data-testid=\"\(id)-table\""), "\(id): no table")
        }
        // Spot checks of exact figures.
        #expect(html.contains("<title>gpt-4o, 2025-12-04 00:00 UTC: $1,234.57</title>"))
        #expect(html.contains("<title>gpt-4o, 2025-12-04 01:00 UTC: $0.0042</title>"))
        #expect(html.contains("<title>p95, 2025-12-04 00:00 UTC: 1.2 s</title>"))
        #expect(html.contains("<title>gpt-4o, 2025-12-04 05:00 UTC: 12,345</title>"))
    }

    @Test func stackedTotalsInTheTable() {
        let html = Dashboard.renderOverview(Fixtures.overview())
        let card = Scan.section("chart-spend", in: html)
        // Bucket 0: 1234.5678 + 0.5 + 0.01.
        #expect(card.contains("<td class=\"num total\">\(Format.usd(1235.0778))</td>"))
    }

    /// The rows' time headers of a chart card's table, top to bottom.
    static func rowTimes(_ card: String) -> [String] {
        let table = Scan.matches(#"<table[\s\S]*?</table>"#, in: card).first?[0] ?? ""
        return Scan.matches(#"<tr><th scope="row">([^<]*)</th>"#, in: table).map { $0[1] }
    }

    @Test func tablesListOnlyBucketsWithDataNewestFirst() {
        // 24 hourly buckets, data in the last one: one row, not 23 rows of dashes.
        let sparse = Dashboard.renderOverview(Fixtures.sparseOverview())
        for id in ["chart-spend", "chart-requests", "chart-tokens", "chart-latency"] {
            let card = Scan.section(id, in: sparse)
            #expect(Self.rowTimes(card) == ["2025-12-04 23:00"], "\(id): \(Self.rowTimes(card))")
        }
        #expect(Scan.section("chart-requests", in: sparse).contains("<td class=\"num total\">20</td>"))
        // The six-hour fixture, newest first; latency has no value at 02:00.
        let html = Dashboard.renderOverview(Fixtures.overview())
        let hours = ["05", "04", "03", "02", "01", "00"].map { "2025-12-04 \($0):00" }
        #expect(Self.rowTimes(Scan.section("chart-spend", in: html)) == hours)
        #expect(Self.rowTimes(Scan.section("chart-latency", in: html)) == hours.filter { !$0.hasSuffix("02:00") })
        // Bars: a bucket whose only values are zeros has nothing to show.
        let zeros = TimeSeries(buckets: Array(Fixtures.hours.prefix(3)), bucketSeconds: 3600,
                               series: [ChartSeries(name: "a", values: [1, 0, nil]), ChartSeries(name: "b", values: [nil, 0, 2])])
        let card = Chart.render(title: "R", testid: "c", data: zeros, kind: .stackedBars, unit: .requests, groupNoun: "model", emptyHint: "").rendered
        #expect(Self.rowTimes(card) == ["2025-12-04 02:00", "2025-12-04 00:00"])
    }

    @Test func manySeriesFoldIntoOther() {
        let series = (0..<9).map { i in ChartSeries(name: "m\(i)", values: [Double(i + 1), nil]) }
        let data = TimeSeries(buckets: Array(Fixtures.hours.prefix(2)), bucketSeconds: 3600, series: series)
        let folded = Chart.folded(data)
        #expect(folded.count == 6)
        #expect(folded.prefix(5).map(\.name) == ["m8", "m7", "m6", "m5", "m4"])
        #expect(folded[5].name == "Other (4 more)")
        #expect(folded[5].values == [1 + 2 + 3 + 4, nil])
        let html = Chart.render(title: "Spend", testid: "c", data: data, kind: .stackedBars, unit: .usd, groupNoun: "model", emptyHint: "").rendered
        #expect(html.contains("<title>Other (4 more), 2025-12-04 00:00 UTC: $10.00</title>"))
        #expect(html.contains("class=\"bar c-other\""))
    }

    @Test func emptyDataShowsWhatToDoNext() {
        let html = Dashboard.renderOverview(Fixtures.overview(empty: true))
        for id in ["chart-spend", "chart-requests", "chart-tokens", "chart-latency"] {
            let card = Scan.section(id, in: html)
            #expect(card.contains("data-testid=\"\(id)-empty\""), "\(id)")
            #expect(!card.contains("<svg class=\"chart-svg\""), "\(id)")
        }
        #expect(html.contains("Send one with <code>curl https://ai.example.com/v1/chat/completions"))
        #expect(html.contains("or pick a longer range."))
        #expect(html.contains("data-testid=\"usage-empty\""))
        #expect(html.contains("data-testid=\"budget-empty\""))
        // All-zero data counts as empty too.
        let zero = TimeSeries(buckets: Fixtures.hours, bucketSeconds: 3600, series: [ChartSeries(name: "a", values: [0, 0, nil, 0, 0, 0])])
        #expect(Chart.isEmpty(zero))
    }
}

@Suite("Pages")
struct PageTests {
    @Test func layoutShowsTokenScopeNavAndFlash() {
        let html = Dashboard.renderOverview(Fixtures.overview())
        #expect(html.contains("data-testid=\"token-name\">alice<"))
        #expect(html.contains("data-testid=\"token-scope\">org acme<"))
        #expect(html.contains("href=\"/dashboard/projects/acme/web/keys\""))
        #expect(html.contains("href=\"/dashboard/projects/acme/mobile/settings\""))
        #expect(html.contains("href=\"/dashboard/prices\""))
        #expect(html.contains("data-testid=\"flash\">Saved.<"))
        #expect(html.contains("<a href=\"/dashboard\" data-testid=\"nav-overview\" aria-current=\"page\">"))
        let s = DashboardSession(tokenName: "x", scopeOrg: "acme", scopeProject: "web", readOnly: true, csrf: "c")
        #expect(s.scopeLabel == "project acme/web, read-only")
        #expect(DashboardSession(tokenName: "x", csrf: "c").scopeLabel == "whole installation")
        let err = Dashboard.renderOverview(OverviewPage(
            session: Fixtures.session(flash: Flash(message: "Nope", isError: true)), range: Fixtures.overview().range, groupBy: "model",
            totals: Fixtures.overview().totals, spend: Fixtures.overview().spend, requests: Fixtures.overview().requests,
            tokens: Fixtures.overview().tokens, latency: Fixtures.overview().latency, usage: [], budgets: []))
        #expect(err.contains("class=\"flash flash-error\" role=\"alert\""))
    }

    @Test func loginPage() {
        let html = Dashboard.renderLogin(Fixtures.login())
        #expect(html.contains("id=\"login-form\""))
        #expect(html.contains("<form method=\"post\" action=\"/dashboard/login\""))
        #expect(html.contains("type=\"password\" name=\"token\""))
        #expect(html.contains("That token is not valid, or was revoked."))
        #expect(html.contains("deploxa-gateway admin-token create --name you"))
        let clean = Dashboard.renderLogin(LoginPage(csrf: "c"))
        #expect(!clean.contains("login-error"))
    }

    @Test func overviewPickersCardsUsageAndBudgets() {
        let html = Dashboard.renderOverview(Fixtures.overview())
        #expect(html.contains("href=\"/dashboard?range=7d&amp;group=model\""))
        #expect(html.contains("href=\"/dashboard?range=24h&amp;group=project\""))
        #expect(html.contains("<form method=\"get\" action=\"/dashboard\" class=\"range-form\" id=\"range-form\">"))
        #expect(html.contains("data-testid=\"card-spend\""))
        #expect(html.contains("$1,244.68"))
        #expect(html.contains("13,634"))
        #expect(html.contains("2.5%"))
        #expect(html.contains("0.42%"))
        #expect(html.contains("data-testid=\"usage-table\""))
        #expect(html.components(separatedBy: "data-testid=\"usage-row\"").count - 1 == 3)
        #expect(html.contains("data-testid=\"budget-table\""))
        #expect(html.contains(">90%<"))   // 45 of 50
        #expect(html.contains(">150%<"))  // over budget
        #expect(html.contains("class=\"fill fill-over\" x=\"0\" y=\"0\" width=\"100\""))  // capped bar
        #expect(html.contains("no budget"))
    }

    @Test func oneLatencyCardAndASidebarThatWrapsAtTheSlash() {
        let html = Dashboard.renderOverview(Fixtures.overview())
        #expect(html.components(separatedBy: "class=\"card stat").count - 1 == 7)
        #expect(html.contains("<span class=\"stat-label\">Latency p50 / p95 / p99</span>"))
        #expect(html.contains("<span data-testid=\"card-p50\">850 ms</span>"))
        #expect(html.contains("<span data-testid=\"card-p95\">1.2 s</span>"))
        #expect(html.contains("<span data-testid=\"card-p99\">2.5 s</span>"))
        #expect(!html.contains(">Latency p95<"))
        let sparse = Dashboard.renderOverview(Fixtures.sparseOverview())
        #expect(sparse.contains("<span class=\"project-name\" title=\"dash43e8a8b7/app\"><span>dash43e8a8b7/</span><wbr><span>app</span></span>"))
    }

    @Test func requestsTableLinksFiltersPagingAndExports() {
        let filters = RequestFilters(project: "acme/web", model: "gpt 4o", status: "error")
        let html = Dashboard.renderRequests(Fixtures.requests(filters: filters))
        #expect(html.components(separatedBy: "data-testid=\"request-row\"").count - 1 == 2)
        #expect(html.contains("href=\"/dashboard/requests/req_1\""))
        #expect(html.contains("href=\"/dashboard/requests?project=acme%2Fweb&amp;model=gpt%204o&amp;status=error&amp;cursor=c42\""))
        #expect(html.contains("Next page →"))
        #expect(html.contains("id=\"export-csv\""))
        #expect(html.contains("/api/v1/audit?model=gpt-4o&amp;format=csv"))
        #expect(html.contains("<form method=\"get\" action=\"/dashboard/requests\""))
        #expect(html.contains("<option value=\"error\" selected>"))
        #expect(html.contains("cache hit"))
        #expect(html.contains("stream"))
        #expect(html.contains("fallback ×1"))
        #expect(html.contains("$0.0042"))
        #expect(html.contains("1.2 s"))
        #expect(!html.contains(">unknown<"))   // nil cost without usage: "—"
        var unpriced = Fixtures.requests()
        unpriced.rows[0].costUSD = nil
        #expect(Dashboard.renderRequests(unpriced).contains("<td class=\"num\">unknown</td>"))
        // Provider has no options: a text input.
        #expect(html.contains("<input type=\"text\" name=\"provider\" id=\"filter-provider\""))
        let last = Dashboard.renderRequests(Fixtures.requests(empty: true))
        #expect(!last.contains("next-page"))
        #expect(last.contains("data-testid=\"requests-empty\""))
    }

    @Test func requestDetailHasEveryFieldAndAttempts() {
        let html = Dashboard.renderRequestDetail(Fixtures.detail())
        for id in ["id", "time", "route", "project", "key", "user", "provider", "model-requested", "model-served", "status",
                   "error-code", "prompt-tokens", "completion-tokens", "cached-tokens", "reasoning-tokens", "cache-write-tokens",
                   "cost", "latency", "upstream-latency", "ttft", "cache-hit", "stream"] {
            #expect(html.contains("data-testid=\"field-\(id)\""), "field \(id)")
        }
        #expect(html.components(separatedBy: "data-testid=\"attempt-row\"").count - 1 == 2)
        #expect(html.contains("upstream_unavailable"))
        #expect(html.contains("320 ms"))
        #expect(Dashboard.renderRequestDetail(Fixtures.detail(attempts: false)).contains("attempts-empty"))
    }

    @Test func secretBannerOnlyWhenSet() {
        let with = Dashboard.renderKeys(Fixtures.keys(newKey: true))
        #expect(with.contains("id=\"new-key-secret\""))
        #expect(with.contains("value=\"dpx_secret_abc\""))
        #expect(with.contains("Copy it now: it will not be shown again"))
        #expect(with.contains("data-copy-target=\"new-key-secret\" hidden>Copy</button>"))
        #expect(with.contains("curl https://ai.example.com/v1/chat/completions -H &quot;Authorization: Bearer dpx_secret_abc&quot;"))
        let without = Dashboard.renderKeys(Fixtures.keys())
        #expect(!without.contains("new-key-secret"))
        #expect(!without.contains("new-key-banner"))
        #expect(!without.contains("dpx_secret"))
    }

    @Test func keysPageFormsAndStatuses() {
        let html = Dashboard.renderKeys(Fixtures.keys())
        #expect(html.contains("<form method=\"post\" action=\"/dashboard/projects/acme/web/keys\" id=\"create-key-form\""))
        #expect(html.contains("action=\"/dashboard/keys/key_1/limits\""))
        #expect(html.contains("action=\"/dashboard/keys/key_1/revoke\""))
        #expect(html.contains("<input type=\"hidden\" name=\"project\" value=\"acme/web\">"))
        #expect(html.contains("data-confirm=\"Revoke key backend?"))
        for field in ["name", "rpm", "tpm", "monthly_budget_usd"] { #expect(html.contains("name=\"\(field)\""), "\(field)") }
        #expect(html.contains("value=\"600\""))
        #expect(html.contains("value=\"250\""))
        #expect(html.contains("100,000"))
        #expect(html.contains(">revoked<"))
        #expect(html.contains(">active<"))
        // A revoked key has no forms.
        #expect(!html.contains("/dashboard/keys/key_2/"))
        #expect(Dashboard.renderKeys(Fixtures.keys(empty: true)).contains("data-testid=\"keys-empty\""))
    }

    @Test func readOnlyTokensSeeNoChangeForms() {
        let pages = [
            Dashboard.renderKeys(Fixtures.keys(readOnly: true, newKey: false)),
            Dashboard.renderSettings(Fixtures.settings(readOnly: true)),
            Dashboard.renderPrices(Fixtures.prices(readOnly: true)),
        ]
        for html in pages {
            let posts = Scan.matches(#"<form method="post" action="([^"]*)""#, in: html).map { $0[1] }
            #expect(posts == ["/dashboard/logout"], "\(posts)")
            #expect(html.contains("data-testid=\"read-only-note\""))
        }
        #expect(pages[1].contains("data-testid=\"project-limits\""))
        #expect(pages[0].contains("data-testid=\"keys-table\""))
    }

    @Test func settingsForms() {
        let html = Dashboard.renderSettings(Fixtures.settings())
        let base = "/dashboard/projects/acme/web/settings"
        #expect(html.contains("action=\"\(base)/limits\" id=\"project-limits-form\""))
        #expect(html.contains("<option value=\"pro\" selected>Pro</option>"))
        #expect(html.contains("value=\"1000\""))
        #expect(html.contains("value=\"99.5\""))
        #expect(html.contains("<code>…abcd</code>"))
        #expect(html.contains("action=\"\(base)/providers/openai/delete\""))
        #expect(html.components(separatedBy: "action=\"\(base)/providers\"").count - 1 == 2)
        // The API key input is never pre-filled.
        for m in Scan.matches(#"<input type="password" name="api_key"[^>]*>"#, in: html) {
            #expect(m[0].contains("value=\"\""), "\(m[0])")
        }
        #expect(html.contains("action=\"\(base)/fallbacks\" id=\"fallback-form\""))
        #expect(html.contains("action=\"\(base)/fallbacks/delete\""))
        #expect(html.contains("<input type=\"hidden\" name=\"primary\" value=\"openai/gpt-4o\">"))
        #expect(html.contains("name=\"to\""))
        #expect(html.contains("<code>anthropic/claude-sonnet-4</code> → <code>gemini/gemini-2.0-flash</code>"))
        let empty = Dashboard.renderSettings(Fixtures.settings(empty: true))
        #expect(empty.contains("providers-empty") && empty.contains("fallbacks-empty"))
    }

    @Test func pricesPage() {
        let html = Dashboard.renderPrices(Fixtures.prices())
        #expect(html.contains("data-testid=\"price-row\""))
        #expect(html.contains(">$2.50<") && html.contains(">$10.00<") && html.contains(">$1.25<"))
        #expect(html.contains("USD per 1M tokens"))
        #expect(html.contains("<form method=\"post\" action=\"/dashboard/prices\" id=\"price-form\""))
        for field in ["model", "input", "output", "cached_input"] { #expect(html.contains("name=\"\(field)\""), "\(field)") }
        let noEdit = Dashboard.renderPrices(PricesPage(session: Fixtures.session(), prices: [], canEdit: false))
        #expect(!noEdit.contains("price-form"))
        #expect(noEdit.contains("prices-empty"))
    }

    @Test func errorPages() {
        let notFound = Dashboard.renderError(ErrorPage(status: 404))
        #expect(notFound.contains("Page not found"))
        #expect(notFound.contains("href=\"/dashboard\" id=\"error-back\""))
        #expect(!notFound.contains("logout-form"))
        #expect(Dashboard.renderError(ErrorPage(status: 403, session: Fixtures.session())).contains("logout-form"))
        #expect(Dashboard.renderError(ErrorPage(status: 500)).contains("Something went wrong"))
    }

    @Test func everyPageIsACompleteDocument() {
        for (name, html) in Fixtures.allPages(evil: false) {
            #expect(html.hasPrefix("<!doctype html>\n<html lang=\"en\">"), "\(name)")
            #expect(html.hasSuffix("</html>\n"), "\(name)")
            #expect(html.contains("<meta name=\"viewport\""), "\(name)")
            #expect(html.components(separatedBy: "<title>").count - 1 >= 1, "\(name)")
        }
    }
}

@Suite("Chart scale")
struct ChartScaleTests {
    @Test func roundSteps() {
        #expect(Chart.yScale(3000) == (3000, 3))       // step 1000
        #expect(Chart.yScale(1234.57) == (1500, 3))    // step 500
        #expect(Chart.yScale(12_354) == (15_000, 3))   // step 5000
        #expect(Chart.yScale(1) == (1, 4))             // step 0.25
        #expect(Chart.yScale(0) == (1, 4))
    }
}
