#if canImport(Glibc)
import Glibc
#endif

/// What the transport keeps about one request while the pipeline runs it: when each stage
/// was reached (for the slow log), and the provider and cache result (for the pool's metrics and
/// status page). The pipeline writes it in order as the request goes on; the transport reads it
/// once the answer has ended.
public final class RequestTrace: @unchecked Sendable {
    /// Moments of a request's life, in the order they happen.
    public enum Stage: Int, CaseIterable, Sendable {
        /// The transport accepted the connection (reading the params and body comes next).
        case accepted
        /// The pipeline started on it (after queueing for a thread).
        case started
        /// Authenticated, looked up in the cache, and admitted (or refused) by the limits.
        case admitted
        /// The first provider attempt was sent.
        case upstreamSent
        /// The answering provider's response head arrived.
        case upstreamHead
        /// The provider's body (or stream) was read to its end.
        case upstreamDone
        /// The audit row was handed to the writer.
        case audited
    }

    private var marks = [UInt64](repeating: 0, count: Stage.allCases.count)
    public var requestID: String?
    public private(set) var provider: String?
    /// `HIT` or `MISS` (the `X-Cache` header), nil when the request did not ask for caching.
    public var cacheResult: String?
    /// The status the client got (set by the transport's writer).
    public var status = 0
    /// Provider attempts made (more than one: fallbacks).
    public var attempts = 0
    /// Called when the provider changes (the transport shows it on the status page).
    public var providerObserver: (@Sendable (String) -> Void)?
    /// Each call made to a provider, with when it started and ended (for trace spans).
    public private(set) var upstreamCalls: [UpstreamCall] = []
    /// The request's method, path and W3C `traceparent` header (set by the transport).
    public var method = ""
    public var path = ""
    public var traceParent: String?
    /// When the answer's last byte went to the web server (set by the transport).
    public var finishedAt: UInt64 = 0

    /// One call to a provider: a child span of the request's trace.
    public struct UpstreamCall: Sendable {
        public var provider: String
        public var model: String
        /// The provider's status, or the gateway's for a transport failure (502, 504).
        public var status: Int
        public var failed: Bool
        public var start: UInt64
        public var end: UInt64
    }

    public init() {
        marks[Stage.accepted.rawValue] = RequestTrace.now()
    }

    public func mark(_ stage: Stage) {
        marks[stage.rawValue] = RequestTrace.now()
    }

    /// Marks the stage only the first time (the first of several provider attempts).
    public func markOnce(_ stage: Stage) {
        if marks[stage.rawValue] == 0 { marks[stage.rawValue] = RequestTrace.now() }
    }

    /// A provider call has ended (`start` from `now()` when it was sent).
    public func recordUpstreamCall(provider: String, model: String, status: Int, failed: Bool, start: UInt64) {
        upstreamCalls.append(UpstreamCall(provider: provider, model: model, status: status, failed: failed, start: start,
                                          end: RequestTrace.now()))
    }

    public func setProvider(_ name: String) {
        guard name != provider else { return }
        provider = name
        providerObserver?(name)
    }

    /// Nanoseconds since `accepted` at which a stage was reached (nil: never reached).
    public func offset(_ stage: Stage) -> UInt64? {
        let mark = marks[stage.rawValue]
        return mark == 0 ? nil : mark &- marks[Stage.accepted.rawValue]
    }

    public var acceptedAt: UInt64 { marks[Stage.accepted.rawValue] }

    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Where the time went, in milliseconds per step (a step whose end was never reached is left
    /// out): `queue` (reading the request, then waiting for a thread), `limits` (authentication,
    /// the cache lookup and admission), `prepare` (translation), `upstream_first_byte` (a pooled or new connection,
    /// sending, and the provider's wait until its response head; every attempt of a fallback
    /// chain; the HTTP client reports connect and first byte as one figure), `upstream_body`
    /// (reading or streaming the answer), `audit` (settling spend, queueing the audit row; for
    /// a cache hit also replaying the answer) and
    /// `respond` (the rest: finishing the answer to nginx).
    public func breakdown(totalNanoseconds: UInt64) -> [(String, Double)] {
        var result: [(String, Double)] = []
        var previous: UInt64 = 0
        let steps: [(String, Stage)] = [("queue", .started), ("limits", .admitted), ("prepare", .upstreamSent),
                                        ("upstream_first_byte", .upstreamHead),
                                        ("upstream_body", .upstreamDone), ("audit", .audited)]
        for (name, stage) in steps {
            guard let at = offset(stage), at >= previous else { continue }
            result.append((name, Double(at - previous) / 1e6))
            previous = at
        }
        if totalNanoseconds > previous { result.append(("respond", Double(totalNanoseconds - previous) / 1e6)) }
        return result
    }
}
