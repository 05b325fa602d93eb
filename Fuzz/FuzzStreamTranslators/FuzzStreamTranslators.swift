import FuzzSupport
import GatewayCore
import GatewayProviders

/// A provider's SSE stream through `StreamRelay` with that provider's translator: the whole path
/// from upstream bytes to what the client receives.
/// Input: byte 0 picks the provider (value % 5) and the request ((value / 5) % 4); byte 1 sets
/// the read sizes (1…value+1 bytes from a generator seeded with it); the rest is the stream.
/// Properties: the client's stream ends with exactly one `data: [DONE]`, every payload before it
/// is JSON, and the bytes the client gets do not depend on how the upstream bytes were split.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamTranslators(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let chunking = input.byte()
    let adapter = fuzzAdapter(selector)
    let name = adapter.provider.rawValue
    let request = FuzzRequests.pick(selector / 5)
    let stream = input.rest

    var chunked = StreamRelay(providerName: name, translator: adapter.makeStreamTranslator(for: request))
    var output: [UInt8] = []
    var random = SplitMix64(seed: UInt64(chunking))
    var index = 0
    while index < stream.count {
        let end = min(stream.count, index + 1 + Int(random.next() % (UInt64(chunking) + 1)))
        output += chunked.feed(UnsafeBufferPointer(rebasing: stream[index..<end]))
        index = end
    }
    output += chunked.finish()

    var whole = StreamRelay(providerName: name, translator: adapter.makeStreamTranslator(for: request))
    let reference = whole.feed(stream) + whole.finish()

    let done = "data: [DONE]\n\n"
    let text = String(decoding: output, as: UTF8.self)
    fuzzRequire(chunked.isComplete, "\(name): relay not complete after finish()")
    fuzzRequire(text.hasSuffix(done), "\(name): stream does not end with [DONE]")
    fuzzRequire(text.components(separatedBy: done).count == 2, "\(name): [DONE] written more than once")
    for block in text.dropLast(done.count).components(separatedBy: "\n\n") where !block.isEmpty {
        fuzzRequire(block.hasPrefix("data: "), "\(name): not a data event: \(block.prefix(80))")
        fuzzRequire((try? JSON.parse(Array(block.utf8.dropFirst(6)))) != nil, "\(name): payload is not JSON: \(block.prefix(80))")
    }
    fuzzRequire(output == reference, "\(name): output depends on how the upstream bytes were split")
    return 0
}

/// Entry point under the name SwiftPM links as `main` (see `runFuzzer`).
@_cdecl("FuzzStreamTranslators_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzStreamTranslators)
}
