import DojoGraph
import DojoNN
import DojoTensor
import Foundation

/// A value while the graph runs: a tensor of the engine (recorded on the tape, differentiated), or a constant the
/// import computes with directly (shapes, axes, indices, an exporter's scalars).
enum ONNXValue {
    case tensor(Tensor)
    case constant(ONNXConstant)
}

/// Runs plan steps on the engine. Each op checks its operands' shapes and attributes before the engine sees them,
/// so a file that does not fit is an error naming the node, not a crash.
struct ONNXExecution {
    let model: ONNXModel
    let state: [String: Tensor]
    let training: Bool
    /// MatMul inputs that are a weight transposed (`ONNXPlan.transposedWeights`).
    let transposed: [String: String]

    init(model: ONNXModel, state: [String: Tensor], training: Bool, transposed: [String: String]) {
        self.model = model; self.state = state; self.training = training; self.transposed = transposed
    }

    func fail(_ n: ONNXNode, _ message: String) -> ONNXError {
        ONNXError("\(model.path): \(n.label), opset \(model.opset): \(message)")
    }

    // MARK: attributes and operands

    static func int(_ n: ONNXNode, _ key: String, _ fallback: Int) -> Int {
        if case .int(let v)? = n.attributes[key] { return v }
        return fallback
    }
    static func float(_ n: ONNXNode, _ key: String, _ fallback: Float) -> Float {
        if case .float(let v)? = n.attributes[key] { return v }
        if case .int(let v)? = n.attributes[key] { return Float(v) }
        return fallback
    }
    static func ints(_ n: ONNXNode, _ key: String) -> [Int]? {
        if case .ints(let v)? = n.attributes[key] { return v }
        return nil
    }
    static func string(_ n: ONNXNode, _ key: String) -> String? {
        if case .string(let v)? = n.attributes[key] { return v }
        return nil
    }

    /// The value of a Constant node.
    static func constantNode(_ n: ONNXNode, file: String) throws -> ONNXConstant {
        for (key, a) in n.attributes {
            switch (key, a) {
            case ("value", .tensor(let c)): return c
            case ("value_float", .float(let f)): return ONNXConstant(shape: [], floats: [f])
            case ("value_floats", .floats(let f)): return ONNXConstant(shape: [f.count], floats: f)
            case ("value_int", .int(let i)): return ONNXConstant(shape: [], ints: [i])
            case ("value_ints", .ints(let i)): return ONNXConstant(shape: [i.count], ints: i)
            default: continue
            }
        }
        throw ONNXError("\(file): \(n.label): no value this import reads (value, value_float(s), value_int(s))")
    }

