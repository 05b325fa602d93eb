import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore

/// Checks `Authorization: Bearer <gateway key>` against the store.
struct Authenticator: Sendable {
    let store: any RequestStore

    /// The request's key. With `checkAtAdmission` the store may answer from memory; the key is
    /// then confirmed by the request's admission (`AuthenticatedKey.pendingCheck`), or by
    /// `refusalOfUnconfirmedKey` when the request ends before it.
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

    /// For a request that ends before its admission confirmed a key answered from memory: the
    /// 401 it must get instead if the key is no longer valid. Nil when the key is still valid,
    /// or when the store cannot say (the request's own error stands then).
    func refusalOfUnconfirmedKey(_ request: HTTPRequest) -> GatewayError? {
        do {
            _ = try authenticate(request)
            return nil
        } catch let error as GatewayError {
            return error
        } catch {
            return nil
        }
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
