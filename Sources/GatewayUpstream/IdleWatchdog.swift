import Dispatch
import Foundation

/// Enforces the idle deadline of every provider body being read in this process with one timer:
/// a read that has waited longer than `idleSeconds` gets its task cancelled (which aborts the
/// HTTP read) and is marked timed out, so `readBody` can report a timeout rather than a cancel.
///
/// The task handle is only used while the read is registered, and registration ends (under the
/// same lock) before `readBody` returns, so the task is alive whenever it is cancelled.
final class IdleWatchdog: @unchecked Sendable {
    struct Registration: Hashable { let id: UInt64 }

    private struct Entry {
        let activity: BodyActivity
        let task: UnsafeCurrentTask
        var timedOut = false
    }

    private let lock = NSLock()
    private var entries: [UInt64: Entry] = [:]
    private var nextID: UInt64 = 0
    private var timer: DispatchSourceTimer?
    private let idleNanoseconds: UInt64
    private let interval: DispatchTimeInterval

    init(idleSeconds: Double) {
        idleNanoseconds = UInt64(idleSeconds * 1e9)
        interval = .milliseconds(Int(min(max(idleSeconds / 4, 0.01), 1) * 1000))
    }

    func register(activity: BodyActivity, task: UnsafeCurrentTask) -> Registration {
        lock.lock()
        defer { lock.unlock() }
        nextID += 1
        entries[nextID] = Entry(activity: activity, task: task)
        if timer == nil { startTimer() }
        return Registration(id: nextID)
    }

    func unregister(_ registration: Registration) {
        lock.lock()
        entries.removeValue(forKey: registration.id)
        lock.unlock()
    }

    func timedOut(_ registration: Registration) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return entries[registration.id]?.timedOut ?? false
    }

    func stop() {
        lock.lock()
        timer?.cancel()
        timer = nil
        lock.unlock()
    }

    /// Called with the lock held.
    private func startTimer() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(5))
        timer.setEventHandler { [weak self] in self?.scan() }
        timer.resume()
        self.timer = timer
    }

    private func scan() {
        lock.lock()
        defer { lock.unlock() }
        for (id, entry) in entries where !entry.timedOut && entry.activity.waitedNanoseconds > idleNanoseconds {
            entries[id]?.timedOut = true
            entry.task.cancel()
        }
    }
}
