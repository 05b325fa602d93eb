import Foundation
import GatewayStore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The admin API's and dashboard's own database connections: reads on an OS thread of their own
/// that the kernel runs only when the CPU would otherwise idle (`SCHED_IDLE`; nice 19 where that
/// is refused), changes on a second connection at normal priority.
///
/// Admin reads are heavy now and then: a usage report over months, a million-row export formatted
/// page by page. Run on the request path's connection or on Swift's cooperative pool (two threads
/// on a two-core box) they would delay chat requests; run at any ordinary priority they still take
/// CPU from them (measured: nice 10 left the data plane's p99 at 2.2× while an export ran, see
/// BENCHMARKS.md). At idle priority they take only what the request path leaves, and they hold
/// nothing a chat request waits for: WAL lets them read while others write, and an export reads
/// page by page. Changes (a key, a setting, a login) are not starved like that, because a starved
/// thread holding SQLite's write lock would block every worker's admissions: they are single short
/// transactions at normal priority. Connections are opened on first use: a worker that never
/// serves an admin request, and a CGI process, never open them.
public final class AdminDatabase: @unchecked Sendable {
    private let open: @Sendable () throws -> any AdminStore
    private let writeQueue = DispatchQueue(label: "deploxa-admin-writes")
    /// Touched only on `writeQueue`.
    private var writeStore: (any AdminStore)?
    private let readThread = IdlePriorityThread()
    /// Touched only on `readThread`.
    private var readStore: (any AdminStore)?

    public init(open: @escaping @Sendable () throws -> any AdminStore) {
        self.open = open
    }

    public convenience init(store: any AdminStore) {
        self.init(open: { store })
    }

    deinit {
        // No job is pending (each holds `self`): nothing else touches the connections now.
        readStore?.close()
        writeStore?.close()
        readThread.stop()
    }

    /// Runs a change with the admin's write connection, at normal priority.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any AdminStore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            writeQueue.async {
                continuation.resume(with: Result {
                    let store = try self.writeStore ?? self.open()
                    self.writeStore = store
                    return try body(store)
                })
            }
        }
    }

    /// Runs a read with the admin's read connection, on the idle-priority thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable (any AdminStore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            readThread.submit {
                continuation.resume(with: Result {
                    let store = try self.readStore ?? self.open()
                    self.readStore = store
                    return try body(store)
                })
            }
        }
    }

    /// Closes both connections once the jobs before this call have run.
    public func close() {
        let done = DispatchSemaphore(value: 0)
        readThread.submit {
            self.readStore?.close()
            self.readStore = nil
            done.signal()
        }
        done.wait()
        writeQueue.sync {
            writeStore?.close()
            writeStore = nil
        }
    }
}

/// One OS thread that runs submitted jobs in order at idle CPU priority. It holds only itself,
/// so it ends when told to (`stop`), whatever happened to its owner.
private final class IdlePriorityThread: Sendable {
    /// Jobs in order; nil marks the end. `available` counts them for the thread to wait on.
    private let jobs = Mutex<[(@Sendable () -> Void)?]>([])
    private let available = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [self] in serve() }
        thread.name = "deploxa-admin-db"
        thread.start()
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    func stop() {
        jobs.withLock { $0.append(nil) }
        available.signal()
    }

    private func serve() {
        Self.lowerThisThreadsPriority()
        while true {
            available.wait()
            guard let job = jobs.withLock({ $0.removeFirst() }) else { return }
            job()
        }
    }

    /// `SCHED_IDLE` for the calling thread (policy 5 on Linux; Glibc's constant is not visible to
    /// Swift); where that is refused, nice 19 for it alone (`setpriority(PRIO_PROCESS, tid)`, the
    /// thread id read from `/proc/thread-self`).
    private static func lowerThisThreadsPriority() {
        #if canImport(Glibc)
        var parameters = sched_param()
        parameters.sched_priority = 0
        if pthread_setschedparam(pthread_self(), 5, &parameters) == 0 { return }
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"),
              let tid = link.split(separator: "/").last.flatMap({ id_t($0) }) else { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, 19)
        #endif
    }
}
