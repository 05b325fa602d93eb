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
        guard let date = Self.parseDate(text) else {
            throw GatewayError.invalidRequest("'\(name)' must be an RFC 3339 time (2026-12-01T10:00:00Z) or a date (2026-12-01).", param: name)
        }
        return date
    }

    static func parseDate(_ text: String) -> Date? {
        if text.count == 10 {
            let parts = text.split(separator: "-")
            guard parts.count == 3, let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
                  (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day) else { return nil }
            var components = DateComponents()
            (components.year, components.month, components.day) = (year, month, day)
            return SpendAmount.utcCalendar.date(from: components)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
