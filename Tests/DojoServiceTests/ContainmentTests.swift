import DojoCluster
import Foundation
import GRDB
import Testing
import DojoService

/// Issue 9 §1: the controller never dies of one job. Every command shape a tenant can send that passes validation
/// runs (and ends) as a job; rows an old or damaged store holds end their job FAILED with the reason; restarts in
/// between find the same.
@Suite("the controller never dies of one job")
struct ContainmentTests {
    @Test func malformedCommandsAndDamagedRowsEndTheirJobsAcrossRestarts() async throws {
        let db = tempDB()
        let options = ServiceOptions(database: db, machine: "exapod", grace: 0.5)
        let first = try await JobService.open(options)
        var s = first
        _ = try await s.createTenant(name: "t", quota: 120, borrowLimit: nil, by: .admin)
        let me = Principal.tenant("t")
        let shapes: [[String]] = [
            ["dojo", "train", "--checkpoint-dir"],            // the crash of issue 9: a flag without its value
            ["dojo", "train", "--checkpoint-dir="],
            ["/usr/local/bin/dojo", "train", "--checkpoint-dir", "--resume"],
            ["./dojo", "train", "--resume", "--checkpoint-dir"],
            ["dojo"], ["dojo", "train", "--model"],
            ["/nonexistent/program"], ["/"], ["/etc/passwd"], ["-"], ["--"], ["/bin/sh", "-c"],
            [String(repeating: "a", count: 60_000)],           // a huge argument
            ["/bin/echo"] + Array(repeating: "-x", count: 4_000),   // a huge argv
            ["/bin/echo", "é", "\u{FFFD}", "日本語", "tab\there"],
        ]
        var ids: [Int] = []
        for c in shapes { ids.append(try await s.submit(JobSubmission(command: c, tiles: 1, timeLimit: 5), by: me).id) }
        // Rejected before anything is written: NUL bytes, empty argv, too many arguments, control characters.
        for c in [["a\u{0}b"], [], [""], Array(repeating: "x", count: 5000), ["/bin/echo", "\u{1B}[2J"]] {
            await #expect(throws: ServiceError.self) { _ = try await s.submit(JobSubmission(command: c, tiles: 1), by: me) }
        }
        // Three more jobs whose rows get damaged while no controller runs.
        let notJSON = try await s.submit(JobSubmission(command: ["/bin/true"], tiles: 1), by: me).id
        let legacy = try await s.submit(JobSubmission(command: ["/bin/true"], tiles: 1), by: me).id
        let badPlace = try await s.submit(JobSubmission(command: ["/bin/true"], tiles: 1), by: me).id
        // One round starts them all (a start and its spawn); the controller then dies.
        await s.tick()
        await s.close()
        let q = try DatabaseQueue(path: db)
        try await q.write { d in
            try d.execute(sql: "UPDATE job SET state = 'PENDING', attempts = 0, command = 'not json' WHERE id = ?", arguments: [notJSON])
            // As a job submitted before the sandbox, requeued.
            try d.execute(sql: "UPDATE job SET state = 'REQUEUED', checkpoint_dir = '/old/absolute/path' WHERE id = ?", arguments: [legacy])
            try d.execute(sql: "UPDATE job SET x = 9999 WHERE id = ?", arguments: [badPlace])
        }
        // Every restart opens; every job ends, each with the reason in its transitions.
        for _ in 0..<2 {
            s = try await JobService.open(options)
            try await Task.sleep(nanoseconds: 200_000_000)
            await s.tick()
            await s.close()
        }
        let svc = try await JobService.open(options)
        let all = ids + [notJSON, legacy, badPlace]
        #expect(try await until(svc) {
            for id in all where try await !state(svc, id).isFinal { return false }
            return true
        })
        for id in all {
            let j = try await svc.job(id, by: .admin)
            #expect(j.state.isFinal && j.transitions.last.map { !$0.detail.isEmpty } == true, "job \(id): \(j.state) \(j.transitions)")
        }
        // Its attempt 1 is already in the store (attempts reset to 0 by the damage): starts fail until it is FAILED.
        #expect(try await svc.job(notJSON, by: .admin).state == .failed)
        #expect(try await svc.job(legacy, by: .admin).transitions.last?.detail.contains("absolute path") == true)
        #expect(try await svc.job(badPlace, by: .admin).transitions.contains { $0.detail.contains("could not take") })
        #expect(try await svc.job(ids[0], by: .admin).state == .failed)
        #expect(try await svc.job(ids.last!, by: .admin).state == .completed)
        #expect(try await svc.logs(ids.last!, by: .admin).contains("é \u{FFFD} 日本語 tab\there"))
        // And the service still runs jobs.
        let ok = try await svc.submit(JobSubmission(command: ["/bin/echo", "still here"], tiles: 1), by: me)
        #expect(try await until(svc) { try await state(svc, ok.id) == .completed })
        await svc.close()
    }
}

/// The disk check's walk counts every entry even once the bytes are past their cap: a tenant already over its bytes
/// could otherwise drain inodes in folders the walk had not reached (readdir order decides which: CI's did).
@Suite("the disk walk")
struct DiskWalkTests {
    @Test func entriesAreCountedPastTheByteCap() throws {
        let root = tempDB() + ".tree"
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: root) }
        // 20 folders, each a 64 KiB file and 20 empty files: whichever folder comes first passes a 64 KiB byte cap.
        for i in 0..<20 {
            let d = root + "/d\(i)"
            try fm.createDirectory(atPath: d, withIntermediateDirectories: false)
            try Data(repeating: 7, count: 64 << 10).write(to: URL(fileURLWithPath: d + "/big"))
            for j in 0..<20 { #expect(fm.createFile(atPath: d + "/e\(j)", contents: nil)) }
        }
        let all = treeUsage(root, byteCap: 64 << 10, entryCap: 10_000)
        #expect(all.entries == 20 * 22)
        #expect(all.bytes >= 20 * (64 << 10))
        // The entry cap still bounds the work.
        let capped = treeUsage(root, byteCap: 64 << 10, entryCap: 100)
        #expect(capped.entries > 100 && capped.entries < 20 * 22)
        // A caller that does not count entries stops at the byte cap.
        let bytesOnly = treeUsage(root, byteCap: 64 << 10)
        #expect(bytesOnly.bytes > 64 << 10 && bytesOnly.entries < 20 * 22)
    }
}
