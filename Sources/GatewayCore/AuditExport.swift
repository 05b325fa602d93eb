import Foundation

/// The audit row's external shape, shared by `audit export` and the admin API, so that both
/// show the same field names.
public enum AuditExport {
    public static let columns = [
        "seq", "request_id", "time", "org_id", "project_id", "project", "key_id", "user", "provider",
        "model_requested", "model_served", "method", "route", "status", "error_code",
        "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cache_write_tokens", "cost_usd", "latency_ms",
        "upstream_latency_ms", "ttft_ms", "cache_hit", "stream", "attempts",
    ]

    public static func json(_ row: AuditRow) -> JSON {
        let r = row.record
        func int(_ value: Int?) -> JSON { value.map { .int(Int64($0)) } ?? .null }
        func double(_ value: Double?) -> JSON { value.map { .double(($0 * 1000).rounded() / 1000) } ?? .null }
        func string(_ value: String?) -> JSON { value.map(JSON.string) ?? .null }
        let attempts: [JSON] = r.attempts.map {
            ["provider": .string($0.provider), "model": .string($0.model), "status": .int(Int64($0.status)),
             "latency_ms": double($0.latencyMs), "error_code": string($0.errorCode)]
        }
        return .object(JSONObject([
            ("seq", .int(row.sequence)),
            ("request_id", .string(r.requestID)),
            ("time", .string(timestamp(r.time))),
            ("org_id", r.orgID.map(JSON.int) ?? .null),
            ("project_id", r.projectID.map(JSON.int) ?? .null),
            ("project", string(row.projectSlug)),
            ("key_id", string(r.keyID)),
            ("user", string(r.user)),
            ("provider", string(r.provider)),
            ("model_requested", string(r.modelRequested)),
            ("model_served", string(r.modelServed)),
            ("method", .string(r.method)),
            ("route", .string(r.route)),
            ("status", .int(Int64(r.status))),
            ("error_code", string(r.errorCode)),
            ("prompt_tokens", int(r.promptTokens)),
            ("completion_tokens", int(r.completionTokens)),
            ("cached_tokens", int(r.cachedTokens)),
            ("reasoning_tokens", int(r.reasoningTokens)),
            ("cache_write_tokens", int(r.cacheWriteTokens)),
            ("cost_usd", r.costUSD.map(JSON.double) ?? .null),
            ("latency_ms", double(r.latencyMs)),
            ("upstream_latency_ms", double(r.upstreamLatencyMs)),
            ("ttft_ms", double(r.timeToFirstTokenMs)),
            ("cache_hit", .bool(r.cacheHit)),
            ("stream", .bool(r.stream)),
            ("attempts", .array(attempts)),
        ]))
    }

    public static func ndjsonLine(_ row: AuditRow) -> String { json(row).serializedString() }

    public static var csvHeader: String { columns.joined(separator: ",") }

    public static func csvLine(_ row: AuditRow) -> String {
        guard case .object(let object) = json(row) else { return "" }
        // `json` writes its fields in `columns` order: walk them, no lookups.
        return object.entries.map { entry -> String in
            switch entry.value {
            case .null: return ""
            case .string(let text): return csvField(neutralisingFormula(text))
            case .bool(let flag): return flag ? "true" : "false"
            case let other: return csvField(other.serializedString())
            }
        }.joined(separator: ",")
    }

    /// A text cell a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+1`, `-2+3`, `@SUM(A1)`,
    /// or one hidden behind a leading tab or carriage return) gets a leading `'`, OWASP's advice
    /// against CSV injection: an audit export holds client-chosen text (`user`, model names) and is
    /// opened by operators in spreadsheets. Only text cells: numbers are written as numbers.
    static func neutralisingFormula(_ text: String) -> String {
        guard let first = text.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) else { return text }
        return "'" + text
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// RFC 3339 in UTC with milliseconds ("2026-12-04T01:35:43.651Z"), computed from the epoch
    /// (days-from-civil in reverse): an export formats a million of these, and building an
    /// `ISO8601DateFormatter` for each cost more than the rest of the row.
    public static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        let inDay = milliseconds - days * 86_400_000
        // Howard Hinnant's civil_from_days.
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        var text = [UInt8]()
        text.reserveCapacity(24)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                text.append(UInt8(48 + (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4); text.append(45); digits(month, 2); text.append(45); digits(day, 2); text.append(84)
        digits(inDay / 3_600_000, 2); text.append(58); digits(inDay / 60_000 % 60, 2); text.append(58)
        digits(inDay / 1000 % 60, 2); text.append(46); digits(inDay % 1000, 3); text.append(90)
        return String(decoding: text, as: UTF8.self)
    }

    /// "2026-11-25" (UTC midnight) or a full ISO 8601 time. With `endOfDay`, a bare date means
    /// the end of that day (for inclusive `--to`).
    public static func parseDate(_ text: String, endOfDay: Bool = false) -> Date? {
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime]
        if let date = full.date(from: text) { return date }
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = full.date(from: text) { return date }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let date = day.date(from: text) else { return nil }
        return endOfDay ? date.addingTimeInterval(86_400) : date
    }
}
