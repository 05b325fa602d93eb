import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Gateway keys")
struct KeyTests {
    private func setUp() throws -> (TestDatabase, Project) {
        let database = try TestDatabase()
        _ = try database.store.createOrg(name: "acme", limits: Limits(monthlyBudgetUSD: 100))
        let project = try database.store.createProject(orgName: "acme", name: "web", plan: .team)
        return (database, project)
    }

    /// Workers cache prices; the version read with every key lookup tells them when to re-read.
    @Test func everySettingChangeBumpsTheVersionReadWithTheKey() throws {
        let (database, project) = try setUp()
        let store = database.store
        let (_, secret) = try store.createKey(projectID: project.id)
        func version() throws -> Int64 {
            guard case .valid(let key) = try store.authenticate(secret: secret) else { throw StoreError(.notFound, "key") }
            return key.settingsVersion
        }
        let start = try version()
        try store.setPrice(Price(model: "o3", provider: "openai", input: 2, output: 8))
        let afterPrice = try version()
        #expect(afterPrice > start)
        try store.setPrice(Price(model: "o3", provider: "openai", input: 3, output: 9))
        #expect(try version() > afterPrice)
        #expect(try version() == version())  // reading does not bump it
    }

    @Test func formatOfIdAndSecret() throws {
        let (database, project) = try setUp()
        let (key, secret) = try database.store.createKey(projectID: project.id, name: "ci")
        #expect(key.id.wholeMatch(of: /gk_[0-9a-f]{12}/) != nil)
        #expect(secret.wholeMatch(of: /dpx_[0-9a-f]{12}_[0-9A-Za-z]{40}/) != nil)
        #expect(secret.dropFirst(4).prefix(12) == key.id.dropFirst(3))
        #expect(KeySecret.keyID(fromSecret: secret) == key.id)
        #expect(KeySecret.isValidID(key.id))
        let other = try database.store.createKey(projectID: project.id)
        #expect(other.key.id != key.id && other.secret != secret)
    }

    @Test func createListLookUpRevoke() throws {
        let (database, project) = try setUp()
        let store = database.store
        let limits = Limits(requestsPerMinute: 10, tokensPerMinute: 1000, monthlyBudgetUSD: 5)
        let (first, _) = try store.createKey(projectID: project.id, name: "first", limits: limits)
        let (second, _) = try store.createKey(projectID: project.id)
        #expect(try store.key(id: first.id) == first)
        #expect(first.limits == limits && first.name == "first" && second.name == nil)
        #expect(Set(try store.keys(projectID: project.id).map(\.id)) == [first.id, second.id])
        #expect(try store.key(id: "gk_000000000000") == nil)

        #expect(try store.revokeKey(id: first.id))
        let revokedAt = try #require(try store.key(id: first.id)?.revokedAt)
        Thread.sleep(forTimeInterval: 0.01)
        #expect(try store.revokeKey(id: first.id))
        #expect(try store.key(id: first.id)?.revokedAt == revokedAt)
        #expect(try store.revokeKey(id: "gk_ffffffffffff") == false)
        #expect(try store.key(id: second.id)?.isRevoked == false)
    }

    @Test func keyNeedsAnExistingProject() throws {
        let (database, _) = try setUp()
        let error = #expect(throws: StoreError.self) { try database.store.createKey(projectID: 4242) }
        #expect(error?.kind == .notFound)
    }

    @Test func authenticateValid() throws {
        let (database, project) = try setUp()
        let (key, secret) = try database.store.createKey(projectID: project.id, name: "ci")
        guard case .valid(let authenticated) = try database.store.authenticate(secret: secret) else {
            Issue.record("expected a valid key")
            return
        }
        #expect(authenticated.key == key)
        #expect(authenticated.project == project)
        #expect(authenticated.org == (try database.store.org(named: "acme")))
    }

