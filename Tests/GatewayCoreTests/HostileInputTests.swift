import Foundation
import GatewayCore
import Testing

/// Numbers and texts from outside must not trap, stall or bloat: each case here once did, or
/// could have, in a worker.
@Suite("Hostile input")
struct HostileInputTests {
    @Test func repeatedKeysParseInLinearTimeAndTheLastWins() throws {
        // 20,000 unique keys, then 100,000 repeats of the last: quadratic parsing would take
        // minutes here; linear parsing takes milliseconds.
        var text = "{"
        for index in 0..<20_000 { text += "\"k\(index)\":\(index)," }
        for index in 0..<100_000 { text += "\"k19999\":\(index)," }
        text += "\"end\":true}"
        let value = try JSON.parse(text)
        let object = try #require(value.objectValue)
        #expect(object.count == 20_001)
        #expect(object["k19999"] == .int(99_999))
        // The repeated key keeps its first place.
        #expect(object.keys[19_999] == "k19999")
        #expect(object.keys.last == "end")
    }

    @Test func largeObjectsCompareByKeyNotByPosition() throws {
        var forward = JSONObject()
        var backward = JSONObject()
        for index in 0..<5_000 { forward["k\(index)"] = .int(Int64(index)) }
        for index in (0..<5_000).reversed() { backward["k\(index)"] = .int(Int64(index)) }
        #expect(JSON.object(forward) == JSON.object(backward))
        backward["k0"] = .int(-1)
        #expect(JSON.object(forward) != JSON.object(backward))
    }

    @Test func numbersBeyondDoubleAreRefusedNotInfinite() throws {
        #expect(throws: JSONParseError.self) { try JSON.parse("1e400") }
        #expect(throws: JSONParseError.self) { try JSON.parse("-1e400") }
        #expect(try JSON.parse("-9223372036854775808") == .int(.min))
        // One past Int64: a double, not a trap.
        #expect(try JSON.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
    }

    @Test func saturatingArithmeticNeverTraps() {
        #expect(Saturating.add(Int64.max, 1) == .max)
        #expect(Saturating.add(Int64.min, -1) == .min)
        #expect(Saturating.add(Int.max, Int.max) == .max)
        #expect(Saturating.add(Int64(5), -7) == -2)
        #expect(Saturating.int64(.nan) == 0)
        #expect(Saturating.int64(1e300) == .max)
        #expect(Saturating.int64(-.infinity) == .min)
        #expect(Saturating.int(1e99, in: 0...86_400) == 86_400)
        #expect(Saturating.int(-5, in: 0...86_400) == 0)
        #expect(Saturating.int(.nan, in: 0...10) == 0)
        #expect(SpendAmount.nanos(1e300) == .max)
        #expect(SpendAmount.nanos(.nan) == 0)
    }

    @Test func auditTextFieldsAreBoundedAtCharacterBoundaries() {
        let long = String(repeating: "é", count: 1_000)  // 2 bytes each
        var record = AuditRecord(requestID: "req_1", time: Date(), method: "POST", route: "/v1/" + String(repeating: "x", count: 5_000),
                                 user: long, modelRequested: String(repeating: "m", count: 10_000), status: 200, latencyMs: 1)
        record.attempts = (0..<100).map { _ in AuditAttempt(provider: "openai", model: long, status: 502, latencyMs: 1) }
        let bounded = record.boundedForStorage()
        #expect(bounded.user!.utf8.count == 256)
        #expect(bounded.user!.allSatisfy { $0 == "é" })
        #expect(bounded.modelRequested!.utf8.count == 256)
        #expect(bounded.route.utf8.count == 256)
        #expect(bounded.attempts.count == 32)
        #expect(bounded.attempts[0].model.utf8.count == 256)
        // Short values are untouched.
        #expect("gpt-4o".truncatedUTF8(256) == "gpt-4o")
        #expect("🌍🌍".truncatedUTF8(5) == "🌍")
    }
}
