import Foundation
import GatewayCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an audit row survives `kill -9` of its worker. The audit writer commits rows in batches a
/// few milliseconds after the answer went out; a worker killed in between would lose them. So each
/// request's record is also appended to a per-process journal file before its answer is finished:
/// a `begin` line when the request arrives, a `progress` line when a stream's head goes out, and
/// the `final` line with the finished record. A plain `write(2)` and no fsync: the bytes live in
/// the page cache, which outlives the process (not a power loss — the same promise as SQLite's
/// `synchronous=NORMAL`), so the journal costs no disk flush per request.
///
/// Each process holds an exclusive `flock` on its own segment files for its whole life, and the
/// kernel drops it when the process dies. A file whose lock can be taken therefore belongs to a
/// dead process: `replayOrphans` (run by every worker at start and by the writer thread every
/// few seconds) writes its records to the table — the last line per request wins; a request that
/// never finished is recorded as `worker_exited` — and deletes it. Rows are inserted with
/// `INSERT OR IGNORE` and spend is added only for rows actually inserted, so replaying a record
/// that had already been committed changes nothing.
///
/// Segments are deleted as soon as nothing in them is needed: every request that wrote a line to
/// it has its final record committed. The writer rotates to a new segment past `segmentBytes`.
///
/// Not thread-safe: `AuditWriter` calls it under its own lock.
final class AuditJournal {
    enum Phase: String {
        case begin, progress, final
    }

    let directory: String
    let segmentBytes: Int
    private var segments: [Segment] = []
    private var nextSegmentNumber = 0
    private let processTag: String
    /// Set when a write failed (disk full, quota): lines may be missing, so warn once.
    private var writeFailureLogged = false
    /// A line was cut short by a failed write: the next one starts on a fresh line.
    private var needsNewline = false

    private final class Segment {
        let number: Int
        let path: String
        let fd: Int32
        var bytes = 0
        /// Requests that wrote a line here and whose final record is not enqueued yet.
        var openRequests = 0
        /// The writer's count of enqueued rows when this segment stopped taking lines; it can go
        /// once that many rows are committed (nil: still the current segment).
        var sealedAtEnqueued: UInt64?

        init(number: Int, path: String, fd: Int32) {
            self.number = number
            self.path = path
            self.fd = fd
        }
    }

    /// Opens the journal folder (created 0700 if missing). Throws when it cannot be used; the
    /// caller then runs without a journal.
    init(directory: String, segmentBytes: Int = 4 << 20) throws {
        self.directory = directory
        self.segmentBytes = max(4096, segmentBytes)
        processTag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // Its parent too (a shared database's journals are one folder per database, inside one).
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty && !FileManager.default.fileExists(atPath: parent) {
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw StoreError(.other, "cannot create the audit journal folder \(directory): \(String(cString: strerror(errno)))")
        }
        try openSegment()
    }

    deinit {
        for segment in segments { close(segment.fd) }
    }

    /// The journal folder of a database: beside it, `<file>.audit-journal`.
    static func defaultDirectory(forDatabase path: String) -> String { path + ".audit-journal" }

    /// Appends one line for a request; returns the segment it went to, which the request keeps
    /// (for `begin` and `progress` lines) until its final record is enqueued.
    func append(_ phase: Phase, _ record: AuditRecord) -> Int {
        let segment = segments[segments.count - 1]
        var line: [UInt8] = needsNewline ? [0x0A] : []
        line.reserveCapacity(640)
        AuditRecordCoding.writeJournalLine(phase: phase.rawValue, record, into: &line)
        line.append(0x0A)
        if write(line, to: segment) {
            needsNewline = false
        }
        segment.bytes += line.count
        // A final line is covered by the commit count; the others wait for their request's end.
        if phase != .final { segment.openRequests += 1 }
        return segment.number
    }

    /// The final record of a request was enqueued: the segments it wrote to need it no longer
    /// (its final line stands in the current one until committed).
    func finished(segmentsUsed: [Int]) {
        for number in segmentsUsed {
            if let segment = segments.first(where: { $0.number == number }) { segment.openRequests -= 1 }
        }
    }

    /// Starts a new segment once the current one is large; `enqueued` is the writer's count of
    /// enqueued rows, all of whose final lines are in the segments before.
    func rotateIfLarge(enqueued: UInt64) {
        guard let current = segments.last, current.bytes >= segmentBytes else { return }
        current.sealedAtEnqueued = enqueued
        do { try openSegment() } catch {
            current.sealedAtEnqueued = nil  // keep writing where we were
            logWriteFailure("cannot start a new audit journal segment: \(error)")
        }
    }

