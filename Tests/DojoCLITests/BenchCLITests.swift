import Foundation
import Testing

/// `dojo bench` measures a network's fp32, bf16 and cfp8 steps in rounds, in turn, and reports each one's median round.
@Suite("dojo bench rounds")
struct BenchCLITests {
    @Test("--rounds 2: each format of the small CNN has two rounds, and reports one of them (the median's index) and the fastest step")
    func rounds() throws {
        let r = runDojo(["bench", "--only", "small-cnn", "--quick", "--json", "--rounds", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let names = lines.compactMap { $0["name"] as? String }
        #expect(names == ["small-cnn 1x28x28 b128", "small-cnn 1x28x28 b128 bf16", "small-cnn 1x28x28 b128 cfp8"])
        for l in lines {
            let rounds = try #require(l["round_seconds_per_step"] as? [Double])
            let step = try #require(l["seconds_per_step"] as? Double)
            #expect(rounds.count == 2 && rounds.allSatisfy { $0 > 0 })
            #expect(step == rounds.sorted()[1])
            // the fastest timed step of all rounds: no slower than any round's median step
            let best = try #require(l["best_seconds_per_step"] as? Double)
            #expect(best > 0 && best <= rounds.min()!)
        }
    }
}
