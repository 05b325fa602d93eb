import Foundation
import GatewayAPI
import GatewayCore
import GatewayHTTP
import GatewayStore
import Logging

/// Settings of the admin API and dashboard.
public struct AdminConfiguration: Sendable {
    /// How long a dashboard login lasts.
    public var sessionLifetimeSeconds: Int

    public init(sessionLifetimeSeconds: Int = 12 * 3600) {
        self.sessionLifetimeSeconds = max(60, sessionLifetimeSeconds)
    }
}

/// The operator's and project owner's side of the gateway: the REST API under `/api/v1` and the
/// dashboard under `/dashboard`, served by the same workers as `/v1` but on their own database
/// connection and queue (`AdminDatabase`), so that admin work never waits on or delays the request path.
public final class AdminApplication: Sendable {
    let database: AdminDatabase
    let configuration: AdminConfiguration
    let logger: Logger
    let dashboard: DashboardController

    public init(database: AdminDatabase, configuration: AdminConfiguration = AdminConfiguration(), logger: Logger) {
        self.database = database
        self.configuration = configuration
        self.logger = logger
        self.dashboard = DashboardController(database: database, configuration: configuration, logger: logger)
    }

    /// Whether a path belongs to the admin side (everything else is the data plane's).
    public static func handles(path: String) -> Bool {
        path == "/api" || path.hasPrefix("/api/") || path == "/dashboard" || path.hasPrefix("/dashboard/")
    }

    public func respond(to request: HTTPRequest, writer: any ResponseWriter) async {
        let requestID = "adm_" + AdminSecrets.randomToken(bytes: 12)
        if request.path == "/dashboard" || request.path.hasPrefix("/dashboard/") {
            await dashboard.respond(to: request, requestID: requestID, writer: writer)
            return
        }
        let response = AdminResponse(requestID: requestID, writer: writer)
        do {
            try await respondToAPI(request, response: response)
        } catch is ClientDisconnected {
            // Nothing to answer.
        } catch is ExportInterrupted {
            logger.error("audit export interrupted by a database failure", metadata: ["request_id": "\(requestID)"])
        } catch {
            let gatewayError = ErrorResponse.gatewayError(for: error)
            if gatewayError.status >= 500 {
                logger.error("admin request failed", metadata: ["request_id": "\(requestID)", "error": "\(gatewayError.code ?? gatewayError.type)"])
            }
            await response.error(error)
        }
    }

    private func respondToAPI(_ request: HTTPRequest, response: AdminResponse) async throws {
        let segments = Self.segments(request.path)
        guard segments.count >= 2, segments[0] == "api", segments[1] == "v1" else {
            throw GatewayError.notFound("Unknown route \(request.method) \(request.path). The admin API lives under /api/v1.")
        }
        let rest = Array(segments.dropFirst(2))
        // The API's description is public: it names routes, never data.
        if rest == ["openapi.json"] {
            guard request.method == "GET" else { throw GatewayError.methodNotAllowed("Use GET for /api/v1/openapi.json.") }
            try await response.json(OpenAPIDocument.document)
            return
        }
        if request.bodyTooLarge { throw GatewayError.requestTooLarge(limitBytes: 1 << 20) }
        let access = try await authenticate(request)
        try await AdminAPI(database: database).handle(request, segments: rest, access: access, response: response)
    }

    /// `Authorization: Bearer <admin token>`; a browser's dashboard session works too, for reads
    /// only (the export links on the dashboard), so a forged cross-site request can change nothing.
    func authenticate(_ request: HTTPRequest) async throws -> AdminAccess {
        if let header = request.headers["authorization"] {
            guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
                throw GatewayError.invalidAdminToken("Send an admin token as 'Authorization: Bearer dpa_…'.")
            }
            let secret = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            if secret.hasPrefix("dpx_") {
                throw GatewayError.invalidAdminToken("That is a gateway key, which only works on /v1. The admin API takes an admin token "
                                                     + "(deploxa-gateway admin-token create).")
            }
            guard let token = try await database.run({ try $0.authenticateAdmin(secret: secret) }) else {
                throw GatewayError.invalidAdminToken("The admin token is not valid, or was revoked.")
            }
            return AdminAccess(token: token)
        }
        if request.method == "GET", let session = SessionCookie.cookie(in: request) {
            if let token = try await database.run({ try $0.adminSession(secret: session) }) {
                return AdminAccess(token: token)
            }
        }
        throw GatewayError.invalidAdminToken("No admin token. Send 'Authorization: Bearer dpa_…' "
                                             + "(create one with deploxa-gateway admin-token create).")
    }

    /// Decoded path segments ("/api/v1/projects/acme/web" → ["api", "v1", "projects", "acme", "web"]).
    static func segments(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map { HTTPRequest.percentDecode(String($0), plusAsSpace: false) }
    }
}
