import Foundation

/// Number and time formatting for the dashboard. Deterministic (no locale): `.` decimal
/// separator, `,` thousands separator, times in UTC.
public enum Format {
    /// `1234567` → `"1,234,567"`.
    public static func int(_ n: Int) -> String {
        let digits = String(n.magnitude)
        return (n < 0 ? "-" : "") + group(digits)
    }

    /// Thousands separators in a string of digits.
    static func group(_ digits: String) -> String {
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return out
    }

    /// Fixed decimals with thousands separators: `fixed(1234.567, 2)` → `"1,234.57"`.
    static func fixed(_ x: Double, _ decimals: Int) -> String {
        let s = String(format: "%.\(decimals)f", x.magnitude)
        let parts = s.split(separator: ".", maxSplits: 1)
        var out = group(String(parts[0]))
        if parts.count > 1 { out += "." + parts[1] }
        let isZero = Double(s) == 0
        return (x < 0 && !isZero ? "-" : "") + out
    }

    /// US dollars: the one rule for every amount on every page. From one cent: two decimals with
    /// thousands separators (`$1,234.57`, `$0.50`). Below: two significant digits (`$0.0042`,
    /// `$0.00088`, `$0.000078`; trailing zeros dropped: `$0.005`). Zero: `$0.00`.
    public static func usd(_ amount: Double) -> String {
        guard amount.isFinite else { return "—" }
        let sign = amount < 0 ? "-" : ""
        let a = amount.magnitude
        if a == 0 { return "$0.00" }
        if a < 0.01 {
            let exponent = Int(floor(log10(a)))             // 0.00088 → -4
            let decimals = min(1 - exponent, 20)            // two significant digits
            var s = String(format: "%.\(decimals)f", a)
            let rounded = Double(s) ?? 0
            if rounded == 0 { return "$0.00" }               // below 10^-20
            if rounded < 0.01 {                              // 0.00999 rounds up to a cent
                while s.hasSuffix("0") { s.removeLast() }
                return sign + "$" + s
            }
        }
        return sign + "$" + fixed(a, 2)
    }

    /// A price in US dollars (per 1M tokens): like `usd` from one cent, but with up to four decimals
    /// so that a rate is shown as set (`$2.50`, `$0.075`, `$0.0375`); below a cent, `usd`'s rule.
    public static func usdRate(_ amount: Double) -> String {
        guard amount.isFinite, amount.magnitude >= 0.01 else { return usd(amount) }
        var s = fixed(amount.magnitude, 4)
        while s.hasSuffix("0"), let dot = s.firstIndex(of: "."), s.distance(from: dot, to: s.endIndex) > 3 { s.removeLast() }
        return (amount < 0 ? "-$" : "$") + s
    }

    /// Optional dollars: `"unknown"` when nil (cost is never silently zero).
    public static func usd(_ amount: Double?) -> String {
        amount.map { usd($0) } ?? "unknown"
    }

    /// A ratio in 0…1 as a percentage: `0.025` → `"2.5%"`, `0.0042` → `"0.42%"`, `1` → `"100%"`.
    public static func percent(_ ratio: Double) -> String {
        guard ratio.isFinite else { return "—" }
        let p = ratio * 100
        if p == 0 { return "0%" }
        let decimals = p.magnitude < 1 ? 2 : 1
        var s = fixed(p, decimals)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        if s == "0" || s == "-0" { return p > 0 ? "<0.01%" : "0%" }
        return s + "%"
    }

    /// A duration in milliseconds: `850` → `"850 ms"`, `4.26` → `"4.3 ms"`, `1234` → `"1.2 s"`,
    /// `75_000` → `"75 s"`.
    public static func ms(_ value: Double) -> String {
        guard value.isFinite else { return "—" }
        let v = value.magnitude
        if v < 10 && v != v.rounded() { return fixed(value, 1) + " ms" }
        if v < 999.5 { return String(Int(value.rounded())) + " ms" }
        if v < 59_950 { return fixed(value / 1000, 1) + " s" }
        return int(Int((value / 1000).rounded())) + " s"
    }

    /// Optional milliseconds: `"—"` when nil.
    public static func ms(_ value: Double?) -> String { value.map { ms($0) } ?? "—" }

    /// Short axis label for a count: `1200` → `"1.2k"`, `3_400_000` → `"3.4M"`.
    public static func compact(_ x: Double) -> String {
        let a = x.magnitude
        func trim(_ s: String) -> String { s.hasSuffix(".0") ? String(s.dropLast(2)) : s }
        if a >= 1_000_000_000 { return trim(String(format: "%.1f", x / 1_000_000_000)) + "B" }
        if a >= 1_000_000 { return trim(String(format: "%.1f", x / 1_000_000)) + "M" }
        if a >= 1_000 { return trim(String(format: "%.1f", x / 1_000)) + "k" }
        if a == a.rounded() { return String(Int(x)) }
        return trim(String(format: "%.2f", x))
    }

    static let utc: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    private static func parts(_ date: Date) -> DateComponents {
        utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }

    private static func two(_ n: Int?) -> String { String(format: "%02d", n ?? 0) }

    /// `"2026-12-04 01:19:05"` (UTC).
    public static func dateTime(_ date: Date) -> String {
        let c = parts(date)
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }

    /// `"2026-12-04 01:19"` (UTC).
    public static func minute(_ date: Date) -> String {
        let c = parts(date)
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute))"
    }

    /// `"2026-12-04"` (UTC): the value format of `<input type="date">`.
    public static func day(_ date: Date) -> String {
        let c = parts(date)
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day))"
    }

    /// `"2026-12-04T01:19:05Z"`: for `<time datetime=…>`.
    public static func iso(_ date: Date) -> String {
        let c = parts(date)
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day))T\(two(c.hour)):\(two(c.minute)):\(two(c.second))Z"
    }

    /// A chart bucket label: the time of day when the buckets are shorter than a day, else the date.
    static func bucket(_ date: Date, step: TimeInterval) -> String {
        step < 86_400 ? minute(date) : day(date)
    }
}
