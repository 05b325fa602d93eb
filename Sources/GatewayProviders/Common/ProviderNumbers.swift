import GatewayCore

/// Token counts as a provider reports them, brought into a range the gateway can compute with.
///
/// A provider's number is not trusted: `9e18`, `1e300` or `-3` in a `usage` object must neither
/// trap the worker (`Int(1e300)`, or `prompt + completion` overflowing) nor bill a project for a
/// quintillion tokens, nor credit it with negative ones. Every adapter reads its counts through
/// here, so the rule is the same for all of them: a count is clamped into
/// `0...TokenCount.maximum`; something that is not a number is absent.
public enum TokenCount {
    /// Far above any real request (the largest context windows are a few million tokens), far
    /// below where sums of a handful of counts could overflow `Int`.
    public static let maximum = 1_000_000_000

    /// The count `value` holds: integers and finite doubles clamped into `0...maximum` (a
    /// fractional double rounded down); nil when absent, `null` or not a number.
    public static func clamp(_ value: JSON?) -> Int? {
        switch value {
        case .int(let number)?: return clamp(number)
        case .double(let number)?:
            guard !number.isNaN else { return nil }
            return Saturating.int(number.rounded(.down), in: 0...maximum)
        default: return nil
        }
    }

    public static func clamp(_ value: Int64) -> Int {
        Int(min(max(value, 0), Int64(maximum)))
    }

    /// A sum of counts (Anthropic's prompt = input + cache reads + cache writes; Gemini's
    /// completion = candidates + thoughts), clamped like one count.
    public static func sum(_ counts: Int...) -> Int {
        var total = 0
        for count in counts { total = min(total + min(max(count, 0), maximum), maximum) }
        return total
    }
}

/// `Retry-After` values from providers (headers, Anthropic's `retry-after-ms`, Gemini's
/// `RetryInfo.retryDelay`), in whole seconds within `0...RetryAfter.maximumSeconds`, so that
/// `1e99`, `inf` or `-5` neither trap nor park a provider for centuries.
public enum RetryAfter {
    /// One day: longer waits are not waits but outages, and the circuit breaker caps lower still.
    public static let maximumSeconds = 86_400

    /// `seconds` rounded up and clamped; nil for NaN.
    public static func clamp(seconds: Double) -> Int? {
        guard !seconds.isNaN else { return nil }
        return Saturating.int(seconds.rounded(.up), in: 0...maximumSeconds)
    }

    /// The `Retry-After` header in seconds: a number (clamped), or 1 s for anything else (an HTTP
    /// date, garbage). nil when the header is absent.
    public static func seconds(_ headers: [(name: String, value: String)]) -> Int? {
        guard let value = headers.first(where: { $0.name.lowercased() == "retry-after" })?.value.trimmingWhitespace() else {
            return nil
        }
        if let seconds = Int(value) { return min(max(seconds, 0), maximumSeconds) }
        if let seconds = Double(value), let clamped = clamp(seconds: seconds) { return clamped }
        return 1
    }

    /// Anthropic's `retry-after-ms`, which its SDK prefers over `retry-after`, in whole seconds
    /// (rounded up); nil when absent or not a number.
    public static func milliseconds(_ headers: [(name: String, value: String)]) -> Int? {
        guard let value = headers.first(where: { $0.name.lowercased() == "retry-after-ms" })?.value,
              let milliseconds = Double(value.trimmingWhitespace()) else { return nil }
        return clamp(seconds: milliseconds / 1000)
    }
}

/// Other numbers providers send that end up in the client's answer.
public enum ProviderNumber {
    /// Latest `created` accepted: the end of year 9999, as far as timestamps are meaningful.
    static let latestTimestamp: Int64 = 253_402_300_799

    /// A provider's `created` (Unix seconds) when it is a plausible timestamp, else nil (the
    /// gateway clock stands in).
    public static func timestamp(_ value: JSON?) -> Int? {
        guard let seconds = value?.intValue, seconds >= 0, seconds <= latestTimestamp else { return nil }
        return Int(seconds)
    }

    /// A choice or tool-call `index`: a non-negative integer the client sees as-is; nil when
    /// absent or unusable (the caller uses the position instead). Indices are only ever labels
    /// (never used to size or subscript an array), so a huge one costs nothing.
    public static func index(_ value: JSON?) -> Int? {
        guard let index = value?.intValue, index >= 0 else { return nil }
        return Int(index)
    }
}
