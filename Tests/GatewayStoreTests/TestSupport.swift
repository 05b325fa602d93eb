import Foundation
import GatewayCore
import Synchronization
@testable import GatewayStore

/// A fresh folder for one test's database files (WAL needs a real file), removed afterwards.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("deploxa-store-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String = "gateway.db") -> String { url.appendingPathComponent(name).path }
}

/// A migrated store in its own folder; keeps the folder alive as long as the store.
final class TestDatabase {
    let folder: TemporaryFolder
    let store: GatewayStore
    var path: String { store.path }

    init(busyTimeoutMilliseconds: Int = 5000) throws {
        folder = try TemporaryFolder()
        store = try GatewayStore(path: folder.path(), busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try store.migrate()
    }

    /// Another connection to the same file.
    func openAnother(busyTimeoutMilliseconds: Int = 5000) throws -> GatewayStore {
        try GatewayStore(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
    }
}

/// Holds the database's write lock from another connection, on its own thread, until the
/// returned semaphore is signalled (what another process's long transaction looks like).
func holdWriteLock(_ database: TestDatabase) throws -> DispatchSemaphore {
    let holder = try database.openAnother()
    let holding = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    Thread {
        try? holder.connection.writeTransaction {
            holding.signal()
            release.wait()
        }
    }.start()
    holding.wait()
    return release
}

/// Runs `body(index)` on `count` OS threads at once and waits for all of them.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    let start = DispatchSemaphore(value: 0)
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            start.wait()
            body(index)
            group.leave()
        }
        thread.start()
    }
    for _ in 0..<count { start.signal() }
    group.wait()
}

/// Collects values from several threads.
final class Collector<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func append(_ item: T) { items.withLock { $0.append(item) } }
    var values: [T] { items.withLock { $0 } }
}

func makeRecord(_ requestID: String, time: Date = Date(timeIntervalSince1970: 1_750_000_000), projectID: Int64? = nil,
                keyID: String? = nil, modelRequested: String? = "gpt-4o", modelServed: String? = "gpt-4o",
                status: Int = 200, attempts: [AuditAttempt] = []) -> AuditRecord {
    AuditRecord(requestID: requestID, time: time, method: "POST", route: "/v1/chat/completions",
                orgID: projectID == nil ? nil : 1, projectID: projectID, keyID: keyID, user: "u1",
                provider: "openai", modelRequested: modelRequested, modelServed: modelServed, status: status,
                errorCode: status == 200 ? nil : "upstream_error", promptTokens: 10, completionTokens: 20,
                cachedTokens: nil, costUSD: status == 200 ? 0.00125 : nil, latencyMs: 12.5, upstreamLatencyMs: 10.25,
                timeToFirstTokenMs: nil, cacheHit: false, stream: false, attempts: attempts)
}
