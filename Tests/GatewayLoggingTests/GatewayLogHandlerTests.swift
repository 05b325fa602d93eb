import Foundation
import GatewayLogging
import Logging
import Testing

/// Log lines: one per event in either format, metadata (a request's id) on every line, and a
/// file that logrotate moved away is reopened in place.
@Suite("Gateway log handler")
struct GatewayLogHandlerTests {
    func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "deploxa-log-\(getpid())-\(name)"
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test("JSON lines parse and carry the request id and every field")
    func jsonLines() throws {
        let path = temporaryPath("json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = try LogOutput.file(path)
        var logger = Logger(label: "deploxa.worker") { GatewayLogHandler(label: $0, level: .info, format: .json, output: output) }
        logger[metadataKey: "pid"] = "12"
        logger.info("slow request", metadata: ["request_id": "req_abc", "note": "a \"quoted\"\nvalue"])
        logger.debug("not written at info level")

        let written = try lines(path)
        #expect(written.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(written[0].utf8)) as? [String: String])
        #expect(object["message"] == "slow request")
        #expect(object["level"] == "info")
        #expect(object["logger"] == "deploxa.worker")
        #expect(object["request_id"] == "req_abc")
        #expect(object["pid"] == "12")
        #expect(object["note"] == "a \"quoted\"\nvalue")
    }

    @Test("Text lines are key=value, quoting values with spaces")
    func textLines() throws {
        let path = temporaryPath("text")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = try LogOutput.file(path)
        let logger = Logger(label: "deploxa.master") { GatewayLogHandler(label: $0, level: .info, format: .text, output: output) }
        logger.warning("worker exited", metadata: ["request_id": "req_1", "reason": "signal 9"])
        let written = try lines(path)
        #expect(written.count == 1)
        #expect(written[0].contains(" warning deploxa.master: worker exited"))
        #expect(written[0].contains("request_id=req_1"))
        #expect(written[0].contains("reason=\"signal 9\""))
    }

    @Test("reopen() after a rename writes to a fresh file at the path")
    func reopenAfterRotation() throws {
        let path = temporaryPath("rotate")
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: path + ".1")
        }
        let output = try LogOutput.file(path)
        let logger = Logger(label: "deploxa") { GatewayLogHandler(label: $0, level: .info, format: .text, output: output) }
        logger.info("before rotation")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        logger.info("still the old file")
        #expect(output.reopen())
        logger.info("after rotation")

        let rotated = try lines(path + ".1")
        let fresh = try lines(path)
        #expect(rotated.count == 2)
        #expect(fresh.count == 1)
        #expect(fresh[0].hasSuffix("after rotation"))
    }

    @Test("A log file that cannot be opened is a clear error")
    func unopenableFile() {
        #expect(throws: LogFileError.self) { try LogOutput.file("/nonexistent-dir/deploxa.log") }
    }
}
