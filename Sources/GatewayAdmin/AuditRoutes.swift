import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore

/// The audit log and usage over REST: keyset pages, whole-selection exports, rollup reports.
struct AuditRoutes {
    let database: AdminDatabase
    let access: AdminAccess

    /// Rows per page read for an export: small enough that no read transaction stays open long
    /// (each page is its own), large enough that the per-page cost disappears.
    static let exportPageSize = 1000

    // MARK: - Filters

    /// The audit filter of a query string, narrowed to the token's scope. A project or key
    /// outside the scope is 404, as if it did not exist.
    func filter(_ query: AdminQuery) async throws -> AuditFilter {
        var filter = AuditFilter()
        filter.keyID = query.string("key")
        filter.model = query.string("model")
        filter.provider = query.string("provider")
        filter.user = query.string("user")
        filter.status = try query.int("status", in: 100...599)
        filter.from = try query.date("from")
        filter.to = try query.date("to")
        if let from = filter.from, let to = filter.to, to <= from {
            throw GatewayError.invalidRequest("'to' must be after 'from'.", param: "to")
        }
        let access = self.access, projectSlug = query.string("project"), unscoped = filter
        return try await database.run { try access.scoped(unscoped, projectSlug: projectSlug, in: $0) }
    }

    // MARK: - Routes

    func list(_ query: AdminQuery, response: AdminResponse) async throws {
        let filter = try await self.filter(query)
        switch query.string("format") {
        case nil, "json":
            break
        case "ndjson":
            try await export(filter, format: .ndjson, response: response)
            return
        case "csv":
            try await export(filter, format: .csv, response: response)
            return
        case let other?:
            throw GatewayError.invalidRequest("Unknown format '\(other)'; use json, ndjson or csv.", param: "format")
        }
        let limit = try query.int("limit", in: 1...1000) ?? 100
        let cursor: AuditCursor?
        if let token = query.string("cursor") {
            guard let parsed = AuditCursor(token: token) else {
                throw GatewayError.invalidRequest("'cursor' is not a cursor this API returned.", param: "cursor")
            }
            cursor = parsed
        } else {
            cursor = nil
        }
        let page = try await database.run { try $0.auditPage(filter, limit: limit, after: cursor) }
        try await response.json(AdminJSON.list(page.rows.map(AuditExport.json),
                                               extra: [("next_cursor", page.next.map { .string($0.token) } ?? .null)]))
    }

    func detail(requestID: String, response: AdminResponse) async throws {
        let scope = access.token.scope
        guard let row = try await database.run({ try $0.auditRow(requestID: requestID, scope: scope) }) else {
            throw GatewayError.notFound("No request '\(requestID)' in the audit log.")
        }
        try await response.json(AuditExport.json(row))
    }

    enum ExportFormat: Sendable { case ndjson, csv }

