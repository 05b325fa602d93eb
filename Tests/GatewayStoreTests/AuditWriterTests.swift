import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("AuditWriter")
struct AuditWriterTests {
    @Test func fourThreadsTimesFiveHundred() throws {
        let database = try TestDatabase()
        let writer = AuditWriter(store: try database.openAnother())
        runOnThreads(4) { thread in
            for index in 0..<500 { writer.enqueue(makeRecord("req_\(thread)_\(index)")) }
        }
        writer.flush()
        #expect(try database.store.auditCount() == 2000)
        #expect(writer.backlog == 0)
        writer.close()
        let ids = Set(try database.store.auditRows(AuditQuery()).map(\.record.requestID))
        #expect(ids.count == 2000)
    }

    @Test func flushCoversOnlyWhatCameBefore() throws {
        let database = try TestDatabase()
        let writer = AuditWriter(store: try database.openAnother(), maxBatch: 7, maxDelayMilliseconds: 50)
        for index in 0..<100 { writer.enqueue(makeRecord("req_\(index)")) }
        writer.flush()
        #expect(try database.store.auditCount() == 100)
        writer.flush()  // nothing pending: returns at once
        writer.close()
        writer.close()  // idempotent
        // After close, rows are still written (synchronously).
        writer.enqueue(makeRecord("req_after_close"))
        #expect(try database.store.auditCount() == 101)
    }

    @Test func closeDrainsTheQueue() throws {
        let database = try TestDatabase()
        let writer = AuditWriter(store: try database.openAnother(), maxBatch: 16, maxDelayMilliseconds: 1000)
        for index in 0..<300 { writer.enqueue(makeRecord("req_\(index)")) }
        writer.close()
        #expect(try database.store.auditCount() == 300)
    }

    @Test func enqueueDoesNotWaitForABlockedDatabase() throws {
        let database = try TestDatabase()
        let writer = AuditWriter(store: try database.openAnother(busyTimeoutMilliseconds: 100))
        let release = try holdWriteLock(database)
        let started = Date()
        for index in 0..<1000 { writer.enqueue(makeRecord("req_\(index)")) }
        #expect(Date().timeIntervalSince(started) < 0.5)
        // The writer is retrying against the lock (logging to stderr); nothing is lost.
        Thread.sleep(forTimeInterval: 0.4)
        #expect(try database.store.auditCount() == 0)
        release.signal()
        writer.flush()
        #expect(try database.store.auditCount() == 1000)
        writer.close()
    }

    @Test func aLoneRowWaitsForTheGatheringDelayButNotForAFlushOrAFullBatch() throws {
        let database = try TestDatabase()
        // One row wakes the idle writer, which gathers more for up to 1 s before committing.
        let writer = AuditWriter(store: try database.openAnother(), maxBatch: 50, maxDelayMilliseconds: 1000)
        let started = Date()
        writer.enqueue(makeRecord("req_lone"))
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try database.store.auditCount() == 0)
        while try database.store.auditCount() == 0 && Date().timeIntervalSince(started) < 5 { Thread.sleep(forTimeInterval: 0.01) }
        let committedAfter = Date().timeIntervalSince(started)
        #expect(try database.store.auditCount() == 1)
        #expect(committedAfter > 0.9 && committedAfter < 3, "committed after \(committedAfter) s")
        // A flush cuts the gathering short.
        writer.enqueue(makeRecord("req_flushed"))
        let flushStarted = Date()
        writer.flush()
        #expect(Date().timeIntervalSince(flushStarted) < 0.5)
        #expect(try database.store.auditCount() == 2)
        // So does a full batch.
        let batchStarted = Date()
        for index in 0..<50 { writer.enqueue(makeRecord("req_batch_\(index)")) }
        while try database.store.auditCount() < 52 && Date().timeIntervalSince(batchStarted) < 5 { Thread.sleep(forTimeInterval: 0.01) }
        #expect(try database.store.auditCount() == 52)
        #expect(Date().timeIntervalSince(batchStarted) < 0.5)
        writer.close()
    }

    @Test func anIdleWriterWakesForTheNextRow() throws {
        let database = try TestDatabase()
        // The idle writer's wait ends every 50 ms (its replay interval) and starts again.
        let writer = AuditWriter(store: try database.openAnother(), maxDelayMilliseconds: 0, replayIntervalSeconds: 0.05)
        Thread.sleep(forTimeInterval: 0.3)
        let started = Date()
        writer.enqueue(makeRecord("req_after_idle"))
        while try database.store.auditCount() == 0 && Date().timeIntervalSince(started) < 5 { Thread.sleep(forTimeInterval: 0.005) }
        #expect(try database.store.auditCount() == 1)
        #expect(Date().timeIntervalSince(started) < 0.5)
        writer.close()
    }

    @Test func closeReleasesEnqueuersWaitingOnAFullQueue() throws {
        let database = try TestDatabase()
        let writer = AuditWriter(store: try database.openAnother(busyTimeoutMilliseconds: 50), maxBatch: 2, maxDelayMilliseconds: 0, maxQueued: 3)
        let release = try holdWriteLock(database)
        let enqueued = DispatchSemaphore(value: 0)
        Thread {
            for index in 0..<20 { writer.enqueue(makeRecord("req_\(index)")) }
            enqueued.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.3)
        #expect(enqueued.wait(timeout: .now()) == .timedOut)  // the queue is full: waiting for the writer
        let closed = DispatchSemaphore(value: 0)
        Thread {
            writer.close()
            closed.signal()
        }.start()
        // Closing: the queue takes the rest at once, although the database is still locked.
        #expect(enqueued.wait(timeout: .now() + 2) == .success)
        #expect(closed.wait(timeout: .now() + 0.2) == .timedOut)  // close waits for the writer
        release.signal()
        #expect(closed.wait(timeout: .now() + 20) == .success)
        #expect(try database.store.auditCount() == 20)
    }

    @Test func fallbackLineIsCompleteJSON() throws {
        let record = makeRecord("req_x", projectID: 7, keyID: "gk_0123456789ab", status: 502,
                                attempts: [AuditAttempt(provider: "openai", model: "gpt-4o", status: 502, latencyMs: 1.5)])
        let json = try JSON.parse(AuditWriter.fallbackJSON(record))
        #expect(json["request_id"]?.stringValue == "req_x")
        #expect(json["time_ms"]?.intValue == 1_750_000_000_000)
        #expect(json["project_id"]?.intValue == 7)
        #expect(json["cost_usd"] == .null)
        #expect(json["status"]?.intValue == 502)
        #expect(json["attempts"]?[0]?["provider"]?.stringValue == "openai")
    }

    @Test func unwritableRowsGoToTheFallbackInsteadOfBlockingForever() throws {
        let database = try TestDatabase()
        let store = try database.openAnother()
        store.close()  // every insert now fails
        let writer = AuditWriter(store: store, retryLimitSeconds: 0.2)
        writer.enqueue(makeRecord("req_lost_1"))
        writer.enqueue(makeRecord("req_lost_2"))
        let started = Date()
        writer.flush()  // returns once the rows went to stderr as audit-fallback lines
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(writer.backlog == 0)
        writer.close()
    }
}
