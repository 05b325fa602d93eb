import Dispatch
import Foundation
import GatewayCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where one request's journal lines went, so its segments can be let go once its final record is in.
public struct AuditTicket: Sendable {
    fileprivate var segments: [Int] = []
    public init() {}
}

/// Takes audit rows off the request path. `enqueue` only appends to a queue under a short lock
/// (and, with a journal, one `write(2)` to it); one dedicated thread (a real OS thread, not Swift
/// concurrency's cooperative pool, so a blocking SQLite call never starves async work) commits
/// whatever has queued up, up to `maxBatch` rows per transaction, waiting at most
/// `maxDelayMilliseconds` to gather a batch.
///
/// Rows are never dropped: with a journal (`AuditJournal`) every request is on file before its
/// answer is finished, so a worker killed with rows still queued leaves them for the next worker
/// to replay. A failed batch is retried with backoff (and logged to stderr with its first request
/// id only); after `retryLimitSeconds` of failure each row is also written to stderr as one line,
/// `audit-fallback: {json}`, and the journal keeps it for replay. The queue holds at most
/// `maxQueued` rows: past that `enqueue` waits for the writer (back-pressure on the requests
/// being answered) instead of growing without end.
/// Give the writer its own `GatewayStore` so request-path reads never queue behind a batch,
/// and call `close()` before exit: the thread keeps the writer alive until then.
public final class AuditWriter: @unchecked Sendable {
    /// Where batches are committed: the SQLite file, or the shared Postgres database.
    public let store: any AuditSink
    public let maxBatch: Int
    public let maxDelayMilliseconds: Int
    public let retryLimitSeconds: Double
    public let maxQueued: Int
    /// How often the idle writer looks for journals of dead workers.
    public let replayIntervalSeconds: Double

    /// What the callers and the writer thread share. Mutex has no condition variable, so a thread
    /// that must wait for a change (a full queue, a flush, close, the idle writer) sleeps in
    /// `lock(waitingWhile:)` on a semaphore of its own, which the change signals (`wakeAll`).
    private struct State {
        var pending: [AuditRecord] = []
        var enqueuedTotal: UInt64 = 0
        var finishedTotal: UInt64 = 0
        var flushWaiters = 0
        var writerIdle = false
        var closing = false
        var stopped = false
        /// A batch went to the stderr fallback: from then on journal segments are kept for replay.
        var journalPinned = false
        /// One semaphore per thread asleep in `lock(waitingWhile:)`.
        var sleepers: [DispatchSemaphore] = []

        /// A condition's broadcast: wakes every sleeper, which then checks the state again.
        mutating func wakeAll() {
            for sleeper in sleepers { sleeper.signal() }
            sleepers.removeAll()
        }
    }

    private let state = Mutex(State())
    private let journal: AuditJournal?

    /// `journalDirectory`: where this process journals its rows (nil: no journal, e.g. tests of
    /// the writer alone). A journal that cannot be opened is logged and done without.
    public init(store: any AuditSink, journalDirectory: String? = nil, maxBatch: Int = 256, maxDelayMilliseconds: Int = 5,
                retryLimitSeconds: Double = 30, maxQueued: Int = 10_000, replayIntervalSeconds: Double = 5) {
        self.store = store
        self.maxBatch = max(1, maxBatch)
        self.maxDelayMilliseconds = max(0, maxDelayMilliseconds)
        self.retryLimitSeconds = retryLimitSeconds
        self.maxQueued = max(1, maxQueued)
        self.replayIntervalSeconds = max(0.05, replayIntervalSeconds)
        var journal: AuditJournal?
        if let journalDirectory {
            do {
                journal = try AuditJournal(directory: journalDirectory)
            } catch {
                StandardError.write("audit-writer: running without a journal (rows queued when a worker is killed would be lost): \(error)\n")
            }
        }
        self.journal = journal
        let thread = Thread { [self] in run() }
        thread.name = "deploxa-audit-writer"
        thread.start()
    }

    /// Where a database's workers journal their rows unless told otherwise: beside the file.
    public static func defaultJournalDirectory(forDatabase path: String) -> String {
        AuditJournal.defaultDirectory(forDatabase: path)
    }

    /// Journals a request as it starts (no I/O without a journal). Keep the ticket for `enqueue`.
    public func begin(_ record: AuditRecord) -> AuditTicket {
        var ticket = AuditTicket()
        journal(.begin, record, ticket: &ticket)
        return ticket
    }

