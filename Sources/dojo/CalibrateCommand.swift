import ArgumentParser
import Dispatch
import DojoDistributed
import DojoGraph
import DojoMachine
import DojoNN
import DojoReport
import DojoTensor
import Foundation

/// `dojo machine calibrate`: measures this machine (or a set of hosts) through the engine's own kernels and its MPI
/// path, and writes a machine file of kind `cpu` that `dojo sim` and `dojo validate --local` predict on.
extension MachineCommand {
    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure this machine through the engine's own kernels and MPI; write a cpu machine file for dojo sim.",
            discussion: """
            Measures, with the engine dojo train runs: convolution and matrix-product FLOP/s forward and backward at \
            the shapes of the zoo's small models (small-cnn, mlp, the occupancy network, ViT-Tiny; one thread, and the \
            scaling to every core), matrix products also by the byte of their operands and result (linear layers of four \
            more shapes timed for it: a 16-row layer costs more per FLOP than a transformer's MLP), each other op kind's \
            rate and fixed cost (the losses at two sizes; add forward over residual adds, backward over bias adds), the bandwidth of its \
            elementwise ops, its fixed cost per op, and over MPI (--ranks ranks, started with mpirun; with \
            --hostfile on those hosts) the all-reduce bandwidth and latency between ranks of a host and between \
            hosts. Writes a machine file of kind cpu in the presets' strict schema, every figure marked measured \
            with the date and the command; `dojo sim --machine FILE --model small-cnn --plan dp=2` then predicts the \
            step `dojo train --plan dp=2` runs, and `dojo validate --local` checks it. Takes about 10 s.
            """)

        @Option(name: .long, help: "The machine file to write (YAML).")
        var out: String

        @Option(name: .long, help: "The machine's name in the file. (default: host, or hostsN with a hostfile)")
        var name: String?

        @Option(name: .long, help: "MPI ranks for the network figures (1: none measured; default: 2, or every slot of --hostfile).")
        var ranks: Int?

        @Option(name: .long, help: "Measure between the hosts of this Open MPI hostfile (HOST slots=K a line), as dojo train --hostfile.")
        var hostfile: String?

        @Option(name: .long, help: "With --hostfile: the program mpirun starts its daemons with (default: ssh).")
        var launcher: String?

        @Option(name: .long, help: "With --hostfile: the network the ranks talk over, as CIDR.")
        var network: String?

        @Option(name: .customLong("mpi-part"), help: .hidden)
        var mpiPart: String?

        func validate() throws {
            if let ranks, !(1...256).contains(ranks) { throw ValidationError("--ranks must be 1…256, got \(ranks)") }
            if (launcher != nil || network != nil) && hostfile == nil { throw ValidationError("--launcher and --network go with --hostfile") }
            if mpiPart == nil {
                guard !out.isEmpty else { throw ValidationError("--out needs a file name (e.g. host.yaml)") }
                if let attributes = try? FileManager.default.attributesOfItem(atPath: out),
                   let type = attributes[.type] as? FileAttributeType, type != .typeRegular, type != .typeDirectory {
                    throw ValidationError("--out \(out) is \(type == .typeSymbolicLink ? "a symbolic link" : "a device or special file"); give a plain file name (e.g. host.yaml)")
                }
                if let name {
                    guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                        throw ValidationError("--name must be 1-64 letters, digits, '-', '_' or '.', got '\(name)'")
                    }
                }
                if let network, !isIPv4CIDR(network) {
                    throw ValidationError("--network must be an IPv4 network as CIDR (like 10.99.1.0/24), got '\(network)'")
                }
                if let hostfile { do { _ = try hostfileSlots(hostfile) } catch { throw ValidationError("\(error)") } }
                let folder = (out as NSString).deletingLastPathComponent
                var isDir: ObjCBool = false
                if !folder.isEmpty && !(FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) && isDir.boolValue) {
                    throw ValidationError("--out \(out): the folder \(folder) does not exist")
                }
                if FileManager.default.fileExists(atPath: out, isDirectory: &isDir), isDir.boolValue {
                    throw ValidationError("--out \(out) is a folder; give a file name (e.g. host.yaml)")
                }
                try UserFiles.checkWritable(out, what: "--out")   // before minutes of measuring (/proc/x said so after them)
            }
        }

        func run() throws {
            if let mpiPart { try NetworkProbe.runRank(resultPath: mpiPart); return }
            let started = Date()
            print("Calibrating this machine through the engine's kernels…")
            let compute = ComputeProbe.measure()
            print(compute.summary)
            var net = NetworkFigures()
            var hosts = 1, ranksPerHost = compute.cores
            var cores = compute.cores
            var sharedSpeed = 1.0, shareSeen = 1.0
            let slots = try hostfile.map { try hostfileSlots($0) }
            let n = ranks ?? slots ?? min(2, max(compute.cores, 2))
            if n > 1 {
                print("Measuring MPI between \(n) ranks\(hostfile.map { " on the hosts of \($0)" } ?? "")…")
                net = try NetworkProbe.launch(ranks: n, hostfile: hostfile, launcher: launcher, network: network)
                hosts = net.hosts
                ranksPerHost = max(1, n / max(1, hosts))
                // Hosts that share their cores (namespace hosts on one machine) show it: ranks computing at once
                // each get less than one rank alone.
                let alone = net.threads >= compute.cores ? compute.allSeconds : compute.aloneSeconds
                let share = min(1, alone / net.concurrentSeconds)
                shareSeen = share
                if let fewer = CPUSpec.sharedCores(share: share, visible: compute.cores, hosts: hosts, ranksPerHost: ranksPerHost) {
                    cores = fewer
                } else {
                    sharedSpeed = share
                }
                print(net.summary(share: share, cores: cores < compute.cores ? cores : nil))
            }
            let yaml = CalibrationFile(name: name ?? (hosts > 1 ? "hosts\(hosts)" : "host"), compute: compute, network: net,
                                       hosts: hosts, cores: cores, sharedSpeed: sharedSpeed, shareSeen: shareSeen, ranksPerHost: n > 1 ? ranksPerHost : compute.cores,
                                       command: CommandLine.arguments.joined(separator: " ")).text
            // Checked by the same strict decoder as every machine file before it is written.
            _ = try Machine.decode(yaml: yaml, file: (out as NSString).lastPathComponent)
            try UserFiles.write(Data(yaml.utf8), to: out, what: "--out")
            print("Wrote \(out) in \(formatDuration(Date().timeIntervalSince(started))) (dojo machine show \(out); dojo sim --machine \(out) …)")
        }
    }
}

