import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// One provider call between AsyncHTTPClient's delegate callbacks, which run on the client's
/// event loop, and the request that waits for its head and reads its body.
///
/// Why not the client's async `execute`: it starts a Swift task and goes through an actor for
/// every call, and cancels its deadline timer from off the event loop; each of those wakes a
/// thread, about two more wake-ups per request than this (docs/design-notes.md, trap 9). Here
/// the call is started on the loop (one hand-off to it: started from another thread, the client
/// hops to its loop two or three times), the loop hands the head and each body part straight to
/// the waiting request (one wake-up of the request's thread; the head's once the loop has handed
/// over what came with it, so a small answer wakes the request once), the first-byte timer is set and
/// cancelled on the loop itself, and a body part that arrives before it is asked for is kept
/// until it is.
///
/// Back-pressure: past `highWater` bytes kept, the loop stops reading from the provider until the
/// request has taken them.
final class UpstreamExchange: HTTPClientResponseDelegate, Sendable {
    typealias Response = Void

    static let highWater = 256 * 1024

    private struct State {
        var head: Result<HTTPResponseHead, any Error>?
        var headWaiter: CheckedContinuation<HTTPResponseHead, any Error>?
        var headTimer: Scheduled<Void>?
        var parts = CircularBuffer<ByteBuffer>()
        var keptBytes = 0
        /// Set once: the body ended (success) or the call failed.
        var end: Result<Void, any Error>?
        var partWaiter: CheckedContinuation<ByteBuffer?, any Error>?
        /// Completed when the request has taken enough kept bytes (the loop reads on then).
        var readMore: EventLoopPromise<Void>?
        /// The client's handle of the call, once the loop has started it (`start`).
        var task: HTTPClient.Task<Void>?
        /// Cancelled before the loop started the call: `start` cancels it at once.
        var cancelled = false
    }

    private let state = Mutex(State())

    /// When the call fails unless its head has arrived (the first-byte deadline, counted from
    /// `send`). The timer is set on the loop once the request is written and cancelled on the
    /// loop when the head comes, so it costs no thread a wake-up.
    private let headDeadline: NIODeadline

    init(headDeadline: NIODeadline) {
        self.headDeadline = headDeadline
    }

    /// Whether the body ended or the call failed (then there is nothing left to cancel).
    var isOver: Bool { state.withLock { $0.end != nil } }

    /// Called on the event loop with the handle of the call it just started for this exchange.
    func start(_ task: HTTPClient.Task<Void>) {
        let cancelled = state.withLock { state -> Bool in
            state.task = task
            return state.cancelled
        }
        if cancelled { task.cancel() }
    }

    /// Cancels the call, now or, if the loop has not started it yet, as soon as it does.
    func cancel() {
        let task = state.withLock { state -> HTTPClient.Task<Void>? in
            state.cancelled = true
            return state.task
        }
        task?.cancel()
    }

    // MARK: The request's side

