import Testing
@testable import GatewayStorePostgres
import GatewayStore
import Foundation

@Suite struct PostgresLocationTests {
    @Test func tcpURLWithUserPortAndDatabase() throws {
        let location = try PostgresLocation(url: "postgresql://gateway@db.internal:6432/deploxa", environment: [:])
        #expect(location.host == "db.internal")
        #expect(location.port == 6432)
        #expect(location.user == "gateway")
        #expect(location.database == "deploxa")
        #expect(location.tls == .prefer)
        #expect(location.password == nil)
    }

    @Test func socketDirectoryFromHostParameter() throws {
        let location = try PostgresLocation(url: "postgresql://postgres@/deploxa?host=/tmp/pg&port=5544", environment: [:])
        #expect(location.host == nil)
        #expect(location.socketDirectory == "/tmp/pg")
        #expect(location.port == 5544)
        #expect(location.tls == .disable)
    }

    @Test func loopbackDefaultsToNoTLS() throws {
        #expect(try PostgresLocation(url: "postgresql://u@127.0.0.1/d", environment: [:]).tls == .disable)
        #expect(try PostgresLocation(url: "postgresql://u@127.0.0.1/d?sslmode=require", environment: [:]).tls == .require)
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgresql://u@h/d?sslmode=allow", environment: [:]) }
    }

    @Test func passwordInTheURLIsRefusedWithoutEchoingIt() {
        do {
            _ = try PostgresLocation(url: "postgresql://u:hunter2secret@h/d", environment: [:])
            Issue.record("a password in the URL was accepted")
        } catch {
            #expect(!"\(error)".contains("hunter2secret"))
            #expect("\(error)".contains("PGPASSWORD"))
        }
    }

    @Test func passwordFromEnvironmentNeverInDescription() throws {
        let location = try PostgresLocation(url: "postgresql://u@h:5433/d", environment: ["PGPASSWORD": "s3cret-value"])
        #expect(location.password == "s3cret-value")
        #expect(!location.description.contains("s3cret-value"))
        #expect(location.description == "postgresql://u@h:5433/d")
    }

    @Test func passFileMatchesWildcardsAndEscapes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pgpass").path
        try "# comment\nother:5432:*:u:wrong\nh:*:d:u:pa\\:ss\\\\word\n".write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        let location = try PostgresLocation(url: "postgresql://u@h/d", environment: ["PGPASSFILE": file])
        #expect(location.password == "pa:ss\\word")
        // Readable by others: ignored, as libpq does.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        #expect(try PostgresLocation(url: "postgresql://u@h/d", environment: ["PGPASSFILE": file]).password == nil)
    }

    @Test func notAPostgresURL() {
        #expect(!PostgresLocation.isPostgresURL("/var/lib/deploxa/gw.db"))
        #expect(PostgresLocation.isPostgresURL("postgres://x@y/z"))
    }
}

@Suite struct PostgresScriptTests {
    @Test func splitsOnSemicolonsOutsideQuotesCommentsAndDollarBodies() {
        let script = """
            -- a comment; not a statement
            CREATE TABLE t (a text DEFAULT 'x;y');
            /* block; comment */ INSERT INTO t VALUES ('it''s; fine');
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
            BEGIN
                PERFORM 1; RETURN 2;
            END $body$;
            SELECT $1::int, $$a;b$$;
            """
        let statements = PostgresScript.statements(script)
        #expect(statements.count == 4)
        #expect(statements[0].hasSuffix("DEFAULT 'x;y')"))
        #expect(statements[1].contains("'it''s; fine'"))
        #expect(statements[2].contains("PERFORM 1; RETURN 2;"))
        #expect(statements[2].hasSuffix("END $body$"))
        #expect(statements[3] == "SELECT $1::int, $$a;b$$")
    }

    @Test func arrayLiteralsQuoteAndKeepNulls() {
        #expect(PostgresArrayLiteral.text(["k:gk_1", "p:2", "a\"b\\c"]) == #"{"k:gk_1","p:2","a\"b\\c"}"#)
        #expect(PostgresArrayLiteral.bigint([1000, nil, -3]) == "{1000,NULL,-3}")
        #expect(PostgresArrayLiteral.text([]) == "{}")
    }
}
