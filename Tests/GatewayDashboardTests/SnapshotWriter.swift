import Foundation
import Testing
@testable import GatewayDashboard

/// `DASHBOARD_SNAPSHOT_DIR=/tmp/dash swift test --filter GatewayDashboardTests` writes every
/// fixture page (plain and hostile) plus the assets there, to look at in a browser
/// (open one file; the asset links are rewritten to the files beside it).
@Suite("Snapshots")
struct SnapshotWriter {
    @Test func writeSnapshotsWhenAsked() throws {
        guard let dir = ProcessInfo.processInfo.environment["DASHBOARD_SNAPSHOT_DIR"], !dir.isEmpty else { return }
        let url = URL(fileURLWithPath: dir, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try DashboardAssets.css.write(to: url.appendingPathComponent("app.css"), atomically: true, encoding: .utf8)
        try DashboardAssets.javascript.write(to: url.appendingPathComponent("app.js"), atomically: true, encoding: .utf8)
        for (name, html) in Fixtures.allPages(evil: false) + Fixtures.allPages(evil: true).map({ ("evil-" + $0.0, $0.1) }) {
            let local = html.replacingOccurrences(of: Dashboard.cssPath, with: "app.css")
                .replacingOccurrences(of: Dashboard.jsPath, with: "app.js")
            try local.write(to: url.appendingPathComponent(name + ".html"), atomically: true, encoding: .utf8)
        }
    }
}
