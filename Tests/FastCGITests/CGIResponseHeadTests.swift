import GatewayHTTP
import Testing
@testable import FastCGI

@Suite("CGIResponseHead")
struct CGIResponseHeadTests {
    @Test func statusLineThenFieldsThenABlankLine() {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "X-Request-Id", value: "req_1")
        let head = String(decoding: CGIResponseHead.encode(status: 429, headers: headers), as: UTF8.self)
        #expect(head == "Status: 429 Too Many Requests\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\n\r\n")
    }

    /// A value that carries CR or LF (alone, or as one CRLF character) cannot start a header of its own.
    @Test func lineBreaksInValuesAreDropped() {
        var headers = HTTPHeaders()
        headers.add(name: "X-Echo", value: "a\r\nSet-Cookie: x=1\rb\nc")
        let head = String(decoding: CGIResponseHead.encode(status: 200, headers: headers), as: UTF8.self)
        #expect(head == "Status: 200 OK\r\nX-Echo: aSet-Cookie: x=1bc\r\n\r\n")
    }
}

@Suite("FastCGIRequestReader")
struct FastCGIRequestReaderTests {
    private func param(_ text: String) -> (String, String)? {
        text.withCString { FastCGIRequestReader.usedParam($0) }
    }

    @Test func headersAndTheUsedParamsAreKeptTheRestSkipped() {
        #expect(param("HTTP_X_AI_PROVIDER=openai")! == ("HTTP_X_AI_PROVIDER", "openai"))
        #expect(param("REQUEST_URI=/v1/chat?x=a=b")! == ("REQUEST_URI", "/v1/chat?x=a=b"))
        #expect(param("CONTENT_LENGTH=")! == ("CONTENT_LENGTH", ""))
        #expect(param("HTTPS=on")! == ("HTTPS", "on"))
        #expect(param("SCRIPT_FILENAME=/srv/index.php") == nil)
        #expect(param("HTTPSX=on") == nil)
        #expect(param("HTTP_=x") == nil)
        #expect(param("NO_EQUALS_SIGN") == nil)
    }

    @Test func paramsBecomeTheRequest() {
        let params = ["REQUEST_METHOD": "POST", "REQUEST_URI": "/v1/chat/completions?debug=1", "CONTENT_TYPE": "application/json",
                      "CONTENT_LENGTH": "2", "HTTP_AUTHORIZATION": "Bearer gk_x", "HTTP_X_AI_PROVIDER": "anthropic",
                      "REMOTE_ADDR": "10.0.0.7", "HTTPS": "on", "SERVER_PORT": "443"]
        let request = FastCGIRequestReader.makeRequest(params: params, maxBodyBytes: 10) { limit in
            #expect(limit == 2)
            return Array("{}".utf8)
        }
        #expect(request.method == "POST")
        #expect(request.path == "/v1/chat/completions")
        #expect(request.headers["authorization"] == "Bearer gk_x")
        #expect(request.headers["x-ai-provider"] == "anthropic")
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.body == Array("{}".utf8))
        #expect(request.isSecure)
        #expect(request.remoteAddress == "10.0.0.7")
        #expect(request.serverPort == 443)
    }

    @Test func aDeclaredBodyOverTheLimitIsNotRead() {
        let request = FastCGIRequestReader.makeRequest(params: ["REQUEST_METHOD": "POST", "CONTENT_LENGTH": "11"], maxBodyBytes: 10) { _ in
            Issue.record("the body was read")
            return []
        }
        #expect(request.bodyTooLarge)
        #expect(request.body.isEmpty)
    }
}