    /// Journals what is known of a request whose answer has started going out (a stream's head).
    public func progress(_ record: AuditRecord, ticket: inout AuditTicket) {
        journal(.progress, record, ticket: &ticket)
    }

    private func journal(_ phase: AuditJournal.Phase, _ record: AuditRecord, ticket: inout AuditTicket) {
        guard let journal else { return }
        let bounded = record.boundedForStorage()
        state.withLock { state in
            if !state.stopped { ticket.segments.append(journal.append(phase, bounded)) }
        }
    }

    /// Journals the finished row and queues it; returns at once unless the queue is full (then it
    /// waits for the writer). After `close()`, writes it synchronously.
    public func enqueue(_ record: AuditRecord, ticket: AuditTicket = AuditTicket()) {
        let record = record.boundedForStorage()
        let maxQueued = self.maxQueued
        let maxBatch = self.maxBatch
        let queued = lock(waitingWhile: { $0.pending.count >= maxQueued && !$0.stopped && !$0.closing }) { state, _ -> Bool in
            if state.stopped { return false }
            if let journal {
                _ = journal.append(.final, record)
                journal.finished(segmentsUsed: ticket.segments)
            }
            state.pending.append(record)
            state.enqueuedTotal += 1
            journal?.rotateIfLarge(enqueued: state.enqueuedTotal)
            if state.writerIdle || state.pending.count >= maxBatch { state.wakeAll() }
            return true
        }
        if !queued { _ = write([record], retryFor: 0) }
    }

    /// Blocks until every row enqueued before this call is committed (or, failing that, written
    /// to the stderr fallback).
    public func flush() {
        let target = state.withLock { state in
            state.flushWaiters += 1
            state.wakeAll()
            return state.enqueuedTotal
        }
        lock(waitingWhile: { $0.finishedTotal < target && !$0.stopped }) { state, _ in state.flushWaiters -= 1 }
    }

    /// Writes everything queued, then stops the thread. Idempotent. When every row was
    /// committed, the journal is deleted; otherwise it stays for the next worker to replay.
    public func close() {
        state.withLock { state in
            state.closing = true
            state.wakeAll()
        }
        lock(waitingWhile: { !$0.stopped }) { state, _ in
            if let journal, !state.journalPinned { journal.removeAll() }
        }
    }

    /// Rows queued and not yet committed.
    public var backlog: Int {
        state.withLock { Int($0.enqueuedTotal - $0.finishedTotal) }
    }

    /// A condition variable's wait, on the Mutex: while `blocked` holds, sleeps with the lock
    /// released until the state changes (`wakeAll`) or `deadline` passes, then runs `body` in the
    /// same hold of the lock that found `blocked` false (`timedOut` false) or the deadline past
    /// (`timedOut` true). A sleeper puts its semaphore in `sleepers` in the hold that checked
    /// `blocked`, and every change a sleeper waits for is made with `wakeAll` in its hold, so no
    /// wake-up is lost; one that comes before the sleeper waits is kept by the semaphore's count.
    @discardableResult
    private func lock<R: Sendable>(waitingWhile blocked: (inout State) -> Bool, until deadline: DispatchTime = .distantFuture,
                                   _ body: (inout State, _ timedOut: Bool) -> R) -> R {
        while true {
            let step = state.withLock { state -> WaitStep<R> in
                if !blocked(&state) { return .done(body(&state, false)) }
                if deadline != .distantFuture && DispatchTime.now() >= deadline { return .done(body(&state, true)) }
                let sleeper = DispatchSemaphore(value: 0)
                state.sleepers.append(sleeper)
                return .sleep(sleeper)
            }
            switch step {
            case .done(let result):
                return result
            case .sleep(let sleeper):
                if sleeper.wait(timeout: deadline) == .timedOut {
                    state.withLock { $0.sleepers.removeAll { $0 === sleeper } }
                }
            }
        }
    }

    // MARK: - Writer thread

    private func run() {
        var degraded = false
        // First, what workers that died before this one left behind.
        if let journal { AuditJournal.replayOrphans(directory: journal.directory, into: store) }
        var lastReplay = Date()
        while let batch = nextBatch() {
            if !batch.isEmpty {
                // Once a batch has gone to the fallback, the next ones try once each until one commits.
                let committed = write(batch, retryFor: degraded ? 0 : retryLimitSeconds)
                degraded = !committed
                state.withLock { state in
                    state.finishedTotal += UInt64(batch.count)
                    if !committed { state.journalPinned = true }
                    if let journal, !state.journalPinned { journal.release(committed: state.finishedTotal, enqueued: state.enqueuedTotal) }
                    state.wakeAll()
                }
            }
            // Every few seconds, pick up rows that a killed worker left in its journal.
            if let journal, Date().timeIntervalSince(lastReplay) >= replayIntervalSeconds {
                lastReplay = Date()
                AuditJournal.replayOrphans(directory: journal.directory, into: store)
            }
        }
    }

