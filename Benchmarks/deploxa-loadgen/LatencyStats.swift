// Percentiles (nearest rank over the sorted samples) and small formatting helpers.

import Foundation

struct Percentiles: Sendable {
    var count: Int
    var p50: Double?
    var p90: Double?
    var p99: Double?
    var p999: Double?
    var max: Double?

    /// `samples` are nanoseconds; results are milliseconds (nil when there are no samples).
    init(nanos samples: [UInt64]) {
        let sorted = samples.sorted()
        count = sorted.count
        func rank(_ q: Double) -> Double? {
            guard !sorted.isEmpty else { return nil }
            let idx = Swift.min(sorted.count - 1, Swift.max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
            return Double(sorted[idx]) / 1_000_000
        }
        p50 = rank(0.50)
        p90 = rank(0.90)
        p99 = rank(0.99)
        p999 = rank(0.999)
        max = sorted.last.map { Double($0) / 1_000_000 }
    }
}

/// "12.345" (3 decimals) or "n/a".
func fmt3(_ v: Double?) -> String {
    guard let v else { return "n/a" }
    return String(format: "%.3f", v)
}

/// A JSON number with 3 decimals, or null.
func json3(_ v: Double?) -> String {
    guard let v, v.isFinite else { return "null" }
    return String(format: "%.3f", v)
}

/// {"200":10,"502":1} with keys in ascending order.
func jsonCounts<K: Comparable & CustomStringConvertible>(_ counts: [K: Int]) -> String {
    let items = counts.keys.sorted().map { "\"\($0)\":\(counts[$0]!)" }
    return "{" + items.joined(separator: ",") + "}"
}

/// "404: 2, 502: 1" or "none".
func textCounts<K: Comparable & CustomStringConvertible>(_ counts: [K: Int]) -> String {
    let items = counts.keys.sorted().map { "\($0): \(counts[$0]!)" }
    return items.isEmpty ? "none" : items.joined(separator: ", ")
}

/// Adds `other` into `into`.
func mergeCounts<K: Hashable>(_ into: inout [K: Int], _ other: [K: Int]) {
    for (k, v) in other { into[k, default: 0] += v }
}