/// Seconds per call of `body`: the best of three trials of enough calls to last `trial` seconds.
func secondsPerCall(trial: Double = 0.06, _ body: () -> Void) -> Double {
    body()   // warm: first-call allocations and oneDNN primitive creation
    var calls = 1
    var t0 = Date()
    body()
    let once = max(Date().timeIntervalSince(t0), 1e-7)
    calls = max(1, min(100_000, Int(trial / once)))
    var best = Double.infinity
    for _ in 0..<3 {
        t0 = Date()
        for _ in 0..<calls { body() }
        best = min(best, Date().timeIntervalSince(t0) / Double(calls))
    }
    return best
}

/// The engine's compute, measured through its own ops.
struct ComputeProbe {
    var cores = 1
    var model = "unknown CPU"
    var memoryBytes = 0.0
    var threadEfficiency = 1.0
    var streamBandwidth = 0.0
    var opOverhead = 0.0
    /// Seconds of a step outside its ops (the trainer's and the tape's own work), and of one pass over `steps` alone.
    var stepOverhead = 0.0
    var aloneSeconds = 0.0
    /// The same pass on every core.
    var allSeconds = 0.0
    /// Fitted per op kind and direction: rate, fixed cost, speed-up on every core, and the ops it was fitted on.
    var ops: [String: (forward: Fit, backward: Fit?)] = [:]

    /// `byteRate` (matrix kinds): bytes of operands and result per second beside the FLOP rate (`OpRate`), nil when the
    /// ops measured do not tell the two apart.
    struct Fit { var rate: Double; var overhead: Double; var speedup: Double; var samples: Int; var byteRate: Double? = nil }
    struct Key: Hashable { var kind: OpKind; var phase: Phase }
    struct Sample { var work: Double; var bytes: Double; var seconds: Double }
    /// What one pass over `steps` measured: each op's work and seconds by kind and direction, the seconds outside
    /// the ops per step, and the pass's seconds.
    struct Pass {
        /// Each op's work (FLOPs for matrix kinds, else bytes), its bytes read and written, and its seconds.
        var samples: [Key: [Sample]] = [:]; var outside = 0.0; var seconds = 0.0

        /// Passes over the same steps merged: each op's median seconds over them (ops in the same order in each), and
        /// the median of their step overheads and of their seconds.
        static func median(_ passes: [Pass]) -> Pass {
            guard let first = passes.first else { return Pass() }
            let mid = ComputeProbe.median
            var out = Pass()
            for (key, ops) in first.samples {
                out.samples[key] = ops.indices.map { i in
                    Sample(work: ops[i].work, bytes: ops[i].bytes,
                           seconds: mid(passes.compactMap { p in p.samples[key].flatMap { i < $0.count ? $0[i].seconds : nil } }))
                }
            }
            out.outside = mid(passes.map(\.outside))
            out.seconds = mid(passes.map(\.seconds))
            return out
        }
    }

    /// Training steps measured op by op: the zoo's small models at their data's shapes, at batches unlike those
    /// `dojo validate --local` runs (so the fitted rates must carry over to other sizes).
    /// ViT-Tiny for a transformer's kinds (GELU, layer norm, softmax, attention's batched products and permutes), which
    /// the others lack: without it they were priced at the elementwise bandwidth (a ViT step's GELU backward 100× under
    /// its measured time) and its GEMMs at the small models' skinny ones' rate.
    static let steps: [(model: String, input: [Int], batch: Int)] = [
        ("small-cnn", [1, 28, 28], 24), ("mlp", [1, 28, 28], 24), ("occupancy", [4, 3, 32, 32], 6), ("vit-tiny", [1, 28, 28], 3),
    ]