    /// The whole selection, newest first, written page by page as it is read: memory stays flat
    /// whatever the size, and nginx passes the bytes on as they come (`X-Accel-Buffering: no`).
    func export(_ filter: AuditFilter, format: ExportFormat, response: AdminResponse) async throws {
        let stamp = AuditExport.timestamp(Date()).replacingOccurrences(of: ":", with: "")
        var headers = response.headers(contentType: format == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson")
        headers.add(name: "Content-Disposition", value: "attachment; filename=\"deploxa-audit-\(stamp).\(format == .csv ? "csv" : "ndjson")\"")
        headers.add(name: "X-Accel-Buffering", value: "no")
        // Each page is read *and formatted* on the admin queue: a million rows of CSV is seconds
        // of CPU that must not sit on the cooperative pool the worker's chat requests run on.
        // The first page is read before the head is sent, so a failing database is still a clean error.
        var page = try await database.run { try Self.exportPage($0, filter, after: nil, format: format) }
        try await response.writer.writeHead(status: 200, headers: headers)
        if format == .csv { try await response.writer.writeBody(Array((AuditExport.csvHeader + "\r\n").utf8), flush: false) }
        while true {
            try await response.writer.writeBody(page.bytes, flush: true)
            guard let next = page.next else { return }
            do {
                page = try await database.run { try Self.exportPage($0, filter, after: next, format: format) }
            } catch {
                // The head is gone; an NDJSON reader sees a last line saying why the export stopped.
                if format == .ndjson { try await response.writer.writeBody(ErrorBody.exportInterrupted, flush: true) }
                throw ExportInterrupted()
            }
        }
    }

    /// One page of an export, formatted.
    static func exportPage(_ store: any AdminStore, _ filter: AuditFilter, after cursor: AuditCursor?,
                           format: ExportFormat) throws -> (bytes: [UInt8], next: AuditCursor?) {
        let page = try store.auditPage(filter, limit: exportPageSize, after: cursor)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(page.rows.count * 480)
        for row in page.rows {
            switch format {
            case .csv: AuditExport.appendCSVLine(row, to: &bytes)
            case .ndjson: AuditExport.appendNDJSONLine(row, to: &bytes)
            }
        }
        return (bytes, page.next)
    }

    // MARK: - Usage

    func usage(_ query: AdminQuery, response: AdminResponse) async throws {
        let groupText = query.string("group_by") ?? "model"
        guard let grouping = UsageGrouping(rawValue: groupText) else {
            throw GatewayError.invalidRequest("'group_by' must be one of \(UsageGrouping.allCases.map(\.rawValue).joined(separator: ", ")).",
                                              param: "group_by")
        }
        let to = try query.date("to") ?? Date()
        let from = try query.date("from") ?? to.addingTimeInterval(-30 * 86_400)
        guard from < to else { throw GatewayError.invalidRequest("'to' must be after 'from'.", param: "to") }
        let access = self.access
        let projectSlug = query.string("project")
        let (rows, total) = try await database.run { store -> ([UsageRow], UsageRow) in
            let projectID = try projectSlug.map { try access.project($0, in: store).id }
            return (try store.usage(groupBy: grouping, scope: access.token.scope, projectID: projectID, from: from, to: to),
                    try store.usageTotal(scope: access.token.scope, projectID: projectID, from: from, to: to))
        }
        try await response.json([
            "object": "usage", "from": .string(AuditExport.timestamp(from)), "to": .string(AuditExport.timestamp(to)),
            "group_by": .string(grouping.rawValue), "data": .array(rows.map(Self.usageJSON)),
            "total": Self.usageJSON(total),
        ])
    }

    static func usageJSON(_ row: UsageRow) -> JSON {
        func ms(_ value: Double?) -> JSON { value.map { .double(($0 * 10).rounded() / 10) } ?? .null }
        return [
            "group": .string(row.group), "requests": .int(Int64(row.requests)),
            "prompt_tokens": .int(Int64(row.promptTokens)), "completion_tokens": .int(Int64(row.completionTokens)),
            "total_tokens": .int(Int64(row.totalTokens)), "cached_tokens": .int(Int64(row.cachedTokens)),
            "cost_usd": .double(row.costUSD), "unknown_cost_requests": .int(Int64(row.unknownCostRequests)),
            "cache_hits": .int(Int64(row.cacheHits)), "errors": .int(Int64(row.errors)),
            "latency_ms": ["p50": ms(row.latencyP50Ms), "p95": ms(row.latencyP95Ms), "p99": ms(row.latencyP99Ms)],
            "ttft_ms": ["p50": ms(row.ttftP50Ms), "p95": ms(row.ttftP95Ms), "p99": ms(row.ttftP99Ms)],
        ]
    }
}

/// An export stopped after its head was sent; the connection is closed short.
struct ExportInterrupted: Error {}

enum ErrorBody {
    static let exportInterrupted = Array(
        (GatewayError.serviceUnavailable("The export was interrupted: the gateway's database failed. Retry it.").body.serializedString() + "\n").utf8)
}
