import Foundation
import GatewayCore
import GatewayStore
import NIOCore
import PostgresNIO

/// Reading a result cell by position, the way the SQLite store reads its rows: integers as
/// Int64 whatever their width, NULL as nil. A type the schema does not produce is a programming
/// error, reported as `.other` rather than a crash.
extension PostgresRandomAccessRow {
    func int64(_ index: Int) throws -> Int64 {
        guard let value = try optionalInt64(index) else { throw StoreError(.other, "column \(index) is NULL") }
        return value
    }

    func optionalInt64(_ index: Int) throws -> Int64? {
        try decoded(index, Int64?.self)
    }

    func optionalInt(_ index: Int) throws -> Int? { try optionalInt64(index).map { Int(clamping: $0) } }

    func string(_ index: Int) throws -> String {
        guard let value = try optionalString(index) else { throw StoreError(.other, "column \(index) is NULL") }
        return value
    }

    func optionalString(_ index: Int) throws -> String? { try decoded(index, String?.self) }

    func optionalDouble(_ index: Int) throws -> Double? { try decoded(index, Double?.self) }

    func bool(_ index: Int) throws -> Bool {
        let cell = self[index]
        if cell.dataType == .bool { return try decoded(index, Bool?.self) ?? false }
        return (try optionalInt64(index) ?? 0) != 0
    }

    func bytes(_ index: Int) throws -> [UInt8] { try optionalBytes(index) ?? [] }

    func optionalBytes(_ index: Int) throws -> [UInt8]? {
        try decoded(index, ByteBuffer?.self).map { Array($0.readableBytesView) }
    }

    func date(_ index: Int) throws -> Date { StoreTime.date(try int64(index)) }

    private func decoded<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws -> T {
        do {
            return try self[index].decode(T.self)
        } catch {
            throw StoreError(.other, "cannot read column \(index) as \(T.self)")
        }
    }
}

/// Postgres array literals (`{…}`) for text and nullable bigint arrays, bound as text and cast
/// in the statement: PostgresNIO has no encoding for an array with NULL elements.
enum PostgresArrayLiteral {
    static func text(_ values: [String]) -> String {
        "{" + values.map { value in
            "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }.joined(separator: ",") + "}"
    }

    static func bigint(_ values: [Int64?]) -> String {
        "{" + values.map { $0.map(String.init) ?? "NULL" }.joined(separator: ",") + "}"
    }
}
