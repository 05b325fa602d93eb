import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore

/// The REST routes under `/api/v1` (docs/admin-api.md). Each route reads its token's `AdminAccess`
/// first; store work runs on `AdminDatabase`'s queue, never on the request path's connection.
struct AdminAPI {
    let database: AdminDatabase

    /// Routes an authenticated request. `segments` are the decoded path segments after `/api/v1`.
    func handle(_ request: HTTPRequest, segments: [String], access: AdminAccess, response: AdminResponse) async throws {
        let method = request.method
        switch segments.first {
        case "audit":
            let routes = AuditRoutes(database: database, access: access)
            if segments.count == 1 {
                try allow(method, ["GET"])
                try await routes.list(AdminQuery(parameters: request.queryParameters), response: response)
                return
            }
            if segments.count == 2 {
                try allow(method, ["GET"])
                try await routes.detail(requestID: segments[1], response: response)
                return
            }
        case "usage" where segments.count == 1:
            try allow(method, ["GET"])
            try await AuditRoutes(database: database, access: access).usage(AdminQuery(parameters: request.queryParameters), response: response)
            return
        case "projects":
            try await projectRoutes(request, segments: Array(segments.dropFirst()), access: access, response: response)
            return
        case "keys" where segments.count == 2:
            let routes = SettingsRoutes(database: database, access: access)
            switch method {
            case "PATCH": try await routes.updateKey(id: segments[1], body: AdminRequestBody(request), response: response)
            case "DELETE": try await routes.revokeKey(id: segments[1], response: response)
            case "GET": try await routes.key(id: segments[1], response: response)
            default: throw methodNotAllowed(method, ["GET", "PATCH", "DELETE"])
            }
            return
        case "prices":
            let routes = SettingsRoutes(database: database, access: access)
            if segments.count == 1 {
                try allow(method, ["GET"])
                try await routes.prices(response: response)
                return
            }
            // Model names may hold a '/', so the rest of the path is the model.
            try allow(method, ["PUT"])
            try await routes.setPrice(model: segments.dropFirst().joined(separator: "/"), body: AdminRequestBody(request), response: response)
            return
        default:
            break
        }
        throw GatewayError.notFound("Unknown route \(method) \(request.path).")
    }

    private func projectRoutes(_ request: HTTPRequest, segments: [String], access: AdminAccess, response: AdminResponse) async throws {
        let method = request.method
        let routes = SettingsRoutes(database: database, access: access)
        if segments.isEmpty {
            switch method {
            case "GET": try await routes.projects(response: response)
            case "POST": try await routes.createProject(body: AdminRequestBody(request), response: response)
            default: throw methodNotAllowed(method, ["GET", "POST"])
            }
            return
        }
        guard segments.count >= 2 else { throw GatewayError.notFound("Name a project as /api/v1/projects/ORG/PROJECT.") }
        let slug = segments[0] + "/" + segments[1]
        let rest = Array(segments.dropFirst(2))
        switch rest.first {
        case nil:
            switch method {
            case "GET": try await routes.project(slug, response: response)
            case "PATCH": try await routes.updateProject(slug, body: AdminRequestBody(request), response: response)
            default: throw methodNotAllowed(method, ["GET", "PATCH"])
            }
        case "keys" where rest.count == 1:
            switch method {
            case "GET": try await routes.keys(slug, response: response)
            case "POST": try await routes.createKey(slug, body: AdminRequestBody(request), response: response)
            default: throw methodNotAllowed(method, ["GET", "POST"])
            }
        case "providers" where rest.count == 1:
            try allow(method, ["GET"])
            try await routes.providers(slug, response: response)
        case "providers" where rest.count == 2:
            switch method {
            case "PUT": try await routes.setProvider(slug, provider: rest[1], body: AdminRequestBody(request), response: response)
            case "DELETE": try await routes.removeProvider(slug, provider: rest[1], response: response)
            default: throw methodNotAllowed(method, ["PUT", "DELETE"])
            }
        case "fallbacks" where rest.count == 1:
            try allow(method, ["GET"])
            try await routes.fallbacks(slug, response: response)
        case "fallbacks" where rest.count >= 3:
            let primary = rest[1] + "/" + rest.dropFirst(2).joined(separator: "/")
            switch method {
            case "PUT": try await routes.setFallback(slug, primary: primary, body: AdminRequestBody(request), response: response)
            case "DELETE": try await routes.removeFallback(slug, primary: primary, response: response)
            default: throw methodNotAllowed(method, ["PUT", "DELETE"])
            }
        default:
            // Scope first: a route under another tenant's project is 404 like an unknown project.
            _ = try await database.run { try access.project(slug, in: $0) }
            throw GatewayError.notFound("Unknown route \(method) \(request.path).")
        }
    }

    private func allow(_ method: String, _ allowed: [String]) throws {
        guard allowed.contains(method) else { throw methodNotAllowed(method, allowed) }
    }

    private func methodNotAllowed(_ method: String, _ allowed: [String]) -> GatewayError {
        .methodNotAllowed("\(method) is not allowed here; use \(allowed.joined(separator: " or ")).")
    }
}
