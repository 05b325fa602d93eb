import Foundation
import GatewayCore
import GatewayStore

/// Projects, keys, provider settings, fallback chains and prices over REST: JSON in, `AdminActions`,
/// JSON out. Every change goes through the store's ordinary methods, which bump the settings
/// version where a worker caches anything, so it applies to the very next request in every worker.
struct SettingsRoutes {
    let actions: AdminActions

    init(database: AdminDatabase, access: AdminAccess) {
        actions = AdminActions(database: database, access: access)
    }

    // MARK: - Projects

    func projects(response: AdminResponse) async throws {
        let items = try await actions.projects().map { AdminJSON.project($0.project, monthToDate: $0.monthToDate) }
        try await response.json(AdminJSON.list(items))
    }

    func project(_ slug: String, response: AdminResponse) async throws {
        let (project, monthToDate) = try await actions.project(slug)
        try await response.json(AdminJSON.project(project, monthToDate: monthToDate))
    }

    func createProject(body: AdminRequestBody, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try body.allowOnly(["name", "plan", "rpm", "tpm", "monthly_budget_usd"])
        let project = try await actions.createProject(slug: try body.string("name", required: true)!, plan: try body.plan() ?? .pro,
                                                      limits: try body.limits(applyingTo: .none))
        try await response.json(AdminJSON.project(project, monthToDate: (0, 0)), status: 201)
    }

    func updateProject(_ slug: String, body: AdminRequestBody, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try body.allowOnly(["plan", "rpm", "tpm", "monthly_budget_usd"])
        let project = try await actions.updateProject(slug, plan: try body.plan()) { try body.limits(applyingTo: $0) }
        let (_, monthToDate) = try await actions.project(slug)
        try await response.json(AdminJSON.project(project, monthToDate: monthToDate))
    }

    // MARK: - Keys

    func keys(_ slug: String, response: AdminResponse) async throws {
        let (project, keys) = try await actions.keys(slug)
        try await response.json(AdminJSON.list(keys.map { AdminJSON.key($0, project: project) }))
    }

    func key(id: String, response: AdminResponse) async throws {
        let (key, project) = try await actions.key(id)
        try await response.json(AdminJSON.key(key, project: project))
    }

    func createKey(_ slug: String, body: AdminRequestBody, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try body.allowOnly(["name", "rpm", "tpm", "monthly_budget_usd"])
        let created = try await actions.createKey(slug, name: try body.string("name", maxLength: 128), limits: try body.limits(applyingTo: .none))
        try await response.json(AdminJSON.key(created.key, project: created.project, secret: created.secret), status: 201)
    }

    func updateKey(id: String, body: AdminRequestBody, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try body.allowOnly(["rpm", "tpm", "monthly_budget_usd"])
        _ = try body.limits(applyingTo: .none)  // field errors before any lookup
        let (key, project) = try await actions.updateKey(id) { try body.limits(applyingTo: $0) }
        try await response.json(AdminJSON.key(key, project: project))
    }

    func revokeKey(id: String, response: AdminResponse) async throws {
        let (key, project) = try await actions.revokeKey(id)
        try await response.json(AdminJSON.key(key, project: project))
    }

    // MARK: - Provider settings

    func providers(_ slug: String, response: AdminResponse) async throws {
        try await response.json(AdminJSON.list(try await actions.providers(slug).settings.map(AdminJSON.provider)))
    }

    func setProvider(_ slug: String, provider name: String, body: AdminRequestBody, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        let provider = try AdminActions.provider(name)
        try body.allowOnly(["api_key", "base_url"])
        let saved = try await actions.setProvider(slug, provider: provider, apiKey: try body.string("api_key", required: true, maxLength: 4096)!,
                                                  baseURL: try body.string("base_url", maxLength: 2048))
        try await response.json(AdminJSON.provider(saved))
    }

    func removeProvider(_ slug: String, provider name: String, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try await actions.removeProvider(slug, provider: try AdminActions.provider(name))
        try await response.noContent()
    }

    // MARK: - Fallback chains

    func fallbacks(_ slug: String, response: AdminResponse) async throws {
        try await response.json(AdminJSON.list(try await actions.fallbacks(slug).chains.map(AdminJSON.fallback)))
    }

    func setFallback(_ slug: String, primary text: String, body: AdminRequestBody, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try body.allowOnly(["to"])
        let primary = try AdminActions.target(text, param: "primary")
        guard case .array(let items)? = body.object["to"] else {
            throw GatewayError.invalidRequest("'to' must be a list of \"provider/model\" targets.", param: "to")
        }
        let targets = try items.map { item -> FallbackTarget in
            guard let text = item.stringValue else { throw GatewayError.invalidRequest("'to' holds strings \"provider/model\".", param: "to") }
            return try AdminActions.target(text, param: "to")
        }
        try await response.json(AdminJSON.fallback(try await actions.setFallback(slug, primary: primary, targets: targets)))
    }

    func removeFallback(_ slug: String, primary text: String, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try await actions.removeFallback(slug, primary: try AdminActions.target(text, param: "primary"))
        try await response.noContent()
    }

    // MARK: - Prices

    func prices(response: AdminResponse) async throws {
        try await response.json(AdminJSON.list(try await actions.prices().map(AdminJSON.price)))
    }

    func setPrice(model: String, body: AdminRequestBody, response: AdminResponse) async throws {
        try actions.access.requireWrite()
        try body.allowOnly(["input", "output", "cached_input", "cache_write", "provider"])
        func rate(_ name: String, required: Bool) throws -> Double? {
            if case .set(let value) = try body.usd(name) { return value }
            if required { throw GatewayError.invalidRequest("'\(name)' (USD per 1M tokens) is required.", param: name) }
            return nil
        }
        let price = Price(model: model, provider: try body.string("provider"), input: try rate("input", required: true)!,
                          output: try rate("output", required: true)!, cachedInput: try rate("cached_input", required: false),
                          cacheWrite: try rate("cache_write", required: false), source: "set by operator")
        try await response.json(AdminJSON.price(try await actions.setPrice(price)))
    }
}
