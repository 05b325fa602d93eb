import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore

/// Checks `Authorization: Bearer <gateway key>` against the store.
struct Authenticator: Sendable {
    let store: GatewayStore

    func authenticate(_ request: HTTPRequest) throws -> AuthenticatedKey {
        guard let header = request.headers["authorization"] else {
            throw GatewayError.invalidAPIKey("You didn't provide an API key. Send your gateway key as 'Authorization: Bearer <key>'.")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw GatewayError.invalidAPIKey("The Authorization header must be 'Bearer <key>'.")
        }
        let secret = parts[1].trimmingCharacters(in: .whitespaces)
        switch try store.authenticate(secret: secret) {
        case .valid(let key):
            return key
        case .revoked:
            throw GatewayError.invalidAPIKey("This gateway key has been revoked.")
        case .unknown:
            // Never echo the key back, not even partly.
            throw GatewayError.invalidAPIKey("Incorrect gateway key provided.")
        }
    }
}
