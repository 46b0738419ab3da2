import DojoGraph
import DojoNN
import DojoONNX
import DojoTensor
import Foundation
import SwiftProtobuf
import XCTest

/// A small model written here with the generated protobuf types: Conv → BatchNorm → Relu → MaxPool →
/// GlobalAveragePool → Flatten → Gemm, then Reshape by a computed shape (Shape, Gather, Unsqueeze, Concat) and a
/// MatMul by a transposed weight, as exporters write them.
enum TinyModel {
    static func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dims = dims.map(Int64.init); t.dataType = 1
        t.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        return t
    }
    static func ints(_ name: String, _ values: [Int]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dims = [Int64(values.count)]; t.dataType = 7; t.int64Data = values.map(Int64.init)
        return t
    }
    static func scalar(_ name: String, _ value: Int) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dims = []; t.dataType = 7; t.int64Data = [Int64(value)]
        return t
    }
    static func node(_ op: String, _ inputs: [String], _ outputs: [String], _ attrs: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op; n.name = outputs[0] + "_node"; n.input = inputs; n.output = outputs; n.attribute = attrs
        return n
    }
    static func attr(_ name: String, ints: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto(); a.name = name; a.type = .ints; a.ints = ints.map(Int64.init); return a
    }
    static func attr(_ name: String, string: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto(); a.name = name; a.type = .string; a.s = Data(string.utf8); return a
    }
    static func attr(_ name: String, int: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto(); a.name = name; a.type = .int; a.i = Int64(int); return a
    }
    static func values(_ n: Int, seed: Int) -> [Float] { (0..<n).map { Float(($0 * 7919 + seed * 104729) % 97) / 97 - 0.5 } }

    static func proto() -> Onnx_ModelProto {
        var g = Onnx_GraphProto()
        g.name = "tiny"
        var input = Onnx_ValueInfoProto()
        input.name = "x"
        input.type.tensorType.elemType = 1
        for d in [2, 3, 8, 8] { var dim = Onnx_TensorShapeProto.Dimension(); dim.dimValue = Int64(d); input.type.tensorType.shape.dim.append(dim) }
        g.input = [input]
        var out = Onnx_ValueInfoProto(); out.name = "y"; g.output = [out]
        g.initializer = [
            tensor("conv.weight", [4, 3, 3, 3], values(108, seed: 1)), tensor("conv.bias", [4], values(4, seed: 2)),
            tensor("bn.weight", [4], [1, 1.1, 0.9, 1]), tensor("bn.bias", [4], values(4, seed: 3)),
            tensor("bn.running_mean", [4], [0, 0, 0, 0]), tensor("bn.running_var", [4], [1, 1, 1, 1]),
            tensor("fc.weight", [6, 4], values(24, seed: 4)), tensor("fc.bias", [6], values(6, seed: 5)),
            tensor("proj.weight", [5, 3], values(15, seed: 6)), ints("axis0", [0]), ints("tail", [2, 3]), scalar("first", 0),
        ]
        g.node = [
            node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], [attr("kernel_shape", ints: [3, 3]), attr("pads", ints: [1, 1, 1, 1])]),
            node("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], ["b"]),
            node("Relu", ["b"], ["r"]),
            node("MaxPool", ["r"], ["p"], [attr("kernel_shape", ints: [2, 2]), attr("strides", ints: [2, 2])]),
            node("GlobalAveragePool", ["p"], ["gp"]),
            node("Flatten", ["gp"], ["f"], [attr("axis", int: 1)]),
            node("Gemm", ["f", "fc.weight", "fc.bias"], ["h"], [attr("transB", int: 1)]),
            node("Shape", ["h"], ["hs"]),
            node("Gather", ["hs", "first"], ["n"], [attr("axis", int: 0)]),
            node("Unsqueeze", ["n", "axis0"], ["n1"]),
            node("Concat", ["n1", "tail"], ["shape"], [attr("axis", int: 0)]),
            node("Reshape", ["h", "shape"], ["h3"]),
            node("Transpose", ["proj.weight"], ["pt"], [attr("perm", ints: [1, 0])]),
            node("MatMul", ["h3", "pt"], ["m"]),
            node("Flatten", ["m"], ["y"], [attr("axis", int: 1)]),
        ]
        var m = Onnx_ModelProto()
        m.irVersion = 8; m.producerName = "OpenDojo tests"
        var opset = Onnx_OperatorSetIdProto(); opset.version = 13
        m.opsetImport = [opset]
        m.graph = g
        return m
    }
    static func bytes(_ m: Onnx_ModelProto = proto()) -> Data { try! m.serializedBytes() }
}

