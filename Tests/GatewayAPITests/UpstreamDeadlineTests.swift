import Dispatch
import Foundation
import GatewayCore
import GatewayTesting
import GatewayUpstream
import Testing

/// `UpstreamClient.readBody` against the simulator: the one watchdog per client cuts a body read
/// at the idle or the total deadline and says which, and the caller's own cancellation still
/// reaches the read.
@Suite("Upstream body deadlines", .serialized)
final class UpstreamDeadlineTests: Sendable {
    let provider: SimulatedProvider

    init() async throws {
        provider = try await SimulatedProvider()
    }

    /// Reads a streamed answer scripted by `sim`; the failure (if any) and the seconds the read took.
    func read(_ client: UpstreamClient, sim: String) async throws -> (Result<Int, any Error>, Double) {
        let response = try await provider.send(client, sim: sim, stream: true)
        #expect(response.status == 200)
        let started = DispatchTime.now().uptimeNanoseconds
        let result: Result<Int, any Error>
        do {
            result = .success(try await client.readBody(response) { try await $0.collect(limit: 1 << 20).count })
        } catch {
            result = .failure(error)
        }
        return (result, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    @Test func theIdleDeadlineCutsASilentStream() async throws {
        let client = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: 5, idle: 0.5, total: 30))
        defer { client.shutdownBlocking() }
        // The pause outlasts any stall of a busy test run between the head and the read: a stream
        // already complete when the read starts is rightly read without a deadline.
        let (result, seconds) = try await read(client, sim: "words=3 pause_after=2 pause_ms=30000")
        guard case .failure(UpstreamFailure.timeout(let what)) = result else {
            Issue.record("expected an idle timeout, got \(result)")
            return
        }
        #expect(what.contains("went quiet"), "\(what)")
        #expect(seconds > 0.4 && seconds < 2, "cut after \(seconds) s with a 0.5 s idle deadline")
        // The client is still usable, and a read that keeps to its deadlines is not cut.
        let (next, _) = try await read(client, sim: "words=3 chunk_delay_ms=100")
        #expect(try next.get() > 0)
    }

    @Test func theTotalDeadlineCutsAStreamThatKeepsTalking() async throws {
        let client = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: 5, idle: 5, total: 1))
        defer { client.shutdownBlocking() }
        let (result, seconds) = try await read(client, sim: "words=40 chunk_delay_ms=100")
        guard case .failure(UpstreamFailure.timeout(let what)) = result else {
            Issue.record("expected a total-deadline timeout, got \(result)")
            return
        }
        #expect(what.contains("total deadline"), "\(what)")
        #expect(seconds < 2.5, "cut after \(seconds) s with a 1 s total deadline")
    }

    @Test func cancellingTheCallerEndsTheReadAndIsNoTimeout() async throws {
        let client = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: 5, idle: 30, total: 60))
        defer { client.shutdownBlocking() }
        let reading = Task { try await self.read(client, sim: "words=3 pause_after=2 pause_ms=10000") }
        try await Task.sleep(nanoseconds: 300_000_000)
        reading.cancel()
        let (result, seconds) = try await reading.value
        switch result {
        case .success(let count): Issue.record("the read finished (\(count) bytes) despite the cancel")
        case .failure(UpstreamFailure.timeout(let what)): Issue.record("a cancel reported as a timeout: \(what)")
        case .failure: break
        }
        #expect(seconds < 2, "the read ended \(seconds) s after it started, cancelled at 0.3 s")
    }
}
