import CSQLite
import Foundation

/// Request latencies (or TTFT) counted in fixed log-scale buckets, so histograms of different
/// hours, days and groups merge by adding counters, and any percentile can be read from a merged
/// one. Bucket 0 holds everything under 0.5 ms (and values that are not numbers); bucket i ≥ 1
/// holds [0.5·2^((i−1)/8), 0.5·2^(i/8)) ms, each 9 % wider than the last; the last bucket (199,
/// from ≈ 3.9 hours) holds everything above. A percentile is reported as its bucket's geometric
/// middle, so it is within ±4.5 % (half a bucket) of some true sample of that rank's bucket,
/// and always within one bucket's width of the true percentile.
///
/// Stored sparse (most groups see few distinct latencies): pairs of a 1-byte bucket index and
/// a little-endian UInt32 count, by ascending index, 5 bytes per non-empty bucket. Counters
/// saturate at UInt32.max rather than wrap.
struct LatencyHistogram: Equatable {
    static let bucketCount = 200
    static let bucketsPerDoubling = 8.0
    static let smallestBound = 0.5

    /// Dense counters while there are samples; empty (no allocation) until the first, since
    /// most groups of a batch see no TTFT at all. Plain index loops below: this runs for every
    /// rollup row of every batch.
    private(set) var counts: [UInt32] = []

    var total: UInt64 {
        var sum: UInt64 = 0
        for index in 0..<counts.count { sum += UInt64(counts[index]) }
        return sum
    }

    var isEmpty: Bool { total == 0 }

    static func == (lhs: LatencyHistogram, rhs: LatencyHistogram) -> Bool {
        if lhs.counts.isEmpty || rhs.counts.isEmpty { return lhs.isEmpty && rhs.isEmpty }
        return lhs.counts == rhs.counts
    }

    static func bucket(for milliseconds: Double) -> Int {
        guard milliseconds >= smallestBound else { return 0 }  // also NaN
        let index = 1 + Int((log2(milliseconds / smallestBound) * bucketsPerDoubling).rounded(.down))
        return min(max(index, 1), bucketCount - 1)
    }

    /// The bucket's lower and upper bound in ms.
    static func bounds(of bucket: Int) -> (lower: Double, upper: Double) {
        if bucket <= 0 { return (0, smallestBound) }
        return (smallestBound * exp2(Double(bucket - 1) / bucketsPerDoubling),
                smallestBound * exp2(Double(bucket) / bucketsPerDoubling))
    }

    /// What a percentile falling in `bucket` is reported as: its geometric middle.
    static func representative(of bucket: Int) -> Double {
        if bucket <= 0 { return smallestBound / 2 }
        return smallestBound * exp2((Double(bucket) - 0.5) / bucketsPerDoubling)
    }

    mutating func add(_ milliseconds: Double) {
        allocate()
        let index = Self.bucket(for: milliseconds)
        counts[index] = Self.saturatingAdd(counts[index], 1)
    }

    mutating func merge(_ other: LatencyHistogram) {
        guard !other.counts.isEmpty else { return }
        guard !counts.isEmpty else { counts = other.counts; return }
        for index in 0..<Self.bucketCount { counts[index] = Self.saturatingAdd(counts[index], other.counts[index]) }
    }

    /// Adds a stored (sparse) histogram; bytes that are not one are ignored.
    mutating func merge(blob: UnsafeRawBufferPointer) {
        guard blob.count > 0 else { return }
        allocate()
        Self.forEachEntry(in: blob) { index, count in counts[index] = Self.saturatingAdd(counts[index], count) }
    }

    private mutating func allocate() {
        if counts.isEmpty { counts = [UInt32](repeating: 0, count: Self.bucketCount) }
    }

    /// The value below which `fraction` (0…1) of the samples fall, nil when empty: the
    /// representative of the bucket holding the sample of rank ⌈fraction·total⌉.
    func percentile(_ fraction: Double) -> Double? {
        let total = self.total
        guard total > 0 else { return nil }
        let rank = max(1, UInt64((fraction * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for index in 0..<counts.count {
            seen += UInt64(counts[index])
            if seen >= rank { return Self.representative(of: index) }
        }
        return Self.representative(of: Self.bucketCount - 1)
    }

    /// The sparse encoding; nil when empty (stored as NULL).
    func encoded() -> [UInt8]? {
        var bytes: [UInt8] = []
        for index in 0..<counts.count where counts[index] > 0 {
            let count = counts[index]
            bytes += [UInt8(index), UInt8(truncatingIfNeeded: count), UInt8(truncatingIfNeeded: count >> 8),
                      UInt8(truncatingIfNeeded: count >> 16), UInt8(truncatingIfNeeded: count >> 24)]
        }
        return bytes.isEmpty ? nil : bytes
    }

    init() {}

    init(blob: UnsafeRawBufferPointer) { merge(blob: blob) }

    private static func saturatingAdd(_ a: UInt32, _ b: UInt32) -> UInt32 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// Calls `body` for each well-formed entry; stops at the first malformed one.
    private static func forEachEntry(in blob: UnsafeRawBufferPointer, _ body: (Int, UInt32) -> Void) {
        guard blob.count % 5 == 0 else { return }
        var offset = 0
        while offset < blob.count {
            let index = Int(blob[offset])
            guard index < bucketCount else { return }
            let count = UInt32(blob[offset + 1]) | UInt32(blob[offset + 2]) << 8 | UInt32(blob[offset + 3]) << 16
                | UInt32(blob[offset + 4]) << 24
            body(index, count)
            offset += 5
        }
    }

    // MARK: - The SQL function

    static let mergeFunctionName = "deploxa_hist_merge"

    /// Registers `deploxa_hist_merge(a, b)` (the sum of two stored histograms; NULL counts as
    /// empty) on a connection, so a batch's upsert merges histograms inside SQLite without
    /// reading them back. Every connection gets it (`SQLiteConnection.init`): any may write audit rows.
    static func register(on database: OpaquePointer) -> Int32 {
        sqlite3_create_function_v2(database, mergeFunctionName, 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
                                   { context, count, arguments in
                                       guard let context, count == 2, let arguments else { return }
                                       LatencyHistogram.mergeForSQL(context, arguments[0], arguments[1])
                                   }, nil, nil, nil)
    }

    private static func mergeForSQL(_ context: OpaquePointer, _ first: OpaquePointer?, _ second: OpaquePointer?) {
        var histogram = LatencyHistogram()
        for value in [first, second] {
            guard let value, sqlite3_value_type(value) == SQLITE_BLOB else { continue }
            let count = Int(sqlite3_value_bytes(value))
            guard let pointer = sqlite3_value_blob(value) else { continue }
            histogram.merge(blob: UnsafeRawBufferPointer(start: pointer, count: count))
        }
        guard let bytes = histogram.encoded() else {
            sqlite3_result_null(context)
            return
        }
        bytes.withUnsafeBytes { buffer in
            sqlite3_result_blob(context, buffer.baseAddress, Int32(buffer.count), deploxa_sqlite_transient())
        }
    }
}