final class ONNXBadFileTests: XCTestCase {
    func load(_ data: Data) throws -> ONNXNetwork {
        let model = try ONNXModel.parse(data, path: "t.onnx")
        return try ONNXNetwork(model, inputShapes: try ONNXImport.inputShapes(model, batch: nil, examples: [:]))
    }
    func assertError(_ data: Data, _ words: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try load(data)
            XCTFail("accepted; expected an error saying '\(words)'", file: file, line: line)
        } catch let e as ONNXError {
            XCTAssertTrue(e.message.hasPrefix("t.onnx"), "\(e.message)", file: file, line: line)
            XCTAssertTrue(e.message.contains(words), "'\(e.message)' should say '\(words)'", file: file, line: line)
        } catch {
            XCTFail("\(type(of: error)): \(error)", file: file, line: line)
        }
    }

    func testTheTinyModelImportsTrainsAndRunsItsOps() throws {
        let net = try load(TinyModel.bytes())
        XCTAssertEqual(net.outputShape, [2, 10])
        // conv 108+4, bn 4+4 (statistics are buffers), fc 24+6, proj 15; int initializers are constants
        XCTAssertEqual(net.parameterCount, 165)
        XCTAssertEqual(net.transposedWeights, ["pt": "proj.weight"])
        let x = Tensor(TinyModel.values(2 * 3 * 64, seed: 9), shape: [2, 3, 8, 8])
        let y = net(x)
        XCTAssertTrue((0..<y.count).allSatisfy { y.pointer[$0].isFinite })
        // the same network computed by hand with the engine's ops
        let p = Dictionary(uniqueKeysWithValues: net.stateTensors)
        var h = x.conv2d(weight: p["conv.weight"]!, bias: p["conv.bias"]!, padding: (1, 1))
        h = h.batchNorm(gamma: p["bn.weight"]!, beta: p["bn.bias"]!, runningMean: p["bn.running_mean"]!, runningVariance: p["bn.running_var"]!, training: false)
        h = h.relu().maxPool2d(kernel: (2, 2)).globalAvgPool().linear(weight: p["fc.weight"]!, bias: p["fc.bias"]!)
        let ref = h.reshaped([2, 2, 3]).matmul(p["proj.weight"]!, transposeB: true).reshaped([2, 10])
        for i in 0..<ref.count { XCTAssertEqual(y.pointer[i], ref.pointer[i], accuracy: 1e-6) }
    }

    /// Pad(x, 1 on H and W) → Conv without pads reads as the convolution with pads 1: the tiny model's output.
    func testAPadBeforeAConvolutionIsItsPadding() throws {
        let x = Tensor(TinyModel.values(2 * 3 * 64, seed: 9), shape: [2, 3, 8, 8])
        let reference = try load(TinyModel.bytes())(x)
        var m = TinyModel.proto()
        m.graph.initializer.append(TinyModel.ints("padding", [0, 0, 1, 1, 0, 0, 1, 1]))
        m.graph.node[0].attribute.removeAll { $0.name == "pads" }
        m.graph.node[0].input[0] = "xp"
        m.graph.node.insert(TinyModel.node("Pad", ["x", "padding"], ["xp"]), at: 0)
        let y = try load(TinyModel.bytes(m))(x)
        XCTAssertEqual(y.shape, reference.shape)
        for i in 0..<y.count { XCTAssertEqual(y.pointer[i], reference.pointer[i], accuracy: 1e-6) }
        // asymmetric (TensorFlow's SAME at stride 2): not a convolution's padding, so a Pad of its own (zero blocks
        // concatenated below and to the right), then the convolution without padding: as computed by hand
        m.graph.initializer[m.graph.initializer.count - 1] = TinyModel.ints("padding", [0, 0, 0, 0, 0, 0, 1, 1])
        let asymmetric = try load(TinyModel.bytes(m))
        let z = asymmetric(x)
        let p = Dictionary(uniqueKeysWithValues: asymmetric.stateTensors)
        var h = Tensor.concatenate([x, Tensor(zeros: [2, 3, 1, 8])], axis: 2)
        h = Tensor.concatenate([h, Tensor(zeros: [2, 3, 9, 1])], axis: 3)
        h = h.conv2d(weight: p["conv.weight"]!, bias: p["conv.bias"]!, padding: (0, 0))
        h = h.batchNorm(gamma: p["bn.weight"]!, beta: p["bn.bias"]!, runningMean: p["bn.running_mean"]!, runningVariance: p["bn.running_var"]!, training: false)
        h = h.relu().maxPool2d(kernel: (2, 2)).globalAvgPool().linear(weight: p["fc.weight"]!, bias: p["fc.bias"]!)
        let ref = h.reshaped([2, 2, 3]).matmul(p["proj.weight"]!, transposeB: true).reshaped([2, 10])
        XCTAssertEqual(z.shape, [2, 10])
        for i in 0..<ref.count { XCTAssertEqual(z.pointer[i], ref.pointer[i], accuracy: 1e-6) }
        // a negative pad crops; a mode other than constant is one error
        m.graph.initializer[m.graph.initializer.count - 1] = TinyModel.ints("padding", [0, 0, -1, 0, 0, 0, 0, -1])
        XCTAssertEqual(try load(TinyModel.bytes(m)).outputShape, [2, 10])
        m.graph.node[0].attribute = [TinyModel.attr("mode", string: "reflect")]
        assertError(TinyModel.bytes(m), "node 'xp_node' (Pad), opset 13: mode 'reflect'; this import reads constant padding")
        m.graph.initializer[m.graph.initializer.count - 1] = TinyModel.ints("padding", [0, 0, 1, 1])
        m.graph.node[0].attribute = []
        assertError(TinyModel.bytes(m), "4 pads for the 4 axes of [2, 3, 8, 8]; a begin and an end for each")
        m.graph.initializer[m.graph.initializer.count - 1] = TinyModel.ints("padding", [0, 0, -8, 0, 0, 0, 0, 0])
        assertError(TinyModel.bytes(m), "pads -8 and 0 on axis 2 of size 8; the result needs at least 1")
    }

    /// Resize's inputs and attributes that are not read are one error each, naming the node.
    func testResizeErrors() throws {
        func resized(_ attrs: [Onnx_AttributeProto], scales: [Float]?) -> Data {
            var m = TinyModel.proto()
            m.graph.node[2].input[0] = "bz"      // Relu reads the resized batch-norm output
            var inputs = ["b", ""]
            if let s = scales { m.graph.initializer.append(TinyModel.tensor("scales", [s.count], s)); inputs.append("scales") }
            m.graph.node.insert(TinyModel.node("Resize", inputs, ["bz"], attrs), at: 2)
            return TinyModel.bytes(m)
        }
        XCTAssertEqual(try load(resized([TinyModel.attr("mode", string: "nearest")], scales: [1, 1, 2, 2])).outputShape, [2, 10])
        assertError(resized([], scales: nil), "node 'bz_node' (Resize), opset 13: needs scales or sizes, exactly one of them")
        assertError(resized([TinyModel.attr("mode", string: "cubic")], scales: [1, 1, 2, 2]), "mode 'cubic'; this import reads nearest and linear")
        assertError(resized([], scales: [1, 2, 2, 2]), "scales [1.0, 2.0, 2.0, 2.0]; this import resizes H and W")
        assertError(resized([TinyModel.attr("coordinate_transformation_mode", string: "crop_and_resize")], scales: [1, 1, 2, 2]),
                    "coordinate_transformation_mode 'crop_and_resize' is not read")
    }

    func testBadFilesAreOneClearError() throws {
        let good = TinyModel.bytes()
        assertError(Data(), "empty file")
        assertError(good.prefix(good.count / 2), "not an ONNX model")
        assertError(Data("\u{89}PNG\r\n\u{1a}\n".utf8) + Data(repeating: 7, count: 64), "not an ONNX model")
        assertError(Data("graph tiny { x -> y }\n".utf8), "not an ONNX model")

        var m = TinyModel.proto()
        m.graph.initializer.removeAll { $0.name == "fc.weight" }
        assertError(TinyModel.bytes(m), "reads 'fc.weight', which no node, graph input or initializer defines")

        m = TinyModel.proto()
        m.graph.node[0].input[0] = "y"   // the first node reads the last one's output
        assertError(TinyModel.bytes(m), "cycle")

        m = TinyModel.proto()
        m.graph.initializer[0].dims = [4, 2, 3, 3]; m.graph.initializer[0].rawData = m.graph.initializer[0].rawData.prefix(72 * 4)
        assertError(TinyModel.bytes(m), "weight [4, 2, 3, 3] with group 1 needs 2")

        m = TinyModel.proto()
        m.graph.initializer[6].rawData = m.graph.initializer[6].rawData.prefix(20 * 4)
        assertError(TinyModel.bytes(m), "initializer 'fc.weight' holds 20 values (raw data) for shape [6, 4], which needs 24")

        m = TinyModel.proto()
        m.graph.node[2].opType = "If"
        assertError(TinyModel.bytes(m), "an op this import does not read: If (node 'r_node')")

        m = TinyModel.proto()
        m.opsetImport[0].version = 9
        assertError(TinyModel.bytes(m), "opset 9; this import reads opsets 13–21")

        m = TinyModel.proto()
        m.graph.node[6].attribute = []   // Gemm without transB: [2,4]·[6,4]
        assertError(TinyModel.bytes(m), "node 'h_node' (Gemm), opset 13: A [2, 4] · B [6, 4]: inner sizes 4 and 6 differ")

        m = TinyModel.proto()
        m.graph.initializer[10] = TinyModel.ints("tail", [4, 3])   // reshape [2,6] to [2,4,3]
        assertError(TinyModel.bytes(m), "reshaping [2, 6] (12 values) to [2, 4, 3]")

        m = TinyModel.proto()
        m.graph.node[0].attribute.append(TinyModel.attr("pads", ints: [1, 1, 0, 0]))
        m.graph.node[0].attribute.remove(at: 1)
        assertError(TinyModel.bytes(m), "asymmetric pads")

        m = TinyModel.proto()
        m.graph.node.append(TinyModel.node("Relu", ["r"], ["c"]))   // a second writer of 'c'
        assertError(TinyModel.bytes(m), "writes 'c', which another node, input or initializer also defines")

        m = TinyModel.proto()
        m.graph.initializer[0].dataLocation = .external
        assertError(TinyModel.bytes(m), "external file")

        m = TinyModel.proto()
        m.graph.initializer.append(TinyModel.ints("fold", [4, 3]))
        m.graph.node[11].input[1] = "fold"   // [2, 6] → [4, 3]: the batch folded into the rows
        assertError(TinyModel.bytes(m), "whose first dimension is not the batch 2")

        m = TinyModel.proto()
        var second = Onnx_ValueInfoProto(); second.name = "h"; m.graph.output.append(second)
        assertError(TinyModel.bytes(m), "the graph has 2 outputs (y, h)")

        m = TinyModel.proto()
        m.graph.initializer[1] = TinyModel.tensor("conv.bias", [4], [0, .nan, 0, 0])
        assertError(TinyModel.bytes(m), "initializer 'conv.bias' holds NaN or infinite values")

        m = TinyModel.proto()
        m.graph.node[0].attribute.append(TinyModel.attr("group", int: 0))
        assertError(TinyModel.bytes(m), "group 0; at least 1")

        m = TinyModel.proto()
        m.graph.input[0].type.tensorType.shape.dim[3].dimValue = 0
        assertError(TinyModel.bytes(m), "graph input 'x' dimension 3 is 0; sizes are at least 1")

        // a one-unit head: its one-value bias is a parameter (it is read where a Gemm reads its bias)
        m = TinyModel.proto()
        m.graph.initializer[6] = TinyModel.tensor("fc.weight", [1, 4], [0.1, 0.2, 0.3, 0.4])
        m.graph.initializer[7] = TinyModel.tensor("fc.bias", [1], [0.5])
        m.graph.node = Array(m.graph.node.prefix(7))
        m.graph.node[6].output = ["y"]
        let head = try load(TinyModel.bytes(m))
        XCTAssertEqual(head.parameterCount, 112 + 8 + 5)
        XCTAssertEqual(head.outputShape, [2, 1])

        // a dynamic batch is --batch (1 without it); a fixed one refuses another; other dynamic sizes need --input
        m = TinyModel.proto()
        var dim = Onnx_TensorShapeProto.Dimension(); dim.dimParam = "N"
        m.graph.input[0].type.tensorType.shape.dim[0] = dim
        let dynamic = try ONNXModel.parse(TinyModel.bytes(m), path: "t.onnx")
        XCTAssertEqual(try ONNXImport.inputShapes(dynamic, batch: nil, examples: [:])["x"], [1, 3, 8, 8])
        XCTAssertEqual(try ONNXImport.inputShapes(dynamic, batch: 5, examples: [:])["x"], [5, 3, 8, 8])
        m.graph.input[0].type.tensorType.shape.dim[2] = dim
        let side = try ONNXModel.parse(TinyModel.bytes(m), path: "t.onnx")
        XCTAssertThrowsError(try ONNXImport.inputShapes(side, batch: nil, examples: [:])) {
            XCTAssertTrue("\($0)".contains("input 'x' dimension 2 is dynamic ('N'); give one example's shape with --input x=3xNx8"), "\($0)")
        }
        XCTAssertEqual(try ONNXImport.inputShapes(side, batch: 2, examples: ["x": [3, 16, 16]])["x"], [2, 3, 16, 16])
        XCTAssertThrowsError(try ONNXImport.inputShapes(side, batch: 2, examples: ["x": [16, 16]])) {
            XCTAssertTrue("\($0)".contains("has 2 dimensions; one example of 'x' has 3"), "\($0)")
        }
        let fixed = try ONNXModel.parse(TinyModel.bytes(), path: "t.onnx")
        XCTAssertThrowsError(try ONNXImport.inputShapes(fixed, batch: 4, examples: [:])) {
            XCTAssertTrue("\($0)".contains("fixed batch of 2, not 4"), "\($0)")
        }
        XCTAssertThrowsError(try ONNXImport.inputShapes(fixed, batch: nil, examples: ["image": [3, 8, 8]])) {
            XCTAssertTrue("\($0)".contains("'image', which is not an input of the graph (inputs: x)"), "\($0)")
        }
        // the shape an override gives is checked on the network (a reshape baked for batch 2)
        let shapes = try ONNXImport.inputShapes(fixed, batch: nil, examples: ["x": [3, 16, 16]])
        XCTAssertNoThrow(try ONNXNetwork(fixed, inputShapes: shapes))
        XCTAssertThrowsError(try ONNXNetwork(fixed, inputShapes: ["x": [2, 4, 8, 8]])) {
            XCTAssertTrue("\($0)".contains("input [2, 4, 8, 8] has 4 channels; weight [4, 3, 3, 3] with group 1 needs 3"), "\($0)")
        }
    }

    /// One change a writer could get wrong, at the protobuf level: an op type, an attribute's value, an
    /// initializer's dimensions, a node's input, a node removed or repeated, an input's shape, the opset.
    static func mutate(_ m: inout Onnx_ModelProto, _ rng: inout RandomSource) {
        func pick(_ n: Int) -> Int { n > 0 ? Int(rng.next() % UInt64(n)) : 0 }
        func small() -> Int64 { Int64(pick(14)) - 3 }
        let ops = ["Conv", "Relu", "Gemm", "MatMul", "Reshape", "Transpose", "Concat", "Gather", "Softmax", "Add", "Mul",
                   "BatchNormalization", "MaxPool", "AveragePool", "Flatten", "Split", "Slice", "Unsqueeze", "Squeeze", "Clip",
                   "LayerNormalization", "ReduceMean", "Pow", "Expand", "Where", "Cast", "Range", "ConstantOfShape", "Erf", "Gelu"]
        let nodes = m.graph.node.count
        switch pick(9) {
        case 0: if nodes > 0 { m.graph.node[pick(nodes)].opType = ops[pick(ops.count)] }
        case 1:
            if nodes > 0 {
                let k = pick(nodes)
                if m.graph.node[k].attribute.isEmpty {
                    m.graph.node[k].attribute.append(TinyModel.attr(["axis", "perm", "pads", "strides", "group", "transB", "kernel_shape"][pick(7)], ints: [Int(small())]))
                } else {
                    let a = pick(m.graph.node[k].attribute.count)
                    m.graph.node[k].attribute[a].i = small()
                    m.graph.node[k].attribute[a].ints = (0..<pick(5)).map { _ in small() }
                    m.graph.node[k].attribute[a].f = Float(small()) / 2
                }
            }
        case 2:
            if !m.graph.initializer.isEmpty {
                let k = pick(m.graph.initializer.count)
                m.graph.initializer[k].dims = (0..<pick(5)).map { _ in Int64(pick(8)) }
            }
        case 3:
            if nodes > 0 {
                let k = pick(nodes)
                let names = m.graph.initializer.map(\.name) + m.graph.node.flatMap(\.output) + ["", "nowhere"]
                if !m.graph.node[k].input.isEmpty { m.graph.node[k].input[pick(m.graph.node[k].input.count)] = names[pick(names.count)] }
                else { m.graph.node[k].input.append(names[pick(names.count)]) }
            }
        case 4: if nodes > 0 { m.graph.node.remove(at: pick(nodes)) }
        case 5: if nodes > 0 { m.graph.node.insert(m.graph.node[pick(nodes)], at: pick(nodes)) }
        case 6:
            if !m.graph.input.isEmpty, !m.graph.input[0].type.tensorType.shape.dim.isEmpty {
                let d = pick(m.graph.input[0].type.tensorType.shape.dim.count)
                m.graph.input[0].type.tensorType.shape.dim[d].dimValue = Int64(pick(40))
            }
        case 7: if !m.opsetImport.isEmpty { m.opsetImport[0].version = Int64(10 + pick(14)) }
        default:
            if !m.graph.initializer.isEmpty {
                let k = pick(m.graph.initializer.count)
                m.graph.initializer[k].dataType = Int32(pick(17))
            }
        }
    }

    /// Seeded mutations of the tiny model and of the exported fixtures: protobuf-level changes (`mutate`) and bytes
    /// flipped, inserted, deleted, copied from elsewhere in the file, truncated. Every one must import or be an
    /// ONNXError; a crash ends the test run (with FUZZ_SCALE > 1, the case in progress is in
    /// $TMPDIR/dojo-onnx-fuzz-case.onnx). FUZZ_SCALE multiplies the count (make fuzz), FUZZ_SEED changes the cases.
    func testMutatedFilesNeverCrash() throws {
        let scale = Int(ProcessInfo.processInfo.environment["FUZZ_SCALE"] ?? "") ?? 1
        let seed = UInt64(ProcessInfo.processInfo.environment["FUZZ_SEED"] ?? "") ?? 20261204
        var rng = RandomSource(seed: seed)
        var corpus: [(String, Onnx_ModelProto, Int)] = [("tiny", TinyModel.proto(), 100_000 * scale)]
        for name in ["vit_tiny", "gpt_tiny", "unet_tiny"] {
            if let p = try? Fixtures.path(name), let d = FileManager.default.contents(atPath: p) {
                corpus.append((name, try Onnx_ModelProto(serializedBytes: d), 1_000 * scale))
            }
        }
        let casePath = NSTemporaryDirectory() + "/dojo-onnx-fuzz-case.onnx"
        var imported = 0, refused = 0, messages = Set<String>()
        for (_, base, count) in corpus {
            let baseBytes = [UInt8](try base.serializedBytes() as Data)
            for c in 0..<count {
                var d: [UInt8]
                if c % 2 == 0 {
                    var m = base
                    for _ in 0..<(1 + Int(rng.next() % 3)) { Self.mutate(&m, &rng) }
                    d = [UInt8](try m.serializedBytes() as Data)
                } else {
                    d = baseBytes
                    for _ in 0..<(1 + Int(rng.next() % 4)) {
                        let at = Int(rng.next() % UInt64(max(d.count, 1)))
                        switch rng.next() % 6 {
                        case 0: if !d.isEmpty { d[at] ^= UInt8(1 << (rng.next() % 8)) }
                        case 1: if !d.isEmpty { d[at] = UInt8(truncatingIfNeeded: rng.next()) }
                        case 2: d.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                        case 3: if !d.isEmpty { d.removeSubrange(at..<min(d.count, at + 1 + Int(rng.next() % 16))) }
                        case 4: if !d.isEmpty { let from = Int(rng.next() % UInt64(d.count)); d.insert(contentsOf: d[from..<min(d.count, from + 1 + Int(rng.next() % 32))], at: at) }
                        default: d = Array(d.prefix(at))
                        }
                    }
                }
                let data = Data(d)
                if scale > 1 { try? data.write(to: URL(fileURLWithPath: casePath)) }
                do {
                    let net = try load(data)
                    _ = net.outputShape
                    imported += 1
                } catch let e as ONNXError {
                    refused += 1
                    XCTAssertTrue(e.message.hasPrefix("t.onnx"), e.message)
                    messages.insert(String(e.message.prefix(60)))
                }
            }
        }
        print("ONNX fuzz (seed \(seed)): \(imported + refused) mutated files, \(imported) imported, \(refused) refused with "
              + "\(messages.count) distinct message beginnings, 0 crashes")
        XCTAssertGreaterThanOrEqual(imported + refused, 100_000)
        XCTAssertGreaterThan(refused, 0)
        XCTAssertGreaterThan(imported, 0)
    }
}