    static func measure() -> ComputeProbe {
        var p = ComputeProbe()
        p.cores = ProcessInfo.processInfo.activeProcessorCount
        p.memoryBytes = Double(ProcessInfo.processInfo.physicalMemory)
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let v = line.split(separator: ":", maxSplits: 1).last {
            p.model = v.trimmingCharacters(in: .whitespaces)
        }
        let saved = ComputeThreads.count
        defer { ComputeThreads.set(saved) }
        ComputeThreads.set(1)
        var g = RandomSource(seed: 7)
        // The fixed cost of an op: a chain of tiny additions recorded on a tape, and their backward pass.
        let a = Tensor.randomNormal([4], generator: &g), b = Tensor.randomNormal([4], generator: &g).requiringGrad()
        let chain = 200
        let forward = secondsPerCall { let t = Tape(); _ = t.record { (0..<chain).reduce(a) { h, _ in h.adding(b) } } }
        let tape = Tape()
        let end = tape.record { (0..<chain).reduce(a) { h, _ in h.adding(b) } }
        let seed = Tensor(repeating: 1, shape: end.shape)
        let backward = secondsPerCall { _ = tape.backward(from: end, gradient: seed) }
        p.opOverhead = (forward + backward) / Double(2 * chain)
        // Elementwise bandwidth: an addition of two 1 MiB tensors reads 2 MiB and writes 1 MiB.
        let x = Tensor.randomNormal([1 << 18], generator: &g), y = Tensor.randomNormal([1 << 18], generator: &g)
        let add = secondsPerCall { _ = x.adding(y) }
        p.streamBandwidth = Double(3 * 4 << 18) / max(add - p.opOverhead, 1e-9)
        // One thread and every core in turns, `rounds` times, each op's median over the turns: a change of the VM's
        // speed between the two (a shared host's neighbours) lands on both sides of the speed-up instead of one. One
        // pass on one thread, then one on every core, read 48–82 % of linear between calibrations minutes apart.
        var ones: [Pass] = [], alls: [Pass] = []
        for _ in 0..<rounds {
            ones.append(profile(threads: 1, reps: repsPerRound))
            if p.cores > 1 { alls.append(profile(threads: p.cores, reps: repsPerRound)) }
        }
        let one = Pass.median(ones)
        p.stepOverhead = one.outside
        p.aloneSeconds = one.seconds
        p.allSeconds = one.seconds
        p.ops = fitAll(one, overhead: p.opOverhead)
        if p.cores > 1 {
            // every core: each kind's speed-up, measured (the engine's own loops split only large work; oneDNN's scale)
            let all = Pass.median(alls)
            p.allSeconds = all.seconds
            for (kind, e) in p.ops {
                func speedup(_ phase: Phase) -> Double {
                    guard let k = OpKind(rawValue: kind) else { return 1 }
                    let t1 = one.samples[Key(kind: k, phase: phase)]?.map(\.seconds).reduce(0, +) ?? 0
                    let tn = all.samples[Key(kind: k, phase: phase)]?.map(\.seconds).reduce(0, +) ?? 0
                    return t1 > 0 && tn > 0 ? min(Double(p.cores), max(0.25, t1 / tn)) : 1
                }
                var f = e.forward; f.speedup = speedup(.forward)
                var bw = e.backward; bw?.speedup = speedup(.backward)
                p.ops[kind] = (f, bw)
            }
            p.threadEfficiency = min(1, one.seconds / all.seconds / Double(p.cores))
        }
        return p
    }

