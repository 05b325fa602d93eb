#if canImport(Glibc)
import Glibc
#endif
import CPoolSupport

/// Where a worker's two busy threads run. Every request goes from the worker's request thread to
/// its HTTP client's event loop and back, each side waking the other and then going to sleep. Left
/// to the kernel, the woken thread lands on its previous CPU when that one is idle, and waking an
/// idle CPU costs 30–40 µs on a virtual machine (the host must run the halted vCPU again), several
/// times per request. Bound to one CPU, the woken thread runs there as soon as the waker sleeps,
/// in about 5 µs. Workers are the unit of parallelism (one per core, as php-fpm pools are sized),
/// so each worker gets its own CPU: BENCHMARKS.md, "One CPU per worker"; docs/design-notes.md,
/// trap 15.
public enum CPUAffinity {
    /// `serve --cpu-affinity`.
    public enum Policy: String, Sendable, CaseIterable {
        /// A worker with one request thread binds it and its client's event loop to one CPU:
        /// worker slot i takes the i-th CPU (wrapping) of those the process may run on.
        case auto
        /// The kernel places every thread.
        case none
    }

    /// The CPUs the calling thread may run on (its affinity mask: a container's cpuset, `taskset`),
    /// ascending; empty when the kernel would not say.
    public static func allowedCPUs() -> [Int] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = pool_allowed_cpus(&cpus, Int32(cpus.count))
        guard count > 0 else { return [] }
        return cpus[0..<Int(count)].map(Int.init)
    }

    /// The CPU that worker `slot` binds its threads to, or nil to leave them to the kernel: under
    /// `.none`, for a worker without a slot (started by hand, or as CGI), for several request
    /// threads (they are there to run on several CPUs), or when there is no choice to make.
    public static func cpu(forWorkerSlot slot: Int?, policy: Policy, requestThreads: Int, allowed: [Int]) -> Int? {
        guard policy == .auto, let slot, slot >= 0, requestThreads == 1, allowed.count > 1 else { return nil }
        return allowed[slot % allowed.count]
    }

    /// Binds the calling thread to `cpu`; false when the kernel refused (the thread stays where it
    /// may run). Threads it starts afterwards inherit the binding.
    @discardableResult
    public static func bindCurrentThread(to cpu: Int) -> Bool {
        pool_bind_thread_to_cpu(Int32(cpu)) == 0
    }
}
