#if canImport(Glibc)
import Glibc
import GatewayCore
#endif

public struct InFlightRequest: Sendable, Equatable {
    public var route: String
    public var provider: String?
    public var ageMilliseconds: Double
}

public struct WorkerSnapshot: Sendable {
    public var slot: Int
    public var pid: Int
    public var state: WorkerState
    public var generation: Int
    public var startUnixMilliseconds: Int
    public var requestsServed: Int
    public var inFlight: Int
    public var auditRowsQueued: Int
    public var requestsInFlight: [InFlightRequest]

    /// php-fpm's words: a worker with a request in flight is "Running".
    public var stateLabel: String {
        switch state {
        case .starting: return "Starting"
        case .draining: return "Finishing"
        case .serving, .free: return inFlight > 0 ? "Running" : "Idle"
        }
    }
}

/// The pool at one instant, as `GET /status` shows it (php-fpm's status page, field for field
/// where the meaning carries over).
public struct PoolSnapshot: Sendable {
    public var startUnixMilliseconds: Int
    public var acceptedRequests: Int
    public var listenQueue: Int?
    public var maxListenQueue: Int
    public var listenQueueCapacity: Int
    public var workersConfigured: Int
    public var maxActiveWorkers: Int
    public var maxChildrenReached: Int
    public var slowRequests: Int
    public var reloads: Int
    public var workers: [WorkerSnapshot]

    public var activeWorkers: Int { workers.filter { $0.state != .starting && $0.inFlight > 0 }.count }
    public var idleWorkers: Int { workers.filter { $0.state == .serving && $0.inFlight <= 0 }.count }
    public var totalWorkers: Int { workers.count }
    public var requestsInFlight: Int { workers.reduce(0) { $0 + max(0, $1.inFlight) } }
    public var auditRowsQueued: Int { workers.reduce(0) { $0 + $1.auditRowsQueued } }
}

/// The status page in php-fpm's text layout or as JSON (`?json`), each worker listed with `?full`.
public enum PoolStatusPage {
    public static func text(_ pool: PoolSnapshot, poolName: String, full: Bool, now: Int = unixMilliseconds()) -> String {
        var lines: [(String, String)] = [
            ("pool", poolName),
            ("process manager", "static"),
            ("start time", formatTime(pool.startUnixMilliseconds)),
            ("start since", "\(max(0, (now - pool.startUnixMilliseconds) / 1000))"),
            ("accepted conn", "\(pool.acceptedRequests)"),
            ("listen queue", pool.listenQueue.map { "\($0)" } ?? "unknown"),
            ("max listen queue", "\(pool.maxListenQueue)"),
            ("listen queue len", "\(pool.listenQueueCapacity)"),
            ("idle processes", "\(pool.idleWorkers)"),
            ("active processes", "\(pool.activeWorkers)"),
            ("total processes", "\(pool.totalWorkers)"),
            ("max active processes", "\(pool.maxActiveWorkers)"),
            ("max children reached", "\(pool.maxChildrenReached)"),
            ("slow requests", "\(pool.slowRequests)"),
            ("requests in flight", "\(pool.requestsInFlight)"),
            ("audit rows queued", "\(pool.auditRowsQueued)"),
            ("reloads", "\(pool.reloads)"),
        ]
        var out = aligned(lines)
        guard full else { return out }
        for worker in pool.workers {
            out += "\n************************\n"
            lines = [
                ("pid", "\(worker.pid)"),
                ("state", worker.stateLabel),
                ("generation", "\(worker.generation)"),
                ("start time", formatTime(worker.startUnixMilliseconds)),
                ("start since", "\(max(0, (now - worker.startUnixMilliseconds) / 1000))"),
                ("requests", "\(worker.requestsServed)"),
                ("requests in flight", "\(max(0, worker.inFlight))"),
                ("audit rows queued", "\(worker.auditRowsQueued)"),
            ]
            for request in worker.requestsInFlight {
                lines.append(("request", "\(request.route) provider=\(request.provider ?? "-") age_ms=\(Int(request.ageMilliseconds))"))
            }
            out += aligned(lines)
        }
        return out
    }

    public static func json(_ pool: PoolSnapshot, poolName: String, full: Bool, now: Int = unixMilliseconds()) -> String {
        var fields: [String] = [
            "\"pool\":\(JSON.quoted(poolName))",
            "\"process manager\":\"static\"",
            "\"start time\":\(pool.startUnixMilliseconds / 1000)",
            "\"start since\":\(max(0, (now - pool.startUnixMilliseconds) / 1000))",
            "\"accepted conn\":\(pool.acceptedRequests)",
            "\"listen queue\":\(pool.listenQueue.map { "\($0)" } ?? "null")",
            "\"max listen queue\":\(pool.maxListenQueue)",
            "\"listen queue len\":\(pool.listenQueueCapacity)",
            "\"idle processes\":\(pool.idleWorkers)",
            "\"active processes\":\(pool.activeWorkers)",
            "\"total processes\":\(pool.totalWorkers)",
            "\"max active processes\":\(pool.maxActiveWorkers)",
            "\"max children reached\":\(pool.maxChildrenReached)",
            "\"slow requests\":\(pool.slowRequests)",
            "\"requests in flight\":\(pool.requestsInFlight)",
            "\"audit rows queued\":\(pool.auditRowsQueued)",
            "\"reloads\":\(pool.reloads)",
        ]
        if full {
            let processes = pool.workers.map { worker -> String in
                let requests = worker.requestsInFlight.map { request in
                    "{\"route\":\(JSON.quoted(request.route)),\"provider\":\(request.provider.map(JSON.quoted) ?? "null"),\"age ms\":\(Int(request.ageMilliseconds))}"
                }
                return "{\"pid\":\(worker.pid),\"state\":\(JSON.quoted(worker.stateLabel)),\"generation\":\(worker.generation),"
                    + "\"start time\":\(worker.startUnixMilliseconds / 1000),\"start since\":\(max(0, (now - worker.startUnixMilliseconds) / 1000)),"
                    + "\"requests\":\(worker.requestsServed),\"requests in flight\":\(max(0, worker.inFlight)),"
                    + "\"audit rows queued\":\(worker.auditRowsQueued),\"in flight\":[\(requests.joined(separator: ","))]}"
            }
            fields.append("\"processes\":[\(processes.joined(separator: ","))]")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private static func aligned(_ lines: [(String, String)]) -> String {
        lines.map { name, value in
            let label = name + ":"
            return label + String(repeating: " ", count: max(1, 22 - label.count)) + value
        }.joined(separator: "\n") + "\n"
    }

    /// php-fpm's time format: 04/Dec/2026:07:10:00 +0000.
    static func formatTime(_ unixMilliseconds: Int) -> String {
        var seconds = time_t(unixMilliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%d/%b/%Y:%H:%M:%S +0000", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

}
