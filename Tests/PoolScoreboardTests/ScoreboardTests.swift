import Foundation
import PoolScoreboard
import Testing

/// The scoreboard is shared memory: what one worker's slot records, a reader attached through
/// the same descriptor (another mapping, as another worker has) sees in the pool's totals.
@Suite("Scoreboard")
struct ScoreboardTests {
    func metricValue(_ exposition: String, _ sampleLine: String) -> String? {
        for line in exposition.split(separator: "\n") where line.hasPrefix(sampleLine + " ") {
            return String(line.dropFirst(sampleLine.count + 1))
        }
        return nil
    }

    @Test("A second mapping of the same descriptor reads the first one's counters")
    func sharedAcrossMappings() throws {
        let master = try Scoreboard.create(slots: 4, workersConfigured: 2, listenQueueCapacity: 128)
        let worker = try Scoreboard.attach(fileDescriptor: master.fileDescriptor)
        #expect(worker.slotCount == 4)

        master.prepare(slot: 1, generation: 1)
        let slot = worker.workerSlot(1)
        slot.markServing(pid: 4242)
        let entry = slot.beginRequest(route: .chatCompletions)
        #expect(entry >= 0)
        slot.setProvider(entry: entry, .anthropic)

        let during = master.snapshot()
        #expect(during.workers.count == 1)
        #expect(during.workers[0].pid == 4242)
        #expect(during.workers[0].state == .serving)
        #expect(during.workers[0].requestsInFlight.map(\.route) == ["chat_completions"])
        #expect(during.workers[0].requestsInFlight.first?.provider == "anthropic")
        #expect(during.activeWorkers == 1)

        slot.endRequest(entry: entry, route: .chatCompletions, status: 200, provider: .anthropic, cache: .miss, durationSeconds: 0.02)
        let after = master.snapshot()
        #expect(after.workers[0].requestsInFlight.isEmpty)
        #expect(after.workers[0].requestsServed == 1)
        #expect(after.acceptedRequests == 1)
        #expect(after.idleWorkers == 1)
    }

    @Test("Totals add every slot, and survive the slot's worker being replaced")
    func totalsAcrossSlots() throws {
        let board = try Scoreboard.create(slots: 3, workersConfigured: 3, listenQueueCapacity: 128)
        for index in 0..<3 {
            board.prepare(slot: index, generation: 1)
            let slot = board.workerSlot(index)
            slot.markServing(pid: Int32(100 + index))
            for _ in 0..<(index + 1) {
                let entry = slot.beginRequest(route: .chatCompletions)
                slot.recordUsage(.openai, model: "gpt-4o-mini", promptTokens: 10, completionTokens: 3, costNanoUSD: 1_500)
                slot.endRequest(entry: entry, route: .chatCompletions, status: 200, provider: .openai, cache: .none, durationSeconds: 0.003)
            }
        }
        board.workerSlot(2).recordLimitRefusal(.requestsPerMinute)
        board.workerSlot(0).recordFallback(from: .mistral)
        board.release(slot: 1)  // a worker recycled: its counters stay
        board.prepare(slot: 1, generation: 2)

        let text = PrometheusExposition.render(board, listenQueue: 0)
        let requests = "deploxa_requests_total{route=\"chat_completions\",status_class=\"2xx\",provider=\"openai\",cache=\"none\"}"
        #expect(metricValue(text, requests) == "6")
        #expect(metricValue(text, "deploxa_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",kind=\"prompt\"}") == "60")
        #expect(metricValue(text, "deploxa_tokens_total{provider=\"openai\",model=\"gpt-4o-mini\",kind=\"completion\"}") == "18")
        #expect(metricValue(text, "deploxa_cost_usd_total{provider=\"openai\",model=\"gpt-4o-mini\"}") == "0.000009000")
        #expect(metricValue(text, "deploxa_limit_refusals_total{kind=\"rpm\"}") == "1")
        #expect(metricValue(text, "deploxa_fallbacks_total{provider=\"mistral\"}") == "1")
        #expect(metricValue(text, "deploxa_request_duration_seconds_bucket{route=\"chat_completions\",le=\"0.005\"}") == "6")
        #expect(metricValue(text, "deploxa_request_duration_seconds_count{route=\"chat_completions\"}") == "6")
        #expect(metricValue(text, "deploxa_accepted_requests_total") == "6")
        #expect(metricValue(text, "deploxa_workers{state=\"starting\"}") == "1")
        #expect(metricValue(text, "deploxa_workers{state=\"idle\"}") == "2")
        // Rendering twice gives the same figures.
        #expect(PrometheusExposition.render(board, listenQueue: 0) == text)
    }

    @Test("Model names beyond the table are counted under other; labels stay bounded")
    func modelTableOverflow() throws {
        let board = try Scoreboard.create(slots: 1, workersConfigured: 1, listenQueueCapacity: 128)
        board.prepare(slot: 0, generation: 1)
        let slot = board.workerSlot(0)
        for index in 0..<140 {
            slot.recordUsage(.cohere, model: "model-\(index)", promptTokens: 1, completionTokens: 0, costNanoUSD: nil)
        }
        let text = PrometheusExposition.render(board, listenQueue: nil)
        let modelLines = text.split(separator: "\n").filter { $0.hasPrefix("deploxa_tokens_total{") && $0.contains("kind=\"prompt\"") }
        #expect(modelLines.count == 129)
        #expect(metricValue(text, "deploxa_tokens_total{provider=\"cohere\",model=\"other\",kind=\"prompt\"}") == "12")
        #expect(metricValue(text, "deploxa_tokens_total{provider=\"cohere\",model=\"model-0\",kind=\"prompt\"}") == "1")
    }

    @Test("The status page in text and JSON names php-fpm's fields and never a key or prompt")
    func statusPage() throws {
        let board = try Scoreboard.create(slots: 2, workersConfigured: 2, listenQueueCapacity: 511)
        board.prepare(slot: 0, generation: 1)
        let slot = board.workerSlot(0)
        slot.markServing(pid: 77)
        _ = slot.beginRequest(route: .embeddings)
        board.noteSlowRequest()
        let pool = board.snapshot(listenQueue: 3)

        let text = PoolStatusPage.text(pool, poolName: "deploxa", full: true)
        #expect(text.contains("accepted conn:        1"))
        #expect(text.contains("listen queue:         3"))
        #expect(text.contains("listen queue len:     511"))
        #expect(text.contains("slow requests:        1"))
        #expect(text.contains("pid:                  77"))
        #expect(text.contains("request:              embeddings provider=-"))

        let json = PoolStatusPage.json(pool, poolName: "deploxa", full: true)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["accepted conn"] as? Int == 1)
        #expect(object["active processes"] as? Int == 1)
        #expect(object["total processes"] as? Int == 1)
        let processes = try #require(object["processes"] as? [[String: Any]])
        #expect(processes.first?["pid"] as? Int == 77)
        #expect((processes.first?["in flight"] as? [[String: Any]])?.first?["route"] as? String == "embeddings")
        #expect(PoolStatusPage.json(pool, poolName: "deploxa", full: false).contains("\"processes\":[") == false)
    }

    @Test("Attaching to something that is not a scoreboard fails cleanly")
    func attachRejectsOtherFiles() throws {
        let path = NSTemporaryDirectory() + "not-a-scoreboard-\(getpid())"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        #expect(throws: ScoreboardError.self) { try Scoreboard.attach(fileDescriptor: fd) }
    }
}
