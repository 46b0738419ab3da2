import DojoGraph
import DojoNN
import DojoONNX
import DojoTensor
import Foundation
import SwiftProtobuf
import XCTest

/// The exported fixtures (scripts/onnx-fixtures.py; `make test` writes them to .fixtures/onnx when missing).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var folder: String { ProcessInfo.processInfo.environment["DOJO_ONNX_FIXTURES"] ?? root.appendingPathComponent(".fixtures/onnx").path }

    struct Meta: Decodable {
        var input: [Int]
        var output: [Int]
        var parameters: Int
        var opset: Int
        var input_dtype: String
    }

    static func path(_ name: String) throws -> String {
        let p = "\(folder)/\(name).onnx"
        guard FileManager.default.fileExists(atPath: p) else {
            XCTFail("missing \(p): run scripts/onnx-fixtures.sh (make test does) to export the fixtures with PyTorch")
            throw ONNXError("missing fixture \(p)")
        }
        return p
    }
    static func meta(_ name: String) throws -> Meta {
        try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name).json")))
    }
    /// Little-endian values of NAME.SUFFIX.bin.
    static func floats(_ name: String, _ suffix: String) throws -> [Float] {
        let d = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name).\(suffix).bin"))
        return d.withUnsafeBytes { b in (0..<(d.count / 4)).map { b.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }
    static func int64s(_ name: String, _ suffix: String) throws -> [Float] {
        let d = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name).\(suffix).bin"))
        return d.withUnsafeBytes { b in (0..<(d.count / 8)).map { Float(b.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
    }
}

final class ONNXImportTests: XCTestCase {
    /// Imports a fixture, checks PyTorch's parameter count, and runs PyTorch's input through the engine in
    /// evaluation mode: the output must equal PyTorch's within 1e-4 of its largest magnitude.
    func checkAgainstPyTorch(_ name: String, tolerance: Float = 1e-4, file: StaticString = #filePath, line: UInt = #line) throws -> ONNXNetwork {
        let model = try ONNXModel.load(try Fixtures.path(name))
        let meta = try Fixtures.meta(name)
        XCTAssertEqual(model.opset, meta.opset, file: file, line: line)
        let shapes = try ONNXImport.inputShapes(model, batch: nil, examples: [:])
        XCTAssertEqual(shapes[model.inputs[0].name], meta.input, file: file, line: line)
        let net = try ONNXNetwork(model, inputShapes: shapes)
        XCTAssertEqual(net.parameterCount, meta.parameters, "\(name): parameters", file: file, line: line)
        XCTAssertEqual(net.outputShape, meta.output, file: file, line: line)
        let input = meta.input_dtype == "int64" ? try Fixtures.int64s(name, "input") : try Fixtures.floats(name, "input")
        let expected = try Fixtures.floats(name, "output")
        let y = Module.$context.withValue(ForwardContext(training: false)) { net(Tensor(input, shape: meta.input)) }
        XCTAssertEqual(y.shape, meta.output, file: file, line: line)
        let got = (0..<y.count).map { y.pointer[$0] }
        let scale = expected.map(abs).max() ?? 1
        let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(name): largest difference \(worst) against PyTorch's largest output \(scale)",
                                 file: file, line: line)
        return net
    }

    func testResNet18MatchesPyTorchAndTheZoo() throws {
        let net = try checkAgainstPyTorch("resnet18")
        XCTAssertEqual(net.task, .classification)
        // the same architecture as the zoo's resnet18: the same forward FLOPs and parameters in the Graph IR
        let model = net.model
        let g = try ONNXImport.recordGraph(model, shapes: try ONNXImport.inputShapes(model, batch: nil, examples: [:]))
        let zoo = try GraphRecorder.record(model: "resnet18", batch: 2, optimizer: .sgd)
        XCTAssertEqual(g.summary.parameters, zoo.summary.parameters)
        let matrix = { (g: Graph) in g.ops.filter { $0.phase == .forward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops } }
        XCTAssertEqual(matrix(g), matrix(zoo), accuracy: matrix(zoo) * 1e-9)
        XCTAssertEqual(g.summary.forwardFlops, zoo.summary.forwardFlops, accuracy: zoo.summary.forwardFlops * 0.005)
        XCTAssertEqual(g.summary.backwardFlops, zoo.summary.backwardFlops, accuracy: zoo.summary.backwardFlops * 0.01)
        XCTAssertEqual(g.batch, 2)
    }

    /// torchvision's ResNet-50 (bottleneck blocks, stride on the 3×3 as torchvision puts it) against the zoo's
    /// resnet50: the same parameters (PyTorch's count) and the same FLOPs, forward and backward.
    func testResNet50MatchesTheZoo() throws {
        let model = try ONNXModel.load(try Fixtures.path("resnet50"))
        let g = try ONNXImport.recordGraph(model, shapes: try ONNXImport.inputShapes(model, batch: nil, examples: [:]))
        let zoo = try GraphRecorder.record(model: "resnet50", batch: 1, optimizer: .sgd)
        XCTAssertEqual(g.summary.parameters, try Fixtures.meta("resnet50").parameters)
        XCTAssertEqual(g.summary.parameters, zoo.summary.parameters)
        let matrix = { (g: Graph) in g.ops.filter { $0.phase == .forward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops } }
        XCTAssertEqual(matrix(g), matrix(zoo), accuracy: matrix(zoo) * 1e-9)
        XCTAssertEqual(g.summary.forwardFlops, zoo.summary.forwardFlops, accuracy: zoo.summary.forwardFlops * 0.005)
        XCTAssertEqual(g.summary.backwardFlops, zoo.summary.backwardFlops, accuracy: zoo.summary.backwardFlops * 0.01)
    }

    func testMobileNetV2MatchesPyTorch() throws {
        _ = try checkAgainstPyTorch("mobilenet_v2")
    }

    func testViTMatchesPyTorchInBothOpsets() throws {
        let a = try checkAgainstPyTorch("vit_tiny")
        let b = try checkAgainstPyTorch("vit_tiny_opset13")
        // opset 13's decomposed layer norm and erf GELU are read as the same ops as opset 17's
        let shapes = { (m: ONNXModel) in try ONNXImport.inputShapes(m, batch: nil, examples: [:]) }
        let ga = try ONNXImport.recordGraph(a.model, shapes: try shapes(a.model)), gb = try ONNXImport.recordGraph(b.model, shapes: try shapes(b.model))
        let kinds = { (g: Graph) in Dictionary(g.ops.filter { $0.phase == .forward }.map { ($0.kind, 1) }, uniquingKeysWith: +) }
        XCTAssertEqual(kinds(ga)[.layerNorm], 5)
        XCTAssertEqual(kinds(gb)[.layerNorm], 5)
        XCTAssertEqual(kinds(ga)[.gelu], 2)
        XCTAssertEqual(kinds(gb)[.gelu], 2)
        XCTAssertEqual(ga.summary.forwardFlops, gb.summary.forwardFlops, accuracy: ga.summary.forwardFlops * 0.02)
        // the zoo's ViT of the same sizes: the same parameters and FLOPs (torchvision's vit_b_16 against the zoo's
        // vit-b16 matches too: 86,567,656 parameters, 35.3 GFLOP a sample)
        let zoo = try GraphRecorder.record(model: "vit:layers=2,hidden=32,heads=2,patch=8,image=32,ffn=64", batch: 2, optimizer: .adamw,
                                           inputShape: [3, 32, 32], classes: 10)
        XCTAssertEqual(ga.summary.parameters, zoo.summary.parameters)
        let matrix = { (g: Graph) in g.ops.filter { $0.phase == .forward && $0.kind.isMatrixOp }.reduce(0) { $0 + $1.flops } }
        XCTAssertEqual(matrix(ga), matrix(zoo), accuracy: matrix(zoo) * 1e-9)
        XCTAssertEqual(ga.summary.forwardFlops, zoo.summary.forwardFlops, accuracy: zoo.summary.forwardFlops * 0.005)
        XCTAssertEqual(ga.summary.backwardFlops, zoo.summary.backwardFlops, accuracy: zoo.summary.backwardFlops * 0.01)
    }

    /// PyTorch's own encoder layers (nn.TransformerEncoderLayer with nn.MultiheadAttention), BERT-style.
    func testBERTStyleEncoderMatchesPyTorch() throws {
        let net = try checkAgainstPyTorch("bert_tiny")
        XCTAssertEqual(net.task, .languageModeling)
    }

    func testGPTMatchesPyTorchWithACausalSoftmax() throws {
        let net = try checkAgainstPyTorch("gpt_tiny")
        XCTAssertEqual(net.task, .languageModeling)
        // the mask buffer is a constant (PyTorch does not count it), read as a causal softmax
        XCTAssertFalse(net.parameters.contains { $0.0.hasSuffix(".mask") })
        XCTAssertEqual(net.constantInitializerNames.count, 2)
    }

    /// Pad (asymmetric, not a convolution's padding) and Resize (nearest ×2 as a repeat, bilinear with and without
    /// align_corners, nearest to a size that is not a whole multiple): outputs equal PyTorch's; every parameter gets
    /// a gradient through them and a few steps lower the per-pixel loss.
    func testPadAndResizeMatchPyTorchAndTrain() throws {
        let net = try checkAgainstPyTorch("unet_tiny")
        XCTAssertEqual(net.task, .occupancy)
        let x = Tensor(try Fixtures.floats("unet_tiny", "input"), shape: [2, 3, 16, 16])
        let tape = Tape()
        let loss = tape.record {
            Module.$context.withValue(ForwardContext(training: true)) {
                net(x).binaryCrossEntropyWithLogits(targets: Tensor(zeros: [2, 1, 13, 11]), positiveWeight: 1)
            }
        }
        let grads = tape.backward(from: loss)
        for (name, p) in net.parameters {
            let g = try XCTUnwrap(grads[p], "no gradient for \(name)")
            XCTAssertTrue((0..<g.count).contains { g.pointer[$0] != 0 }, "\(name): gradient all zero")
        }
        let opt = SGD(momentum: 0.9)
        var losses: [Float] = []
        for _ in 0..<6 {
            let (_, l) = TrainingStep.run(net, task: .occupancy, input: x, classes: 1, optimizer: opt, learningRate: 0.05)
            losses.append(l.pointer[0])
        }
        XCTAssertLessThan(losses.last!, losses.first!, "losses \(losses)")
        // Resize: the nearest ×2 is a broadcast (an add), the other three are products with interpolation matrices
        let model = try ONNXModel.load(try Fixtures.path("unet_tiny"))
        let g = try ONNXImport.recordGraph(model, shapes: try ONNXImport.inputShapes(model, batch: nil, examples: [:]))
        XCTAssertEqual(g.ops.filter { $0.phase == .forward && $0.kind == .matmul }.count, 6)
    }

    /// A training step of the imported network: gradients for every parameter, and a finite loss that falls.
    func testImportedNetworkTrains() throws {
        let model = try ONNXModel.load(try Fixtures.path("vit_tiny"))
        let net = try ONNXNetwork(model, inputShapes: try ONNXImport.inputShapes(model, batch: nil, examples: [:]))
        let x = Tensor(try Fixtures.floats("vit_tiny", "input"), shape: [2, 3, 32, 32])
        let opt = AdamW()
        var losses: [Float] = []
        for _ in 0..<8 {
            let (_, loss) = TrainingStep.run(net, task: .classification, input: x, labels: [3, 7], classes: 10, optimizer: opt, learningRate: 1e-2)
            losses.append(loss.pointer[0])
        }
        XCTAssertTrue(losses.allSatisfy { $0.isFinite })
        XCTAssertLessThan(losses.last!, losses.first! * 0.5, "losses \(losses)")
    }
}

final class ONNXExportTests: XCTestCase {
    /// Trains the imported Fashion-MNIST CNN a few steps (batch norm statistics and weights move), writes it back,
    /// and runs it in onnxruntime (PyPI, installed by scripts/onnx-fixtures.sh): its outputs equal the engine's in
    /// evaluation mode within 1e-4; the file also imports again with the same weights.
    func testTrainedNetworkRunsInOnnxruntimeAsInTheEngine() throws {
        let model = try ONNXModel.load(try Fixtures.path("cnn_fmnist"))
        XCTAssertEqual(model.inputs[0].dimensions.first, .named("batch"))
        let net = try ONNXNetwork(model, inputShapes: try ONNXImport.inputShapes(model, batch: 16, examples: [:]))
        var rng = RandomSource(seed: 7)
        let x = Tensor.randomNormal([16, 1, 28, 28], generator: &rng)
        let opt = SGD(momentum: 0.9)
        for _ in 0..<5 {
            _ = TrainingStep.run(net, task: .classification, input: x, labels: (0..<16).map { Int32($0 % 10) }, classes: 10,
                                 optimizer: opt, learningRate: 0.05)
        }
        let probe = Tensor.randomNormal([3, 1, 28, 28], generator: &rng)
        try net.check(inputShape: [3, 1, 28, 28])
        let y = Module.$context.withValue(ForwardContext(training: false)) { net(probe) }
        let dir = NSTemporaryDirectory() + "dojo-onnx-export-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try net.exportedFile().write(to: URL(fileURLWithPath: dir + "/trained.onnx"))
        try Data(bytes: probe.pointer, count: probe.count * 4).write(to: URL(fileURLWithPath: dir + "/probe.bin"))

        let script = """
        import numpy as np, onnxruntime as ort
        s = ort.InferenceSession('\(dir)/trained.onnx')
        x = np.fromfile('\(dir)/probe.bin', dtype='<f4').reshape(3, 1, 28, 28)
        s.run(None, {'input': x})[0].astype('<f4').tofile('\(dir)/ort.bin')
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script]
        p.environment = ["PYTHONPATH": Fixtures.folder + "/python", "ORT_LOGGING_LEVEL": "3", "PATH": "/usr/bin:/bin"]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "onnxruntime failed on the exported file")
        let ort = try Data(contentsOf: URL(fileURLWithPath: dir + "/ort.bin"))
        let got = ort.withUnsafeBytes { b in (0..<(ort.count / 4)).map { b.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        XCTAssertEqual(got.count, y.count)
        let scale = (0..<y.count).map { abs(y.pointer[$0]) }.max()!
        let worst = (0..<y.count).map { abs(y.pointer[$0] - got[$0]) }.max()!
        XCTAssertLessThanOrEqual(worst / scale, 1e-4, "onnxruntime \(got.prefix(5)) vs engine \((0..<5).map { y.pointer[$0] })")

        // imported again: the trained weights and statistics, and the engine's outputs
        let again = try ONNXModel.load(dir + "/trained.onnx")
        let net2 = try ONNXNetwork(again, inputShapes: try ONNXImport.inputShapes(again, batch: 3, examples: [:]))
        XCTAssertEqual(net2.parameterCount, net.parameterCount)
        let y2 = Module.$context.withValue(ForwardContext(training: false)) { net2(probe) }
        for i in 0..<y.count { XCTAssertEqual(y2.pointer[i], y.pointer[i], accuracy: 1e-5 * scale) }
    }
}
