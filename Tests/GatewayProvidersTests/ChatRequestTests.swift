import GatewayCore
import GatewayProviders
import Testing

@Suite("ChatRequest validation")
struct ChatRequestTests {
    @Test func acceptsTheLargestTokenLimitAndChoices() throws {
        let chat = try ChatRequest.parse(Array(#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":2147483647,"n":128}"#.utf8))
        #expect(chat.maxTokens == 2_147_483_647)
    }

    @Test func acceptsAValidRequest() throws {
        let chat = try ChatRequest.parse(Array(#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"user":"u1"}"#.utf8))
        #expect(chat.model == "gpt-4o")
        #expect(chat.stream)
        #expect(chat.clientWantsUsage)
        #expect(chat.user == "u1")
    }

    /// Every bad body is a 400 in OpenAI's shape naming what is wrong.
    @Test(arguments: [
        ("", nil as String?),
        ("{not json", nil),
        ("[1,2]", nil),
        (#"{"messages":[{"role":"user","content":"x"}]}"#, "model"),
        (#"{"model":42,"messages":[{"role":"user","content":"x"}]}"#, "model"),
        (#"{"model":"gpt-4o"}"#, "messages"),
        (#"{"model":"gpt-4o","messages":[]}"#, "messages"),
        (#"{"model":"gpt-4o","messages":"hi"}"#, "messages"),
        (#"{"model":"gpt-4o","messages":[{"role":"wizard","content":"x"}]}"#, "messages[0].role"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":5}]}"#, "messages[0].content"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#, "stream"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#, "max_tokens"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":9223372036854775807}"#, "max_tokens"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":-9223372036854775808}"#, "max_tokens"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":2147483648}"#, "max_tokens"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_completion_tokens":1e18}"#, "max_completion_tokens"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"n":4611686018427387904}"#, "n"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"n":0}"#, "n"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"n":1.5}"#, "n"),
        (#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#, "stream_options"),
    ])
    func rejects(_ body: String, _ param: String?) {
        do {
            _ = try ChatRequest.parse(Array(body.utf8))
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.status == 400)
            #expect(error.type == "invalid_request_error")
            #expect(error.param == param)
        }
    }
}
