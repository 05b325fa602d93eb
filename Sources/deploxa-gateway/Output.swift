import Foundation
import GatewayCore

/// Prints rows as an aligned text table, or as JSON.
enum Output {
    static func table(_ headers: [String], _ rows: [[String]]) {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(headers))
        for row in rows { print(line(row)) }
        if rows.isEmpty { print("(none)") }
    }

    /// A state-reading command's answer: one JSON object per row with `--json`, else a table.
    static func list<Row>(_ rows: [Row], json: Bool, headers: [String], object: (Row) -> JSON, cells: (Row) -> [String]) {
        if json {
            Output.json(.array(rows.map(object)))
        } else {
            table(headers, rows.map(cells))
        }
    }

    /// The RPM, TPM and budget cells of a table row.
    static func limitCells(_ limits: Limits) -> [String] {
        [optional(limits.requestsPerMinute), optional(limits.tokensPerMinute), optional(limits.monthlyBudgetUSD)]
    }

    static func json(_ value: JSON) {
        print(value.serializedString())
    }

    static func optional<T>(_ value: T?) -> String {
        value.map { "\($0)" } ?? "-"
    }

    static func limitsJSON(_ limits: Limits) -> JSON {
        [
            "rpm": limits.requestsPerMinute.map { .int(Int64($0)) } ?? .null,
            "tpm": limits.tokensPerMinute.map { .int(Int64($0)) } ?? .null,
            "monthly_budget_usd": limits.monthlyBudgetUSD.map(JSON.double) ?? .null,
        ]
    }

    static func timestamp(_ date: Date?) -> String {
        guard let date else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
