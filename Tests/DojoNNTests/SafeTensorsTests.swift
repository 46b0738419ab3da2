import Foundation
import Testing
import DojoNN

/// The error a parse of `bytes` throws, or nil when it succeeds.
private func parseError(_ bytes: [UInt8]) -> CheckpointError? {
    do {
        _ = try SafeTensorsFile.parse(Data(bytes), source: "test.safetensors")
        return nil
    } catch {
        return error
    }
}

/// A file with the given header text (not padded) and buffer.
private func file(header: String, buffer: [UInt8]) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    var n = UInt64(h.count).littleEndian
    withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
    return out + h + buffer
}

private func tempDir() throws -> String {
    let dir = NSTemporaryDirectory() + "safetensors-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Runs python3 with `script`, passing `args`; returns stdout, or nil when python3 is missing.
private func python(_ script: String, _ args: [String]) throws -> (status: Int32, out: String, err: String)? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script] + args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    do { try p.run() } catch { return nil }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    if p.terminationStatus == 127 { return nil }
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// A reader of the format written from the specification with `struct` and `json` only; prints, per tensor
/// sorted by name, "name dtype shape values" (values for F32 and U8), and the metadata as JSON.
private let pythonReader = #"""
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n].decode('utf-8'))
buf = raw[8 + n:]
meta = header.pop('__metadata__', {})
spans = sorted((v['data_offsets'][0], v['data_offsets'][1]) for v in header.values())
pos = 0
for b, e in spans:
    assert b == pos, 'gap or overlap'
    pos = e
assert pos == len(buf), 'buffer not fully indexed'
assert (8 + n) % 8 == 0, 'header not padded to 8'
sizes = {'F32': 4, 'U8': 1, 'I64': 8, 'BF16': 2, 'F16': 2, 'I32': 4, 'F64': 8}
for name in sorted(header):
    t = header[name]
    b, e = t['data_offsets']
    count = 1
    for d in t['shape']:
        count *= d
    assert e - b == count * sizes[t['dtype']], 'size mismatch'
    data = buf[b:e]
    if t['dtype'] == 'F32':
        vals = list(struct.unpack('<%df' % count, data))
    elif t['dtype'] == 'U8':
        vals = list(data)
    elif t['dtype'] == 'I64':
        vals = list(struct.unpack('<%dq' % count, data))
    else:
        vals = []
    print(name, t['dtype'], t['shape'], vals)
print(json.dumps(meta, sort_keys=True))
"""#

/// A writer from the specification with `struct` and `json` only (header order deliberately unsorted).
private let pythonWriter = #"""
import json, struct, sys
w = struct.pack('<3f', 0.5, -1.25, 3.0)
i = struct.pack('<2q', -7, 1 << 40)
header = {'weight': {'dtype': 'F32', 'shape': [3, 1], 'data_offsets': [16, 28]},
          'index': {'dtype': 'I64', 'shape': [2], 'data_offsets': [0, 16]},
          '__metadata__': {'epoch': '3'}}
