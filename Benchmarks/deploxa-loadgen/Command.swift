// deploxa-loadgen: an open-loop HTTP/1.1 load generator for the gateway benchmarks.
//
//   deploxa-loadgen rate    — requests at a fixed schedule (start + i/rate), latency measured
//                             from the *scheduled* send time (free of coordinated omission).
//   deploxa-loadgen streams — N concurrent long-lived (e.g. SSE) requests, body bytes counted only.
//
// Only loopback targets are accepted (127.0.0.0/8, localhost, ::1).

import ArgumentParser
import Foundation

@main
struct Loadgen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploxa-loadgen",
        abstract: "Open-loop load generator for the Deploxa AI Gateway benchmarks (loopback targets only).",
        subcommands: [Rate.self, Streams.self]
    )
}

/// Options shared by both subcommands: what to send and where.
struct TargetOptions: ParsableArguments {
    @Option(help: "Target URL: http://HOST[:PORT]/PATH with HOST 127.x.x.x, localhost or [::1].")
    var url: String

    @Option(help: "HTTP method (default: POST when a body is given, else GET).")
    var method: String?

    @Option(name: .customLong("body-file"), help: "Send the contents of this file as the request body.")
    var bodyFile: String?

    @Option(help: "Send this string as the request body.")
    var body: String?

    @Option(name: [.customShort("H"), .long], help: "Extra request header 'Name: value' (repeatable).")
    var header: [String] = []

    @Option(help: "Per-request timeout in seconds (rate: from the scheduled send time; streams: connect timeout).")
    var timeout: Double = 10

    @Option(help: "Event-loop threads used by the generator.")
    var threads: Int = 1

    @Flag(help: "Print one JSON object on stdout instead of the text report.")
    var json = false

    func validate() throws {
        if bodyFile != nil && body != nil { throw ValidationError("use either --body-file or --body, not both") }
        guard timeout > 0, timeout <= 600 else { throw ValidationError("--timeout must be in (0, 600] seconds") }
        guard threads >= 1, threads <= 64 else { throw ValidationError("--threads must be in 1...64") }
    }

    /// Builds the request; exits with status 2 when the target is not a loopback http:// URL.
    func makeTarget() throws -> Target {
        do {
            return try Target.make(
                url: url, method: method, bodyFile: bodyFile, body: body, headers: header)
        } catch let error as TargetError {
            FileHandle.standardError.write(Data("deploxa-loadgen: error: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct Rate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send requests at a fixed rate (open loop) and report latency percentiles.")

    @OptionGroup var target: TargetOptions

    @Option(help: "Requests per second (the schedule: request i is due at start + i/rate).")
    var rate: Double

    @Option(help: "Measured seconds (after the warm-up).")
    var duration: Double = 10

    @Option(help: "Warm-up seconds: sent at the same rate but not recorded.")
    var warmup: Double = 2

    @Option(help: "Maximum keep-alive connections (opened on demand when all are busy).")
    var connections: Int = 64

    func validate() throws {
        guard rate > 0, rate <= 1_000_000 else { throw ValidationError("--rate must be in (0, 1000000]") }
        guard duration > 0, duration <= 3600 else { throw ValidationError("--duration must be in (0, 3600]") }
        guard warmup >= 0, warmup <= 600 else { throw ValidationError("--warmup must be in [0, 600]") }
        guard connections >= 1, connections <= 20_000 else {
            throw ValidationError("--connections must be in 1...20000")
        }
        guard rate * (duration + warmup) <= 20_000_000 else {
            throw ValidationError("rate × (duration + warmup) must not exceed 20,000,000 requests")
        }
    }

    func run() throws {
        let t = try target.makeTarget()
        let config = RateConfig(
            rate: rate, duration: duration, warmup: warmup, connections: connections,
            timeout: target.timeout, threads: target.threads)
        let report = try RateRunner(target: t, config: config).run()
        print(target.json ? report.json() : report.text(target: t, config: config))
    }
}

struct Streams: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open N streaming requests at once and hold them while they read (bytes are counted, not kept).")

    @OptionGroup var target: TargetOptions

    @Option(help: "Number of concurrent requests, one connection each.")
    var concurrency: Int = 100

    @Option(help: "Maximum seconds to hold the streams open before closing everything.")
    var hold: Double = 20

    func validate() throws {
        guard concurrency >= 1, concurrency <= 20_000 else {
            throw ValidationError("--concurrency must be in 1...20000")
        }
        guard hold > 0, hold <= 3600 else { throw ValidationError("--hold must be in (0, 3600]") }
    }

    func run() throws {
        let t = try target.makeTarget()
        let config = StreamsConfig(
            concurrency: concurrency, hold: hold, connectTimeout: target.timeout, threads: target.threads)
        let report = try StreamsRunner(target: t, config: config).run()
        print(target.json ? report.json() : report.text(target: t, config: config))
    }
}
