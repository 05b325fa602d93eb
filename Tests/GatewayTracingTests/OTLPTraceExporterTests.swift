import Foundation
import GatewayHTTP
@testable import GatewayTracing
import Testing

/// The spans a finished request becomes: valid OTLP JSON, one server span and its children
/// (limits, each provider call, audit) in one trace, joined to the client's `traceparent`.
@Suite("OTLP trace export")
struct OTLPTraceExporterTests {
    func finishedTrace(traceParent: String? = nil) -> RequestTrace {
        let trace = RequestTrace()
        trace.method = "POST"
        trace.path = "/v1/chat/completions"
        trace.traceParent = traceParent
        trace.requestID = "req_abc"
        trace.mark(.started)
        trace.mark(.admitted)
        trace.recordUpstreamCall(provider: "openai", model: "gpt-4o", status: 500, failed: true, start: RequestTrace.now())
        trace.recordUpstreamCall(provider: "anthropic", model: "claude-sonnet-4", status: 200, failed: false, start: RequestTrace.now())
        trace.setProvider("anthropic")
        trace.status = 200
        trace.attempts = 2
        trace.mark(.audited)
        trace.finishedAt = RequestTrace.now()
        return trace
    }

    func decode(_ spans: [String]) throws -> [[String: Any]] {
        try spans.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test("A request with a fallback gives a server span and limits, two upstream and audit children")
    func spansOfAFallback() throws {
        let spans = try decode(OTLPTraceExporter.spans(of: finishedTrace(), clockOffset: 1_700_000_000_000_000_000))
        #expect(spans.map { $0["name"] as? String } == ["POST /v1/chat/completions", "limits", "upstream openai", "upstream anthropic", "audit"])
        let root = spans[0]
        let traceID = try #require(root["traceId"] as? String)
        #expect(traceID.count == 32)
        #expect(root["parentSpanId"] == nil)
        #expect(root["kind"] as? Int == 2)
        for child in spans.dropFirst() {
            #expect(child["traceId"] as? String == traceID)
            #expect(child["parentSpanId"] as? String == root["spanId"] as? String)
            let start = try #require(Int64(child["startTimeUnixNano"] as? String ?? ""))
            let end = try #require(Int64(child["endTimeUnixNano"] as? String ?? ""))
            #expect(start <= end && start >= 1_700_000_000_000_000_000)
        }
        #expect((spans[2]["status"] as? [String: Any])?["code"] as? Int == 2, "the failed call is an error span")
        #expect((spans[3]["status"] as? [String: Any])?["code"] as? Int == 0)
        let attributes = (root["attributes"] as? [[String: Any]] ?? []).reduce(into: [String: Any]()) { result, entry in
            result[entry["key"] as! String] = (entry["value"] as? [String: Any])?.values.first
        }
        #expect(attributes["deploxa.request_id"] as? String == "req_abc")
        #expect(attributes["http.response.status_code"] as? String == "200")
        #expect(attributes["gen_ai.system"] as? String == "anthropic")
    }

    @Test("A client's traceparent makes the request a child of the client's span")
    func joinsTheClientsTrace() throws {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let spans = try decode(OTLPTraceExporter.spans(of: finishedTrace(traceParent: header), clockOffset: 0))
        #expect(spans.allSatisfy { $0["traceId"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736" })
        #expect(spans[0]["parentSpanId"] as? String == "00f067aa0ba902b7")
    }

    @Test("Malformed traceparent headers are ignored", arguments: [
        "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
    ])
    func malformedTraceParent(header: String) {
        #expect(TraceParent(header: header) == nil)
    }
}
