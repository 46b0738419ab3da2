import Foundation

/// What the network executes: the graph's nodes in order, with the exporters' multi-node spellings of one op read
/// as that op. A pattern is taken only when its intermediate values have no other reader.
struct ONNXPlan: Sendable {
    enum Kind: Sendable {
        /// One ONNX node, run by `ONNXExecution`.
        case node(ONNXNode)
        /// x·½·(1 + erf(x/√2)) → the engine's exact GELU.
        case gelu(input: String)
        /// (x − mean)/√(var + ε)·γ + β over the last axis → the engine's layer norm (γ, β absent: 1 and 0).
        case layerNorm(input: String, gamma: String?, beta: String?, epsilon: Float)
        /// softmax(scores + causal mask) over the last axis → the engine's causal softmax.
        case causalSoftmax(scores: String)
        /// Skip: a Transpose of a 2-D weight that only feeds MatMuls (they read the weight transposed).
        case absorbed
    }
    struct Step: Sendable {
        var kind: Kind
        /// The node that starts the step (names it in messages and scopes).
        var head: ONNXNode
        var outputs: [String]
        /// Tape scope: the node's name without its leading slash.
        var scope: String
    }

    var steps: [Step] = []
    /// MatMul inputs that are a 2-D weight transposed: input name → weight name.
    var transposedWeights: [String: String] = [:]
    /// Float initializers read as constants by a pattern (a causal mask).
    var constantInitializers: Set<String> = []
    /// Batch norm's running statistics.
    var buffers: Set<String> = []
    /// Identity of a parameter at the top of the graph: output name → the initializer it copies.
    var parameterCopies: [(String, String)] = []
    /// Float initializers read where a layer reads its weights (a convolution's or Gemm's weight and bias, a norm's
    /// scale and bias, a MatMul's right operand, an embedding table): parameters whatever their size (a one-unit
    /// head's bias has one value).
    var weightInitializers: Set<String> = []

    /// Every op type the import reads (a node of another type is an error naming it, the node and the opset).
    static let supported: Set<String> = [
        "Conv", "BatchNormalization", "Relu", "Sigmoid", "Tanh", "Gelu", "Erf", "Clip", "LeakyRelu", "MaxPool", "AveragePool",
        "GlobalAveragePool", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Softmax",
        "LogSoftmax", "LayerNormalization", "ReduceMean", "ReduceSum", "Reshape", "Transpose", "Flatten", "Concat", "Split",
        "Slice", "Gather", "Unsqueeze", "Squeeze", "Shape", "Constant", "ConstantOfShape", "Identity", "Dropout", "Cast",
        "Equal", "Where", "Expand", "Range", "Pad", "Resize", "ConvTranspose",
    ]

