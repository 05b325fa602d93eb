import ArgumentParser
import Foundation
import GatewayCore
import GatewayStore

/// Changes to limits: a number sets a limit, `none` removes it, an absent option keeps it.
struct LimitChangeOptions: ParsableArguments {
    @Option(help: "Requests per minute, or none.") var rpm: String?
    @Option(help: "Tokens per minute, or none.") var tpm: String?
    @Option(name: .customLong("monthly-budget"), help: "Monthly spend cap in USD, or none.") var monthlyBudget: String?

    /// Saves `current` with the changes applied, and reports the result for `what` ("org acme").
    func apply(to current: Limits, of what: String, json: Bool, save: (Limits) throws -> Void) throws {
        let updated = try applied(to: current)
        if updated != current { try save(updated) }
        if json {
            Output.json(["updated": .string(what), "limits": Output.limitsJSON(updated)])
        } else {
            print("Limits of \(what): rpm \(Output.optional(updated.requestsPerMinute)), tpm \(Output.optional(updated.tokensPerMinute)), monthly budget \(updated.monthlyBudgetUSD.map { "$\($0)" } ?? "-").")
        }
    }

    private func applied(to current: Limits) throws -> Limits {
        var limits = current
        if let rpm { limits.requestsPerMinute = try Self.integer(rpm, option: "--rpm") }
        if let tpm { limits.tokensPerMinute = try Self.integer(tpm, option: "--tpm") }
        if let monthlyBudget {
            if monthlyBudget == "none" {
                limits.monthlyBudgetUSD = nil
            } else {
                guard let value = Double(monthlyBudget), value >= 0, value.isFinite else {
                    throw ValidationError("--monthly-budget must be a number of USD or none.")
                }
                limits.monthlyBudgetUSD = value
            }
        }
        return limits
    }

    private static func integer(_ text: String, option: String) throws -> Int? {
        if text == "none" { return nil }
        guard let value = Int(text), value >= 0 else { throw ValidationError("\(option) must be a whole number or none.") }
        return value
    }
}

extension OrgCommand {
    struct SetLimits: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-limits", abstract: "Change an organisation's limits.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Organisation name.") var name: String
        @OptionGroup var limits: LimitChangeOptions

        func run() throws {
            let store = try global.openConfiguration()
            guard let org = try store.org(named: name) else { throw CommandFailure("No org \(name).") }
            try limits.apply(to: org.limits, of: "org \(name)", json: global.json) { try store.updateLimits(orgName: name, limits: $0) }
        }
    }
}

extension ProjectCommand {
    struct SetLimits: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-limits", abstract: "Change a project's plan or limits.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String
        @Option(help: "Plan: free, pro or team.") var plan: String?
        @OptionGroup var limits: LimitChangeOptions

        func run() throws {
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            if let plan {
                guard let value = Plan(rawValue: plan) else { throw ValidationError("--plan must be free, pro or team.") }
                try store.updatePlan(projectID: project.id, plan: value)
            }
            try limits.apply(to: project.limits, of: "project \(slug)", json: global.json) {
                try store.updateLimits(projectID: project.id, limits: $0)
            }
        }
    }
}

extension KeyCommand {
    struct SetLimits: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-limits", abstract: "Change a gateway key's limits.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Key id (gk_…).") var keyID: String
        @OptionGroup var limits: LimitChangeOptions

        func run() throws {
            let store = try global.openConfiguration()
            guard let key = try store.key(id: keyID) else { throw CommandFailure("No key \(keyID).") }
            try limits.apply(to: key.limits, of: "key \(keyID)", json: global.json) { try store.updateLimits(keyID: keyID, limits: $0) }
        }
    }
}

struct PriceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "price", abstract: "Show or change model prices (USD per 1M tokens).",
                                                    subcommands: [List.self, Set.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List prices: shipped defaults and operator changes.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            func money(_ value: Double) -> String { SpendAmount.text(value, fractionDigits: 8) }
            Output.list(try global.openConfiguration().prices(), json: global.json,
                        headers: ["MODEL", "PROVIDER", "INPUT", "OUTPUT", "CACHED INPUT", "CACHE WRITE", "SOURCE"],
                        object: { price in
                            ["model": .string(price.model), "provider": price.provider.map(JSON.string) ?? .null,
                             "input": .double(price.input), "output": .double(price.output),
                             "cached_input": price.cachedInput.map(JSON.double) ?? .null,
                             "cache_write": price.cacheWrite.map(JSON.double) ?? .null, "source": price.source.map(JSON.string) ?? .null]
                        },
                        cells: { [$0.model, $0.provider ?? "-", money($0.input), money($0.output), $0.cachedInput.map(money) ?? "-",
                                  $0.cacheWrite.map(money) ?? "-", $0.source ?? "-"] })
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a model's price (it also prices the model's dated variants).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Model name, e.g. gpt-4o or claude-sonnet-4.") var model: String
        @Option(help: "USD per 1M input tokens.") var input: Double
        @Option(help: "USD per 1M output tokens.") var output: Double
        @Option(name: .customLong("cached-input"), help: "USD per 1M cached input tokens.") var cachedInput: Double?
        @Option(name: .customLong("cache-write"), help: "USD per 1M prompt-cache write tokens (Anthropic).") var cacheWrite: Double?
        @Option(help: "Provider the model belongs to (for display).") var provider: String?

        func run() throws {
            let store = try global.openConfiguration()
            let price = Price(model: model, provider: provider, input: input, output: output, cachedInput: cachedInput, cacheWrite: cacheWrite)
            try store.setPrice(price)
            if global.json {
                Output.json(["model": .string(model), "input": .double(input), "output": .double(output),
                             "cached_input": cachedInput.map(JSON.double) ?? .null])
            } else {
                print("Price of \(model): input $\(SpendAmount.text(input, fractionDigits: 8)), output $\(SpendAmount.text(output, fractionDigits: 8)) per 1M tokens"
                      + (cachedInput.map { ", cached input $\(SpendAmount.text($0, fractionDigits: 8))" } ?? "") + ". Workers use it within 5 s.")
            }
        }
    }
}

