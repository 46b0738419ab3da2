import Foundation
import Testing
import DojoReport

private func tempPath(_ name: String) throws -> (dir: String, path: String) {
    let dir = NSTemporaryDirectory() + "jsonl-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return (dir, dir + "/" + name)
}

private struct StepRecord: Codable, Equatable {
    var step: Int
    var loss: Double
    var phase: String
}

private struct LooseRecord: Codable, Equatable {
    var step: Int
    var phase: String?
}

@Suite struct JSONLinesTests {
    @Test func valuesEncodeCompactlyWithSortedKeys() throws {
        let v: JSONValue = ["step": 3, "loss": 0.25, "name": "a\"b\nc", "ok": true, "none": nil, "list": [1, 2.5, "x"]]
        #expect(v.description == #"{"list":[1,2.5,"x"],"loss":0.25,"name":"a\"b\nc","none":null,"ok":true,"step":3}"#)
        #expect(JSONValue.number(.nan).description == "null")
        #expect(JSONValue.number(1e-5).description == "1e-05")
        #expect(JSONValue.number(123456789012).description == "123456789012")
        #expect(try JSONValue.parse(v.description) == v)
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse("1") == .number(1))
        #expect(v["step"]?.intValue == 3)
        #expect(v["loss"]?.doubleValue == 0.25)
        #expect(v["name"]?.stringValue == "a\"b\nc")
        // Codable round trip through JSONEncoder/JSONDecoder.
        let data = try JSONEncoder().encode(v)
        #expect(try JSONDecoder().decode(JSONValue.self, from: data) == v)
    }

    @Test func writeAndReadBack() throws {
        let (dir, path) = try tempPath("metrics.jsonl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try JSONLinesWriter(path: path)
        try w.append(["step": 1, "loss": 2.5])
        // Each line is on disk as soon as it is appended.
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"loss\":2.5,\"step\":1}\n")
        try w.append(StepRecord(step: 2, loss: 1.25, phase: "train"))
        w.close()
        #expect(throws: JSONLinesError.self) { try w.append(["step": 3]) }

        // Reopening appends.
        let w2 = try JSONLinesWriter(path: path)
        try w2.append(["step": 3, "loss": 1, "phase": "eval"])
        w2.close()
        let objects = try JSONLinesReader.read(path: path)
        #expect(objects.count == 3)
        #expect(objects[1] == ["loss": 1.25, "phase": "train", "step": 2])
        #expect(objects[2]["phase"] == "eval")
        #expect(throws: JSONLinesError.decodingFailed(path: path, line: 1, type: "StepRecord", reason: "missing key 'phase'")) {
            try JSONLinesReader.decode(StepRecord.self, path: path)
        }
        let records = try JSONLinesReader.decode(LooseRecord.self, path: path)
        #expect(records.map(\.step) == [1, 2, 3] && records.map(\.phase) == [nil, "train", "eval"])

        // truncate: true starts over.
        let w3 = try JSONLinesWriter(path: path, truncate: true)
        try w3.append(["step": 9])
        #expect(try JSONLinesReader.read(path: path) == [["step": 9]])
    }

    @Test func tornLastLineIsDroppedOtherBadLinesAreErrors() throws {
        let (dir, path) = try tempPath("m.jsonl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{\"step\":1}\n\n{\"step\":2}\n{\"step\":3,\"lo".write(toFile: path, atomically: false, encoding: .utf8)
        let c = try JSONLinesReader.readContents(path: path)
        #expect(c.objects == [["step": 1], ["step": 2]])
        #expect(c.droppedTornLine)

        try "{\"step\":1}\nnot json\n{\"step\":2}\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: JSONLinesError.invalidJSON(path: path, line: 2, text: "not json")) {
            try JSONLinesReader.read(path: path)
        }
        try "{\"step\":1}\n[1,2]\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: JSONLinesError.notAnObject(path: path, line: 2)) { try JSONLinesReader.read(path: path) }
        #expect(throws: JSONLinesError.fileNotFound(path: dir + "/nope.jsonl")) {
            try JSONLinesReader.read(path: dir + "/nope.jsonl")
        }
        #expect(JSONLinesError.invalidJSON(path: "m.jsonl", line: 2, text: "x").description == "m.jsonl:2: not valid JSON: x")
    }

    @Test func truncateAfterStepForResume() throws {
        let (dir, path) = try tempPath("metrics.jsonl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try JSONLinesWriter(path: path)
        try w.append(["event": "start"]) // no step: kept
        for step in 1...10 {
            try w.append(["step": .number(Double(step)), "loss": .number(1 / Double(step))])
            if step % 5 == 0 { try w.append(["step": .number(Double(step)), "eval_acc": 0.5]) }
        }
        w.close()
        // A torn line from a kill mid-write.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try (text + "{\"step\":11,").write(toFile: path, atomically: false, encoding: .utf8)

        let kept = try JSONLinesReader.truncate(path: path, afterStep: 5)
        #expect(kept == 1 + 5 + 1) // start, steps 1-5, the eval line at step 5
        let objects = try JSONLinesReader.read(path: path)
        #expect(objects.count == 7)
        #expect(objects.last == ["eval_acc": 0.5, "step": 5])
        #expect(objects.compactMap { $0["step"]?.intValue }.max() == 5)
        #expect(try JSONLinesReader.readContents(path: path).droppedTornLine == false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["metrics.jsonl"])

        // Appending after truncation continues the log.
        let w2 = try JSONLinesWriter(path: path)
        try w2.append(["step": 6, "loss": 0.1])
        #expect(try JSONLinesReader.read(path: path).count == 8)
        // A step before everything keeps only the lines before the first step.
        #expect(try JSONLinesReader.truncate(path: path, afterStep: 0) == 1)
        // A custom key.
        let w3 = try JSONLinesWriter(path: path, truncate: true)
        for e in 0..<4 { try w3.append(["epoch": .number(Double(e))]) }
        #expect(try JSONLinesReader.truncate(path: path, afterStep: 1, key: "epoch") == 2)
    }

    @Test func writerErrors() throws {
        #expect(throws: JSONLinesError.self) { _ = try JSONLinesWriter(path: "/nonexistent-dir/x.jsonl") }
    }
}