    /// The median of `v` (0 for none).
    static func median(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    /// Turns of one thread and every core (`measure`), and repeats of each model's step in a turn (the first 2 of a
    /// turn dropped).
    static let rounds = 3, repsPerRound = 4

    /// One pass over `steps` (`reps` training steps of each model, the first 2 dropped: they create kernels and
    /// allocate), op by op, on `threads` threads.
    static func profile(threads: Int, reps: Int = 7) -> Pass {
        ComputeThreads.set(threads)
        KernelCaches.removeAll()   // oneDNN keeps the thread count a primitive was made with
        var pass = Pass()
        var outsides: [Double] = []
        for s in steps {
            guard let entry = try? ModelZoo.entry(s.model),
                  let net = try? ModelZoo.make(s.model, inputShape: s.input, classes: 10, gridSize: 16, seed: 0) else { continue }
            var g = RandomSource(seed: 3)
            let x = Tensor.randomNormal([s.batch] + s.input, generator: &g)
            // the model's own recipe: SGD with momentum for the classifiers, AdamW for the occupancy network
            let optimizer: Optimizer = entry.optimizer == "adamw" ? AdamW() : SGD(momentum: 0.9)
            // every op of the step, in the same order each time: its kind and direction, work, and seconds per repeat
            var ops: [(key: Key, work: Double, bytes: Double, fitted: Bool, seconds: [Double])] = []
            var walls: [Double] = []
            for rep in 0..<reps {
                let wall0 = DispatchTime.now()
                let tape = Tape()
                tape.profiling = true
                let loss = tape.record {
                    Module.$context.withValue(ForwardContext(training: true)) { () -> Tensor in
                        let out = net(x)
                        switch entry.task {
                        case .occupancy: return out.binaryCrossEntropyWithLogits(targets: Tensor(zeros: out.shape), positiveWeight: 2)
                        default: return out.crossEntropy(labels: (0..<s.batch).map { Int32($0 % 10) })
                        }
                    }
                }
                let grads = tape.backward(from: loss)
                // the optimizer, one parameter at a time
                var updates: [Double] = []
                for p in net.parameters {
                    let t0 = DispatchTime.now()
                    optimizer.step([p], gradients: grads, learningRate: 1e-4, tape: tape)
                    updates.append(Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) * 1e-9)
                }
                let wall = Double(DispatchTime.now().uptimeNanoseconds - wall0.uptimeNanoseconds) * 1e-9
                guard rep >= 2 else { continue }   // the first steps create kernels and allocate
                let graph = tape.graph(model: s.model, batch: s.batch)
                var u = 0, inOps = 0.0, i = 0
                let timed = tape.seconds(of: graph)
                for op in graph.ops {
                    var t = timed[op.id]
                    if op.phase == .optimizer { t = u < updates.count ? updates[u] : 0; u += 1 }   // timed above, one by one
                    inOps += t
                    if i == ops.count {
                        let bytes = Double(op.bytesRead + op.bytesWritten)
                        ops.append((Key(kind: op.kind, phase: op.phase == .optimizer ? .forward : op.phase),
                                    op.kind.isMatrixOp ? op.flops : bytes, bytes, Self.fitsItsKind(op, in: graph), []))
                    }
                    if i < ops.count { ops[i].seconds.append(t) }
                    i += 1
                }
                walls.append(wall)
                outsides.append(max(0, wall - inOps))
            }
            // each op's median over the repeats: one preempted repeat does not move the fit
            for op in ops where op.fitted {
                pass.samples[op.key, default: []].append(Sample(work: op.work, bytes: op.bytes, seconds: median(op.seconds)))
            }
            pass.seconds += median(walls)
        }
        pass.outside = median(outsides)
        lossProbe(into: &pass, reps: reps)
        gemmProbe(into: &pass, reps: reps)
        return pass
    }

    /// Whether `op` enters its kind's fit. An `add` does work in one direction only, by its operands: a linear layer's
    /// bias add (an `add` of a parameter) is done inside the layer's GEMM forward (the product's measured time holds it)
    /// and is the bias's column sums backward; an add of two activations (a residual) is a pass forward and hands its
    /// gradient through backward. So `add` is fitted forward over residual adds and backward over bias adds (the linear
    /// layers of `gemmProbe` among them, up to 1.5 MB), and `CPUCostModel` prices the other direction at the fixed cost.
    /// (Fitted over both, the rates went to infinity: ViT's residual adds were priced at nothing.) A gradient summed into
    /// another (`accumulates`) is timed 0 by construction (its time is in the backward that made it) and fits nothing:
    /// 24 such zeros a ViT step, weighted 1/t², had pinned `add`'s backward fit at a zero cost.
    static func fitsItsKind(_ op: Op, in graph: Graph) -> Bool {
        // a gradient summed into another (`accumulates`) is timed with the op whose backward made it: 0 of its own
        if op.attributes.accumulates == true { return false }
        guard op.kind == .add else { return true }
        let forward = op.phase == .backward ? op.forward.flatMap { graph.ops.indices.contains($0) ? graph.ops[$0] : nil } : op
        let bias = forward?.inputs.contains { graph.tensor($0)?.role == .parameter } == true
        return bias == (op.phase == .backward)
    }

    /// The losses at two sizes each: in the steps above each loss runs at one size only (10 classes, a 16 × 16 grid),
    /// and a fit through one size cannot tell its fixed cost from its rate (it spread the fixed cost over a few bytes:
    /// small-cnn's 1,000-class loss was priced at 3× its time). Logits of rows × columns: the first size the steps'
    /// own, the second larger than what `dojo validate --local` runs.
    static let lossSizes: [(kind: OpKind, rows: Int, columns: Int)] = [
        (.crossEntropy, 24, 10), (.crossEntropy, 96, 1000), (.bceWithLogits, 6, 256), (.bceWithLogits, 48, 1024),
    ]

    static func lossProbe(into pass: inout Pass, reps: Int) {
        var g = RandomSource(seed: 11)
        for size in lossSizes {
            let logits = Tensor.randomNormal([size.rows, size.columns], generator: &g).requiringGrad()
            let targets = Tensor(zeros: [size.rows, size.columns])
            let labels = (0..<size.rows).map { Int32($0 % size.columns) }
            var timed: [Key: (work: Double, seconds: [Double])] = [:]
            for rep in 0..<reps {
                let tape = Tape()
                tape.profiling = true
                let loss = tape.record {
                    size.kind == .crossEntropy ? logits.crossEntropy(labels: labels)
                                               : logits.binaryCrossEntropyWithLogits(targets: targets, positiveWeight: 2)
                }
                _ = tape.backward(from: loss)
                guard rep >= 2 else { continue }
                let graph = tape.graph(model: "loss", batch: size.rows)
                let seconds = tape.seconds(of: graph)
                for op in graph.ops where op.kind == size.kind {
                    let key = Key(kind: op.kind, phase: op.phase)
                    timed[key, default: (Double(op.bytesRead + op.bytesWritten), [])].seconds.append(seconds[op.id])
                }
            }
            for (key, t) in timed { pass.samples[key, default: []].append(Sample(work: t.work, bytes: t.work, seconds: median(t.seconds))) }
        }
    }

