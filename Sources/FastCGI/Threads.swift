#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Starts a detached-from-Swift-concurrency OS thread. Blocking libfcgi calls run on threads made
/// here, never on the cooperative pool. (A named C-convention entry point, not a closure literal
/// handed to pthread_create from main.swift: see docs/design-notes.md, trap 2.)
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
    box.body()
    return nil
}

/// A lock-protected value, for the few pieces of state shared with OS threads.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private var mutex = pthread_mutex_t()

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&value)
    }
}
