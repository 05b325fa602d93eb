import Dispatch
import Foundation

/// Enforces the deadlines of every provider body being read in this process with one timer: a
/// read that has waited longer than `idleSeconds`, or an attempt past its total deadline, gets
/// its task cancelled (which aborts the HTTP read) and is marked timed out, so `readBody` can
/// report which timeout it was rather than a cancel.
///
/// The task handle is only used while the read is registered, and registration ends (under the
/// same lock) before `readBody` returns, so the task is alive whenever it is cancelled.
final class IdleWatchdog: @unchecked Sendable {
    struct Registration: Hashable { let id: UInt64 }

    enum Expiry: Sendable { case idle, total }

    private struct Entry {
        let activity: BodyActivity
        let task: UnsafeCurrentTask
        /// Uptime nanoseconds after which the whole attempt has taken too long.
        let deadline: UInt64
        var expired: Expiry?
    }

    private let lock = NSLock()
    private var entries: [UInt64: Entry] = [:]
    private var nextID: UInt64 = 0
    private var timer: DispatchSourceTimer?
    private let idleNanoseconds: UInt64
    private let interval: DispatchTimeInterval

    init(idleSeconds: Double, totalSeconds: Double) {
        idleNanoseconds = UInt64(idleSeconds * 1e9)
        interval = .milliseconds(Int(min(max(min(idleSeconds, totalSeconds) / 4, 0.01), 1) * 1000))
    }

    func register(activity: BodyActivity, task: UnsafeCurrentTask, deadline: UInt64) -> Registration {
        lock.lock()
        defer { lock.unlock() }
        nextID += 1
        entries[nextID] = Entry(activity: activity, task: task, deadline: deadline)
        if timer == nil { startTimer() }
        return Registration(id: nextID)
    }

    func unregister(_ registration: Registration) {
        lock.lock()
        entries.removeValue(forKey: registration.id)
        lock.unlock()
    }

    /// Which deadline stopped the read, if one did.
    func expiry(_ registration: Registration) -> Expiry? {
        lock.lock()
        defer { lock.unlock() }
        return entries[registration.id]?.expired
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
        let now = DispatchTime.now().uptimeNanoseconds
        for (id, entry) in entries where entry.expired == nil {
            if now > entry.deadline {
                entries[id]?.expired = .total
            } else if entry.activity.waitedNanoseconds > idleNanoseconds {
                entries[id]?.expired = .idle
            } else {
                continue
            }
            entry.task.cancel()
        }
    }
}
