import Foundation
import Testing

/// The real traces sit in ../shared beside the repository (as on CI's clean clone), not at a fixed path.
let sharedTraces = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/data/traces").standardized.path

@Suite("dojo cluster")
struct ClusterCLITests {
    let trace = sharedTraces + "/openb_pod_list_default.csv"

    @Test("replay prints a comparison of the three policies")
    func happy() throws {
        let csv = FileManager.default.temporaryDirectory.appendingPathComponent("trace-\(UUID().uuidString).csv")
        var text = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
        for i in 0..<50 { text += "p\(i),1000,10,\(i % 3 + 1),1000,,\(i % 2 == 0 ? "LS" : "BE"),Running,\(i * 100),\(i * 100 + 5000),\(i * 100)\n" }
        try text.write(to: csv, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: csv) }
        let r = runDojo(["cluster", "replay", csv.path, "--gang-jobs", "20", "--mtbf-hours", "200"])
        #expect(r.status == 0, "\(r.stderr)")
        for p in ["fifo ", "fifo-backfill", "opendojo"] { #expect(r.stdout.contains(p)) }
        #expect(r.stdout.contains("70 "))
    }

    @Test("bad inputs give one line 'Error: …' and a non-zero exit", arguments: [
        (["cluster", "replay", "/nonexistent/trace.csv"], "cannot read"),
        (["cluster", "replay", sharedTraces + "/openb_node_list_all_node.csv"], "header"),
        (["cluster", "replay", sharedTraces + "/openb_pod_list_default.csv", "--policy", "lifo"], "unknown policy"),
        (["cluster", "replay", sharedTraces + "/openb_pod_list_default.csv", "--machine", "dgx-h100"], "GPU cluster"),
        (["cluster", "bench-service", "--jobs", "0"], "--jobs must be 1…100,000"),
    ])
    func bad(args: [String], text: String) {
        let r = runDojo(args)
        #expect(r.status != 0)
        #expect(r.stderr.hasPrefix("Error: ") && r.stderr.contains(text), "\(r.stderr)")
        #expect(r.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "\(r.stderr)")
    }
}
