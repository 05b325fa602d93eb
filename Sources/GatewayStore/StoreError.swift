import CSQLite

/// Every failure of the store, reduced to what a caller can act on: `.busy` means "the database
/// stayed locked past the busy timeout" (map it to 503 with Retry-After), `.constraint` and
/// `.notFound` are the caller's mistakes, the rest are the gateway's. The message is safe to log
/// and to show an operator: it never holds a bound value (secrets are only ever bound).
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// SQLITE_BUSY / SQLITE_LOCKED after the busy handler gave up.
        case busy
        /// UNIQUE, NOT NULL, CHECK or FOREIGN KEY violated.
        case constraint
        /// A named row (org, project, key) does not exist.
        case notFound
        /// A value refused before reaching SQLite (a malformed name, say).
        case invalidArgument
        /// The file could not be opened, read or written (I/O error, full disk, corrupt, read-only).
        case io
        /// Anything else SQLite reported.
        case other
    }

    public var kind: Kind
    public var message: String
    /// SQLite's extended result code, when the error came from SQLite.
    public var resultCode: Int32?

    public init(_ kind: Kind, _ message: String, resultCode: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.resultCode = resultCode
    }

    public var description: String { "store error (\(kind.rawValue)): \(message)" }

    /// Classifies an SQLite result code. `message` is `sqlite3_errmsg`, which names tables and
    /// columns but never bound values.
    static func sqlite(_ code: Int32, _ message: String) -> StoreError {
        let kind: Kind
        switch code & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: kind = .busy
        case SQLITE_CONSTRAINT: kind = .constraint
        case SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_NOTADB,
             SQLITE_PERM, SQLITE_PROTOCOL:
            kind = .io
        case SQLITE_MISUSE, SQLITE_RANGE: kind = .invalidArgument
        default: kind = .other
        }
        return StoreError(kind, message, resultCode: code)
    }
}
