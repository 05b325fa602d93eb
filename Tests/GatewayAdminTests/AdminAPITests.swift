import Foundation
import GatewayAdmin
import GatewayCore
import GatewayStore
import GatewayTesting
import Testing

/// The REST API's rules in one process: tokens and their scopes, read-only tokens, write-only
/// provider keys, PATCH semantics, and the OpenAPI document naming every route the router serves.
@Suite("Admin REST API")
struct AdminAPITests {
    let fixture: AdminFixture

    init() throws { fixture = try AdminFixture() }

    @Test func noTokenWrongTokenAndGatewayKeysAre401() async throws {
        #expect(await fixture.send("GET", "/api/v1/projects").status == 401)
        #expect(await fixture.send("GET", "/api/v1/projects", token: "dpa_000000000000_" + String(repeating: "a", count: 40)).status == 401)
        let key = try fixture.store.createKey(projectID: try #require(try fixture.store.project(slug: "acme/web")).id)
        let answer = await fixture.send("GET", "/api/v1/projects", token: key.secret)
        #expect(answer.status == 401)
        #expect(answer.errorCode == "invalid_admin_token")
        #expect(!answer.text.contains(key.secret))
    }

    @Test func aScopedTokenSeesOnlyItsScopeAndOtherTenantsAre404() async throws {
        let listed = await fixture.send("GET", "/api/v1/projects", token: "acme")
        let names = listed.json?["data"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(names.sorted() == ["acme/mobile", "acme/web"])
        let rivalKey = try #require(fixture.keys["rival/app"])
        for (method, uri, body) in [("GET", "/api/v1/projects/rival/app", nil), ("PATCH", "/api/v1/projects/rival/app", #"{"rpm":1}"#),
                                    ("GET", "/api/v1/projects/rival/app/keys", nil), ("POST", "/api/v1/projects/rival/app/keys", "{}"),
                                    ("PATCH", "/api/v1/keys/\(rivalKey)", #"{"rpm":1}"#), ("DELETE", "/api/v1/keys/\(rivalKey)", nil),
                                    ("GET", "/api/v1/audit?project=rival/app", nil), ("GET", "/api/v1/audit?key=\(rivalKey)&format=csv", nil),
                                    ("GET", "/api/v1/usage?project=rival/app", nil),
                                    ("PUT", "/api/v1/projects/rival/app/providers/openai", #"{"api_key":"sk-test-1234567890"}"#),
                                    ("GET", "/api/v1/projects/rival/app/fallbacks", nil)] {
            for token in ["acme", "web"] {
                let answer = await fixture.send(method, uri, token: token, body: body)
                #expect(answer.status == 404, "\(token) \(method) \(uri)")
                // Only the name the client sent comes back, as for a project that does not exist.
                #expect(!answer.text.contains("\"id\""), "\(token) \(method) \(uri) must not show the other tenant's data")
            }
        }
        // The project token does not see its sibling either; the answer equals a missing project's.
        let sibling = await fixture.send("GET", "/api/v1/projects/acme/mobile", token: "web")
        let missing = await fixture.send("GET", "/api/v1/projects/acme/nothing", token: "web")
        #expect(sibling.status == 404 && missing.status == 404)
        #expect(sibling.json?["error"]?["code"] == missing.json?["error"]?["code"])
        #expect(try fixture.store.key(id: rivalKey)?.isRevoked == false)
    }

    @Test func readOnlyTokensCanReadButNeverChange() async throws {
        #expect(await fixture.send("GET", "/api/v1/projects/acme/web", token: "viewer").status == 200)
        for (method, uri, body) in [("POST", "/api/v1/projects", #"{"name":"acme/new"}"#), ("PATCH", "/api/v1/projects/acme/web", #"{"rpm":5}"#),
                                    ("POST", "/api/v1/projects/acme/web/keys", "{}"), ("PUT", "/api/v1/prices/gpt-4o", #"{"input":1,"output":2}"#),
                                    ("DELETE", "/api/v1/keys/\(fixture.keys["acme/web"]!)", nil)] {
            let answer = await fixture.send(method, uri, token: "viewer", body: body)
            #expect(answer.status == 403, "\(method) \(uri)")
            #expect(answer.json?["error"]?["type"] == "permission_error")
        }
        #expect(try fixture.store.project(slug: "acme/new") == nil)
        #expect(try fixture.store.project(slug: "acme/web")?.limits.requestsPerMinute == nil)
    }

    @Test func patchKeepsAbsentFieldsAndNullClears() async throws {
        _ = await fixture.send("PATCH", "/api/v1/projects/acme/web", token: "all", body: #"{"rpm": 60, "tpm": 1000}"#)
        let patched = await fixture.send("PATCH", "/api/v1/projects/acme/web", token: "all", body: #"{"tpm": null, "plan": "team"}"#)
        #expect(patched.status == 200)
        let project = try #require(try fixture.store.project(slug: "acme/web"))
        #expect(project.limits.requestsPerMinute == 60)
        #expect(project.limits.tokensPerMinute == nil)
        #expect(project.plan == .team)
        let typo = await fixture.send("PATCH", "/api/v1/projects/acme/web", token: "all", body: #"{"rmp": 5}"#)
        #expect(typo.status == 400)
        #expect(typo.json?["error"]?["param"] == "rmp")
    }

    @Test func providerKeysAreWriteOnly() async throws {
        let secret = "sk-live-abcdefghijklmnop-WXYZ"
        let saved = await fixture.send("PUT", "/api/v1/projects/acme/web/providers/anthropic", token: "all",
                                       body: #"{"api_key": "\#(secret)", "base_url": "http://127.0.0.1:9/anthropic"}"#)
        #expect(saved.status == 200)
        let listed = await fixture.send("GET", "/api/v1/projects/acme/web/providers", token: "all")
        for answer in [saved, listed] {
            #expect(!answer.text.contains(secret))
            #expect(!answer.text.contains("abcdefghijklmnop"))
        }
        #expect(listed.json?["data"]?[0]?["api_key_last4"] == "WXYZ")
        let badURL = await fixture.send("PUT", "/api/v1/projects/acme/web/providers/openai", token: "all",
                                        body: #"{"api_key": "sk-1234567890abcdef", "base_url": "http://user:pw@host/"}"#)
        #expect(badURL.status == 400)
        #expect(badURL.json?["error"]?["param"] == "base_url")
    }

    @Test func createdKeyShowsItsSecretOnceAndNeverInLists() async throws {
        let created = await fixture.send("POST", "/api/v1/projects/acme/web/keys", token: "web", body: #"{"name": "ci", "rpm": 10}"#)
        #expect(created.status == 201)
        let secret = try #require(created.json?["secret"]?.stringValue)
        #expect(secret.hasPrefix("dpx_"))
        let listed = await fixture.send("GET", "/api/v1/projects/acme/web/keys", token: "web")
        #expect(listed.status == 200)
        #expect(!listed.text.contains(secret))
        guard case .valid = try fixture.store.authenticate(secret: secret) else {
            Issue.record("the new key must work at once")
            return
        }
    }

    @Test func scopedTokensCannotChangePrices() async throws {
        let answer = await fixture.send("PUT", "/api/v1/prices/gpt-4o", token: "acme", body: #"{"input": 1, "output": 2}"#)
        #expect(answer.status == 403)
        let allowed = await fixture.send("PUT", "/api/v1/prices/my-model", token: "all", body: #"{"input": 1.5, "output": 2}"#)
        #expect(allowed.status == 200)
        #expect(try fixture.store.prices().first { $0.model == "my-model" }?.input == 1.5)
    }

    @Test func badCursorsAndParametersAre400() async throws {
        #expect(await fixture.send("GET", "/api/v1/audit?cursor=garbage", token: "all").status == 400)
        #expect(await fixture.send("GET", "/api/v1/audit?limit=0", token: "all").status == 400)
        #expect(await fixture.send("GET", "/api/v1/usage?group_by=colour", token: "all").json?["error"]?["param"] == "group_by")
        #expect(await fixture.send("GET", "/api/v1/audit?from=yesterday", token: "all").json?["error"]?["param"] == "from")
        #expect(await fixture.send("DELETE", "/api/v1/usage", token: "all").status == 405)
        #expect(await fixture.send("GET", "/api/v1/nothing", token: "all").status == 404)
    }

    /// Every path of the OpenAPI document answers something other than 404 for a real object,
    /// so the document cannot name a route the router does not serve.
    @Test func openAPIDocumentNamesServedRoutes() async throws {
        let document = await fixture.send("GET", "/api/v1/openapi.json")
        #expect(document.status == 200)
        let paths = try #require(document.json?["paths"]?.objectValue)
        #expect(paths.count >= 13)
        for (template, operations) in paths {
            let path = template.replacingOccurrences(of: "{org}", with: "acme").replacingOccurrences(of: "{project}", with: "web")
                .replacingOccurrences(of: "{key_id}", with: fixture.keys["acme/web"]!).replacingOccurrences(of: "{provider}", with: "openai")
                .replacingOccurrences(of: "{model}", with: "gpt-4o").replacingOccurrences(of: "{request_id}", with: "req_x")
            for method in operations.objectValue?.keys ?? [] {
                let answer = await fixture.send(method.uppercased(), path, token: "viewer", body: "{}")
                // Read-only token: changes are 403, reads 200 (404 only for the unknown request id).
                #expect(answer.status != 405, "\(method) \(path)")
                if method == "get" && !path.contains("req_x") { #expect(answer.status == 200, "\(method) \(path)") }
            }
        }
    }
}
