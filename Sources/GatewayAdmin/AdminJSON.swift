import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore

/// A field of a PATCH body: absent leaves the value alone, `null` clears it.
enum FieldChange<Value: Sendable>: Sendable {
    case unchanged
    case cleared
    case set(Value)

    func applied(to current: Value?) -> Value? {
        switch self {
        case .unchanged: return current
        case .cleared: return nil
        case .set(let value): return value
        }
    }
}

/// A JSON request body of the admin API, with typed field readers whose errors name the field
/// (`param`), as the data plane's 400s do.
struct AdminRequestBody: Sendable {
    let object: JSONObject

    init(_ request: HTTPRequest) throws {
        guard !request.body.isEmpty else { throw GatewayError.invalidRequest("The request body is empty; send a JSON object.", code: "invalid_json") }
        let value: JSON
        do { value = try JSON.parse(request.body) } catch {
            throw GatewayError.invalidRequest("The request body is not valid JSON.", code: "invalid_json")
        }
        guard let object = value.objectValue else {
            throw GatewayError.invalidRequest("The request body must be a JSON object.", code: "invalid_json")
        }
        self.object = object
    }

    init(object: JSONObject) { self.object = object }

    /// Refuses fields the route does not know (a typo must not be silently ignored).
    func allowOnly(_ names: Set<String>) throws {
        for key in object.keys where !names.contains(key) {
            throw GatewayError.invalidRequest("Unknown field '\(key)'. Known fields: \(names.sorted().joined(separator: ", ")).", param: key)
        }
    }

    func string(_ name: String, required: Bool = false, maxLength: Int = 256) throws -> String? {
        switch object[name] {
        case nil, .some(.null):
            if required { throw GatewayError.invalidRequest("'\(name)' is required.", param: name) }
            return nil
        case .some(.string(let text)):
            if required && text.isEmpty { throw GatewayError.invalidRequest("'\(name)' must not be empty.", param: name) }
            guard text.utf8.count <= maxLength else { throw GatewayError.invalidRequest("'\(name)' is longer than \(maxLength) bytes.", param: name) }
            return text
        default:
            throw GatewayError.invalidRequest("'\(name)' must be a string.", param: name)
        }
    }

    /// A per-minute limit: a whole number ≥ 0, or null for none.
    func limit(_ name: String) throws -> FieldChange<Int> {
        switch object[name] {
        case nil: return .unchanged
        case .some(.null): return .cleared
        case .some(let value):
            guard let number = value.intValue, number >= 0, number <= Int64(Int32.max) else {
                throw GatewayError.invalidRequest("'\(name)' must be a whole number from 0 to 2147483647, or null for no limit.", param: name)
            }
            return .set(Int(number))
        }
    }

    /// A USD amount ≥ 0, or null for none.
    func usd(_ name: String) throws -> FieldChange<Double> {
        switch object[name] {
        case nil: return .unchanged
        case .some(.null): return .cleared
        case .some(let value):
            guard let number = value.doubleValue, number.isFinite, number >= 0, number <= 1e12 else {
                throw GatewayError.invalidRequest("'\(name)' must be a number of USD from 0 to 1e12, or null for none.", param: name)
            }
            return .set(number)
        }
    }

    func limits(applyingTo current: Limits) throws -> Limits {
        var limits = current
        limits.requestsPerMinute = try limit("rpm").applied(to: current.requestsPerMinute)
        limits.tokensPerMinute = try limit("tpm").applied(to: current.tokensPerMinute)
        limits.monthlyBudgetUSD = try usd("monthly_budget_usd").applied(to: current.monthlyBudgetUSD)
        return limits
    }

    func plan() throws -> Plan? {
        guard let text = try string("plan") else { return nil }
        guard let plan = Plan(rawValue: text) else {
            throw GatewayError.invalidRequest("'plan' must be one of free, pro, team.", param: "plan")
        }
        return plan
    }
}

/// The admin API's JSON shapes of stored things, shared by every route that returns them.
enum AdminJSON {
    static func time(_ date: Date?) -> JSON {
        date.map { .string(AuditExport.timestamp($0)) } ?? .null
    }

    static func optional(_ value: Int?) -> JSON { value.map { .int(Int64($0)) } ?? .null }
    static func optional(_ value: Double?) -> JSON { value.map(JSON.double) ?? .null }
    static func optional(_ value: String?) -> JSON { value.map(JSON.string) ?? .null }

    static func limits(_ limits: Limits) -> [(String, JSON)] {
        [("rpm", optional(limits.requestsPerMinute)), ("tpm", optional(limits.tokensPerMinute)),
         ("monthly_budget_usd", optional(limits.monthlyBudgetUSD))]
    }

    static func project(_ project: Project, monthToDate: (requests: Int, costUSD: Double)?) -> JSON {
        var fields: [(String, JSON)] = [
            ("object", "project"), ("name", .string(project.slug)), ("org", .string(project.orgName)),
            ("project", .string(project.name)), ("plan", .string(project.plan.rawValue)),
        ]
        fields += limits(project.limits)
        if let monthToDate {
            fields.append(("month_to_date", [
                "month": .string(SpendAmount.month(of: Date())),
                "requests": .int(Int64(monthToDate.requests)),
                "cost_usd": .double(monthToDate.costUSD),
            ]))
        }
        fields.append(("created_at", time(project.createdAt)))
        return .object(JSONObject(fields))
    }

    static func key(_ key: GatewayKey, project: Project, secret: String? = nil) -> JSON {
        var fields: [(String, JSON)] = [
            ("object", "key"), ("id", .string(key.id)), ("name", optional(key.name)), ("project", .string(project.slug)),
        ]
        fields += limits(key.limits)
        fields += [("status", .string(key.isRevoked ? "revoked" : "active")), ("created_at", time(key.createdAt)),
                   ("revoked_at", time(key.revokedAt))]
        if let secret { fields.append(("secret", .string(secret))) }
        return .object(JSONObject(fields))
    }

    /// A provider key is write-only: at most its last 4 characters are ever shown.
    static func provider(_ settings: ProviderSettings) -> JSON {
        [
            "object": "provider_settings", "provider": .string(settings.provider.rawValue),
            "api_key_last4": .string(lastFour(settings.apiKey)), "base_url": optional(settings.baseURL),
            "effective_base_url": .string(settings.effectiveBaseURL), "updated_at": time(settings.updatedAt),
        ]
    }

    /// The last 4 characters of a secret, only when it is long enough that they give nothing away.
    static func lastFour(_ secret: Secret) -> String {
        let value = secret.value
        guard value.count >= 12 else { return "" }
        return String(value.suffix(4))
    }

    static func fallback(_ chain: FallbackChain) -> JSON {
        [
            "object": "fallback_chain", "provider": .string(chain.primary.provider.rawValue),
            "model": .string(chain.primary.model), "to": .array(chain.targets.map { .string($0.description) }),
        ]
    }

    static func price(_ price: Price) -> JSON {
        [
            "object": "price", "model": .string(price.model), "provider": optional(price.provider),
            "input": .double(price.input), "output": .double(price.output),
            "cached_input": optional(price.cachedInput), "cache_write": optional(price.cacheWrite),
            "source": optional(price.source),
        ]
    }

    static func list(_ items: [JSON], extra: [(String, JSON)] = []) -> JSON {
        .object(JSONObject([("object", "list"), ("data", .array(items))] + extra))
    }
}
