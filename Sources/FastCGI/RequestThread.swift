#if canImport(Glibc)
import Glibc
#endif
import CPoolSupport
import Synchronization

/// The executor a worker's requests run on: one OS thread that both accepts FastCGI connections
/// and runs the Swift tasks of the requests it accepted, like an event loop.
///
/// Why not Swift's cooperative pool: the pipeline's store calls block (SQLite, and its busy
/// handler's short sleeps when another process holds the write lock), and the pool has one
/// thread per core — two here — shared with everything else; and every hand-off to it is a
/// thread wake-up. Here a request's synchronous work (reading it, authenticating, admitting,
/// translating, writing a small answer) runs on the thread that accepted it, with no hand-off;
/// only the provider call leaves it (for the HTTP client's event loop) and comes back when the
/// answer arrives. Requests still interleave at every `await`, so a slow provider holds no thread.
final class RequestThread: TaskExecutor, @unchecked Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    /// Written to wake the thread from `epoll_wait` when a job arrives from another thread.
    let wakeReadEnd: Int32
    private let wakeWriteEnd: Int32
    /// The thread that runs the jobs (set by `claimCurrentThread` before any job is enqueued).
    private var owner = pthread_t()

    init() {
        var fds: [Int32] = [0, 0]
        precondition(pool_pipe_cloexec(&fds) == 0, "pipe2 failed")
        wakeReadEnd = fds[0]
        wakeWriteEnd = fds[1]
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    deinit {
        close(wakeReadEnd)
        close(wakeWriteEnd)
    }

    /// Makes the calling thread the one that runs this executor's jobs.
    func claimCurrentThread() { owner = pthread_self() }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let first = jobs.withLock { queue in
            queue.append(job)
            return queue.count == 1
        }
        // The owner drains the queue before it waits again, so only a job from another thread
        // that finds the queue empty needs to wake it.
        if first && pthread_equal(pthread_self(), owner) == 0 { wake() }
    }

    /// Wakes the thread from `epoll_wait` (a job arrived, or it should look at its stop flag).
    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWriteEnd, &byte, 1)  // a full pipe is already readable: nothing lost
    }

    /// Empties the wake pipe after `epoll_wait` said it was readable. A read that comes back short
    /// emptied it: no second read just to learn that.
    func clearWake() {
        var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        let size = MemoryLayout.size(ofValue: buffer)
        while read(wakeReadEnd, &buffer, size) == size {}
    }

    /// Runs every queued job, including the ones they queue, until none is left. Owner thread only.
    func runPending() {
        while true {
            var batch: [UnownedJob] = []
            jobs.withLock { swap(&batch, &$0) }
            if batch.isEmpty { return }
            let executor = asUnownedTaskExecutor()
            for job in batch { job.runSynchronously(on: executor) }
        }
    }
}
