import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore

/// Checks `Authorization: Bearer <gateway key>` against the store.
struct Authenticator: Sendable {
    let store: any RequestStore

    /// The request's key. With `checkAtAdmission` the store may answer from memory; the key is
    /// then confirmed by the request's admission (`AuthenticatedKey.pendingCheck`), or compared
    /// with the key read again (`differsFromTheStore`) when the request fails before it.
    func authenticate(_ request: HTTPRequest, checkAtAdmission: Bool = false) throws -> AuthenticatedKey {
        guard let header = request.headers["authorization"] else {
            throw GatewayError.invalidAPIKey("You didn't provide an API key. Send your gateway key as 'Authorization: Bearer <key>'.")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw GatewayError.invalidAPIKey("The Authorization header must be 'Bearer <key>'.")
        }
        let secret = String(parts[1].trimmedOfSpaces)
        switch try store.authenticate(secret: secret, checkAtAdmission: checkAtAdmission) {
        case .valid(let key):
            return key
        case .revoked:
            throw GatewayError.invalidAPIKey("This gateway key has been revoked.")
        case .unknown:
            // Never echo the key back, not even partly.
            throw GatewayError.invalidAPIKey("Incorrect gateway key provided.")
        }
    }

    /// For a request that failed before its admission confirmed `remembered`, a key answered
    /// from memory: whether the key read now is another (revoked or unknown, other limits, a
    /// settings version that moved). False when the store cannot say (the request's own error
    /// stands then).
    func differsFromTheStore(_ remembered: AuthenticatedKey, _ request: HTTPRequest) -> Bool {
        let current: AuthenticatedKey
        do {
            current = try authenticate(request)
        } catch is GatewayError {
            return true
        } catch {
            return false
        }
        var confirmed = remembered
        confirmed.pendingCheck = nil
        return current != confirmed
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (cheaper than Foundation's trimming, and
    /// on every request's path).
    var trimmedOfSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return self[endIndex...] }
        return self[first...last]
    }
}
