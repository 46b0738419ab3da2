import ArgumentParser
import DojoGraph
import DojoNN
import DojoONNX
import Foundation

/// `--input [NAME=]SHAPE` values of an ONNX file: one example's shape per graph input (a bare SHAPE is the first
/// input's).
func parseONNXInputs(_ values: [String], model: ONNXModel) throws -> [String: [Int]] {
    var out: [String: [Int]] = [:]
    for v in values {
        let name: String, shapeText: Substring
        if let eq = v.firstIndex(of: "=") { name = String(v[..<eq]); shapeText = v[v.index(after: eq)...] } else { name = model.inputs[0].name; shapeText = Substring(v) }
        guard let shape = parseShape(String(shapeText)), shape.allSatisfy({ $0 <= 1 << 24 }), shape.reduce(1, { $0 * $1 }) <= 1 << 32 else {
            throw CLIError("--input '\(v)' is not [NAME=]SHAPE with sizes 1…\(1 << 24), e.g. 3x224x224 or ids=1024")
        }
        guard out[name] == nil else { throw CLIError("--input gives '\(name)' twice") }
        out[name] = shape
    }
    return out
}

/// ONNX files read in this process, by path: a command that asks several times (the recipe, the network, the
/// graph) reads and checks a file once.
final class ONNXFiles: @unchecked Sendable {
    static let shared = ONNXFiles()
    private var models: [String: ONNXModel] = [:]
    private let lock = NSLock()
    /// The file at `path`; its problems as one CLI error.
    func model(_ path: String) throws -> ONNXModel {
        lock.lock(); defer { lock.unlock() }
        if let m = models[path] { return m }
        do {
            let m = try ONNXModel.load(path)
            models[path] = m
            return m
        } catch let e as ONNXError { throw CLIError(e.message) }
    }
}

/// An ONNX file read for the prediction commands and `dojo graph`: its Graph IR (one training step, shape-only) at
/// the file's batch (1 when dynamic) or `batch`, and the tokens a sample holds for a language model.
func recordONNXGraph(path: String, inputs: [String], batch: Int? = nil, optimizer: GraphRecorder.OptimizerChoice? = nil) throws -> (Graph, Int?, ONNXModel) {
    let model = try ONNXFiles.shared.model(path)
    do {
        let shapes = try ONNXImport.inputShapes(model, batch: batch, examples: try parseONNXInputs(inputs, model: model))
        let graph = try ONNXImport.recordGraph(model, shapes: shapes, optimizer: optimizer)
        let first = model.inputs[0]
        let tokens = first.isTokenIDs ? shapes[first.name].flatMap { $0.count > 1 ? $0[1] : nil } : nil
        return (graph, tokens, model)
    } catch let e as ONNXError {
        throw CLIError(e.message)
    }
}
