import Foundation
import GatewayCore

/// Secrets must never reach a client, a log line or an audit row, even when a provider echoes
/// (part of) a key in its error: OpenAI names the key it refused, Gemini quotes the caller's key,
/// a misconfigured proxy may reflect the `Authorization` header. Every provider error passes
/// through `redact(_:secrets:)` on its way out, whatever the field (`message`, `type`, `code`,
/// `param`), in one place:
/// - HTTP error bodies: `ProviderAdapter.decodeError` redacts what each adapter's `readError`
///   read, with the project's provider key;
/// - mid-stream error events: `StreamRelay` redacts the error a translator throws (with the
///   secrets it was given) before it becomes the stream's final event or `relay.error`;
/// - errors inside a 200 body: `ProviderBody.streamError` redacts key-shaped strings.
public enum SecretRedactor {
    public static let marker = "<redacted>"

    /// `text` without any of `secrets` and without key-shaped strings:
    /// - `sk-…` (OpenAI's `sk-proj-…`, Anthropic's `sk-ant-…`, masked forms like `sk-proj-****abcd`)
    ///   and the gateway's own `dpx_…` keys keep their prefix: `sk-<redacted>`;
    /// - Google API keys `AIza…`: `AIza<redacted>`;
    /// - the token after `Bearer`, and any run of 32 or more letters, digits and `_` mixing
    ///   letters and digits (Mistral's and Cohere's keys are such runs): `<redacted>`.
    /// Punctuation around a secret stays, so the message still reads.
    public static func redact(_ text: String, secrets: [String]) -> String {
        var result = text
        // Short values would match ordinary words; real keys are far longer.
        for secret in secrets where secret.count >= 6 && result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: marker)
        }
        return redactKeyShaped(result)
    }

    /// The error with every client-visible field redacted.
    public static func redact(_ error: GatewayError, secrets: [String]) -> GatewayError {
        var redacted = error
        redacted.message = redact(error.message, secrets: secrets)
        redacted.type = redact(error.type, secrets: secrets)
        redacted.code = error.code.map { redact($0, secrets: secrets) }
        redacted.param = error.param.map { redact($0, secrets: secrets) }
        return redacted
    }

    // MARK: Key shapes

    /// Characters keys are made of; `*` too, for the masked keys providers echo.
    private static func isTokenCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-", "_", "*": return true
        default: return false
        }
    }

    private static func redactKeyShaped(_ text: String) -> String {
        var output = String.UnicodeScalarView()
        var run = String.UnicodeScalarView()
        var previousRun = ""
        var separatorSincePrevious = ""
        for scalar in text.unicodeScalars {
            if isTokenCharacter(scalar) {
                run.append(scalar)
                continue
            }
            if !run.isEmpty {
                let word = String(run)
                let afterBearer = previousRun.lowercased() == "bearer" && separatorSincePrevious.allSatisfy { $0 == " " }
                output.append(contentsOf: redactWord(word, afterBearer: afterBearer).unicodeScalars)
                previousRun = word
                separatorSincePrevious = ""
                run.removeAll()
            }
            separatorSincePrevious.unicodeScalars.append(scalar)
            output.append(scalar)
        }
        if !run.isEmpty {
            let afterBearer = previousRun.lowercased() == "bearer" && separatorSincePrevious.allSatisfy { $0 == " " }
            output.append(contentsOf: redactWord(String(run), afterBearer: afterBearer).unicodeScalars)
        }
        return String(output)
    }

    /// One run of token characters, redacted if it looks like a key.
    private static func redactWord(_ word: String, afterBearer: Bool) -> String {
        guard word.utf8.count >= 8 else { return word }
        for prefix in ["sk-", "dpx_"] where word.hasPrefix(prefix) && word.utf8.count > 8 {
            return prefix + marker
        }
        if let range = word.range(of: "AIza"), word[range.upperBound...].utf8.count >= 20 {
            return String(word[..<range.lowerBound]) + "AIza" + marker
        }
        if afterBearer { return marker }
        // Long high-entropy pieces (split at '-' and '*', which keys of this kind do not contain).
        var changed = false
        let pieces = word.split(separator: "-", omittingEmptySubsequences: false).map { part -> String in
            part.split(separator: "*", omittingEmptySubsequences: false).map { piece -> String in
                guard piece.utf8.count >= 32, piece.contains(where: \.isLetter), piece.contains(where: \.isNumber) else {
                    return String(piece)
                }
                changed = true
                return marker
            }.joined(separator: "*")
        }
        return changed ? pieces.joined(separator: "-") : word
    }
}
