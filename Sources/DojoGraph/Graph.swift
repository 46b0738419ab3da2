import Foundation

/// A tensor of the graph: its shape, element type and role.
public struct TensorInfo: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable { case input, parameter, activation, gradient, state }
    public var id: Int
    public var name: String?
    public var shape: [Int]
    public var dtype: DType
    public var role: Role
    public var bytes: Int { elementCount(shape) * dtype.byteSize }

    public init(id: Int, name: String? = nil, shape: [Int], dtype: DType = .fp32, role: Role) {
        self.id = id; self.name = name; self.shape = shape; self.dtype = dtype; self.role = role
    }
}

/// One op of a training step, with the counts the compiler and simulator price it by.
public struct Op: Codable, Sendable, Equatable {
    public var id: Int
    public var kind: OpKind
    public var phase: Phase
    /// The layer that issued it (e.g. `layer1.0.conv1`), when known.
    public var scope: String?
    public var inputs: [Int]
    public var outputs: [Int]
    public var attributes: OpAttributes
    public var flops: Double
    public var bytesRead: Int
    public var bytesWritten: Int
    /// For a backward op: the id of the forward op whose gradient it computes (added in version 1; optional).
    public var forward: Int?

    public init(id: Int, kind: OpKind, phase: Phase, scope: String?, inputs: [Int], outputs: [Int],
                attributes: OpAttributes, flops: Double, bytesRead: Int, bytesWritten: Int, forward: Int? = nil) {
        self.id = id; self.kind = kind; self.phase = phase; self.scope = scope; self.inputs = inputs
        self.outputs = outputs; self.attributes = attributes; self.flops = flops
        self.bytesRead = bytesRead; self.bytesWritten = bytesWritten; self.forward = forward
    }
}

/// The Graph IR: the contract between the engine (which records it while a model runs), the compiler and the
/// simulator (which read it). Its JSON form (`format` "opendojo-graph", `version` 1) is stable: new fields are
/// added as optional, never renamed.
public struct Graph: Codable, Sendable, Equatable {
    public static let formatName = "opendojo-graph"
    public static let currentVersion = 1

    public var format: String = Graph.formatName
    public var version: Int = Graph.currentVersion
    public var model: String
    public var batch: Int
    public var tensors: [TensorInfo]
    public var ops: [Op]

    public init(model: String, batch: Int, tensors: [TensorInfo] = [], ops: [Op] = []) {
        self.model = model; self.batch = batch; self.tensors = tensors; self.ops = ops
    }

    /// The tensor with id `id`. Recorded graphs number tensors by position, so this is O(1) for them; other
    /// numberings fall back to a search.
    public func tensor(_ id: Int) -> TensorInfo? {
        if tensors.indices.contains(id), tensors[id].id == id { return tensors[id] }
        return tensors.first { $0.id == id }
    }
    private var tensorIndex: [Int: TensorInfo] { Dictionary(uniqueKeysWithValues: tensors.map { ($0.id, $0) }) }

    /// Totals a user asks for first.
    public struct Summary: Codable, Sendable, Equatable {
        public var parameters: Int
        public var parameterBytes: Int
        public var forwardFlops: Double
        public var backwardFlops: Double
        public var optimizerFlops: Double
        public var forwardFlopsPerSample: Double
        /// Bytes of every forward output: what a training step keeps for its backward pass (an upper bound).
        public var activationBytes: Int
        public var opCount: Int
    }

    public var summary: Summary {
        let params = tensors.filter { $0.role == .parameter }
        func flops(_ p: Phase) -> Double { ops.filter { $0.phase == p }.reduce(0) { $0 + $1.flops } }
        let index = tensorIndex
        var activationIDs = Set<Int>()
        for op in ops where op.phase == .forward && op.kind != .reshape { activationIDs.formUnion(op.outputs) }
        let activationBytes = activationIDs.reduce(0) { $0 + (index[$1]?.bytes ?? 0) }
        let fwd = flops(.forward)
        return Summary(parameters: params.reduce(0) { $0 + elementCount($1.shape) },
                       parameterBytes: params.reduce(0) { $0 + $1.bytes },
                       forwardFlops: fwd, backwardFlops: flops(.backward), optimizerFlops: flops(.optimizer),
                       forwardFlopsPerSample: batch > 0 ? fwd / Double(batch) : fwd,
                       activationBytes: activationBytes, opCount: ops.count)
    }

    // MARK: JSON

    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try enc.encode(self)
    }

    /// Reads a graph from its JSON form; rejects other formats and newer versions with a message that says so.
    public static func decode(json data: Data) throws -> Graph {
        let g: Graph
        do { g = try JSONDecoder().decode(Graph.self, from: data) } catch {
            throw GraphError.malformed("\(error)")
        }
        guard g.format == formatName else { throw GraphError.malformed("format is \"\(g.format)\", expected \"\(formatName)\"") }
        guard g.version <= currentVersion else { throw GraphError.malformed("version \(g.version) is newer than this build reads (\(currentVersion))") }
        for op in g.ops {
            for t in op.inputs + op.outputs where g.tensor(t) == nil {
                throw GraphError.malformed("op \(op.id) (\(op.kind.rawValue)) refers to tensor \(t), which the graph does not list")
            }
        }
        return g
    }
}

/// Tensors of a graph by id, O(1): `lookup[id]` (nil for an id the graph does not list).
public struct TensorLookup: Sendable {
    private let tensors: [TensorInfo]
    private let positional: Bool
    private let index: [Int: Int]
    public init(_ g: Graph) {
        tensors = g.tensors
        positional = g.tensors.enumerated().allSatisfy { $0.offset == $0.element.id }
        index = positional ? [:] : Dictionary(g.tensors.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { a, _ in a })
    }
    public subscript(_ id: Int) -> TensorInfo? {
        if positional { return id >= 0 && id < tensors.count ? tensors[id] : nil }
        return index[id].map { tensors[$0] }
    }
}

public enum GraphError: Error, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self { case .malformed(let m): return "not a valid OpenDojo graph: \(m)" }
    }
}