    /// Operand `i` of `n` (nil when absent or named "").
    func operand(_ n: ONNXNode, _ i: Int, _ env: [String: ONNXValue]) throws -> ONNXValue? {
        guard i < n.inputs.count, !n.inputs[i].isEmpty else { return nil }
        guard let v = env[n.inputs[i]] else {
            throw fail(n, "input \(i) '\(n.inputs[i])' is not computed here (an output this import leaves out, such as a Dropout mask or batch norm's saved statistics)")
        }
        return v
    }
    func tensor(_ n: ONNXNode, _ i: Int, _ env: [String: ONNXValue]) throws -> Tensor {
        guard let v = try operand(n, i, env) else { throw fail(n, "input \(i) is missing") }
        switch v {
        case .tensor(let t): return t
        case .constant(let c): return Tensor(c.floats, shape: c.shape)
        }
    }
    func constant(_ n: ONNXNode, _ i: Int, _ env: [String: ONNXValue], what: String) throws -> ONNXConstant {
        guard let v = try operand(n, i, env) else { throw fail(n, "input \(i) (\(what)) is missing") }
        guard case .constant(let c) = v else {
            throw fail(n, "input \(i) (\(what)) is computed from the data; this import needs it constant (export with fixed shapes)")
        }
        return c
    }
    func ints(_ n: ONNXNode, _ i: Int, _ env: [String: ONNXValue], what: String) throws -> [Int] {
        let c = try constant(n, i, env, what: what)
        if let v = c.ints { return v }
        do {
            let f = c.floats
            guard f.allSatisfy({ $0 == $0.rounded() && abs($0) < 1e15 }) else { throw fail(n, "\(what) holds non-integer values") }
            return f.map { Int($0) }
        }
    }
    /// Axes from an attribute (older opsets) or from input `i` (newer).
    func axes(_ n: ONNXNode, input i: Int, _ env: [String: ONNXValue]) throws -> [Int]? {
        if let a = Self.ints(n, "axes") { return a }
        if i < n.inputs.count, !n.inputs[i].isEmpty { return try ints(n, i, env, what: "axes") }
        return nil
    }
    func normalised(_ axis: Int, rank: Int, _ n: ONNXNode) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else { throw fail(n, "axis \(axis) of a rank-\(rank) tensor") }
        return a
    }

    func precision() -> PrecisionPolicy? { Module.context.precision }
    /// A weight as the forward pass uses it (rounded to the precision's format).
    func weight(_ t: Tensor) -> Tensor {
        guard t.role == .parameter, let p = precision() else { return t }
        return p.weight(t, site: t.name ?? "weight")
    }
    /// A matrix op's fresh output, rounded to the precision's format where it lies.
    func activation(_ y: Tensor, _ scope: String) -> Tensor {
        precision()?.activation(y, site: scope, exclusive: true) ?? y
    }

    // MARK: steps

    func execute(_ step: ONNXPlan.Step, env: [String: ONNXValue]) throws -> [ONNXValue] {
        let n = step.head
        switch step.kind {
        case .absorbed: return []
        case .gelu(let input):
            guard case .tensor(let x)? = env[input] else { throw fail(n, "GELU of a constant") }
            return [.tensor(x.geluExact())]
        case .layerNorm(let input, let gammaName, let betaName, let epsilon):
            guard case .tensor(let x)? = env[input] else { throw fail(n, "layer norm of a constant") }
            let d = x.shape.last ?? 0
            guard x.rank >= 1, d > 0 else { throw fail(n, "layer norm of shape \(x.shape)") }
            let gamma = gammaName.flatMap { state[$0] } ?? Tensor(repeating: 1, shape: [d])
            let beta = betaName.flatMap { state[$0] } ?? Tensor(zeros: [d])
            guard gamma.shape == [d], beta.shape == [d] else {
                throw fail(n, "layer norm of width \(d) with scale \(gamma.shape) and bias \(beta.shape)")
            }
            return [.tensor(x.layerNorm(gamma: gamma, beta: beta, epsilon: epsilon))]
        case .causalSoftmax(let scoresName):
            guard case .tensor(let s)? = env[scoresName] else { throw fail(n, "causal softmax of a constant") }
            guard s.rank >= 2, s.shape[s.rank - 1] == s.shape[s.rank - 2] else {
                throw fail(n, "a causal mask on scores of shape \(s.shape) (needs [..., S, S])")
            }
            return [.tensor(s.softmax(causal: true))]
        case .node(let node):
            return try run(node, env: env, scope: step.scope)
        }
    }

    // swiftlint:disable:next cyclomatic_complexity
    func run(_ n: ONNXNode, env: [String: ONNXValue], scope: String) throws -> [ONNXValue] {
        switch n.opType {
        case "Constant":
            return [.constant(try Self.constantNode(n, file: model.path))]
        case "Identity":
            guard let v = try operand(n, 0, env) else { throw fail(n, "no input") }
            return [v]
        case "Dropout":
            guard let v = try operand(n, 0, env) else { throw fail(n, "no input") }
            var ratio = Self.float(n, "ratio", 0.5)
            if n.inputs.count > 1, !n.inputs[1].isEmpty, let r = try? constant(n, 1, env, what: "ratio"), r.count == 1 { ratio = r.floats[0] }
            guard ratio >= 0 && ratio < 1 else { throw fail(n, "ratio \(ratio) outside [0, 1)") }
            guard training, ratio > 0, case .tensor(let x) = v else { return [v] }
            return [.tensor(x.dropout(probability: ratio, generator: &Module.context.generator))]
        case "Conv": return [.tensor(try conv(n, env, scope))]
        case "ConvTranspose": return [.tensor(try convTranspose(n, env, scope))]
        case "BatchNormalization": return [.tensor(try batchNorm(n, env))]
        case "Relu", "Sigmoid", "Tanh", "Sqrt", "Exp", "Log", "Neg", "Gelu", "Erf", "LeakyRelu":
            return [try unary(n, env)]
        case "Clip": return [.tensor(try clip(n, env))]
        case "MaxPool", "AveragePool": return [.tensor(try pool(n, env))]
        case "GlobalAveragePool":
            let x = try tensor(n, 0, env)
            guard x.rank == 4 else { throw fail(n, "input \(x.shape); needs [N, C, H, W]") }
            return [.tensor(x.globalAvgPool().reshaped([x.shape[0], x.shape[1], 1, 1]))]
        case "Gemm": return [.tensor(try gemm(n, env, scope))]
        case "MatMul": return [.tensor(try matmul(n, env, scope))]
        case "Add", "Sub", "Mul", "Div", "Pow", "Equal": return [try binary(n, env)]
        case "Softmax", "LogSoftmax":
            let x = try tensor(n, 0, env)
            guard x.rank >= 1 else { throw fail(n, "softmax of a scalar") }
            let axis = try normalised(Self.int(n, "axis", -1), rank: x.rank, n)
            guard axis == x.rank - 1 else { throw fail(n, "softmax over axis \(axis) of \(x.shape); this import reads the last axis only") }
            return [.tensor(n.opType == "Softmax" ? x.softmax() : x.logSoftmax())]
        case "LayerNormalization":
            let x = try tensor(n, 0, env)
            let axis = try normalised(Self.int(n, "axis", -1), rank: max(x.rank, 1), n)
            guard axis == x.rank - 1 else { throw fail(n, "normalising from axis \(axis) of \(x.shape); this import reads the last axis only") }
            let d = x.shape[axis]
            let gamma = try tensor(n, 1, env)
            let beta = n.inputs.count > 2 && !n.inputs[2].isEmpty ? try tensor(n, 2, env) : Tensor(zeros: [d])
            guard gamma.count == d, beta.count == d else { throw fail(n, "scale \(gamma.shape) and bias \(beta.shape) for width \(d)") }
            return [.tensor(x.layerNorm(gamma: gamma.reshaped([d]), beta: beta.reshaped([d]), epsilon: Self.float(n, "epsilon", 1e-5)))]
        case "ReduceMean", "ReduceSum": return [try reduce(n, env)]
        case "Reshape": return [try reshape(n, env)]
        case "Flatten":
            let v = try operand(n, 0, env)
            let shape = try shapeOf(n, v)
            let axis = Self.int(n, "axis", 1)
            let a = axis < 0 ? axis + shape.count : axis
            guard a >= 0 && a <= shape.count else { throw fail(n, "axis \(axis) of \(shape)") }
            let target = [shape[..<a].reduce(1, *), shape[a...].reduce(1, *)]
            return [try reshaped(n, v, target)]
        case "Transpose": return [try transpose(n, env)]
        case "Unsqueeze", "Squeeze": return [try squeeze(n, env)]
        case "Concat": return [try concat(n, env)]
        case "Split": return try split(n, env)
        case "Slice": return [try slice(n, env)]
        case "Gather": return [try gather(n, env)]
        case "Shape":
            let shape = try shapeOf(n, try operand(n, 0, env))
            let r = shape.count
            var start = Self.int(n, "start", 0), end = Self.int(n, "end", r)
            if start < 0 { start += r }; if end < 0 { end += r }
            start = min(max(start, 0), r); end = min(max(end, start), r)
            return [.constant(ONNXConstant(shape: [end - start], ints: Array(shape[start..<end])))]
        case "ConstantOfShape":
            let shape = try ints(n, 0, env, what: "shape")
            guard shape.count <= 32, let count = product(shape, limit: 1 << 24) else { throw fail(n, "shape \(shape): at most 2^24 values, sizes ≥ 0") }
            if case .tensor(let c)? = n.attributes["value"] {
                if let v = c.ints { return [.constant(ONNXConstant(shape: shape, ints: .init(repeating: v.first ?? 0, count: count)))] }
                return [.constant(ONNXConstant(shape: shape, floats: .init(repeating: c.floats.first ?? 0, count: count)))]
            }
            return [.constant(ONNXConstant(shape: shape, floats: .init(repeating: 0, count: count)))]
        case "Cast":
            guard let v = try operand(n, 0, env) else { throw fail(n, "no input") }
            let to = Self.int(n, "to", 1)
            guard case .constant(let c) = v else {
                guard to == 1 else { throw fail(n, "casting a computed tensor to \(ONNXModel.elementTypeName(Int32(clamping: to))); the engine computes in float32") }
                return [v]
            }
            switch to {
            case 1, 10, 11, 16: return [.constant(ONNXConstant(shape: c.shape, floats: c.floats))]
            default:
                if let i = c.ints { return [.constant(ONNXConstant(shape: c.shape, ints: i))] }
                guard c.floats.allSatisfy({ $0.isFinite && abs($0) < 1e15 }) else { throw fail(n, "casting a value that is not finite or too large to an integer") }
                return [.constant(ONNXConstant(shape: c.shape, ints: c.floats.map { Int($0) }))]
            }
        case "Where":
            let cond = try constant(n, 0, env, what: "condition")
            let a = try operand(n, 1, env), b = try operand(n, 2, env)
            guard case .constant(let x)? = a, case .constant(let y)? = b else {
                throw fail(n, "Where on computed tensors; this import folds Where on constants only")
            }
            guard let cx = broadcastShape(cond.shape, x.shape), let out = broadcastShape(cx, y.shape), product(out, limit: 1 << 24) != nil else {
                throw fail(n, "shapes \(cond.shape), \(x.shape) and \(y.shape) do not broadcast")
            }
            let pos = broadcastPositions([cond.shape, x.shape, y.shape], to: out)
            let c = cond.floats
            if let xi = x.ints, let yi = y.ints {
                return [.constant(ONNXConstant(shape: out, ints: (0..<pos[0].count).map { c[pos[0][$0]] != 0 ? xi[pos[1][$0]] : yi[pos[2][$0]] }))]
            }
            let xf = x.floats, yf = y.floats
            return [.constant(ONNXConstant(shape: out, floats: (0..<pos[0].count).map { c[pos[0][$0]] != 0 ? xf[pos[1][$0]] : yf[pos[2][$0]] }))]
        case "Expand": return [try expand(n, env)]
        case "Range":
            let s = try constant(n, 0, env, what: "start"), l = try constant(n, 1, env, what: "limit"), d = try constant(n, 2, env, what: "delta")
            guard s.count == 1, l.count == 1, d.count == 1, d.floats[0] != 0 else { throw fail(n, "start, limit and delta must be scalars, delta not 0") }
            let steps = ((l.floats[0] - s.floats[0]) / d.floats[0]).rounded(.up)
            guard steps.isFinite, steps <= Float(1 << 24) else { throw fail(n, "\(steps) values; at most 2^24") }
            let count = max(0, Int(steps))
            if let si = s.ints, let di = d.ints {
                return [.constant(ONNXConstant(shape: [count], ints: (0..<count).map { si[0] + $0 * di[0] }))]
            }
            return [.constant(ONNXConstant(shape: [count], floats: (0..<count).map { s.floats[0] + Float($0) * d.floats[0] }))]
        case "Pad": return [.tensor(try pad(n, env))]
        case "Resize": return [.tensor(try resize(n, env))]
        default:
            throw fail(n, "not read by this import")
        }
    }

    func shapeOf(_ n: ONNXNode, _ v: ONNXValue?) throws -> [Int] {
        switch v {
        case .tensor(let t)?: return t.shape
        case .constant(let c)?: return c.shape
        case nil: throw fail(n, "no input")
        }
    }

    // MARK: ops

    /// The attributes Conv and ConvTranspose share, checked against their operands: 2-D, `group` from 1 to the input's
    /// channels, `kernel_shape` the weight's, dilation 1, two strides, sizes ≥ 1.
    func windowAttributes(_ n: ONNXNode, x: Tensor, w: Tensor, layouts: String) throws -> (groups: Int, strides: [Int]) {
        guard x.rank == 4, w.rank == 4 else { throw fail(n, "input \(x.shape) and weight \(w.shape); this import reads \(layouts)") }
        let groups = Self.int(n, "group", 1)
        guard groups >= 1 else { throw fail(n, "group \(groups); at least 1") }
        guard groups <= max(1, x.shape[1]) else { throw fail(n, "group \(groups); at most the input's \(x.shape[1]) channels") }
        if let k = Self.ints(n, "kernel_shape"), k != [w.shape[2], w.shape[3]] { throw fail(n, "kernel_shape \(k) but weight \(w.shape)") }
        if let d = Self.ints(n, "dilations"), d.contains(where: { $0 != 1 }) { throw fail(n, "dilations \(d); this import reads dilation 1") }
        let strides = Self.ints(n, "strides") ?? [1, 1]
        guard strides.count == 2, strides.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else { throw fail(n, "strides \(strides)") }
        guard w.shape.allSatisfy({ $0 >= 1 }), x.shape.allSatisfy({ $0 >= 1 }) else { throw fail(n, "input \(x.shape) and weight \(w.shape) need sizes ≥ 1") }
        return (groups, strides)
    }

    func conv(_ n: ONNXNode, _ env: [String: ONNXValue], _ scope: String) throws -> Tensor {
        let x = try tensor(n, 0, env), w = try tensor(n, 1, env)
        let b = n.inputs.count > 2 && !n.inputs[2].isEmpty ? try tensor(n, 2, env) : nil
        let (groups, strides) = try windowAttributes(n, x: x, w: w, layouts: "2-D convolutions ([N, C, H, W], [O, C/groups, kH, kW])")
        let pads = try padding(n, kernel: [w.shape[2], w.shape[3]], strides: strides, input: [x.shape[2], x.shape[3]])
        // channels, groups, bias and the window: the engine's shape rule (DojoGraph)
        do {
            _ = try OpKind.conv2d.outputShape(inputs: [x.shape, w.shape] + (b.map { [$0.shape] } ?? []),
                                              attributes: OpAttributes(stride: strides, padding: [pads.0, pads.1], groups: groups))
        } catch { throw fail(n, "\(error)") }
        let y = x.conv2d(weight: weight(w), bias: b, stride: (strides[0], strides[1]), padding: pads, groups: groups)
        return activation(y, scope)
    }

    /// ConvTranspose (2-D, dilation 1, symmetric pads, `output_padding` below the stride, or an `output_shape` those
    /// give): the engine's transposed convolution.
    func convTranspose(_ n: ONNXNode, _ env: [String: ONNXValue], _ scope: String) throws -> Tensor {
        let x = try tensor(n, 0, env), w = try tensor(n, 1, env)
        let b = n.inputs.count > 2 && !n.inputs[2].isEmpty ? try tensor(n, 2, env) : nil
        let (groups, strides) = try windowAttributes(n, x: x, w: w, layouts: "2-D transposed convolutions ([N, C, H, W], [C, O/groups, kH, kW])")
        var outputPadding = Self.ints(n, "output_padding") ?? [0, 0]
        guard outputPadding.count == 2, outputPadding.allSatisfy({ $0 >= 0 }), zip(outputPadding, strides).allSatisfy({ $0 < $1 }) else {
            throw fail(n, "output_padding \(outputPadding); two values each below its stride \(strides)")
        }
        // SAME means the output's size here, not the input's: only explicit pads and VALID are read
        let auto = Self.string(n, "auto_pad") ?? "NOTSET"
        guard ["NOTSET", "", "VALID"].contains(auto) else { throw fail(n, "auto_pad '\(auto)'; this import reads NOTSET (with pads) and VALID") }
        var pads = try padding(n, kernel: [w.shape[2], w.shape[3]], strides: strides, input: [x.shape[2], x.shape[3]])
        if let o = Self.ints(n, "output_shape") {
            // the pads and output padding that give this size: total padding = stride·(in − 1) + output_padding + kernel − out
            let target = o.count == 4 ? Array(o[2...]) : o
            guard target.count == 2, target.allSatisfy({ $0 >= 1 && $0 <= 1 << 30 }) else { throw fail(n, "output_shape \(o); two spatial sizes 1…2^30") }
            var p = [0, 0]
            for i in 0..<2 {
                let full = strides[i] * (x.shape[2 + i] - 1) + w.shape[2 + i]
                var total = full + outputPadding[i] - target[i]
                if total < 0 && -total < strides[i] { outputPadding[i] = -total; total = 0 }
                guard total >= 0, total % 2 == 0 else { throw fail(n, "output_shape \(o) needs \(total) pixels of padding on axis \(i + 2), not the same on both sides") }
                p[i] = total / 2
            }
            pads = (p[0], p[1])
        }
        let h = (x.shape[2] - 1) * strides[0] - 2 * pads.0 + w.shape[2] + outputPadding[0]
        let wd = (x.shape[3] - 1) * strides[1] - 2 * pads.1 + w.shape[3] + outputPadding[1]
        guard product([x.shape[0], w.shape[1] * groups, max(h, 0), max(wd, 0)], limit: 1 << 34) != nil else {
            throw fail(n, "a result of \([x.shape[0], w.shape[1] * groups, h, wd])")
        }
        do {
            _ = try OpKind.convTranspose2d.outputShape(
                inputs: [x.shape, w.shape] + (b.map { [$0.shape] } ?? []),
                attributes: OpAttributes(stride: strides, padding: [pads.0, pads.1], groups: groups,
                                         shape: [x.shape[0], w.shape[1] * groups, h, wd]))
        } catch { throw fail(n, "\(error)") }
        let y = x.convTranspose2d(weight: weight(w), bias: b, stride: (strides[0], strides[1]), padding: pads,
                                  outputPadding: (outputPadding[0], outputPadding[1]), groups: groups)
        return activation(y, scope)
    }

    /// Symmetric padding (the engine's); `auto_pad` SAME_* computed, VALID 0.
    func padding(_ n: ONNXNode, kernel: [Int], strides: [Int], input: [Int]) throws -> (Int, Int) {
        let auto = Self.string(n, "auto_pad") ?? "NOTSET"
        switch auto {
        case "NOTSET", "":
            let p = Self.ints(n, "pads") ?? [0, 0, 0, 0]
            guard p.count == 4, p.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else { throw fail(n, "pads \(p); expected 4 values 0…2^20") }
            guard p[0] == p[2], p[1] == p[3] else {
                throw fail(n, "asymmetric pads \(p) (begin ≠ end); the engine pads both sides alike")
            }
            return (p[0], p[1])
        case "VALID": return (0, 0)
        case "SAME_UPPER", "SAME_LOWER":
            var out: [Int] = []
            for i in 0..<2 {
                let o = (input[i] + strides[i] - 1) / strides[i]
                let total = max(0, (o - 1) * strides[i] + kernel[i] - input[i])
                guard total % 2 == 0 else { throw fail(n, "auto_pad \(auto) needs \(total) pixels of padding on axis \(i + 2), not the same on both sides") }
                out.append(total / 2)
            }
            return (out[0], out[1])
        default: throw fail(n, "auto_pad '\(auto)'")
        }
    }

    func batchNorm(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> Tensor {
        let x = try tensor(n, 0, env)
        guard n.inputs.count == 5 else { throw fail(n, "\(n.inputs.count) inputs; needs X, scale, B, mean, var") }
        guard x.rank == 2 || x.rank == 4 else { throw fail(n, "input \(x.shape); needs [N, C] or [N, C, H, W]") }
        let c = x.shape[1]
        let p = try (1...4).map { try tensor(n, $0, env) }
        for (i, t) in p.enumerated() where t.shape != [c] {
            throw fail(n, "\(["scale", "B", "mean", "var"][i]) \(t.shape) for \(c) channels")
        }
        // ONNX's momentum weighs the running value (0.9); the engine's (PyTorch's) the new batch (0.1)
        let momentum = 1 - Self.float(n, "momentum", 0.9)
        return x.batchNorm(gamma: p[0], beta: p[1], runningMean: p[2], runningVariance: p[3], training: training && p[2].role == .state,
                           momentum: momentum, epsilon: Self.float(n, "epsilon", 1e-5), sync: Module.context.batchNormSync)
    }

    func unary(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        guard let v = try operand(n, 0, env) else { throw fail(n, "no input") }
        if case .constant(let c) = v {
            let f: (Float) -> Float
            switch n.opType {
            case "Relu": f = { max($0, 0) }
            case "Sqrt": f = { $0.squareRoot() }
            case "Exp": f = { Foundation.exp($0) }
            case "Neg": f = { -$0 }
            case "Log": f = { Foundation.log($0) }
            case "Tanh": f = { Foundation.tanh($0) }
            case "Sigmoid": f = { 1 / (1 + Foundation.exp(-$0)) }
            case "Erf": f = { Foundation.erf($0) }
            default: throw fail(n, "\(n.opType) of a constant")
            }
            return .constant(ONNXConstant(shape: c.shape, floats: c.floats.map(f)))
        }
        guard case .tensor(let x) = v else { throw fail(n, "no input") }
        switch n.opType {
        case "Relu": return .tensor(x.relu())
        case "Sigmoid": return .tensor(x.sigmoid())
        case "Tanh": return .tensor(x.tanh())
        case "Sqrt": return .tensor(x.sqrt())
        case "Exp": return .tensor(x.exp())
        case "Log": return .tensor(x.log())
        case "Neg": return .tensor(x.negated())
        case "Gelu":
            let approximate = Self.string(n, "approximate") ?? "none"
            return .tensor(approximate == "tanh" ? x.gelu() : x.geluExact())
        case "LeakyRelu":
            // max(x, αx) = relu(x) − α·relu(−x)
            let alpha = Self.float(n, "alpha", 0.01)
            return .tensor(x.relu().subtracting(x.negated().relu().scaled(by: alpha)))
        default:
            throw fail(n, "Erf outside GELU's pattern x·½·(1 + erf(x/√2)); the engine has no erf of its own")
        }
    }

    /// min(max(x, lo), hi) = lo + relu(x − lo) − relu(x − hi) (ReLU6 is Clip(0, 6)).
    func clip(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> Tensor {
        let x = try tensor(n, 0, env)
        var lo = Self.float(n, "min", -.infinity), hi = Self.float(n, "max", .infinity)
        if n.inputs.count > 1, !n.inputs[1].isEmpty { let c = try constant(n, 1, env, what: "min"); guard c.count == 1 else { throw fail(n, "min is not a scalar") }; lo = c.floats[0] }
        if n.inputs.count > 2, !n.inputs[2].isEmpty { let c = try constant(n, 2, env, what: "max"); guard c.count == 1 else { throw fail(n, "max is not a scalar") }; hi = c.floats[0] }
        guard lo <= hi else { throw fail(n, "min \(lo) > max \(hi)") }
        var y = x
        if lo.isFinite { y = y.shifted(by: -lo).relu().shifted(by: lo) }
        if hi.isFinite { y = y.subtracting(y.shifted(by: -hi).relu()) }
        return y
    }

    func pool(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> Tensor {
        let x = try tensor(n, 0, env)
        guard x.rank == 4 else { throw fail(n, "input \(x.shape); this import reads 2-D pooling of [N, C, H, W]") }
        guard let k = Self.ints(n, "kernel_shape"), k.count == 2, k.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else { throw fail(n, "kernel_shape must be two sizes 1…2^20") }
        guard x.shape.allSatisfy({ $0 >= 1 }) else { throw fail(n, "input \(x.shape) needs sizes ≥ 1") }
        if Self.int(n, "ceil_mode", 0) != 0 { throw fail(n, "ceil_mode 1; this import reads floor mode") }
        if let d = Self.ints(n, "dilations"), d.contains(where: { $0 != 1 }) { throw fail(n, "dilations \(d)") }
        if n.outputs.count > 1, !n.outputs[1].isEmpty { throw fail(n, "the Indices output is not computed") }
        let strides = Self.ints(n, "strides") ?? [1, 1]
        guard strides.count == 2, strides.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else { throw fail(n, "strides \(strides)") }
        let pads = try padding(n, kernel: k, strides: strides, input: [x.shape[2], x.shape[3]])
        guard x.shape[2] + 2 * pads.0 >= k[0], x.shape[3] + 2 * pads.1 >= k[1], pads.0 < k[0], pads.1 < k[1] else {
            throw fail(n, "window \(k) with pads \(pads) on input \(x.shape)")
        }
        if n.opType == "MaxPool" { return x.maxPool2d(kernel: (k[0], k[1]), stride: (strides[0], strides[1]), padding: pads) }
        if pads != (0, 0), Self.int(n, "count_include_pad", 0) == 0 {
            throw fail(n, "average pooling with padding that excludes the padding from the count; the engine counts it (count_include_pad=1)")
        }
        return x.avgPool2d(kernel: (k[0], k[1]), stride: (strides[0], strides[1]), padding: pads)
    }

    func gemm(_ n: ONNXNode, _ env: [String: ONNXValue], _ scope: String) throws -> Tensor {
        let a = try tensor(n, 0, env), b = try tensor(n, 1, env)
        let c = n.inputs.count > 2 && !n.inputs[2].isEmpty ? try tensor(n, 2, env) : nil
        guard a.rank == 2, b.rank == 2 else { throw fail(n, "A \(a.shape) and B \(b.shape) must be matrices") }
        let ta = Self.int(n, "transA", 0) != 0, tb = Self.int(n, "transB", 0) != 0
        let alpha = Self.float(n, "alpha", 1), beta = Self.float(n, "beta", 1)
        let k = ta ? a.shape[0] : a.shape[1], kb = tb ? b.shape[1] : b.shape[0]
        let m = ta ? a.shape[1] : a.shape[0], nn = tb ? b.shape[0] : b.shape[1]
        guard k == kb else { throw fail(n, "A \(a.shape)\(ta ? "ᵀ" : "") · B \(b.shape)\(tb ? "ᵀ" : ""): inner sizes \(k) and \(kb) differ") }
        if let c { guard broadcastShape([m, nn], c.shape) == [m, nn] else { throw fail(n, "C \(c.shape) does not broadcast to [\(m), \(nn)]") } }
        var y: Tensor
        if !ta, tb, alpha == 1, beta == 1, let c, c.shape == [nn] {
            y = a.linear(weight: weight(b), bias: c)
        } else {
            y = a.matmul(weight(b), transposeA: ta, transposeB: tb)
            if alpha != 1 { y = y.scaled(by: alpha) }
            if let c { y = y.adding(beta == 1 ? c : c.scaled(by: beta)) }
        }
        return activation(y, scope)
    }

    func matmul(_ n: ONNXNode, _ env: [String: ONNXValue], _ scope: String) throws -> Tensor {
        let a = try tensor(n, 0, env)
        var transposeB = false
        let b: Tensor
        if n.inputs.count > 1, let name = transposed[n.inputs[1]], let w = state[name] { b = w; transposeB = true } else { b = try tensor(n, 1, env) }
        // the engine's shape rule (DojoGraph), also for the operands' batch dimensions: equal, or a shared matrix
        do { _ = try OpKind.matmul.outputShape(inputs: [a.shape, b.shape], attributes: OpAttributes(transposeB: transposeB)) } catch {
            throw fail(n, "A \(a.shape), B \(transposeB ? [b.shape[1], b.shape[0]] : b.shape): \(error)")
        }
        let y = a.matmul(weight(b), transposeB: transposeB)
        return activation(y, scope)
    }

    func binary(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        guard let l = try operand(n, 0, env), let r = try operand(n, 1, env) else { throw fail(n, "needs two inputs") }
        if case .constant(let x) = l, case .constant(let y) = r {
            let f: ([Float]) -> Float
            switch n.opType {
            case "Add": f = { $0[0] + $0[1] }
            case "Sub": f = { $0[0] - $0[1] }
            case "Mul": f = { $0[0] * $0[1] }
            case "Div": f = { $0[0] / $0[1] }
            case "Pow": f = { Foundation.pow($0[0], $0[1]) }
            default: f = { $0[0] == $0[1] ? 1 : 0 }
            }
            if let xi = x.ints, let yi = y.ints, n.opType != "Pow" {
                // whole numbers stay exact (ONNX integer division truncates)
                guard let shape = broadcastShape(x.shape, y.shape), product(shape, limit: 1 << 24) != nil else {
                    throw fail(n, "shapes \(x.shape) and \(y.shape) do not broadcast")
                }
                return .constant(ONNXConstant(shape: shape, ints: try intElementwise(n, xi, x.shape, yi, y.shape, shape)))
            }
            let c = try elementwise(n, [x, y], f)
            return .constant(c)
        }
        let a = try value(l), b = try value(r)
        guard broadcastShape(a.shape, b.shape) != nil else { throw fail(n, "shapes \(a.shape) and \(b.shape) do not broadcast") }
        switch n.opType {
        case "Add": return .tensor(a.adding(b))
        case "Sub": return .tensor(a.subtracting(b))
        case "Mul": return .tensor(a.multiplying(b))
        case "Div": return .tensor(a.dividing(b))
        case "Pow":
            guard case .constant(let e) = r, e.count == 1 else { throw fail(n, "a computed exponent; this import reads constant exponents 2, 1 and 0.5") }
            switch e.floats[0] {
            case 2: return .tensor(a.multiplying(a))
            case 0.5: return .tensor(a.sqrt())
            case 1: return .tensor(a)
            default: throw fail(n, "exponent \(e.floats[0]); this import reads constant exponents 2, 1 and 0.5")
            }
        default: throw fail(n, "Equal of computed tensors")
        }
    }

    func intElementwise(_ n: ONNXNode, _ x: [Int], _ xs: [Int], _ y: [Int], _ ys: [Int], _ out: [Int]) throws -> [Int] {
        let pos = broadcastPositions([xs, ys], to: out)
        return try (0..<pos[0].count).map { i in
            let a = x[pos[0][i]], b = y[pos[1][i]]
            switch n.opType {
            case "Add": return a &+ b
            case "Sub": return a &- b
            case "Mul": return a &* b
            case "Div": guard b != 0 else { throw fail(n, "integer division by zero") }; return b == -1 ? 0 &- a : a / b
            default: return a == b ? 1 : 0
            }
        }
    }

    func value(_ v: ONNXValue) throws -> Tensor {
        switch v {
        case .tensor(let t): return t
        case .constant(let c): return Tensor(c.floats, shape: c.shape)
        }
    }

    /// f over broadcast float constants (at most 2^24 values: shapes and indices, not data).
    func elementwise(_ n: ONNXNode, _ parts: [ONNXConstant], _ f: ([Float]) -> Float) throws -> ONNXConstant {
        var out: [Int] = []
        for p in parts {
            guard let s = broadcastShape(out, p.shape) else { throw fail(n, "shapes \(parts.map(\.shape)) do not broadcast") }
            out = s
        }
        guard product(out, limit: 1 << 24) != nil else { throw fail(n, "a constant of shape \(out); at most 2^24 values") }
        let pos = broadcastPositions(parts.map(\.shape), to: out)
        let values = parts.map(\.floats)
        var args = [Float](repeating: 0, count: parts.count)
        let r = (0..<(pos.first?.count ?? 1)).map { i -> Float in
            for p in 0..<parts.count { args[p] = values[p][pos[p][i]] }
            return f(args)
        }
        return ONNXConstant(shape: out, floats: r)
    }

    func reduce(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        let x = try tensor(n, 0, env)
        let keep = Self.int(n, "keepdims", 1) != 0
        var ax = try axes(n, input: 1, env) ?? []
        if ax.isEmpty {
            if Self.int(n, "noop_with_empty_axes", 0) != 0 { return .tensor(x) }
            ax = Array(0..<x.rank)
        }
        let normalisedAxes = try ax.map { try normalised($0, rank: x.rank, n) }
        guard Set(normalisedAxes).count == normalisedAxes.count else { throw fail(n, "axes \(ax) repeat an axis") }
        return .tensor(n.opType == "ReduceMean" ? x.mean(axes: normalisedAxes, keepDims: keep) : x.sum(axes: normalisedAxes, keepDims: keep))
    }

    func reshaped(_ n: ONNXNode, _ v: ONNXValue?, _ target: [Int]) throws -> ONNXValue {
        let shape = try shapeOf(n, v)
        let count = shape.reduce(1, *)
        guard target.count <= 32, product(target) == count else { throw fail(n, "reshaping \(shape) (\(count) values) to \(target)") }
        switch v {
        case .tensor(let t)?: return .tensor(t.reshaped(target))
        case .constant(var c)?: c.shape = target; return .constant(c)
        case nil: throw fail(n, "no input")
        }
    }

    func reshape(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        let v = try operand(n, 0, env)
        let shape = try shapeOf(n, v)
        var target = try ints(n, 1, env, what: "shape")
        let allowZero = Self.int(n, "allowzero", 0) != 0
        for (i, d) in target.enumerated() where d == 0 && !allowZero {
            guard i < shape.count else { throw fail(n, "shape \(target) copies dimension \(i) of \(shape), which has none") }
            target[i] = shape[i]
        }
        let unknown = target.indices.filter { target[$0] == -1 }
        guard unknown.count <= 1, target.allSatisfy({ $0 >= -1 }) else { throw fail(n, "shape \(target)") }
        let count = shape.reduce(1, *)
        if let u = unknown.first {
            let known = product(target.enumerated().filter { $0.offset != u }.map(\.element)) ?? 0
            guard known > 0, count % known == 0 else { throw fail(n, "reshaping \(shape) (\(count) values) to \(target)") }
            target[u] = count / known
        }
        return try reshaped(n, v, target)
    }

    func transpose(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        let v = try operand(n, 0, env)
        let shape = try shapeOf(n, v)
        let perm = Self.ints(n, "perm") ?? Array((0..<shape.count).reversed())
        guard perm.sorted() == Array(0..<shape.count) else { throw fail(n, "perm \(perm) for rank \(shape.count)") }
        switch v {
        case .tensor(let t)?: return .tensor(perm == Array(0..<shape.count) ? t : t.permuted(perm))
        case .constant(let c)?:
            // pure Swift: constants are computed the same under shape-only recording
            let out = perm.map { shape[$0] }
            var inStrides = [Int](repeating: 1, count: shape.count)
            for d in stride(from: shape.count - 2, through: 0, by: -1) { inStrides[d] = inStrides[d + 1] * shape[d + 1] }
            let positions = (0..<c.count).map { i -> Int in
                var rem = i, src = 0
                for d in stride(from: out.count - 1, through: 0, by: -1) { src += (rem % out[d]) * inStrides[perm[d]]; rem /= out[d] }
                return src
            }
            return .constant(c.picking(positions, shape: out))
        case nil: throw fail(n, "no input")
        }
    }

    func squeeze(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        let v = try operand(n, 0, env)
        let shape = try shapeOf(n, v)
        let ax = try axes(n, input: 1, env)
        var target: [Int]
        if n.opType == "Unsqueeze" {
            guard let ax, !ax.isEmpty else { throw fail(n, "no axes") }
            let rank = shape.count + ax.count
            guard rank <= 32 else { throw fail(n, "rank \(rank); at most 32") }
            let norm = try Set(ax.map { try normalised($0, rank: rank, n) })
            guard norm.count == ax.count else { throw fail(n, "axes \(ax) repeat an axis") }
            var rest = shape.makeIterator()
            target = (0..<rank).map { norm.contains($0) ? 1 : rest.next()! }
        } else {
            let norm = try Set((ax ?? shape.indices.filter { shape[$0] == 1 }).map { try normalised($0, rank: shape.count, n) })
            for a in norm where shape[a] != 1 { throw fail(n, "squeezing axis \(a) of \(shape), which is not 1") }
            target = shape.indices.filter { !norm.contains($0) }.map { shape[$0] }
        }
        return try reshaped(n, v, target)
    }

    func concat(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        let parts = try n.inputs.indices.compactMap { try operand(n, $0, env) }
        guard !parts.isEmpty else { throw fail(n, "nothing to concatenate") }
        let shapes = try parts.map { try shapeOf(n, $0) }
        let rank = shapes[0].count
        guard rank >= 1 else { throw fail(n, "concatenating scalars") }
        let axis = try normalised(Self.int(n, "axis", 0), rank: rank, n)
        for s in shapes where s.count != rank || s.enumerated().contains(where: { $0.offset != axis && $0.element != shapes[0][$0.offset] }) {
            throw fail(n, "shapes \(shapes) differ off axis \(axis)")
        }
        if parts.allSatisfy({ if case .constant = $0 { return true }; return false }) {
            let cs = parts.compactMap { v -> ONNXConstant? in if case .constant(let c) = v { return c }; return nil }
            var shape = shapes[0]; shape[axis] = shapes.reduce(0) { $0 + $1[axis] }
            guard product(shape, limit: 1 << 24) != nil else { throw fail(n, "a constant of shape \(shape)") }
            let outer = shapes[0][..<axis].reduce(1, *)
            if cs.allSatisfy({ $0.ints != nil }) {
                var out: [Int] = []
                for o in 0..<outer { for (c, s) in zip(cs, shapes) { let inner = s[axis...].reduce(1, *); out += c.ints![(o * inner)..<((o + 1) * inner)] } }
                return .constant(ONNXConstant(shape: shape, ints: out))
            }
            var out: [Float] = []
            for o in 0..<outer { for (c, s) in zip(cs, shapes) { let inner = s[axis...].reduce(1, *); out += c.floats[(o * inner)..<((o + 1) * inner)] } }
            return .constant(ONNXConstant(shape: shape, floats: out))
        }
        return .tensor(Tensor.concatenate(try parts.map(value), axis: axis))
    }

    func split(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> [ONNXValue] {
        let x = try tensor(n, 0, env)
        let axis = try normalised(Self.int(n, "axis", 0), rank: x.rank, n)
        let d = x.shape[axis], parts = n.outputs.count
        var sizes: [Int]
        if let s = Self.ints(n, "split") { sizes = s }
        else if n.inputs.count > 1, !n.inputs[1].isEmpty { sizes = try ints(n, 1, env, what: "split") }
        else {
            let k = Self.int(n, "num_outputs", parts)
            guard k >= 1 else { throw fail(n, "num_outputs \(k)") }
            let each = (d + k - 1) / k
            sizes = (0..<k).map { min(each, max(0, d - $0 * each)) }
        }
        guard sizes.count == parts, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == d else {
            throw fail(n, "split \(sizes) into \(parts) outputs of axis \(axis) with size \(d)")
        }
        var start = 0
        return sizes.map { s in
            defer { start += s }
            return .tensor(x.slice(axis: axis, start..<(start + s)))
        }
    }

    func slice(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        let v = try operand(n, 0, env)
        let shape = try shapeOf(n, v)
        let starts = try ints(n, 1, env, what: "starts"), ends = try ints(n, 2, env, what: "ends")
        let ax = n.inputs.count > 3 && !n.inputs[3].isEmpty ? try ints(n, 3, env, what: "axes") : Array(0..<starts.count)
        let steps = n.inputs.count > 4 && !n.inputs[4].isEmpty ? try ints(n, 4, env, what: "steps") : [Int](repeating: 1, count: starts.count)
        guard starts.count == ends.count, ax.count == starts.count, steps.count == starts.count else {
            throw fail(n, "starts, ends, axes and steps differ in length")
        }
        guard !steps.contains(0) else { throw fail(n, "steps \(steps): a step of 0") }
        // the positions each axis keeps (ONNX's rule: a start and end clamped to the axis, or to [-1, d-1] going back)
        var picks: [(Int, [Int])] = []
        guard Set(try ax.map { try normalised($0, rank: shape.count, n) }).count == ax.count else { throw fail(n, "axes \(ax) repeat an axis") }
        for i in starts.indices {
            let a = try normalised(ax[i], rank: shape.count, n), d = shape[a], step = steps[i]
            func norm(_ x: Int) -> Int { x < 0 ? (x < Int.min / 2 ? Int.min / 2 : x + d) : x }
            var list: [Int] = []
            if step > 0 {
                var j = min(max(norm(starts[i]), 0), d)
                let e = min(max(norm(ends[i]), 0), d)
                while j < e {
                    list.append(j)
                    let (next, over) = j.addingReportingOverflow(step)
                    if over { break }
                    j = next
                }
            } else {
                var j = min(max(norm(starts[i]), 0), d - 1)
                let e = min(max(norm(ends[i]), -1), d - 1)
                while j > e {
                    list.append(j)
                    let (next, over) = j.addingReportingOverflow(step)
                    if over { break }
                    j = next
                }
            }
            picks.append((a, list))
        }
        switch v {
        case .tensor(var t)?:
            for (a, list) in picks where list != Array(0..<t.shape[a]) {
                if list.isEmpty { t = t.slice(axis: a, 0..<0); continue }
                guard let first = list.first, list == Array(first..<(first + list.count)) else {
                    throw fail(n, "steps \(steps) on a computed tensor; this import slices those with step 1")
                }
                t = t.slice(axis: a, first..<(first + list.count))
            }
            return .tensor(t)
        case .constant(let c)?:
            // pure Swift, one axis at a time, on positions
            var positions = Array(0..<c.count), cur = c.shape
            for (a, list) in picks {
                let outer = cur[..<a].reduce(1, *), inner = cur[(a + 1)...].reduce(1, *), d = cur[a]
                var next: [Int] = []
                next.reserveCapacity(outer * list.count * inner)
                for o in 0..<outer {
                    for j in list { next += positions[((o * d + j) * inner)..<((o * d + j + 1) * inner)] }
                }
                positions = next; cur[a] = list.count
            }
            return .constant(c.picking(positions, shape: cur))
        case nil: throw fail(n, "no input")
        }
    }

    /// Pad, constant mode: each axis's begin and end pads as concatenated blocks of the value (a negative pad crops),
    /// so the engine's concat and slice carry the gradient back. (A Pad that only sets a convolution's padding is
    /// folded into that Conv by `ONNXPlan` first.)
    func pad(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> Tensor {
        var x = try tensor(n, 0, env)
        let mode = Self.string(n, "mode") ?? "constant"
        guard mode == "constant" else { throw fail(n, "mode '\(mode)'; this import reads constant padding (reflect, edge and wrap are not read yet)") }
        let pads = try Self.ints(n, "pads") ?? ints(n, 1, env, what: "pads")
        var value = Self.float(n, "value", 0)
        if n.inputs.count > 2, !n.inputs[2].isEmpty {
            let c = try constant(n, 2, env, what: "constant_value")
            guard c.count == 1 else { throw fail(n, "constant_value of shape \(c.shape); one value") }
            value = c.floats[0]
        }
        guard value.isFinite else { throw fail(n, "constant_value \(value); a finite number") }
        var axes = Array(0..<x.rank)
        if n.inputs.count > 3, !n.inputs[3].isEmpty {
            axes = try ints(n, 3, env, what: "axes").map { try normalised($0, rank: x.rank, n) }
            guard Set(axes).count == axes.count else { throw fail(n, "axes \(axes) repeat an axis") }
        }
        guard pads.count == 2 * axes.count else {
            throw fail(n, "\(pads.count) pads for the \(axes.count) axes of \(x.shape); a begin and an end for each")
        }
        var out = x.shape
        for (i, a) in axes.enumerated() {
            let (begin, end) = (pads[i], pads[i + axes.count])
            guard abs(begin) <= 1 << 24, abs(end) <= 1 << 24, x.shape[a] + begin + end >= 1 else {
                throw fail(n, "pads \(begin) and \(end) on axis \(a) of size \(x.shape[a]); the result needs at least 1")
            }
            out[a] += begin + end
        }
        guard product(out, limit: 1 << 34) != nil else { throw fail(n, "a result of shape \(out)") }
        for (i, a) in axes.enumerated() {
            let (begin, end) = (pads[i], pads[i + axes.count])
            if begin < 0 || end < 0 { x = x.slice(axis: a, max(0, -begin)..<(x.shape[a] - max(0, -end))) }
            var parts: [Tensor] = []
            func block(_ size: Int) -> Tensor {
                var s = x.shape; s[a] = size
                return value == 0 ? Tensor(zeros: s) : Tensor(repeating: value, shape: s)
            }
            if begin > 0 { parts.append(block(begin)) }
            parts.append(x)
            if end > 0 { parts.append(block(end)) }
            if parts.count > 1 { x = Tensor.concatenate(parts, axis: a) }
        }
        return x
    }

    /// Resize of a [N, C, H, W] tensor along H and W, nearest or linear (bilinear), with ONNX's coordinate
    /// transformations. Whole-number nearest upsampling that repeats each value (PyTorch's `nn.Upsample`, nearest) is a
    /// broadcast; any other is two products with the interpolation matrices of H and W (each output a weighted sum of
    /// at most two inputs), so the gradient is the matrices' transpose. The simulator prices those as small GEMMs.
    func resize(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> Tensor {
        let x = try tensor(n, 0, env)
        guard x.rank == 4 else { throw fail(n, "input \(x.shape); this import resizes [N, C, H, W]") }
        let mode = Self.string(n, "mode") ?? "nearest"
        guard mode == "nearest" || mode == "linear" else { throw fail(n, "mode '\(mode)'; this import reads nearest and linear") }
        let transform = Self.string(n, "coordinate_transformation_mode") ?? "half_pixel"
        let nearestMode = Self.string(n, "nearest_mode") ?? "round_prefer_floor"
        guard Self.int(n, "antialias", 0) == 0 else { throw fail(n, "antialias 1 is not read") }
        if let a = Self.ints(n, "axes"), Set(try a.map { try normalised($0, rank: 4, n) }) != [2, 3] {
            throw fail(n, "axes \(a); this import resizes H and W (axes 2 and 3)")
        }
        let policy = Self.string(n, "keep_aspect_ratio_policy") ?? "stretch"
        guard policy == "stretch" else { throw fail(n, "keep_aspect_ratio_policy '\(policy)' is not read") }
        let scalesAt = model.opset >= 11 ? 2 : 1
        var scales: [Float]? = nil, sizes: [Int]? = nil
        if n.inputs.count > scalesAt, !n.inputs[scalesAt].isEmpty {
            let c = try constant(n, scalesAt, env, what: "scales")
            if c.count > 0 { scales = c.floats }
        }
        if model.opset >= 11, n.inputs.count > 3, !n.inputs[3].isEmpty { sizes = try ints(n, 3, env, what: "sizes") }
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var outH: Int, outW: Int, scaleH: Double, scaleW: Double
        switch (scales, sizes) {
        case (let s?, nil):
            let s2: [Float] = s.count == 2 ? [1, 1] + s : s
            guard s2.count == 4, s2[0] == 1, s2[1] == 1, s2[2] > 0, s2[3] > 0, s2[2].isFinite, s2[3].isFinite,
                  Double(s2[2]) * Double(H) <= Double(1 << 24), Double(s2[3]) * Double(W) <= Double(1 << 24) else {
                throw fail(n, "scales \(s); this import resizes H and W (N and C scaled by 1, H and W by positive factors)")
            }
            scaleH = Double(s2[2]); scaleW = Double(s2[3])
            outH = Int((Double(H) * scaleH).rounded(.down)); outW = Int((Double(W) * scaleW).rounded(.down))
        case (nil, let z?):
            let z2 = z.count == 2 ? [N, C] + z : z
            guard z2.count == 4, z2[0] == N, z2[1] == C, z2[2] >= 1, z2[3] >= 1, z2[2] <= 1 << 24, z2[3] <= 1 << 24 else {
                throw fail(n, "sizes \(z) for an input \(x.shape); this import resizes H and W")
            }
            outH = z2[2]; outW = z2[3]
            scaleH = Double(outH) / Double(H); scaleW = Double(outW) / Double(W)
        default:
            throw fail(n, "needs scales or sizes, exactly one of them")
        }
        guard outH >= 1, outW >= 1, product([N, C, outH, outW], limit: 1 << 34) != nil else {
            throw fail(n, "a result of \([N, C, outH, outW])")
        }
        // the interpolation matrices are built here: at most 2^26 entries each
        guard H * outH <= 1 << 26, W * outW <= 1 << 26 else {
            throw fail(n, "resizing \(H)×\(W) to \(outH)×\(outW); this import reads resizes whose input × output size is at most 2^26 along each axis")
        }
        // each output position's inputs and weights along one axis
        func taps(_ inLen: Int, _ outLen: Int, _ scale: Double) throws -> [[(Int, Float)]] {
            try (0..<outLen).map { o -> [(Int, Float)] in
                let y = Double(o)
                let x: Double
                switch transform {
                case "half_pixel": x = (y + 0.5) / scale - 0.5
                case "pytorch_half_pixel": x = outLen > 1 ? (y + 0.5) / scale - 0.5 : 0
                case "align_corners": x = outLen > 1 ? y * Double(inLen - 1) / Double(outLen - 1) : 0
                case "asymmetric": x = y / scale
                case "tf_half_pixel_for_nn": x = (y + 0.5) / scale
                case "half_pixel_symmetric":
                    let adjustment = Double(outLen) / (scale * Double(inLen)), center = Double(inLen) / 2
                    x = center * (1 - adjustment) + (y + 0.5) / scale - 0.5
                default: throw fail(n, "coordinate_transformation_mode '\(transform)' is not read")
                }
                if mode == "nearest" {
                    let r: Double
                    switch nearestMode {
                    case "round_prefer_floor": r = x - x.rounded(.down) == 0.5 ? x.rounded(.down) : x.rounded()
                    case "round_prefer_ceil": r = x - x.rounded(.down) == 0.5 ? x.rounded(.up) : x.rounded()
                    case "floor": r = x.rounded(.down)
                    case "ceil": r = x.rounded(.up)
                    default: throw fail(n, "nearest_mode '\(nearestMode)' is not read")
                    }
                    return [(min(max(Int(r), 0), inLen - 1), 1)]
                }
                let c = min(max(x, 0), Double(inLen - 1))
                let i0 = Int(c.rounded(.down)), i1 = min(i0 + 1, inLen - 1)
                let w1 = Float(c - Double(i0))
                return w1 == 0 || i1 == i0 ? [(i0, Float(1))] : [(i0, 1 - w1), (i1, w1)]
            }
        }
        let th = try taps(H, outH, scaleH), tw = try taps(W, outW, scaleW)
        func repeats(_ t: [[(Int, Float)]], _ inLen: Int) -> Int? {
            guard t.count % inLen == 0 else { return nil }
            let f = t.count / inLen
            return t.enumerated().allSatisfy { $0.element.count == 1 && $0.element[0].0 == $0.offset / f } ? f : nil
        }
        if let fh = repeats(th, H), let fw = repeats(tw, W) {
            if fh == 1 && fw == 1 { return x }
            return x.reshaped([N, C, H, 1, W, 1]).adding(Tensor(zeros: [N, C, H, fh, W, fw])).reshaped([N, C, outH, outW])
        }
        // [inLen, outLen]: column o holds output o's weights
        func matrix(_ t: [[(Int, Float)]], _ inLen: Int) -> Tensor {
            var m = [Float](repeating: 0, count: inLen * t.count)
            for (o, list) in t.enumerated() { for (i, w) in list { m[i * t.count + o] += w } }
            return Tensor(m, shape: [inLen, t.count])
        }
        var y = x
        if !(outW == W && repeats(tw, W) == 1) { y = y.matmul(matrix(tw, W)) }                                 // [N, C, H, outW]
        if !(outH == H && repeats(th, H) == 1) { y = y.transposedLastTwo().matmul(matrix(th, H)).transposedLastTwo() }
        return y
    }

    func gather(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        guard let data = try operand(n, 0, env), let indices = try operand(n, 1, env) else { throw fail(n, "needs data and indices") }
        let shape = try shapeOf(n, data)
        guard !shape.isEmpty else { throw fail(n, "gathering from a scalar") }
        let axis = try normalised(Self.int(n, "axis", 0), rank: shape.count, n)
        switch (data, indices) {
        case (.tensor(let table), .tensor(let ids)):
            // an embedding: rows of a [V, D] table picked by token ids
            guard axis == 0, table.rank == 2 else { throw fail(n, "gathering computed indices from \(table.shape) on axis \(axis); this import reads an embedding (axis 0 of a [V, D] table)") }
            return .tensor(Tensor.embedding(weight(table), ids: ids))
        case (_, .constant(let idx)):
            guard let list = idx.ints ?? (idx.floats.allSatisfy { $0.isFinite && $0 == $0.rounded() && abs($0) < 1e15 } ? idx.floats.map { Int($0) } : nil) else {
                throw fail(n, "indices are not whole numbers")
            }
            guard !list.isEmpty else { throw fail(n, "no indices") }
            let d = shape[axis]
            let fixed = try list.map { i -> Int in
                let j = i < 0 ? i + d : i
                guard j >= 0 && j < d else { throw fail(n, "index \(i) outside axis \(axis) of size \(d)") }
                return j
            }
            let outShape = Array(shape[..<axis]) + idx.shape + Array(shape[(axis + 1)...])
            switch data {
            case .tensor(let t):
                let parts = fixed.map { t.slice(axis: axis, $0..<($0 + 1)) }
                let joined = parts.count == 1 ? parts[0] : Tensor.concatenate(parts, axis: axis)
                return .tensor(joined.reshaped(outShape))
            case .constant(let c):
                let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
                guard let total = product([outer, fixed.count, inner], limit: 1 << 24) else { throw fail(n, "a constant of more than 2^24 values") }
                var positions: [Int] = []
                positions.reserveCapacity(total)
                for o in 0..<outer { for j in fixed { positions += ((o * d + j) * inner)..<((o * d + j + 1) * inner) } }
                return .constant(c.picking(positions, shape: outShape))
            }
        case (.constant, .tensor):
            throw fail(n, "gathering computed indices from a constant")
        }
    }

    func expand(_ n: ONNXNode, _ env: [String: ONNXValue]) throws -> ONNXValue {
        guard let v = try operand(n, 0, env) else { throw fail(n, "no input") }
        let target = try ints(n, 1, env, what: "shape")
        let shape = try shapeOf(n, v)
        guard let out = broadcastShape(shape, target) else { throw fail(n, "\(shape) does not broadcast to \(target)") }
        switch v {
        case .constant(let c):
            guard product(out, limit: 1 << 24) != nil else { throw fail(n, "a constant of shape \(out)") }
            return .constant(c.picking(broadcastPositions([c.shape], to: out)[0], shape: out))
        case .tensor(let t):
            guard out.count <= 32, product(out, limit: 1 << 34) != nil else { throw fail(n, "expanding to \(out)") }
            if out == shape { return .tensor(t) }
            // broadcast by adding zeros: recorded as an add, its gradient sums back to the input's shape
            return .tensor(t.adding(Tensor(zeros: out)))
        }
    }
}

/// The product of `dims`, nil when one is negative or the product passes `limit`.
func product(_ dims: [Int], limit: Int = 1 << 40) -> Int? {
    var p = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: d)
        guard !o, r <= limit else { return nil }
        p = r
    }
    return p
}

/// For each output position of the broadcast shape `out`, the position read in each of `shapes`.
func broadcastPositions(_ shapes: [[Int]], to out: [Int]) -> [[Int]] {
    let count = out.reduce(1, *)
    let strides = shapes.map { broadcastStrides($0, to: out) }
    var result = shapes.map { _ in [Int](repeating: 0, count: count) }
    for i in 0..<count {
        var rem = i
        for d in stride(from: out.count - 1, through: 0, by: -1) {
            let c = rem % out[d]; rem /= out[d]
            for p in shapes.indices { result[p][i] += c * strides[p][d] }
        }
    }
    return result
}

/// Strides of `shape` read from a broadcast `out` shape (0 along broadcast dimensions).
func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
    let offset = out.count - shape.count
    var strides = [Int](repeating: 0, count: out.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i + offset] = shape[i] == 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}
