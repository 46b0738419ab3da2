import DojoReport
import Foundation
import SwiftProtobuf

/// An error of an ONNX file: what is wrong, naming the file and, where one is to blame, the node, its op and the opset.
public struct ONNXError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A constant tensor of the file (an initializer, a Constant node's value or a value folded at import): floats or
/// whole numbers (int64/int32/bool data), with its shape.
public struct ONNXConstant: Sendable, Equatable {
    /// floats, whole numbers, or float32 little-endian bytes as the file held them (a weight: decoded only when its
    /// values are needed, so recording a large model's graph copies no weights).
    public enum Values: Sendable, Equatable { case floats([Float]), ints([Int]), raw(Data) }
    public var shape: [Int]
    public var values: Values
    public var count: Int { shape.reduce(1, *) }
    public var ints: [Int]? { if case .ints(let v) = values { return v }; return nil }
    /// Float values (decoded or not).
    public var isFloat: Bool { ints == nil }
    public var floats: [Float] {
        switch values {
        case .floats(let f): return f
        case .ints(let i): return i.map { Float($0) }
        case .raw(let d): return d.withUnsafeBytes { b in (0..<count).map { b.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        }
    }
    public init(shape: [Int], floats: [Float]) { self.shape = shape; values = .floats(floats) }
    /// The values at `positions`, as a constant of `shape` of the same kind (whole numbers stay exact).
    func picking(_ positions: [Int], shape: [Int]) -> ONNXConstant {
        switch values {
        case .ints(let v): return ONNXConstant(shape: shape, ints: positions.map { v[$0] })
        case .floats, .raw:
            let v = floats
            return ONNXConstant(shape: shape, floats: positions.map { v[$0] })
        }
    }
    public init(shape: [Int], ints: [Int]) { self.shape = shape; values = .ints(ints) }
    init(shape: [Int], values: Values) { self.shape = shape; self.values = values }
}

/// One node of the graph, its attributes read into Swift values.
public struct ONNXNode: Sendable {
    public enum Attribute: Sendable {
        case int(Int), float(Float), ints([Int]), floats([Float]), string(String), tensor(ONNXConstant), unsupported(String)
    }
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]
    /// "node 'NAME' (OP)" for messages.
    public var label: String { "node '\(name)' (\(opType))" }
}

/// A graph input that is not an initializer: what the network is fed.
public struct ONNXInput: Sendable, Equatable {
    public enum Dimension: Sendable, Equatable { case fixed(Int), named(String) }
    public var name: String
    /// "float32", "int64", …
    public var elementType: String
    public var dimensions: [Dimension]
    public var isTokenIDs: Bool { elementType == "int64" || elementType == "int32" }
}

/// An `.onnx` file read and checked: every node's inputs are defined before it (the nodes are put in a dependency
/// order; a cycle or a name nothing defines is an error), the default domain's opset is one this import reads,
/// initializers are decoded. What a node computes is checked when the network is built (`ONNXNetwork`).
public struct ONNXModel: Sendable {
    /// The file's path, for messages.
    public var path: String
    public var irVersion: Int
    /// The opset of the default domain (ai.onnx).
    public var opset: Int
    public var producer: String
    public var inputs: [ONNXInput]
    public var outputs: [String]
    /// Initializers in file order.
    public var initializers: [(name: String, value: ONNXConstant)]
    /// Nodes in an order where every node comes after the nodes it reads.
    public var nodes: [ONNXNode]
    /// The bytes of the file.
    public var fileBytes: Int

    /// The opsets this import reads (what `torch.onnx.export` writes at opset_version 13–17, and later ones whose
    /// ops it reads have not changed meaning).
    public static let opsets = 13...21
    /// The most values one initializer may hold (2^34: 64 GiB of floats).
    static let maxValues = 1 << 34

    /// Reads `path`; every problem is an `ONNXError` naming the file.
    public static func load(_ path: String) throws -> ONNXModel {
        // checked as every user file is (a folder, a pipe or a device is refused), then mapped rather than copied:
        // the decoder copies what it keeps, so a large model is in memory once, not twice
        do { try UserFiles.checkReadable(path, what: "ONNX file") } catch { throw ONNXError("\(error)") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            do { data = try UserFiles.read(path, what: "ONNX file") } catch { throw ONNXError("\(error)") }
        }
        return try parse(data, path: path)
    }

    /// Reads a model from its bytes; `path` names it in messages.
    public static func parse(_ data: Data, path: String) throws -> ONNXModel {
        let file = "\(path)"
        guard !data.isEmpty else { throw ONNXError("\(file): empty file, not an ONNX model") }
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 64
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(serializedBytes: data, extensions: nil, partial: true, options: options)
        } catch {
            throw ONNXError("\(file): not an ONNX model (its bytes are not a protobuf ModelProto: \(decodingWords(error)))")
        }
        guard proto.hasGraph, proto.irVersion > 0 else {
            throw ONNXError("\(file): not an ONNX model (no \(proto.irVersion > 0 ? "graph" : "IR version"); is it an ONNX file?)")
        }
        let defaultOpsets = proto.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        guard let opset = defaultOpsets.map({ Int($0.version) }).max() else {
            throw ONNXError("\(file): the model imports no opset of the default domain (ai.onnx)")
        }
        guard opsets.contains(opset) else {
            throw ONNXError("\(file): opset \(opset); this import reads opsets \(opsets.lowerBound)–\(opsets.upperBound) "
                            + "(re-export with torch.onnx.export(..., opset_version=\(opsets.lowerBound)) or later)")
        }
        let g = proto.graph
        var initializers: [(String, ONNXConstant)] = []
        var defined = Set<String>()
        for t in g.initializer {
            guard !t.name.isEmpty else { throw ONNXError("\(file): an initializer has no name") }
            guard defined.insert(t.name).inserted else { throw ONNXError("\(file): two initializers are named '\(t.name)'") }
            initializers.append((t.name, try constant(t, what: "initializer '\(t.name)'", file: file)))
        }
        var inputs: [ONNXInput] = []
        for i in g.input where !defined.contains(i.name) {
            guard !i.name.isEmpty else { throw ONNXError("\(file): a graph input has no name") }
            guard case .tensorType? = i.type.value else {
                throw ONNXError("\(file): graph input '\(i.name)' is not a tensor")
            }
            let type = elementTypeName(i.type.tensorType.elemType)
            guard type == "float32" || type == "int64" || type == "int32" else {
                throw ONNXError("\(file): graph input '\(i.name)' holds \(type); this import feeds float32 images or int64/int32 token ids")
            }
            var dims: [ONNXInput.Dimension] = []
            for (k, d) in i.type.tensorType.shape.dim.enumerated() {
                switch d.value {
                case .dimValue(let v)?:
                    guard v > 0 else { throw ONNXError("\(file): graph input '\(i.name)' dimension \(k) is \(v); sizes are at least 1") }
                    dims.append(.fixed(Int(clamping: v)))
                case .dimParam(let p)? where !p.isEmpty: dims.append(.named(p))
                default: dims.append(.named("?"))
                }
            }
            guard defined.insert(i.name).inserted else { throw ONNXError("\(file): two graph inputs are named '\(i.name)'") }
            inputs.append(ONNXInput(name: i.name, elementType: type, dimensions: dims))
        }
        guard !inputs.isEmpty else { throw ONNXError("\(file): the graph has no input to feed (every input is an initializer)") }
        guard !g.output.isEmpty else { throw ONNXError("\(file): the graph has no output") }
        guard g.output.count == 1 else {
            throw ONNXError("\(file): the graph has \(g.output.count) outputs (\(g.output.map(\.name).joined(separator: ", "))); this import trains and prices a network with one (export the one the loss reads)")
        }

        // Nodes, then a dependency order (Kahn's algorithm): ONNX requires files sorted, but a wrong order or a cycle
        // must be an error, not a crash or a hang.
        var nodes: [ONNXNode] = []
        var producer: [String: Int] = [:]
        for (k, n) in g.node.enumerated() {
            let name = n.name.isEmpty ? "#\(k)" : n.name
            var attrs: [String: ONNXNode.Attribute] = [:]
            for a in n.attribute { attrs[a.name] = try attribute(a, node: "node '\(name)' (\(n.opType))", file: file) }
            let node = ONNXNode(name: name, opType: n.opType, domain: n.domain, inputs: n.input, outputs: n.output, attributes: attrs)
            for o in n.output where !o.isEmpty {
                guard !defined.contains(o), producer[o] == nil else {
                    throw ONNXError("\(file): \(node.label) writes '\(o)', which another node, input or initializer also defines")
                }
                producer[o] = k
            }
            nodes.append(node)
        }
        var waiting = [Int](repeating: 0, count: nodes.count)
        var readers: [Int: [Int]] = [:]
        for (k, n) in nodes.enumerated() {
            for i in Set(n.inputs) where !i.isEmpty && !defined.contains(i) {
                guard let p = producer[i] else {
                    throw ONNXError("\(file): \(n.label) reads '\(i)', which no node, graph input or initializer defines (a missing initializer?)")
                }
                waiting[k] += 1
                readers[p, default: []].append(k)
            }
        }
        var ready = (0..<nodes.count).filter { waiting[$0] == 0 }
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        var head = 0
        while head < ready.count {
            let k = ready[head]; head += 1
            order.append(k)
            for r in readers[k] ?? [] { waiting[r] -= 1; if waiting[r] == 0 { ready.append(r) } }
        }
        if order.count < nodes.count {
            let stuck = (0..<nodes.count).filter { waiting[$0] > 0 }.prefix(4).map { nodes[$0].label }
            throw ONNXError("\(file): the graph has a cycle: \(stuck.joined(separator: ", "))\(order.count + 4 < nodes.count ? ", …" : "") depend on each other")
        }
        let sorted = order.sorted()   // keep the file's order where it is already valid
        let valid = sorted == order || isDependencyOrder(order.sorted(), nodes: nodes, producer: producer)
        let ordered = (valid ? sorted : order).map { nodes[$0] }
        for o in g.output where !defined.contains(o.name) && producer[o.name] == nil {
            throw ONNXError("\(file): graph output '\(o.name)' is computed by no node")
        }
        return ONNXModel(path: path, irVersion: Int(proto.irVersion), opset: opset,
                         producer: [proto.producerName, proto.producerVersion].filter { !$0.isEmpty }.joined(separator: " "),
                         inputs: inputs, outputs: g.output.map(\.name), initializers: initializers, nodes: ordered,
                         fileBytes: data.count)
    }

    private static func isDependencyOrder(_ order: [Int], nodes: [ONNXNode], producer: [String: Int]) -> Bool {
        var position = [Int: Int]()
        for (p, k) in order.enumerated() { position[k] = p }
        for (p, k) in order.enumerated() {
            for i in nodes[k].inputs { if let q = producer[i], let pq = position[q], pq >= p { return false } }
        }
        return true
    }

    static func decodingWords(_ error: Error) -> String {
        if let e = error as? BinaryDecodingError {
            switch e {
            case .truncated: return "truncated"
            case .malformedProtobuf: return "malformed"
            case .invalidUTF8: return "a string is not UTF-8"
            case .messageDepthLimit: return "nested too deeply"
            default: return "\(e)"
            }
        }
        return "\(error)"
    }

    static func elementTypeName(_ t: Int32) -> String {
        switch t {
        case 1: return "float32"; case 2: return "uint8"; case 3: return "int8"; case 4: return "uint16"; case 5: return "int16"
        case 6: return "int32"; case 7: return "int64"; case 8: return "string"; case 9: return "bool"; case 10: return "float16"
        case 11: return "float64"; case 12: return "uint32"; case 13: return "uint64"; case 16: return "bfloat16"
        case 0: return "no element type"
        default: return "element type \(t)"
        }
    }

    /// Decodes a TensorProto: float32/float64 to floats, int64/int32/bool/uint8/int8 to whole numbers.
    static func constant(_ t: Onnx_TensorProto, what: String, file: String) throws -> ONNXConstant {
        guard t.dataLocation != .external else {
            throw ONNXError("\(file): \(what) keeps its data in an external file; this import reads self-contained files "
                            + "(save with onnx.save_model(m, path, save_as_external_data=False))")
        }
        var shape: [Int] = []
        var count = 1
        for d in t.dims {
            guard d >= 0, d <= Int64(maxValues) else { throw ONNXError("\(file): \(what) has dimension \(d)") }
            shape.append(Int(d))
            count = count.multipliedReportingOverflow(by: Int(d)).overflow ? Int.max : count * Int(d)
        }
        guard count <= maxValues else { throw ONNXError("\(file): \(what) has \(shape) = more than \(maxValues) values") }
        let raw = t.rawData
        func check(_ n: Int, _ source: String) throws {
            guard n == count else {
                throw ONNXError("\(file): \(what) holds \(n) values (\(source)) for shape \(shape), which needs \(count)")
            }
        }
        func fromRaw<T>(_ type: T.Type) throws -> [T] {
            let size = MemoryLayout<T>.size
            guard raw.count % size == 0 else { throw ONNXError("\(file): \(what) has \(raw.count) bytes of data, not a whole number of \(size)-byte values") }
            try check(raw.count / size, "raw data")
            // little-endian on every platform this builds for: one copy
            return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                raw.withUnsafeBytes { b in
                    if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: b.baseAddress!, byteCount: count * size) }
                }
                initialized = count
            }
        }
        switch t.dataType {
        case 1:   // FLOAT
            if !raw.isEmpty {
                try check(raw.count / 4, "raw data")
                guard raw.count % 4 == 0 else { throw ONNXError("\(file): \(what) has \(raw.count) bytes of data, not a whole number of 4-byte values") }
                return ONNXConstant(shape: shape, values: .raw(raw))
            }
            try check(t.floatData.count, "float_data")
            return ONNXConstant(shape: shape, floats: t.floatData)
        case 11:  // DOUBLE
            if !raw.isEmpty { return ONNXConstant(shape: shape, floats: try fromRaw(Double.self).map { Float($0) }) }
            try check(t.doubleData.count, "double_data")
            return ONNXConstant(shape: shape, floats: t.doubleData.map { Float($0) })
        case 7:   // INT64
            if !raw.isEmpty { return ONNXConstant(shape: shape, ints: try fromRaw(Int64.self).map { Int($0) }) }
            try check(t.int64Data.count, "int64_data")
            return ONNXConstant(shape: shape, ints: t.int64Data.map { Int($0) })
        case 6, 2, 3, 9, 4, 5:   // INT32, UINT8, INT8, BOOL, UINT16, INT16: int32_data, or raw bytes of their width
            if !raw.isEmpty {
                switch t.dataType {
                case 6: return ONNXConstant(shape: shape, ints: try fromRaw(Int32.self).map { Int($0) })
                case 3: return ONNXConstant(shape: shape, ints: try fromRaw(Int8.self).map { Int($0) })
                case 4: return ONNXConstant(shape: shape, ints: try fromRaw(UInt16.self).map { Int($0) })
                case 5: return ONNXConstant(shape: shape, ints: try fromRaw(Int16.self).map { Int($0) })
                default: return ONNXConstant(shape: shape, ints: try fromRaw(UInt8.self).map { Int($0) })
                }
            }
            try check(t.int32Data.count, "int32_data")
            return ONNXConstant(shape: shape, ints: t.int32Data.map { Int($0) })
        default:
            throw ONNXError("\(file): \(what) holds \(elementTypeName(t.dataType)); this import reads float32, float64 and integer tensors")
        }
    }

    static func attribute(_ a: Onnx_AttributeProto, node: String, file: String) throws -> ONNXNode.Attribute {
        switch a.type {
        case .int: return .int(Int(clamping: a.i))
        case .float: return .float(a.f)
        case .ints: return .ints(a.ints.map { Int(clamping: $0) })
        case .floats: return .floats(a.floats)
        case .string: return .string(String(decoding: a.s, as: UTF8.self))
        case .tensor: return .tensor(try constant(a.t, what: "\(node) attribute '\(a.name)'", file: file))
        case .undefined:
            // files from old writers leave the type out: infer it from the field that is set
            if a.hasT { return .tensor(try constant(a.t, what: "\(node) attribute '\(a.name)'", file: file)) }
            if !a.ints.isEmpty { return .ints(a.ints.map { Int(clamping: $0) }) }
            if !a.floats.isEmpty { return .floats(a.floats) }
            if a.hasS { return .string(String(decoding: a.s, as: UTF8.self)) }
            if a.hasF { return .float(a.f) }
            return .int(Int(clamping: a.i))
        default: return .unsupported("\(a.type)")
        }
    }
}
