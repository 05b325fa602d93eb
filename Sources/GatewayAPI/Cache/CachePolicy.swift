import GatewayCore
import GatewayHTTP

/// How one request asked to be cached: `X-Cache-TTL: SECONDS`, softened by `Cache-Control`
/// (`no-cache`: do not answer from the cache but store the fresh answer; `no-store`: neither).
struct CachePolicy: Sendable, Equatable {
    /// 30 days; longer TTLs are refused rather than silently shortened.
    static let maxTTLSeconds = 30 * 24 * 3600

    let ttlSeconds: Int
    /// Answer from a stored entry when there is one.
    let lookup: Bool
    /// Store this request's successful answer.
    let store: Bool

    /// nil when the request has no `X-Cache-TTL` (no caching, no `X-Cache` header).
    static func from(_ request: HTTPRequest) throws(GatewayError) -> CachePolicy? {
        guard let header = request.headers["x-cache-ttl"] else { return nil }
        guard let ttl = Int(header[...].trimmedOfSpaces), (0...maxTTLSeconds).contains(ttl) else {
            throw .invalidRequest("X-Cache-TTL must be a whole number of seconds from 0 to \(maxTTLSeconds), got '\(header.prefix(40))'.",
                                  param: "X-Cache-TTL", code: "invalid_cache_ttl")
        }
        let directives = Set((request.headers["cache-control"] ?? "").lowercased()
            .split(separator: ",").map { String($0.trimmedOfSpaces) })
        let noStore = directives.contains("no-store")
        return CachePolicy(ttlSeconds: ttl, lookup: ttl > 0 && !noStore && !directives.contains("no-cache"), store: ttl > 0 && !noStore)
    }
}
