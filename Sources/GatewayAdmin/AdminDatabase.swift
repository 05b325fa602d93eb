import Foundation
import GatewayStore
#if canImport(Glibc)
import Glibc
#endif

/// The admin API's and dashboard's own database connection, used on its own OS thread that runs
/// at a lower CPU priority (nice 10) than the worker's request path.
///
/// Admin work is heavy now and then: a usage report over months, a million-row export formatted
/// page by page. Run on the request path's connection or on Swift's cooperative pool (two threads
/// on a two-core box) it would delay chat requests; run at the same priority it would still take
/// half the CPU from them. On its own thread at nice 10 the kernel gives it what the request path
/// leaves (about a tenth under contention, all of it when idle). It never holds what a chat
/// request waits for: WAL lets it read while others write, an export reads page by page (no read
/// transaction stays open between pages), and its writes (a key, a setting) are single short
/// transactions. The connection is opened on first use: a worker that never serves an admin
/// request, and a CGI process, never open it.
public final class AdminDatabase: @unchecked Sendable {
    /// Nice value of the admin thread (0 = the request path's).
    public static let niceness: Int32 = 10

    private let open: @Sendable () throws -> GatewayStore
    private let lock = NSLock()
    private let available = DispatchSemaphore(value: 0)
    /// Guarded by `lock`.
    private var jobs: [() -> Void] = []
    /// Touched only on the admin thread.
    private var store: GatewayStore?
    private var stopped = false

    public init(open: @escaping @Sendable () throws -> GatewayStore) {
        self.open = open
        let thread = Thread { [unowned self] in self.serve() }
        thread.name = "deploxa-admin-db"
        thread.start()
    }

    public convenience init(store: GatewayStore) {
        self.init(open: { store })
    }

    /// Runs `body` with the admin connection on the admin thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable (GatewayStore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit {
                continuation.resume(with: Result {
                    let store = try self.store ?? self.open()
                    self.store = store
                    return try body(store)
                })
            }
        }
    }

    /// Closes the connection and ends the thread once the jobs before it have run.
    public func close() {
        let done = DispatchSemaphore(value: 0)
        submit {
            self.store?.close()
            self.store = nil
            self.stopped = true
            done.signal()
        }
        done.wait()
    }

    /// Per-thread on Linux: `setpriority(PRIO_PROCESS, tid)` names that thread alone. The thread
    /// id is read from `/proc/thread-self` (Swift sees neither `gettid` nor `syscall`).
    private static func lowerThisThreadsPriority() {
        #if canImport(Glibc)
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"),
              let tid = link.split(separator: "/").last.flatMap({ id_t($0) }) else { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, niceness)
        #endif
    }

    private func submit(_ job: @escaping () -> Void) {
        lock.withLock { jobs.append(job) }
        available.signal()
    }

    private func serve() {
        Self.lowerThisThreadsPriority()
        while !stopped {
            available.wait()
            let job = lock.withLock { jobs.removeFirst() }
            job()
        }
    }
}