h = json.dumps(header).encode('utf-8')
h += b' ' * ((8 - len(h) % 8) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + i + w)
"""#

@Suite struct SafeTensorsTests {
    @Test func roundTrip() throws {
        var f = SafeTensorsFile(metadata: ["format": "pt", "epoch": "2"])
        f.setFloats("layer1.weight", shape: [2, 3], values: [1, 2, 3, -4, 5.5, .infinity])
        f.setFloats("layer1.bias", shape: [3], values: [0.1, 0.2, 0.3])
        f.setFloats("scalar", shape: [], values: [42])
        f.setFloats("empty", shape: [0, 4], values: [])
        f.setRaw("steps", dtype: .i64, shape: [2], data: Data([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]))
        f.setRaw("half", dtype: .bf16, shape: [1], data: Data([0x80, 0x3F]))
        f.setRaw("f16", dtype: .f16, shape: [1], data: Data([0x00, 0x3C]))
        f.setRaw("i32", dtype: .i32, shape: [1], data: Data([1, 2, 3, 4]))
        f.setRaw("u8", dtype: .u8, shape: [3], data: Data([1, 2, 3]))
        f.setRaw("f64", dtype: .f64, shape: [1], data: Data([0, 0, 0, 0, 0, 0, 0xF0, 0x3F]))

        let bytes = f.serialized()
        let g = try SafeTensorsFile.parse(bytes, source: "mem")
        #expect(g.tensors == f.tensors)
        // A slice of a larger buffer (indices not starting at 0) parses the same.
        let padded = Data([9, 9, 9]) + bytes + Data([9])
        let sliced = try SafeTensorsFile.parse(padded[3..<(3 + bytes.count)], source: "slice")
        #expect(sliced.tensors == f.tensors)
        #expect(g.metadata == f.metadata)
        let w = try g.floats("layer1.weight")
        #expect(w.shape == [2, 3])
        #expect(w.values == [1, 2, 3, -4, 5.5, .infinity])
        #expect(try g.floats("scalar").values == [42])
        #expect(try g.floats("empty").shape == [0, 4])
        #expect(try g.floats("empty").values.isEmpty)
        // Deterministic: the same content, inserted in another order, gives the same bytes.
        var h = SafeTensorsFile()
        for name in f.names.reversed() { h.tensors[name] = f.tensors[name] }
        h.metadata = ["epoch": "2", "format": "pt"]
        #expect(h.serialized() == bytes)
        #expect(g.serialized() == bytes)

        // Through a file on disk.
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try f.write(to: dir + "/model.safetensors")
        let r = try SafeTensorsFile.read(from: dir + "/model.safetensors")
        #expect(r.tensors == f.tensors)
        #expect(r.source == dir + "/model.safetensors")
    }

    @Test func setFloatsFromBufferPointer() throws {
        var f = SafeTensorsFile()
        let values: [Float] = [1, -0.0, .nan, 3e38]
        values.withUnsafeBufferPointer { f.setFloats("x", shape: [2, 2], values: $0) }
        let back = try SafeTensorsFile.parse(f.serialized(), source: "mem").floats("x").values
        #expect(back.map(\.bitPattern) == values.map(\.bitPattern))
    }

    /// The bytes of a tiny file, worked out by hand from the specification.
    @Test func exactBytes() throws {
        var f = SafeTensorsFile(metadata: ["format": "pt"])
        f.setFloats("a", shape: [2], values: [1.0, -2.0])
        f.setRaw("b", dtype: .u8, shape: [1], data: Data([7]))
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}}"#
        #expect(header.utf8.count == 137) // + 7 spaces = 144, a multiple of 8
        var expected: [UInt8] = [144, 0, 0, 0, 0, 0, 0, 0]
        expected += Array(header.utf8) + [UInt8](repeating: 0x20, count: 7)
        expected += [0x00, 0x00, 0x80, 0x3F] // 1.0f little-endian
        expected += [0x00, 0x00, 0x00, 0xC0] // -2.0f little-endian
        expected += [0x07]
        #expect(expected.count == 161)
        #expect(Array(f.serialized()) == expected)
    }

    @Test func escapesNamesAndMetadata() throws {
        var f = SafeTensorsFile(metadata: ["note": "say \"hi\"\n\\ done", "ünï": "çødé ✓"])
        f.setFloats("weird \"name\"\t/é", shape: [1], values: [1])
        let g = try SafeTensorsFile.parse(f.serialized(), source: "mem")
        #expect(g.metadata == f.metadata)
        #expect(g.names == ["weird \"name\"\t/é"])
    }

    /// An independent reader and writer (python3 with `struct` and `json` only) agree with ours.
    @Test func pythonReference() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var f = SafeTensorsFile(metadata: ["format": "pt", "step": "140"])
        f.setFloats("w", shape: [2, 2], values: [0.5, -1.5, 2.25, 8])
        f.setRaw("mask", dtype: .u8, shape: [3], data: Data([0, 1, 255]))
        f.setRaw("count", dtype: .i64, shape: [1], data: Data([5, 0, 0, 0, 0, 0, 0, 0]))
        let path = dir + "/ours.safetensors"
        try f.write(to: path)
        guard let result = try python(pythonReader, [path]) else {
            print("SafeTensorsTests: python3 not available; independent check skipped")
            return
        }
        #expect(result.status == 0, "python reader failed: \(result.err)")
        #expect(result.out == """
            count I64 [1] [5]
            mask U8 [3] [0, 1, 255]
            w F32 [2, 2] [0.5, -1.5, 2.25, 8.0]
            {"format": "pt", "step": "140"}

            """)

        let theirs = dir + "/theirs.safetensors"
        guard let written = try python(pythonWriter, [theirs]) else { return }
        #expect(written.status == 0, "python writer failed: \(written.err)")
        let g = try SafeTensorsFile.read(from: theirs)
        #expect(g.metadata == ["epoch": "3"])
        #expect(try g.floats("weight").shape == [3, 1])
        #expect(try g.floats("weight").values == [0.5, -1.25, 3.0])
        let index = try g.tensor("index")
        #expect(index.dtype == "I64")
        let ints = index.data.withUnsafeBytes { raw in
            (0..<2).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        }
        #expect(ints == [-7, 1 << 40])
    }

    @Test func missingFile() {
        #expect(throws: CheckpointError.fileNotFound(path: "/nonexistent/dir/x.safetensors")) {
            try SafeTensorsFile.read(from: "/nonexistent/dir/x.safetensors")
        }
        let message = CheckpointError.fileNotFound(path: "/a/b.safetensors").description
        #expect(message.contains("/a/b.safetensors") && message.contains("not found"))
    }

    /// A real file cut at every length: each prefix fails with the error for where it was cut.
    @Test func truncatedFiles() throws {
        var f = SafeTensorsFile(metadata: ["format": "pt"])
        f.setFloats("a", shape: [2], values: [1.0, -2.0])
        f.setRaw("b", dtype: .u8, shape: [1], data: Data([7]))
        let full = Array(f.serialized()) // 8 + 144 header + 9 buffer
        #expect(parseError(full) == nil)
        for cut in 0..<full.count {
            let error = parseError(Array(full[0..<cut]))
            switch cut {
            case 0..<8:
                #expect(error == .fileTooShort(source: "test.safetensors", size: cut))
            case 8..<152:
                #expect(error == .headerTooLarge(source: "test.safetensors", headerLength: 144, fileSize: cut))
            case 152..<161:
                // Tensor "a" ([0, 8]) or "b" ([8, 9]) no longer fits in the shortened buffer.
                guard case .offsetsOutOfBounds(_, _, _, _, let size) = error else {
                    Issue.record("cut at \(cut): \(String(describing: error))")
                    continue
                }
                #expect(size == cut - 152)
            default:
                Issue.record("unexpected cut \(cut)")
            }
        }
        // Extra bytes after the last tensor are not indexed.
        #expect(parseError(full + [0]) == .bufferNotCovered(source: "test.safetensors", begin: 9, end: 10, bufferSize: 10))
    }

    @Test func headerNotJSON() throws {
        var f = SafeTensorsFile()
        f.setFloats("a", shape: [2], values: [1.0, -2.0])
        let good = Array(f.serialized())
        // Flip the opening brace, a quote, a colon and the closing brace in turn.
        for index in [8, 9, 12, good.lastIndex(of: UInt8(ascii: "}"))!] {
            var bad = good
            bad[index] ^= 0x55
            guard case .invalidHeader(let source, _)? = parseError(bad) else {
                Issue.record("flip at \(index): \(String(describing: parseError(bad)))")
                continue
            }
            #expect(source == "test.safetensors")
        }
        // A flipped high byte of the header length: larger than the file.
        var long = good
        long[7] ^= 0x01
        guard case .headerTooLarge? = parseError(long) else {
            Issue.record("flipped length: \(String(describing: parseError(long)))")
            return
        }
        #expect(parseError(file(header: "[1, 2]   ", buffer: [])).map { "\($0)" }?.contains("not a JSON object") == true)
        #expect(parseError(file(header: "{\"a\": 1  ", buffer: [])).map { "\($0)" }?.contains("not valid JSON") == true)
        #expect(parseError(file(header: "{}", buffer: [])) == nil) // an empty file is valid
        guard case .invalidHeader? = parseError(file(header: "{\"__metadata__\": {\"k\": 1}}", buffer: [])) else {
            Issue.record("metadata with a non-string value accepted")
            return
        }
        guard case .invalidHeader? = parseError([2, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFE]) else {
            Issue.record("non-UTF-8 header accepted")
            return
        }
    }

    @Test func entryErrors() {
        let buf = [UInt8](repeating: 0, count: 8)
        func entry(_ json: String) -> CheckpointError? { parseError(file(header: "{\"t\":\(json)}", buffer: buf)) }

        #expect(entry(#"{"shape":[2],"data_offsets":[0,8]}"#)
                == .invalidEntry(source: "test.safetensors", tensor: "t", reason: "missing 'dtype'"))
        #expect(entry(#"{"dtype":"F32","data_offsets":[0,8]}"#)
                == .invalidEntry(source: "test.safetensors", tensor: "t", reason: "missing 'shape'"))
        #expect(entry(#"{"dtype":"F32","shape":[2]}"#)
                == .invalidEntry(source: "test.safetensors", tensor: "t", reason: "missing 'data_offsets'"))
        #expect(entry(#"{"dtype":"F33","shape":[2],"data_offsets":[0,8]}"#)
                == .unknownDType(source: "test.safetensors", tensor: "t", dtype: "F33"))
        #expect(entry(#"{"dtype":"F32","shape":[2],"data_offsets":[0,16]}"#)
                == .offsetsOutOfBounds(source: "test.safetensors", tensor: "t", begin: 0, end: 16, bufferSize: 8))
        #expect(entry(#"{"dtype":"F32","shape":[2],"data_offsets":[8,0]}"#)
                == .offsetsOutOfBounds(source: "test.safetensors", tensor: "t", begin: 8, end: 0, bufferSize: 8))
        #expect(entry(#"{"dtype":"F32","shape":[3],"data_offsets":[0,8]}"#)
                == .sizeMismatch(source: "test.safetensors", tensor: "t", shape: [3], dtype: "F32", expectedBytes: 12, actualBytes: 8))
        for bad in [#"{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}"#,
                    #"{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}"#,
                    #"{"dtype":"F32","shape":[true],"data_offsets":[0,8]}"#,
                    #"{"dtype":"F32","shape":2,"data_offsets":[0,8]}"#,
                    #"{"dtype":"F32","shape":[2],"data_offsets":[0]}"#,
                    #"{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}"#,
                    #"{"dtype":32,"shape":[2],"data_offsets":[0,8]}"#,
                    #"{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}"#,
                    #"[1]"#] {
            guard case .invalidEntry(_, "t", _)? = entry(bad) else {
                Issue.record("\(bad): \(String(describing: entry(bad)))")
                continue
            }
        }
        // Messages name the file, the tensor and the problem.
        let m = entry(#"{"dtype":"F33","shape":[2],"data_offsets":[0,8]}"#)!.description
        #expect(m.contains("test.safetensors") && m.contains("'t'") && m.contains("F33"))
    }

    @Test func overlapAndCoverage() {
        let buf = [UInt8](repeating: 0, count: 12)
        let overlap = parseError(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}"#, buffer: buf))
        #expect(overlap == .overlappingTensors(source: "test.safetensors", tensor: "b", other: "a"))
        let same = parseError(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, buffer: Array(buf[0..<8])))
        #expect(same == .overlappingTensors(source: "test.safetensors", tensor: "b", other: "a"))
        let gap = parseError(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, buffer: buf))
        #expect(gap == .bufferNotCovered(source: "test.safetensors", begin: 4, end: 8, bufferSize: 12))
        let lead = parseError(file(header: #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, buffer: buf))
        #expect(lead == .bufferNotCovered(source: "test.safetensors", begin: 0, end: 4, bufferSize: 12))
        let tail = parseError(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, buffer: buf))
        #expect(tail == .bufferNotCovered(source: "test.safetensors", begin: 8, end: 12, bufferSize: 12))
        // Unordered but contiguous is fine.
        #expect(parseError(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#, buffer: buf)) == nil)
        // A zero-size tensor anywhere is fine.
        #expect(parseError(file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"z":{"dtype":"F32","shape":[0],"data_offsets":[12,12]}}"#, buffer: buf)) == nil)
    }

    @Test func lookupErrors() throws {
        var f = SafeTensorsFile()
        for i in 0..<8 { f.setFloats("layer\(i).weight", shape: [1], values: [Float(i)]) }
        f.setRaw("ids", dtype: .i32, shape: [1], data: Data([1, 0, 0, 0]))
        let g = try SafeTensorsFile.parse(f.serialized(), source: "ckpt/step-140.safetensors")
        do {
            _ = try g.floats("layer9.weight")
            Issue.record("missing tensor found")
        } catch {
            guard case .tensorNotFound(let source, let name, let available) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(source == "ckpt/step-140.safetensors" && name == "layer9.weight" && available.count == 9)
            let message = error.description
            #expect(message.contains("'layer9.weight'") && message.contains("'ids'") && message.contains("9 in all"))
            #expect(message.contains("ckpt/step-140.safetensors"))
        }
        #expect(throws: CheckpointError.wrongDType(source: "ckpt/step-140.safetensors", name: "ids", expected: "F32", actual: "I32")) {
            try g.floats("ids")
        }
    }

    @Test func atomicWriteLeavesNoTemporaryFiles() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ckpt.safetensors"
        var f = SafeTensorsFile()
        f.setFloats("w", shape: [1000], values: [Float](repeating: 1, count: 1000))
        try f.write(to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ckpt.safetensors"])
        // Overwrite with new content: replaced whole, still no stray files.
        f.setFloats("w", shape: [2], values: [3, 4])
        try f.write(to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ckpt.safetensors"])
        #expect(try SafeTensorsFile.read(from: path).floats("w").values == [3, 4])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == f.serialized())

        // A directory that does not exist: a clear error naming the path, nothing left behind.
        do {
            try f.write(to: dir + "/missing/ckpt.safetensors")
            Issue.record("write into a missing directory succeeded")
        } catch {
            guard case .ioError(let p, _) = error else { Issue.record("\(error)"); return }
            #expect(p == dir + "/missing/ckpt.safetensors")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ckpt.safetensors"])
        // A path that is a directory: rename fails, the temporary file is removed.
        try FileManager.default.createDirectory(atPath: dir + "/sub.safetensors/inner", withIntermediateDirectories: true)
        #expect(throws: CheckpointError.self) { try f.write(to: dir + "/sub.safetensors") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["ckpt.safetensors", "sub.safetensors"])
    }
}
