import Foundation
import GatewayAPI
import GatewayCore
import GatewayHTTP
import GatewayStore
import Logging

/// The dashboard's HTTP side: login and sessions, CSRF checks, form handling and page reads.
/// Pages are drawn by `GatewayDashboard` from view models filled here (`DashboardPages`); every
/// change goes through `AdminActions`, the same code as the REST API's.
final class DashboardController: Sendable {
    let database: AdminDatabase
    let configuration: AdminConfiguration
    let logger: Logger

    init(database: AdminDatabase, configuration: AdminConfiguration, logger: Logger) {
        self.database = database
        self.configuration = configuration
        self.logger = logger
    }

    /// What one dashboard request knows about its browser.
    struct Visit: Sendable {
        let request: HTTPRequest
        let requestID: String
        let writer: any ResponseWriter
        var sessionSecret: String?
        var access: AdminAccess?

        var csrf: String { sessionSecret.map(SessionCookie.csrfToken(forSession:)) ?? "" }
        var form: [String: String] {
            HTTPRequest.formFields(String(decoding: request.body, as: UTF8.self))
        }
    }

    func respond(to request: HTTPRequest, requestID: String, writer: any ResponseWriter) async {
        var visit = Visit(request: request, requestID: requestID, writer: writer)
        do {
            let segments = AdminApplication.segments(request.path)  // ["dashboard", ...]
            let rest = Array(segments.dropFirst())
            if rest.first == "assets" {
                try await asset(rest.dropFirst().joined(separator: "/"), visit: visit)
                return
            }
            if rest == ["login"] {
                try await login(visit)
                return
            }
            // Everything else needs a session.
            if let secret = SessionCookie.cookie(in: request),
               let token = try await database.run({ try $0.adminSession(secret: secret) }) {
                visit.sessionSecret = secret
                visit.access = AdminAccess(token: token)
            }
            guard visit.access != nil else {
                if request.method == "GET" {
                    try await redirect(visit, to: "/dashboard/login")
                } else {
                    throw GatewayError.forbidden("Your dashboard session has ended; log in again.")
                }
                return
            }
            if request.method == "POST" {
                try checkCSRF(visit)
                do {
                    try await post(rest, visit: visit)
                } catch let error as GatewayError where error.status == 400 || error.status == 409 {
                    // A form the store refused (a bad number, a duplicate): the same page again,
                    // with the reason on top, instead of an error page.
                    guard let html = try await redrawAfterRefusal(rest, message: error.message, visit: visit) else { throw error }
                    try await page(visit, status: error.status, html: html)
                }
            } else if request.method == "GET" || request.method == "HEAD" {
                try await get(rest, visit: visit)
            } else {
                throw GatewayError.methodNotAllowed("Use GET or POST.")
            }
        } catch is ClientDisconnected {
            // The browser left.
        } catch {
            let gatewayError = ErrorResponse.gatewayError(for: error)
            if gatewayError.status >= 500 {
                logger.error("dashboard request failed", metadata: ["request_id": "\(requestID)", "error": "\(gatewayError.code ?? gatewayError.type)"])
            }
            try? await page(visit, status: gatewayError.status, html: DashboardPages.error(gatewayError, visit: visit))
        }
    }

    // MARK: - Pages

    private func get(_ rest: [String], visit: Visit) async throws {
        let pages = DashboardPages(database: database, visit: visit)
        switch rest.count {
        case 0:
            try await page(visit, html: try await pages.overview())
        case 1 where rest[0] == "requests":
            try await page(visit, html: try await pages.requests())
        case 2 where rest[0] == "requests":
            try await page(visit, html: try await pages.requestDetail(rest[1]))
        case 1 where rest[0] == "prices":
            try await page(visit, html: try await pages.prices(notice: visit.request.queryParameters["notice"]))
        case 1 where rest[0] == "projects":
            try await page(visit, html: try await pages.projects())
        case 4 where rest[0] == "projects" && rest[3] == "keys":
            try await page(visit, html: try await pages.keys(rest[1] + "/" + rest[2], notice: visit.request.queryParameters["notice"]))
        case 4 where rest[0] == "projects" && rest[3] == "settings":
            try await page(visit, html: try await pages.settings(rest[1] + "/" + rest[2], notice: visit.request.queryParameters["notice"]))
        default:
            throw GatewayError.notFound("There is no dashboard page at \(visit.request.path).")
        }
    }

