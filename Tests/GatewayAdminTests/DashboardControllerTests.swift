import Foundation
import GatewayAdmin
import GatewayCore
import GatewayHTTP
import GatewayStore
import GatewayTesting
import Testing

/// The dashboard's HTTP rules in one process: login (double-submit CSRF), the session cookie's
/// flags, CSRF and same-site checks on every form, security headers, and a refused form drawn
/// again with its reason.
@Suite("Dashboard controller")
struct DashboardControllerTests {
    let fixture: AdminFixture

    init() throws { fixture = try AdminFixture() }

    func cookie(_ writer: RecordingWriter, _ name: String) -> String? {
        for (field, value) in writer.headers where field.lowercased() == "set-cookie" && value.hasPrefix(name + "=") {
            return String(value.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }

    /// Logs in with `token` and returns the session cookie.
    func logIn(_ token: String = "web") async throws -> String {
        let form = await fixture.send("GET", "/dashboard/login")
        let csrf = try #require(cookie(form, "deploxa_login_csrf"))
        #expect(form.text.contains(#"name="csrf" value="\#(csrf)""#))
        let posted = await fixture.send("POST", "/dashboard/login", body: "token=\(fixture.tokens[token]!)&csrf=\(csrf)",
                                        headers: [("cookie", "deploxa_login_csrf=\(csrf)"), ("origin", "http://gw.example:8080"),
                                                  ("host", "gw.example")])
        #expect(posted.status == 303)
        let setCookie = posted.headers.first { $0.name.lowercased() == "set-cookie" && $0.value.hasPrefix("deploxa_session=") }?.value ?? ""
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
        #expect(!setCookie.contains("Secure"), "plain HTTP: no Secure flag")
        return try #require(cookie(posted, "deploxa_session"))
    }

    func csrf(forSession session: String) async throws -> String {
        let page = await fixture.send("GET", "/dashboard/projects/acme/web/keys", headers: [("cookie", "deploxa_session=\(session)")])
        #expect(page.status == 200)
        let marker = #"name="csrf" value=""#
        let start = try #require(page.text.range(of: marker)).upperBound
        return String(page.text[start...].prefix { $0 != "\"" })
    }

    @Test func pagesNeedASessionAndCarrySecurityHeaders() async throws {
        let anonymous = await fixture.send("GET", "/dashboard")
        #expect(anonymous.status == 303)
        #expect(anonymous.headers["location"] == "/dashboard/login")
        let session = try await logIn()
        let overview = await fixture.send("GET", "/dashboard", headers: [("cookie", "deploxa_session=\(session)")])
        #expect(overview.status == 200)
        let policy = try #require(overview.headers["content-security-policy"])
        #expect(!policy.contains("unsafe-inline"))
        #expect(overview.headers["x-frame-options"] == "DENY")
        #expect(overview.text.contains("project acme/web"))
    }

    @Test func loginWithoutTheDoubleSubmitTokenOrWithAGatewayKeyIsRefused() async throws {
        let noCookie = await fixture.send("POST", "/dashboard/login", body: "token=\(fixture.tokens["all"]!)&csrf=abc")
        #expect(noCookie.status == 403)
        #expect(cookie(noCookie, "deploxa_session") == nil)
        let key = try fixture.store.createKey(projectID: try #require(try fixture.store.project(slug: "acme/web")).id).secret
        let withKey = await fixture.send("POST", "/dashboard/login", body: "token=\(key)&csrf=abc", headers: [("cookie", "deploxa_login_csrf=abc")])
        #expect(withKey.status == 401)
        #expect(cookie(withKey, "deploxa_session") == nil)
        #expect(!withKey.text.contains(key))
    }

    @Test func formsNeedTheirCSRFTokenAndTheSameSite() async throws {
        let session = try await logIn()
        let csrf = try await csrf(forSession: session)
        let before = try fixture.store.keys(projectID: try #require(try fixture.store.project(slug: "acme/web")).id).count
        for (body, extra) in [("name=a", [(String, String)]()), ("name=b&csrf=wrong", []),
                              ("name=c&csrf=\(csrf)", [("origin", "http://evil.example")]),
                              ("name=d&csrf=\(csrf)", [("sec-fetch-site", "cross-site")])] {
            let answer = await fixture.send("POST", "/dashboard/projects/acme/web/keys", body: body,
                                            headers: [("cookie", "deploxa_session=\(session)"), ("host", "gw.example")] + extra)
            #expect(answer.status == 403, "\(body) \(extra)")
        }
        #expect(try fixture.store.keys(projectID: try #require(try fixture.store.project(slug: "acme/web")).id).count == before)
        let created = await fixture.send("POST", "/dashboard/projects/acme/web/keys", body: "name=ok&csrf=\(csrf)",
                                         headers: [("cookie", "deploxa_session=\(session)"), ("host", "gw.example"),
                                                   ("origin", "https://gw.example")])
        #expect(created.status == 200)
        #expect(created.text.contains("dpx_"), "the new secret is shown once, in this answer")
    }

    @Test func aRefusedFormIsDrawnAgainWithItsReason() async throws {
        let session = try await logIn()
        let csrf = try await csrf(forSession: session)
        let answer = await fixture.send("POST", "/dashboard/projects/acme/web/settings/limits", body: "plan=pro&rpm=lots&csrf=\(csrf)",
                                        headers: [("cookie", "deploxa_session=\(session)")])
        #expect(answer.status == 400)
        #expect(answer.text.contains("rpm"))
        #expect(answer.text.contains("flash-error"))
        #expect(try fixture.store.project(slug: "acme/web")?.limits.requestsPerMinute == nil)
    }

    @Test func logoutEndsTheSessionAndScopedSessionsSeeOnlyTheirProject() async throws {
        let session = try await logIn("web")
        let csrf = try await csrf(forSession: session)
        let other = await fixture.send("GET", "/dashboard/projects/rival/app/keys", headers: [("cookie", "deploxa_session=\(session)")])
        #expect(other.status == 404)
        let out = await fixture.send("POST", "/dashboard/logout", body: "csrf=\(csrf)", headers: [("cookie", "deploxa_session=\(session)")])
        #expect(out.status == 303)
        let after = await fixture.send("GET", "/dashboard", headers: [("cookie", "deploxa_session=\(session)")])
        #expect(after.status == 303, "the old cookie no longer works")
    }
}