    /// Linear layers (x·Wᵀ + b, forward and backward) of shapes the steps above lack, rows × inputs → outputs: few rows
    /// and wide weights (the occupancy network's lift: 16 rows), a short reduction (a weight gradient over 16 rows), and
    /// a large square-ish product (a transformer's MLP). They tell a GEMM's cost by the byte from its cost by the FLOP
    /// (`fitAll`); the steps alone have few products of either kind.
    static let gemmSizes: [(rows: Int, inputs: Int, outputs: Int)] = [(16, 2048, 1024), (512, 192, 768), (256, 256, 256), (2048, 64, 64)]

    static func gemmProbe(into pass: inout Pass, reps: Int) {
        var g = RandomSource(seed: 13)
        for size in gemmSizes {
            let x = Tensor.randomNormal([size.rows, size.inputs], generator: &g).requiringGrad()
            let w = Tensor.randomNormal([size.outputs, size.inputs], generator: &g).requiringGrad()
            let b = Tensor.randomNormal([size.outputs], generator: &g).requiringGrad()
            var timed: [Key: (work: Double, bytes: Double, seconds: [Double])] = [:]
            for rep in 0..<reps {
                let tape = Tape()
                tape.profiling = true
                let y = tape.record { x.linear(weight: w, bias: b) }
                _ = tape.backward(from: y, gradient: Tensor(repeating: 1, shape: y.shape))
                guard rep >= 2 else { continue }
                let graph = tape.graph(model: "linear", batch: size.rows)
                let seconds = tape.seconds(of: graph)
                // the products, and the bias add's backward (its column sums) for `add`'s fit
                for op in graph.ops where op.kind == .matmul || (op.kind == .add && op.phase == .backward) {
                    let key = Key(kind: op.kind, phase: op.phase), bytes = Double(op.bytesRead + op.bytesWritten)
                    timed[key, default: (op.kind == .matmul ? op.flops : bytes, bytes, [])].seconds.append(seconds[op.id])
                }
            }
            for (key, t) in timed { pass.samples[key, default: []].append(Sample(work: t.work, bytes: t.bytes, seconds: median(t.seconds))) }
        }
    }

    /// For each op kind and direction, time = overhead + work ÷ rate over every op of that kind (work: FLOPs for matrix
    /// kinds, bytes for the rest), by least squares on the relative error: every op counts alike, so one slow small op
    /// (a first convolution's weight gradient) cannot lift the fixed cost of every op of its kind, as it did when the
    /// largest ops weighed most (a 0.46 ms fixed cost per convolution backward: small micro-batches were priced far
    /// above what they took).
    static func fitAll(_ pass: Pass, overhead: Double) -> [String: (forward: Fit, backward: Fit?)] {
        func fit(_ samples: [Sample], matrix: Bool) -> Fit {
            if matrix, let f = fitWithBytes(samples) { return f }
            return fit(samples.map { ($0.work, $0.seconds) })
        }
        func fit(_ pts: [(Double, Double)]) -> Fit {
            // weights 1 / t²: the squared relative error
            let w = pts.map { 1 / max($0.1 * $0.1, 1e-18) }
            let sw = w.reduce(0, +)
            let mx = zip(w, pts).map { $0 * $1.0 }.reduce(0, +) / sw, mt = zip(w, pts).map { $0 * $1.1 }.reduce(0, +) / sw
            let vx = zip(w, pts).map { $0 * ($1.0 - mx) * ($1.0 - mx) }.reduce(0, +)
            var slope = 0.0, intercept = mt
            if vx > 0 {
                slope = zip(w, pts).map { $0 * ($1.0 - mx) * ($1.1 - mt) }.reduce(0, +) / vx
                intercept = mt - slope * mx
            }
            if vx == 0 && mx == 0 {
                intercept = mt   // work the graph does not count (a reshape that copies): a fixed cost
            } else if vx == 0 || slope <= 0 || intercept < 0 {
                // one size, or noise: the measured fixed cost, the rest over the work
                intercept = min(overhead, mt)
                slope = mx > 0 ? max(mt - intercept, 0) / mx : 0
            }
            return Fit(rate: slope > 0 ? 1 / slope : 1e15, overhead: intercept, speedup: 1, samples: pts.count)
        }
        var out: [String: (forward: Fit, backward: Fit?)] = [:]
        for kind in Set(pass.samples.keys.map(\.kind)) {
            guard let f = pass.samples[Key(kind: kind, phase: .forward)] else { continue }
            let matrix = kind == .matmul
            out[kind.rawValue] = (fit(f, matrix: matrix), pass.samples[Key(kind: kind, phase: .backward)].map { fit($0, matrix: matrix) })
        }
        return out
    }

