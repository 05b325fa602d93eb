import GatewayCore
import Testing

@Suite("JSON")
struct JSONTests {
    @Test func roundTripKeepsKeyOrderAndIntegers() throws {
        let text = #"{"model":"gpt-4o","seed":9007199254740993,"temperature":0.7,"messages":[{"role":"user","content":"hi"}],"n":null,"ok":true}"#
        let value = try JSON.parse(text)
        #expect(value["seed"] == .int(9_007_199_254_740_993))
        #expect(value["temperature"] == .double(0.7))
        #expect(value.serializedString() == text)
    }

    @Test func objectEqualityIgnoresKeyOrder() throws {
        #expect(try JSON.parse(#"{"a":1,"b":[1,2]}"#) == JSON.parse(#"{ "b" : [1, 2], "a" : 1 }"#))
        #expect(try JSON.parse(#"{"a":1}"#) != JSON.parse(#"{"a":2}"#))
    }

    @Test func sortedKeysGiveCanonicalBytes() throws {
        let a = try JSON.parse(#"{"b":1,"a":{"d":2,"c":3}}"#)
        let b = try JSON.parse(#"{"a":{"c":3,"d":2},"b":1}"#)
        #expect(a.serialized(sortedKeys: true) == b.serialized(sortedKeys: true))
        #expect(a.serializedString(sortedKeys: true) == #"{"a":{"c":3,"d":2},"b":1}"#)
    }

    @Test func escapesAndUnicode() throws {
        let value = try JSON.parse(#""line\nbreak \"quote\" \u00e9 \ud83c\udf0d tab\t \u0001""#)
        #expect(value == .string("line\nbreak \"quote\" é 🌍 tab\t \u{01}"))
        #expect(value.serializedString() == #""line\nbreak \"quote\" é 🌍 tab\t \u0001""#)
        // Raw multi-byte UTF-8 passes through untouched.
        #expect(try JSON.parse("\"日本語\"") == .string("日本語"))
    }

    @Test(arguments: [
        "", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "tru", "nul", "01", "1.", "-", "1e", "\"abc",
        "\"\\x\"", "\"\\ud800\"", "{\"a\":1} x", "[1 2]", "\"a\u{01}\"", "NaN", "{'a':1}",
    ])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: JSONParseError.self) { try JSON.parse(bytes) }
    }

    @Test func refusesDeepNestingInsteadOfOverflowingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSON.parse(fine)) != nil)
    }

    @Test func numbers() throws {
        #expect(try JSON.parse("-0") == .int(0))
        #expect(try JSON.parse("1e3") == .double(1000))
        #expect(try JSON.parse("123456789012345678901234567890") == .double(1.2345678901234568e29))
        #expect(try JSON.parse("-12.5E-1") == .double(-1.25))
        #expect(JSON.int(42).intValue == 42)
        #expect(JSON.double(3.0).intValue == 3)
        #expect(JSON.double(3.5).intValue == nil)
    }

    @Test func subscriptsAndMutation() throws {
        var object = try JSON.parse(#"{"a":{"b":[10,20]}}"#).objectValue!
        #expect(JSON.object(object)["a"]?["b"]?[1] == .int(20))
        object["c"] = "x"
        object["a"] = nil
        #expect(JSON.object(object).serializedString() == #"{"c":"x"}"#)
    }
}
