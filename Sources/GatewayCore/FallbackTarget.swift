import Foundation

/// One `provider/model` of a fallback chain, as written in `X-AI-Fallback` and `fallback set`.
public struct FallbackTarget: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var provider: Provider
    public var model: String

    public init(provider: Provider, model: String) {
        self.provider = provider
        self.model = model
    }

    public var description: String { "\(provider.rawValue)/\(model)" }

    /// Parses `provider/model` (the model may itself contain slashes). The error says what is
    /// wrong, for a 400 or a CLI message.
    public static func parse(_ text: String) -> Result<FallbackTarget, FallbackTargetError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let slash = trimmed.firstIndex(of: "/") else {
            return .failure(FallbackTargetError("'\(trimmed)' is not PROVIDER/MODEL"))
        }
        let name = trimmed[..<slash].lowercased()
        let model = String(trimmed[trimmed.index(after: slash)...])
        guard let provider = Provider(rawValue: name) else {
            return .failure(FallbackTargetError("unknown provider '\(name)' in '\(trimmed)'; use one of: "
                + Provider.allCases.map(\.rawValue).joined(separator: ", ")))
        }
        guard !model.isEmpty, !model.contains(where: { $0.isWhitespace || $0 == "," }) else {
            return .failure(FallbackTargetError("'\(trimmed)' has no valid model name"))
        }
        return .success(FallbackTarget(provider: provider, model: model))
    }

    /// Parses a comma-separated list; empty items are refused.
    public static func parseList(_ text: String) -> Result<[FallbackTarget], FallbackTargetError> {
        var targets: [FallbackTarget] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            switch parse(String(item)) {
            case .success(let target): targets.append(target)
            case .failure(let error): return .failure(error)
            }
        }
        return .success(targets)
    }
}

public struct FallbackTargetError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
