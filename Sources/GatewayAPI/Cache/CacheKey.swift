import Crypto
import GatewayCore

/// The identity of a cacheable request: SHA-256 over the project, the provider asked for, the
/// route and the canonical body (keys sorted, no whitespace, integral numbers written as
/// integers), so the same request written differently is the same entry and two projects never
/// share one.
struct CacheKey: Sendable, Equatable {
    let bytes: [UInt8]

    init(projectID: Int64, provider: Provider, route: String, body: JSONObject) {
        var hasher = SHA256()
        hasher.update(data: Array("deploxa-cache-v1\n\(projectID)\n\(provider.rawValue)\n\(route)\n".utf8))
        hasher.update(data: JSON.object(body).canonicalNumbers().serialized(sortedKeys: true))
        bytes = Array(hasher.finalize())
    }
}

extension JSON {
    /// `1.0` and `1` are the same number to every provider; the key should not tell them apart.
    func canonicalNumbers() -> JSON {
        switch self {
        case .double(let value) where value.rounded() == value && abs(value) < 9.0e15:
            return .int(Int64(value))
        case .array(let values):
            return .array(values.map { $0.canonicalNumbers() })
        case .object(let object):
            return .object(JSONObject(object.entries.map { ($0.key, $0.value.canonicalNumbers()) }))
        default:
            return self
        }
    }
}
