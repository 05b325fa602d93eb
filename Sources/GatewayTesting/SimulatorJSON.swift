import Foundation
import NIOCore

/// JSON helpers over Foundation's `JSONSerialization`: the simulator is test support, so
/// untyped dictionaries that mirror the wire format line by line beat `Codable` models.
enum SimulatorJSON {
    /// Serialises a JSON object with sorted keys (stable bytes for golden files and diffs).
    /// Never traps: a value `JSONSerialization` cannot encode becomes `{}`.
    static func encode(_ object: Any) -> [UInt8] {
        guard JSONSerialization.isValidJSONObject(object),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return Array("{}".utf8) }
        return Array(data)
    }

    /// Parses a request body; `nil` when it is not valid JSON. Fragments (a bare string or number) are accepted,
    /// so the caller decides what shape it needs.
    static func parse(_ body: ByteBuffer) -> Any? {
        guard body.readableBytes > 0 else { return nil }
        let data = Data(body.readableBytesView)
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// An integer from a JSON number (`3` or `3.0`); `nil` for anything else, booleans included.
    static func int(_ value: Any?) -> Int? {
        guard let value, !isBool(value) else { return nil }
        if let int = value as? Int { return int }
        if let double = value as? Double, double.rounded() == double, abs(double) < 1e15 { return Int(double) }
        return nil
    }

    /// A boolean from a JSON `true`/`false`; `nil` for anything else.
    static func bool(_ value: Any?) -> Bool? {
        guard let value, isBool(value) else { return nil }
        return value as? Bool
    }

    private static func isBool(_ value: Any) -> Bool {
        if value is Bool && !(value is NSNumber) { return true }
        guard let number = value as? NSNumber else { return false }
        // swift-corelibs-foundation and Darwin both report JSON booleans with objCType "c".
        return String(cString: number.objCType) == "c"
    }
}
