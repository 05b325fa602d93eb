import GatewayCore
import GatewayHTTP
import GatewayStore

/// The one place where failures become the errors clients see, in OpenAI's error shape.
public enum ErrorResponse {
    /// Any error the pipeline or the admin API can meet, as the client should see it.
    public static func gatewayError(for error: any Error) -> GatewayError {
        switch error {
        case let error as GatewayError:
            return error
        case let error as StoreError:
            switch error.kind {
            case .busy: return .serviceUnavailable("The gateway's database is busy; retry shortly.", retryAfter: 1)
            // The store's own refusals of an admin change; its messages never hold a bound value.
            case .notFound: return .notFound(error.message)
            case .invalidArgument: return .invalidRequest(error.message)
            case .constraint: return .conflict("That conflicts with an existing entry: \(error.message)")
            case .io, .other: return .serviceUnavailable("The gateway's database is unavailable.", retryAfter: 1)
            }
        default:
            return .internalError("The gateway failed to handle the request.")
        }
    }
}
