import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("AuditJournal")
struct AuditJournalTests {
    private func journalFiles(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".journal") }
    }

    @Test func rowsOfADeadProcessAreReplayedOnceWithTheLastLineWinning() throws {
        let database = try TestDatabase()
        let directory = database.folder.path("journal")
        let journal = try AuditJournal(directory: directory)
        // Finished: begin then final. Streaming when the process died: begin then progress. Just arrived: begin.
        var finished = makeRecord("req_finished", projectID: 1)
        _ = journal.append(.begin, AuditRecord(requestID: "req_finished", time: finished.time, method: "POST", route: "/v1/chat/completions", status: 0, latencyMs: 0))
        _ = journal.append(.final, finished)
        var streaming = makeRecord("req_streaming", projectID: 1)
        streaming.stream = true
        _ = journal.append(.begin, AuditRecord(requestID: "req_streaming", time: streaming.time, method: "POST", route: "/v1/chat/completions", status: 0, latencyMs: 0))
        _ = journal.append(.progress, streaming)
        _ = journal.append(.begin, AuditRecord(requestID: "req_arrived", time: finished.time, method: "POST", route: "/v1/embeddings", status: 0, latencyMs: 0))

        // While the owner lives its lock keeps others off.
        #expect(AuditJournal.replayOrphans(directory: directory, into: database.store) == 0)
        journal.abandon()  // kill -9
        #expect(AuditJournal.replayOrphans(directory: directory, into: database.store) == 3)
        #expect(journalFiles(directory).isEmpty)

        let rows = Dictionary(uniqueKeysWithValues: try database.store.auditRows(AuditQuery()).map { ($0.record.requestID, $0.record) })
        #expect(rows.count == 3)
        finished.spendSettled = false
        #expect(rows["req_finished"]?.status == 200)
        #expect(rows["req_finished"]?.completionTokens == 20)
        #expect(rows["req_finished"]?.errorCode == nil)
        #expect(rows["req_streaming"]?.status == 200)
        #expect(rows["req_streaming"]?.errorCode == "worker_exited")
        #expect(rows["req_streaming"]?.stream == true)
        #expect(rows["req_arrived"]?.status == 502)
        #expect(rows["req_arrived"]?.errorCode == "worker_exited")
        #expect(rows["req_arrived"]?.route == "/v1/embeddings")
    }

    @Test func replayingRowsAlreadyCommittedAddsNeitherRowsNorSpend() throws {
        let database = try TestDatabase()
        let directory = database.folder.path("journal")
        let record = makeRecord("req_twice", projectID: 5, keyID: "gk_aaaaaaaaaaaa")
        try database.store.insertAudit([record])
        let month = SpendAmount.month(of: record.time)
        let spendBefore = try database.store.monthToDate(LimitScope(.project, "5"), month: month).costUSD
        #expect(spendBefore > 0)

        let journal = try AuditJournal(directory: directory)
        _ = journal.append(.final, record)
        journal.abandon()
        AuditJournal.replayOrphans(directory: directory, into: database.store)
        #expect(try database.store.auditCount() == 1)
        #expect(try database.store.monthToDate(LimitScope(.project, "5"), month: month).costUSD == spendBefore)
    }

    @Test func aLineCutShortByDeathIsSkipped() throws {
        let database = try TestDatabase()
        let directory = database.folder.path("journal")
        let journal = try AuditJournal(directory: directory)
        _ = journal.append(.final, makeRecord("req_whole"))
        journal.abandon()
        let file = directory + "/" + journalFiles(directory)[0]
        let handle = try #require(FileHandle(forWritingAtPath: file))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"phase":"final","row":{"request_id":"req_cut","ti"#.utf8))
        try handle.close()
        #expect(AuditJournal.replayOrphans(directory: directory, into: database.store) == 1)
        #expect(try database.store.auditRows(AuditQuery()).map(\.record.requestID) == ["req_whole"])
    }

    @Test func writerKeepsNoFilesOnceEverythingIsCommitted() throws {
        let database = try TestDatabase()
        let directory = database.folder.path("journal")
        let writer = AuditWriter(store: try database.openAnother(), journalDirectory: directory)
        for index in 0..<200 {
            let ticket = writer.begin(makeRecord("req_\(index)"))
            writer.enqueue(makeRecord("req_\(index)"), ticket: ticket)
        }
        writer.flush()
        // The current segment was emptied (truncated) once all its rows were in the table.
        let sizes = journalFiles(directory).map { (try? FileManager.default.attributesOfItem(atPath: directory + "/" + $0)[.size] as? Int) ?? -1 }
        #expect(sizes == [0])
        writer.close()
        #expect(journalFiles(directory).isEmpty)
        #expect(try database.store.auditCount() == 200)
    }

    @Test func anOpenRequestKeepsItsSegmentThroughRotation() throws {
        let database = try TestDatabase()
        let directory = database.folder.path("journal")
        let journal = try AuditJournal(directory: directory, segmentBytes: 4096)
        let open = journal.append(.begin, makeRecord("req_long_stream"))
        var enqueued: UInt64 = 0
        for index in 0..<100 {
            _ = journal.append(.final, makeRecord("req_\(index)"))
            enqueued += 1
            journal.rotateIfLarge(enqueued: enqueued)
        }
        #expect(journal.segmentCount > 2)
        journal.release(committed: enqueued, enqueued: enqueued)
        // Every full segment went, except the one holding the open request's begin line.
        #expect(journal.segmentCount == 2)
        journal.finished(segmentsUsed: [open])
        journal.release(committed: enqueued, enqueued: enqueued)
        #expect(journal.segmentCount == 1)
        journal.abandon()
        // What is left replays nothing twice.
        AuditJournal.replayOrphans(directory: directory, into: database.store)
        #expect(try database.store.auditCount() <= 100)
    }

    @Test func aFullQueueMakesEnqueueWaitForTheWriter() throws {
        let database = try TestDatabase()
        let writer = AuditWriter(store: try database.openAnother(busyTimeoutMilliseconds: 50), maxBatch: 2, maxDelayMilliseconds: 0, maxQueued: 3)
        let release = try holdWriteLock(database)
        let returned = Collector<Int>()
        let done = DispatchSemaphore(value: 0)
        Thread {
            for index in 0..<20 {
                writer.enqueue(makeRecord("req_\(index)"))
                returned.append(index)
            }
            done.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.5)
        // At most one batch in the writer's hands plus a full queue got through; the rest wait.
        #expect(returned.values.count <= 2 + 3 + 1)
        release.signal()
        #expect(done.wait(timeout: .now() + 20) == .success)
        writer.flush()
        #expect(try database.store.auditCount() == 20)
        writer.close()
    }
}
