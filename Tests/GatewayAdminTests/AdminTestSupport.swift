import Foundation
import GatewayAdmin
import GatewayCore
import GatewayHTTP
import GatewayStore
import GatewayTesting
import Logging

/// An `AdminApplication` on a fresh, migrated SQLite file with two orgs: acme (projects web and
/// mobile) and rival (project app), one gateway key each, and admin tokens of every scope.
final class AdminFixture: @unchecked Sendable {
    let folder: URL
    let store: GatewayStore
    let application: AdminApplication
    let tokens: [String: String]
    let keys: [String: String]

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("deploxa-admin-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("gateway.db").path
        store = try GatewayStore(path: path)
        try store.migrate()
        var keys: [String: String] = [:]
        for (org, projects) in [("acme", ["web", "mobile"]), ("rival", ["app"])] {
            _ = try store.createOrg(name: org)
            for name in projects {
                let project = try store.createProject(orgName: org, name: name)
                keys["\(org)/\(name)"] = try store.createKey(projectID: project.id, name: "k").key.id
            }
        }
        self.keys = keys
        var tokens: [String: String] = [:]
        tokens["all"] = try store.createAdminToken(name: "all", orgName: nil, projectSlug: nil, readOnly: false).secret
        tokens["acme"] = try store.createAdminToken(name: "acme", orgName: "acme", projectSlug: nil, readOnly: false).secret
        tokens["web"] = try store.createAdminToken(name: "web", orgName: nil, projectSlug: "acme/web", readOnly: false).secret
        tokens["viewer"] = try store.createAdminToken(name: "viewer", orgName: nil, projectSlug: nil, readOnly: true).secret
        self.tokens = tokens
        application = AdminApplication(database: AdminDatabase(store: try GatewayStore(path: path)), logger: Logger(label: "test"))
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// One request through the admin application, as nginx would hand it over.
    func send(_ method: String, _ uri: String, token: String? = nil, body: String? = nil,
              headers: [(String, String)] = []) async -> RecordingWriter {
        let (path, query) = HTTPRequest.splitURI(uri)
        var fields = HTTPHeaders(headers)
        if let token { fields.add(name: "authorization", value: "Bearer \(tokens[token] ?? token)") }
        let request = HTTPRequest(method: method, path: path, query: query, headers: fields, body: Array((body ?? "").utf8))
        let writer = RecordingWriter()
        await application.respond(to: request, writer: writer)
        return writer
    }
}

extension RecordingWriter {
    var json: JSON? { try? JSON.parse(body) }
    var errorCode: String? { json?["error"]?["code"]?.stringValue }
}
