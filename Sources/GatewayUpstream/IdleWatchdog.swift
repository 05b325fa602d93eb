import Dispatch
import Foundation
import Synchronization

/// Enforces the deadlines of every provider body being read in this process with one timer: a
/// read that has waited longer than `idleSeconds`, or an attempt past its total deadline, gets
/// the task that reads it cancelled (which aborts the HTTP read) and is marked timed out, so
/// `readBody` can report which timeout it was rather than a cancel.
///
/// A read registers a cancel action (in `readBody`, `cancel()` on the `Task` handle of the task
/// reading the body). A task handle may be kept and cancelled at any time, even after the task
/// has ended, so the watchdog never holds a reference into a task's frame.
final class IdleWatchdog: Sendable {
    struct Registration: Hashable { let id: UInt64 }

    enum Expiry: Sendable { case idle, total }

    private struct Entry {
        let activity: BodyActivity
        let cancel: @Sendable () -> Void
        /// Uptime nanoseconds after which the whole attempt has taken too long.
        let deadline: UInt64
        var expired: Expiry?
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextID: UInt64 = 0
        var timer: DispatchSourceTimer?
    }

    private let state = Mutex(State())
    private let idleNanoseconds: UInt64
    private let interval: DispatchTimeInterval

    init(idleSeconds: Double, totalSeconds: Double) {
        idleNanoseconds = UInt64(idleSeconds * 1e9)
        interval = .milliseconds(Int(min(max(min(idleSeconds, totalSeconds) / 4, 0.01), 1) * 1000))
    }

    func register(activity: BodyActivity, deadline: UInt64, cancel: @escaping @Sendable () -> Void) -> Registration {
        state.withLock { state in
            state.nextID += 1
            state.entries[state.nextID] = Entry(activity: activity, cancel: cancel, deadline: deadline)
            if state.timer == nil { state.timer = startTimer() }
            return Registration(id: state.nextID)
        }
    }

    func unregister(_ registration: Registration) {
        state.withLock { _ = $0.entries.removeValue(forKey: registration.id) }
    }

    /// Which deadline stopped the read, if one did.
    func expiry(_ registration: Registration) -> Expiry? {
        state.withLock { $0.entries[registration.id]?.expired }
    }

    func stop() {
        state.withLock { state in
            state.timer?.cancel()
            state.timer = nil
        }
    }

    private func startTimer() -> DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(5))
        timer.setEventHandler { [weak self] in self?.scan() }
        timer.resume()
        return timer
    }

    private func scan() {
        let now = DispatchTime.now().uptimeNanoseconds
        let idleNanoseconds = self.idleNanoseconds
        // Marked under the lock, cancelled after it: a read that fails from the cancel already
        // finds its expiry, and a cancellation handler never runs with the lock held.
        let expired: [@Sendable () -> Void] = state.withLock { state in
            var expired: [@Sendable () -> Void] = []
            for (id, entry) in state.entries where entry.expired == nil {
                if now > entry.deadline {
                    state.entries[id]?.expired = .total
                } else if entry.activity.waitedNanoseconds > idleNanoseconds {
                    state.entries[id]?.expired = .idle
                } else {
                    continue
                }
                expired.append(entry.cancel)
            }
            return expired
        }
        for cancel in expired { cancel() }
    }
}