    /// After a batch commit: drops what every committed row made unnecessary. `committed` rows
    /// out of `enqueued` are in the table.
    func release(committed: UInt64, enqueued: UInt64) {
        segments.removeAll { segment in
            guard let sealed = segment.sealedAtEnqueued, segment.openRequests == 0, sealed <= committed else { return false }
            unlink(segment.path)
            close(segment.fd)
            return true
        }
        if let current = segments.last, current.bytes > 0, current.openRequests == 0, committed == enqueued {
            // Everything in it is committed: start it over instead of growing it.
            if ftruncate(current.fd, 0) == 0 {
                current.bytes = 0
                needsNewline = false
            }
        }
    }

    /// Closes and deletes every segment (a clean stop, with everything committed).
    func removeAll() {
        for segment in segments {
            unlink(segment.path)
            close(segment.fd)
        }
        segments.removeAll()
    }

    /// What a killed process leaves: its files, unlocked. (Tests stand in for `kill -9` with it.)
    func abandon() {
        for segment in segments { close(segment.fd) }
        segments.removeAll()
    }

    /// Segment files this journal has open (tests).
    var segmentCount: Int { segments.count }

    private func openSegment() throws {
        let number = nextSegmentNumber
        nextSegmentNumber += 1
        let path = "\(directory)/\(processTag)-\(number).journal"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(.other, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        // Held until this process exits, however it exits: the proof that the file's owner lives.
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError(.other, "cannot lock \(path): \(String(cString: strerror(errno)))")
        }
        segments.append(Segment(number: number, path: path, fd: fd))
    }

    private func write(_ bytes: [UInt8], to segment: Segment) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Foundation.write(segment.fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 {
                needsNewline = true
                logWriteFailure("cannot append to the audit journal \(segment.path): \(String(cString: strerror(errno))); "
                    + "rows still go to the database, but a worker killed now could lose some")
                return false
            }
            offset += written
        }
        return true
    }

    private func logWriteFailure(_ message: String) {
        guard !writeFailureLogged else { return }
        writeFailureLogged = true
        StandardError.write("audit-journal: \(message)\n")
    }

    // MARK: - Replay

    /// Writes the records of every segment whose owner has died (its lock can be taken) into the
    /// table and deletes the segment. Returns how many records were replayed. A segment that
    /// cannot be written now (database busy or full) is left for the next try.
    @discardableResult
    static func replayOrphans(directory: String, into store: any AuditSink) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var replayed = 0
        for name in names.sorted() where name.hasSuffix(".journal") {
            let path = directory + "/" + name
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            // Locked: its owner is alive (or another worker is replaying it right now).
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
            // Replayed and deleted by another worker between our open and our lock.
            var opened = stat(), current = stat()
            guard fstat(fd, &opened) == 0, stat(path, &current) == 0, opened.st_ino == current.st_ino else { continue }
            let records = readRecords(fd)
            do {
                try store.insertAudit(records)
            } catch {
                StandardError.write("audit-journal: could not replay \(records.count) rows from \(path) yet: \(error)\n")
                continue
            }
            unlink(path)
            replayed += records.count
        }
        if replayed > 0 {
            StandardError.write("audit-journal: replayed \(replayed) audit rows left by a worker that exited without writing them\n")
        }
        return replayed
    }

    /// The last line of each request in the file, as the row to write. Lines that cannot be read
    /// (a write cut short by the process's death) are skipped.
    static func readRecords(_ fd: Int32) -> [AuditRecord] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        var order: [String] = []
        var latest: [String: (phase: Phase, record: AuditRecord)] = [:]
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
            guard let json = try? JSON.parse(line), let phase = json["phase"]?.stringValue.flatMap(Phase.init(rawValue:)),
                  let row = json["row"], let record = AuditRecordCoding.record(row) else { continue }
            if let existing = latest[record.requestID], existing.phase == .final { continue }
            if latest[record.requestID] == nil { order.append(record.requestID) }
            latest[record.requestID] = (phase, record)
        }
        return order.compactMap { id in
            guard let (phase, record) = latest[id] else { return nil }
            return unfinished(record, phase: phase)
        }
    }

    /// A request whose worker died before its final record: what the client saw is known only in
    /// part. Before any answer went out nginx answered 502 itself; after a stream's head the
    /// client had a 200 and a stream that broke off.
    static func unfinished(_ record: AuditRecord, phase: Phase) -> AuditRecord {
        guard phase != .final else { return record }
        var row = record
        if phase == .begin { row.status = 502 }
        row.errorCode = "worker_exited"
        return row
    }
}
