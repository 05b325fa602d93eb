import Foundation

/// Inline SVG charts drawn on the server, each followed by a table of the exact figures.
/// No `style=` anywhere: colours come from CSS classes (`c0`…`c5`, `c-other`) and SVG attributes.
enum Chart {
    enum Kind { case stackedBars, lines }

    enum Unit {
        case usd, requests, tokens, milliseconds

        func exact(_ v: Double) -> String {
            switch self {
            case .usd: return Format.usd(v)
            case .requests, .tokens: return Format.int(Int(v.rounded()))
            case .milliseconds: return Format.ms(v)
            }
        }

        func axis(_ v: Double) -> String {
            switch self {
            case .usd: return v == 0 ? "$0" : (v >= 1 ? "$" + Format.compact(v) : Format.usd(v))
            case .requests, .tokens: return Format.compact(v)
            case .milliseconds: return Format.ms(v)
            }
        }

        var axisTitle: String {
            switch self {
            case .usd: return "USD"
            case .requests: return "Requests"
            case .tokens: return "Tokens"
            case .milliseconds: return "Latency"
            }
        }
    }

    /// How many named series are kept; the rest are summed into "Other".
    static let maxSeries = 5

    /// The top `maxSeries` series by total, plus one "Other (N more)" summing the rest.
    static func folded(_ data: TimeSeries) -> [ChartSeries] {
        guard data.series.count > maxSeries + 1 else { return data.series }
        let ranked = data.series.enumerated().sorted { a, b in
            let ta = a.element.values.reduce(0) { $0 + ($1 ?? 0) }
            let tb = b.element.values.reduce(0) { $0 + ($1 ?? 0) }
            return ta != tb ? ta > tb : a.offset < b.offset
        }.map(\.element)
        let kept = Array(ranked.prefix(maxSeries))
        let rest = ranked.dropFirst(maxSeries)
        var other = [Double?](repeating: nil, count: data.buckets.count)
        for s in rest {
            for (i, v) in s.values.enumerated() where i < other.count {
                if let v { other[i] = (other[i] ?? 0) + v }
            }
        }
        return kept + [ChartSeries(name: "Other (\(rest.count) more)", values: other)]
    }

    static func value(_ s: ChartSeries, _ i: Int) -> Double? { i < s.values.count ? s.values[i] : nil }

    /// Whether bucket `i` has a figure to show: a value in any series (bars: a non-zero one).
    static func hasData(_ series: [ChartSeries], _ i: Int, _ kind: Kind) -> Bool {
        series.contains { s in value(s, i).map { kind == .lines || $0 != 0 } ?? false }
    }

    static func isEmpty(_ data: TimeSeries) -> Bool {
        data.buckets.isEmpty || !data.series.contains { $0.values.contains { ($0 ?? 0) != 0 } }
    }

    /// Rounds up to 1, 2, 2.5 or 5 × 10^k.
    static func niceMax(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let p = pow(10, floor(log10(x)))
        for m in [1, 2, 2.5, 5, 10] as [Double] where m * p >= x * 0.999999 { return m * p }
        return 10 * p
    }

    /// Y axis: a round step (1, 2, 2.5 or 5 × 10^k) and 2 to 5 gridlines reaching past `maxValue`.
    static func yScale(_ maxValue: Double) -> (top: Double, ticks: Int) {
        guard maxValue > 0, maxValue.isFinite else { return (1, 4) }
        let step = niceMax(maxValue / 4)
        let ticks = max(2, Int((maxValue / step - 1e-9).rounded(.up)))
        return (step * Double(ticks), ticks)
    }

