/// Arithmetic for numbers that cross in from outside (a client's body, a provider's answer, an
/// operator's setting). Swift traps on overflow, and a trap kills a worker with every request it
/// holds, so such numbers are clamped into range instead of being trusted.
public enum Saturating {
    /// `a + b`, stuck at `Int64.max` / `Int64.min` instead of overflowing.
    @inlinable
    public static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    @inlinable
    public static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    /// A double as an Int64: NaN is 0, anything beyond the range is the range's end.
    @inlinable
    public static func int64(_ value: Double) -> Int64 {
        if value.isNaN { return 0 }
        if value >= 9.2e18 { return .max }
        if value <= -9.2e18 { return .min }
        return Int64(value)
    }

    /// A double as an Int, clamped into `range` (NaN gives the lower bound).
    @inlinable
    public static func int(_ value: Double, in range: ClosedRange<Int>) -> Int {
        if value.isNaN { return range.lowerBound }
        if value <= Double(range.lowerBound) { return range.lowerBound }
        if value >= Double(range.upperBound) { return range.upperBound }
        return Int(value)
    }
}
