/// `GET /metrics`: the scoreboard's totals in Prometheus' text exposition format (version 0.0.4).
///
/// Written here rather than with swift-prometheus: its registry holds one process's values and
/// its histograms only take observations, while these figures are sums over every worker's
/// slot in shared memory, read at scrape time.
public enum PrometheusExposition {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ board: Scoreboard, listenQueue: Int?) -> String {
        let totals = board.counterTotals()
        let pool = board.snapshot(listenQueue: listenQueue)
        let models = board.modelNames()
        var out = Output()
        typealias Layout = ScoreboardLayout.Counters

        out.family("deploxa_requests_total", "counter", "Requests answered, by route, status class, provider and cache result.")
        for route in PoolRoute.allCases {
            for statusClass in 0..<StatusClass.count {
                for provider in PoolProvider.allCases {
                    for cache in CacheResult.allCases {
                        let value = totals[Layout.request(route, statusClass: statusClass, provider, cache)]
                        guard value > 0 else { continue }
                        out.sample("deploxa_requests_total", [("route", route.label), ("status_class", StatusClass.label(statusClass)),
                                                              ("provider", provider.label), ("cache", cache.label)], value)
                    }
                }
            }
        }

        out.family("deploxa_request_duration_seconds", "histogram", "Time from accepting a request to its last byte, by route.")
        for route in PoolRoute.allCases {
            out.histogram("deploxa_request_duration_seconds", [("route", route.label)], totals, at: Layout.duration + route.rawValue * Layout.histogram)
        }
        out.family("deploxa_upstream_latency_seconds", "histogram", "Time from sending a request to a provider to its response head, by provider.")
        for provider in PoolProvider.allCases where provider != .none {
            out.histogram("deploxa_upstream_latency_seconds", [("provider", provider.label)], totals, at: Layout.upstream + provider.rawValue * Layout.histogram)
        }
        out.family("deploxa_time_to_first_token_seconds", "histogram", "Streams: time from arrival to the first content sent to the client, by provider.")
        for provider in PoolProvider.allCases where provider != .none {
            out.histogram("deploxa_time_to_first_token_seconds", [("provider", provider.label)], totals,
                          at: Layout.timeToFirstToken + provider.rawValue * Layout.histogram)
        }

        // Tokens and cost by provider and model; a model name claimed twice (two workers at the
        // same instant) is merged here.
        var tokens: [String: (prompt: UInt64, completion: UInt64, cost: UInt64)] = [:]
        var order: [String] = []
        for provider in PoolProvider.allCases {
            for model in 0..<Layout.models {
                let index = provider.rawValue * Layout.models + model
                let prompt = totals[Layout.tokens + index * 2], completion = totals[Layout.tokens + index * 2 + 1]
                let cost = totals[Layout.cost + index]
                guard prompt > 0 || completion > 0 || cost > 0 else { continue }
                let key = provider.label + "\u{0}" + (models[model] ?? "other")
                if tokens[key] == nil { order.append(key) }
                let sum = tokens[key] ?? (0, 0, 0)
                tokens[key] = (sum.prompt &+ prompt, sum.completion &+ completion, sum.cost &+ cost)
            }
        }
        out.family("deploxa_tokens_total", "counter", "Tokens by provider, model and kind (prompt or completion).")
        for key in order {
            let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
            let sums = tokens[key]!
            out.sample("deploxa_tokens_total", [("provider", parts[0]), ("model", parts.count > 1 ? parts[1] : ""), ("kind", "prompt")], sums.prompt)
            out.sample("deploxa_tokens_total", [("provider", parts[0]), ("model", parts.count > 1 ? parts[1] : ""), ("kind", "completion")], sums.completion)
        }
        out.family("deploxa_cost_usd_total", "counter", "Spend in USD by provider and model (the gateway's price table).")
        for key in order {
            let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
            out.sample("deploxa_cost_usd_total", [("provider", parts[0]), ("model", parts.count > 1 ? parts[1] : "")],
                       formatNano(tokens[key]!.cost))
        }

        out.family("deploxa_limit_refusals_total", "counter", "Requests refused by a limit (429), by kind.")
        for kind in LimitRefusalKind.allCases {
            out.sample("deploxa_limit_refusals_total", [("kind", kind.label)], totals[Layout.limitRefusals + kind.rawValue])
        }
        out.family("deploxa_fallbacks_total", "counter", "Provider attempts that failed and were followed by the next fallback target, by the provider that failed.")
        for provider in PoolProvider.allCases where provider != .none {
            out.sample("deploxa_fallbacks_total", [("provider", provider.label)], totals[Layout.fallbacks + provider.rawValue])
        }
        out.family("deploxa_breaker_opens_total", "counter", "Circuit breakers opened, by provider.")
        for provider in PoolProvider.allCases where provider != .none {
            out.sample("deploxa_breaker_opens_total", [("provider", provider.label)], totals[Layout.breakerOpens + provider.rawValue])
        }

