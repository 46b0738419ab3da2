import Dispatch
import DojoGraph

/// Reverse-mode automatic differentiation on a tape. While a tape is active (`tape.record { … }`), every op
/// appends an entry: what it computed from what, and how to send a gradient back. `backward(from:)` walks the
/// entries in reverse. The same entries are the Graph IR of the step (forward, backward and optimizer ops),
/// so what the simulator prices is exactly what the engine ran.
public final class Tape: @unchecked Sendable {
    @TaskLocal public static var current: Tape?
    /// The name of the layer issuing ops (e.g. `layer1.0.conv1`); modules set it with `Tape.withScope`.
    @TaskLocal public static var scope: String?
    /// During the backward pass of an op whose gradient fills its part of its input's (`OpDefinition.GradientRule.fill`,
    /// a slice): that input's gradient so far, when it is a buffer earlier parts were filled into and nothing else
    /// holds: the op adds its part into it and returns it, instead of a zero-filled full-size gradient to be summed.
    @TaskLocal public static var fillTarget: Tensor?
    /// During the backward pass of an op: the gradient it was given when nothing else holds it or its memory (no
    /// other gradient, no tensor of the forward pass), so the op may write its input's gradient over it
    /// (`gradientBuffer(reusing:shape:)`) instead of into a new buffer: one buffer less alive at once.
    @TaskLocal public static var exclusiveGradient: Tensor?

    /// The buffer an op's backward writes its input's gradient into: a new tensor over the memory of the gradient `g`
    /// it was given, when that is exclusive (`exclusiveGradient`) and of that shape, or a new tensor with memory of its
    /// own. (A new tensor either way: the IR names a gradient by its tensor, and a step records the same IR whether or
    /// not memory was reused, as a shape-only recording does.) The op must read each value of `g` before it writes the
    /// same place (an elementwise derivative, batch norm's second pass).
    public static func gradientBuffer(reusing g: Tensor, shape: [Int]) -> Tensor {
        // (not a storage that holds a format, whose codes would no longer match its values)
        if let e = exclusiveGradient, e === g, e.shape == shape, !e.isShapeOnly, e.storage.packFormat == nil {
            return Tensor(shape: shape, storage: e.storage)
        }
        return Tensor(uninitializedShape: shape)
    }

    /// Sends the gradient of an op's output to its inputs; `needs[i]` says whether input i wants one.
    public typealias Backward = (_ gradOutput: Tensor, _ needs: [Bool]) -> [Tensor?]

    struct Entry {
        let kind: OpKind
        let attributes: OpAttributes
        let scope: String?
        let inputs: [Ref]
        let output: Ref
        let backward: Backward?
        let flops: Double
        /// Copies the backward reads in place of inputs it does not hold (`note`'s `substitutes`), held here.
        let substitutes: [Tensor]
    }

    /// A tensor as an entry knows it: what backward routes its gradient by (its serial), what the IR says of it (shape,
    /// name, role), whether it wanted a gradient — and the tensor itself, held only when the op's backward reads it
    /// (its kind's `OpDefinition.saved`; what the tape packs and unpacks around backward), otherwise watched weakly.
    /// A value no backward reads (attention's scores before their softmax, a sum before its activation) is freed as
    /// soon as the forward ops that read it are done, as in PyTorch's autograd, not kept to the end of the step.
    struct Ref {
        let serial: Int
        let shape: [Int]
        let name: String?
        let role: TensorInfo.Role
        let requiresGrad: Bool
        private let held: Tensor?
        private weak var watched: Tensor?
        init(_ t: Tensor, holding: Bool) {
            serial = t.serial; shape = t.shape; name = t.name; role = t.role; requiresGrad = t.requiresGrad
            held = holding ? t : nil
            watched = t
        }
        /// Whether the entry holds the tensor (its backward reads it).
        var isHeld: Bool { held != nil }
        /// The tensor while anything holds it (the entry when saved, a closure, the caller); nil once freed.
        var tensor: Tensor? { held ?? watched }
        var count: Int { elementCount(shape) }
    }

