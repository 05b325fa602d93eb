import GatewayCore
import Testing

@Suite("Fallback targets")
struct FallbackTargetTests {
    @Test func parsesProviderSlashModelAndLists() throws {
        let target = try FallbackTarget.parse(" Anthropic/claude-sonnet-4 ").get()
        #expect(target == FallbackTarget(provider: .anthropic, model: "claude-sonnet-4"))
        #expect(target.description == "anthropic/claude-sonnet-4")
        // A model may contain slashes of its own.
        #expect(try FallbackTarget.parse("openai/ft:gpt-4o/acme").get().model == "ft:gpt-4o/acme")
        let list = try FallbackTarget.parseList("openai/gpt-4o, google/gemini-2.0-flash").get()
        #expect(list.map(\.description) == ["openai/gpt-4o", "google/gemini-2.0-flash"])
    }

    @Test(arguments: ["gpt-4o", "acme/gpt-4o", "openai/", "openai/gpt 4o", "openai/gpt-4o,", ""])
    func refusesMalformedItems(_ text: String) {
        #expect(throws: FallbackTargetError.self) { try FallbackTarget.parseList(text).get() }
    }
}
