#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The connection's busy handler. SQLite's own (`sqlite3_busy_timeout`) sleeps 1, 2, 5, 10 …
/// 100 ms between retries, so with several writing processes a transaction that loses one race
/// waits milliseconds after the lock is free and the worst ones wait seconds (docs/design-notes.md,
/// trap 5). Write transactions here last microseconds, so this one polls in short randomized
/// steps (50 µs growing to 500 µs, jittered so waiting processes do not retry in lockstep)
/// until the total timeout is spent.
final class BusyWaiter {
    let timeoutNanoseconds: UInt64
    private var startedAt: UInt64 = 0
    private var state: UInt64

    init(timeoutMilliseconds: Int) {
        timeoutNanoseconds = UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        var seed: UInt64 = 0
        while seed == 0 { seed = UInt64.random(in: 1...UInt64.max) }
        state = seed
    }

    /// Called by SQLite with `attempt` = 0, 1, 2 … for one lock conflict; `true` means "retry".
    func shouldRetry(attempt: Int32) -> Bool {
        let now = BusyWaiter.monotonicNanoseconds()
        if attempt == 0 { startedAt = now }
        let elapsed = now &- startedAt
        guard elapsed < timeoutNanoseconds else { return false }
        let ceiling = UInt64(min(500, 50 + 10 * Int(attempt)))  // µs
        let floor = ceiling / 2
        var sleep = (floor + nextRandom() % (ceiling - floor + 1)) * 1_000  // ns
        sleep = min(sleep, timeoutNanoseconds - elapsed)
        var request = timespec(tv_sec: 0, tv_nsec: Int(sleep))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        return true
    }

    /// xorshift64*: cheap, and jitter needs no cryptographic quality.
    private func nextRandom() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