    // MARK: - Forms

    private func post(_ rest: [String], visit: Visit) async throws {
        guard let access = visit.access else { return }
        let actions = AdminActions(database: database, access: access)
        let form = visit.form
        let pages = DashboardPages(database: database, visit: visit)
        switch rest {
        case ["logout"]:
            if let secret = visit.sessionSecret { try await database.write { try $0.revokeAdminSession(secret: secret) } }
            var headers = pageHeaders(visit)
            headers.add(name: "Set-Cookie", value: SessionCookie.setCookie(SessionCookie.cookieName, value: "", maxAge: 0,
                                                                              secure: visit.request.isSecure))
            headers.add(name: "Location", value: "/dashboard/login")
            try await visit.writer.writeHead(status: 303, headers: headers)
        case ["prices"]:
            let price = Price(model: form["model"] ?? "", input: try FormValue.usd(form, "input", required: true) ?? 0,
                              output: try FormValue.usd(form, "output", required: true) ?? 0,
                              cachedInput: try FormValue.usd(form, "cached_input"), source: "set by operator")
            _ = try await actions.setPrice(price)
            try await redirect(visit, to: "/dashboard/prices?notice=price-saved")
        case _ where rest.count == 4 && rest[0] == "projects" && rest[3] == "keys":
            // A new key's secret is shown once, in this answer: never in a URL or a redirect.
            let slug = rest[1] + "/" + rest[2]
            let name = form["name"].flatMap { $0.isEmpty ? nil : $0 }
            let created = try await actions.createKey(slug, name: name, limits: try FormValue.limits(form))
            try await page(visit, html: try await pages.keys(slug, notice: "key-created", newSecret: (created.key.id, created.secret)))
        case _ where rest.count == 3 && rest[0] == "keys" && rest[2] == "limits":
            let limits = try FormValue.limits(form)
            let (_, project) = try await actions.updateKey(rest[1]) { _ in limits }
            try await redirect(visit, to: DashboardPages.keysPath(project.slug) + "?notice=key-updated")
        case _ where rest.count == 3 && rest[0] == "keys" && rest[2] == "revoke":
            let (_, project) = try await actions.revokeKey(rest[1])
            try await redirect(visit, to: DashboardPages.keysPath(project.slug) + "?notice=key-revoked")
        case _ where rest.count >= 5 && rest[0] == "projects" && rest[3] == "settings":
            let slug = rest[1] + "/" + rest[2]
            try await settingsForm(Array(rest.dropFirst(4)), slug: slug, form: form, actions: actions, visit: visit)
        default:
            throw GatewayError.notFound("There is no dashboard form at \(visit.request.path).")
        }
    }

    /// The page a refused form came from, drawn again with the refusal as an error flash.
    private func redrawAfterRefusal(_ rest: [String], message: String, visit: Visit) async throws -> String? {
        var pages = DashboardPages(database: database, visit: visit)
        pages.failure = message
        if rest == ["prices"] { return try await pages.prices(notice: nil) }
        if rest.count >= 4, rest[0] == "projects" {
            let slug = rest[1] + "/" + rest[2]
            if rest[3] == "keys" { return try await pages.keys(slug, notice: nil) }
            if rest[3] == "settings" { return try await pages.settings(slug, notice: nil) }
        }
        if rest.count == 3, rest[0] == "keys", let access = visit.access {
            let (_, project) = try await AdminActions(database: database, access: access).key(rest[1])
            return try await pages.keys(project.slug, notice: nil)
        }
        return nil
    }

