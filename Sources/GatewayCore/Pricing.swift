import Foundation

/// A model's price in USD per 1M tokens. Cached prompt tokens cost `cachedInput` (input price
/// when unset); prompt-cache writes cost `cacheWrite` (input price when unset).
public struct Price: Sendable, Equatable, Codable {
    public var model: String
    public var provider: String?
    public var input: Double
    public var output: Double
    public var cachedInput: Double?
    public var cacheWrite: Double?
    /// Where a shipped default came from (and when); "set by operator" once changed.
    public var source: String?

    public init(model: String, provider: String? = nil, input: Double, output: Double, cachedInput: Double? = nil,
                cacheWrite: Double? = nil, source: String? = nil) {
        self.model = model
        self.provider = provider
        self.input = input
        self.output = output
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.source = source
    }

    /// USD for normalised usage: `prompt` includes `cached` and `cacheWrite`; `completion`
    /// includes reasoning tokens (billed as output by every provider).
    public func cost(prompt: Int, completion: Int, cached: Int = 0, cacheWrite: Int = 0) -> Double {
        let cachedTokens = max(0, min(cached, prompt))
        let writeTokens = max(0, min(cacheWrite, prompt - cachedTokens))
        let plain = max(0, prompt - cachedTokens - writeTokens)
        let promptCost: Double = Double(plain) * input
        let cachedCost: Double = Double(cachedTokens) * (cachedInput ?? input)
        let writeCost: Double = Double(writeTokens) * (self.cacheWrite ?? input)
        let outputCost: Double = Double(max(0, completion)) * output
        return (promptCost + cachedCost + writeCost + outputCost) / 1_000_000
    }
}

/// The price list, with docs/api.md's naming rule: an exact model name wins, else the longest listed
/// name that the model starts with followed by `-`, `@` or `:` (dated and suffixed variants).
public struct PriceTable: Sendable {
    public let prices: [Price]
    private let byModel: [String: Price]

    public init(_ prices: [Price]) {
        self.prices = prices
        var byModel: [String: Price] = [:]
        for price in prices { byModel[price.model.lowercased()] = price }
        self.byModel = byModel
    }

    public func price(for model: String) -> Price? {
        let name = model.lowercased()
        if let exact = byModel[name] { return exact }
        var best: Price?
        for price in prices {
            let prefix = price.model.lowercased()
            guard name.count > prefix.count, name.hasPrefix(prefix) else { continue }
            let next = name[name.index(name.startIndex, offsetBy: prefix.count)]
            guard next == "-" || next == "@" || next == ":" || next == "." else { continue }
            if best == nil || prefix.count > best!.model.count { best = price }
        }
        return best
    }
}

/// Spend arithmetic shared by the limiter and the audit writer.
public enum SpendAmount {
    /// USD as integer nano-dollars, so month-to-date sums are exact. Saturating (NaN is 0): an
    /// absurd price or budget (1e300) must not trap the worker that meets it.
    public static func nanos(_ usd: Double) -> Int64 { Saturating.int64((usd * 1e9).rounded()) }
    public static func usd(_ nanos: Int64) -> Double { Double(nanos) / 1e9 }

    /// USD as a plain decimal without float noise or trailing zeros (`2.5`, `0.0000195`), to
    /// `fractionDigits` places; `keepPoint` writes whole amounts as `1.0` instead of `1`.
    public static func text(_ usd: Double, fractionDigits: Int, keepPoint: Bool = false) -> String {
        // Integer arithmetic into one byte buffer: this runs for every priced answer's header, and
        // String(format:) goes through Foundation's formatter.
        let digits = max(0, min(fractionDigits, 15))
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(usd) * Double(scale)).rounded()
        guard usd.isFinite && scaled < 9.0e18 else { return trimmed(String(format: "%.\(digits)f", usd), keepPoint: keepPoint) }
        let units = Int64(scaled)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(40)
        if usd < 0 && units > 0 { bytes.append(UInt8(ascii: "-")) }
        appendDecimal(units / scale, to: &bytes)
        var fraction = units % scale
        var fractionLength = digits
        while fractionLength > 0 && fraction % 10 == 0 {  // trailing zeros are not written
            fraction /= 10
            fractionLength -= 1
        }
        if fractionLength > 0 {
            bytes.append(UInt8(ascii: "."))
            let start = bytes.count
            appendDecimal(fraction, to: &bytes)
            // Leading zeros of the fraction (0.05: "5" written, one "0" before it).
            bytes.insert(contentsOf: repeatElement(UInt8(ascii: "0"), count: fractionLength - (bytes.count - start)), at: start)
        } else if keepPoint {
            bytes.append(contentsOf: [UInt8(ascii: "."), UInt8(ascii: "0")])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func appendDecimal(_ value: Int64, to bytes: inout [UInt8]) {
        let start = bytes.count
        var rest = value
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        bytes[start...].reverse()
    }

    /// A formatted decimal without trailing zeros (and without its point when nothing follows it).
    private static func trimmed(_ formatted: String, keepPoint: Bool) -> String {
        var text = formatted
        guard text.contains(".") else { return text + (keepPoint ? ".0" : "") }
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") {
            if keepPoint { text += "0" } else { text.removeLast() }
        }
        return text
    }

    /// Gregorian in UTC, built once (months are checked on every limited request).
    public static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// "YYYY-MM" of `date` in UTC: the calendar month budgets and the free plan count in.
    public static func month(of date: Date) -> String {
        // Integer arithmetic on the days since 1970 (the proleptic Gregorian calendar, as
        // `utcCalendar`): Calendar's date components cost microseconds, and every limited request
        // and every audit row asks.
        let days = Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))
        let (year, month) = civilYearAndMonth(daysSince1970: days)
        return "\(year)-\(month < 10 ? "0" : "")\(month)"
    }

    /// The year and month (1–12) of a day counted from 1970-01-01, Howard Hinnant's
    /// `civil_from_days`: eras of 400 years, years starting in March so the leap day is last.
    static func civilYearAndMonth(daysSince1970 days: Int64) -> (year: Int64, month: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month)
    }

    /// Seconds from `date` to the start of the next UTC month (when monthly limits reset).
    public static func secondsToNextMonth(from date: Date) -> Int {
        let start = utcCalendar.dateInterval(of: .month, for: date)?.end ?? date.addingTimeInterval(86_400)
        return max(1, Int(start.timeIntervalSince(date).rounded(.up)))
    }
}

/// A counter owner: `k:<key id>`, `p:<project id>` or `o:<org id>`.
public struct LimitScope: Sendable, Hashable {
    public enum Kind: String, Sendable { case key, project, org }
    public let kind: Kind
    public let id: String

    public init(_ kind: Kind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    public var storageKey: String {
        switch kind {
        case .key: return "k:" + id
        case .project: return "p:" + id
        case .org: return "o:" + id
        }
    }

    public static func all(orgID: Int64?, projectID: Int64?, keyID: String?) -> [LimitScope] {
        var scopes: [LimitScope] = []
        if let keyID { scopes.append(LimitScope(.key, keyID)) }
        if let projectID { scopes.append(LimitScope(.project, String(projectID))) }
        if let orgID { scopes.append(LimitScope(.org, String(orgID))) }
        return scopes
    }
}
