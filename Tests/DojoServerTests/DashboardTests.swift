import DojoServer
import DojoService
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing

/// Headless Chromium (Debian's `chromium`; `make test` installs it through scripts/install-deps.sh).
let chromiumPath: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Runs chromium with `args`; returns its exit status and stdout (stderr is discarded: it is noisy in containers).
/// It waits with `Task.sleep`, holding no thread while chromium runs.
func runChromium(_ args: [String], timeout: Double = 480) async throws -> (status: Int32, stdout: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: chromiumPath!)
    let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: profile) }
    p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                   "--user-data-dir=\(profile.path)"] + args
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-out-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: out) }
    let handle = try FileHandle(forWritingTo: out)
    p.standardOutput = handle
    p.standardError = FileHandle.nullDevice
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { try await Task.sleep(nanoseconds: 100_000_000) }
    if p.isRunning { p.terminate(); p.waitUntilExit() }
    try handle.close()
    return (p.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
}

@Suite("dashboard in headless Chromium", .serialized)
struct DashboardTests {
    @Test("the page renders the tile map, the jobs with their states and the queue after its first fetch")
    func dashboardDOM() async throws {
        guard chromiumPath != nil else {
            Issue.record("chromium is not installed: run scripts/install-deps.sh chromium (make test does)")
            return
        }
        try await TestServer.with(machine: "exapod", setup: .live) { s, client in
            let port = try #require(client.port)
            let vision = try await client.addTenant("vision", quota: 60, admin: s.admin, borrowLimit: 60)
            let planning = try await client.addTenant("planning", quota: 60, admin: s.admin)
            let big = try await client.submit(#"{"name":"occupancy-4x12","command":["/bin/sleep","900"],"shape":"4x12","time_limit":1200}"#, token: vision)
            let small = try await client.submit(#"{"name":"lanes-2x3","command":["/bin/sleep","900"],"tiles":6,"time_limit":1200}"#, token: vision)
            let other = try await client.submit(#"{"name":"planner-tray","command":["/bin/sleep","900"],"shape":"2x3","time_limit":1200}"#, token: planning)
            let waiting = try await client.submit(#"{"name":"whole-pod","command":["/bin/sleep","900"],"shape":"4x30","priority":-1}"#, token: vision)
            #expect(try await eventually {
                let js = try await client.call(.get, "/v1/jobs?state=RUNNING", token: s.admin).decode([JobInfo].self)
                return Set(js.map(\.id)) == [big.id, small.id, other.id]
            })
            // Fail a free tile (a busy one would send its job back to the queue and change the counts below).
            let before = try await client.call(.get, "/v1/cluster", token: s.admin).decode(ClusterStatus.self)
            let freeTile = try #require(before.tiles.last { !$0.busy && $0.health == .healthy }).id
            #expect(try await client.call(.post, "/v1/tiles/\(freeTile)/fail", token: s.admin).status == 200)

            // (the jobs sleep 15 minutes: under make test's load headless Chromium once took over a minute to start, and
            // jobs of 60 s had ended by the time it fetched)
            let url = "http://127.0.0.1:\(port)/#token=\(s.admin)"
            let dom = try await runChromium(["--virtual-time-budget=5000", "--dump-dom", url])
            #expect(dom.status == 0)
            let html = dom.stdout
            for name in ["occupancy-4x12", "lanes-2x3", "planner-tray", "whole-pod"] { #expect(html.contains(name), "\(name) not in the DOM") }
            #expect(html.contains("RUNNING") && html.contains("PENDING"))
            #expect(html.components(separatedBy: "class=\"job-row\"").count - 1 == 4, "job rows")
            #expect(html.components(separatedBy: "class=\"queue-row\"").count - 1 == 1, "queue rows")
            // 120 tile cells, 48 + 6 + 6 of them coloured by job, one failed.
            #expect(html.components(separatedBy: "data-tile=").count - 1 == 120, "tile cells")
            for (job, tiles) in [(big.id, 48), (small.id, 6), (other.id, 6)] {
                #expect(html.components(separatedBy: "data-job=\"\(job)\"").count - 1 == tiles + 1, "job \(job)'s tiles (+ its row)")
            }
            #expect(html.components(separatedBy: "tile failed").count - 1 == 1, "failed tile")
            #expect(html.contains("<div id=\"status\" class=\"\">Updated"), "the page shows an error or never fetched")

            // A tenant's view: its own jobs only; the other tenant's tiles are busy without ids.
            let tenantDom = try await runChromium(["--virtual-time-budget=5000", "--dump-dom", "http://127.0.0.1:\(port)/#token=\(planning)"])
            #expect(tenantDom.stdout.contains("planner-tray") && !tenantDom.stdout.contains("occupancy-4x12"))
            #expect(tenantDom.stdout.components(separatedBy: "busy-other").count - 1 >= 54)

            // A bad token: the page says so instead of showing anything.
            let bad = try await runChromium(["--virtual-time-budget=5000", "--dump-dom", "http://127.0.0.1:\(port)/#token=wrong"])
            #expect(bad.stdout.contains("<div id=\"status\" class=\"error\">Error: 401"), "\(bad.stdout.prefix(2000))")

            // The screenshot for the README (DOJO_UPDATE_SCREENSHOT=1 writes docs/dashboard.png).
            let shot = ProcessInfo.processInfo.environment["DOJO_UPDATE_SCREENSHOT"] == "1"
                ? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/dashboard.png").standardized
                : FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-\(UUID().uuidString).png")
            let r = try await runChromium(["--virtual-time-budget=5000", "--hide-scrollbars", "--window-size=1400,900", "--screenshot=\(shot.path)", url])
            #expect(r.status == 0)
            let png = try Data(contentsOf: shot)
            #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
            if !shot.path.contains("/docs/") { try? FileManager.default.removeItem(at: shot) }
            _ = waiting
        }
    }
}
