import Foundation
import GatewayCore
import GatewayProviders

/// Hostile variants of the real wire-format fixtures: the same bodies and streams, with chosen
/// values replaced, so each adapter is tested on exactly the shapes its provider sends.
extension JSON {
    /// Every value whose key is in `keys`, at any depth, replaced by `replacement(oldValue)`.
    func replacingValues(forKeys keys: Set<String>, with replacement: (JSON) -> JSON) -> JSON {
        switch self {
        case .object(let object):
            return .object(JSONObject(object.map { entry in
                (entry.key, keys.contains(entry.key) ? replacement(entry.value)
                                                     : entry.value.replacingValues(forKeys: keys, with: replacement))
            }))
        case .array(let items):
            return .array(items.map { $0.replacingValues(forKeys: keys, with: replacement) })
        default:
            return self
        }
    }

    /// Every string at any depth passed through `transform`.
    func mappingStrings(_ transform: (String) -> String) -> JSON {
        switch self {
        case .string(let text): return .string(transform(text))
        case .object(let object): return .object(JSONObject(object.map { ($0.key, $0.value.mappingStrings(transform)) }))
        case .array(let items): return .array(items.map { $0.mappingStrings(transform) })
        default: return self
        }
    }
}

extension Fixture {
    /// `upstream.sse` with every `data:` payload that is JSON passed through `patch` (other lines,
    /// `[DONE]` and the framing unchanged).
    func sse(patching patch: (JSON) -> JSON) throws -> [UInt8] {
        var lines: [String] = []
        // Split on the LF byte: in Swift "\r\n" is one Character, so string splitting would not
        // see Gemini's CRLF line ends. A CRLF line keeps its "\r".
        for bytes in try self.bytes("upstream.sse").split(separator: 0x0A, omittingEmptySubsequences: false) {
            let line = String(decoding: bytes, as: UTF8.self)
            let crlf = bytes.last == 0x0D
            let content = String(decoding: crlf ? bytes.dropLast() : bytes[...], as: UTF8.self)
            guard content.hasPrefix("data: "), let json = try? JSON.parse(String(content.dropFirst(6))) else {
                lines.append(line)
                continue
            }
            lines.append("data: " + patch(json).serializedString() + (crlf ? "\r" : ""))
        }
        return Array(lines.joined(separator: "\n").utf8)
    }

    /// Runs `upstream` through a `StreamRelay` for this fixture's request, whole.
    func relay(_ upstream: [UInt8], provider: Provider, secrets: [String] = []) throws -> (output: String, relay: StreamRelay) {
        let adapter = ProviderRegistry.adapter(for: provider)!
        var relay = StreamRelay(providerName: provider.rawValue, translator: adapter.makeStreamTranslator(for: try chatRequest()),
                                secrets: secrets)
        var output = relay.feed(upstream)
        output += relay.finish()
        return (String(decoding: output, as: UTF8.self), relay)
    }

    /// `upstream.error.json` as `decodeError`'s arguments.
    func upstreamError() throws -> (status: Int, headers: [(name: String, value: String)], body: JSON) {
        let upstream = try json("upstream.error.json")
        let headers = upstream["headers"]?.objectValue?.map { (name: $0.key, value: $0.value.stringValue ?? "") } ?? []
        return (Int(upstream["status"]!.intValue!), headers, upstream["body"]!)
    }
}
