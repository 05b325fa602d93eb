// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "deploxa-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "deploxa-gateway", targets: ["deploxa-gateway"]),
        .executable(name: "deploxa-loadgen", targets: ["deploxa-loadgen"]),
        .library(name: "GatewayTesting", targets: ["GatewayTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        // C libraries from Debian: libfcgi-dev and libsqlite3-dev.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3"),

        // Domain types, JSON, SSE, errors. Foundation only.
        .target(name: "GatewayCore"),

        // Log lines (text or JSON) to standard error or a file reopened on SIGUSR1.
        .target(name: "GatewayLogging", dependencies: ["GatewayCore", .product(name: "Logging", package: "swift-log")]),
        // OpenTelemetry trace export (OTLP/HTTP JSON), off unless `serve --otel-endpoint`.
        .target(name: "GatewayTracing", dependencies: [
            "GatewayCore", "GatewayHTTP",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Transport-neutral request / response / responder.
        .target(name: "GatewayHTTP"),

        // Atomics on shared memory, memfd_create and listen-queue lengths (C, for what Swift cannot say).
        .target(name: "CPoolSupport"),

        // The pool's scoreboard in shared memory: worker states, requests in flight, metric
        // counters; /metrics and /status read it whichever worker answers.
        .target(name: "PoolScoreboard", dependencies: ["CPoolSupport", "GatewayCore"]),

        // libfcgi binding: accept threads, response writer, master/worker supervisor.
        .target(name: "FastCGI", dependencies: ["CFastCGI", "CPoolSupport", "GatewayHTTP", "PoolScoreboard", .product(name: "Logging", package: "swift-log")]),

        // Provider adapters: pure translation, no I/O.
        .target(name: "GatewayProviders", dependencies: ["GatewayCore"]),

        // The only AsyncHTTPClient importer.
        .target(name: "GatewayUpstream", dependencies: [
            "GatewayCore", "GatewayHTTP",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // The only SQLite importer.
        .target(name: "GatewayStore", dependencies: [
            "CSQLite", "GatewayCore",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // The shared backend (docs/postgres.md): the store protocol over PostgreSQL, for several
        // gateway nodes sharing one database. The only PostgresNIO importer.
        .target(name: "GatewayStorePostgres", dependencies: [
            "GatewayCore", "GatewayStore",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The request pipeline: authenticate → limit → cache → translate → send (with fallback) → audit.
        .target(name: "GatewayAPI", dependencies: [
            "GatewayCore", "GatewayHTTP", "GatewayProviders", "GatewayUpstream", "GatewayStore", "PoolScoreboard",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // The admin REST API (/api/v1) and the dashboard (/dashboard): tokens, sessions, routes.
        .target(name: "GatewayAdmin", dependencies: [
            "GatewayCore", "GatewayHTTP", "GatewayStore", "GatewayAPI", "GatewayDashboard", "PoolScoreboard",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // Provider simulator and test support, shipped as a library.
        .target(name: "GatewayTesting", dependencies: [
            "GatewayHTTP",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),

        // The dashboard's HTML: view models → complete pages (strings), CSS and JS. Foundation only.
        .target(name: "GatewayDashboard"),

        .executableTarget(name: "deploxa-gateway", dependencies: [
            "GatewayCore", "GatewayHTTP", "FastCGI", "GatewayStore", "GatewayAPI", "GatewayAdmin", "GatewayTesting", "PoolScoreboard", "GatewayLogging", "GatewayTracing",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Open-loop load generator for the benchmarks (fixed request rates, latency percentiles).
        .executableTarget(name: "deploxa-loadgen", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Benchmarks/deploxa-loadgen"),

        // Translation cost per provider (in-process; the simulator supplies real wire formats).
        .executableTarget(name: "deploxa-translation-bench", dependencies: [
            "GatewayCore", "GatewayProviders", "GatewayTesting", "GatewayUpstream",
        ], path: "Benchmarks/deploxa-translation-bench"),

        // The pool scoreboard's cost per request (the calls one chat request makes) and /metrics' render cost, in-process.
        .executableTarget(name: "deploxa-scoreboard-bench", dependencies: ["GatewayHTTP", "PoolScoreboard"], path: "Benchmarks/deploxa-scoreboard-bench"),

        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore"]),
        .testTarget(name: "GatewayProvidersTests", dependencies: ["GatewayProviders", "GatewayCore"], exclude: ["Fixtures"]),
        .testTarget(name: "GatewayStoreTests", dependencies: ["GatewayStore", "GatewayCore"]),
        .testTarget(name: "GatewayStorePostgresTests", dependencies: ["GatewayStorePostgres", "GatewayStore", "GatewayCore"]),
        .testTarget(name: "GatewayDashboardTests", dependencies: ["GatewayDashboard"]),
        .testTarget(name: "PoolScoreboardTests", dependencies: ["PoolScoreboard"]),
        .testTarget(name: "FastCGITests", dependencies: ["FastCGI", "GatewayHTTP"]),
        .testTarget(name: "GatewayTracingTests", dependencies: ["GatewayTracing", "GatewayHTTP"]),
        .testTarget(name: "GatewayLoggingTests", dependencies: ["GatewayLogging", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "GatewayAdminTests", dependencies: ["GatewayAdmin", "GatewayStore", "GatewayCore", "GatewayHTTP", "GatewayTesting",
                                                             .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "GatewayAPITests", dependencies: ["GatewayAPI", "GatewayCore", "GatewayProviders", "GatewayHTTP", "GatewayStore", "GatewayUpstream", "GatewayTesting", .product(name: "Logging", package: "swift-log")]),
    ]
)

// The shared-hosting CGI build (deploy/build-static.sh) sets DEPLOXA_WITHOUT_POSTGRES: a shared
// host runs one SQLite file, and PostgresNIO with its TLS stack would only add minutes of build
// and megabytes of binary. The command line then answers a postgresql:// --db with an error.
if Context.environment["DEPLOXA_WITHOUT_POSTGRES"] == nil {
    package.dependencies += [
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ]
    package.targets.first { $0.name == "deploxa-gateway" }?.dependencies.append("GatewayStorePostgres")
} else {
    package.targets.removeAll { $0.name.hasPrefix("GatewayStorePostgres") }
}

// libFuzzer targets (Fuzz/<name>/), present only when DEPLOXA_FUZZ is set: each hands its entry
// point to libFuzzer's driver, which links only with `-sanitize=fuzzer`, so they would break an
// ordinary `swift build`. Built and run by Tests/fuzz/run-fuzz.sh.
if Context.environment["DEPLOXA_FUZZ"] != nil {
    // Input decoding, fixed requests, the property check and the libFuzzer entry shared by the targets.
    package.targets.append(.target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"))
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["CFuzzDriver", "GatewayCore", "GatewayProviders"], path: "Fuzz/FuzzSupport"))
    for name in ["FuzzJSON", "FuzzChatRequest", "FuzzSSE", "FuzzProviderResponses", "FuzzStreamTranslators"] {
        package.products.append(.executable(name: name, targets: [name]))
        package.targets.append(.executableTarget(
            name: name, dependencies: ["FuzzSupport", "GatewayCore", "GatewayProviders"], path: "Fuzz/\(name)",
            // Otherwise a one-file executable module is compiled as top-level code with its own
            // `main`, which collides with the `main` libFuzzer links in.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
