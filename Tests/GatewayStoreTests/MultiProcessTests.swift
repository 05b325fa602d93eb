import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// Several worker processes share one file: the test binary re-executes itself with
/// `--filter` naming `childProcess()`, which does real work only when the environment says so.
///
/// On Linux `swift test` runs Swift Testing's tests as `<…>PackageTests.xctest [--filter X]
/// --testing-library swift-testing` (and XCTest's in a separate run of the same binary), so the
/// children are started the same way, from /proc/self/exe. Each child proves that it ran by
/// writing a result file; a child that cannot start, fails or writes nothing fails the test.
@Suite("Multi-process")
struct MultiProcessTests {
    static let childVariable = "DEPLOXA_STORE_TEST_CHILD"
    static let processes = 4
    static let iterations = 500
    /// RPM of the shared counter the children hammer: half of all their attempts.
    static let hammerLimit = processes * iterations / 2
    /// A child that has not finished by then is stuck: it is killed and the test fails.
    static let childTimeoutSeconds = 120.0

    /// This test binary, to be started again as a child.
    static func testBinary() -> String? {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        let first = CommandLine.arguments.first ?? ""
        return first.hasPrefix("/") ? first : nil
    }

    @Test func severalProcessesShareOneFile() throws {
        #if os(Linux)
        guard let binary = Self.testBinary(), FileManager.default.isExecutableFile(atPath: binary) else {
            Issue.record("cannot find this test binary to start the child processes (/proc/self/exe, argv \(CommandLine.arguments))")
            return
        }
        let arguments = ["--testing-library", "swift-testing", "--filter", "childProcess"]
        let folder = try TemporaryFolder()
        let path = folder.path()
        let startAt = Date().timeIntervalSince1970 + 1.5  // after every child has started up
        var children: [Process] = []
        defer {
            for process in children where process.isRunning { process.terminate() }
        }
        for index in 0..<Self.processes {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment
            environment[Self.childVariable] = "\(path)|\(index)|\(startAt)"
            process.environment = environment
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            _ = FileManager.default.createFile(atPath: folder.path("child-\(index).log"), contents: nil)
            process.standardError = FileHandle(forWritingAtPath: folder.path("child-\(index).log"))
            do {
                try process.run()
            } catch {
                Issue.record("child \(index) could not be started as `\(binary) \(arguments.joined(separator: " "))`: \(error)")
                return
            }
            children.append(process)
        }
        let deadline = Date().addingTimeInterval(Self.childTimeoutSeconds)
        for (index, process) in children.enumerated() {
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            if process.isRunning {
                Issue.record("child \(index) still running after \(Int(Self.childTimeoutSeconds)) s; killed")
                process.terminate()
            }
            process.waitUntilExit()
        }

        var applied: [String] = []
        var admitted = 0
        var refused = 0
        for (index, process) in children.enumerated() {
            let result = (try? String(contentsOfFile: folder.path("child-\(index).result"), encoding: .utf8)) ?? ""
            let log = (try? String(contentsOfFile: folder.path("child-\(index).log"), encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "child \(index) exited with \(process.terminationStatus): \(log)")
            #expect(result.hasPrefix("ok"), """
                child \(index) left no result file, so it did not run childProcess() \
                (`\(binary) \(arguments.joined(separator: " "))`, exit status \(process.terminationStatus)): \(log)
                """)
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
            case .keyConfirmed, .keyChanged: Issue.record("a plan without a key check got a key answer")
            }
        }
        waits.sort()
        let p99 = waits[waits.count * 99 / 100]
        let result = "ok\napplied=\(applied.joined(separator: ","))\np99_ms=\(String(format: "%.3f", p99))\nmax_ms=\(String(format: "%.3f", waits.last!))\nadmitted=\(admitted)\nrefused=\(refused)\n"
        try result.write(toFile: (path as NSString).deletingLastPathComponent + "/child-\(index).result", atomically: true, encoding: .utf8)
    }
}
