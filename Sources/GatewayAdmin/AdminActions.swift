import Foundation
import GatewayCore
import GatewayStore

/// Every read and change the admin side offers, with its scope and read-only checks, shared by
/// the REST routes and the dashboard's forms (which differ only in how they read input and
/// show the result). Runs on `AdminDatabase`'s queue.
struct AdminActions: Sendable {
    let database: AdminDatabase
    let access: AdminAccess

    // MARK: - Projects

    func projects() async throws -> [(project: Project, monthToDate: (requests: Int, costUSD: Double))] {
        let access = self.access
        return try await database.run { store in
            try access.projects(in: store).map { ($0, try Self.monthToDate($0, store)) }
        }
    }

    func project(_ slug: String) async throws -> (project: Project, monthToDate: (requests: Int, costUSD: Double)) {
        let access = self.access
        return try await database.run { store in
            let project = try access.project(slug, in: store)
            return (project, try Self.monthToDate(project, store))
        }
    }

    func createProject(slug: String, plan: Plan, limits: Limits) async throws -> Project {
        try access.requireWrite()
        let parts = slug.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw GatewayError.invalidRequest("'name' must be \"org/project\".", param: "name")
        }
        let orgName = String(parts[0]), projectName = String(parts[1])
        // A token cannot create outside its scope; to it the org does not exist.
        guard access.covers(orgName: orgName) else { throw GatewayError.notFound("No org '\(orgName)'.") }
        let isInstallationWide = access.isInstallationWide
        return try await database.write { store in
            if try store.project(slug: slug) != nil { throw GatewayError.conflict("Project '\(slug)' exists already.") }
            if try store.org(named: orgName) == nil {
                guard isInstallationWide else { throw GatewayError.notFound("No org '\(orgName)'.") }
                _ = try store.createOrg(name: orgName, limits: .none)
            }
            return try store.createProject(orgName: orgName, name: projectName, plan: plan, limits: limits)
        }
    }

    /// `change` gets the current limits and returns the new ones; `plan` nil keeps the plan.
    func updateProject(_ slug: String, plan: Plan?, change: @escaping @Sendable (Limits) throws -> Limits) async throws -> Project {
        try access.requireWrite()
        let access = self.access
        return try await database.write { store in
            let project = try access.project(slug, in: store)
            let limits = try change(project.limits)
            if limits != project.limits { try store.updateLimits(projectID: project.id, limits: limits) }
            if let plan, plan != project.plan { try store.updatePlan(projectID: project.id, plan: plan) }
            return try store.project(id: project.id) ?? project
        }
    }

    /// This UTC month's requests (from the usage rollups) and spend (the month-to-date total
    /// that the project's budget is checked against).
    static func monthToDate(_ project: Project, _ store: any AdminStore, now: Date = Date()) throws -> (requests: Int, costUSD: Double) {
        let month = SpendAmount.utcCalendar.dateInterval(of: .month, for: now)!
        let requests = try store.usageTotal(projectID: project.id, from: month.start, to: month.end).requests
        return (requests, try store.monthToDate(LimitScope(.project, String(project.id)), month: SpendAmount.month(of: now)).costUSD)
    }

    // MARK: - Keys

    func keys(_ slug: String) async throws -> (project: Project, keys: [GatewayKey]) {
        let access = self.access
        return try await database.run { store in
            let project = try access.project(slug, in: store)
            return (project, try store.keys(projectID: project.id))
        }
    }

    func key(_ id: String) async throws -> (key: GatewayKey, project: Project) {
        let access = self.access
        return try await database.run { try access.key(id, in: $0) }
    }

    func createKey(_ slug: String, name: String?, limits: Limits) async throws -> (key: GatewayKey, project: Project, secret: String) {
        try access.requireWrite()
        if let name, name.utf8.count > 128 { throw GatewayError.invalidRequest("'name' is longer than 128 bytes.", param: "name") }
        let access = self.access
        return try await database.write { store in
            let project = try access.project(slug, in: store)
            let (key, secret) = try store.createKey(projectID: project.id, name: name, limits: limits)
            return (key, project, secret)
        }
    }

    func updateKey(_ id: String, change: @escaping @Sendable (Limits) throws -> Limits) async throws -> (key: GatewayKey, project: Project) {
        try access.requireWrite()
        let access = self.access
        return try await database.write { store in
            let (key, project) = try access.key(id, in: store)
            let limits = try change(key.limits)
            if limits != key.limits { try store.updateLimits(keyID: id, limits: limits) }
            return (try store.key(id: id) ?? key, project)
        }
    }

    func revokeKey(_ id: String) async throws -> (key: GatewayKey, project: Project) {
        try access.requireWrite()
        let access = self.access
        return try await database.write { store in
            let (key, project) = try access.key(id, in: store)
            _ = try store.revokeKey(id: id)
            return (try store.key(id: id) ?? key, project)
        }
    }

    // MARK: - Provider settings

    func providers(_ slug: String) async throws -> (project: Project, settings: [ProviderSettings]) {
        let access = self.access
        return try await database.run { store in
            let project = try access.project(slug, in: store)
            return (project, try store.providers(projectID: project.id))
        }
    }

    func setProvider(_ slug: String, provider: Provider, apiKey: String, baseURL: String?) async throws -> ProviderSettings {
        try access.requireWrite()
        guard !apiKey.isEmpty, apiKey.utf8.count <= 4096 else {
            throw GatewayError.invalidRequest("'api_key' must be 1 to 4096 bytes.", param: "api_key")
        }
        if let baseURL { try Self.validateBaseURL(baseURL) }
        let access = self.access
        return try await database.write { store in
            let project = try access.project(slug, in: store)
            try store.setProvider(projectID: project.id, provider: provider, apiKey: Secret(apiKey), baseURL: baseURL)
            guard let saved = try store.providerSettings(projectID: project.id, provider: provider) else {
                throw GatewayError.internalError("The provider settings were not saved.")
            }
            return saved
        }
    }

    func removeProvider(_ slug: String, provider: Provider) async throws {
        try access.requireWrite()
        let access = self.access
        let removed = try await database.write { store in
            try store.removeProvider(projectID: try access.project(slug, in: store).id, provider: provider)
        }
        guard removed else { throw GatewayError.notFound("Project '\(slug)' has no settings for \(provider.rawValue).") }
    }

    static func provider(_ name: String) throws -> Provider {
        guard let provider = Provider(rawValue: name) else {
            throw GatewayError.invalidRequest("Unknown provider '\(name)'; use one of \(Provider.allCases.map(\.rawValue).joined(separator: ", ")).",
                                              param: "provider")
        }
        return provider
    }

    /// `http(s)://host[:port][/path]`, without credentials, query or fragment.
    static func validateBaseURL(_ text: String) throws {
        guard text.utf8.count <= 2048, let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.user == nil, url.password == nil, url.query == nil, url.fragment == nil else {
            throw GatewayError.invalidRequest("'base_url' must be an http(s) URL without credentials, query or fragment.", param: "base_url")
        }
    }

    // MARK: - Fallback chains

    func fallbacks(_ slug: String) async throws -> (project: Project, chains: [FallbackChain]) {
        let access = self.access
        return try await database.run { store in
            let project = try access.project(slug, in: store)
            return (project, try store.fallbackChains(projectID: project.id))
        }
    }

    func setFallback(_ slug: String, primary: FallbackTarget, targets: [FallbackTarget]) async throws -> FallbackChain {
        try access.requireWrite()
        guard !targets.isEmpty, targets.count <= 16 else {
            throw GatewayError.invalidRequest("'to' must list 1 to 16 \"provider/model\" targets.", param: "to")
        }
        let access = self.access
        return try await database.write { store in
            let project = try access.project(slug, in: store)
            let chain = FallbackChain(projectID: project.id, primary: primary, targets: targets)
            try store.setFallbackChain(chain)
            return chain
        }
    }

    func removeFallback(_ slug: String, primary: FallbackTarget) async throws {
        try access.requireWrite()
        let access = self.access
        let removed = try await database.write { store in
            try store.removeFallbackChain(projectID: try access.project(slug, in: store).id, primary: primary)
        }
        guard removed else { throw GatewayError.notFound("Project '\(slug)' has no fallback chain for \(primary).") }
    }

    static func target(_ text: String, param: String) throws -> FallbackTarget {
        switch FallbackTarget.parse(text.trimmingCharacters(in: .whitespaces)) {
        case .success(let target): return target
        case .failure(let error): throw GatewayError.invalidRequest("'\(param)': \(error.description)", param: param)
        }
    }

    // MARK: - Prices

    func prices() async throws -> [Price] {
        try await database.run { try $0.prices() }
    }

    func setPrice(_ price: Price) async throws -> Price {
        try access.requireWrite()
        guard access.isInstallationWide else {
            throw GatewayError.forbidden("Prices apply to the whole installation; only an installation-wide admin token may change them.")
        }
        guard !price.model.isEmpty, price.model.utf8.count <= 200 else {
            throw GatewayError.invalidRequest("A model name is 1 to 200 bytes.", param: "model")
        }
        if let provider = price.provider { _ = try Self.provider(provider) }
        for (name, value) in [("input", price.input), ("output", price.output), ("cached_input", price.cachedInput ?? 0),
                              ("cache_write", price.cacheWrite ?? 0)] where !(value.isFinite && value >= 0 && value <= 1e6) {
            throw GatewayError.invalidRequest("'\(name)' must be USD per 1M tokens from 0 to 1000000.", param: name)
        }
        return try await database.write { store in
            try store.setPrice(price)
            return try store.prices().first { $0.model == price.model } ?? price
        }
    }
}
