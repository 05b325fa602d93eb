import Foundation
import GatewayCore

/// An audit record as one JSON object keyed by `audit_log` column names: the line format of the
/// audit journal and of the writer's last-resort `audit-fallback:` lines, so either can be read
/// back into the table. Secrets never reach a record, so none can reach these lines.
enum AuditRecordCoding {
    static func json(_ record: AuditRecord) -> JSON {
        func value<T>(_ optional: T?, _ wrap: (T) -> JSON) -> JSON { optional.map(wrap) ?? .null }
        func int(_ optional: Int?) -> JSON { value(optional) { .int(Int64($0)) } }
        let attempts: [JSON] = record.attempts.map { attempt in
            ["provider": .string(attempt.provider), "model": .string(attempt.model), "status": .int(Int64(attempt.status)),
             "latencyMs": .double(attempt.latencyMs), "errorCode": value(attempt.errorCode, JSON.string)]
        }
        return [
            "request_id": .string(record.requestID),
            "time_ms": .int(StoreTime.milliseconds(record.time)),
            "method": .string(record.method),
            "route": .string(record.route),
            "org_id": value(record.orgID, JSON.int),
            "project_id": value(record.projectID, JSON.int),
            "key_id": value(record.keyID, JSON.string),
            "user": value(record.user, JSON.string),
            "provider": value(record.provider, JSON.string),
            "model_requested": value(record.modelRequested, JSON.string),
            "model_served": value(record.modelServed, JSON.string),
            "status": .int(Int64(record.status)),
            "error_code": value(record.errorCode, JSON.string),
            "prompt_tokens": int(record.promptTokens),
            "completion_tokens": int(record.completionTokens),
            "cached_tokens": int(record.cachedTokens),
            "reasoning_tokens": int(record.reasoningTokens),
            "cache_write_tokens": int(record.cacheWriteTokens),
            "cost_usd": value(record.costUSD, JSON.double),
            "spend_settled": .bool(record.spendSettled),
            "latency_ms": .double(record.latencyMs),
            "upstream_latency_ms": value(record.upstreamLatencyMs, JSON.double),
            "ttft_ms": value(record.timeToFirstTokenMs, JSON.double),
            "cache_hit": .bool(record.cacheHit),
            "stream": .bool(record.stream),
            "attempts": .array(attempts),
        ]
    }

    /// The same object as `json(_:)`, written straight into `output` (`{"phase":…,"row":{…}}` for
    /// the journal): the journal writes two lines per request, and building the JSON tree first
    /// cost more than the write itself.
    static func writeJournalLine(phase: String, _ record: AuditRecord, into output: inout [UInt8]) {
        var writer = ObjectWriter(output: output)
        output = []
        writer.open()
        writer.key("phase"); JSON.writeString(phase, to: &writer.output)
        writer.key("row")
        writer.open()
        writer.field("request_id", record.requestID)
        writer.field("time_ms", Int64?(StoreTime.milliseconds(record.time)))
        writer.field("method", record.method)
        writer.field("route", record.route)
        writer.field("org_id", record.orgID)
        writer.field("project_id", record.projectID)
        writer.field("key_id", record.keyID)
        writer.field("user", record.user)
        writer.field("provider", record.provider)
        writer.field("model_requested", record.modelRequested)
        writer.field("model_served", record.modelServed)
        writer.field("status", Int64?(Int64(record.status)))
        writer.field("error_code", record.errorCode)
        writer.field("prompt_tokens", record.promptTokens.map(Int64.init))
        writer.field("completion_tokens", record.completionTokens.map(Int64.init))
        writer.field("cached_tokens", record.cachedTokens.map(Int64.init))
        writer.field("reasoning_tokens", record.reasoningTokens.map(Int64.init))
        writer.field("cache_write_tokens", record.cacheWriteTokens.map(Int64.init))
        writer.field("cost_usd", record.costUSD)
        writer.field("spend_settled", record.spendSettled)
        writer.field("latency_ms", Double?(record.latencyMs))
        writer.field("upstream_latency_ms", record.upstreamLatencyMs)
        writer.field("ttft_ms", record.timeToFirstTokenMs)
        writer.field("cache_hit", record.cacheHit)
        writer.field("stream", record.stream)
        writer.key("attempts")
        if record.attempts.isEmpty {
            writer.output.append(contentsOf: "[]".utf8)
        } else {
            // Rare (only requests that reached a provider) and short: the tree is fine here.
            JSON.array(json(record).objectValue?["attempts"]?.arrayValue ?? []).write(to: &writer.output)
        }
        writer.close()
        writer.close()
        output = writer.output
    }

    /// Writes one JSON object's members in order.
    private struct ObjectWriter {
        var output: [UInt8]
        private var first = true

        init(output: [UInt8]) { self.output = output }

        mutating func open() {
            output.append(UInt8(ascii: "{"))
            first = true
        }

        mutating func close() { output.append(UInt8(ascii: "}")) }

        mutating func key(_ name: String) {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            JSON.writeString(name, to: &output)
            output.append(UInt8(ascii: ":"))
        }

        mutating func field(_ name: String, _ value: String?) {
            key(name)
            if let value { JSON.writeString(value, to: &output) } else { output.append(contentsOf: "null".utf8) }
        }

        mutating func field(_ name: String, _ value: Int64?) {
            key(name)
            output.append(contentsOf: (value.map { String($0) } ?? "null").utf8)
        }

        mutating func field(_ name: String, _ value: Double?) {
            key(name)
            (value.map(JSON.double) ?? JSON.null).write(to: &output)
        }

        mutating func field(_ name: String, _ value: Bool) {
            key(name)
            output.append(contentsOf: (value ? "true" : "false").utf8)
        }
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
