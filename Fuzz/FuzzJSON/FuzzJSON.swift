import FuzzSupport
import GatewayCore

/// `JSON.parse` on arbitrary bytes. Beyond "no crash, no hang": whatever parses must serialize to
/// a text that parses again, and serializing is a fixed point after one round (the cache key is
/// the serialized form, so drift there would split identical requests).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    // Parse libFuzzer's buffer directly (not a copy) so an over-read lands outside the allocation.
    guard let value = try? JSON.parse(input.bytes) else { return 0 }
    let once = value.serialized()
    let again: JSON
    do {
        again = try JSON.parse(once)
    } catch {
        fuzzRequire(false, "serialized output does not parse: \(error)")
        return 0
    }
    // Equal sorted forms mean equal values. (`JSONObject ==` looks every key up linearly, so it
    // is quadratic in the key count: fine for tests, too slow to replay a large input here.)
    fuzzRequire(again.serialized(sortedKeys: true) == value.serialized(sortedKeys: true), "round trip changed the value")
    fuzzRequire(again.serialized() == once, "serialization is not stable")
    return 0
}

/// Entry point under the name SwiftPM links as `main` (see `runFuzzer`).
@_cdecl("FuzzJSON_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzJSON)
}
