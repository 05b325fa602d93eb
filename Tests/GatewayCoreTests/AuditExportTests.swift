import Foundation
import GatewayCore
import Testing

/// `audit export --format csv`: text cells a spreadsheet would evaluate are neutralised with a
/// leading `'`, numbers are untouched, and the file still parses as CSV.
@Suite("Audit export CSV")
struct AuditExportTests {
    func row(user: String?, model: String? = "gpt-4o", promptTokens: Int? = 5) -> AuditRow {
        let record = AuditRecord(
            requestID: "req_1", time: Date(timeIntervalSince1970: 1_767_225_600), method: "POST", route: "/v1/chat/completions",
            orgID: 1, projectID: -3, keyID: "gk_1", user: user, provider: "openai", modelRequested: model, modelServed: model,
            status: 200, promptTokens: promptTokens, completionTokens: 2, costUSD: -0.5, latencyMs: 1.5)
        return AuditRow(sequence: 7, record: record, projectSlug: "acme/web")
    }

    /// RFC 4180 fields of one line (quoted fields may hold commas, quotes and line breaks).
    func parse(_ line: String) -> [String] {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var characters = Array(line)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" { field.append("\""); characters.removeFirst() } else { quoted = false }
                } else {
                    field.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(field)
                field = ""
            } else {
                field.append(character)
            }
        }
        fields.append(field)
        return fields
    }

    func cell(_ line: String, _ column: String) throws -> String {
        let fields = parse(line)
        #expect(fields.count == AuditExport.columns.count, "the line still has one field per column")
        let index = try #require(AuditExport.columns.firstIndex(of: column))
        return fields[index]
    }

    @Test(arguments: [
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("=1,2\n3", "'=1,2\n3"),
    ])
    func formulaTextCellsGetALeadingQuote(_ user: String, _ expected: String) throws {
        let line = AuditExport.csvLine(row(user: user))
        #expect(try cell(line, "user") == expected)
        #expect(!line.hasPrefix("=") && !line.contains(",=") && !line.contains(",+") && !line.contains(",@"))
    }

    @Test func ordinaryTextAndNumbersAreUnchanged() throws {
        let line = AuditExport.csvLine(row(user: "alice, \"the\" admin", model: "claude-sonnet-4"))
        #expect(try cell(line, "user") == "alice, \"the\" admin")
        #expect(try cell(line, "model_requested") == "claude-sonnet-4")
        #expect(try cell(line, "prompt_tokens") == "5")
        // Negative numbers are numbers, not formulas: no quote.
        #expect(try cell(line, "project_id") == "-3")
        #expect(try cell(line, "cost_usd") == "-0.5")
        #expect(try cell(line, "time") == "2026-01-01T00:00:00.000Z")
    }

    @Test func aModelNameLikeAFormulaIsNeutralisedToo() throws {
        let line = AuditExport.csvLine(row(user: nil, model: "=cmd|' /C calc'!A0"))
        #expect(try cell(line, "model_requested") == "'=cmd|' /C calc'!A0")
        #expect(try cell(line, "user") == "")
    }

    /// The hand-written RFC 3339 formatter gives Foundation's answer, across leap years, month
    /// ends, the epoch, times before it and far in the future.
    @Test func timestampMatchesFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        var instants: [Double] = [0, -1, -0.001, 951_782_400, 951_868_799.999, 1_709_164_800, 4_102_444_800, 253_402_300_799.999,
                                  -2_208_988_800, 1_767_225_599.5]
        for _ in 0..<2000 { instants.append(Double(Int64.random(in: -3_000_000_000_000...9_000_000_000_000, using: &generator)) / 1000) }
        for seconds in instants {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(AuditExport.timestamp(date) == formatter.string(from: date), "at \(seconds)")
        }
    }

    /// The three renderings come from one description of the fields: the NDJSON line parses to
    /// exactly the JSON value of the API pages, and each CSV cell holds that value's text (numbers
    /// as the JSON serializer writes them, text neutralised, null empty).
    @Test func ndjsonAndCSVAgreeWithTheJSONValue() throws {
        var full = AuditRecord(
            requestID: "req_\"x\"\n", time: Date(timeIntervalSince1970: 1_767_225_600.123), method: "POST", route: "/v1/chat/completions",
            orgID: 1, projectID: 2, keyID: "gk_1", user: "a,b \"c\"\r\n\u{1}é", provider: "openai", modelRequested: "gpt-4o",
            modelServed: "gpt-4o-2024", status: 502, errorCode: "upstream_error", promptTokens: 0, completionTokens: -1,
            cachedTokens: Int.max, costUSD: 0.000123456789, latencyMs: 12.34567, upstreamLatencyMs: 1e-9, timeToFirstTokenMs: 3,
            cacheHit: true, stream: true,
            attempts: [AuditAttempt(provider: "openai", model: "gpt-4o", status: 503, latencyMs: 1.23456, errorCode: "x,\"y\""),
                       AuditAttempt(provider: "anthropic", model: "claude", status: 200, latencyMs: 2)])
        full.reasoningTokens = 7
        let sparse = AuditRecord(requestID: "req_2", time: Date(timeIntervalSince1970: 0), method: "GET", route: "/v1/models",
                                 status: 401, latencyMs: 0.5)
        for row in [AuditRow(sequence: 9, record: full, projectSlug: "acme/web"), AuditRow(sequence: Int64.max, record: sparse, projectSlug: nil)] {
            let value = AuditExport.json(row)
            #expect(try JSON.parse(AuditExport.ndjsonLine(row)) == value)
            guard case .object(let object) = value else { Issue.record("not an object"); continue }
            let cells = parse(AuditExport.csvLine(row))
            #expect(cells.count == AuditExport.columns.count)
            for (index, entry) in object.entries.enumerated() where index < cells.count {
                #expect(entry.key == AuditExport.columns[index])
                switch entry.value {
                case .null: #expect(cells[index] == "")
                case .string(let text):
                    let formula = ["=", "+", "-", "@", "\t", "\r"].contains(text.unicodeScalars.first.map(String.init) ?? "")
                    #expect(cells[index] == (formula ? "'" : "") + text, "\(entry.key)")
                case .bool(let flag): #expect(cells[index] == (flag ? "true" : "false"))
                default: #expect(cells[index] == entry.value.serializedString(), "\(entry.key)")
                }
            }
        }
    }
}

