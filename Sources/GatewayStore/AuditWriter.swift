import Foundation
import GatewayCore

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
    public let store: GatewayStore
    public let maxBatch: Int
    public let maxDelayMilliseconds: Int
    public let retryLimitSeconds: Double
    public let maxQueued: Int
    /// How often the idle writer looks for journals of dead workers.
    public let replayIntervalSeconds: Double

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var pending: [AuditRecord] = []
    private var enqueuedTotal: UInt64 = 0
    private var finishedTotal: UInt64 = 0
    private var flushWaiters = 0
    private var writerIdle = false
    private var closing = false
    private var stopped = false
    private let journal: AuditJournal?
    /// A batch went to the stderr fallback: from then on journal segments are kept for replay.
    private var journalPinned = false

    /// `journalDirectory`: where this process journals its rows (nil: no journal, e.g. tests of
    /// the writer alone). A journal that cannot be opened is logged and done without.
    public init(store: GatewayStore, journalDirectory: String? = nil, maxBatch: Int = 256, maxDelayMilliseconds: Int = 5,
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
        condition.lock()
        if !stopped { ticket.segments.append(journal.append(phase, bounded)) }
        condition.unlock()
    }

    /// Journals the finished row and queues it; returns at once unless the queue is full (then it
    /// waits for the writer). After `close()`, writes it synchronously.
    public func enqueue(_ record: AuditRecord, ticket: AuditTicket = AuditTicket()) {
        let record = record.boundedForStorage()
        condition.lock()
        while pending.count >= maxQueued && !stopped && !closing { condition.wait() }
        if stopped {
            condition.unlock()
            _ = write([record], retryFor: 0)
            return
        }
        if let journal {
            _ = journal.append(.final, record)
            journal.finished(segmentsUsed: ticket.segments)
        }
        pending.append(record)
        enqueuedTotal += 1
        journal?.rotateIfLarge(enqueued: enqueuedTotal)
        if writerIdle || pending.count >= maxBatch { condition.broadcast() }
        condition.unlock()
    }

    /// Blocks until every row enqueued before this call is committed (or, failing that, written
    /// to the stderr fallback).
    public func flush() {
        condition.lock()
        let target = enqueuedTotal
        flushWaiters += 1
        condition.broadcast()
        while finishedTotal < target && !stopped { condition.wait() }
        flushWaiters -= 1
        condition.unlock()
    }

    /// Writes everything queued, then stops the thread. Idempotent. When every row was
    /// committed, the journal is deleted; otherwise it stays for the next worker to replay.
    public func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !stopped { condition.wait() }
        if let journal, !journalPinned { journal.removeAll() }
        condition.unlock()
    }

    /// Rows queued and not yet committed.
    public var backlog: Int {
        condition.lock()
        defer { condition.unlock() }
        return Int(enqueuedTotal - finishedTotal)
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
                condition.lock()
                finishedTotal += UInt64(batch.count)
                if !committed { journalPinned = true }
                if let journal, !journalPinned { journal.release(committed: finishedTotal, enqueued: enqueuedTotal) }
                condition.broadcast()
                condition.unlock()
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
        condition.lock()
        defer { condition.unlock() }
        if pending.isEmpty && !closing {
            let idleUntil = Date(timeIntervalSinceNow: replayIntervalSeconds)
            while pending.isEmpty && !closing {
                writerIdle = true
                let signalled = condition.wait(until: idleUntil)
                writerIdle = false
                if !signalled && pending.isEmpty && !closing { return [] }
            }
        }
        if pending.isEmpty {
            stopped = true
            condition.broadcast()
            return nil
        }
        if pending.count < maxBatch && flushWaiters == 0 && !closing && maxDelayMilliseconds > 0 {
            let deadline = Date(timeIntervalSinceNow: Double(maxDelayMilliseconds) / 1000)
            while pending.count < maxBatch && flushWaiters == 0 && !closing {
                if !condition.wait(until: deadline) { break }
            }
        }
        if pending.count <= maxBatch {
            let batch = pending
            pending = []
            pending.reserveCapacity(min(batch.count, maxBatch))
            return batch
        }
        let batch = Array(pending.prefix(maxBatch))
        pending.removeFirst(maxBatch)
        return batch
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
