import GatewayCore
import GatewayStore

/// What one admin request may see and change: its token's scope and whether it is read-only.
/// Every route asks this type before it reads or changes a project, a key or a price, so the
/// scope rule ("outside the scope is 404, never a hint that it exists") lives in one place.
struct AdminAccess: Sendable {
    let token: AdminToken

    var isReadOnly: Bool { token.readOnly }
    var isInstallationWide: Bool { if case .installation = token.scope { return true } else { return false } }

    /// 403 for a read-only token; every change calls this first.
    func requireWrite() throws {
        if token.readOnly { throw GatewayError.forbidden("This admin token is read-only.") }
    }

    /// Whether a project lies inside the token's scope.
    func covers(_ project: Project) -> Bool {
        switch token.scope {
        case .installation: return true
        case .org(let id, _): return project.orgID == id
        case .project(let id, _, _): return project.id == id
        }
    }

    /// Whether an org name lies inside the token's scope (creating a project in it).
    func covers(orgName: String) -> Bool {
        switch token.scope {
        case .installation: return true
        case .org(_, let name): return name == orgName
        case .project: return false
        }
    }

    /// The project named `org/project`, or 404 when it does not exist *or* lies outside the scope
    /// (the same answer, so a scoped token cannot probe other tenants' names).
    func project(_ slug: String, in store: any AdminStore) throws -> Project {
        guard let project = try store.project(slug: slug), covers(project) else { throw Self.projectNotFound(slug) }
        return project
    }

    /// The key with that id, or 404 when unknown or outside the scope.
    func key(_ id: String, in store: any AdminStore) throws -> (key: GatewayKey, project: Project) {
        guard let key = try store.key(id: id), let project = try store.project(id: key.projectID), covers(project) else {
            throw GatewayError.notFound("No key '\(id)'.")
        }
        return (key, project)
    }

    /// `filter` with the token's scope, and the project named `projectSlug` (if any) as its
    /// project: a project or a key filter outside the scope is 404, as if it did not exist.
    func scoped(_ filter: AuditFilter, projectSlug: String?, in store: any AdminStore) throws -> AuditFilter {
        var filter = filter
        filter.scope = token.scope
        if let keyID = filter.keyID { _ = try key(keyID, in: store) }
        if let projectSlug { filter.projectID = try project(projectSlug, in: store).id }
        return filter
    }

    /// Projects inside the scope, for lists.
    func projects(in store: any AdminStore) throws -> [Project] {
        try store.projects().filter(covers)
    }

    static func projectNotFound(_ slug: String) -> GatewayError {
        .notFound("No project '\(slug)'.")
    }

    /// How the scope reads on a page or in a list: "whole installation", "org acme", "project acme/web".
    var scopeDescription: String {
        switch token.scope {
        case .installation: return "whole installation"
        case .org(_, let name): return "org \(name)"
        case .project(_, _, let slug): return "project \(slug)"
        }
    }
}
