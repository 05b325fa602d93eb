import Testing
@testable import GatewayTesting

/// `/_sim/last` shows credentials as their SHA-256 (hex), which the e2e tests recompute with
/// Python's hashlib: the digests must stay standard SHA-256.
@Suite("Simulator redaction")
struct SimulatorRedactionTests {
    /// FIPS 180-4 vectors and lengths around the 55/56/64-byte padding edges (checked against hashlib).
    static let vectors: [(String, String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("sk-cgi-provider-key", "a13464fe8ff41d6a886bb758040fc1c221cc07d8b8d43bd183e0d533c70e4a3a"),
        (String(repeating: "a", count: 55), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (String(repeating: "b", count: 56), "a5fc6e203a4c2b657d0d153885932414b2ffc6a93f0f8bf8b3183315e5a7212c"),
        (String(repeating: "c", count: 64), "52b6419d27bd7f547cee3b92f8c17a908b8a49601ecbec161e5030de1dfe9e0a"),
        (String(repeating: "d", count: 1000), "e8cec134fe59530e102e14869a9b0b3796129eb410a827b81d5b38cc80f334ab"),
        ("ключ-🔑", "817281acd7012441f865e3ae0c0535f31fc058cbc14c894929b2086588ede9f3"),
    ]

    @Test func credentialsAreShownAsTheirSHA256() {
        for (text, digest) in Self.vectors {
            #expect(SimulatorStats.sha256Hex(text) == digest, "\(text.prefix(20))")
        }
        #expect(SimulatorStats.redactedCredential(name: "Authorization", value: " Bearer  sk-cgi-provider-key ")
                == "Bearer a13464fe8ff41d6a886bb758040fc1c221cc07d8b8d43bd183e0d533c70e4a3a")
        #expect(SimulatorStats.redactedCredential(name: "x-api-key", value: "abc")
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