    private func settingsForm(_ rest: [String], slug: String, form: [String: String], actions: AdminActions, visit: Visit) async throws {
        let notice: String
        switch rest {
        case ["limits"]:
            let plan = try form["plan"].map { text -> Plan in
                guard let plan = Plan(rawValue: text) else { throw GatewayError.invalidRequest("Choose a plan: free, pro or team.", param: "plan") }
                return plan
            }
            let limits = try FormValue.limits(form)
            _ = try await actions.updateProject(slug, plan: plan) { _ in limits }
            notice = "limits-saved"
        case ["providers"]:
            let provider = try AdminActions.provider(form["provider"] ?? "")
            let baseURL = form["base_url"].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0.trimmingCharacters(in: .whitespaces) }
            _ = try await actions.setProvider(slug, provider: provider, apiKey: form["api_key"] ?? "", baseURL: baseURL)
            notice = "provider-saved"
        case _ where rest.count == 3 && rest[0] == "providers" && rest[2] == "delete":
            try await actions.removeProvider(slug, provider: try AdminActions.provider(rest[1]))
            notice = "provider-removed"
        case ["fallbacks"]:
            let primary = try AdminActions.target(form["primary"] ?? "", param: "primary")
            let targets = try (form["to"] ?? "").split(separator: ",").map { try AdminActions.target(String($0), param: "to") }
            _ = try await actions.setFallback(slug, primary: primary, targets: targets)
            notice = "fallback-saved"
        case ["fallbacks", "delete"]:
            try await actions.removeFallback(slug, primary: try AdminActions.target(form["primary"] ?? "", param: "primary"))
            notice = "fallback-removed"
        default:
            throw GatewayError.notFound("There is no dashboard form at \(visit.request.path).")
        }
        try await redirect(visit, to: DashboardPages.settingsPath(slug) + "?notice=" + notice)
    }

    // MARK: - Login

    private func login(_ visit: Visit) async throws {
        let request = visit.request
        switch request.method {
        case "GET", "HEAD":
            // Double-submit token for the login form: the same random value in a SameSite=Strict
            // cookie and in the form.
            let token = SessionCookie.cookie(in: request, named: SessionCookie.loginCookieName) ?? AdminSecrets.randomToken(bytes: 24)
            var headers = pageHeaders(visit)
            headers.add(name: "Set-Cookie", value: SessionCookie.setCookie(SessionCookie.loginCookieName, value: token, maxAge: 3600,
                                                                              secure: request.isSecure))
            try await visit.writer.writeHead(status: 200, headers: headers)
            try await visit.writer.writeBody(Array(DashboardPages.login(csrf: token, error: nil).utf8), flush: false)
        case "POST":
            try checkOrigin(visit)
            let form = visit.form
            guard let cookie = SessionCookie.cookie(in: request, named: SessionCookie.loginCookieName),
                  let submitted = form["csrf"], AdminSecrets.constantTimeEquals(cookie, submitted) else {
                throw GatewayError.forbidden("The login form expired or came from another site; reload the login page and try again.")
            }
            let secret = (form["token"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let lifetime = configuration.sessionLifetimeSeconds
            let session = try await database.write { store -> (secret: String, expiresAt: Date)? in
                guard let token = try store.authenticateAdmin(secret: secret) else { return nil }
                return try store.createAdminSession(tokenID: token.id, lifetimeSeconds: lifetime)
            }
            guard let session else {
                var headers = pageHeaders(visit)
                headers.replaceOrAdd(name: "Content-Type", value: "text/html; charset=utf-8")
                try await visit.writer.writeHead(status: 401, headers: headers)
                try await visit.writer.writeBody(Array(DashboardPages.login(csrf: cookie, error: "That token is not valid, or was revoked.").utf8),
                                                 flush: false)
                return
            }
            var headers = pageHeaders(visit)
            headers.add(name: "Set-Cookie", value: SessionCookie.setCookie(SessionCookie.cookieName, value: session.secret,
                                                                              maxAge: lifetime, secure: request.isSecure))
            headers.add(name: "Set-Cookie", value: SessionCookie.setCookie(SessionCookie.loginCookieName, value: "", maxAge: 0,
                                                                              secure: request.isSecure))
            headers.add(name: "Location", value: "/dashboard")
            try await visit.writer.writeHead(status: 303, headers: headers)
        default:
            throw GatewayError.methodNotAllowed("Use GET or POST.")
        }
    }

    // MARK: - Checks

    /// A form must carry the session's CSRF token, and must not come from another site.
    private func checkCSRF(_ visit: Visit) throws {
        try checkOrigin(visit)
        guard let submitted = visit.form["csrf"], !visit.csrf.isEmpty, AdminSecrets.constantTimeEquals(submitted, visit.csrf) else {
            throw GatewayError.forbidden("This form is missing its security token, or it expired; reload the page and try again.")
        }
    }

    /// Browsers send `Origin` (and `Sec-Fetch-Site`) with every POST: a form posted from another
    /// site is refused even before its CSRF token is looked at. Host names are compared without
    /// ports, because Debian's stock `fastcgi_params` passes `Host` as nginx's `$host`, which has
    /// lost the port (`127.0.0.1:8080` arrives as `127.0.0.1`); the CSRF token still binds the
    /// form to this session.
    private func checkOrigin(_ visit: Visit) throws {
        let headers = visit.request.headers
        if let site = headers["sec-fetch-site"], site == "cross-site" {
            throw GatewayError.forbidden("Cross-site form posts are refused.")
        }
        guard let origin = headers["origin"] else { return }
        guard origin != "null", let host = headers["host"],
              let originHost = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first,
              Self.hostName(String(originHost)) == Self.hostName(host) else {
            throw GatewayError.forbidden("Cross-site form posts are refused.")
        }
    }

    /// "example.com:8443" → "example.com", "[::1]:8080" → "[::1]"; lowercased.
    static func hostName(_ authority: String) -> String {
        let text = authority.lowercased()
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") { return String(text[...close]) }
        return String(text.split(separator: ":", maxSplits: 1).first ?? "")
    }

    // MARK: - Writing

    /// Security headers on every dashboard answer.
    func pageHeaders(_ visit: Visit) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
        headers.add(name: "X-Request-Id", value: visit.requestID)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Content-Security-Policy",
                    value: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        headers.add(name: "X-Frame-Options", value: "DENY")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        return headers
    }

    private func page(_ visit: Visit, status: Int = 200, html: String) async throws {
        try await visit.writer.writeHead(status: status, headers: pageHeaders(visit))
        if visit.request.method != "HEAD" { try await visit.writer.writeBody(Array(html.utf8), flush: false) }
    }

    private func redirect(_ visit: Visit, to location: String) async throws {
        var headers = pageHeaders(visit)
        headers.add(name: "Location", value: location)
        try await visit.writer.writeHead(status: 303, headers: headers)
    }

    private func asset(_ name: String, visit: Visit) async throws {
        guard let (type, text) = DashboardPages.asset(name) else { throw GatewayError.notFound("No asset \(name).") }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Cache-Control", value: "public, max-age=300")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        try await visit.writer.writeHead(status: 200, headers: headers)
        try await visit.writer.writeBody(Array(text.utf8), flush: false)
    }
}