    /// Waits for rows and returns up to `maxBatch` of them; an empty batch when idle for the
    /// replay interval; nil once closing and drained.
    private func nextBatch() -> [AuditRecord]? {
        // Idle: no rows and not closing. `writerIdle` tells `enqueue` to wake the writer for one row.
        let idleUntil = DispatchTime.now() + replayIntervalSeconds
        let idledOut = lock(waitingWhile: { state in
            state.writerIdle = state.pending.isEmpty && !state.closing
            return state.writerIdle
        }, until: idleUntil) { state, timedOut -> Bool in
            state.writerIdle = false
            return timedOut
        }
        if idledOut { return [] }
        // Rows (or closing): gather up to `maxBatch` of them for at most `maxDelayMilliseconds`,
        // unless someone waits in `flush`.
        let maxBatch = self.maxBatch
        let gathering = maxDelayMilliseconds > 0
        let gatherUntil = DispatchTime.now() + Double(maxDelayMilliseconds) / 1000
        return lock(waitingWhile: { state in
            gathering && !state.pending.isEmpty && state.pending.count < maxBatch && state.flushWaiters == 0 && !state.closing
        }, until: gatherUntil) { state, _ -> [AuditRecord]? in
            if state.pending.isEmpty {
                state.stopped = true
                state.wakeAll()
                return nil
            }
            if state.pending.count <= maxBatch {
                let batch = state.pending
                state.pending = []
                state.pending.reserveCapacity(min(batch.count, maxBatch))
                return batch
            }
            let batch = Array(state.pending.prefix(maxBatch))
            state.pending.removeFirst(maxBatch)
            return batch
        }
    }

    /// Commits `batch`, retrying with backoff for `budget` seconds, after which the rows go to
    /// the stderr fallback. Returns whether they were committed.
    private func write(_ batch: [AuditRecord], retryFor budget: Double) -> Bool {
        let start = Date()
        var delay = 0.01
        var failures = 0
        while true {
            do {
                try store.insertAudit(batch)
                if failures > 0 {
                    StandardError.write("audit-writer: batch of \(batch.count) rows committed after \(failures) failed attempts\n")
                }
                return true
            } catch {
                failures += 1
                let elapsed = Date().timeIntervalSince(start)
                let first = batch.first?.requestID ?? "-"
                if elapsed >= budget {
                    StandardError.write("audit-writer: giving up on \(batch.count) rows (first request id \(first)) "
                        + "after \(failures) attempts: \(error); writing them as audit-fallback lines\n")
                    for record in batch { StandardError.write("audit-fallback: " + Self.fallbackJSON(record) + "\n") }
                    return false
                }
                if failures & (failures - 1) == 0 {  // 1st, 2nd, 4th, 8th … failure
                    StandardError.write("audit-writer: insert of \(batch.count) rows (first request id \(first)) failed: "
                        + "\(error); retrying\n")
                }
                Thread.sleep(forTimeInterval: min(delay, budget - elapsed))
                delay = min(delay * 2, 1)
            }
        }
    }

    /// One record as a JSON object keyed by `audit_log` column names (secrets never reach a record).
    static func fallbackJSON(_ record: AuditRecord) -> String {
        AuditRecordCoding.json(record).serializedString()
    }
}

/// Where `AuditWriter` commits its batches. A batch may be given again after a failure whose
/// outcome is unknown (a lost acknowledgement, a journal replayed after its rows went in), so an
/// implementation adds nothing twice: rows are keyed by request id, and spend and rollups are
/// added from the rows actually inserted.
public protocol AuditSink: Sendable {
    func insertAudit(_ records: [AuditRecord]) throws
}

extension GatewayStore: AuditSink {}

/// What one look at the state in `AuditWriter.lock(waitingWhile:)` decided.
private enum WaitStep<R: Sendable>: Sendable {
    case done(R)
    case sleep(DispatchSemaphore)
}

/// Unbuffered writes to file descriptor 2; one `write` per line keeps short lines whole when
/// several threads or processes share the stream.
enum StandardError {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                #if canImport(Glibc)
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                let written = Darwin.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