struct UsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "usage", abstract: "Requests, tokens, cost, cache hits and errors, grouped.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this ORG/PROJECT.") var project: String?
    @Option(help: "Group by model, project, user, key, provider, day or hour (read from the hourly/daily summaries; the range is widened to whole hours).") var by: String = "model"
    @OptionGroup var dates: DateRangeOptions

    func run() throws {
        guard let grouping = UsageGrouping(rawValue: by) else {
            throw ValidationError("--by must be one of \(UsageGrouping.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        let store = try global.openConfiguration()
        let projectID = try project.map { try requireProject(store, $0).id }
        let range = try dates.range()
        let rows = try store.usage(groupBy: grouping, projectID: projectID, from: range.from, to: range.to)
        if global.json {
            Output.json(.array(rows.map { row in
                .object(JSONObject([
                    (grouping.rawValue, .string(row.group)), ("requests", .int(Int64(row.requests))),
                    ("prompt_tokens", .int(Int64(row.promptTokens))), ("completion_tokens", .int(Int64(row.completionTokens))),
                    ("cached_tokens", .int(Int64(row.cachedTokens))), ("cost_usd", .double(row.costUSD)),
                    ("unknown_cost_requests", .int(Int64(row.unknownCostRequests))),
                    ("cache_hits", .int(Int64(row.cacheHits))), ("errors", .int(Int64(row.errors))),
                    ("latency_p50_ms", row.latencyP50Ms.map(JSON.double) ?? .null), ("latency_p95_ms", row.latencyP95Ms.map(JSON.double) ?? .null),
                    ("latency_p99_ms", row.latencyP99Ms.map(JSON.double) ?? .null),
                ]))
            }))
        } else {
            // The total is read as one group of its own (percentiles merge, they do not add).
            let total = try store.usageTotal(projectID: projectID, from: range.from, to: range.to)
            func cells(_ row: UsageRow, _ name: String) -> [String] {
                [name, String(row.requests), String(row.promptTokens), String(row.completionTokens), String(row.cachedTokens),
                 SpendAmount.text(row.costUSD, fractionDigits: 8) + (row.unknownCostRequests > 0 ? " (+\(row.unknownCostRequests) unknown)" : ""),
                 String(row.cacheHits), String(row.errors), row.latencyP50Ms.map { String(Int($0.rounded())) } ?? "-",
                 row.latencyP99Ms.map { String(Int($0.rounded())) } ?? "-"]
            }
            Output.table([grouping.rawValue.uppercased(), "REQUESTS", "PROMPT", "COMPLETION", "CACHED", "COST USD", "CACHE HITS", "ERRORS", "P50 MS", "P99 MS"],
                         rows.map { cells($0, $0.group) } + (rows.isEmpty ? [] : [cells(total, "TOTAL")]))
        }
    }
}

/// Benchmark helper (hidden): one process of the multi-process limit hammer. Runs COUNT
/// admissions against one shared RPM counter and prints what it saw as one JSON line.
struct AdmitLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-admit", abstract: "Internal: limit hammer for the benchmarks.",
                                                    shouldDisplay: false)
    @OptionGroup var global: GlobalOptions
    @Option(help: "Admissions to attempt.") var count = 5000
    @Option(help: "The shared counter's requests-per-minute limit.") var rpm = 10_000
    @Option(help: "Counter id (all processes of one run use the same).") var scope = "gk_hammer"
    @Option(help: "Spread the admissions over this many counters (SCOPE-0 … SCOPE-(N-1)), each with the limit; 1: one hot counter.") var spread = 1
    @Option(help: "Unix time used as 'now' by every admission (one window for the whole run).") var at: Double = Date().timeIntervalSince1970
    @Option(name: .customLong("busy-timeout"), help: "Milliseconds to wait for the write lock.") var busyTimeout = 2000

    func run() throws {
        let store = try global.backend().openRequestStore(busyTimeoutMilliseconds: busyTimeout)
        let plans = (0..<max(1, spread)).map { index in
            AdmissionPlan(scopes: [.init(scope: LimitScope(.key, spread > 1 ? "\(scope)-\(index)" : scope), limits: Limits(requestsPerMinute: rpm))],
                          estimatedTokens: 0, now: Date(timeIntervalSince1970: at))
        }
        var admitted = 0, refused = 0, busy = 0
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        let started = Date()
        for index in 0..<count {
            let t0 = DispatchTime.now().uptimeNanoseconds
            do {
                switch try store.admit(plans[index % plans.count]) {
                case .admitted: admitted += 1
                case .rejected: refused += 1
                case .keyConfirmed, .keyChanged: break  // plans without a key check
                }
            } catch let error as StoreError where error.kind == .busy {
                busy += 1
            }
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let elapsed = Date().timeIntervalSince(started)
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        Output.json(["admitted": .int(Int64(admitted)), "refused": .int(Int64(refused)), "busy_errors": .int(Int64(busy)),
                     "seconds": .double(elapsed), "p50_ms": .double(percentile(0.5)), "p99_ms": .double(percentile(0.99)),
                     "max_ms": .double(latencies.last ?? 0)])
    }
}
