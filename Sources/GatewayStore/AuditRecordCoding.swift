import Foundation
import GatewayCore

/// An audit record as one JSON object keyed by `audit_log` column names: the line format of the
/// audit journal and of the writer's last-resort `audit-fallback:` lines, so either can be read
/// back into the table. Secrets never reach a record, so none can reach these lines.
public enum AuditRecordCoding {
    /// One column of a row, as both writers below put it.
    private enum Value {
        case text(String?), integer(Int64?), real(Double?), flag(Bool)

        var json: JSON {
            switch self {
            case .text(let value): return value.map(JSON.string) ?? .null
            case .integer(let value): return value.map(JSON.int) ?? .null
            case .real(let value): return value.map(JSON.double) ?? .null
            case .flag(let value): return .bool(value)
            }
        }

        func write(to output: inout [UInt8]) {
            switch self {
            case .text(let value?): JSON.writeString(value, to: &output)
            case .integer(let value?): output.append(contentsOf: String(value).utf8)
            case .flag(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
            default: json.write(to: &output)
            }
        }
    }

    /// The row's columns but the attempts, in order: the one list both `json` and the journal's
    /// lines are written from.
    private static func columns(_ record: AuditRecord) -> KeyValuePairs<String, Value> {
        func int(_ value: Int?) -> Value { .integer(value.map(Int64.init)) }
        return [
            "request_id": .text(record.requestID),
            "time_ms": .integer(StoreTime.milliseconds(record.time)),
            "method": .text(record.method),
            "route": .text(record.route),
            "org_id": .integer(record.orgID),
            "project_id": .integer(record.projectID),
            "key_id": .text(record.keyID),
            "user": .text(record.user),
            "provider": .text(record.provider),
            "model_requested": .text(record.modelRequested),
            "model_served": .text(record.modelServed),
            "status": int(record.status),
            "error_code": .text(record.errorCode),
            "prompt_tokens": int(record.promptTokens),
            "completion_tokens": int(record.completionTokens),
            "cached_tokens": int(record.cachedTokens),
            "reasoning_tokens": int(record.reasoningTokens),
            "cache_write_tokens": int(record.cacheWriteTokens),
            "cost_usd": .real(record.costUSD),
            "spend_settled": .flag(record.spendSettled),
            "latency_ms": .real(record.latencyMs),
            "upstream_latency_ms": .real(record.upstreamLatencyMs),
            "ttft_ms": .real(record.timeToFirstTokenMs),
            "cache_hit": .flag(record.cacheHit),
            "stream": .flag(record.stream),
        ]
    }

    /// The attempts as a JSON array (also the `attempts` column of `audit_log`); `errorCode` only
    /// when there is one.
    public static func attemptsJSON(_ attempts: [AuditAttempt]) -> JSON {
        .array(attempts.map { attempt in
            var entries: [(String, JSON)] = [("provider", .string(attempt.provider)), ("model", .string(attempt.model)),
                                             ("status", .int(Int64(attempt.status))), ("latencyMs", .double(attempt.latencyMs))]
            if let code = attempt.errorCode { entries.append(("errorCode", .string(code))) }
            return .object(JSONObject(entries))
        })
    }

    public static func json(_ record: AuditRecord) -> JSON {
        .object(JSONObject(columns(record).map { ($0.key, $0.value.json) } + [("attempts", attemptsJSON(record.attempts))]))
    }

    /// The same object as `json(_:)` inside `{"phase":…,"row":{…}}`, written straight into
    /// `output` (the journal writes two lines per request; building the JSON tree first cost more
    /// than the write itself).
    static func writeJournalLine(phase: String, _ record: AuditRecord, into output: inout [UInt8]) {
        output.append(contentsOf: #"{"phase":"#.utf8)
        JSON.writeString(phase, to: &output)
        output.append(contentsOf: #","row":{"#.utf8)
        for (name, value) in columns(record) {
            JSON.writeString(name, to: &output)
            output.append(UInt8(ascii: ":"))
            value.write(to: &output)
            output.append(UInt8(ascii: ","))
        }
        output.append(contentsOf: #""attempts":"#.utf8)
        attemptsJSON(record.attempts).write(to: &output)
        output.append(contentsOf: "}}".utf8)
    }

    /// The record back from `json(_:)`; nil when the object lacks what every row needs.
    static func record(_ json: JSON) -> AuditRecord? {
        guard case .object(let object) = json, let requestID = object["request_id"]?.stringValue,
              let timeMs = object["time_ms"]?.intValue, let status = object["status"]?.intValue else { return nil }
        func string(_ key: String) -> String? { object[key]?.stringValue }
        func int(_ key: String) -> Int? { object[key]?.intValue.map { Int(clamping: $0) } }
        func double(_ key: String) -> Double? { object[key]?.doubleValue }
        let attempts: [AuditAttempt] = (object["attempts"]?.arrayValue ?? []).compactMap { item in
            guard let provider = item["provider"]?.stringValue, let model = item["model"]?.stringValue else { return nil }
            return AuditAttempt(provider: provider, model: model, status: Int(clamping: item["status"]?.intValue ?? 0),
                                latencyMs: item["latencyMs"]?.doubleValue ?? 0, errorCode: item["errorCode"]?.stringValue)
        }
        var record = AuditRecord(
            requestID: requestID, time: StoreTime.date(timeMs), method: string("method") ?? "", route: string("route") ?? "",
            orgID: object["org_id"]?.intValue, projectID: object["project_id"]?.intValue, keyID: string("key_id"),
            user: string("user"), provider: string("provider"), modelRequested: string("model_requested"),
            modelServed: string("model_served"), status: Int(clamping: status), errorCode: string("error_code"),
            promptTokens: int("prompt_tokens"), completionTokens: int("completion_tokens"), cachedTokens: int("cached_tokens"),
            costUSD: double("cost_usd"), latencyMs: double("latency_ms") ?? 0, upstreamLatencyMs: double("upstream_latency_ms"),
            timeToFirstTokenMs: double("ttft_ms"), cacheHit: object["cache_hit"]?.boolValue ?? false,
            stream: object["stream"]?.boolValue ?? false, attempts: attempts)
        record.reasoningTokens = int("reasoning_tokens")
        record.cacheWriteTokens = int("cache_write_tokens")
        record.spendSettled = object["spend_settled"]?.boolValue ?? false
        return record
    }
}