    /// time = overhead + FLOPs ÷ rate + bytes ÷ byte rate by least squares on the relative error (as `fitAll`'s), for the
    /// matrix products: nil when a coefficient comes out negative or the products do not tell FLOPs from bytes (the
    /// one-rate fit then).
    static func fitWithBytes(_ samples: [Sample]) -> Fit? {
        guard samples.count >= 4 else { return nil }
        // weighted normal equations over (1, FLOPs, bytes), weights 1 / t², scaled to keep them well conditioned
        let fs = samples.map(\.work).max() ?? 1, bs = samples.map(\.bytes).max() ?? 1
        guard fs > 0, bs > 0 else { return nil }
        var a = [[Double]](repeating: [Double](repeating: 0, count: 3), count: 3), r = [Double](repeating: 0, count: 3)
        for s in samples where s.seconds > 0 {
            let w = 1 / (s.seconds * s.seconds), v = [1, s.work / fs, s.bytes / bs]
            for i in 0..<3 { r[i] += w * v[i] * s.seconds; for j in 0..<3 { a[i][j] += w * v[i] * v[j] } }
        }
        guard let c = solve3(a, r), c[0] >= 0, c[1] > 0, c[2] > 0 else { return nil }
        return Fit(rate: fs / c[1], overhead: c[0], speedup: 1, samples: samples.count, byteRate: bs / c[2])
    }

    /// a·x = r for 3 × 3 a by Gaussian elimination with partial pivoting; nil when singular.
    static func solve3(_ a0: [[Double]], _ r0: [Double]) -> [Double]? {
        var a = a0, r = r0
        for col in 0..<3 {
            guard let p = (col..<3).max(by: { abs(a[$0][col]) < abs(a[$1][col]) }), abs(a[p][col]) > 1e-12 * max(1, abs(a[col][col])) else { return nil }
            a.swapAt(col, p); r.swapAt(col, p)
            for row in (col + 1)..<3 {
                let f = a[row][col] / a[col][col]
                for j in col..<3 { a[row][j] -= f * a[col][j] }
                r[row] -= f * r[col]
            }
        }
        var x = [Double](repeating: 0, count: 3)
        for i in stride(from: 2, through: 0, by: -1) {
            var t = r[i]
            for j in (i + 1)..<3 { t -= a[i][j] * x[j] }
            x[i] = t / a[i][i]
        }
        return x.allSatisfy(\.isFinite) ? x : nil
    }

    var summary: String {
        let conv = ops["conv2d"], mm = ops["matmul"]
        return "  \(model), \(cores) core\(cores == 1 ? "" : "s"): convolutions \(formatFlopRate(conv?.forward.rate ?? 0)) forward, \(formatFlopRate(conv?.backward?.rate ?? 0)) backward; "
            + "matrix products \(formatFlopRate(mm?.forward.rate ?? 0)) / \(formatFlopRate(mm?.backward?.rate ?? 0)) (one thread); "
            + "\(formatPercent(threadEfficiency)) of linear on \(cores) threads; elementwise \(formatBytes(streamBandwidth))/s; "
            + "\(formatMicros(opOverhead)) per op; \(ops.count) op kinds fitted"
    }
}

func formatFlopRate(_ flops: Double) -> String { String(format: "%.2f GFLOP/s", flops / 1e9) }
func formatMicros(_ s: Double) -> String { String(format: "%.1f µs", s * 1e6) }

/// What the MPI ranks measured.
struct NetworkFigures: Codable {
    var hosts = 1
    var ranks = 1
    var localBandwidth = 0.0, localLatency = 0.0
    var hostBandwidth = 0.0, hostLatency = 0.0
    /// Seconds of the calibration steps on one thread while every rank runs them at once (hosts that share cores, or
    /// their memory, show more than one rank alone).
    var concurrentSeconds = 0.0
    /// The threads each rank used for it.
    var threads = 1

    /// `cores`: what each host really has, where fewer than it shows (`sharedCores`).
    func summary(share: Double, cores: Int?) -> String {
        // (share: one rank alone ÷ every rank at once)
        var s = "  all-reduce between ranks of a host: \(formatBytes(localBandwidth))/s bus bandwidth, \(formatMicros(localLatency)) a step"
        if hosts > 1 { s += "; between \(hosts) hosts: \(formatBytes(hostBandwidth))/s, \(formatMicros(hostLatency)) a step" }
        s += "; ranks computing at once each reach \(formatPercent(share)) of one alone"
        if let cores {
            s += hosts > 1 ? " (the hosts share their cores: \(cores) core\(cores == 1 ? "" : "s") a host)"
                           : " (fewer cores than the host shows: \(cores))"
        }
        else if share < 0.95 { s += " (they share caches and memory: shared_speed)" }
        return s
    }
}

