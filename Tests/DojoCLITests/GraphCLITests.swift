import Foundation
import Testing

/// `dojo graph` and `dojo models` with the transformer zoo: real sizes recorded on shapes only, specs checked.
@Suite struct GraphCLITests {
    @Test func gpt175bRecordsWithoutMemory() throws {
        let started = Date()
        let r = runDojo(["graph", "--model", "gpt-175b", "--batch", "1"])
        let seconds = Date().timeIntervalSince(started)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("model gpt-175b, batch 1"))
        #expect(r.stdout.contains("parameters          174,604,259,328"))
        #expect(r.stdout.contains(" 0 B of tensor memory at most"), "\(r.stdout.suffix(400))")
        #expect(seconds < 10, "dojo graph --model gpt-175b took \(seconds) s")
    }

    @Test func specsWorkAndBadSpecsFailWithTheKey() throws {
        var r = runDojo(["graph", "--model", "bert-large:seq=128", "--batch", "2", "--json", "-"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["model"] as? String == "bert-large:seq=128")
        #expect(json?["batch"] as? Int == 2)

        r = runDojo(["graph", "--model", "vit-b16", "--optimizer", "sgd"])
        #expect(r.status == 0 && r.stdout.contains("parameters          86,567,656"), "\(r.stderr)")

        for (spec, message) in [("gpt:layers=x", "key 'layers'"), ("gpt:hidden=100,heads=3", "key 'heads'"),
                                ("gpt:depth=2", "unknown key 'depth'"), ("resnet50:layers=2", "takes no keys")] {
            r = runDojo(["graph", "--model", spec])
            #expect(r.status != 0, "\(spec) should fail")
            #expect(r.stderr.contains(message), "\(spec): stderr was \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"), "\(spec) crashed")
        }
        r = runDojo(["graph", "--model", "gpt-175b", "--compute"])
        #expect(r.status != 0 && r.stderr.contains("shape-only"), "\(r.stderr)")
        r = runDojo(["train", "--model", "gpt-125m"])
        #expect(r.status != 0 && r.stderr.contains("language model"), "\(r.stderr)")
    }

    @Test func modelsListsTheTransformers() throws {
        let r = runDojo(["models"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["gpt-175b", "174,604,259,328", "llama2-70b", "68,976,648,192", "bert-large", "335,174,458", "vit-b16", "86,567,656"] {
            #expect(r.stdout.contains(line), "models output lacks \(line)")
        }
    }
}
