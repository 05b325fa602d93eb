import GatewayCore
import GatewayHTTP
import GatewayStore

/// The targets a request is tried on, in order: SPEC's provider and the body's model first, then
/// the request's `X-AI-Fallback` header, else the project's chain for that provider/model.
struct TargetChain {
    let targets: [ProviderTarget]

    var primary: ProviderTarget { targets[0] }

    /// The chain after `primary` (SPEC's choice for the request, `ProviderTarget.primary`).
    static func resolve(_ request: HTTPRequest, primary: ProviderTarget, key: AuthenticatedKey, store: GatewayStore) throws -> TargetChain {
        var targets = [primary]
        var seen: Set<FallbackTarget> = [primary.name]
        if let header = request.headers["x-ai-fallback"], !header.trimmingCharacters(in: .whitespaces).isEmpty {
            let names: [FallbackTarget]
            switch FallbackTarget.parseList(header) {
            case .success(let parsed): names = parsed
            case .failure(let error):
                throw GatewayError.invalidRequest("X-AI-Fallback must be PROVIDER/MODEL[,PROVIDER/MODEL...]: \(error.description).",
                                                  param: "X-AI-Fallback", code: "invalid_fallback")
            }
            for name in names where seen.insert(name).inserted {
                targets.append(try ProviderTarget.configured(name, key: key, store: store, param: "X-AI-Fallback"))
            }
        } else if let chain = try store.fallbackChain(projectID: key.project.id, primary: primary.name) {
            // A project chain naming a provider the project no longer configures skips it.
            for name in chain.targets where seen.insert(name).inserted {
                if let target = try? ProviderTarget.configured(name, key: key, store: store, param: "fallback") { targets.append(target) }
            }
        }
        return TargetChain(targets: targets)
    }
}