enum NetworkProbe {
    /// Runs the ranks under mpirun (as dojo train --ranks does) and reads what rank 0 wrote.
    static func launch(ranks n: Int, hostfile: String?, launcher: String?, network: String?) throws -> NetworkFigures {
        guard let mpirun = mpirunPath else {
            throw CLIError("measuring MPI needs Open MPI's mpirun: install openmpi-bin (or give --ranks 1 to skip the network figures)")
        }
                let result = NSTemporaryDirectory() + "dojo-calibrate-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: result) }
        var argv = ["-n", "\(n)", "--bind-to", "none"]
        if geteuid() == 0 { argv.append("--allow-run-as-root") }
        if let hostfile {
            argv += ["--hostfile", hostfile]
            if let launcher { argv += ["--mca", "plm_rsh_agent", launcher] }
            if let network { argv += ["--mca", "btl_tcp_if_include", network, "--mca", "oob_tcp_if_include", network] }
        } else if n > ProcessInfo.processInfo.activeProcessorCount {
            argv.append("--oversubscribe")
        }
        argv += [selfExecutable, "machine", "calibrate", "--out", "/dev/null", "--mpi-part", result]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = argv
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        ChildProcesses.shared.install()
        try p.run()
        ChildProcesses.shared.add(p)
        defer { ChildProcesses.shared.remove(p) }
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate(); throw CLIError("the MPI ranks did not finish within 120 s (a host or --launcher that does not answer)") }
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: result) else {
            let line = text.split(separator: "\n").first { $0.hasPrefix("Error") || $0.contains("ORTE") || $0.contains("not") } ?? "exit status \(p.terminationStatus)"
            throw CLIError("the MPI measurement failed: \(line)")
        }
        return try JSONDecoder().decode(NetworkFigures.self, from: data)
    }

    /// One rank: the ranks of each host sum buffers among themselves, then one rank per host across hosts; every
    /// rank measures a convolution at once; rank 0 writes the figures.
    static func runRank(resultPath: String) throws {
        let world = try MPIGroup()
        defer { world.finish() }
        var figures = NetworkFigures()
        figures.ranks = world.size
        var names: [String] = []
        for h in world.hosts where !names.contains(h) { names.append(h) }
        figures.hosts = names.count
        let local = try world.subgroup(color: names.firstIndex(of: world.host) ?? 0)
        // every rank runs the calibration steps at once, one thread each
        try barrier(world)
        // with the threads dojo train gives each rank: the host's cores over its ranks
        figures.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local.size))
        var seconds = ComputeProbe.profile(threads: figures.threads, reps: 4).seconds
        try world.allReduceSum(&seconds, count: 1)
        figures.concurrentSeconds = seconds / Double(world.size)
        if local.size > 1 {
            (figures.localBandwidth, figures.localLatency) = try allReduceFigures(local)
        }
        let leaders = try world.subgroup(color: local.rank == 0 ? 0 : 1)
        if names.count > 1 && local.rank == 0 {
            (figures.hostBandwidth, figures.hostLatency) = try allReduceFigures(leaders)
        }
        try barrier(world)
        if world.rank == 0 {
            // ranks alone on their hosts: the local figures are the shared-memory ones of a pair elsewhere; none here
            if figures.localBandwidth == 0 { figures.localBandwidth = figures.hostBandwidth; figures.localLatency = figures.hostLatency }
            try JSONEncoder().encode(figures).write(to: URL(fileURLWithPath: resultPath))
        }
    }

    static func barrier(_ g: DataParallelGroup) throws {
        var x: Float = 0
        try g.allReduceSum(&x, count: 1)
    }

    /// Bus bandwidth (2(n−1)/n × bytes ÷ time) of 4 MiB sums and the time of one step of a one-value sum, through
    /// the same polled all-reduce training uses.
    static func allReduceFigures(_ g: DataParallelGroup) throws -> (Double, Double) {
        let count = 1 << 20
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        let n = Double(g.size)
        try barrier(g)
        try g.allReduceSum(buffer, count: count)   // warm
        var best = Double.infinity
        for _ in 0..<3 {
            try barrier(g)
            let t0 = Date()
            for _ in 0..<5 { try g.allReduceSum(buffer, count: count) }
            best = min(best, Date().timeIntervalSince(t0) / 5)
        }
        let bandwidth = 2 * (n - 1) / n * Double(4 * count) / best
        var one: Float = 1
        var batches: [Double] = []
        for _ in 0..<5 {   // the median of 5 batches of 40: a preempted batch does not move it
            try barrier(g)
            let t0 = Date()
            for _ in 0..<40 { try g.allReduceSum(&one, count: 1) }
            batches.append(Date().timeIntervalSince(t0) / 40)
        }
        let small = batches.sorted()[2]
        let steps = min(n - 1, 2 * ceil(log2(n)))
        return (bandwidth, small / (2 * max(steps, 1)))
    }
}

/// The machine file calibrate writes.
struct CalibrationFile {
    let name: String
    let compute: ComputeProbe
    let network: NetworkFigures
    let hosts: Int, cores: Int, sharedSpeed: Double, shareSeen: Double, ranksPerHost: Int
    let command: String

