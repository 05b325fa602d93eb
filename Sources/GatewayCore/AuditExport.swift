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

    /// The row as a JSON object (the admin API's pages).
    public static func json(_ row: AuditRow) -> JSON {
        var sink = JSONObjectSink()
        visitFields(row, into: &sink)
        return .object(sink.object)
    }

    /// Every field of the external shape, in `columns` order, handed to `sink`: the one
    /// description of the shape behind JSON pages, NDJSON and CSV, so they cannot drift apart.
    /// Latencies are rounded to the microsecond; cost is exact.
    static func visitFields<Sink: AuditFieldSink>(_ row: AuditRow, into sink: inout Sink) {
        let r = row.record
        sink.int("seq", row.sequence)
        sink.string("request_id", r.requestID)
        sink.time("time", r.time)
        sink.int("org_id", r.orgID)
        sink.int("project_id", r.projectID)
        sink.string("project", row.projectSlug)
        sink.string("key_id", r.keyID)
        sink.string("user", r.user)
        sink.string("provider", r.provider)
        sink.string("model_requested", r.modelRequested)
        sink.string("model_served", r.modelServed)
        sink.string("method", r.method)
        sink.string("route", r.route)
        sink.int("status", Int64(r.status))
        sink.string("error_code", r.errorCode)
        sink.int("prompt_tokens", r.promptTokens.map(Int64.init))
        sink.int("completion_tokens", r.completionTokens.map(Int64.init))
        sink.int("cached_tokens", r.cachedTokens.map(Int64.init))
        sink.int("reasoning_tokens", r.reasoningTokens.map(Int64.init))
        sink.int("cache_write_tokens", r.cacheWriteTokens.map(Int64.init))
        sink.double("cost_usd", r.costUSD)
        sink.double("latency_ms", milliseconds(r.latencyMs))
        sink.double("upstream_latency_ms", milliseconds(r.upstreamLatencyMs))
        sink.double("ttft_ms", milliseconds(r.timeToFirstTokenMs))
        sink.bool("cache_hit", r.cacheHit)
        sink.bool("stream", r.stream)
        sink.attempts("attempts", r.attempts)
    }

    static func milliseconds(_ value: Double?) -> Double? { value.map { ($0 * 1000).rounded() / 1000 } }

    /// The attempts as a JSON array, written directly (the same bytes as `attemptJSON`'s values
    /// serialized).
    static func appendAttempts(_ attempts: [AuditAttempt], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, attempt) in attempts.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: attemptProvider)
            JSON.writeString(attempt.provider, to: &out)
            out.append(contentsOf: attemptModel)
            JSON.writeString(attempt.model, to: &out)
            out.append(contentsOf: attemptStatus)
            appendInteger(Int64(attempt.status), to: &out)
            out.append(contentsOf: attemptLatency)
            appendDouble(milliseconds(attempt.latencyMs) ?? 0, to: &out)
            out.append(contentsOf: attemptError)
            if let code = attempt.errorCode { JSON.writeString(code, to: &out) } else { out.append(contentsOf: nullBytes) }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
    }

    private static let attemptProvider = Array(#"{"provider":"#.utf8)
    private static let attemptModel = Array(#","model":"#.utf8)
    private static let attemptStatus = Array(#","status":"#.utf8)
    private static let attemptLatency = Array(#","latency_ms":"#.utf8)
    private static let attemptError = Array(#","error_code":"#.utf8)

    static func attemptJSON(_ attempt: AuditAttempt) -> JSON {
        ["provider": .string(attempt.provider), "model": .string(attempt.model), "status": .int(Int64(attempt.status)),
         "latency_ms": milliseconds(attempt.latencyMs).map(JSON.double) ?? .null, "error_code": attempt.errorCode.map(JSON.string) ?? .null]
    }

    public static func ndjsonLine(_ row: AuditRow) -> String {
        var bytes: [UInt8] = []
        appendNDJSONLine(row, to: &bytes)
        return String(decoding: bytes.dropLast(), as: UTF8.self)
    }

    /// The row as one NDJSON line (with its `\n`), written straight into `out`: an export writes
    /// millions of rows, so no intermediate JSON value and no `String` per field.
    public static func appendNDJSONLine(_ row: AuditRow, to out: inout [UInt8]) {
        var sink = NDJSONSink(out: out)
        out = []
        sink.out.append(UInt8(ascii: "{"))
        visitFields(row, into: &sink)
        sink.out.append(contentsOf: [UInt8(ascii: "}"), 10])
        out = sink.out
    }

    public static var csvHeader: String { columns.joined(separator: ",") }

    public static func csvLine(_ row: AuditRow) -> String {
        var bytes: [UInt8] = []
        appendCSVLine(row, to: &bytes)
        return String(decoding: bytes.dropLast(2), as: UTF8.self)
    }

    /// The row as one CSV line (with its CRLF), cells in `columns` order, written straight into `out`.
    public static func appendCSVLine(_ row: AuditRow, to out: inout [UInt8]) {
        var sink = CSVSink(out: out)
        out = []
        visitFields(row, into: &sink)
        sink.out.append(contentsOf: [13, 10])
        out = sink.out
    }

    static let trueBytes = Array("true".utf8)
    static let falseBytes = Array("false".utf8)
    static let nullBytes = Array("null".utf8)

    /// Decimal digits of `value`, without a `String`.
    static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            if value == .min { out.append(contentsOf: "9223372036854775808".utf8); return }
        }
        var rest = value < 0 ? -value : value
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch: enough for 19 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            repeat {
                scratch[count] = UInt8(48 + rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(scratch[index]) }
        }
    }

    /// A double as the JSON serializer writes it (`description`; null when not finite).
    static func appendDouble(_ value: Double, to out: inout [UInt8]) {
        if value.isFinite { out.append(contentsOf: value.description.utf8) } else { out.append(contentsOf: nullBytes) }
    }

    /// A text cell a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+1`, `-2+3`, `@SUM(A1)`,
    /// or one hidden behind a leading tab or carriage return) gets a leading `'`, OWASP's advice
    /// against CSV injection: an audit export holds client-chosen text (`user`, model names) and is
    /// opened by operators in spreadsheets. Only text cells: numbers are written as numbers.
    /// Then the cell is quoted when it holds a comma, a quote or a line break (quotes doubled), as
    /// RFC 4180 has it.
    static func appendCSVText(_ text: String, neutralise: Bool = true, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendCSVText(bytes: $0, neutralise: neutralise, to: &out) }
    }

    static func appendCSVText<Bytes: Collection>(bytes: Bytes, neutralise: Bool, to out: inout [UInt8]) where Bytes.Element == UInt8 {
        var formula = false
        if neutralise, let first = bytes.first {
            switch first {
            case UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 9, 13: formula = true
            default: break
            }
        }
        let needsQuotes = bytes.contains { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }
        guard needsQuotes else {
            if formula { out.append(UInt8(ascii: "'")) }
            out.append(contentsOf: bytes)
            return
        }
        out.append(34)
        if formula { out.append(UInt8(ascii: "'")) }
        for byte in bytes {
            out.append(byte)
            if byte == 34 { out.append(34) }
        }
        out.append(34)
    }


    /// RFC 3339 in UTC with milliseconds ("2026-12-04T01:35:43.651Z"), computed from the epoch
    /// (days-from-civil in reverse): an export formats a million of these, and building an
    /// `ISO8601DateFormatter` for each cost more than the rest of the row.
    public static func timestamp(_ date: Date) -> String {
        var text = [UInt8]()
        text.reserveCapacity(24)
        appendTimestamp(date, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// `timestamp`'s 24 bytes appended to `text`.
    static func appendTimestamp(_ date: Date, to text: inout [UInt8]) {
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

/// Receives an audit row's fields in order (`AuditExport.visitFields`).
protocol AuditFieldSink {
    mutating func time(_ name: String, _ value: Date)
    mutating func int(_ name: String, _ value: Int64?)
    mutating func double(_ name: String, _ value: Double?)
    mutating func string(_ name: String, _ value: String?)
    mutating func bool(_ name: String, _ value: Bool)
    mutating func attempts(_ name: String, _ value: [AuditAttempt])
}

/// Builds the JSON value (API pages).
struct JSONObjectSink: AuditFieldSink {
    var object = JSONObject()
    mutating func time(_ name: String, _ value: Date) { object.appendNew(name, .string(AuditExport.timestamp(value))) }
    mutating func int(_ name: String, _ value: Int64?) { object.appendNew(name, value.map(JSON.int) ?? .null) }
    mutating func double(_ name: String, _ value: Double?) { object.appendNew(name, value.map(JSON.double) ?? .null) }
    mutating func string(_ name: String, _ value: String?) { object.appendNew(name, value.map(JSON.string) ?? .null) }
    mutating func bool(_ name: String, _ value: Bool) { object.appendNew(name, .bool(value)) }
    mutating func attempts(_ name: String, _ value: [AuditAttempt]) {
        object.appendNew(name, .array(value.map(AuditExport.attemptJSON)))
    }
}

/// Writes `"name":value` pairs (the braces are the caller's).
struct NDJSONSink: AuditFieldSink {
    var out: [UInt8]
    var first = true

    mutating func key(_ name: String) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: name.utf8)  // field names are plain ASCII
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }
    mutating func time(_ name: String, _ value: Date) {
        key(name)
        out.append(UInt8(ascii: "\""))
        AuditExport.appendTimestamp(value, to: &out)
        out.append(UInt8(ascii: "\""))
    }
    mutating func int(_ name: String, _ value: Int64?) {
        key(name)
        if let value { AuditExport.appendInteger(value, to: &out) } else { out.append(contentsOf: AuditExport.nullBytes) }
    }
    mutating func double(_ name: String, _ value: Double?) {
        key(name)
        if let value { AuditExport.appendDouble(value, to: &out) } else { out.append(contentsOf: AuditExport.nullBytes) }
    }
    mutating func string(_ name: String, _ value: String?) {
        key(name)
        if let value { JSON.writeString(value, to: &out) } else { out.append(contentsOf: AuditExport.nullBytes) }
    }
    mutating func bool(_ name: String, _ value: Bool) {
        key(name)
        out.append(contentsOf: value ? AuditExport.trueBytes : AuditExport.falseBytes)
    }
    mutating func attempts(_ name: String, _ value: [AuditAttempt]) {
        key(name)
        AuditExport.appendAttempts(value, to: &out)
    }
}

/// Writes comma-separated cells: text neutralised and quoted as needed, numbers as numbers,
/// empty for null, the attempts as a JSON array in one quoted cell.
struct CSVSink: AuditFieldSink {
    var out: [UInt8]
    var first = true

    mutating func separate() {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
    }
    var scratch: [UInt8] = []

    mutating func time(_ name: String, _ value: Date) {
        separate()
        AuditExport.appendTimestamp(value, to: &out)
    }
    mutating func int(_ name: String, _ value: Int64?) {
        separate()
        if let value { AuditExport.appendInteger(value, to: &out) }
    }
    mutating func double(_ name: String, _ value: Double?) {
        separate()
        if let value, value.isFinite { AuditExport.appendDouble(value, to: &out) }
    }
    mutating func string(_ name: String, _ value: String?) {
        separate()
        if let value { AuditExport.appendCSVText(value, to: &out) }
    }
    mutating func bool(_ name: String, _ value: Bool) {
        separate()
        out.append(contentsOf: value ? AuditExport.trueBytes : AuditExport.falseBytes)
    }
    mutating func attempts(_ name: String, _ value: [AuditAttempt]) {
        separate()
        scratch.removeAll(keepingCapacity: true)
        AuditExport.appendAttempts(value, to: &scratch)
        AuditExport.appendCSVText(bytes: scratch, neutralise: false, to: &out)
    }
}