    init(_ model: ONNXModel) throws {
        let file = model.path
        // unsupported ops first, all of them at once
        var unsupported: [String: [String]] = [:]
        for n in model.nodes where !(n.domain.isEmpty || n.domain == "ai.onnx") || !Self.supported.contains(n.opType) {
            let key = n.domain.isEmpty || n.domain == "ai.onnx" ? n.opType : "\(n.domain).\(n.opType)"
            unsupported[key, default: []].append(n.name)
        }
        if !unsupported.isEmpty {
            let list = unsupported.sorted { $0.key < $1.key }.map { op, nodes in
                "\(op) (\(nodes.count == 1 ? "node" : "\(nodes.count) nodes, first") '\(nodes[0])')"
            }
            throw ONNXError("\(file), opset \(model.opset): \(list.count == 1 ? "an op" : "ops") this import does not read: "
                            + list.joined(separator: ", ") + ". Supported: \(Self.supported.sorted().joined(separator: ", "))")
        }

        // what is known before running: initializers and Constant nodes
        var known: [String: ONNXConstant] = [:]
        for (name, c) in model.initializers { known[name] = c }
        for n in model.nodes where n.opType == "Constant" {
            if let c = try? ONNXExecution.constantNode(n, file: file), let o = n.outputs.first { known[o] = c }
        }
        let initializerNames = Set(model.initializers.map(\.name))
        var readers: [String: [Int]] = [:]
        for (k, n) in model.nodes.enumerated() { for i in Set(n.inputs) where !i.isEmpty { readers[i, default: []].append(k) } }
        let graphOutputs = Set(model.outputs)
        let nodes = model.nodes
        /// The one node reading `name` (nil when several do, or it is a graph output).
        func sole(_ name: String) -> Int? {
            guard !graphOutputs.contains(name), let r = readers[name], r.count == 1 else { return nil }
            return r[0]
        }
        func scalar(_ name: String) -> Float? {
            guard let c = known[name], c.count == 1 else { return nil }
            return c.floats[0]
        }
        func other(_ n: ONNXNode, _ name: String) -> String? {
            guard n.inputs.count == 2 else { return nil }
            return n.inputs[0] == name ? n.inputs[1] : n.inputs[1] == name ? n.inputs[0] : nil
        }
        func lastAxis(_ n: ONNXNode) -> Bool {
            if case .ints(let a)? = n.attributes["axes"] { return a == [-1] }
            if n.inputs.count > 1, let a = known[n.inputs[1]]?.ints { return a == [-1] }
            return false
        }
        let weights = weightInitializers
        let isParameter = { (name: String) -> Bool in
            guard let c = known[name], initializerNames.contains(name), c.isFloat else { return false }
            return c.count > 1 || weights.contains(name)
        }

        for n in nodes where n.opType == "BatchNormalization" && n.inputs.count == 5 {
            buffers.insert(n.inputs[3]); buffers.insert(n.inputs[4])
        }
        let weightPositions: [String: [Int]] = ["Conv": [1, 2], "ConvTranspose": [1, 2], "Gemm": [1, 2], "BatchNormalization": [1, 2], "LayerNormalization": [1, 2],
                                                "MatMul": [1], "Gather": [0]]
        for n in nodes {
            for i in weightPositions[n.opType] ?? [] where i < n.inputs.count && initializerNames.contains(n.inputs[i]) && known[n.inputs[i]]?.isFloat == true {
                weightInitializers.insert(n.inputs[i])
            }
        }
        // Float initializers that say how to compute, not what is learned: a Resize's roi, scales and sizes, a Pad's
        // pads and value
        let settingPositions: [String: [Int]] = ["Resize": [1, 2, 3], "Pad": [1, 2, 3]]
        for n in nodes {
            for i in settingPositions[n.opType] ?? [] where i < n.inputs.count && initializerNames.contains(n.inputs[i]) {
                constantInitializers.insert(n.inputs[i])
            }
        }
        var taken = Set<Int>()
        // Pad(x, zeros on H and W alike) read only by a Conv → the convolution's own padding (PyTorch's F.pad and
        // TensorFlow exports write one; zero padding is what a convolution's pads mean)
        var paddedConvs: [Int: (input: String, h: Int, w: Int)] = [:]
        for (k, n) in nodes.enumerated() where n.opType == "Pad" {
            let mode = { () -> String in if case .string(let m)? = n.attributes["mode"] { return m }; return "constant" }()
            let value = n.inputs.count > 2 && !n.inputs[2].isEmpty ? known[n.inputs[2]]?.floats.first : 0
            var pads: [Int]? = nil
            if case .ints(let p)? = n.attributes["pads"] { pads = p } else if n.inputs.count > 1 { pads = known[n.inputs[1]]?.ints }
            guard mode == "constant", value == 0, n.inputs.count <= 3, let p = pads, p.count == 8,
                  p[0] == 0, p[1] == 0, p[4] == 0, p[5] == 0, p[2] == p[6], p[3] == p[7], p[2] >= 0, p[3] >= 0,
                  let c = sole(n.outputs[0]), nodes[c].opType == "Conv", nodes[c].inputs.first == n.outputs[0] else { continue }
            paddedConvs[c] = (n.inputs[0], p[2], p[3])
            taken.insert(k)
        }
        for (k, n) in nodes.enumerated() where !taken.contains(k) {
            let scope = n.name.hasPrefix("/") ? String(n.name.dropFirst()) : n.name
            // GELU, erf form: Div(x, √2) → Erf → Add(·, 1) → Mul(x, ·) → Mul(·, 0.5)
            if n.opType == "Div", n.inputs.count == 2, let c = scalar(n.inputs[1]), abs(c - 1.41421356) < 1e-3,
               let e = sole(n.outputs[0]), nodes[e].opType == "Erf",
               let a = sole(nodes[e].outputs[0]), nodes[a].opType == "Add", let one = other(nodes[a], nodes[e].outputs[0]), scalar(one) == 1,
               let m1 = sole(nodes[a].outputs[0]), nodes[m1].opType == "Mul", other(nodes[m1], nodes[a].outputs[0]) == n.inputs[0],
               let m2 = sole(nodes[m1].outputs[0]), nodes[m2].opType == "Mul", let half = other(nodes[m2], nodes[m1].outputs[0]), scalar(half) == 0.5 {
                taken.formUnion([k, e, a, m1, m2])
                steps.append(Step(kind: .gelu(input: n.inputs[0]), head: n, outputs: nodes[m2].outputs, scope: scope))
                continue
            }
            // layer norm, decomposed: ReduceMean(x) → Sub(x, mean) → Pow(d, 2) → ReduceMean → Add(ε) → Sqrt → Div(d, ·)
            // [→ Mul(γ) → Add(β)]
            if n.opType == "ReduceMean", lastAxis(n), let x = n.inputs.first,
               let s = sole(n.outputs[0]), nodes[s].opType == "Sub", nodes[s].inputs == [x, n.outputs[0]],
               let dReaders = readers[nodes[s].outputs[0]], dReaders.count == 2, !graphOutputs.contains(nodes[s].outputs[0]),
               let p = dReaders.first(where: { nodes[$0].opType == "Pow" }), let dv = dReaders.first(where: { nodes[$0].opType == "Div" }),
               nodes[p].inputs.count == 2, scalar(nodes[p].inputs[1]) == 2,
               let r2 = sole(nodes[p].outputs[0]), nodes[r2].opType == "ReduceMean", lastAxis(nodes[r2]),
               let ad = sole(nodes[r2].outputs[0]), nodes[ad].opType == "Add", let epsName = other(nodes[ad], nodes[r2].outputs[0]),
               let eps = scalar(epsName),
               let sq = sole(nodes[ad].outputs[0]), nodes[sq].opType == "Sqrt",
               nodes[dv].inputs == [nodes[s].outputs[0], nodes[sq].outputs[0]] {
                var chain = [k, s, p, r2, ad, sq, dv]
                var out = nodes[dv].outputs
                var gamma: String? = nil, beta: String? = nil
                if let m = sole(out[0]), nodes[m].opType == "Mul", let g = other(nodes[m], out[0]), isParameter(g), known[g]?.shape.count == 1 {
                    gamma = g; chain.append(m); out = nodes[m].outputs
                    if let b = sole(out[0]), nodes[b].opType == "Add", let bb = other(nodes[b], out[0]), isParameter(bb), known[bb]?.shape.count == 1 {
                        beta = bb; chain.append(b); out = nodes[b].outputs
                    }
                }
                taken.formUnion(chain)
                steps.append(Step(kind: .layerNorm(input: x, gamma: gamma, beta: beta, epsilon: eps), head: n, outputs: out, scope: scope))
                continue
            }
            // causal softmax: Add(scores, M) → Softmax(last axis), M a constant [.., S, S]: 0 on and below the diagonal,
            // −∞ (or ≤ −10⁴) above
            if n.opType == "Add", n.inputs.count == 2, let sm = sole(n.outputs[0]), nodes[sm].opType == "Softmax",
               Self.softmaxOnLastAxis(nodes[sm]),
               let maskName = n.inputs.first(where: { known[$0] != nil }), let mask = known[maskName], Self.isCausalMask(mask),
               let scores = other(n, maskName) {
                taken.formUnion([k, sm])
                if initializerNames.contains(maskName) { constantInitializers.insert(maskName) }
                steps.append(Step(kind: .causalSoftmax(scores: scores), head: n, outputs: nodes[sm].outputs, scope: scope))
                continue
            }
            // a 2-D weight transposed for MatMuls: they read it with transposeB
            if n.opType == "Transpose", let w = n.inputs.first, isParameter(w), known[w]?.shape.count == 2,
               case .ints(let perm)? = n.attributes["perm"], perm == [1, 0], let rs = readers[n.outputs[0]],
               !graphOutputs.contains(n.outputs[0]),
               rs.allSatisfy({ nodes[$0].opType == "MatMul" && nodes[$0].inputs.count == 2 && nodes[$0].inputs[1] == n.outputs[0] && nodes[$0].inputs[0] != n.outputs[0] }) {
                transposedWeights[n.outputs[0]] = w
                steps.append(Step(kind: .absorbed, head: n, outputs: [], scope: scope))
                continue
            }
            // Identity of a parameter: a parameter of its own
            if n.opType == "Identity", let w = n.inputs.first, isParameter(w), !buffers.contains(w), let o = n.outputs.first {
                parameterCopies.append((o, w))
                continue
            }
            if let pad = paddedConvs[k] {
                var conv = n
                conv.inputs[0] = pad.input
                let own = { () -> [Int] in if case .ints(let p)? = n.attributes["pads"] { return p }; return [0, 0, 0, 0] }()
                if own.count == 4 { conv.attributes["pads"] = .ints([own[0] + pad.h, own[1] + pad.w, own[2] + pad.h, own[3] + pad.w]) }
                steps.append(Step(kind: .node(conv), head: conv, outputs: n.outputs, scope: scope))
                continue
            }
            steps.append(Step(kind: .node(n), head: n, outputs: n.outputs, scope: scope))
        }
    }

    static func softmaxOnLastAxis(_ n: ONNXNode) -> Bool {
        if case .int(let a)? = n.attributes["axis"] { return a == -1 }
        return true   // opset 13's default axis is −1
    }

    /// 0 on and below the diagonal, a large negative number above it, over the last two axes (any leading ones 1).
    static func isCausalMask(_ c: ONNXConstant) -> Bool {
        guard c.shape.count >= 2, c.isFloat else { return false }
        let s = c.shape[c.shape.count - 1]
        guard c.shape[c.shape.count - 2] == s, c.count == s * s, s > 1 else { return false }
        let f = c.floats
        for i in 0..<s {
            for j in 0..<s {
                let v = f[i * s + j]
                if j <= i { if v != 0 { return false } } else if !(v <= -1e4) { return false }
            }
        }
        return true
    }
}
