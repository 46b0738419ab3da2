import Foundation
import Testing

/// Every `dojo train` line of the README's tour runs as shown (one once did not: `--model resnet18 --data
/// fashion-mnist`, which needs 32×32 images). Each runs for 2 steps on a few examples, in order, in one folder, so
/// that `--resume` finds the checkpoint the line before it wrote.
@Suite("the README's dojo train commands work as shown", .serialized)
struct ReadmeCommandTests {
    static func readmeTrainLines() throws -> [[String]] {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("README.md").path), dir.path != "/" { dir.deleteLastPathComponent() }
        let text = try String(contentsOf: dir.appendingPathComponent("README.md"), encoding: .utf8)
        guard let tour = text.components(separatedBy: "## A tour of the commands").dropFirst().first?
            .components(separatedBy: "```sh").dropFirst().first?.components(separatedBy: "```").first else { return [] }
        return tour.split(separator: "\n").compactMap { line -> [String]? in
            let command = line.components(separatedBy: "#").first!.trimmingCharacters(in: .whitespaces)
            guard command.hasPrefix("dojo train") else { return nil }
            return command.split(separator: " ").dropFirst().map(String.init)
        }
    }

    @Test func everyTrainLineRuns() throws {
        let lines = try Self.readmeTrainLines()
        #expect(lines.count >= 5, "the tour's dojo train lines: \(lines)")
        let dir = NSTemporaryDirectory() + "dojo-readme-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for args in lines {
            // Short: 2 steps, few examples; a relative --out goes under the temporary folder; --epochs/--steps replaced.
            var a: [String] = []
            var i = 0
            while i < args.count {
                if ["--steps", "--epochs"].contains(args[i]) { i += 2; continue }
                if args[i] == "--out", i + 1 < args.count { a += ["--out", dir + "/" + args[i + 1]]; i += 2; continue }
                a.append(args[i]); i += 1
            }
            if !a.contains("--out") { a += ["--out", dir + "/default-\(UUID().uuidString)"] }
            let resuming = a.contains("--resume")
            a += ["--steps", resuming ? "4" : "2", "--checkpoint-every", "0"]
            if !resuming { a += ["--train-examples", "256", "--eval-examples", "64"] }
            if a.contains("--ranks") || a.contains("--plan"), !FileManager.default.isExecutableFile(atPath: "/usr/bin/mpirun") { continue }
            let r = runDojo(a)
            #expect(r.status == 0, "dojo \(args.joined(separator: " ")) (run as dojo \(a.joined(separator: " "))): \(r.stderr)")
        }
    }
}
