import GatewayCore
import GatewayHTTP
import GatewayStore

/// What the request itself asks for, read from its headers and body alone (no store read, so a
/// cache hit costs none): docs/api.md's provider (`X-AI-Provider`, else the model name) with the body's
/// model, and the `X-AI-Fallback` targets if the header is there. Malformed values are 400s.
struct RequestedTargets {
    let primary: FallbackTarget
    /// nil: no header (the project's chain applies).
    let fallbacks: [FallbackTarget]?

    /// `provider`: the one `ProviderSelection` chose. `allowFallback` false (embeddings): the
    /// `X-AI-Fallback` header is not read.
    static func read(_ request: HTTPRequest, provider: Provider, model: String, allowFallback: Bool) throws -> RequestedTargets {
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
/// provider must be configured for the project: a header naming one that is not is the client's
/// 400 before any call; a project chain skips it. The project's chain is only read once the
/// first target has failed, so a request that succeeds at once costs no lookup for it.
struct TargetChain {
    let primary: ProviderTarget
    private let headerTargets: [ProviderTarget]?
    private let key: AuthenticatedKey
    private let directory: ProviderDirectory

    static func resolve(_ requested: RequestedTargets, key: AuthenticatedKey, directory: ProviderDirectory) throws -> TargetChain {
        let primary = try ProviderTarget.configured(requested.primary, key: key, directory: directory, param: "X-AI-Provider")
        let headerTargets = try requested.fallbacks.map { names in
            try distinct(names, after: requested.primary).map {
                try ProviderTarget.configured($0, key: key, directory: directory, param: "X-AI-Fallback")
            }
        }
        return TargetChain(primary: primary, headerTargets: headerTargets, key: key, directory: directory)
    }

    /// The targets after the primary.
    func fallbacks() throws -> [ProviderTarget] {
        if let headerTargets { return headerTargets }
        guard let chain = try directory.fallbackChain(for: key, primary: primary.name) else { return [] }
        return Self.distinct(chain.targets, after: primary.name).compactMap {
            try? ProviderTarget.configured($0, key: key, directory: directory, param: "fallback")
        }
    }

    /// `names` in order, without the primary and without repeats.
    private static func distinct(_ names: [FallbackTarget], after primary: FallbackTarget) -> [FallbackTarget] {
        var seen: Set<FallbackTarget> = [primary]
        return names.filter { seen.insert($0).inserted }
    }
}

/// docs/api.md: the `X-AI-Provider` header, else inferred from the model name, else 400.
enum ProviderSelection {
    static func provider(header: String?, model: String) throws(GatewayError) -> Provider {
        if let header, !header.isEmpty {
            guard let provider = Provider(rawValue: header.lowercased()) else {
                throw .invalidRequest("Unknown provider '\(header)' in X-AI-Provider; use one of: \(Provider.allCases.map(\.rawValue).joined(separator: ", ")).",
                                      param: "X-AI-Provider", code: "unknown_provider")
            }
            return provider
        }
        guard let provider = Provider.inferred(fromModel: model) else {
            throw .invalidRequest("Cannot tell the provider from model '\(model)'; set the X-AI-Provider header.",
                                  param: "model", code: "unknown_provider")
        }
        return provider
    }
}
