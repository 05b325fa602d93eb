import Foundation
import GatewayCore
import GatewayTesting
import GatewayUpstream
import Testing

/// The simulated Gemini API spoken to directly, in its own wire format.
@Suite("Google simulation", .serialized)
final class GoogleSimulationTests {
    let provider: SimulatedProvider
    let upstream: UpstreamClient
    let base: String

    init() async throws {
        provider = try await SimulatedProvider()
        base = provider.root + "/google/v1beta"
        upstream = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: 2, idle: 2))
    }

    deinit { upstream.shutdownBlocking() }

    func call(_ path: String, method: String = "POST", key: String? = "AIza-sim", body: String = "", xSim: String? = nil) async throws -> (Int, String) {
        var headers: [(name: String, value: String)] = [(name: "Content-Type", value: "application/json")]
        if let key { headers.append((name: "x-goog-api-key", value: key)) }
        if let xSim { headers.append((name: "X-Sim", value: xSim)) }
        let response = try await upstream.send(UpstreamRequest(method: method, url: base + path, headers: headers, body: Array(body.utf8)))
        let bytes = try await upstream.readBody(response) { try await $0.collect(limit: 1 << 20) }
        return (response.status, String(decoding: bytes, as: UTF8.self))
    }

    static let hello = #"{"systemInstruction":{"parts":[{"text":"Be brief."}]},"contents":[{"role":"user","parts":[{"text":"one two"}]}],"generationConfig":{"maxOutputTokens":2}}"#

    @Test func generateContentWithUsageAndTruncation() async throws {
        let (status, text) = try await call("/models/gemini-2.5-flash:generateContent", body: Self.hello)
        #expect(status == 200)
        let json = try JSON.parse(text)
        #expect(json["candidates"]?[0]?["content"]?["parts"]?[0]?["text"] == "The quick")
        #expect(json["candidates"]?[0]?["finishReason"] == "MAX_TOKENS")
        #expect(json["usageMetadata"]?["promptTokenCount"] == 12)  // (2 + 4) + (2 + 4)
        #expect(json["usageMetadata"]?["candidatesTokenCount"] == 2)
        #expect(json["modelVersion"] == "gemini-2.5-flash")
    }

    @Test func sseStreamIsCRLFFramedWithRunningUsageAndNoTerminator() async throws {
        let (status, text) = try await call("/models/gemini-2.5-flash:streamGenerateContent?alt=sse", body: Self.hello)
        #expect(status == 200)
        #expect(text.hasPrefix("data: {"))
        #expect(text.hasSuffix("}\r\n\r\n"))
        #expect(!text.contains("[DONE]"))
        #expect(text.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }.count == 2)
        #expect(text.contains(#""candidatesTokenCount":2"#))
        let array = try await call("/models/gemini-2.5-flash:streamGenerateContent", body: Self.hello).1
        #expect(try JSON.parse(array).arrayValue?.count == 2)
    }

    @Test func streamErrorAfterAndToolCall() async throws {
        let failing = try await call("/models/m:streamGenerateContent?alt=sse", body: Self.hello, xSim: "words=5 stream_error_after=1").1
        #expect(failing.contains(#"data: {"error":{"code":500"#))
        let tool = try await call("/models/m:generateContent", body: Self.hello, xSim: "tool=get_weather").1
        #expect(try JSON.parse(tool)["candidates"]?[0]?["content"]?["parts"]?[0]?["functionCall"] == ["args": ["city": "Paris"], "name": "get_weather"])
    }

    @Test func authErrorsAndScriptedStatuses() async throws {
        let (missing, _) = try await call("/models/m:generateContent", key: nil, body: Self.hello)
        #expect(missing == 403)
        let (invalid, body) = try await call("/models/m:generateContent", key: "sk-invalid", body: Self.hello)
        #expect(invalid == 400)
        #expect(body.contains("API_KEY_INVALID"))
        let (limited, limitBody) = try await call("/models/m:generateContent", body: Self.hello, xSim: "status=429 retry_after=12")
        #expect(limited == 429)
        #expect(limitBody.contains(#""retryDelay":"12s""#))
        #expect(limitBody.contains("RESOURCE_EXHAUSTED"))
    }

    @Test func embeddingsAndModels() async throws {
        let (status, text) = try await call("/models/text-embedding-004:batchEmbedContents",
                                            body: #"{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]},"outputDimensionality":3}]}"#)
        #expect(status == 200)
        #expect(try JSON.parse(text)["embeddings"]?[0]?["values"]?.arrayValue?.count == 3)
        let models = try await call("/models", method: "GET").1
        #expect(models.contains(#""name":"models/gemini-2.5-flash""#))
    }
}