    func opsText(_ how: String) -> String {
        func v(_ x: Double, _ unit: String) -> String { String(format: "%.6g", x) + unit }
        var lines: [String] = []
        for kind in compute.ops.keys.sorted() {
            let e = compute.ops[kind]!
            let unit = OpKind(rawValue: kind)?.isMatrixOp == true ? "FLOP/s" : "B/s"
            func phase(_ name: String, _ f: ComputeProbe.Fit) -> String {
                "      \(name): {rate: {value: \(v(f.rate, unit)), measured: \"\(how): \(f.samples) ops\"}, overhead: {value: \(v(f.overhead, "s")), measured: \"\(how)\"}, speedup: {value: \(String(format: "%.4f", f.speedup)), measured: \"\(how): on \(compute.cores) threads\"}"
                    + (f.byteRate.map { ", byte_rate: {value: \(v($0, "B/s")), measured: \"\(how): \(f.samples) ops, beside the FLOP rate\"}" } ?? "") + "}"
            }
            lines.append("    \(kind):")
            lines.append(phase("forward", e.forward))
            if let b = e.backward { lines.append(phase("backward", b)) }
        }
        return lines.joined(separator: "\n")
    }

    var text: String {
        let date = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withFullDate])
        let how = "dojo machine calibrate, \(date)"
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        func v(_ x: Double, _ unit: String) -> String { String(format: "%.6g", x) + unit }
        let local = network.localBandwidth > 0
        return """
        # OpenDojo machine description of CPU hosts running OpenDojo's own engine, measured by
        #   \(command)
        # on \(date). Every rate is the engine's own (its oneDNN kernels and Swift loops), so dojo sim on this file predicts
        # the steps dojo train runs here (dojo validate --local checks it). Re-run calibrate after changing the machine.
        name: \(name)
        kind: cpu
        summary: \(q("\(hosts) host\(hosts == 1 ? "" : "s") × \(cores) core\(cores == 1 ? "" : "s") (\(compute.model)), measured \(date)"))
        count: \(hosts)
        cpu:
          model: \(q(compute.model))
          cores: {value: \(cores), measured: \(q(how + (cores < compute.cores ? ": \(compute.cores) cores visible, but ranks computing at once on all hosts reach \(formatPercent(shareSeen)) of one rank alone (hosts sharing their cores)" : ": cores the engine's threads use")))}
          ranks_per_host: {value: \(ranksPerHost), assumption: "ranks per host (devices); dojo sim --plan sets it from the plan's ranks, as dojo train --ranks places them"}
          memory_bytes: {value: \(v(compute.memoryBytes, "B")), measured: \(q(how + ": physical memory"))}
          thread_efficiency: {value: \(String(format: "%.4f", compute.threadEfficiency)), measured: \(q(how + ": the calibration steps on \(compute.cores) threads, speed-up ÷ \(compute.cores) (for op kinds without their own)"))}
          shared_speed: {value: \(String(format: "%.4f", sharedSpeed)), measured: \(q(how + (network.ranks > 1 ? ": the calibration steps, \(network.ranks) ranks at once vs one alone (memory and caches they share)" : ": no ranks measured at once")))}
          step_overhead: {value: \(v(compute.stepOverhead, "s")), measured: \(q(how + ": a training step's time outside its ops"))}
          stream_bandwidth: {value: \(v(compute.streamBandwidth, "B/s")), measured: \(q(how + ": one thread, the engine's addition of two 1 MiB tensors"))}
          op_overhead: {value: \(v(compute.opOverhead, "s")), measured: \(q(how + ": a chain of 200 tiny additions on a tape, forward and backward, per op"))}
          # Each op kind the engine ran in training steps of small-cnn (batch 24), mlp (24), the occupancy network (6)
          # and ViT-Tiny (3), the losses and linear layers at more sizes, one thread, op by op: time = overhead +
          # work / rate fitted over every op of the kind (work: FLOPs for conv2d and matmul, bytes read and written
          # for the rest); matmul's + bytes / byte_rate, its operands and result by the byte.
          ops:
        \(opsText(how))
        network:
          local_bandwidth: {value: \(v(local ? network.localBandwidth : 1e9, "B/s")), \(local ? "measured: " + q(how + ": all-reduce bus bandwidth of 4 MiB between the \(ranksPerHost) ranks of a host (MPI, as training sums gradients)") : "assumption: \"no MPI measured (--ranks 1); 1 GB/s between ranks of a host\"")}
          local_latency: {value: \(v(local ? network.localLatency : 5e-6, "s")), \(local ? "measured: " + q(how + ": a one-value all-reduce, per step") : "assumption: \"no MPI measured; 5 us a step\"")}
          host_bandwidth: {value: \(v(network.hostBandwidth, "B/s")), \(hosts > 1 ? "measured: " + q(how + ": all-reduce bus bandwidth of 4 MiB between one rank of each host") : "assumption: \"one host: no link between hosts\"")}
          host_latency: {value: \(v(network.hostLatency, "s")), \(hosts > 1 ? "measured: " + q(how + ": a one-value all-reduce between hosts, per step") : "assumption: \"one host\"")}
        calibration:
          matrix_efficiency: {value: 1, assumption: "the measured rates are what the kernels reach"}
          vector_efficiency: {value: 1, assumption: "the measured rates are what the kernels reach"}
          link_efficiency: {value: 1, assumption: "the measured bandwidths are what MPI reaches"}
          memory_efficiency: {value: 1, assumption: "the measured bandwidth is what the engine reaches"}

        """
    }
}
