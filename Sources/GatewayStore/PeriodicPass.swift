import Dispatch

/// Runs a janitor's pass every `interval` seconds on its own serial Dispatch queue, off the
/// request path. The first pass comes after a random part of the interval, so the workers of one
/// box do not all start theirs together. `close` stops it and waits for a pass in progress.
public final class PeriodicPass: @unchecked Sendable {
    private let queue: DispatchQueue
    /// Touched only on `queue`.
    private var timer: DispatchSourceTimer?

    public init(label: String, interval: Double, _ pass: @escaping @Sendable () -> Void) {
        queue = DispatchQueue(label: label)
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval * Double.random(in: 0.25...1), repeating: interval,
                       leeway: .milliseconds(Int(interval * 100)))
        timer.setEventHandler { [weak self] in
            // A pass already queued when `close` ran does not start.
            guard self?.timer != nil else { return }
            pass()
        }
        queue.sync { self.timer = timer }
        timer.resume()
    }

    /// Idempotent.
    public func close() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }
}
