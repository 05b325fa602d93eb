import CFuzzDriver
import Foundation
import GatewayCore
import GatewayProviders

/// The bytes libFuzzer hands to `LLVMFuzzerTestOneInput`, read front to back: a target takes a
/// few leading bytes as choices (which provider, which request, how to chunk) and the rest as the
/// payload. Reading past the end yields zeros, so every input, even an empty one, is valid.
public struct FuzzInput {
    public let bytes: UnsafeBufferPointer<UInt8>
    public private(set) var position = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeBufferPointer(start: size > 0 ? data : nil, count: size)
    }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// What is left after the choices. A slice of libFuzzer's own buffer (allocated at exactly the
    /// input's size), so with AddressSanitizer an over-read by a parser is reported.
    public var rest: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[min(position, bytes.count)...]) }
}

/// A property of the code under test failed: stop the process so libFuzzer saves the input as a
/// crash artifact (a `return` would only make the input uninteresting).
public func fuzzRequire(_ condition: Bool, _ message: @autoclosure () -> String,
                        file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError("fuzz property violated: \(message())", file: file, line: line) }
}

/// SplitMix64: a tiny generator with a fixed sequence per seed, so a chunking derived from the
/// input is the same on every replay.
public struct SplitMix64 {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Fixed client requests the translators are run against. The translators read the request
/// (streaming, usage reporting, tools, several choices), so a selector byte picks one of these;
/// the ids and timestamp are pinned so two runs on one input write the same bytes.
public enum FuzzRequests {
    public static let all: [ChatRequest] = [
        #"{"model":"fuzz-model","messages":[{"role":"user","content":"hi"}]}"#,
        #"{"model":"fuzz-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#,
        #"{"model":"fuzz-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"weather?"}],"#
            + #""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#,
        #"{"model":"fuzz-model","n":2,"max_tokens":16,"stream":true,"messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}"#,
    ].map { text in
        // Literals above are valid requests; a failure here is a broken harness, not a finding.
        var request = try! ChatRequest.parse(Array(text.utf8))
        request.responseID = "chatcmpl-fuzz"
        request.created = 1_700_000_000
        return request
    }

    public static func pick(_ selector: UInt8) -> ChatRequest { all[Int(selector) % all.count] }
}

/// Providers in a fixed order (the seed generator writes the same numbering).
public let fuzzProviders: [Provider] = [.openai, .anthropic, .google, .mistral, .cohere]

/// Settings with a recognisable key, so a target can check the key never reaches the client.
public func fuzzSettings(_ provider: Provider) -> ProviderSettings {
    ProviderSettings(projectID: 1, provider: provider, apiKey: Secret("test-key-\(provider.rawValue)-abcd1234"),
                     baseURL: nil, updatedAt: Date(timeIntervalSince1970: 0))
}

/// The adapter for a provider number (any byte is valid).
public func fuzzAdapter(_ selector: UInt8) -> any ProviderAdapter {
    // Every provider in the list has an adapter; a nil here is a broken harness.
    ProviderRegistry.adapter(for: fuzzProviders[Int(selector) % fuzzProviders.count])!
}

/// The signature libFuzzer calls for each input.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer (its command line: corpus directories, `-max_total_time=`, a crash file to
/// replay, …) over `callback`.
///
/// Why not libFuzzer's own `main`: SwiftPM compiles an executable target's entry point under the
/// name `<Module>_main` and links with `--defsym main=<Module>_main`, so each target must define
/// `<Module>_main` itself (with `@_cdecl`) and call this from it.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ callback: FuzzCallback) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
