import CSQLite
import Foundation

/// A value bound to a `?` parameter. Values only ever reach SQLite through bindings, never by
/// being spliced into SQL text.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    public static func int(_ value: Int?) -> SQLValue { value.map { .integer(Int64($0)) } ?? .null }
    public static func int64(_ value: Int64?) -> SQLValue { value.map(SQLValue.integer) ?? .null }
    public static func real(_ value: Double?) -> SQLValue { value.map(SQLValue.double) ?? .null }
    public static func string(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    public static func bool(_ value: Bool) -> SQLValue { .integer(value ? 1 : 0) }
}

/// A prepared statement borrowed from the connection's cache for the length of one closure.
/// Never keep it: the connection resets it and clears its bindings when the closure returns.
public struct SQLiteStatement {
    let handle: OpaquePointer
    let database: OpaquePointer

    /// Binds `values` to parameters 1...n.
    public func bind(_ values: [SQLValue]) throws {
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1))
        }
    }

    public func bind(_ value: SQLValue, at index: Int32) throws {
        switch value {
        case .null: try check(sqlite3_bind_null(handle, index))
        case .integer(let number): try bind(number, at: index)
        case .double(let number): try check(sqlite3_bind_double(handle, index, number))
        case .text(let text): try bind(text, at: index)
        case .blob(let bytes): try bind(bytes: bytes, at: index)
        }
    }

    public func bind(_ value: Int64, at index: Int32) throws {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    public func bind(_ value: String, at index: Int32) throws {
        // The String is bridged to a temporary C string; SQLITE_TRANSIENT makes SQLite copy it.
        try check(sqlite3_bind_text(handle, index, value, Int32(value.utf8.count), deploxa_sqlite_transient()))
    }

    public func bind(bytes: [UInt8], at index: Int32) throws {
        let code = bytes.withUnsafeBytes { buffer in
            // A zero-length blob still needs a non-NULL pointer, or SQLite stores NULL.
            sqlite3_bind_blob(handle, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count),
                              deploxa_sqlite_transient())
        }
        try check(code)
    }

    /// Advances one row: `true` when a row is available in `row`, `false` when done.
    public func step() throws -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw StoreError.sqlite(code, String(cString: sqlite3_errmsg(database)))
        }
    }

    /// Makes the statement ready to run again with new bindings (within the same borrow).
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// The current row; valid until the next `step()`.
    public var row: SQLiteRow { SQLiteRow(handle: handle) }

    private func check(_ code: Int32) throws {
        guard code == SQLITE_OK else { throw StoreError.sqlite(code, String(cString: sqlite3_errmsg(database))) }
    }
}

/// Column accessors for the current row (0-based indexes, as in SQLite).
public struct SQLiteRow {
    let handle: OpaquePointer

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    public func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    public func bool(_ column: Int32) -> Bool { sqlite3_column_int64(handle, column) != 0 }

    public func string(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    public func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }
    public func optionalInt(_ column: Int32) -> Int? { isNull(column) ? nil : int(column) }
    public func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
    public func optionalString(_ column: Int32) -> String? { isNull(column) ? nil : string(column) }

    /// The blob's bytes without copying them; the buffer is valid only inside `body`.
    public func withBlob<R>(_ column: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let pointer = sqlite3_column_blob(handle, column)
        let count = Int(sqlite3_column_bytes(handle, column))
        return try body(UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : count))
    }

    public func blob(_ column: Int32) -> [UInt8] { withBlob(column) { Array($0) } }
}