        out.family("deploxa_workers", "gauge", "Worker processes by state (busy: at least one request in flight).")
        let busy = pool.workers.filter { $0.state == .serving && $0.inFlight > 0 }.count
        out.sample("deploxa_workers", [("state", "busy")], UInt64(busy))
        out.sample("deploxa_workers", [("state", "idle")], UInt64(pool.idleWorkers))
        out.sample("deploxa_workers", [("state", "starting")], UInt64(pool.workers.filter { $0.state == .starting }.count))
        out.sample("deploxa_workers", [("state", "draining")], UInt64(pool.workers.filter { $0.state == .draining }.count))
        out.gauge("deploxa_workers_configured", "Worker processes the pool keeps (serve --workers).", UInt64(pool.workersConfigured))
        out.gauge("deploxa_requests_in_flight", "Requests being answered now, across the pool.", UInt64(pool.requestsInFlight))
        out.gauge("deploxa_audit_rows_queued", "Audit rows waiting in the workers' writers.", UInt64(pool.auditRowsQueued))
        out.family("deploxa_accepted_requests_total", "counter", "Requests accepted from nginx since the pool started.")
        out.sample("deploxa_accepted_requests_total", [], UInt64(pool.acceptedRequests))
        if let queue = pool.listenQueue { out.gauge("deploxa_listen_queue", "Connections waiting to be accepted.", UInt64(queue)) }
        out.gauge("deploxa_listen_queue_max", "Most connections seen waiting to be accepted.", UInt64(pool.maxListenQueue))
        out.family("deploxa_slow_requests_total", "counter", "Requests slower than serve --slowlog-threshold.")
        out.sample("deploxa_slow_requests_total", [], UInt64(pool.slowRequests))
        out.family("deploxa_max_children_reached_total", "counter", "Requests that arrived while every worker was busy.")
        out.sample("deploxa_max_children_reached_total", [], UInt64(pool.maxChildrenReached))
        out.family("deploxa_reloads_total", "counter", "Reloads (SIGUSR2/SIGHUP) since the pool started.")
        out.sample("deploxa_reloads_total", [], UInt64(pool.reloads))
        out.gauge("deploxa_pool_start_time_seconds", "When the pool's master started (Unix time).", UInt64(pool.startUnixMilliseconds / 1000))
        return out.text
    }

    static func formatNano(_ nano: UInt64) -> String {
        let whole = nano / 1_000_000_000
        let fraction = String(nano % 1_000_000_000)
        return "\(whole)." + String(repeating: "0", count: 9 - fraction.count) + fraction
    }

    private struct Output {
        var text = ""

        mutating func family(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }

        mutating func gauge(_ name: String, _ help: String, _ value: UInt64) {
            family(name, "gauge", help)
            sample(name, [], value)
        }

        mutating func sample(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
            sample(name, labels, String(value))
        }

        mutating func sample(_ name: String, _ labels: [(String, String)], _ value: String) {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " \(value)\n"
        }

        /// Cumulative buckets, `_sum` in seconds and `_count`; omitted while empty.
        mutating func histogram(_ name: String, _ labels: [(String, String)], _ totals: [UInt64], at start: Int) {
            // +Inf and _count are the buckets' sum, not the separate count word: a scrape between
            // an observation's bucket add and its count add still shows monotonic buckets.
            let count = (0...LatencyBuckets.bounds.count).reduce(UInt64(0)) { $0 &+ totals[start + $1] }
            guard count > 0 else { return }
            var cumulative: UInt64 = 0
            for (index, bound) in LatencyBuckets.bounds.enumerated() {
                cumulative &+= totals[start + index]
                sample(name + "_bucket", labels + [("le", trim(bound))], cumulative)
            }
            sample(name + "_bucket", labels + [("le", "+Inf")], count)
            let sumMicros = totals[start + LatencyBuckets.bounds.count + 1]
            sample(name + "_sum", labels, String(Double(sumMicros) / 1e6))
            sample(name + "_count", labels, count)
        }

        private func trim(_ bound: Double) -> String {
            bound == bound.rounded() ? String(Int(bound)) : String(bound)
        }

        private func escape(_ value: String) -> String {
            var out = ""
            for character in value {
                switch character {
                case "\\": out += "\\\\"
                case "\"": out += "\\\""
                case "\n": out += "\\n"
                default: out.append(character)
                }
            }
            return out
        }
    }
}
