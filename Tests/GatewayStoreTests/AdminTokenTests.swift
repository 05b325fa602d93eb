import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Admin tokens and sessions")
struct AdminTokenTests {
    private func setUp() throws -> (TestDatabase, Project) {
        let database = try TestDatabase()
        _ = try database.store.createOrg(name: "acme")
        let project = try database.store.createProject(orgName: "acme", name: "web")
        return (database, project)
    }

    @Test func formatScopesAndAuthentication() throws {
        let (database, project) = try setUp()
        let store = database.store
        let (root, rootSecret) = try store.createAdminToken(name: "ops", orgName: nil, projectSlug: nil, readOnly: false)
        #expect(root.id.wholeMatch(of: /at_[0-9a-f]{12}/) != nil)
        #expect(rootSecret.wholeMatch(of: /dpa_[0-9a-f]{12}_[0-9A-Za-z]{40}/) != nil)
        #expect(rootSecret.dropFirst(4).prefix(12) == root.id.dropFirst(3))
        #expect(root.scope == .installation)
        #expect(try store.authenticateAdmin(secret: rootSecret) == root)

        let (org, _) = try store.createAdminToken(name: nil, orgName: "acme", projectSlug: nil, readOnly: true)
        #expect(org.scope == .org(id: project.orgID, name: "acme"))
        #expect(org.readOnly)
        let (scoped, scopedSecret) = try store.createAdminToken(name: nil, orgName: nil, projectSlug: "acme/web", readOnly: false)
        #expect(scoped.scope == .project(id: project.id, orgID: project.orgID, slug: "acme/web"))
        #expect(try store.authenticateAdmin(secret: scopedSecret)?.scope == scoped.scope)

        #expect(try store.adminTokens().map(\.id).sorted() == [root.id, org.id, scoped.id].sorted())
        #expect(try store.adminTokens().count == 3)

        // Wrong tail, malformed, empty: nil.
        #expect(try store.authenticateAdmin(secret: String(rootSecret.dropLast()) + (rootSecret.hasSuffix("A") ? "B" : "A")) == nil)
        #expect(try store.authenticateAdmin(secret: "dpa_nothing") == nil)
        #expect(try store.authenticateAdmin(secret: "") == nil)
    }

    @Test func scopeArgumentsAreChecked() throws {
        let (database, _) = try setUp()
        let store = database.store
        #expect(throws: StoreError.self) { try store.createAdminToken(name: nil, orgName: "acme", projectSlug: "acme/web", readOnly: false) }
        do {
            _ = try store.createAdminToken(name: nil, orgName: "nope", projectSlug: nil, readOnly: false)
            Issue.record("expected notFound")
        } catch let error as StoreError { #expect(error.kind == .notFound) }
        do {
            _ = try store.createAdminToken(name: nil, orgName: nil, projectSlug: "acme/nope", readOnly: false)
            Issue.record("expected notFound")
        } catch let error as StoreError { #expect(error.kind == .notFound) }
    }

    /// The two kinds of secret share a shape but never each other's prefix or table.
    @Test func gatewayKeysAndAdminTokensNeverCross() throws {
        let (database, project) = try setUp()
        let store = database.store
        let (_, keySecret) = try store.createKey(projectID: project.id)
        let (_, adminSecret) = try store.createAdminToken(name: nil, orgName: nil, projectSlug: nil, readOnly: false)
        #expect(try store.authenticateAdmin(secret: keySecret) == nil)
        #expect(try store.authenticate(secret: adminSecret) == .unknown)
        // Even with the other kind's prefix swapped in, the hash does not match.
        #expect(try store.authenticateAdmin(secret: "dpa_" + keySecret.dropFirst(4)) == nil)
        #expect(try store.authenticate(secret: "dpx_" + adminSecret.dropFirst(4)) == .unknown)
    }

    @Test func revocationEndsTokenAndSessions() throws {
        let (database, _) = try setUp()
        let store = database.store
        let (token, secret) = try store.createAdminToken(name: nil, orgName: nil, projectSlug: nil, readOnly: false)
        let session = try store.createAdminSession(tokenID: token.id, lifetimeSeconds: 3600)
        #expect(session.secret.count >= 43)
        #expect(session.secret.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(try store.adminSession(secret: session.secret) == token)
        #expect(try store.revokeAdminToken(id: token.id))
        #expect(try store.revokeAdminToken(id: token.id) == false)
        #expect(try store.revokeAdminToken(id: "at_000000000000") == false)
        #expect(try store.authenticateAdmin(secret: secret) == nil)
        #expect(try store.adminSession(secret: session.secret) == nil)
        #expect(try store.adminTokens().first?.revokedAt != nil)
        #expect(throws: StoreError.self) { try store.createAdminSession(tokenID: token.id, lifetimeSeconds: 60) }
    }

    @Test func sessionsExpireLogOutAndArePruned() throws {
        let (database, _) = try setUp()
        let store = database.store
        let (token, _) = try store.createAdminToken(name: nil, orgName: nil, projectSlug: nil, readOnly: true)
        let first = try store.createAdminSession(tokenID: token.id, lifetimeSeconds: 60)
        let second = try store.createAdminSession(tokenID: token.id, lifetimeSeconds: 7200)
        #expect(first.secret != second.secret)
        #expect(try store.adminSession(secret: first.secret) == token)
        #expect(try store.adminSession(secret: first.secret, now: first.expiresAt) == nil)
        #expect(try store.adminSession(secret: "garbage") == nil)
        #expect(try store.pruneAdminSessions(now: Date().addingTimeInterval(120)) == 1)
        #expect(try store.adminSession(secret: second.secret) == token)
        try store.revokeAdminSession(secret: second.secret)
        #expect(try store.adminSession(secret: second.secret) == nil)
        let hashes = try store.connection.query("SELECT hex(secret_hash) FROM admin_sessions") { $0.string(0) }
        #expect(hashes.isEmpty)
    }
}