    private(set) var entries: [Entry] = []
    /// Profiling (`profiling = true` before recording): seconds of each entry's forward op (the time since the previous
    /// op was noted, so the glue between ops counts with the op that follows it) and of its backward closure.
    public var profiling = false
    public private(set) var forwardSeconds: [Double] = []
    public private(set) var backwardSeconds: [Int: Double] = [:]
    private var lastNote = DispatchTime.now()
    private var backwardOps: [Op] = []
    private var optimizerOps: [(kind: OpKind, parameter: Tensor, state: Int)] = []

    /// Whether tensors exact in a Dojo format (`Storage.packFormat`) are kept packed, 1 or 2 bytes a value, between
    /// the ops that read them (issue 14 §2); `packsByDefault` unless a caller sets it.
    public var packsSavedValues = Tape.packsByDefault
    /// The default of `packsSavedValues` for tapes made now (on; off to measure what packing saves, or to compare).
    @TaskLocal public static var packsByDefault = true

    /// What the tape holds now, by the kind of op that made each value (values that no recorded op made, the
    /// step's inputs and parameters, are left out): bytes held in FP32 and bytes held packed, largest first.
    public var heldBytesByKind: [(kind: OpKind, fp32: Int, packed: Int)] {
        var seen = Set<ObjectIdentifier>()
        var byKind: [OpKind: (Int, Int)] = [:]
        for e in entries {
            guard let out = e.output.tensor, !out.isShapeOnly, seen.insert(ObjectIdentifier(out.storage)).inserted else { continue }
            let s = out.storage, held = s.bytesHeld
            let packed = s.isPacked ? held : 0
            byKind[e.kind, default: (0, 0)].0 += held - packed
            byKind[e.kind, default: (0, 0)].1 += packed
        }
        for e in entries {
            for t in e.substitutes where !t.isShapeOnly && seen.insert(ObjectIdentifier(t.storage)).inserted {
                let held = t.storage.bytesHeld, packed = t.storage.isPacked ? held : 0
                byKind[e.kind, default: (0, 0)].0 += held - packed
                byKind[e.kind, default: (0, 0)].1 += packed
            }
        }
        return byKind.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.fp32 + $0.packed > $1.fp32 + $1.packed }
    }

    /// The storages of the values this tape holds for backward (those large enough to pack, `Storage.packMinimum`),
    /// and how many of them are held packed now.
    public var savedStorages: (count: Int, packed: Int) {
        var seen = Set<ObjectIdentifier>(), packed = 0
        for e in entries {
            for t in (e.inputs + [e.output]).compactMap(\.tensor) + e.substitutes
            where t.count >= Storage.packMinimum && !t.isShapeOnly && seen.insert(ObjectIdentifier(t.storage)).inserted {
                if t.storage.isPacked { packed += 1 }
            }
        }
        return (seen.count, packed)
    }

    public init() {}

    /// With `profiling`: each recorded op's kind, input shapes and its forward and backward seconds, in order.
    public var profile: [(kind: OpKind, inputs: [[Int]], forward: Double, backward: Double)] {
        entries.enumerated().map { i, e in
            (e.kind, e.inputs.map(\.shape), i < forwardSeconds.count ? forwardSeconds[i] : 0, backwardSeconds[i] ?? 0)
        }
    }

    /// Runs `body` with this tape recording.
    public func record<T>(_ body: () throws -> T) rethrows -> T {
        lastNote = DispatchTime.now()
        return try Tape.$current.withValue(self) { try body() }
    }

    public static func withScope<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let full = scope.map { $0.isEmpty ? name : "\($0).\(name)" } ?? name
        return try $scope.withValue(full) { try body() }
    }

    /// Called by every op. Returns whether the output needs a gradient.
    /// - substitutes: inputs (by position) whose backward reads a copy made in a Dojo format instead of the input
    ///   itself (layer normalisation's FP32 input kept as BF16 codes): the entry holds the copy, not the input, which
    ///   is then freed once the forward ops reading it are done. The backward closure reads the copy.
    @discardableResult
    public static func note(_ kind: OpKind, inputs: [Tensor], output: Tensor, attributes: OpAttributes = OpAttributes(),
                            substitutes: [Int: Tensor] = [:], backward: Backward? = nil) -> Bool {
        guard let tape = current else { return false }
        // Every recorded op follows its kind's shape rule (DojoGraph's, the one the compiler and an importer read): an
        // op whose output the rule does not give is an engine bug, caught where it is made.
        let shapes = inputs.map(\.shape)
        do {
            let expected = try kind.outputShape(inputs: shapes, attributes: attributes)
            precondition(expected == output.shape, "\(kind.rawValue): the engine made \(output.shape) where the shape rule gives \(expected) for \(shapes)")
        } catch {
            preconditionFailure("the engine recorded an op its kind's shape rule refuses: \(error)")
        }
        let needsGrad = backward != nil && inputs.contains { $0.requiresGrad }
        output.requiresGrad = needsGrad
        let flops = kind.flops(inputs: shapes, outputs: [output.shape], attributes: attributes)
        // the entry holds what its backward reads, and only when there is a backward to run
        let saved = kind.definition.saved
        let entry = Entry(kind: kind, attributes: attributes, scope: scope,
                          inputs: inputs.enumerated().map { Ref($1, holding: needsGrad && saved.inputs.contains($0) && substitutes[$0] == nil) },
                          output: Ref(output, holding: needsGrad && saved.output),
                          backward: needsGrad ? backward : nil, flops: flops,
                          substitutes: needsGrad ? substitutes.sorted { $0.key < $1.key }.map(\.value) : [])
        tape.entries.append(entry)
        // an op that only moves values, or scales them by a power of two, keeps them exact in BF16 when they were
        // (`bf16Exact`: a GEMM reading the output may run on BF16 kernels)
        if !output.isShapeOnly, Tape.keepsValues(kind, attributes), !inputs.isEmpty, inputs.allSatisfy(BF16Operand.mayBeExact) {
            output.bf16Exact = true
        }
        // an op that only moves values (a transpose, a slice, a concatenation, a broadcast: its kind's gradient rule)
        // makes an output exact in its inputs' format when they all are in one: it can be packed as they are
        if tape.packsSavedValues, !output.isShapeOnly, inputs.allSatisfy({ $0.storage !== output.storage }) {
            switch kind.definition.gradient {
            case .movement, .fill:
                if let f = inputs.first?.storage.packFormat, inputs.dropFirst().allSatisfy({ $0.storage.packFormat == f }) {
                    output.storage.packFormat = f
                }
            default: break
            }
        }
        // the op is done reading its inputs: those a backward reads (this entry's or an earlier one's) and exact in a
        // Dojo format are kept as their codes until read again (`Storage.packAway`; an op whose output is a view of its
        // input leaves it for the op reading that view). One no backward reads is left as it is: it is freed once
        // nothing reads it, and packing it would be a pass for nothing.
        if tape.packsSavedValues {
            for (i, t) in inputs.enumerated() where t.storage !== output.storage {
                if entry.inputs[i].isHeld { t.storage.heldForBackward = true }
                if t.storage.heldForBackward { t.storage.packAway() }
            }
            if entry.output.isHeld { output.storage.heldForBackward = true }
        }
        if tape.profiling {
            let now = DispatchTime.now()
            tape.forwardSeconds.append(Double(now.uptimeNanoseconds &- tape.lastNote.uptimeNanoseconds) * 1e-9)
            tape.lastNote = now
        }
        return needsGrad
    }

    /// Whether an op's output (and its gradient, for all but a broadcast) holds exactly its input's values, moved or
    /// multiplied by a power of two: exact in BF16 when its input is (BF16 has FP32's exponents).
    static func keepsValues(_ kind: OpKind, _ attributes: OpAttributes) -> Bool {
        switch kind {
        case .transpose, .concat, .slice, .reshape, .broadcast: return true
        case .scale:
            guard let s = attributes.scalar.map(Float.init) else { return false }
            return s.isNormal && s.significandBitPattern == 0
        default: return false
        }
    }

    /// Gradients of `loss` (a one-element tensor) with respect to every tensor that requires one and took part.
    public func backward(from loss: Tensor) -> Gradients {
        Tape.$current.withValue(nil) { backwardPass(from: loss, watching: [], onReady: nil) }
    }

    /// The same, calling `onReady(tensor, gradient, exclusive)` for each of `watching` as soon as its gradient is
    /// final (the backward pass has gone past the first op that used it), while the rest of backward still runs:
    /// data-parallel training starts summing gradients over the ranks then. A watched tensor that took no part gets no
    /// call. `exclusive`: no memory of the gradient is shared with another gradient or with a tensor the rest of
    /// backward reads, so the caller may change it in place while backward goes on (an add's backward hands one
    /// gradient to both inputs; such a gradient is not exclusive). `scale` seeds backward with that value instead of 1:
    /// the gradients of `scale` × loss (a data-parallel rank's share of the global batch, without a pass to weight them).
    public func backward(from loss: Tensor, scale: Float = 1, watching: [Tensor],
                         onReady: (_ tensor: Tensor, _ gradient: Tensor, _ exclusive: Bool) -> Void) -> Gradients {
        let seed = scale == 1 ? nil : Tensor(repeating: scale, shape: loss.shape)
        return withoutActuallyEscaping(onReady) { f in
            Tape.$current.withValue(nil) { backwardPass(from: loss, seed: seed, watching: watching, onReady: f) }
        }
    }

    /// Gradients of `output` · `gradient` (a vector-Jacobian product): backward from any tensor the tape computed,
    /// given the gradient of the loss with respect to it. A pipeline stage runs its backward from the gradient of its
    /// output that the next stage sent; the gradient of its input (marked `requiringGrad()`) goes to the stage before.
    public func backward(from output: Tensor, gradient: Tensor) -> Gradients {
        precondition(gradient.shape == output.shape, "backward from \(output.shape) with a gradient of shape \(gradient.shape)")
        return Tape.$current.withValue(nil) { backwardPass(from: output, seed: gradient, watching: [], onReady: nil) }
    }

    private func backwardPass(from loss: Tensor, seed: Tensor? = nil, watching: [Tensor], onReady: ((Tensor, Tensor, Bool) -> Void)?) -> Gradients {
        precondition(seed != nil || loss.count == 1, "backward from a tensor of shape \(loss.shape); reduce it to one value first")
        // gradients by the serial of the tensor they are the gradient of
        var grads: [Int: Tensor] = [loss.serial: seed ?? Tensor(repeating: 1, shape: loss.shape)]
        // gradients made by fill ops (or summed from them) that nothing but `grads` holds: later parts fill into them
        // (by their own serials; one leaves the set when it leaves `grads`)
        var fillBuffers = Set<Int>()
        backwardOps.removeAll()
        backwardOpsIO.removeAll()
        // For each watched tensor, the first entry that used it: once backward has processed that entry, nothing
        // more is added to its gradient.
        var readyAt: [Int: [Tensor]] = [:]
        if onReady != nil, !watching.isEmpty {
            var pending = Dictionary(watching.map { ($0.serial, $0) }, uniquingKeysWith: { a, _ in a })
            for (index, entry) in entries.enumerated() where !pending.isEmpty {
                for t in entry.inputs { if let w = pending.removeValue(forKey: t.serial) { readyAt[index, default: []].append(w) } }
            }
        }
        // Packed values brought back by a backward op are packed away again once no backward op still to run reads
        // them: for each storage, the first entry whose backward reads it (by its kind's `saved` values, what its
        // backward reads); after the backward of an entry that holds the storage, at or before that reader, the
        // FP32 values are freed (read again anyway, they come back: this only decides when memory is given back)
        var firstReader: [ObjectIdentifier: Int] = [:]
        if packsSavedValues {
            for (index, entry) in entries.enumerated() where entry.backward != nil {
                let saved = entry.kind.definition.saved
                let read = saved.inputs.compactMap { $0 < entry.inputs.count ? entry.inputs[$0].tensor : nil }
                    + (saved.output ? [entry.output.tensor].compactMap { $0 } : []) + entry.substitutes
                for t in read where t.count >= Storage.packMinimum && firstReader[ObjectIdentifier(t.storage)] == nil {
                    firstReader[ObjectIdentifier(t.storage)] = index
                }
            }
        }
        // the storages of the forward pass's tensors still alive: a gradient sharing one is never written over
        var forwardStorages = Set<ObjectIdentifier>()
        for entry in entries { for t in (entry.inputs + [entry.output]).compactMap(\.tensor) { forwardStorages.insert(ObjectIdentifier(t.storage)) } }
        for (index, entry) in entries.enumerated().reversed() {
            defer {
                if packsSavedValues {
                    for t in (entry.inputs + [entry.output]).compactMap(\.tensor) + entry.substitutes where t.count >= Storage.packMinimum
                        && firstReader[ObjectIdentifier(t.storage)].map({ $0 >= index }) ?? true { t.storage.packAway() }
                }
                if let ready = readyAt[index], let onReady {
                    for t in ready {
                        if let g = grads[t.serial] { onReady(t, g, isExclusive(g, of: t, grads: grads, before: index)) }
                    }
                }
            }
            guard var gOut = grads.removeValue(forKey: entry.output.serial) else { continue }
            fillBuffers.remove(gOut.serial)
            guard let backward = entry.backward else { continue }
            let needs = entry.inputs.map(\.requiresGrad)
            let started = profiling ? DispatchTime.now() : DispatchTime(uptimeNanoseconds: 0)
            defer { if profiling { backwardSeconds[index] = Double(DispatchTime.now().uptimeNanoseconds &- started.uptimeNanoseconds) * 1e-9 } }
            // the slices of one tensor fill one gradient buffer (q, k and v of a fused projection: one buffer, not
            // three zero-filled ones and two sums)
            let fills = entry.kind.definition.gradient == .fill && entry.inputs.count == 1
            let fillTarget = fills ? grads[entry.inputs[0].serial].flatMap { fillBuffers.contains($0.serial) ? $0 : nil } : nil
            // nothing else holds the gradient (this is the only reference to it, and no other tensor shares its memory):
            // the op may write over it
            let exclusive = isKnownUniquelyReferenced(&gOut) && !gOut.isShapeOnly && !forwardStorages.contains(ObjectIdentifier(gOut.storage))
                && !grads.values.contains { $0.storage === gOut.storage }
            let gIns = Tape.$exclusiveGradient.withValue(exclusive ? gOut : nil) {
                fillTarget == nil ? backward(gOut, needs) : Tape.$fillTarget.withValue(fillTarget) { backward(gOut, needs) }
            }
            precondition(gIns.count == entry.inputs.count, "\(entry.kind) returned \(gIns.count) gradients for \(entry.inputs.count) inputs")
            // the gradient of an op that moves values (not a broadcast's: a sum) or scales them by a power of two is
            // exact in BF16 when the output's gradient is; a buffer that slices fill is while every part filled is
            if entry.kind != .broadcast, Tape.keepsValues(entry.kind, entry.attributes) {
                let exact = BF16Operand.mayBeExact(gOut)
                for case let g? in gIns where !g.isShapeOnly && g !== gOut {
                    if let target = fillTarget, g === target {
                        if !exact { g.bf16Exact = false }
                    } else {
                        g.bf16Exact = exact
                    }
                }
            }
            let shapes = entry.inputs.map(\.shape)
            backwardOps.append(Op(id: 0, kind: entry.kind, phase: .backward, scope: entry.scope,
                                  inputs: [], outputs: [], attributes: entry.attributes,
                                  flops: entry.kind.backwardFlops(forward: entry.flops, inputs: shapes,
                                                                  outputs: [entry.output.shape], needsGradient: needs),
                                  bytesRead: 0, bytesWritten: 0, forward: index))
            backwardOpsIO.append((entry.inputs.enumerated().filter { needs[$0.offset] }.map(\.element), entry.output, GradientRef(gOut), nil,
                                  entry.kind.backwardTraffic(inputs: shapes, output: entry.output.shape, needsGradient: needs)))
            for (i, g) in gIns.enumerated() where needs[i] {
                guard let g else { continue }
                precondition(g.shape == entry.inputs[i].shape, "\(entry.kind) gradient \(g.shape) for input \(entry.inputs[i].shape)")
                let id = entry.inputs[i].serial
                if let existing = grads[id], existing === g { continue }   // filled in place (`fillTarget`)
                if let existing = grads[id] {
                    // a value read twice in the forward pass: its two gradients summed, an op of its own in the IR
                    // (not for slices of one tensor: their gradients fill disjoint parts of one buffer)
                    grads[id] = existing.adding(g)
                    fillBuffers.remove(existing.serial)
                    if fills { fillBuffers.insert(grads[id]!.serial); continue }
                    let n = g.count
                    backwardOps.append(Op(id: 0, kind: .add, phase: .backward, scope: entry.scope, inputs: [], outputs: [],
                                          attributes: OpAttributes(accumulates: true), flops: Double(n),
                                          bytesRead: 0, bytesWritten: 0, forward: index))
                    backwardOpsIO.append(([], entry.inputs[i], GradientRef(g), GradientRef(existing), (2 * n, n)))
                } else {
                    grads[id] = g
                    if fills { fillBuffers.insert(g.serial) }
                }
            }
        }
        // What is left was never an op's output: the leaves (parameters and inputs that asked for a gradient).
        return Gradients(grads)
    }
    /// Per backward op: the inputs it made gradients for, the forward output, the gradient it got, and its traffic
    /// in values (`OpKind.backwardTraffic`; a sum of two gradients: 2 read, 1 written).
    /// A sum of two gradients has no inputs there but the gradient held before (`accumulated`), and the forward value
    /// whose gradient they are as its output. Gradients are noted by `GradientRef`, not held: the IR needs their shapes
    /// and identities, and holding them kept every gradient of the step alive to its end (backward's memory grew with
    /// every op).
    private var backwardOpsIO: [(inputs: [Ref], output: Ref, gradOutput: GradientRef, accumulated: GradientRef?,
                                 traffic: (read: Int, written: Int))] = []

    /// A gradient as the IR names it: its tensor's serial number and shape.
    struct GradientRef {
        let serial: Int
        let shape: [Int]
        init(_ t: Tensor) { serial = t.serial; shape = t.shape }
    }

    /// Whether `gradient` (of `tensor`) shares no memory with another gradient still held or with an input or output
    /// of the entries before `index` (those whose backward is still to run).
    private func isExclusive(_ gradient: Tensor, of tensor: Tensor, grads: [Int: Tensor], before index: Int) -> Bool {
        let lo = UInt(bitPattern: gradient.pointer), hi = lo + UInt(gradient.count * 4)
        func overlaps(_ other: Tensor) -> Bool {
            if other === gradient { return true }
            // a storage held as codes only (packed) has no FP32 memory a gradient could share
            guard !other.storage.isShapeOnly, other.count > 0, let a = other.storage.residentAddress else { return false }
            return a < hi && lo < a + UInt(other.count * 4)
        }
        if gradient === tensor || gradient.storage.isShapeOnly { return false }
        for (key, other) in grads where key != tensor.serial && overlaps(other) { return false }
        // (a forward value freed since holds no memory a gradient could share)
        for entry in entries[..<index] {
            if (entry.inputs + [entry.output]).contains(where: { $0.tensor.map(overlaps) ?? false }) { return false }
        }
        return true
    }

    /// The optimizer reports each parameter it updated, with how many state tensors it keeps per parameter.
    public func noteUpdate(_ kind: OpKind, parameter: Tensor, stateTensors: Int) {
        optimizerOps.append((kind, parameter, stateTensors))
    }

    /// With `profiling`: the seconds of each op of `graph` (this tape's `graph(model:batch:)`): a forward op its
    /// forward (the glue since the op before it included), a backward op its backward closure; a sum of a value's two
    /// gradients (`accumulates`) and optimizer ops 0 (the sum runs inside the closure its `forward` names, and the
    /// optimizer is not timed op by op here).
    public func seconds(of graph: Graph) -> [Double] {
        graph.ops.map { op in
            switch op.phase {
            case .forward: return op.id < forwardSeconds.count ? forwardSeconds[op.id] : 0
            case .backward: return op.attributes.accumulates == true ? 0 : op.forward.flatMap { backwardSeconds[$0] } ?? 0
            case .optimizer: return 0
            }
        }
    }

    /// The Graph IR of what this tape saw: forward ops in order, then backward ops, then optimizer updates.
    public func graph(model: String, batch: Int) -> Graph {
        var g = Graph(model: model, batch: batch)
        var ids: [Int: Int] = [:]
        func tensorID(_ t: Ref, role: TensorInfo.Role? = nil) -> Int {
            if let id = ids[t.serial] { return id }
            let id = g.tensors.count
            ids[t.serial] = id
            g.tensors.append(TensorInfo(id: id, name: t.name, shape: t.shape, role: role ?? t.role))
            return id
        }
        var gradientIDs: [Int: Int] = [:]
        func gradientID(_ r: GradientRef) -> Int {
            if let id = gradientIDs[r.serial] { return id }
            let id = g.tensors.count
            gradientIDs[r.serial] = id
            g.tensors.append(TensorInfo(id: id, name: nil, shape: r.shape, role: .gradient))
            return id
        }
        let produced = Set(entries.map(\.output.serial))
        for e in entries {
            let ins = e.inputs.map { t in tensorID(t, role: t.role == .parameter ? .parameter : (produced.contains(t.serial) ? .activation : .input)) }
            let out = tensorID(e.output, role: .activation)
            // the kind's byte rule: a view moves nothing; a lookup reads the rows it gathers (and the ids), not its table
            let read: Int, written: Int
            switch e.kind.definition.bytes {
            case .view: (read, written) = (0, 0)
            case .gathered: (read, written) = ((e.output.count + e.inputs.dropFirst().reduce(0) { $0 + $1.count }) * 4, e.output.count * 4)
            case .operands: (read, written) = (e.inputs.reduce(0) { $0 + $1.count * 4 }, e.output.count * 4)
            }
            g.ops.append(Op(id: g.ops.count, kind: e.kind, phase: .forward, scope: e.scope, inputs: ins, outputs: [out],
                            attributes: e.attributes, flops: e.flops, bytesRead: read, bytesWritten: written))
        }
        for (op, io) in zip(backwardOps, backwardOpsIO) {
            var op = op
            let gOut = gradientID(io.gradOutput)
            op.id = g.ops.count
            // a sum of two gradients reads the one held before (a gradient too) and makes the sum, the gradient of
            // the forward value read twice
            op.inputs = [gOut] + (io.accumulated.map { [gradientID($0)] } ?? io.inputs.map { tensorID($0) })
            op.outputs = (io.accumulated != nil ? [io.output] : io.inputs).map { t -> Int in
                let id = g.tensors.count
                g.tensors.append(TensorInfo(id: id, name: t.name.map { "grad(\($0))" }, shape: t.shape, role: .gradient))
                return id
            }
            op.bytesRead = io.traffic.read * 4
            op.bytesWritten = io.traffic.written * 4
            g.ops.append(op)
        }
        for u in optimizerOps {
            let p = tensorID(Ref(u.parameter, holding: false), role: .parameter)
            let f = u.kind.flops(inputs: [u.parameter.shape], outputs: [u.parameter.shape], attributes: OpAttributes())
            let bytes = u.parameter.count * 4
            g.ops.append(Op(id: g.ops.count, kind: u.kind, phase: .optimizer, scope: u.parameter.name, inputs: [p], outputs: [p],
                            attributes: OpAttributes(), flops: f, bytesRead: bytes * (2 + u.state), bytesWritten: bytes * (1 + u.state)))
        }
        return g
    }
}

/// Gradients by parameter.
public struct Gradients: @unchecked Sendable {
    /// by the serial of the tensor they are the gradient of
    private var byID: [Int: Tensor]
    init(_ byID: [Int: Tensor]) { self.byID = byID }
    /// None yet (a data-parallel rank with no examples in a step contributes zeros).
    public init() { byID = [:] }
    public subscript(_ t: Tensor) -> Tensor? {
        get { byID[t.serial] }
        set { byID[t.serial] = newValue }
    }
    public var count: Int { byID.count }
}

extension OpKind {
    /// The output shape of an engine op of this kind, by DojoGraph's shape rule; operands that do not fit are the
    /// caller's error (the rule's message says which).
    func engineShape(_ inputs: [[Int]], _ attributes: OpAttributes = OpAttributes()) -> [Int] {
        do { return try outputShape(inputs: inputs, attributes: attributes) } catch { preconditionFailure("\(error)") }
    }
}
