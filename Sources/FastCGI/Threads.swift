#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CPoolSupport

/// Starts an OS thread outside Swift concurrency. The accept threads run here, so libfcgi's
/// blocking reads of a request never take a thread of the cooperative pool (writes that can block
/// go to each request's Dispatch queue: see FastCGIResponseWriter). A named C-convention entry
/// point, not a closure literal handed to pthread_create from main.swift: see
/// docs/design-notes.md, trap 2.
func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    pthread_attr_setstacksize(&attributes, 1 << 20)
    let result = pthread_create(&thread, &attributes, threadEntry, box)
    pthread_attr_destroy(&attributes)
    precondition(result == 0, "pthread_create failed: \(result)")
    return thread
}

private final class ThreadBody {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

private func threadEntry(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let box = Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue()
    // Named for `top -H`, `perf` and /proc (the kernel keeps the first 15 bytes).
    _ = pool_name_thread(box.name)
    box.body()
    return nil
}