    /// The response head; throws what failed the call. Cancelling the waiting task cancels the call.
    func head() async throws -> HTTPResponseHead {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<HTTPResponseHead, any Error>) in
                let ready = state.withLock { state -> Result<HTTPResponseHead, any Error>? in
                    if let head = state.head { return head }
                    state.headWaiter = waiter
                    return nil
                }
                if let ready { waiter.resume(with: ready) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The next body part, nil at the end; throws what failed the call. Cancelling the waiting
    /// task cancels the call.
    func nextPart() async throws -> ByteBuffer? {
        // A part already kept needs no suspension.
        if let ready = take(orWait: nil) { return try ready.get() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<ByteBuffer?, any Error>) in
                if let ready = take(orWait: waiter) { waiter.resume(with: ready) }
            }
        } onCancel: {
            cancel()
        }
    }

    /// A kept part, or the end; otherwise nil, and `waiter` (if any) is left for the loop to
    /// resume. Taking parts below half the high-water mark lets a paused loop read on.
    private func take(orWait waiter: CheckedContinuation<ByteBuffer?, any Error>?) -> Result<ByteBuffer?, any Error>? {
        let (ready, readMore) = state.withLock { state -> (Result<ByteBuffer?, any Error>?, EventLoopPromise<Void>?) in
            if let part = state.parts.popFirst() {
                state.keptBytes -= part.readableBytes
                guard state.keptBytes < Self.highWater / 2, let readMore = state.readMore else { return (.success(part), nil) }
                state.readMore = nil
                return (.success(part), readMore)
            }
            if let end = state.end { return (end.map { nil }, nil) }
            if let waiter { state.partWaiter = waiter }
            return (nil, nil)
        }
        readMore?.succeed(())
        return ready
    }

    // MARK: The event loop's side (HTTPClientResponseDelegate)

    func didSendRequestHead(task: HTTPClient.Task<Void>, _ head: HTTPRequestHead) {
        let timer = task.eventLoop.scheduleTask(deadline: headDeadline) {
            task.fail(reason: UpstreamFailure.timeout("no response within the first-byte deadline"))
        }
        let answered = state.withLock { state -> Bool in
            guard state.head == nil && state.end == nil else { return true }
            state.headTimer = timer
            return false
        }
        if answered { timer.cancel() }
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let (waiter, timer) = state.withLock { state in
            state.head = .success(head)
            defer { state.headWaiter = nil; state.headTimer = nil }
            return (state.headWaiter, state.headTimer)
        }
        timer?.cancel()
        if let waiter {
            // Resumed after the loop has handed over everything this read brought (NIO runs
            // tasks queued from the loop once its I/O events are done): resumed now, the request
            // could ask for the body while the loop is still delivering it from this same read,
            // and be woken a second time for it (docs/design-notes.md, trap 14).
            task.eventLoop.execute { waiter.resume(returning: head) }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        let (waiter, readMore) = state.withLock { state -> (CheckedContinuation<ByteBuffer?, any Error>?, EventLoopPromise<Void>?) in
            if let waiter = state.partWaiter {
                state.partWaiter = nil
                return (waiter, nil)
            }
            state.parts.append(part)
            state.keptBytes += part.readableBytes
            guard state.keptBytes >= Self.highWater else { return (nil, nil) }
            let promise = task.eventLoop.makePromise(of: Void.self)
            state.readMore = promise
            return (nil, promise)
        }
        if let waiter {
            waiter.resume(returning: part)
            return task.eventLoop.makeSucceededVoidFuture()
        }
        return readMore?.futureResult ?? task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        end(.failure(error))
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        end(.success(()))
    }

    /// What the call's end takes out of the state, to resume outside the lock.
    private struct Released {
        var headWaiter: (CheckedContinuation<HTTPResponseHead, any Error>, Result<HTTPResponseHead, any Error>)?
        var partWaiter: CheckedContinuation<ByteBuffer?, any Error>?
        var headTimer: Scheduled<Void>?
        var readMore: EventLoopPromise<Void>?
    }

    private func end(_ result: Result<Void, any Error>) {
        let released = state.withLock { state -> Released in
            guard state.end == nil else { return Released() }
            state.end = result
            let head: Result<HTTPResponseHead, any Error>
            switch (state.head, result) {
            case (let known?, _): head = known
            case (nil, .failure(let error)): head = .failure(error)
            case (nil, .success): head = .failure(UpstreamFailure.connection("the provider sent no response head"))
            }
            state.head = head
            defer { state.headWaiter = nil; state.partWaiter = nil; state.headTimer = nil; state.readMore = nil }
            return Released(headWaiter: state.headWaiter.map { ($0, head) }, partWaiter: state.partWaiter,
                            headTimer: state.headTimer, readMore: state.readMore)
        }
        released.headTimer?.cancel()
        if let (waiter, head) = released.headWaiter { waiter.resume(with: head) }
        released.partWaiter?.resume(with: result.map { nil })
        released.readMore?.succeed(())
    }
}

/// Cancels its call when the last reference to the response goes away before the body ended,
/// so an unread body never keeps a pooled connection busy.
final class UpstreamCallHandle: Sendable {
    let exchange: UpstreamExchange

    init(exchange: UpstreamExchange) {
        self.exchange = exchange
    }

    deinit {
        if !exchange.isOver { exchange.cancel() }
    }
}
