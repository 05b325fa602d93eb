import Foundation
import GatewayCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Takes audit rows off the request path. `enqueue` only appends to a queue under a short lock;
/// one dedicated thread (a real OS thread, not Swift concurrency's cooperative pool, so a
/// blocking SQLite call never starves async work) commits whatever has queued up, up to
/// `maxBatch` rows per transaction, waiting at most `maxDelayMilliseconds` to gather a batch.
///
/// Rows are never dropped silently: a failed batch is retried with backoff (and logged to
/// stderr with its first request id only); after `retryLimitSeconds` of failure each row is
/// written to stderr as one line, `audit-fallback: {json}`, from which it can be re-imported.
/// Give the writer its own `GatewayStore` so request-path reads never queue behind a batch,
/// and call `close()` before exit: the thread keeps the writer alive until then.
public final class AuditWriter: @unchecked Sendable {
    public let store: GatewayStore
    public let maxBatch: Int
    public let maxDelayMilliseconds: Int
    public let retryLimitSeconds: Double

    private let condition = NSCondition()
    // Guarded by `condition`:
    private var pending: [AuditRecord] = []
    private var enqueuedTotal: UInt64 = 0
    private var finishedTotal: UInt64 = 0
    private var flushWaiters = 0
    private var writerIdle = false
    private var closing = false
    private var stopped = false

    public init(store: GatewayStore, maxBatch: Int = 256, maxDelayMilliseconds: Int = 5, retryLimitSeconds: Double = 30) {
        self.store = store
        self.maxBatch = max(1, maxBatch)
        self.maxDelayMilliseconds = max(0, maxDelayMilliseconds)
        self.retryLimitSeconds = retryLimitSeconds
        let thread = Thread { [self] in run() }
        thread.name = "deploxa-audit-writer"
        thread.start()
    }

    /// Queues a row and returns at once (no I/O). After `close()`, writes it synchronously.
    public func enqueue(_ record: AuditRecord) {
        condition.lock()
        if stopped {
            condition.unlock()
            _ = write([record], retryFor: 0)
            return
        }
        pending.append(record)
        enqueuedTotal += 1
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

    /// Writes everything queued, then stops the thread. Idempotent.
    public func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !stopped { condition.wait() }
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
        while let batch = nextBatch() {
            // Once a batch has gone to the fallback, the next ones try once each until one commits.
            degraded = !write(batch, retryFor: degraded ? 0 : retryLimitSeconds)
            condition.lock()
            finishedTotal += UInt64(batch.count)
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Waits for rows and returns up to `maxBatch` of them; nil once closing and drained.
    private func nextBatch() -> [AuditRecord]? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && !closing {
            writerIdle = true
            condition.wait()
            writerIdle = false
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
        func value<T>(_ optional: T?, _ wrap: (T) -> JSON) -> JSON { optional.map(wrap) ?? .null }
        let attempts: [JSON] = record.attempts.map { attempt in
            ["provider": .string(attempt.provider), "model": .string(attempt.model), "status": .int(Int64(attempt.status)),
             "latencyMs": .double(attempt.latencyMs), "errorCode": value(attempt.errorCode, JSON.string)]
        }
        let object: JSON = [
            "request_id": .string(record.requestID),
            "time_ms": .int(StoreTime.milliseconds(record.time)),
            "method": .string(record.method),
            "route": .string(record.route),
            "org_id": value(record.orgID, JSON.int),
            "project_id": value(record.projectID, JSON.int),
            "key_id": value(record.keyID, JSON.string),
            "user": value(record.user, JSON.string),
            "provider": value(record.provider, JSON.string),
            "model_requested": value(record.modelRequested, JSON.string),
            "model_served": value(record.modelServed, JSON.string),
            "status": .int(Int64(record.status)),
            "error_code": value(record.errorCode, JSON.string),
            "prompt_tokens": value(record.promptTokens) { .int(Int64($0)) },
            "completion_tokens": value(record.completionTokens) { .int(Int64($0)) },
            "cached_tokens": value(record.cachedTokens) { .int(Int64($0)) },
            "cost_usd": value(record.costUSD, JSON.double),
            "latency_ms": .double(record.latencyMs),
            "upstream_latency_ms": value(record.upstreamLatencyMs, JSON.double),
            "ttft_ms": value(record.timeToFirstTokenMs, JSON.double),
            "cache_hit": .bool(record.cacheHit),
            "stream": .bool(record.stream),
            "attempts": .array(attempts),
        ]
        return object.serializedString()
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
