import Dispatch
import Foundation
import GatewayCore
import GatewayTesting
import GatewayUpstream
import Testing

/// `UpstreamClient` over AsyncHTTPClient's delegate API (`UpstreamExchange`), against the
/// simulator: a reader slower than the provider still gets every byte in order (the loop stops
/// reading past the high-water mark and goes on when the reader catches up), the first-byte
/// deadline cuts a provider that sends no head, and a response dropped unread gives its pooled
/// connection back instead of keeping it busy until the provider finishes.
@Suite("Upstream exchange", .serialized)
final class UpstreamExchangeTests: Sendable {
    let provider: SimulatedProvider

    init() async throws {
        provider = try await SimulatedProvider()
    }

    func send(_ client: UpstreamClient, sim: String, stream: Bool = false) async throws -> UpstreamResponse {
        try await provider.send(client, sim: sim, stream: stream)
    }

    static func content(_ bytes: [UInt8]) throws -> String {
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let choices = try #require(answer["choices"] as? [[String: Any]])
        let message = try #require(choices.first?["message"] as? [String: Any])
        return try #require(message["content"] as? String)
    }

    @Test func aSlowReaderGetsEveryByteInOrder() async throws {
        let client = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: 5, idle: 5, total: 60))
        defer { client.shutdownBlocking() }
        let fast = try await client.readBody(try await send(client, sim: "words=100000")) { try await $0.collect(limit: 1 << 24) }
        #expect(fast.count > 400 * 1024, "the answer must be well past the 256 KiB high-water mark: \(fast.count) bytes")

        let slowResponse = try await send(client, sim: "words=100000")
        // Let the provider's whole answer arrive before reading any of it: the loop must stop at
        // the high-water mark and go on only as the reader takes parts.
        try await Task.sleep(nanoseconds: 300_000_000)
        let (slow, parts) = try await client.readBody(slowResponse) { body -> ([UInt8], Int) in
            var bytes: [UInt8] = []
            var parts = 0
            for try await part in body {
                bytes.append(contentsOf: part)
                parts += 1
                try await Task.sleep(nanoseconds: 1_000_000)
            }
            return (bytes, parts)
        }
        #expect(parts > 1)
        #expect(slow.count == fast.count)
        #expect(try Self.content(slow) == Self.content(fast))
    }

    @Test func theFirstByteDeadlineCutsAProviderThatSendsNoHead() async throws {
        let client = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: 0.5, idle: 5, total: 30))
        defer { client.shutdownBlocking() }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let response = try await send(client, sim: "latency_ms=3000")
            Issue.record("answered with \(response.status) despite the first-byte deadline")
        } catch UpstreamFailure.timeout(let what) {
            #expect(what.contains("first-byte"), "\(what)")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        #expect(seconds > 0.4 && seconds < 2, "cut after \(seconds) s with a 0.5 s first-byte deadline")
        // The client is still usable.
        let response = try await send(client, sim: "words=3")
        #expect(response.status == 200)
        #expect(try Self.content(try await client.readBody(response) { try await $0.collect(limit: 1 << 20) }).count > 0)
    }

    @Test func aResponseDroppedUnreadGivesItsConnectionBack() async throws {
        // One connection per host: a second call gets it only once the first call lets go.
        let client = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: 5, idle: 60, total: 120),
                                    maxConnectionsPerHost: 1)
        defer { client.shutdownBlocking() }
        do {
            // A stream that would go on for about 40 s, dropped after its head.
            let response = try await send(client, sim: "words=2000 chunk_delay_ms=20", stream: true)
            #expect(response.status == 200)
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let response = try await send(client, sim: "words=3")
        let body = try await client.readBody(response) { try await $0.collect(limit: 1 << 20) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        #expect(response.status == 200 && !body.isEmpty)
        #expect(seconds < 3, "the next call waited \(seconds) s for the connection")
    }
}
