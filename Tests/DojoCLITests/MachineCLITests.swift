import Foundation
import Testing

/// `dojo machines` and `dojo machine show` through the built binary, run from another directory
/// (the presets are package resources and must be found from anywhere).
@Suite("dojo machines / machine show")
struct MachineCLITests {
    /// Runs the binary with the temporary directory as its working directory; returns status and stdout.
    func runElsewhere(_ args: [String]) throws -> (status: Int32, stdout: String) {
        let exe = try #require(dojoExecutableURL)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("machine-cli-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        p.currentDirectoryURL = FileManager.default.temporaryDirectory
        let h = try FileHandle(forWritingTo: out)
        p.standardOutput = h
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try h.close()
        return (p.terminationStatus, try String(contentsOf: out, encoding: .utf8))
    }

    @Test("machines lists every preset with its kind and peak BF16")
    func machines() {
        let r = runDojo(["machines"])
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["d1", "tile", "tray", "cabinet", "exapod", "d2", "dgx-v100", "dgx-a100", "dgx-h100"] {
            #expect(r.stdout.contains("\n\(name) "), "\(name) missing")
        }
        #expect(r.stdout.contains("362 TFLOP/s"))
        #expect(r.stdout.contains("9.06 PFLOP/s"))
        #expect(r.stdout.contains("1.09 EFLOP/s"))
        #expect(r.stdout.contains("hypothetical"))
    }

    @Test("machine show tile prints the totals with units and the sources")
    func showTile() throws {
        let r = try runElsewhere(["machine", "show", "tile"])
        #expect(r.status == 0)
        for s in ["9.06 PFLOP/s", "11.1 GB", "36.0 TB/s", "10.0 TB/s", "15.0 kW", "362 TFLOP/s", "S3", "ASSUMPTION", "d1.mesh_rows"] {
            #expect(r.stdout.contains(s), "missing \(s)")
        }
        let j = runDojo(["machine", "show", "dgx-h100x8", "--json"])
        #expect(j.status == 0, "\(j.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        let levels = obj?["levels"] as? [[String: Any]]
        #expect(obj?["name"] as? String == "dgx-h100x8")
        #expect(levels?.last?["chips"] as? Int == 64)
    }

    @Test("--set changes a parameter; a bad one is an error naming the key path")
    func set() {
        let r = runDojo(["machine", "show", "d1", "--set", "node.sram_bytes=2.5MB"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("885 MB"))
        let bad = runDojo(["machine", "show", "d1", "--set", "node.sram_bytes=2GHz"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--set node.sram_bytes=2GHz (on d1): node.sram_bytes: expected bytes"), "\(bad.stderr)")
        let form = runDojo(["machine", "show", "d1", "--set", "sram"])
        #expect(form.status != 0)
        #expect(form.stderr.contains("not KEY=VALUE"), "\(form.stderr)")
    }

    @Test("an unknown name: message with the presets, non-zero exit")
    func unknown() {
        let r = runDojo(["machine", "show", "tpu-v9"])
        #expect(r.status != 0)
        #expect(r.status != -1, "\(r.stderr)")
        #expect(r.stderr.contains("unknown machine 'tpu-v9'"), "\(r.stderr)")
        #expect(r.stderr.contains("dgx-h100"))
    }

    @Test("a user file with a bad key: the file and key path in the message")
    func badFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("machine-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.yaml")
        // A user's own file: a D1 with twice the SRAM per node.
        try """
        name: big-sram
        kind: dojo
        summary: D1 with 2.5 MB per node
        top: d1
        count: 1
        node: {clock: 2GHz, matrix_flops_per_cycle: 512, fp32_flops_per_cycle: 32, matrix_block: 8, sram_bytes: 2.5MB,
               sram_load_bandwidth: 400GB/s, sram_store_bandwidth: 270GB/s, link_bytes_per_cycle: 64B,
               hop_latency_cycles: 1, threads: 4, accumulator: fp32}
        d1: {nodes: 354, mesh_rows: 18, mesh_cols: 20, routing: dimension-order, serdes_channels: 576,
             serdes_rate: 112Gb/s, edge_bandwidth: 2TB/s, die_to_die_latency: 100ns, tdp: 400W}
        calibration: {matrix_efficiency: 0.8, vector_efficiency: 0.7, link_efficiency: 0.9, memory_efficiency: 0.9}
        """.write(to: good, atomically: true, encoding: .utf8)
        let ok = runDojo(["machine", "show", good.path])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("885 MB"))
        let bad = dir.appendingPathComponent("bad.yaml")
        try String(contentsOf: good, encoding: .utf8).replacingOccurrences(of: "threads: 4", with: "threads: 4, cache: 1MB")
            .write(to: bad, atomically: true, encoding: .utf8)
        let r = runDojo(["machine", "show", bad.path])
        #expect(r.status != 0)
        #expect(r.status != -1, "\(r.stderr)")
        #expect(r.stderr.contains("bad.yaml: node.cache: unknown key"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }
}
