import FuzzSupport
import GatewayCore
import GatewayProviders

/// Statuses a provider error answer arrives with (the adapters branch on several of them).
let statuses = [400, 401, 403, 404, 408, 413, 422, 429, 498, 500, 502, 503, 504, 529]

/// A provider's non-streamed answer body through its adapter.
/// Input: byte 0 picks the provider (value % 5) and the path ((value / 5) % 2: 0 = a 200 body to
/// `decodeChatResponse`, 1 = an error body to `decodeError`); byte 1 picks the request (bits 0–1),
/// the error status (bits 2–6, an index into `statuses`) and whether a Retry-After header is sent
/// (bit 7); the rest is the body.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProviderResponses(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let options = input.byte()
    let adapter = fuzzAdapter(selector)
    let name = adapter.provider.rawValue
    let body = Array(input.rest)

    if (selector / 5) % 2 == 0 {
        // A 200 body becomes a chat.completion the client can read, or a 502/504.
        do {
            let answer = try adapter.decodeChatResponse(body, for: FuzzRequests.pick(options & 3))
            let json = try? JSON.parse(answer.body)
            fuzzRequire(json?["choices"]?.arrayValue != nil, "\(name): accepted an answer without choices")
        } catch {
            fuzzRequire(error.status == 502 || error.status == 504, "\(name): refused with \(error.status): \(error.message)")
        }
    } else {
        // An error answer keeps an error status and never echoes the provider key.
        let status = statuses[Int((options & 0x7F) >> 2) % statuses.count]
        let headers: [(name: String, value: String)] = options & 0x80 != 0 ? [("Retry-After", "7")] : []
        let settings = fuzzSettings(adapter.provider)
        let error = adapter.decodeError(status: status, headers: headers, body: body, settings: settings)
        fuzzRequire((400..<600).contains(error.status), "\(name): error status \(error.status)")
        fuzzRequire(!error.message.contains(settings.apiKey.value), "\(name): the provider key reached the client")
        fuzzRequire((try? JSON.parse(error.body.serialized())) != nil, "\(name): error body is not JSON")
    }
    return 0
}

/// Entry point under the name SwiftPM links as `main` (see `runFuzzer`).
@_cdecl("FuzzProviderResponses_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzProviderResponses)
}
