import GatewayCore
import GatewayHTTP
import GatewayStore

/// What the request itself asks for, read from its headers and body alone (no store read, so a
/// cache hit costs none): SPEC's provider (`X-AI-Provider`, else the model name) with the body's
/// model, and the `X-AI-Fallback` targets if the header is there. Malformed values are 400s.
struct RequestedTargets {
    let primary: FallbackTarget
    /// nil: no header (the project's chain applies).
    let fallbacks: [FallbackTarget]?

    /// Records the provider in the audit row first, so a refused request still names it.
    /// `allowFallback` false (embeddings): the header is not read.
    static func read(_ request: HTTPRequest, model: String, allowFallback: Bool, context: RequestContext) throws -> RequestedTargets {
        let provider = try ProviderSelection.provider(header: request.headers["x-ai-provider"], model: model)
        context.audit.provider = provider.rawValue
        var fallbacks: [FallbackTarget]?
        if allowFallback, let header = request.headers["x-ai-fallback"], !header[...].trimmedOfSpaces.isEmpty {
            switch FallbackTarget.parseList(header) {
            case .success(let parsed): fallbacks = parsed
            case .failure(let error):
                throw GatewayError.invalidRequest("X-AI-Fallback must be PROVIDER/MODEL[,PROVIDER/MODEL...]: \(error.description).",
                                                  param: "X-AI-Fallback", code: "invalid_fallback")
            }
        }
        return RequestedTargets(primary: FallbackTarget(provider: provider, model: model), fallbacks: fallbacks)
    }
}

/// The targets a request is tried on, in order: the requested one first, then the request's
/// `X-AI-Fallback` targets, else the project's chain for that provider/model. Every target's
/// provider must be configured for the project (400 otherwise; a project chain skips one that
/// is no longer configured).
struct TargetChain {
    let targets: [ProviderTarget]

    var primary: ProviderTarget { targets[0] }

    static func resolve(_ requested: RequestedTargets, key: AuthenticatedKey, store: GatewayStore) throws -> TargetChain {
        var targets = [try ProviderTarget.configured(requested.primary, key: key, store: store, param: "X-AI-Provider")]
        var seen: Set<FallbackTarget> = [requested.primary]
        if let fallbacks = requested.fallbacks {
            for name in fallbacks where seen.insert(name).inserted {
                targets.append(try ProviderTarget.configured(name, key: key, store: store, param: "X-AI-Fallback"))
            }
        } else if let chain = try store.fallbackChain(projectID: key.project.id, primary: requested.primary) {
            for name in chain.targets where seen.insert(name).inserted {
                if let target = try? ProviderTarget.configured(name, key: key, store: store, param: "fallback") { targets.append(target) }
            }
        }
        return TargetChain(targets: targets)
    }
}