    static func num(_ x: Double) -> String {
        let r = (x * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
    }

    /// An x axis label: `MM-dd` for daily buckets; for shorter ones `HH:mm`, with the date in
    /// front when the day differs from the previous label's (`previous` nil: the first label).
    static func axisTime(_ d: Date, step: Double, previous: Date? = nil) -> String {
        let full = Format.minute(d)                        // yyyy-MM-dd HH:mm
        let md = String(full.dropFirst(5).prefix(5))        // MM-dd
        guard step < 86_400 else { return md }
        let sameDay = previous.map { Format.day($0) == Format.day(d) } ?? false
        return sameDay ? String(full.suffix(5)) : md + " " + String(full.suffix(5))
    }

    /// A chart card: heading, SVG, legend and the table of figures; or an empty state.
    static func render(title: String, testid: String, data: TimeSeries, kind: Kind, unit: Unit,
                       groupNoun: String, emptyHint: HTML) -> HTML {
        guard !isEmpty(data) else {
            return """
            <section class="card chart-card" data-testid="\(testid)">
            <h2>\(title)</h2>
            \(Dashboard.emptyState("No data in this range.", emptyHint, testid: "\(testid)-empty"))
            </section>
            """
        }
        let series = kind == .stackedBars ? folded(data) : data.series
        let colour: (Int, ChartSeries) -> String = { i, s in
            s.name.hasPrefix("Other (") && i == series.count - 1 && kind == .stackedBars ? "c-other" : "c\(i % 6)"
        }
        let n = data.buckets.count
        // A compact viewBox: drawn at about 1:1 beside the table, and at about 0.7 on a phone,
        // where the CSS enlarges the labels, hides every other x label and the axis titles.
        let w = 480.0, h = 240.0, left = 76.0, right = 10.0, top = 12.0, bottom = 40.0
        let plotW = w - left - right, plotH = h - top - bottom

        var maxV = 0.0
        for i in 0..<n {
            if kind == .stackedBars {
                maxV = max(maxV, series.reduce(0) { $0 + max(0, value($1, i) ?? 0) })
            } else {
                for s in series { maxV = max(maxV, value(s, i) ?? 0) }
            }
        }
        let (top_, tickCount) = yScale(maxV)
        func y(_ v: Double) -> Double { top + plotH - (v / top_) * plotH }
        let band = plotW / Double(max(n, 1))
        func cx(_ i: Int) -> Double { left + band * (Double(i) + 0.5) }
        let when: (Int) -> String = { i in Format.bucket(data.buckets[i], step: data.bucketSeconds) + " UTC" }

        var svg: [HTML] = []
        // Grid and y axis labels.
        for t in 0...tickCount {
            let v = top_ * Double(t) / Double(tickCount)
            let yy = num(y(v))
            svg.append("<line class=\"grid\" x1=\"\(num(left))\" x2=\"\(num(w - right))\" y1=\"\(yy)\" y2=\"\(yy)\"/>")
            svg.append("<text class=\"tick tick-y\" x=\"\(num(left - 5))\" y=\"\(yy)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(unit.axis(v))</text>")
        }
        // X axis labels, at most 6 (3 on a phone: the odd ones are "minor").
        let every = max(1, Int((Double(n) / 6).rounded(.up)))
        for (k, i) in stride(from: 0, to: n, by: every).enumerated() {
            let minor = k % 2 == 1
            // The date is shown when it differs from the previous visible label's (on a phone,
            // the previous major one).
            let back = minor ? every : 2 * every
            let label = axisTime(data.buckets[i], step: data.bucketSeconds, previous: i >= back ? data.buckets[i - back] : nil)
            let cls = minor ? "tick tick-x minor" : "tick tick-x"
            svg.append("<text class=\"\(cls)\" x=\"\(num(cx(i)))\" y=\"\(num(top + plotH + 16))\" text-anchor=\"middle\">\(label)</text>")
        }
        svg.append("<line class=\"axis\" x1=\"\(num(left))\" x2=\"\(num(w - right))\" y1=\"\(num(top + plotH))\" y2=\"\(num(top + plotH))\"/>")
        svg.append("<text class=\"axis-title\" x=\"\(num(left + plotW / 2))\" y=\"\(num(h - 6))\" text-anchor=\"middle\">Time (UTC)</text>")
        svg.append("<text class=\"axis-title\" x=\"12\" y=\"\(num(top + plotH / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(num(top + plotH / 2)))\">\(unit.axisTitle)</text>")

        switch kind {
        case .stackedBars:
            let bw = max(1, band * 0.72)
            for i in 0..<n {
                var acc = 0.0
                for (si, s) in series.enumerated() {
                    guard let v = value(s, i), v > 0 else { continue }
                    let y1 = y(acc + v), y0 = y(acc)
                    acc += v
                    svg.append("<rect class=\"bar \(colour(si, s))\" x=\"\(num(cx(i) - bw / 2))\" y=\"\(num(y1))\" width=\"\(num(bw))\" height=\"\(num(max(0.5, y0 - y1)))\"><title>\(s.name), \(when(i)): \(unit.exact(v))</title></rect>")
                }
            }
        case .lines:
            for (si, s) in series.enumerated() {
                // Break the line at missing buckets.
                var run: [String] = []
                func flush() {
                    if run.count > 1 { svg.append("<polyline class=\"line \(colour(si, s))\" fill=\"none\" points=\"\(run.joined(separator: " "))\"/>") }
                    run = []
                }
                for i in 0..<n {
                    if let v = value(s, i) { run.append("\(num(cx(i))),\(num(y(v)))") } else { flush() }
                }
                flush()
                for i in 0..<n {
                    guard let v = value(s, i) else { continue }
                    svg.append("<circle class=\"point \(colour(si, s))\" cx=\"\(num(cx(i)))\" cy=\"\(num(y(v)))\" r=\"3.5\"><title>\(s.name), \(when(i)): \(unit.exact(v))</title></circle>")
                }
            }
        }

        let legend: [HTML] = series.enumerated().map { si, s in
            "<li><span class=\"swatch \(colour(si, s))\" aria-hidden=\"true\"></span>\(s.name)</li>"
        }

        // The table of exact figures.
        let heads: [HTML] = series.map { "<th scope=\"col\" class=\"num\">\($0.name)</th>" }
        let totalHead: HTML = kind == .stackedBars ? "<th scope=\"col\" class=\"num\">Total</th>" : .empty
        // Only the buckets with data, newest first: a long range with one busy hour is one row
        // at the top, not a scroll box of dashes.
        var rows: [HTML] = []
        for i in (0..<n).reversed() where hasData(series, i, kind) {
            let cells: [HTML] = series.map { s in "<td class=\"num\">\(value(s, i).map { unit.exact($0) } ?? "—")</td>" }
            let total: HTML = kind == .stackedBars
                ? "<td class=\"num total\">\(unit.exact(series.reduce(0) { $0 + (value($1, i) ?? 0) }))</td>" : .empty
            rows.append("<tr><th scope=\"row\">\(Format.bucket(data.buckets[i], step: data.bucketSeconds))</th>\(cells)\(total)</tr>")
        }
        let label = "\(title), by \(groupNoun), times in UTC"
        return """
        <section class="card chart-card" data-testid="\(testid)">
        <h2>\(title)</h2>
        <div class="chart-layout">
        <figure class="chart">
        <svg class="chart-svg" viewBox="0 0 \(num(w)) \(num(h))" role="img" aria-label="\(label)" preserveAspectRatio="xMidYMid meet">\(svg)</svg>
        <figcaption><ul class="legend">\(legend)</ul></figcaption>
        </figure>
        <div class="table-wrap chart-table" data-testid="\(testid)-table">
        <table class="data">
        <caption>\(title) (exact figures, UTC)</caption>
        <thead><tr><th scope="col">Time (UTC)</th>\(heads)\(totalHead)</tr></thead>
        <tbody>\(rows)</tbody>
        </table>
        </div>
        </div>
        </section>
        """
    }
}