/// Form fields of the dashboard, read with errors that name the field.
enum FormValue {
    /// Empty = no limit.
    static func limits(_ form: [String: String]) throws -> Limits {
        Limits(requestsPerMinute: try integer(form, "rpm"), tokensPerMinute: try integer(form, "tpm"),
               monthlyBudgetUSD: try usd(form, "monthly_budget_usd"))
    }

    static func integer(_ form: [String: String], _ name: String) throws -> Int? {
        let text = (form[name] ?? "").replacingOccurrences(of: ",", with: "").trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return nil }
        guard let value = Int(text), value >= 0, value <= Int(Int32.max) else {
            throw GatewayError.invalidRequest("'\(name)' must be a whole number (or empty for no limit).", param: name)
        }
        return value
    }

    static func usd(_ form: [String: String], _ name: String, required: Bool = false) throws -> Double? {
        let text = (form[name] ?? "").replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "$", with: "")
            .trimmingCharacters(in: .whitespaces)
        if text.isEmpty {
            if required { throw GatewayError.invalidRequest("'\(name)' is required.", param: name) }
            return nil
        }
        guard let value = Double(text), value.isFinite, value >= 0, value <= 1e12 else {
            throw GatewayError.invalidRequest("'\(name)' must be a number of USD (or empty for none).", param: name)
        }
        return value
    }
}
