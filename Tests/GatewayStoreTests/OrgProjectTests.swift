import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Orgs, projects and providers")
struct OrgProjectTests {
    @Test func createAndLookUp() throws {
        let store = try TestDatabase().store
        let limits = Limits(requestsPerMinute: 60, tokensPerMinute: 10_000, monthlyBudgetUSD: 12.5)
        let org = try store.createOrg(name: "acme", limits: limits)
        #expect(org.name == "acme" && org.limits == limits)
        #expect(try store.org(named: "acme") == org)
        #expect(try store.org(named: "nobody") == nil)

        let web = try store.createProject(orgName: "acme", name: "web", plan: .free, limits: Limits(requestsPerMinute: 5))
        let api = try store.createProject(orgName: "acme", name: "api")
        #expect(web.slug == "acme/web" && web.orgID == org.id && web.plan == .free && web.limits.requestsPerMinute == 5)
        #expect(api.plan == .pro && api.limits == .none)
        #expect(try store.project(slug: "acme/web") == web)
        #expect(try store.project(id: api.id) == api)
        #expect(try store.project(slug: "acme/nope") == nil)
        #expect(try store.project(slug: "acme") == nil)
        #expect(try store.project(id: 9999) == nil)
        #expect(try store.projects().map(\.slug) == ["acme/api", "acme/web"])
        #expect(try store.orgs() == [org])
    }

    @Test func sameProjectNameInTwoOrgs() throws {
        let store = try TestDatabase().store
        _ = try store.createOrg(name: "a")
        _ = try store.createOrg(name: "b")
        let first = try store.createProject(orgName: "a", name: "web")
        let second = try store.createProject(orgName: "b", name: "web")
        #expect(first.id != second.id)
        #expect(try store.project(slug: "b/web")?.id == second.id)
    }

    @Test func duplicatesAreRejected() throws {
        let store = try TestDatabase().store
        _ = try store.createOrg(name: "acme")
        let orgError = #expect(throws: StoreError.self) { try store.createOrg(name: "acme") }
        #expect(orgError?.kind == .constraint)
        #expect(orgError?.message.contains("already exists") == true)
        _ = try store.createProject(orgName: "acme", name: "web")
        let projectError = #expect(throws: StoreError.self) { try store.createProject(orgName: "acme", name: "web") }
        #expect(projectError?.kind == .constraint)
        #expect(try store.projects().count == 1)
    }

    @Test(arguments: ["", "Acme", "-acme", "_x", "a b", "a/b", "ä", String(repeating: "a", count: 64)])
    func invalidNamesAreRejected(name: String) throws {
        let store = try TestDatabase().store
        let error = #expect(throws: StoreError.self) { try store.createOrg(name: name) }
        #expect(error?.kind == .invalidArgument)
        _ = try store.createOrg(name: "ok")
        let projectError = #expect(throws: StoreError.self) { try store.createProject(orgName: "ok", name: name) }
        #expect(projectError?.kind == .invalidArgument)
    }

    @Test(arguments: ["a", "0", "acme-corp_2", String(repeating: "z", count: 63)])
    func validNamesAreAccepted(name: String) throws {
        let store = try TestDatabase().store
        #expect(try store.createOrg(name: name).name == name)
    }

    @Test func projectNeedsAnExistingOrg() throws {
        let store = try TestDatabase().store
        let error = #expect(throws: StoreError.self) { try store.createProject(orgName: "ghost", name: "web") }
        #expect(error?.kind == .notFound)
    }

    @Test func negativeLimitsAreRejected() throws {
        let store = try TestDatabase().store
        let error = #expect(throws: StoreError.self) { try store.createOrg(name: "a", limits: Limits(requestsPerMinute: -1)) }
        #expect(error?.kind == .invalidArgument)
    }

    @Test func providerSettingsUpsert() throws {
        let store = try TestDatabase().store
        _ = try store.createOrg(name: "acme")
        let project = try store.createProject(orgName: "acme", name: "web")
        try store.setProvider(projectID: project.id, provider: .openai, apiKey: Secret("sk-one"), baseURL: nil)
        try store.setProvider(projectID: project.id, provider: .anthropic, apiKey: Secret("sk-ant"), baseURL: "http://127.0.0.1:9000/anthropic")
        try store.setProvider(projectID: project.id, provider: .openai, apiKey: Secret("sk-two"), baseURL: "http://proxy")
        let all = try store.providers(projectID: project.id)
        #expect(all.map(\.provider) == [.anthropic, .openai])
        let openai = try #require(try store.providerSettings(projectID: project.id, provider: .openai))
        #expect(openai.apiKey.value == "sk-two" && openai.baseURL == "http://proxy")
        #expect(try store.providerSettings(projectID: project.id, provider: .google) == nil)
        #expect(all[0].effectiveBaseURL == "http://127.0.0.1:9000/anthropic")
        #expect(try store.removeProvider(projectID: project.id, provider: .anthropic))
        #expect(try store.providers(projectID: project.id).count == 1)

        let error = #expect(throws: StoreError.self) {
            try store.setProvider(projectID: 999, provider: .openai, apiKey: Secret("sk"), baseURL: nil)
        }
        #expect(error?.kind == .notFound)
    }
}

@Suite("Limits")
struct LimitTests {
    @Test func updateLimitsAtEveryScope() throws {
        let store = try TestDatabase().store
        _ = try store.createOrg(name: "acme")
        let project = try store.createProject(orgName: "acme", name: "web")
        let (key, secret) = try store.createKey(projectID: project.id)
        let limits = Limits(requestsPerMinute: 1, tokensPerMinute: 2, monthlyBudgetUSD: 3.5)
        try store.updateLimits(orgName: "acme", limits: limits)
        try store.updateLimits(projectID: project.id, limits: Limits(requestsPerMinute: 9))
        try store.updateLimits(keyID: key.id, limits: Limits(monthlyBudgetUSD: 0))
        guard case .valid(let auth) = try store.authenticate(secret: secret) else {
            Issue.record("expected a valid key")
            return
        }
        #expect(auth.org.limits == limits)
        #expect(auth.project.limits == Limits(requestsPerMinute: 9))
        #expect(auth.key.limits == Limits(monthlyBudgetUSD: 0))
        try store.updateLimits(orgName: "acme", limits: .none)
        #expect(try store.org(named: "acme")?.limits == Limits.none)
        #expect(throws: StoreError(.notFound, "no org 'ghost'")) { try store.updateLimits(orgName: "ghost", limits: .none) }
        #expect(throws: StoreError.self) { try store.updateLimits(projectID: 99, limits: .none) }
        #expect(throws: StoreError.self) { try store.updateLimits(keyID: "gk_000000000000", limits: .none) }
    }
}
