import Foundation
import GatewayCore

/// Query-string parameters of the admin routes, read with errors that name the parameter.
struct AdminQuery {
    let parameters: [String: String]

    func string(_ name: String) -> String? {
        guard let value = parameters[name], !value.isEmpty else { return nil }
        return value
    }

    func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw GatewayError.invalidRequest("'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound).", param: name)
        }
        return value
    }

    /// RFC 3339 (`2026-12-01T10:00:00Z`, fractions and offsets allowed) or a UTC date (`2026-12-01`).
    func date(_ name: String) throws -> Date? {
        guard let text = string(name) else { return nil }
        guard let date = AuditExport.parseDate(text) else {
            throw GatewayError.invalidRequest("'\(name)' must be an RFC 3339 time (2026-12-01T10:00:00Z) or a date (2026-12-01).", param: name)
        }
        return date
    }
}
