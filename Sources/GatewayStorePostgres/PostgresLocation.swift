import Foundation
import GatewayStore

/// Where the shared database is, from `--db postgresql://user@host:port/database`. The password
/// never comes from the command line, where `ps` and shell history would show it: it is read
/// from `PGPASSWORD` or a `.pgpass` file (`PGPASSFILE`, else `~/.pgpass`), as libpq reads them,
/// so the operator's existing Postgres setup just works. `description` never shows it.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// TLS as libpq's `sslmode` names it (a subset): `disable`, `prefer` (TLS when the server
    /// offers it, unverified), `require` (TLS, unverified), `verify-full` (TLS, certificate and name checked).
    public enum TLSMode: String, Sendable { case disable, prefer, require, verifyFull = "verify-full" }

    /// A TCP host, or nil for a unix socket in `socketDirectory`.
    public var host: String?
    public var socketDirectory: String?
    public var port: Int
    public var user: String
    public var database: String
    public var password: String?
    public var tls: TLSMode
    /// Each node's connections name themselves so that `pg_stat_activity` shows whose they are.
    public var applicationName = "deploxa-gateway"

    /// Whether `--db` names a Postgres database rather than an SQLite file.
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    /// Parses the URL; throws `.invalidArgument` (without echoing a password) when it cannot be used.
    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.isPostgresURL(url), let components = URLComponents(string: url) else {
            throw StoreError(.invalidArgument, "not a postgresql:// URL")
        }
        if components.password != nil {
            throw StoreError(.invalidArgument,
                             "the database URL holds a password; give it in PGPASSWORD or a .pgpass file instead (the command line is visible to every user of the machine)")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let urlHost = components.percentEncodedHost.flatMap { $0.removingPercentEncoding }.flatMap { $0.isEmpty ? nil : $0 }
        let hostParameter = query["host"] ?? environment["PGHOST"]
        if let urlHost {
            host = urlHost
            socketDirectory = nil
        } else if let hostParameter, !hostParameter.hasPrefix("/") {
            host = hostParameter
            socketDirectory = nil
        } else {
            host = nil
            socketDirectory = hostParameter ?? "/var/run/postgresql"
        }
        port = components.port ?? query["port"].flatMap(Int.init) ?? environment["PGPORT"].flatMap(Int.init) ?? 5432
        guard (1...65535).contains(port) else { throw StoreError(.invalidArgument, "port out of range in the database URL") }
        user = components.user.flatMap { $0.isEmpty ? nil : $0 } ?? environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? (environment["PGDATABASE"] ?? user) : (path.removingPercentEncoding ?? path)
        let mode = query["sslmode"] ?? environment["PGSSLMODE"] ?? (host == nil || Self.isLoopback(host!) ? "disable" : "prefer")
        guard let tls = TLSMode(rawValue: mode) else {
            throw StoreError(.invalidArgument, "sslmode must be disable, prefer, require or verify-full")
        }
        self.tls = tls
        if let name = query["application_name"], !name.isEmpty { applicationName = name }
        password = environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Self.passwordFromPassFile(environment: environment, host: host, port: port, database: database, user: user)
    }

    /// The URL without any secret, for logs and `--json` output.
    public var description: String {
        let server = host.map { "\($0):\(port)" } ?? ""
        let socket = socketDirectory.map { "?host=\($0)&port=\(port)" } ?? ""
        return "postgresql://\(user)@\(server)/\(database)\(socket)"
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// libpq's `.pgpass`: `host:port:database:user:password` lines, `*` matching anything, `\:` and
    /// `\\` escaped; a unix socket matches host `localhost`. Like libpq, a file readable by group or
    /// others is ignored (with a warning), since anyone could read the password from it.
    static func passwordFromPassFile(environment: [String: String], host: String?, port: Int, database: String,
                                     user: String) -> String? {
        let path = environment["PGPASSFILE"] ?? (environment["HOME"].map { $0 + "/.pgpass" } ?? "")
        guard !path.isEmpty, let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            FileHandle.standardError.write(Data("deploxa-gateway: ignoring \(path): it is readable by other users (chmod 0600 it)\n".utf8))
            return nil
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let wanted = [host ?? "localhost", String(port), database, user]
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let fields = splitPassLine(String(line))
            guard fields.count == 5 else { continue }
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }

    static func splitPassLine(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == ":" && fields.count < 4 {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields
    }
}
