#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import GatewayHTTP
import PoolScoreboard
import Synchronization

/// What the pool's scoreboard costs one request, in-process: the exact calls a non-streamed chat
/// completion makes (FastCGIWorker.dispatch and finished, the trace's provider observer,
/// PoolMetrics.record), in a tight loop on a scoreboard laid out as `serve --workers 2` lays it
/// out (2 × 4 + 2 slots, the two workers' slots serving). Timed with CLOCK_MONOTONIC (ns per
/// request) and CLOCK_THREAD_CPUTIME_ID (CPU per request), median of the repeats:
///
///   scoreboard           the WorkerSlot calls alone (and the label lookups they take);
///   scoreboard + trace   the same plus the RequestTrace work around them (allocation, eight
///                        clock_gettime marks, the provider observer closure), with
///                        GatewayHTTP's RequestTrace itself;
///
/// each on one thread, then on two threads at once on slots 0 and 1 (two workers), and the cost
/// of rendering /metrics (PrometheusExposition.render) on a board populated with ~20 models.
///
///   deploxa-scoreboard-bench [--iterations 2000000] [--repeats 5] [--renders 2000]
@main
struct ScoreboardBench {
    static func main() throws {
        let arguments = CommandLine.arguments
        func option(_ name: String, _ fallback: Int) -> Int {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]) else { return fallback }
            return value
        }
        let iterations = option("--iterations", 2_000_000)
        let repeats = option("--repeats", 5)
        let renders = option("--renders", 2_000)

        let workers = 2
        let board = try Scoreboard.create(slots: workers * 4 + 2, workersConfigured: workers, listenQueueCapacity: 511)
        for index in 0..<workers {
            board.prepare(slot: index, generation: 1)
            board.workerSlot(index).markServing(pid: getpid() + Int32(index))
        }
        let slots = (0..<workers).map { board.workerSlot($0) }

        print("deploxa-scoreboard-bench: \(iterations) requests per run, \(repeats) runs, median; scoreboard of \(workers * 4 + 2) slots, \(workers) serving")
        print("")
        print(pad("case", 66) + pad("ns/request", 12, right: true) + pad("CPU µs/request", 16, right: true) + pad("runs (CPU ns)", 30, right: true))

        var rows: [(String, Measurement)] = []
        for variant in Variant.allCases {
            // Warm-up: the first request claims the model name; a short run fills caches.
            _ = run(variant, slots: [slots[0]], iterations: iterations / 20)
            let one = (0..<repeats).map { _ in run(variant, slots: [slots[0]], iterations: iterations) }
            rows.append(("\(variant.label), 1 thread", Measurement.median(one)))
            printRow(rows.last!, one)
        }
        for variant in Variant.allCases {
            _ = run(variant, slots: slots, iterations: iterations / 20)
            let two = (0..<repeats).map { _ in run(variant, slots: slots, iterations: iterations) }
            rows.append(("\(variant.label), 2 threads on 2 slots (per thread)", Measurement.median(two)))
            printRow(rows.last!, two)
        }

        // Every loop's requests were counted, none left in flight.
        let expected = Variant.allCases.count * (iterations / 20 + repeats * iterations) * 2
        let pool = board.snapshot()
        for worker in pool.workers where worker.slot < workers {
            let want = worker.slot == 0 ? expected : expected / 2
            guard worker.requestsServed == want, worker.inFlight == 0 else {
                print("CHECK FAILED: slot \(worker.slot) served \(worker.requestsServed) (want \(want)), in flight \(worker.inFlight)")
                exit(1)
            }
        }
        print("check: slot 0 served \(expected), slot 1 \(expected / 2) requests, none in flight")

        // /metrics on a populated board (its own, so the loops above do not change its size).
        let populated = try Scoreboard.create(slots: workers * 4 + 2, workersConfigured: workers, listenQueueCapacity: 511)
        let modelCount = populate(populated, workers: workers)
        let text = PrometheusExposition.render(populated, listenQueue: 0)
        var renderRuns: [Double] = []
        var renderCPU: [Double] = []
        var bytes = 0
        for _ in 0..<repeats {
            let wall0 = clock(CLOCK_MONOTONIC), cpu0 = clock(CLOCK_THREAD_CPUTIME_ID)
            for _ in 0..<renders { bytes &+= PrometheusExposition.render(populated, listenQueue: 0).utf8.count }
            let wall1 = clock(CLOCK_MONOTONIC), cpu1 = clock(CLOCK_THREAD_CPUTIME_ID)
            renderRuns.append(Double(wall1 - wall0) / Double(renders) / 1000)
            renderCPU.append(Double(cpu1 - cpu0) / Double(renders) / 1000)
        }
        let lines = text.split(separator: "\n").count
        print("")
        print("/metrics render (PrometheusExposition.render), \(modelCount) models, \(text.utf8.count) bytes, \(lines) lines, \(renders) renders per run:")
        print("  wall µs/render: median \(format(median(renderRuns), 1)) (runs \(renderRuns.map { format($0, 1) }.joined(separator: " ")))")
        print("  CPU µs/render:  median \(format(median(renderCPU), 1)) (runs \(renderCPU.map { format($0, 1) }.joined(separator: " ")))")
        if bytes == 42 { print("") }  // keeps the renders observable
    }

    enum Variant: CaseIterable {
        case scoreboard, scoreboardAndTrace

        var label: String { self == .scoreboard ? "scoreboard calls" : "scoreboard calls + RequestTrace" }
    }

    struct Measurement {
        var wallNanosecondsPerRequest: Double
        var cpuNanosecondsPerRequest: Double

        static func median(_ runs: [[Measurement]]) -> Measurement {
            let all = runs.flatMap { $0 }
            return Measurement(wallNanosecondsPerRequest: ScoreboardBench.median(all.map(\.wallNanosecondsPerRequest)),
                               cpuNanosecondsPerRequest: ScoreboardBench.median(all.map(\.cpuNanosecondsPerRequest)))
        }
    }

    static func printRow(_ row: (String, Measurement), _ runs: [[Measurement]]) {
        let spread = runs.flatMap { $0 }.map { format($0.cpuNanosecondsPerRequest, 0) }.joined(separator: " ")
        print(pad(row.0, 66) + pad(format(row.1.wallNanosecondsPerRequest, 0), 12, right: true)
              + pad(format(row.1.cpuNanosecondsPerRequest / 1000, 3), 16, right: true) + "   " + spread)
    }

    /// One run: a thread per slot, all started together; one Measurement per thread.
    static func run(_ variant: Variant, slots: [WorkerSlot], iterations: Int) -> [Measurement] {
        let jobs = slots.map { Job(slot: $0, variant: variant, iterations: iterations, threads: slots.count) }
        let gate = Gate(count: jobs.count)
        var threads: [pthread_t] = []
        for job in jobs {
            job.gate = gate
            var thread = pthread_t()
            let context = Unmanaged.passRetained(job).toOpaque()
            let created = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.gate!.arriveAndWait()
                job.measure()
                return nil
            }, context)
            precondition(created == 0, "pthread_create failed")
            threads.append(thread)
        }
        for thread in threads { pthread_join(thread, nil) }
        return jobs.map { $0.result }
    }

    final class Job: @unchecked Sendable {
        let slot: WorkerSlot
        let variant: Variant
        let iterations: Int
        let threads: Int
        var gate: Gate?
        var result = Measurement(wallNanosecondsPerRequest: 0, cpuNanosecondsPerRequest: 0)
        var sink: UInt64 = 0

        init(slot: WorkerSlot, variant: Variant, iterations: Int, threads: Int) {
            self.slot = slot
            self.variant = variant
            self.iterations = iterations
            self.threads = threads
        }

        func measure() {
            let wall0 = clock(CLOCK_MONOTONIC), cpu0 = clock(CLOCK_THREAD_CPUTIME_ID)
            switch variant {
            case .scoreboard: for i in 0..<iterations { scoreboardOnly(i) }
            case .scoreboardAndTrace: for i in 0..<iterations { withTrace(i) }
            }
            let wall1 = clock(CLOCK_MONOTONIC), cpu1 = clock(CLOCK_THREAD_CPUTIME_ID)
            result = Measurement(wallNanosecondsPerRequest: Double(wall1 - wall0) / Double(iterations),
                                 cpuNanosecondsPerRequest: Double(cpu1 - cpu0) / Double(iterations))
        }

        /// One non-streamed chat completion, answered 200 by openai on the first attempt, no
        /// cache, no limit refusal: the WorkerSlot calls in the order the request makes them.
        @inline(never)
        func scoreboardOnly(_ i: Int) {
            let jitter = Double(i & 15) * 1e-4
            // FastCGIWorker.dispatch
            let route = PoolRoute.classify(path: Self.path)
            let entry = slot.beginRequest(route: route)
            // ProviderCall: trace.setProvider("openai") → the observer dispatch installed
            slot.setProvider(entry: entry, PoolProvider(name: Self.provider))
            // PoolMetrics.record (no limit refusal, no fallback, not a stream, not a cache hit)
            let provider = PoolProvider(name: Self.provider)
            slot.recordUpstreamLatency(provider, seconds: 0.0011 + jitter)
            slot.recordUsage(provider, model: Self.model, promptTokens: 13, completionTokens: 8, costNanoUSD: 6_750)
            // FastCGIWorker.finished
            slot.endRequest(entry: entry, route: route, status: 200, provider: PoolProvider(name: Self.provider),
                            cache: CacheResult(header: nil), durationSeconds: 0.0021 + jitter)
        }

        /// The same, with the RequestTrace work around it as the worker and the pipeline do it.
        @inline(never)
        func withTrace(_ i: Int) {
            let jitter = Double(i & 15) * 1e-4
            // FastCGIWorker.acceptOne / dispatch
            let trace = RequestTrace()
            let route = PoolRoute.classify(path: Self.path)
            let slot = self.slot
            let entry = slot.beginRequest(route: route)
            if entry >= 0 { trace.providerObserver = { name in slot.setProvider(entry: entry, PoolProvider(name: name)) } }
            trace.mark(.started)                     // the Task starts
            trace.requestID = Self.requestID         // RequestOutcome
            trace.mark(.admitted)                    // RequestPipeline.admit
            trace.setProvider(Self.provider)         // ProviderCall → observer → slot.setProvider
            trace.markOnce(.upstreamSent)
            trace.mark(.upstreamHead)
            trace.mark(.upstreamDone)
            // PoolMetrics.record
            trace.cacheResult = nil
            trace.setProvider(Self.provider)
            trace.status = 200
            trace.attempts = 1
            trace.mark(.audited)
            let provider = PoolProvider(name: Self.provider)
            slot.recordUpstreamLatency(provider, seconds: 0.0011 + jitter)
            slot.recordUsage(provider, model: Self.model, promptTokens: 13, completionTokens: 8, costNanoUSD: 6_750)
            // FastCGIResponseWriter.writeHead
            trace.status = 200
            // FastCGIWorker.finished
            let total = RequestTrace.now() &- trace.acceptedAt
            slot.endRequest(entry: entry, route: route, status: trace.status, provider: PoolProvider(name: trace.provider),
                            cache: CacheResult(header: trace.cacheResult), durationSeconds: Double(total) / 1e9 + jitter)
            sink &+= total
        }

        static let path = "/v1/chat/completions"
        static let provider = "openai"
        static let model = "gpt-4o-mini"
        static let requestID = "req_0123456789abcdef0123456789"
    }

    /// A start line for the threads of one run (used once): the last to arrive lets the others go.
    final class Gate: Sendable {
        private let count: Int
        private let arrived = Mutex(0)
        private let release = DispatchSemaphore(value: 0)

        init(count: Int) {
            self.count = count
        }

        func arriveAndWait() {
            let last = arrived.withLock { arrived -> Bool in
                arrived += 1
                return arrived == count
            }
            if last {
                for _ in 1..<count { release.signal() }
            } else {
                release.wait()
            }
        }
    }

    /// A board as a busy pool leaves it: 20 models over five providers, requests on several
    /// routes, status classes and cache results, stream first tokens, refusals, fallbacks.
    static func populate(_ board: Scoreboard, workers: Int) -> Int {
        let models: [(String, [String])] = [
            ("openai", ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "text-embedding-3-small"]),
            ("anthropic", ["claude-3-5-sonnet-latest", "claude-3-5-haiku-latest", "claude-3-opus-latest", "claude-sonnet-4-0"]),
            ("google", ["gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.0-flash", "text-embedding-004"]),
            ("mistral", ["mistral-large-latest", "mistral-small-latest", "codestral-latest"]),
            ("cohere", ["command-r-plus", "command-r", "embed-english-v3.0"]),
        ]
        var count = 0
        for index in 0..<workers {
            board.prepare(slot: index, generation: 1)
            let slot = board.workerSlot(index)
            slot.markServing(pid: getpid() + Int32(index))
            for (providerName, names) in models {
                let provider = PoolProvider(name: providerName)
                for (n, model) in names.enumerated() {
                    for i in 0..<50 {
                        let route: PoolRoute = model.contains("embed") ? .embeddings : .chatCompletions
                        let entry = slot.beginRequest(route: route)
                        slot.setProvider(entry: entry, provider)
                        slot.recordUpstreamLatency(provider, seconds: 0.05 * Double(n + 1) + 0.01 * Double(i))
                        if i % 3 == 0 { slot.recordTimeToFirstToken(provider, seconds: 0.2 + 0.01 * Double(i)) }
                        slot.recordUsage(provider, model: model, promptTokens: 100 + i, completionTokens: 50 + i, costNanoUSD: Int64(1_000 * (i + 1)))
                        let status = [200, 200, 200, 200, 429, 502, 400][i % 7]
                        let cache: CacheResult = i % 5 == 0 ? .hit : (i % 5 == 1 ? .miss : .none)
                        slot.endRequest(entry: entry, route: route, status: status, provider: provider, cache: cache,
                                        durationSeconds: 0.06 * Double(n + 1) + 0.01 * Double(i))
                    }
                    if index == 0 { count += 1 }
                }
                slot.recordFallback(from: provider)
            }
            for kind in LimitRefusalKind.allCases { slot.recordLimitRefusal(kind) }
            for route in [PoolRoute.models, .healthz, .adminAPI, .dashboard, .metrics, .status, .ping] {
                let entry = slot.beginRequest(route: route)
                slot.endRequest(entry: entry, route: route, status: 200, provider: .none, cache: .none, durationSeconds: 0.002)
            }
        }
        return count
    }

    static func clock(_ id: clockid_t) -> UInt64 {
        var now = timespec()
        clock_gettime(id, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func format(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        guard decimals > 0 else { return String(Int(rounded)) }
        var text = String(rounded)
        let digits = text.split(separator: ".").last.map(\.count) ?? 0
        if digits < decimals { text += String(repeating: "0", count: decimals - digits) }
        return text
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }
}
