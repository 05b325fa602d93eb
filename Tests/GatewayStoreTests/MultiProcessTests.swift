import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// Several worker processes share one file: the test binary re-executes itself with
/// `--filter` naming `childProcess()`, which does real work only when the environment says so.
@Suite("Multi-process")
struct MultiProcessTests {
    static let childVariable = "DEPLOXA_STORE_TEST_CHILD"
    static let processes = 4
    static let iterations = 500
    /// RPM of the shared counter the children hammer: half of all their attempts.
    static let hammerLimit = processes * iterations / 2

    @Test func severalProcessesShareOneFile() throws {
        #if os(Linux)
        let binary = CommandLine.arguments[0]
        guard binary.hasSuffix(".xctest"), CommandLine.arguments.contains("swift-testing") else { return }
        let folder = try TemporaryFolder()
        let path = folder.path()
        let startAt = Date().timeIntervalSince1970 + 1.5  // after every child has started up
        var children: [Process] = []
        for index in 0..<Self.processes {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--testing-library", "swift-testing", "--filter", "childProcess"]
            var environment = ProcessInfo.processInfo.environment
            environment[Self.childVariable] = "\(path)|\(index)|\(startAt)"
            process.environment = environment
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            _ = FileManager.default.createFile(atPath: folder.path("child-\(index).log"), contents: nil)
            process.standardError = FileHandle(forWritingAtPath: folder.path("child-\(index).log"))
            try process.run()
            children.append(process)
        }
        for process in children { process.waitUntilExit() }

        var applied: [String] = []
        var admitted = 0
        var refused = 0
        for (index, process) in children.enumerated() {
            let result = (try? String(contentsOfFile: folder.path("child-\(index).result"), encoding: .utf8)) ?? ""
            let log = (try? String(contentsOfFile: folder.path("child-\(index).log"), encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "child \(index): \(log)")
            #expect(result.hasPrefix("ok"), "child \(index) left no result: \(log)")
            let fields = result.split(separator: "\n")
            applied += fields.filter { $0.hasPrefix("applied=") }.flatMap { $0.dropFirst(8).split(separator: ",").map(String.init) }
            admitted += fields.first { $0.hasPrefix("admitted=") }.flatMap { Int($0.dropFirst(9)) } ?? 0
            refused += fields.first { $0.hasPrefix("refused=") }.flatMap { Int($0.dropFirst(8)) } ?? 0
            print("child \(index): \(fields.dropFirst().joined(separator: ", "))")
        }
        // Four processes migrated a fresh file at the same moment: each step was applied exactly
        // once in all (possibly by different children).
        #expect(applied.sorted() == Migrations.all.map(\.name).sorted())
        // One RPM counter hammered by four processes: exactly the limit got through, and no
        // SQLITE_BUSY surfaced (a child would have failed).
        #expect(admitted == Self.hammerLimit)
        #expect(refused == Self.processes * Self.iterations - Self.hammerLimit)
        let store = try GatewayStore(path: path)
        #expect(try store.connection.queryFirst("SELECT n FROM counter WHERE id = 1") { $0.int(0) }
                == Self.processes * Self.iterations)
        #expect(try store.auditCount() == Self.processes * Self.iterations)
        #endif
    }

    /// The child's side; a no-op in a normal run.
    @Test func childProcess() throws {
        guard let spec = ProcessInfo.processInfo.environment[Self.childVariable] else { return }
        let parts = spec.split(separator: "|").map(String.init)
        let (path, index, startAt) = (parts[0], Int(parts[1])!, Double(parts[2])!)
        Thread.sleep(forTimeInterval: max(0, startAt - Date().timeIntervalSince1970))

        let store = try GatewayStore(path: path)
        let applied = try store.migrate()
        try store.connection.writeTransaction {
            try store.connection.execute("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
            try store.connection.execute("INSERT OR IGNORE INTO counter (id, n) VALUES (1, 0)")
        }
        let writer = AuditWriter(store: try GatewayStore(path: path))
        var waits: [Double] = []
        for iteration in 0..<Self.iterations {
            let started = Date()
            try store.connection.writeTransaction {
                try store.connection.execute("UPDATE counter SET n = n + 1 WHERE id = 1")
            }
            waits.append(Date().timeIntervalSince(started) * 1000)
            writer.enqueue(makeRecord("req_p\(index)_\(iteration)"))
        }
        writer.close()
        var admitted = 0
        var refused = 0
        let plan = AdmissionPlan(scopes: [.init(scope: LimitScope(.key, "gk_hammer"), limits: Limits(requestsPerMinute: Self.hammerLimit))],
                                 estimatedTokens: 0, now: Date(timeIntervalSince1970: startAt))
        for _ in 0..<Self.iterations {
            switch try store.admit(plan) {
            case .admitted: admitted += 1
            case .rejected: refused += 1
            }
        }
        waits.sort()
        let p99 = waits[waits.count * 99 / 100]
        let result = "ok\napplied=\(applied.joined(separator: ","))\np99_ms=\(String(format: "%.3f", p99))\nmax_ms=\(String(format: "%.3f", waits.last!))\nadmitted=\(admitted)\nrefused=\(refused)\n"
        try result.write(toFile: (path as NSString).deletingLastPathComponent + "/child-\(index).result", atomically: true, encoding: .utf8)
    }
}
