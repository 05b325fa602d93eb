import FuzzSupport
import GatewayCore
import GatewayProviders

/// A client's request body through `ChatRequest.parse` and, when accepted, through every
/// provider's `makeChatRequest`: the path every request body takes before it leaves the gateway.
/// A refusal must be a 4xx; an accepted translation must be JSON and keep the key out of the URL.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChatRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let request: ChatRequest
    do {
        request = try ChatRequest.parse(Array(input.bytes))
    } catch {
        fuzzRequire(error.status == 400, "parse refused with \(error.status): \(error.message)")
        return 0
    }
    for provider in fuzzProviders {
        guard let adapter = ProviderRegistry.adapter(for: provider) else { continue }
        let settings = fuzzSettings(provider)
        do {
            let upstream = try adapter.makeChatRequest(request, settings: settings)
            fuzzRequire((try? JSON.parse(upstream.body)) != nil, "\(provider.rawValue): upstream body is not JSON")
            fuzzRequire(!upstream.url.contains(settings.apiKey.value), "\(provider.rawValue): key in the URL")
        } catch {
            fuzzRequire((400..<500).contains(error.status), "\(provider.rawValue): refused with \(error.status): \(error.message)")
        }
    }
    return 0
}

/// Entry point under the name SwiftPM links as `main` (see `runFuzzer`).
@_cdecl("FuzzChatRequest_main")
public func fuzzerEntry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzChatRequest)
}
