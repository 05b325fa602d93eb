#if canImport(Glibc)
import Glibc
#endif
import Logging
import GatewayCore

/// Where log lines go: standard error (the journal under systemd), or a file opened for
/// appending that `reopen()` swaps for a fresh one after logrotate moved it (SIGUSR1, php-fpm's
/// convention). Each line is one `write(2)` on an O_APPEND descriptor, so the master's and the
/// workers' lines never interleave inside a line.
public final class LogOutput: @unchecked Sendable {
    public let path: String?
    private let descriptor: Int32

    public static let standardError = LogOutput(path: nil, descriptor: 2)

    private init(path: String?, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// A log file, created (0640) when missing.
    public static func file(_ path: String) throws -> LogOutput {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw LogFileError(path: path, reason: String(cString: strerror(errno))) }
        return LogOutput(path: path, descriptor: fd)
    }

    /// Opens the path again and puts the new file in place of the old one under the same
    /// descriptor (dup2 is atomic: a line being written goes to one file or the other, whole).
    @discardableResult
    public func reopen() -> Bool {
        guard let path else { return true }
        let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fresh >= 0 else { return false }
        dup2(fresh, descriptor)
        close(fresh)
        return true
    }

    func write(_ line: [UInt8]) {
        line.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }
}

public struct LogFileError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot open the log file \(path): \(reason)" }
}

/// Log line layouts: `text` for people, `json` (one object per line) for log shippers.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// The gateway's swift-log handler: one line per event, with the process id and every metadata
/// field (a request's lines carry its `request_id`).
public struct GatewayLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let format: LogFormat
    private let output: LogOutput

    public init(label: String, level: Logger.Level, format: LogFormat, output: LogOutput) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = self.metadata
        if let explicit = event.metadata { fields.merge(explicit) { _, new in new } }
        output.write(Array(Self.format(format, time: Self.timestamp(), level: event.level, label: label,
                                         message: event.message.description, fields: fields).utf8))
    }

    /// One line, newline included.
    static func format(_ format: LogFormat, time: String, level: Logger.Level, label: String, message: String,
                       fields: Logger.Metadata) -> String {
        let keys = fields.keys.sorted()
        switch format {
        case .text:
            var line = "\(time) \(level) \(label): \(message)"
            for key in keys { line += " \(key)=\(textValue(fields[key]!))" }
            return line + "\n"
        case .json:
            var line = "{\"time\":\(JSON.quoted(time)),\"level\":\(JSON.quoted(level.rawValue)),\"logger\":\(JSON.quoted(label)),\"message\":\(JSON.quoted(message))"
            for key in keys where !["time", "level", "logger", "message"].contains(key) {
                line += ",\(JSON.quoted(key)):\(JSON.quoted(plain(fields[key]!)))"
            }
            return line + "}\n"
        }
    }

    private static func plain(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let value): return value.description
        case .array(let values): return "[" + values.map(plain).joined(separator: ", ") + "]"
        case .dictionary(let values): return "{" + values.keys.sorted().map { "\($0): \(plain(values[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    /// Quoted when it holds a space, a quote or an equals sign, so `key=value` stays parseable.
    private static func textValue(_ value: Logger.MetadataValue) -> String {
        let text = plain(value)
        if text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }) { return JSON.quoted(text) }
        return text
    }


    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}
