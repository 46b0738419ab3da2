import DojoReport
import DojoTensor
import Foundation
import SwiftProtobuf

extension ONNXNetwork {
    /// The file this network was read from, with its weights and batch-norm statistics replaced by the network's
    /// current values (a trained network), in evaluation form: batch norm uses its running statistics and dropout
    /// passes its input through (PyTorch's eval-mode export), so onnxruntime gives the outputs the engine gives in
    /// evaluation mode. A parameter the import split off an Identity (`ONNXPlan.parameterCopies`) is written as an
    /// initializer of its own and the Identity removed. Errors name the file.
    public func exportedFile() throws -> Data {
        let original: Data
        do { original = try UserFiles.read(model.path, what: "ONNX file") } catch { throw ONNXError("\(error)") }
        var proto: Onnx_ModelProto
        do { proto = try Onnx_ModelProto(serializedBytes: original) } catch {
            throw ONNXError("\(model.path): changed since it was read (\(ONNXModel.decodingWords(error)))")
        }
        var values: [String: Tensor] = [:]
        for (name, t) in namedTensors { values[name] = t }
        func raw(_ t: Tensor) -> Data {
            precondition(!t.isShapeOnly, "export of a network built without its weights")
            return Data(bytes: t.pointer, count: t.count * 4)
        }
        var written = Set<String>()
        for i in proto.graph.initializer.indices {
            let name = proto.graph.initializer[i].name
            guard let t = values[name] else { continue }
            guard proto.graph.initializer[i].dims.map({ Int($0) }) == t.shape else {
                throw ONNXError("\(model.path): initializer '\(name)' has shape \(proto.graph.initializer[i].dims), the network's \(t.shape): the file changed since it was read")
            }
            proto.graph.initializer[i].dataType = 1
            proto.graph.initializer[i].floatData = []
            proto.graph.initializer[i].doubleData = []
            proto.graph.initializer[i].rawData = raw(t)
            written.insert(name)
        }
        // parameters split off an Identity: their own initializers
        let copies = Set(plan.parameterCopies.map(\.0))
        for name in copies {
            guard let t = values[name] else { continue }
            var init_ = Onnx_TensorProto()
            init_.name = name; init_.dims = t.shape.map(Int64.init); init_.dataType = 1; init_.rawData = raw(t)
            proto.graph.initializer.append(init_)
        }
        proto.graph.node.removeAll { $0.opType == "Identity" && $0.output.count == 1 && copies.contains($0.output[0]) }
        // evaluation form
        for i in proto.graph.node.indices {
            switch proto.graph.node[i].opType {
            case "BatchNormalization":
                proto.graph.node[i].attribute.removeAll { $0.name == "training_mode" }
                proto.graph.node[i].output = Array(proto.graph.node[i].output.prefix(1))
            case "Dropout":
                proto.graph.node[i].input = Array(proto.graph.node[i].input.prefix(1))
                proto.graph.node[i].output = Array(proto.graph.node[i].output.prefix(1))
            default: break
            }
        }
        // Constant nodes nothing reads any more (a Dropout's ratio)
        var read = Set(proto.graph.node.flatMap(\.input) + proto.graph.output.map(\.name))
        proto.graph.node.removeAll { $0.opType == "Constant" && !$0.output.contains(where: { read.contains($0) }) }
        read = []
        let defined = Set(proto.graph.node.flatMap(\.output) + proto.graph.input.map(\.name) + proto.graph.initializer.map(\.name))
        proto.graph.valueInfo.removeAll { !defined.contains($0.name) }
        proto.producerName = "OpenDojo"
        do { return try proto.serializedBytes() } catch { throw ONNXError("\(model.path): cannot write the trained model: \(error)") }
    }
}
