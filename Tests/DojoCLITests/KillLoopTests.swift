import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

@Suite("the controller survives SIGKILL", .serialized)
struct KillLoopTests {
    /// Issue 4 §4: kill the server at random points, start it again: no job is lost or run twice.
    @Test func sigkillAtRandomMomentsLosesNoJobAndRunsNoneTwice() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dojo-killloop-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The jobs share a folder of their tenant's storage (the sandbox lets them write nothing else).
        let runs = dir + "/dojo.sqlite.tenants/fleet/shared/runs"
        let c = ServeProcess(db: dir + "/dojo.sqlite")
        try c.start()
        defer { c.sigkill() }
        #expect(c.request("POST", "/v1/tenants", ["name": "fleet", "quota": 12])?.status == 201)
        var seed: UInt64 = 42
        func next() -> Double { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Double(seed >> 11) / Double(1 << 53) }
        let total = 60
        var accepted = 0, kills = 0
        while accepted < total || kills < 10 {
            // A burst of submissions, then a SIGKILL at a random moment of the controller's work.
            let burst = min(total - accepted, 1 + Int(next() * 8))
            for _ in 0..<burst {
                let tiles = 1 + Int(next() * 3)
                let sleep = String(format: "%.2f", 0.1 + next() * 0.6)
                let body: [String: Any] = ["tenant": "fleet", "tiles": tiles, "checkpoint_dir": "shared",
                                           "command": ["/bin/sh", "-c", "echo start $DOJO_JOB_ID >> $DOJO_CHECKPOINT_DIR/runs; sleep \(sleep); echo end $DOJO_JOB_ID >> $DOJO_CHECKPOINT_DIR/runs"]]
                if c.request("POST", "/v1/jobs", body)?.status == 201 { accepted += 1 }
            }
            Thread.sleep(forTimeInterval: 0.05 + next() * 0.7)
            c.sigkill()
            kills += 1
            try c.start()
        }
        // Let the last controller finish the work.
        let deadline = Date().addingTimeInterval(120)
        var jobs: [[String: Any]] = []
        while Date() < deadline {
            if let r = c.request("GET", "/v1/jobs?limit=1000"), r.status == 200,
               let list = try JSONSerialization.jsonObject(with: r.body) as? [[String: Any]] {
                jobs = list
                if list.allSatisfy({ ($0["state"] as? String) == "COMPLETED" }) && list.count >= accepted { break }
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        // Every job the server stored (accepted ones, and any whose answer a kill cut off) completed once.
        #expect(jobs.count >= accepted && jobs.count <= accepted + kills)
        let states = Dictionary(grouping: jobs, by: { $0["state"] as? String ?? "?" }).mapValues(\.count)
        #expect(states == ["COMPLETED": jobs.count], "\(states) \(jobs.filter { ($0["state"] as? String) != "COMPLETED" })")
        let lines = try String(contentsOfFile: runs, encoding: .utf8).split(separator: "\n").map(String.init)
        for j in jobs {
            let id = j["id"] as? Int ?? -1
            #expect(lines.filter { $0 == "start \(id)" }.count == 1, "job \(id) started \(lines.filter { $0 == "start \(id)" }.count) times")
            #expect(lines.filter { $0 == "end \(id)" }.count == 1, "job \(id) ended \(lines.filter { $0 == "end \(id)" }.count) times")
            #expect(j["attempts"] as? Int == 1)
        }
        #expect(kills >= 10)
        print("kill loop: \(jobs.count) jobs, \(kills) SIGKILLs, every job started and ended exactly once")
    }

    /// A relative --db works (workers run in their job's folder); a job inherits no descriptor of the server beyond
    /// stdin, stdout and stderr (not its listening socket, connections or database); ended workers leave no zombies.
    @Test func workersGetARelativeDatabaseRightInheritNoDescriptorsAndLeaveNoZombies() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dojo-serve-rel-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = ServeProcess(db: "jobs.sqlite", cwd: dir)
        try c.start()
        defer { c.sigkill() }
        #expect(c.request("POST", "/v1/tenants", ["name": "t", "quota": 12])?.status == 201)
        var ids: [Int] = []
        for _ in 0..<3 {
            let r = c.request("POST", "/v1/jobs", ["tenant": "t", "tiles": 1, "command": ["/bin/ls", "/proc/self/fd"]])
            #expect(r?.status == 201)
            if let r, let o = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any], let id = o["id"] as? Int { ids.append(id) }
        }
        let deadline = Date().addingTimeInterval(30)
        var states: [String] = []
        while Date() < deadline {
            states = ids.compactMap { id in
                c.request("GET", "/v1/jobs/\(id)").flatMap { try? JSONSerialization.jsonObject(with: $0.body) as? [String: Any] }?["state"] as? String
            }
            if states.count == ids.count && states.allSatisfy({ $0 == "COMPLETED" }) { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(states == ["COMPLETED", "COMPLETED", "COMPLETED"])
        for id in ids {
            let log = String(decoding: c.request("GET", "/v1/jobs/\(id)/logs")?.body ?? Data(), as: UTF8.self)
            // ls lists 0, 1, 2 and the descriptor it reads the folder with.
            let fds = log.split(separator: "\n").filter { !$0.hasPrefix("==") }.compactMap { Int($0) }
            #expect(fds.count <= 4 && fds.contains(2) && (fds.max() ?? 0) <= 3, "job \(id) saw descriptors \(fds)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/jobs.sqlite.tenants/t/logs/\(ids[0]).log"))
        // No defunct child of the server: its supervisors, and the sandboxes' inits it adopts (it is their subreaper),
        // are reaped within a round or two.
        let server = c.process!.processIdentifier
        func zombies() -> Int {
            var n = 0
            for e in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(e) != nil {
                guard let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { continue }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 2, fields[0] == "Z", Int32(fields[1]) == server { n += 1 }
            }
            return n
        }
        let end = Date().addingTimeInterval(3)
        while zombies() > 0 && Date() < end { Thread.sleep(forTimeInterval: 0.1) }
        #expect(zombies() == 0)
    }
}
