import Crypto
import Foundation
import GatewayHTTP

/// Random tokens for the admin side (request ids, login CSRF), from the system's CSPRNG.
enum AdminSecrets {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let characters = (0..<(count * 4 / 3 + 1)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return String(decoding: characters, as: UTF8.self)
    }

    /// Equal-time comparison, so a CSRF check leaks nothing through its timing.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(left, right) { difference |= x ^ y }
        return difference == 0
    }
}

/// The dashboard's login session as the browser holds it: the cookie, and the CSRF token
/// derived from it. The CSRF token is a hash of the session secret, so the server needs to store
/// nothing more than the session's own hash and an attacker without the cookie cannot compute it.
enum SessionCookie {
    static let cookieName = "deploxa_session"
    /// Before login there is no session: the login form's CSRF token is a random value that must
    /// equal this cookie's (double submit), and the cookie is `SameSite=Strict`.
    static let loginCookieName = "deploxa_login_csrf"

    static func cookie(in request: HTTPRequest, named name: String = cookieName) -> String? {
        guard let header = request.headers["cookie"] else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == name else { continue }
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            return value.isEmpty || value.utf8.count > 256 ? nil : value
        }
        return nil
    }

    static func csrfToken(forSession secret: String) -> String {
        let digest = SHA256.hash(data: Array(("deploxa-dashboard-csrf:" + secret).utf8))
        return digest.prefix(24).map { String(format: "%02x", $0) }.joined()
    }

    /// `Set-Cookie` for a cookie the dashboard sets: `HttpOnly`, `SameSite=Strict`, path-bound,
    /// `Secure` when the browser came over HTTPS. `maxAge` 0 deletes it.
    static func setCookie(_ name: String, value: String, maxAge: Int, secure: Bool) -> String {
        var cookie = "\(name)=\(value); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(maxAge)"
        if secure { cookie += "; Secure" }
        return cookie
    }
}
