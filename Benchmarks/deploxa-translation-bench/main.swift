import Dispatch
import Foundation
import GatewayCore
import GatewayProviders
import GatewayTesting
import GatewayUpstream

/// Translation cost per provider, in-process and without I/O in the timed part.
///
/// The provider simulator (loopback) produces each provider's real wire format once: a
/// non-streamed answer of `--words` words and a streamed one of `--stream-words` content events.
/// Then, per provider, the timed loops run: (request) parse the client's body and build the
/// provider request; (response) decode the provider's answer into a chat.completion; (stream) run
/// the captured SSE bytes through the parser and the stream translator, fed in 1 KiB reads.
/// Baseline in the same run: parsing and re-serialising the same bytes with our JSON, which any
/// translator must at least do.
@main
struct TranslationBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        func option(_ name: String, _ fallback: Int) -> Int {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]) else { return fallback }
            return value
        }
        let iterations = option("--iterations", 2000)
        let streamIterations = option("--stream-iterations", 60)
        let words = option("--words", 50)
        let streamWords = option("--stream-words", 500)
        let json = arguments.contains("--json")
        if let index = arguments.firstIndex(of: "--dump-requests"), index + 1 < arguments.count {
            try dumpRequests(into: arguments[index + 1], words: option("--words", 8))
            return
        }

        let simulator = ProviderSimulator(configuration: SimulatorConfiguration(host: "127.0.0.1", port: 0))
        let port = try await simulator.start()
        let client = UpstreamClient(timeouts: UpstreamTimeouts(connect: 5, firstByte: 30, idle: 30))
        var results: [JSON] = []
        for provider in Provider.allCases {
            guard let adapter = ProviderRegistry.adapter(for: provider), let model = models[provider] else { continue }
            let settings = ProviderSettings(projectID: 1, provider: provider, apiKey: Secret("bench-key"),
                                            baseURL: "http://127.0.0.1:\(port)/\(provider.rawValue)", updatedAt: Date())
            let body = Array("""
                {"model":"\(model)","max_tokens":1024,"temperature":0.2,"messages":[{"role":"system","content":"You are terse."},\
                {"role":"user","content":"Say something about foxes [sim words=\(words)]"}]}
                """.utf8)
            let streamBody = Array("""
                {"model":"\(model)","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are terse."},\
                {"role":"user","content":"Say something about foxes [sim words=\(streamWords)]"}]}
                """.utf8)
            let chat = try ChatRequest.parse(body)
            let streamChat = try ChatRequest.parse(streamBody)
            let answer = try await fetch(client, try adapter.makeChatRequest(chat, settings: settings))
            let streamBytes = try await fetch(client, try adapter.makeChatRequest(streamChat, settings: settings))

            // Sanity: the captured answers translate, before anything is timed.
            _ = try adapter.decodeChatResponse(answer, for: chat)
            let checkOutput = relay(streamBytes, adapter: adapter, chat: streamChat)
            let chunks = checkOutput.chunks
            guard checkOutput.done else { throw BenchFailure("\(provider.rawValue): the captured stream did not translate to [DONE]") }

            let requestNs = median(of: 5) {
                time(iterations) {
                    let parsed = try! ChatRequest.parse(body)
                    _ = try! adapter.makeChatRequest(parsed, settings: settings)
                }
            }
            let requestBaselineNs = median(of: 5) { time(iterations) { _ = try! JSON.parse(body).serialized() } }
            let responseNs = median(of: 5) { time(iterations) { _ = try! adapter.decodeChatResponse(answer, for: chat) } }
            let responseBaselineNs = median(of: 5) { time(iterations) { _ = try! JSON.parse(answer).serialized() } }
            let streamNs = median(of: 5) { time(streamIterations) { _ = relay(streamBytes, adapter: adapter, chat: streamChat) } }
            let streamBaselineNs = median(of: 5) {
                time(streamIterations) {
                    var parser = SSEParser()
                    var events: [SSEEvent] = []
                    var index = 0
                    while index < streamBytes.count {
                        let end = min(streamBytes.count, index + 1024)
                        events += (try? parser.feed(streamBytes[index..<end])) ?? []
                        index = end
                    }
                    for event in events where event.data != "[DONE]" && !event.data.isEmpty {
                        _ = try? JSON.parse(Array(event.data.utf8)).serialized()
                    }
                }
            }
            results.append(.object(JSONObject([
                ("provider", .string(provider.rawValue)),
                ("request_us", .double(round1(requestNs / 1000))), ("request_baseline_us", .double(round1(requestBaselineNs / 1000))),
                ("response_us", .double(round1(responseNs / 1000))), ("response_baseline_us", .double(round1(responseBaselineNs / 1000))),
                ("response_bytes", .int(Int64(answer.count))),
                ("stream_us", .double(round1(streamNs / 1000))), ("stream_baseline_us", .double(round1(streamBaselineNs / 1000))),
                ("stream_bytes", .int(Int64(streamBytes.count))), ("stream_chunks_out", .int(Int64(chunks))),
                ("stream_ns_per_chunk", .double(round1(streamNs / Double(max(1, chunks))))),
            ])))
        }
        try await simulator.stop()
        await client.shutdown()

        if json {
            print(JSON.array(results).serializedString())
            return
        }
        print("translation cost per request (median of 5 × \(iterations) requests / \(streamIterations) streams; µs; ×baseline = vs JSON parse+serialise of the same bytes)")
        print("provider   request (×base)      response \(words)w (×base)   stream \(streamWords) chunks (×base)   ns/chunk")
        for result in results {
            func value(_ key: String) -> Double { result[key]?.doubleValue ?? 0 }
            func ratio(_ a: String, _ b: String) -> String { String(format: "%.1f", value(a) / max(0.001, value(b))) }
            print(String(format: "%-10@ %7.1f (%@)     %8.1f (%@)          %9.1f (%@)          %7.0f",
                         (result["provider"]?.stringValue ?? "?") as NSString, value("request_us"), ratio("request_us", "request_baseline_us") as NSString,
                         value("response_us"), ratio("response_us", "response_baseline_us") as NSString,
                         value("stream_us"), ratio("stream_us", "stream_baseline_us") as NSString, value("stream_ns_per_chunk")))
        }
    }

    static let models: [Provider: String] = [.openai: "gpt-4o", .anthropic: "claude-sonnet-4", .google: "gemini-2.0-flash",
                                             .mistral: "mistral-large", .cohere: "command-r"]

    /// For the overhead benchmark's "native" baseline: per provider, the client's OpenAI body
    /// (`<p>.client.json`) and what the gateway sends for it — `<p>.body`, `<p>.path` (below
    /// the simulator's root) and `<p>.headers` (one `Name: value` per line, key "sim-key").
    static func dumpRequests(into folder: String, words: Int) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for provider in Provider.allCases {
            guard let adapter = ProviderRegistry.adapter(for: provider), let model = models[provider] else { continue }
            let client = "{\"model\":\"\(model)\",\"messages\":[{\"role\":\"user\",\"content\":\"Say something [sim words=\(words)]\"}]}"
            let settings = ProviderSettings(projectID: 1, provider: provider, apiKey: Secret("sim-key"),
                                            baseURL: "http://simulator/\(provider.rawValue)", updatedAt: Date())
            let request = try adapter.makeChatRequest(try ChatRequest.parse(Array(client.utf8)), settings: settings)
            let path = String(request.url.dropFirst("http://simulator".count))
            let headers = request.headers.filter { $0.name.lowercased() != "content-type" && $0.name.lowercased() != "accept" }
                .map { "\($0.name): \($0.value)" }.joined(separator: "\n")
            try client.write(toFile: "\(folder)/\(provider.rawValue).client.json", atomically: true, encoding: .utf8)
            try Data(request.body).write(to: URL(fileURLWithPath: "\(folder)/\(provider.rawValue).body"))
            try path.write(toFile: "\(folder)/\(provider.rawValue).path", atomically: true, encoding: .utf8)
            try headers.write(toFile: "\(folder)/\(provider.rawValue).headers", atomically: true, encoding: .utf8)
        }
    }

    struct BenchFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func fetch(_ client: UpstreamClient, _ request: UpstreamRequest) async throws -> [UInt8] {
        let response = try await client.send(request)
        let body = try await client.readBody(response) { try await $0.collect(limit: 64 << 20) }
        guard (200..<300).contains(response.status) else {
            throw BenchFailure("simulator answered \(response.status): \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
        return body
    }

    static func relay(_ bytes: [UInt8], adapter: any ProviderAdapter, chat: ChatRequest) -> (chunks: Int, done: Bool) {
        var relay = StreamRelay(providerName: adapter.provider.rawValue, translator: adapter.makeStreamTranslator(for: chat))
        var output = 0
        var index = 0
        while index < bytes.count {
            let end = min(bytes.count, index + 1024)
            output += relay.feed(bytes[index..<end]).count
            index = end
        }
        output += relay.finish().count
        _ = output
        return (relay.payloadEvents, relay.isComplete && relay.error == nil)
    }

    /// Nanoseconds per iteration of `body`.
    static func time(_ iterations: Int, _ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<iterations { body() }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations)
    }

    static func median(of runs: Int, _ measure: () -> Double) -> Double {
        let values = (0..<runs).map { _ in measure() }.sorted()
        return values[values.count / 2]
    }

    static func round1(_ value: Double) -> Double { (value * 10).rounded() / 10 }
}