    @Test func authenticateUnknownAndMalformed() throws {
        let (database, project) = try setUp()
        let (_, secret) = try database.store.createKey(projectID: project.id)
        let store = database.store
        var wrongTail = Array(secret.utf8)
        wrongTail[wrongTail.count - 1] = wrongTail.last == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        let malformed = [
            "", "dpx_", "Bearer " + secret, secret + "x", String(secret.dropLast()), secret.uppercased(),
            "sk-" + secret.dropFirst(3), secret.replacingOccurrences(of: "dpx_", with: "dpy_"),
            String(secret.prefix(16)) + "-" + secret.dropFirst(17), String(secret.dropLast()) + "é",
        ]
        for candidate in malformed {
            #expect(KeySecret.keyID(fromSecret: candidate) == nil, "\(candidate)")
            #expect(try store.authenticate(secret: candidate) == .unknown)
        }
        // Well-formed, right id, wrong secret.
        #expect(try store.authenticate(secret: String(decoding: wrongTail, as: UTF8.self)) == .unknown)
        // Well-formed, unknown id.
        #expect(try store.authenticate(secret: "dpx_000000000000_" + String(repeating: "A", count: 40)) == .unknown)
    }

    @Test func authenticateRevoked() throws {
        let (database, project) = try setUp()
        let (key, secret) = try database.store.createKey(projectID: project.id)
        #expect(try database.store.revokeKey(id: key.id))
        #expect(try database.store.authenticate(secret: secret) == .revoked)
        // A wrong secret for a revoked key says nothing about the key.
        let wrong = String(secret.dropLast()) + (secret.hasSuffix("Z") ? "Y" : "Z")
        #expect(try database.store.authenticate(secret: wrong) == .unknown)
    }

    @Test func onlyTheHashIsStored() throws {
        let (database, project) = try setUp()
        let store = database.store
        var secrets: [String] = []
        for index in 0..<20 { secrets.append(try store.createKey(projectID: project.id, name: "k\(index)").secret) }
        let (key, secret) = try store.createKey(projectID: project.id)
        let stored = try #require(try store.connection.queryFirst("SELECT secret_hash FROM gateway_keys WHERE id = ?",
                                                                   [.text(key.id)]) { $0.blob(0) })
        #expect(stored == KeySecret.hashBytes(secret))
        #expect(try store.authenticate(secret: secret) != .unknown)

        // Nothing of any secret's random part is in the database file or its WAL.
        for path in [database.path, database.path + "-wal"] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            for candidate in secrets + [secret] {
                #expect(bytes.range(of: Data(candidate.utf8)) == nil)
                #expect(bytes.range(of: Data(candidate.suffix(40).utf8)) == nil)
            }
        }
        _ = try store.connection.pragma("wal_checkpoint(TRUNCATE)")
        let checkpointed = try Data(contentsOf: URL(fileURLWithPath: database.path))
        for candidate in secrets + [secret] { #expect(checkpointed.range(of: Data(candidate.suffix(40).utf8)) == nil) }
    }

    @Test func hashIsSHA256() {
        let hex = KeySecret.hashBytes("abc").map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func constantTimeComparison() {
        let digest = KeySecret.digest("x")
        let same = KeySecret.hashBytes("x")
        var different = same
        different[31] ^= 1
        #expect(same.withUnsafeBytes { KeySecret.constantTimeEquals(digest, $0) })
        #expect(!different.withUnsafeBytes { KeySecret.constantTimeEquals(digest, $0) })
        #expect(!Array(same.prefix(16)).withUnsafeBytes { KeySecret.constantTimeEquals(digest, $0) })
        #expect(![UInt8]().withUnsafeBytes { KeySecret.constantTimeEquals(digest, $0) })
    }

    @Test func authenticateFromManyThreads() throws {
        let (database, project) = try setUp()
        let created = try (0..<4).map { _ in try database.store.createKey(projectID: project.id) }
        let store = database.store
        let failures = Collector<String>()
        runOnThreads(4) { index in
            for _ in 0..<500 {
                guard case .valid(let auth) = try? store.authenticate(secret: created[index].secret), auth.key.id == created[index].key.id else {
                    failures.append("thread \(index)")
                    return
                }
            }
        }
        #expect(failures.values.isEmpty)
    }
}
