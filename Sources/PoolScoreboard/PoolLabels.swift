/// The bounded label values of the pool's metrics. Every label set is a small closed enum (or,
/// for models, a fixed-size table): no key ids, users or request ids ever become labels.
public enum PoolRoute: Int, CaseIterable, Sendable {
    case chatCompletions, embeddings, models, healthz, adminAPI, dashboard, metrics, status, ping, other

    public var label: String {
        switch self {
        case .chatCompletions: return "chat_completions"
        case .embeddings: return "embeddings"
        case .models: return "models"
        case .healthz: return "healthz"
        case .adminAPI: return "admin_api"
        case .dashboard: return "dashboard"
        case .metrics: return "metrics"
        case .status: return "status"
        case .ping: return "ping"
        case .other: return "other"
        }
    }

    public static func classify(path: String) -> PoolRoute {
        switch path {
        case "/v1/chat/completions": return .chatCompletions
        case "/v1/embeddings": return .embeddings
        case "/v1/models": return .models
        case "/healthz": return .healthz
        case "/metrics": return .metrics
        case "/status": return .status
        case "/ping": return .ping
        default:
            if path.hasPrefix("/api/") { return .adminAPI }
            if path == "/dashboard" || path.hasPrefix("/dashboard/") { return .dashboard }
            return .other
        }
    }
}

public enum PoolProvider: Int, CaseIterable, Sendable {
    case none, openai, anthropic, google, mistral, cohere, other

    public var label: String {
        switch self {
        case .none: return ""
        case .openai: return "openai"
        case .anthropic: return "anthropic"
        case .google: return "google"
        case .mistral: return "mistral"
        case .cohere: return "cohere"
        case .other: return "other"
        }
    }

    public init(name: String?) {
        guard let name, !name.isEmpty else { self = .none; return }
        self = PoolProvider.allCases.first { $0.label == name && $0 != .none } ?? .other
    }
}

/// The cache's part in an answer: `none` when the request did not ask for caching.
public enum CacheResult: Int, CaseIterable, Sendable {
    case none, hit, miss

    public var label: String { ["none", "hit", "miss"][rawValue] }

    /// From the `X-Cache` header value the pipeline sets.
    public init(header: String?) {
        switch header {
        case "HIT": self = .hit
        case "MISS": self = .miss
        default: self = .none
        }
    }
}

/// Why a request was refused by a limit.
public enum LimitRefusalKind: Int, CaseIterable, Sendable {
    case requestsPerMinute, tokensPerMinute, monthlyBudget, freePlan

    public var label: String { ["rpm", "tpm", "budget", "free_plan"][rawValue] }
}

/// Status classes 1xx–5xx; 0 for a request that never got a status (the worker died first).
enum StatusClass {
    static let count = 6
    static func index(_ status: Int) -> Int { (100...599).contains(status) ? status / 100 : 0 }
    static func label(_ index: Int) -> String { index == 0 ? "unknown" : "\(index)xx" }
}

/// Bucket bounds (seconds) of every latency histogram: 5 ms to a minute, where LLM calls live.
enum LatencyBuckets {
    static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    /// The finite buckets, +Inf, the sum (µs) and the count.
    static let words = bounds.count + 3

    static func bucket(_ seconds: Double) -> Int {
        for (index, bound) in bounds.enumerated() where seconds <= bound { return index }
        return bounds.count
    }
}
