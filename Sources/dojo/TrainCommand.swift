import ArgumentParser
import DojoCompiler
import DojoMachine
import DojoData
import DojoGraph
import DojoDistributed
import DojoNN
import DojoONNX
import DojoReport
import DojoTensor
import Foundation
import Synchronization

/// Set by SIGINT/SIGTERM; the trainer checks it between steps, saves a checkpoint and stops.
let stopSignal = Atomic<Int32>(0)
/// `dojo train --ranks`: the mpirun it started, to pass SIGINT/SIGTERM on to.
let mpirunPID = Atomic<Int32>(0)
/// The stop signal the launcher passed on to mpirun (0: none).
let launcherStop = Atomic<Int32>(0)
/// What rank 0 prints on stderr once MPI is up (the launcher hides it): the ranks started on their hosts.
let ranksStartedMarker = "dojo: ranks started"


/// `dojo train`: trains a zoo model for real on the CPU with Dojo's number formats.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a network on the CPU with Dojo's numerics (fp32, bf16 or cfp8).",
        discussion: """
        With no options it trains the multi-camera occupancy network on the embedded procedural driving scenes. \
        Writes to --out: metrics.jsonl (one line per step and per evaluation), loss.svg (loss and accuracy), \
        graph.json (the Graph IR of one step) and checkpoint.safetensors (every --checkpoint-every steps, at the \
        end, and on Ctrl-C/SIGTERM). --resume continues from that checkpoint with the same losses, bit for bit; \
        options you leave out are taken from the checkpoint. --ranks N trains data-parallel in N processes under \
        mpirun (Open MPI; `mpirun -n N dojo train …` works too): each rank trains its share of every global batch \
        and the gradients are summed over the ranks, so the run follows the one-process run of the same batch size; \
        rank 0 writes the metrics, plot, graph and checkpoints. --hostfile (with --launcher, --network) runs the \
        ranks on other hosts; --sync-batchnorm normalises over the global batch; a rank that dies or stops \
        answering (--rank-timeout) stops every rank with one line that names it. --plan dp=D,pp=P cuts the model into \
        P pipeline stages where the compiler does and runs D replicas of the pipeline (D·P ranks, 1F1B micro-batches).
        """)

    @Option(name: .long, help: "Model: \(ModelZoo.entries.filter { $0.task != .languageModeling }.map(\.name).joined(separator: ", ")). (default: occupancy)")
    var model: String?
    @Option(name: .long, help: "Train the network of this ONNX file (torch.onnx.export, with a dynamic batch dimension) from its initializers instead of a zoo model; its input must take the data set's examples (fashion-mnist: 1x28x28; scenes: cameras x 3 x side x side) and its output be [batch, classes] (or, for scenes, [batch, grid, grid] occupancy logits).")
    var onnx: String?
    @Option(name: .long, help: "With --onnx: at the end, write the trained network as an ONNX file here (evaluation form: onnxruntime or PyTorch load it).")
    var exportOnnx: String?
    @Option(name: .customLong("data"), help: "Data set: \(DataSets.names.joined(separator: ", ")). (default: scenes, or fashion-mnist for classifiers)")
    var data: String?
    @Option(name: .long, parsing: .unconditional, help: "Epochs. (default: the model's recipe, see `dojo models`)")
    var epochs: Int?
    @Option(name: .long, parsing: .unconditional, help: "Stop after this many steps in all.")
    var steps: Int?
    @Option(name: .long, parsing: .unconditional, help: "Examples per step. (default: 32 for scenes, 128 otherwise)")
    var batchSize: Int?
    @Option(name: .customLong("lr"), help: "Peak learning rate. (default: the model's recipe; 0.01 for SGD, 0.001 for AdamW)")
    var learningRate: Float?
    @Option(name: .long, help: "Learning-rate schedule after warm-up: cosine or constant. (default: cosine)")
    var schedule: String?
    @Option(name: .long, parsing: .unconditional, help: "Linear warm-up steps. (default: 0)")
    var warmup: Int?
    @Option(name: .long, help: "Optimizer: sgd or adamw. (default: the model's recipe)")
    var optimizer: String?
    @Option(name: .long, help: "SGD momentum. (default: 0.9)")
    var momentum: Float?
    @Flag(name: .long, help: "Nesterov momentum for SGD.")
    var nesterov = false
    @Option(name: .long, help: "Weight decay (L2 for SGD, decoupled for AdamW). (default: 5e-4 for SGD, 0.01 for AdamW)")
    var weightDecay: Float?
    @Option(name: .long, help: "Numerics: fp32, bf16, or cfp8 (CFP8 1-4-3 weights/activations, 1-5-2 gradients, per-tensor bias). (default: fp32)")
    var precision: String?
    @Flag(name: .long, help: "Round gradients stochastically (seeded, reproducible) instead of to nearest.")
    var stochasticGradients = false
    @Option(name: .long, help: "Seed for initialisation, data order, augmentation and dropout. (default: 0)")
    var seed: UInt64?
    @Option(name: .long, parsing: .unconditional, help: "Compute threads (oneDNN and the engine's loops). (default: all cores)")
    var threads: Int?
    @Option(name: .long, help: "Where metrics, plot and graph go. (default: runs/<model>-<data>)")
    var out: String?
    @Option(name: .long, help: "Where checkpoints go. (default: the --out directory)")
    var checkpointDir: String?
    @Option(name: .long, parsing: .unconditional, help: "Save a checkpoint every N steps (0: only at the end and on interrupt). (default: 200)")
    var checkpointEvery: Int?
    @Flag(name: .long, help: "Continue from the checkpoint in --checkpoint-dir.")
    var resume = false
    @Flag(name: .long, help: "Train into an --out (or --checkpoint-dir) that holds another run, replacing its metrics, plot, graph and checkpoint (without it such a run is refused: --resume continues it).")
    var force = false
    @Option(name: .long, parsing: .unconditional, help: "Training examples to use (scenes: how many to generate; default 8192 scenes, all of Fashion-MNIST).")
    var trainExamples: Int?
    @Option(name: .long, parsing: .unconditional, help: "Evaluation examples (default 512 scenes, all 10,000 Fashion-MNIST test images).")
    var evalExamples: Int?
    @Option(name: .long, help: "Directory of the Fashion-MNIST IDX files. (default: \(FashionMNIST.defaultDirectory))")
    var dataDir: String?
    @Option(name: .long, help: "Scenes: cameras around the car. (default: 4)")
    var cameras: Int?
    @Option(name: .long, help: "Scenes: side of each camera image in pixels. (default: 32)")
    var imageSize: Int?
    @Option(name: .long, help: "Scenes: cells per side of the bird's-eye-view grid. (default: 16)")
    var gridSize: Int?
    @Option(name: .long, help: "Occupancy: loss weight of occupied cells. (default: 2)")
    var positiveWeight: Float?
    @Flag(name: .long, help: "Print, once the first step is recorded, what the step would cost on the --machine machines (the end of the run always does).")
    var predict = false

    @Option(name: .long, help: "Machines to predict this step on, comma-separated (dojo machines).")
    var machine: String = "tile,dgx-h100"

    @Option(name: .long, parsing: .unconditional, help: "Data-parallel processes: runs itself under mpirun -n N (Open MPI). Each rank trains batch-size ÷ N examples of every step; the batch size must be divisible by N.")
    var ranks: Int?
    @Flag(name: .long, inversion: .prefixedNo, help: "With --ranks: sum gradients bucket by bucket while backward still runs (--no-overlap: after it, to measure what overlap hides). (default: on)")
    var overlap = true
    @Option(name: .long, help: "With --ranks: the format gradients are summed over the ranks in: fp32, bf16 (half the bytes; every partial sum rounded to BF16) or cfp8 (a quarter: each rank's values rounded once to CFP8 1-5-2 with a bias shared per bucket, gathered, added in FP32). (default: fp32)")
    var allreduce: String?
    @Option(name: .long, help: "With --ranks: run the ranks on the hosts of this Open MPI hostfile (`HOST slots=K` a line), started through --launcher; dojo and its data must be at the same paths on every host.")
    var hostfile: String?
    @Option(name: .long, help: "With --hostfile: the program mpirun starts its daemon on each host with, as `PROGRAM HOST COMMAND…` (default: ssh; scripts/netns-hosts.sh writes one for namespace hosts).")
    var launcher: String?
    @Option(name: .long, help: "With --hostfile: the network the ranks talk over, as CIDR (e.g. 10.99.1.0/24); Open MPI picks otherwise.")
    var network: String?
    @Flag(name: .long, help: "With --ranks: batch norm uses the statistics of the whole global batch, summed over the ranks in every step (synchronised; the run normalises as one process does), instead of each rank's own examples (the default, as PyTorch's DDP: no extra messages).")
    var syncBatchnorm = false
    @Option(name: .long, help: "With --ranks: seconds without a word from a rank before every rank stops with an error that names it (a rank that hangs, or whose host or link is down); also how long the ranks may take to start on their hosts. (default: 120)")
    var rankTimeout: Double?

    @Flag(name: .long, inversion: .prefixedNo, help: "Augment training examples: random flips and shifts; mirrored scenes. (default: off)")
    var augment: Bool?
    @Option(name: .long, help: "Parallelism plan, in `dojo sim --plan`'s syntax: dp=D,pp=P[,micro=M | mb=B]. pp=P cuts the model into P stages at the layers the compiler chooses (the split `dojo sim --plan` prices) and trains them with 1F1B micro-batches (M per replica per step, default P; or micro-batches of B examples); activations and their gradients travel between stage ranks. D·P ranks (--plan alone sets --ranks). Models: mlp, small-cnn, resnet18, resnet50, occupancy.")
    var plan: String?

    func validate() throws {
        func positive(_ v: Int?, _ name: String) throws {
            if let v, v < 1 { throw ValidationError("--\(name) must be at least 1, got \(v)") }
        }
        try positive(epochs, "epochs"); try positive(steps, "steps"); try positive(batchSize, "batch-size")
        try positive(threads, "threads"); try positive(trainExamples, "train-examples"); try positive(evalExamples, "eval-examples")
        if let checkpointEvery, checkpointEvery < 0 { throw ValidationError("--checkpoint-every must be 0 or more, got \(checkpointEvery)") }
        // A mistyped machine should stop the run before it trains, not after.
        for name in machine.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            do { _ = try Machine.resolve(name) } catch { throw CLIError("--machine: \(error)") }
        }
        if onnx != nil && model != nil { throw ValidationError("give --model or --onnx, not both") }
        if exportOnnx != nil && onnx == nil { throw ValidationError("--export-onnx writes the network of an --onnx run; give --onnx FILE") }
        if let exportOnnx {
            try UserFiles.checkWritable(exportOnnx, what: "--export-onnx")
            let resolved = { (p: String) -> String? in
                guard let r = realpath(p, nil) else { return nil }
                defer { free(r) }
                return String(cString: r)
            }
            if let onnx, let a = resolved(onnx), a == resolved(exportOnnx) {
                throw ValidationError("--export-onnx \(exportOnnx) is the file --onnx reads; write the trained network to another file")
            }
        }
        if onnx != nil, let spec = try parsedPlan(), (spec.pipelineParallel ?? 1) > 1 {
            throw ValidationError("--plan pp: an ONNX network is not cut into pipeline stages yet; train it data-parallel (--ranks N)")
        }
        if let model {
            let entry: ModelZoo.Entry
            do { entry = try ModelZoo.entry(model) } catch { throw ValidationError("\(error)") }
            if entry.task == .languageModeling {
                throw ValidationError("\(model) is a language model and no text data set is built in yet (\(DataSets.names.joined(separator: ", ")) "
                                      + "hold images); record its training step with `dojo graph --model \(model)`")
            }
        }
        if let data, !DataSets.names.contains(data) {
            throw ValidationError("unknown data set '\(data)'; choose one of: \(DataSets.names.joined(separator: ", "))")
        }
        if let optimizer, !["sgd", "adamw"].contains(optimizer) { throw ValidationError("unknown optimizer '\(optimizer)'; choose sgd or adamw") }
        if let precision, PrecisionPolicy.Mode(rawValue: precision) == nil {
            throw ValidationError("unknown precision '\(precision)'; choose fp32, bf16 or cfp8")
        }
        if let schedule, LearningRateSchedule.Shape(rawValue: schedule) == nil {
            throw ValidationError("unknown schedule '\(schedule)'; choose cosine or constant")
        }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) { throw ValidationError("--lr must be a positive number, got \(learningRate)") }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
        if force && resume { throw ValidationError("--force starts the run over and --resume continues it: give one of them") }
        if let ranks, !(1...1024).contains(ranks) { throw ValidationError("--ranks must be 1…1024, got \(ranks)") }
        // Numbers that would crash or silently train nonsense (issue 12): bounded with the reason.
        if let threads, threads > 1024 { throw ValidationError("--threads must be 1…1024 (this machine has \(ProcessInfo.processInfo.activeProcessorCount) cores), got \(threads)") }
        if let momentum, !(momentum >= 0 && momentum < 1) { throw ValidationError("--momentum must be a number in [0, 1), got \(momentum)") }
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) { throw ValidationError("--weight-decay must be 0 or more, got \(weightDecay)") }
        if let positiveWeight, !(positiveWeight > 0 && positiveWeight.isFinite) { throw ValidationError("--positive-weight must be a positive number, got \(positiveWeight)") }
        for (name, v) in [("epochs", epochs), ("steps", steps), ("batch-size", batchSize), ("train-examples", trainExamples),
                          ("eval-examples", evalExamples), ("warmup", warmup), ("checkpoint-every", checkpointEvery)] {
            if let v, v > 1_000_000_000 { throw ValidationError("--\(name) must be at most 1,000,000,000, got \(v)") }
        }
        let underMPI = MPIGroup.launchedByMPI
        if underMPI && (hostfile != nil || launcher != nil || network != nil) {
            throw ValidationError("--hostfile, --launcher and --network are mpirun's to use: this process already runs under mpirun (give them to dojo train --ranks N, or to mpirun itself)")
        }
        if !underMPI && trainRanks == nil && (syncBatchnorm || rankTimeout != nil || allreduce != nil || !overlap) {
            throw ValidationError("--sync-batchnorm, --rank-timeout, --allreduce and --no-overlap go with --ranks N (or a run under mpirun)")
        }
        if (hostfile != nil || launcher != nil || network != nil) && trainRanks == nil {
            throw ValidationError("--hostfile, --launcher and --network go with --ranks N")
        }
        if (launcher != nil || network != nil) && hostfile == nil {
            throw ValidationError("--launcher and --network go with --hostfile")
        }
        if let network, !isIPv4CIDR(network) {
            throw ValidationError("--network must be an IPv4 network as CIDR (like 10.99.1.0/24), got '\(network)'")
        }
        if let rankTimeout, !(rankTimeout >= 1 && rankTimeout <= 86_400) {
            throw ValidationError("--rank-timeout must be 1…86400 seconds, got \(rankTimeout)")
        }
        if let allreduce, GradientReduceFormat(rawValue: allreduce) == nil {
            throw ValidationError("--allreduce must be fp32, bf16 or cfp8, got '\(allreduce)'")
        }
        if let spec = try parsedPlan() {
            let pp = spec.pipelineParallel ?? 1
            if let ranks, let dp = spec.dataParallel, dp * pp != ranks {
                throw ValidationError("--plan \(plan!) needs dp × pp = \(dp * pp) ranks, but --ranks is \(ranks)")
            }
            if let ranks, ranks % pp != 0 { throw ValidationError("--plan pp=\(pp) does not divide --ranks \(ranks) into whole pipelines") }
            if pp > 1 && syncBatchnorm {
                throw ValidationError("--sync-batchnorm does not go with pipeline stages (pp=\(pp)): each micro-batch is normalised over its own examples")
            }
            if let ranks = trainRanks, !underMPI, ranks > 1024 { throw ValidationError("--plan asks for \(ranks) ranks; at most 1024") }
        }
    }

    /// The compiler's split of `net` into `shape.pp` stages: the first layer of each stage, from the step the simulator
    /// prices (recorded at the micro-batch size); errors for a model the engine cannot cut or too many stages.
    func pipelineStages(_ net: Module, config: TrainingConfig, sets: DataSets.Choice, shape: (dp: Int, pp: Int, micro: Int)) throws -> (PipelineSplittable, [String], Graph) {
        let entry = try ModelZoo.entry(config.model)
        guard let chain = net as? PipelineSplittable else {
            throw CLIError("--plan pp=\(shape.pp): \(config.model) cannot be cut into pipeline stages by the engine yet (its forward pass is not one chain of layers); pipeline plans train mlp, small-cnn, resnet18, resnet50, vit models and occupancy")
        }
        // The compiler's split of the step the simulator prices, recorded at the micro-batch size.
        let graph = try Engine.$shapeOnly.withValue(true) { () throws -> Graph in
            let twin = try ModelZoo.make(config.model, inputShape: sets.train.inputShape, classes: max(1, sets.train.classNames.count),
                                         gridSize: sets.train.targetShape.first ?? config.gridSize, seed: config.seed)
            let x = Tensor(uninitializedShape: [config.batchSize / (shape.dp * shape.micro)] + sets.train.inputShape)
            let step = TrainingStep.run(twin, task: entry.task, input: x, classes: max(1, sets.train.classNames.count),
                                        optimizer: config.optimizer == "adamw" ? AdamW() : SGD(momentum: 0.9), learningRate: 0)
            return step.tape.graph(model: config.model, batch: x.shape[0])
        }
        let index = LayerIndex(graph: graph)
        guard let first = index.stageLayers(graph, stages: shape.pp) else {
            throw CLIError("--plan pp=\(shape.pp): \(config.model) has \(index.layerCount) layers to cut at; give at most pp=\(index.layerCount)")
        }
        return (chain, first, graph)
    }

    /// `--plan`, parsed; only what training runs (dp, pp, micro-batches) is accepted.
    func parsedPlan() throws -> PlanSpec? {
        guard let plan else { return nil }
        let spec: PlanSpec
        do { spec = try PlanSpec(parsing: plan) } catch { throw ValidationError("--plan: \(error)") }
        if let tp = spec.tensorParallel, tp > 1 {
            throw ValidationError("--plan tp=\(tp): dojo train runs data- and pipeline-parallel plans (dp, pp); tensor-parallel plans are priced by `dojo sim --plan` only")
        }
        for (key, set) in [("vp", spec.virtualStages.map { $0 > 1 } ?? false), ("recompute", spec.recompute.map { $0 != .none } ?? false),
                           ("zero", spec.shardOptimizer ?? false), ("sp", spec.sequenceParallel ?? false)] where set {
            throw ValidationError("--plan \(key)=…: dojo train runs dp, pp and micro-batches (micro or mb); \(key) is priced by `dojo sim --plan` only")
        }
        if spec.microBatch != nil && spec.microBatches != nil { throw ValidationError("--plan: give micro (micro-batches per step) or mb (examples per micro-batch), not both") }
        if (spec.microBatch != nil || spec.microBatches != nil) && (spec.pipelineParallel ?? 1) == 1 {
            throw ValidationError("--plan: micro-batches go with pipeline stages (pp=2 or more)")
        }
        return spec
    }

    /// The ranks a run asks for: --ranks, or dp × pp of --plan.
    var trainRanks: Int? {
        if let ranks { return ranks }
        guard let spec = try? parsedPlan() else { return nil }
        let n = (spec.dataParallel ?? 1) * (spec.pipelineParallel ?? 1)
        return n > 1 ? n : nil
    }

    /// Data-parallel replicas, pipeline stages and micro-batches per replica for `ranks` ranks and `batch` examples a
    /// step, checked: every micro-batch of every replica gets the same number of examples.
    func pipelineShape(ranks: Int, batch: Int) throws -> (dp: Int, pp: Int, micro: Int) {
        let spec = try parsedPlan() ?? PlanSpec()
        let pp = spec.pipelineParallel ?? 1
        guard ranks % pp == 0 else { throw CLIError("--plan pp=\(pp) does not divide \(ranks) ranks into whole pipelines") }
        let dp = spec.dataParallel ?? ranks / pp
        guard dp * pp == ranks else { throw CLIError("--plan needs dp × pp = \(dp * pp) ranks; the run has \(ranks)") }
        var micro = spec.microBatches ?? pp
        if let mb = spec.microBatch {
            guard batch % (dp * mb) == 0 else {
                throw CLIError("--plan mb=\(mb): --batch-size \(batch) is not a whole number of micro-batches of \(mb) on each of \(dp) replica\(dp == 1 ? "" : "s")")
            }
            micro = batch / (dp * mb)
        }
        if pp == 1 { micro = 1 }
        guard batch % (dp * micro) == 0 else {
            let what = pp > 1 ? "\(dp) replica\(dp == 1 ? "" : "s") × \(micro) micro-batches" : "\(dp) ranks"
            throw CLIError("--batch-size \(batch) does not divide into \(what) (\(dp * micro) equal shares): each takes an equal share of every batch (try --batch-size \(max(dp * micro, batch / (dp * micro) * (dp * micro))))")
        }
        return (dp, pp, micro)
    }

    /// `--ranks N` outside mpirun: runs `mpirun -n N` with the same command without --ranks, passes SIGINT/SIGTERM on,
    /// shows the ranks' output, and turns Open MPI's boxed reports of a rank that died into one error line that names
    /// the rank and host (every other rank has been stopped by then; the last checkpoint is intact).
    func launchRanks(_ n: Int) throws -> Never {
        // The batch each step splits: given, or the default of a new run (a resumed run keeps its checkpoint's).
        let batch = try batchSize ?? (resume ? nil : resolveConfig(nil).batchSize)
        if let batch {
            if plan != nil {
                let shape = try pipelineShape(ranks: n, batch: batch)
                // A plan the model cannot run: said here, before any rank starts (a resumed run's ranks check it).
                if shape.pp > 1, !resume {
                    let config = try resolveConfig(nil)
                    let sets = try DataSets.make(config.dataset, trainCount: 16, evalCount: 16, seed: config.seed, dataDirectory: dataDir,
                                                 cameras: config.cameras, imageSize: config.imageSize, gridSize: config.gridSize)
                    let net = try ModelZoo.make(config.model, inputShape: sets.train.inputShape, classes: max(1, sets.train.classNames.count),
                                                gridSize: sets.train.targetShape.first ?? config.gridSize, seed: config.seed)
                    _ = try pipelineStages(net, config: config, sets: sets, shape: shape)
                }
            }
            else if batch % n != 0 {
                throw CLIError("--ranks \(n) does not divide --batch-size \(batch): each rank trains an equal share of every batch (try --batch-size \(max(n, batch / n * n)))")
            }
        }
        guard let mpirun = mpirunPath else {
            throw CLIError("--ranks needs Open MPI's mpirun: install openmpi-bin (apt-get install openmpi-bin libopenmpi-dev; make does)")
        }
        let exe = selfExecutable
        var rest: [String] = []
        var i = 1
        let args = CommandLine.arguments
        let launchOnly = ["--ranks", "--hostfile", "--launcher", "--network"]
        while i < args.count {
            if launchOnly.contains(args[i]) { i += 2; continue }
            if launchOnly.contains(where: { args[i].hasPrefix($0 + "=") }) { i += 1; continue }
            rest.append(args[i]); i += 1
        }
        // --bind-to none: Open MPI would pin each host's ranks from core 0, so ranks of one host (or of namespace
        // hosts on one machine) would share a core.
        var argv = [mpirun, "-n", "\(n)", "--bind-to", "none", "-x", "DOJO_LAUNCHER=1"]
        if geteuid() == 0 { argv.append("--allow-run-as-root") }
        if let hostfile {
            let slots = try hostfileSlots(hostfile)
            if slots < n { throw CLIError("--hostfile \(hostfile) offers \(slots) slot\(slots == 1 ? "" : "s") for --ranks \(n): add hosts or slots (`HOST slots=K`)") }
            argv += ["--hostfile", hostfile]
            if let launcher {
                var folder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: launcher, isDirectory: &folder) else { throw CLIError("--launcher \(launcher): no such file") }
                guard !folder.boolValue, access(launcher, X_OK) == 0 else { throw CLIError("--launcher \(launcher): \(folder.boolValue ? "a folder" : "not executable (chmod +x)")") }
                guard launcher.allSatisfy({ $0 != " " && $0 != "\n" && $0 != "\t" }) else { throw CLIError("--launcher \(launcher): Open MPI cannot run a path with spaces; move or link it") }
                argv += ["--mca", "plm_rsh_agent", launcher]
            }
            if let network { argv += ["--mca", "btl_tcp_if_include", network, "--mca", "oob_tcp_if_include", network] }
        } else if n > ProcessInfo.processInfo.activeProcessorCount {
            argv.append("--oversubscribe")
            let cores = ProcessInfo.processInfo.activeProcessorCount
            FileHandle.standardError.write(Data("note: \(n) ranks on \(cores) core\(cores == 1 ? "" : "s"): each rank gets a share of a core (and its own copy of the model and data in memory); --hostfile spreads ranks over hosts\n".utf8))
        }
        // The ranks leave their errors in a folder of this run's (see RankErrors).
        var template = Array((NSTemporaryDirectory() + "dojo-rank-errors-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CLIError("cannot make a folder in \(NSTemporaryDirectory()): \(String(cString: strerror(errno)))") }
        let errorFolder = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: errorFolder) }
        setenv(RankErrors.variable, errorFolder, 1)
        argv += ["-x", RankErrors.variable]
        argv += [exe] + rest
        var cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw CLIError("cannot start \(mpirun): \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        // Its own process group: a terminal's Ctrl-C reaches this launcher alone, which passes a SIGTERM on (mpirun
        // would kill the ranks at once on a SIGINT of its own, before rank 0 saved a checkpoint), and the group
        // (mpirun, its launch agents) can be killed whole.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        posix_spawnattr_setpgroup(&attributes, 0)
        // No signal blocked in mpirun (a parent may have started us with some blocked): it must see SIGUSR1.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, mpirun, &actions, &attributes, &cargv, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(pipeFDs[1])
        guard rc == 0 else { throw CLIError("cannot start \(mpirun): \(String(cString: strerror(rc)))") }
        mpirunPID.store(pid, ordering: .relaxed)
        // A stop request goes to every rank as SIGUSR1 (mpirun forwards it); a second one ends mpirun itself.
        signal(SIGINT) { s in kill(mpirunPID.load(ordering: .relaxed), launcherStop.exchange(s, ordering: .relaxed) == 0 ? SIGUSR1 : SIGTERM) }
        signal(SIGTERM) { s in kill(mpirunPID.load(ordering: .relaxed), launcherStop.exchange(s, ordering: .relaxed) == 0 ? SIGUSR1 : SIGTERM) }
        var unblock = sigset_t()   // a parent (a test runner, a scheduler) may have started us with them blocked
        sigemptyset(&unblock); sigaddset(&unblock, SIGINT); sigaddset(&unblock, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        // The ranks' own lines go through; Open MPI's reports (blocks between lines of dashes) are kept for the summary.
        // The pipe is polled, not read to its end: a launch agent's leftover children may hold it open after mpirun
        // is gone. Ranks that have not started within the start-up limit (a host or launcher that does not answer)
        // end the run.
        let started = Date()
        let startLimit = rankTimeout ?? 120
        var ranksStarted = false, exited = false, timedOut = false
        var status: Int32 = 0
        var pending = "", report = "", inReport = false, rankSaidError = false
        var errorLines = Set<String>()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var p = pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 250)
            var chunk = Data()
            if ready > 0 {
                let n = read(pipeFDs[0], &buffer, buffer.count)
                if n == 0 { break }   // every writer closed it
                if n > 0 { chunk = Data(buffer[0..<n]) }
            }
            if !exited, waitpid(pid, &status, WNOHANG) == pid { exited = true }
            if exited && ready <= 0 { break }
            if !ranksStarted && !exited && Date().timeIntervalSince(started) > startLimit {
                timedOut = true
                kill(-pid, SIGKILL)
            }
            if chunk.isEmpty { continue }
            pending += String(decoding: chunk, as: UTF8.self)
            while let nl = pending.firstIndex(of: "\n") {
                let line = String(pending[..<nl]); pending = String(pending[pending.index(after: nl)...])
                if line == ranksStartedMarker { ranksStarted = true; continue }
                if line.hasPrefix("mpirun: Forwarding signal") { continue }
                if line.hasPrefix("-----") { inReport.toggle(); continue }
                // Open MPI's own diagnostics ("[host:pid] …") belong to the report too.
                if inReport || line.range(of: #"^\[[^\]\s]+:\d+\] "#, options: .regularExpression) != nil { report += line + "\n"; continue }
                if line.hasPrefix("Error: ") {
                    rankSaidError = true
                    if !errorLines.insert(line).inserted { continue }   // several ranks saw the same silent rank
                }
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }
        close(pipeFDs[0])
        if !pending.isEmpty { FileHandle.standardError.write(Data(pending.utf8)) }
        if !exited { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        kill(-pid, SIGKILL)   // what is left of its group: launch agents and their children
        for line in RankErrors.collect(from: errorFolder) where errorLines.insert(line).inserted {
            rankSaidError = true
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        try? FileManager.default.removeItem(atPath: errorFolder)
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        if timedOut {
            let hosts = hostfile.map { " on the hosts of \($0)" } ?? ""
            FileHandle.standardError.write(Data(("Error: the ranks did not start within \(Int(startLimit)) s\(hosts) (a host or --launcher that does not answer; --rank-timeout sets the wait); mpirun stopped\n").utf8))
            Foundation.exit(1)
        }
        let stop = launcherStop.load(ordering: .relaxed)
        if stop != 0 && !rankSaidError {
            // Stopped on request: rank 0 said where the checkpoint is.
            Foundation.exit(stop == SIGTERM ? 143 : 130)
        }
        if code != 0 && !rankSaidError {
            FileHandle.standardError.write(Data(("Error: " + rankFailure(report, ranks: n) + "\n").utf8))
        }
        Foundation.exit(code == 0 ? 0 : (code == 1 && rankSaidError ? 1 : code))
    }


    /// One line from Open MPI's report of a failed run: which rank, on which host, and how it ended.
    func rankFailure(_ report: String, ranks: Int) -> String {
        func match(_ pattern: String) -> [String]? {
            guard let re = try? NSRegularExpression(pattern: pattern),
                  let m = re.firstMatch(in: report, range: NSRange(report.startIndex..., in: report)) else { return nil }
            return (1..<m.numberOfRanges).compactMap { Range(m.range(at: $0), in: report).map { String(report[$0]) } }
        }
        if let m = match(#"process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+) \(([^)]+)\)"#), m.count == 4 {
            return "rank \(m[0]) of \(ranks) on \(m[1]) died (signal \(m[2]), \(m[3])); mpirun stopped every rank (the last checkpoint is intact: --resume continues)"
        }
        if let m = match(#"Process name: \[\[\d+,\d+\],(\d+)\][\s\S]*?Exit code:\s+(\d+)"#), m.count == 2 {
            let host = match(#"Local host:\s+(\S+)"#)?.first.map { " on \($0)" } ?? ""
            return "rank \(m[0]) of \(ranks)\(host) exited with status \(m[1]); mpirun stopped every rank"
        }
        if report.contains("unable to reliably start one or more daemons") {
            return "mpirun could not start on every host of the hostfile (a host that does not answer, a launcher that failed, or no Open MPI or dojo at the same path there); mpirun stopped every rank"
        }
        if report.contains("not enough slots available") {
            return "mpirun found fewer slots than --ranks \(ranks) (a host list or hostfile with too few slots)"
        }
        let first = report.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty } ?? "no report"
        return "mpirun failed: \(first)"
    }

    /// Where metrics, plot and graph go, and where the checkpoint goes.
    var outFolders: (out: String, checkpoints: String) {
        let name = onnx.map { ((ONNXImport.modelName($0) as NSString).deletingPathExtension) } ?? model ?? "occupancy"
        let out = self.out ?? "runs/\(name)-\(data ?? defaultData(onnx.map { _ in "onnx" } ?? model ?? "occupancy"))"
        return (out, checkpointDir ?? out)
    }

    /// Before anything is made or trained: the output folders can be made, the files the run writes are files (or
    /// nothing), and a new run (no --resume) into folders that hold another one — it would replace its checkpoint
    /// and metrics — is refused unless --force. Every rank checks before MPI starts (before rank 0 writes anything).
    func checkOutputPlaces() throws {
        let (out, checkpoints) = outFolders
        // Folders that cannot be made are said before anything is (nothing half-made is left behind).
        try UserFiles.checkFolderCanBeMade(out, what: "--out")
        try UserFiles.checkFolderCanBeMade(checkpoints, what: checkpointDir == nil ? "--out (the checkpoint's folder)" : "--checkpoint-dir")
        // The files the run writes must be files, or nothing, before it trains (a pipe named graph.json blocked the
        // run for ever after training; a folder named metrics.jsonl failed it then).
        for (folder, name) in [(out, "metrics.jsonl"), (out, "loss.svg"), (out, "graph.json"), (checkpoints, "checkpoint.safetensors")] {
            try UserFiles.checkReplaceable((folder as NSString).appendingPathComponent(name), what: "dojo train's \(name)")
        }
        guard !resume && !force else { return }
        let fm = FileManager.default
        var held: [String] = []
        for (folder, name) in [(checkpoints, "checkpoint.safetensors"), (out, "metrics.jsonl")] {
            let path = (folder as NSString).appendingPathComponent(name)
            if fm.fileExists(atPath: path) { held.append(path) }
        }
        guard !held.isEmpty else { return }
        var step = ""
        if let ck = held.first(where: { $0.hasSuffix("checkpoint.safetensors") }), let s = try? Checkpoint.read(from: ck).file.metadata["step"] {
            step = " (its checkpoint is at step \(s))"
        }
        throw CLIError("\(held.joined(separator: " and ")) hold\(held.count == 1 ? "s" : "") another run\(step): --resume continues it, --force starts over and replaces its files, or give another --out\(checkpointDir != nil ? "/--checkpoint-dir" : "")")
    }

    func run() throws {
        try checkOutputPlaces()
        if let ranks = trainRanks, !MPIGroup.launchedByMPI { try launchRanks(ranks) }
        if let ranks = trainRanks, MPIGroup.launchedByMPI, let size = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] ?? ""), size != ranks {
            throw CLIError(self.ranks != nil ? "--ranks \(ranks) differs from the \(size) processes mpirun started: give one of them"
                                             : "--plan \(plan!) asks for \(ranks) ranks, but mpirun started \(size) processes: give one of them")
        }
        takeStopSignals()
        // Under mpirun: one rank of a data-parallel run (a single rank trains alone).
        var group: MPIGroup?
        if MPIGroup.launchedByMPI {
            let g = try MPIGroup()
            if g.size > 1 { group = g } else { g.finish() }
        }
        defer { group?.finish() }
        let lead = (group?.rank ?? 0) == 0
        if let group {
            group.timeout = rankTimeout ?? 120
            if group.rank == 0, ProcessInfo.processInfo.environment["DOJO_LAUNCHER"] == "1" { FileHandle.standardError.write(Data((ranksStartedMarker + "\n").utf8)) }
        }
        if let group, lead == false, ProcessInfo.processInfo.environment["DOJO_RANK_OUTPUT"] != "1" {
            // Only rank 0 talks; the others' output and errors would repeat it (a rank that fails alone is named by
            // the launcher's one line; DOJO_RANK_OUTPUT=1 keeps every rank's output for debugging). A rank that
            // finds another silent still says so (the launcher prints each such line once).
            group.errorOutput = dup(2)
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, 1); dup2(null, 2); close(null) }
            _ = group
        }
        if let threads { ComputeThreads.set(threads) }
        else if let group { ComputeThreads.set(max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, group.localSize))) }
        let (out, checkpointDirectory) = outFolders
        let checkpointFile = (checkpointDirectory as NSString).appendingPathComponent("checkpoint.safetensors")

        // what the checkpoint says, for options left out
        var saved: TrainingConfig?
        if resume {
            guard FileManager.default.fileExists(atPath: checkpointFile) else {
                throw CLIError("--resume: no checkpoint at \(checkpointFile); train without --resume first, or point --checkpoint-dir at a run")
            }
            let c = try Checkpoint.read(from: checkpointFile)
            guard let json = c.file.metadata["config"] else {
                throw CLIError("\(checkpointFile) has no training configuration in its metadata (no 'config' entry)")
            }
            let cfg: TrainingConfig
            do { cfg = try JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8)) } catch {
                throw CLIError("\(checkpointFile): the training configuration in its metadata cannot be read: \(decodingProblem(error))")
            }
            if let p = cfg.problem() {
                throw CLIError("\(checkpointFile): its training configuration is not one dojo train runs: \(p)")
            }
            if let given = model ?? onnx.map(onnxModelName), given != cfg.model {
                throw CLIError("\(checkpointFile) holds a checkpoint of model '\(cfg.model)', not '\(given)'")
            }
            if onnx == nil, cfg.model.hasPrefix("onnx:") {
                throw CLIError("\(checkpointFile) holds a checkpoint of \(cfg.model.dropFirst(5)); resume it with --onnx \(cfg.model.dropFirst(5))")
            }
            saved = cfg
        }
        let config = try resolveConfig(saved)
        if let p = config.problem() { throw CLIError(p) }
        if config.dataset != "scenes", let flag = [(cameras, "--cameras"), (imageSize, "--image-size"), (gridSize, "--grid-size")].first(where: { $0.0 != nil })?.1 {
            throw CLIError("\(flag) describes the driving scenes (--data scenes); --data \(config.dataset) has its own images")
        }
        if positiveWeight != nil, onnx == nil, (try? ModelZoo.entry(config.model))?.task != .occupancy {
            throw CLIError("--positive-weight weighs occupied cells of the occupancy network's loss; --model \(config.model) does not predict occupancy")
        }
        if let saved {
            for (name, a, b) in [("data", saved.dataset, config.dataset), ("precision", saved.precision, config.precision),
                                 ("optimizer", saved.optimizer, config.optimizer), ("seed", "\(saved.seed)", "\(config.seed)"),
                                 ("batch-size", "\(saved.batchSize)", "\(config.batchSize)"),
                                 ("augment", "\(saved.augment)", "\(config.augment)"),
                                 ("train-examples", "\(saved.trainExamples.map(String.init) ?? "all")", "\(config.trainExamples.map(String.init) ?? "all")"),
                                 ("cameras", "\(saved.cameras)", "\(config.cameras)"), ("image-size", "\(saved.imageSize)", "\(config.imageSize)"),
                                 ("grid-size", "\(saved.gridSize)", "\(config.gridSize)")] where a != b {
                throw CLIError("--\(name) \(b) differs from the checkpoint's \(a); a resumed run must train the same way")
            }
        }

        let sets = try DataSets.make(config.dataset, trainCount: config.trainExamples, evalCount: config.evalExamples, seed: config.seed,
                                     dataDirectory: dataDir, cameras: config.cameras, imageSize: config.imageSize, gridSize: config.gridSize)
        let net: Module, modelTask: Task
        if let onnx {
            let n = try onnxNetwork(onnx, sets: sets, config: config)
            net = n; modelTask = n.task
            if positiveWeight != nil, n.task != .occupancy {
                throw CLIError("--positive-weight weighs occupied cells of the occupancy network's loss; \(onnx) does not predict occupancy")
            }
        } else {
            let entry = try ModelZoo.entry(config.model)
            if entry.task == .occupancy && sets.train.targetShape.count != 2 {
                throw CLIError("model \(config.model) predicts occupancy grids; data set \(config.dataset) has none (use --data scenes)")
            }
            net = try ModelZoo.make(config.model, inputShape: sets.train.inputShape, classes: max(1, sets.train.classNames.count),
                                    gridSize: sets.train.targetShape.first ?? config.gridSize, seed: config.seed)
            modelTask = entry.task
        }
        // Each epoch's order of the examples is kept (8 bytes an example, the training one shuffled), and a batch is
        // assembled while another trains: what cannot fit in the memory this process may use is refused now, with
        // the figure, instead of failing (or being killed) after the model and data were made.
        let orderBytes = 8 * (UInt64(sets.train.count) + (lead ? UInt64(sets.eval.count) : 0))
        let batchBytes = 4 * 4 * UInt64(config.batchSize) * UInt64(sets.train.inputSize + sets.train.targetSize)
        let usable = Engine.usableMemoryBytes
        if orderBytes + batchBytes > usable / 2 {
            throw CLIError("\(formatThousands(sets.train.count)) training and \(formatThousands(sets.eval.count)) evaluation examples at --batch-size \(formatThousands(config.batchSize)) need about \(formatBytes(Int(clamping: orderBytes + batchBytes))) before the model (8 bytes an example for each epoch's order, batches being assembled), more than half of the \(formatBytes(Int(clamping: usable))) this process may use: give fewer --train-examples / --eval-examples or a smaller --batch-size")
        }
        if config.batchSize > sets.train.count {
            throw CLIError("--batch-size \(config.batchSize) is more than the \(sets.train.count) training examples: every step would take the whole set (give a smaller --batch-size or more --train-examples)")
        }
        let trainLoader = try DataLoader(dataset: sets.train, batchSize: config.batchSize, shuffle: true, augment: config.augment, seed: config.seed)
        let shape = try pipelineShape(ranks: group?.size ?? 1, batch: config.batchSize)
        var stageLayers: [[String]] = []
        // Rank 0 evaluates and writes; the other ranks only train.
        let evalLoader = lead ? try DataLoader(dataset: sets.eval, batchSize: max(config.batchSize, 64), shuffle: false, augment: false, seed: 0) : nil
        let trainer = try Trainer(config: config, model: net, task: modelTask, train: trainLoader, eval: evalLoader,
                                  checkpointDirectory: lead ? checkpointDirectory : nil)
        trainer.group = group
        trainer.overlapCommunication = overlap
        trainer.gradientReduceFormat = allreduce.flatMap(GradientReduceFormat.init(rawValue:)) ?? .fp32
        trainer.syncBatchNorm = syncBatchnorm
        if shape.pp > 1, let group {
            let (chain, first, graph) = try pipelineStages(net, config: config, sets: sets, shape: shape)
            // No rank records the whole step: graph.json and --predict take the compiler's (one micro-batch, shapes only).
            trainer.recordedGraph = graph
            let runtime = try PipelineRuntime(model: chain, firstLayers: first, replicas: shape.dp, microBatches: shape.micro, world: group)
            trainer.pipeline = runtime
            stageLayers = runtime.stageLayerNames
        }
        if lead {
            let outExisted = FileManager.default.fileExists(atPath: out)
            try UserFiles.makeFolder(out, what: "--out")
            do { try UserFiles.makeFolder(checkpointDirectory, what: checkpointDir == nil ? "--out" : "--checkpoint-dir") } catch {
                if !outExisted { try? FileManager.default.removeItem(atPath: out) }   // nothing half-made stays
                throw error
            }
            // A checkpoint being written when its run was killed stays as a hidden temporary file: gone now, unless
            // its writer is still alive (the file name carries its pid).
            for name in (try? FileManager.default.contentsOfDirectory(atPath: checkpointDirectory)) ?? []
            where name.hasPrefix(".checkpoint.safetensors.tmp-") {
                let pid = name.dropFirst(".checkpoint.safetensors.tmp-".count).split(separator: "-").first.flatMap { Int32($0) }
                if let pid, pid != getpid(), kill(pid, 0) == 0 { continue }
                try? FileManager.default.removeItem(atPath: (checkpointDirectory as NSString).appendingPathComponent(name))
            }
        }
        let metricsPath = (out as NSString).appendingPathComponent("metrics.jsonl")
        if resume {
            try trainer.resume(from: checkpointFile)
            if trainer.step > trainer.totalSteps, steps != nil || epochs != nil {
                throw CLIError("the checkpoint in \(checkpointDirectory) is at step \(trainer.step), already past the \(trainer.totalSteps) steps this run asks for (\([steps.map { "--steps \($0)" }, epochs.map { "--epochs \($0)" }].compactMap { $0 }.joined(separator: ", "))): nothing to train; ask for more, or leave them out")
            }
            // A checkpoint resumes on any rank count; with batch norm over each rank's own examples the statistics
            // then cover a different share of the batch, so the losses leave those of an uninterrupted run.
            if lead, let meta = try? Checkpoint.read(from: checkpointFile).file.metadata, let was = Int(meta["ranks"] ?? ""),
               net.stateTensors.contains(where: { $0.0.hasSuffix("runningMean") }) {
                let now = group?.size ?? 1, wasSync = meta["sync_batchnorm"] == "1" || was == 1, nowSync = syncBatchnorm || now == 1
                if was != now && !(wasSync && nowSync) {
                    print("note: the checkpoint was written by \(was) rank\(was == 1 ? "" : "s")\(wasSync || was == 1 ? "" : " with per-rank batch norm"); this run has \(now)\(nowSync || now == 1 ? "" : " with per-rank batch norm"), so its batch-norm statistics cover a different share of each batch and the losses will differ from an uninterrupted \(was)-rank run (--sync-batchnorm on both sides keeps them the same)")
                }
            }
            if lead, FileManager.default.fileExists(atPath: metricsPath) { _ = try JSONLinesReader.truncate(path: metricsPath, afterStep: trainer.step) }
        }
        let log = lead ? try JSONLinesWriter(path: metricsPath, truncate: !resume) : nil

        print("OpenDojo train: \(onnx ?? config.model) (\(net.parameterCount.formatted()) parameters) on \(config.dataset) "
              + "(\(sets.train.count.formatted()) train / \(sets.eval.count.formatted()) eval), \(config.precision), "
              + "batch \(config.batchSize)"
              + (group.map { g in
                  shape.pp > 1
                      ? " over \(g.size) ranks (dp=\(shape.dp) × pp=\(shape.pp): \(shape.micro) micro-batch\(shape.micro == 1 ? "" : "es") of \(config.batchSize / (shape.dp * shape.micro)) per replica, 1F1B)"
                      : " over \(g.size) ranks (data-parallel, \(config.batchSize / g.size) each)" } ?? "")
              + ", \(config.optimizer) lr \(config.learningRate), \(trainer.totalSteps) steps"
              + (resume ? ", resuming at step \(trainer.step)" : ""))
        if !stageLayers.isEmpty {
            print("pipeline stages (the compiler's split): " + stageLayers.enumerated().map { s, names in
                "\(s): \(names.first!)" + (names.count > 1 ? "…\(names.last!)" : "") + " (\(names.count) layer\(names.count == 1 ? "" : "s"))"
            }.joined(separator: " | "))
        }

        installStopHandlers()
        trainer.shouldStop = { stopSignal.load(ordering: .relaxed) != 0 }
        let progress = ProgressBar(total: trainLoader.batchesPerEpoch, label: "epoch \(trainer.epoch + 1)/\(config.epochs)")
        var samples = 0
        var lastStepError: Error?
        let predictOn = machine.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var predicted = false
        let showPrediction = predict
        trainer.onStep = { [unowned trainer] r in
            samples += config.batchSize
            if showPrediction, !predicted, let g = trainer.recordedGraph {
                predicted = true
                progress.finish()
                print(trainingPredictionTable(graph: g, precision: config.precision, machines: predictOn))
            }
            do {
                try log?.append(["type": "step", "step": JSONValue(r.step), "epoch": JSONValue(r.epoch), "loss": JSONValue(r.loss),
                                "lr": JSONValue(r.learningRate), "samples_per_s": JSONValue(r.samplesPerSecond),
                                "step_s": JSONValue(r.seconds), "allreduce_wait_s": JSONValue(r.communicationWait)])
            } catch { lastStepError = error }
            progress.update(completed: r.batchInEpoch, items: samples, metrics: [ProgressMetric("loss", Double(r.loss))])
        }
        let task = modelTask
        trainer.onEpoch = { r in
            progress.finish()
            // (a run resumed at the very end of an epoch trains no batch of it: no train loss to report)
            var line = "epoch \(r.epoch + 1): " + (r.trainLoss.isFinite ? "train loss \(formatFixed(Double(r.trainLoss), 4))" : "no batches left to train")
            var record: [String: JSONValue] = ["type": "eval", "step": JSONValue(r.step), "epoch": JSONValue(r.epoch)]
            if r.trainLoss.isFinite { record["train_loss"] = JSONValue(r.trainLoss) }
            if let e = r.eval {
                line += ", eval loss \(formatFixed(Double(e.loss), 4)), " + (task == .occupancy ? "cell accuracy" : "accuracy")
                    + " \(formatPercent(Double(e.accuracy)))"
                if let iou = e.iou { line += ", occupied IoU \(formatPercent(Double(iou)))" }
                record["eval_loss"] = JSONValue(e.loss); record["eval_accuracy"] = JSONValue(e.accuracy)
                if let iou = e.iou { record["eval_iou"] = JSONValue(iou) }
            }
            print(line)
            try? log?.append(record)
            if lead { try? writePlot(metricsPath: metricsPath, to: (out as NSString).appendingPathComponent("loss.svg"), task: task, title: config.model) }
            samples = 0
            progress.reset(label: "epoch \(min(r.epoch + 2, config.epochs))/\(config.epochs)")
        }

        let started = Date()
        do {
            try trainer.run()
        } catch let e as TrainingError {
            progress.finish()
            log?.close()
            if case .interrupted = e {
                FileHandle.standardError.write(Data("dojo train: \(e)\n".utf8))
                throw ExitCode(stopSignal.load(ordering: .relaxed) == SIGTERM ? 143 : 130)
            }
            throw CLIError((group.map { "rank \($0.rank) on \($0.host): " } ?? "") + "\(e)")
        }
        log?.close()
        guard lead else { return }
        if let lastStepError { throw CLIError("could not write \(metricsPath): \(lastStepError)") }
        if let g = trainer.recordedGraph {
            try g.jsonData().write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("graph.json")))
        }
        try? writePlot(metricsPath: metricsPath, to: (out as NSString).appendingPathComponent("loss.svg"), task: task, title: config.model)
        if let g = trainer.recordedGraph, !predictOn.isEmpty {
            print(trainingPredictionTable(graph: g, precision: config.precision, machines: predictOn))
        }
        // Only what is there (a resumed run that had nothing left to do records no graph).
        if lead, let exportOnnx, let net = trainer.model as? ONNXNetwork {
            do { try UserFiles.write(try net.exportedFile(), to: exportOnnx, what: "--export-onnx") } catch let e as ONNXError { throw CLIError(e.message) }
            print("wrote the trained network to \(exportOnnx) (ONNX, evaluation form)")
        }
        let wrote = [metricsPath, (out as NSString).appendingPathComponent("loss.svg"),
                     trainer.recordedGraph == nil ? "" : (out as NSString).appendingPathComponent("graph.json"), checkpointFile]
            .filter { !$0.isEmpty && FileManager.default.fileExists(atPath: $0) }
        print("done in \(formatDuration(Date().timeIntervalSince(started))): \(trainer.step) steps. Wrote \(wrote.joined(separator: ", "))")
    }

    func defaultData(_ model: String) -> String { model == "occupancy" ? "scenes" : "fashion-mnist" }

    /// The name an ONNX run's configuration (and checkpoint) gives its model: `onnx:PATH` as given.
    func onnxModelName(_ path: String) -> String { "onnx:" + path }

    /// The network of an ONNX file, checked against the data set: its input takes the data's examples at any batch
    /// (the training batch, the evaluation batch, a last partial batch, each rank's share), its output has the
    /// data's classes.
    func onnxNetwork(_ path: String, sets: DataSets.Choice, config: TrainingConfig) throws -> ONNXNetwork {
        let model = try ONNXFiles.shared.model(path)
        do {
            guard model.inputs.count == 1 else {
                throw ONNXError("\(path): the graph has \(model.inputs.count) inputs (\(model.inputs.map(\.name).joined(separator: ", "))); dojo train feeds one")
            }
            let input = model.inputs[0]
            guard !input.isTokenIDs else { throw ONNXError("\(path): input '\(input.name)' takes token ids; no text data set is built in yet") }
            let example = sets.train.inputShape
            guard input.dimensions.count == example.count + 1 else {
                throw ONNXError("\(path): input '\(input.name)' has \(input.dimensions.count) dimensions; \(config.dataset) examples are \(example.map(String.init).joined(separator: "x")) (and a batch)")
            }
            for (k, d) in input.dimensions.dropFirst().enumerated() {
                if case .fixed(let v) = d, v != example[k] {
                    throw ONNXError("\(path): input '\(input.name)' takes examples of \(input.dimensions.dropFirst().map { d -> String in if case .fixed(let v) = d { return "\(v)" }; return "N" }.joined(separator: "x")); \(config.dataset) gives \(example.map(String.init).joined(separator: "x"))")
                }
            }
            // built at batch 1 (whatever batch the file fixed), then checked at the batches the run uses
            let net = try ONNXNetwork(model, inputShapes: [input.name: [1] + example])
            let per = net.outputShape.dropFirst().map(String.init).joined(separator: "x")
            if sets.train.targetShape.count == 2 {
                // an occupancy grid per example: logits of the grid's shape, scored per cell
                guard net.task == .occupancy, Array(net.outputShape.dropFirst()) == sets.train.targetShape else {
                    throw ONNXError("\(path): the network gives \(per) per example; \(config.dataset) needs an occupancy grid of \(sets.train.targetShape.map(String.init).joined(separator: "x")) logits")
                }
            } else {
                let classes = max(1, sets.train.classNames.count)
                guard net.task == .classification, net.outputShape.last == classes else {
                    throw ONNXError("\(path): the network gives \(per) per example; \(config.dataset) needs \(classes) class scores")
                }
            }
            let ranks = max(1, trainRanks ?? 1)
            for b in Set([2, config.batchSize, max(config.batchSize, 64), max(1, config.batchSize / ranks)]) {
                do { try net.check(inputShape: [b] + example) } catch let e as ONNXError {
                    throw ONNXError("\(e.message) — at batch \(b): the file fixes its batch; export with dynamic_axes={'\(input.name)': {0: 'batch'}}")
                }
            }
            return net
        } catch let e as ONNXError { throw CLIError(e.message) }
    }

    /// Options given on the command line win, then the checkpoint's (with --resume), then the model's recipe.
    func resolveConfig(_ s: TrainingConfig?) throws -> TrainingConfig {
        let m = onnx.map(onnxModelName) ?? model ?? s?.model ?? "occupancy"
        // an ONNX network's recipe (ASSUMPTION, as the zoo's): SGD with momentum at 0.01 for a network with batch
        // norm, AdamW at 0.001 otherwise; 1 epoch
        let recipe: (optimizer: String, learningRate: Float, epochs: Int)
        if let onnx {
            let optimizer = ONNXImport.defaultOptimizer(try ONNXFiles.shared.model(onnx)).rawValue
            recipe = (optimizer, optimizer == "sgd" ? 0.01 : 1e-3, 1)
        } else {
            let entry = try ModelZoo.entry(m)
            recipe = (entry.optimizer, entry.learningRate, entry.epochs)
        }
        let opt = optimizer ?? s?.optimizer ?? recipe.optimizer
        let d = data ?? s?.dataset ?? defaultData(m)
        var c = TrainingConfig(
            model: m, dataset: d, epochs: epochs ?? s?.epochs ?? recipe.epochs, maxSteps: steps ?? s?.maxSteps,
            batchSize: batchSize ?? s?.batchSize ?? (d == "scenes" ? 32 : 128),
            learningRate: learningRate ?? s?.learningRate ?? (opt == recipe.optimizer ? recipe.learningRate : (opt == "adamw" ? 1e-3 : 0.01)),
            schedule: schedule ?? s?.schedule ?? "cosine", warmupSteps: warmup ?? s?.warmupSteps ?? 0, optimizer: opt,
            momentum: momentum ?? s?.momentum ?? 0.9, nesterov: nesterov || (s?.nesterov ?? false),
            weightDecay: weightDecay ?? s?.weightDecay ?? (opt == "adamw" ? 0.01 : 5e-4),
            precision: precision ?? s?.precision ?? "fp32", stochasticGradients: stochasticGradients || (s?.stochasticGradients ?? false),
            seed: seed ?? s?.seed ?? 0, checkpointEvery: checkpointEvery ?? s?.checkpointEvery ?? 200,
            positiveWeight: positiveWeight ?? s?.positiveWeight ?? 2, augment: augment ?? s?.augment ?? false)
        c.trainExamples = trainExamples ?? s?.trainExamples
        c.evalExamples = evalExamples ?? s?.evalExamples
        c.cameras = cameras ?? s?.cameras ?? 4
        c.imageSize = imageSize ?? s?.imageSize ?? 32
        c.gridSize = gridSize ?? s?.gridSize ?? 16
        return c
    }
}

/// What a JSONDecoder error says, in a line: the field and what was wrong with it.
func decodingProblem(_ error: any Error) -> String {
    func path(_ c: DecodingError.Context) -> String {
        c.codingPath.isEmpty ? "" : "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))': "
    }
    switch error {
    case let DecodingError.keyNotFound(key, c): return "\(path(c))field '\(key.stringValue)' is missing"
    case let DecodingError.typeMismatch(type, c): return "\(path(c))expected \(type) (\(c.debugDescription))"
    case let DecodingError.valueNotFound(type, c): return "\(path(c))expected \(type), found null"
    case let DecodingError.dataCorrupted(c): return "\(path(c))\(c.debugDescription)"
    default: return "\(error)"
    }
}

/// A user-facing failure: printed as "Error: …", exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// 0 while a run sets up (a stop then exits at once: there is nothing to save yet), 1 once it trains (a stop is a
/// request the trainer takes before its next step or evaluation batch, saving a checkpoint).
let stopPhase = Atomic<Int32>(0)

/// Takes SIGINT and SIGTERM (and SIGUSR1 under mpirun) on a thread of its own, with sigwait, from the start of a run:
/// the signals are blocked in this thread before any compute thread (OpenMP's pool, MPI's, the loader's, Dispatch's)
/// exists, so they inherit the block and no signal handler ever interrupts them. With a handler run on whichever
/// thread the signal landed on, a SIGTERM during training with 2 threads ended about one time in five in a corrupted
/// heap (occupancy net; never with --threads 1).
func takeStopSignals() {
    let usr1 = ProcessInfo.processInfo.environment["DOJO_LAUNCHER"] == "1" || MPIGroup.launchedByMPI
    // Handlers as well, for a thread that was started before this with the signals open.
    signal(SIGINT) { _ in stopSignal.store(SIGINT, ordering: .relaxed) }
    signal(SIGTERM) { _ in stopSignal.store(SIGTERM, ordering: .relaxed) }
    // Under mpirun (`dojo train --ranks`, or a service's hosts), a stop is asked with SIGUSR1, which mpirun passes on
    // to every rank on every host (a SIGTERM of its own, mpirun answers by killing them before a checkpoint is written).
    if usr1 { signal(SIGUSR1) { _ in stopSignal.store(SIGTERM, ordering: .relaxed) } }
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    if usr1 { sigaddset(&set, SIGUSR1) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
    let waited = set
    let watcher = Thread {
        var mask = waited, sig: Int32 = 0
        while true {
            guard sigwait(&mask, &sig) == 0 else { continue }
            let stop: Int32 = sig == SIGINT ? SIGINT : SIGTERM
            if stopPhase.load(ordering: .relaxed) == 0 {
                // Still setting up (reading data, building the model): nothing to save, stop now.
                let line = "dojo train: interrupted before training started; nothing was saved\n"
                _ = line.withCString { write(2, $0, strlen($0)) }
                _exit(stop == SIGTERM ? 143 : 130)
            }
            stopSignal.store(stop, ordering: .relaxed)
        }
    }
    watcher.name = "dojo.stop-signals"
    watcher.start()
}

/// From here on a stop saves a checkpoint and ends the run (`takeStopSignals` took the signals at the start).
func installStopHandlers() {
    stopPhase.store(1, ordering: .relaxed)
}

/// Loss (left axis) and accuracy (right axis) from a metrics log.
func writePlot(metricsPath: String, to path: String, task: Task, title: String) throws {
    let rows = try JSONLinesReader.read(path: metricsPath)
    func num(_ v: JSONValue?) -> Double? { if case .number(let d)? = v { return d }; return nil }
    var train: [(x: Double, y: Double)] = [], evalLoss: [(x: Double, y: Double)] = [], acc: [(x: Double, y: Double)] = []
    var iou: [(x: Double, y: Double)] = []
    for r in rows {
        guard let step = num(r["step"]) else { continue }
        if case .string("step")? = r["type"], let l = num(r["loss"]) { train.append((step, l)) }
        if case .string("eval")? = r["type"] {
            if let l = num(r["eval_loss"]) { evalLoss.append((step, l)) }
            if let a = num(r["eval_accuracy"]) { acc.append((step, a * 100)) }
            if let i = num(r["eval_iou"]) { iou.append((step, i * 100)) }
        }
    }
    var chart = SVGChart(title: "dojo train: \(title)", xLabel: "step", yLabel: "loss", y2Label: "accuracy", y2Unit: "%")
    chart.addSeries(name: "train loss", points: train)
    chart.addSeries(name: "eval loss", points: evalLoss, dashed: true)
    chart.addSeries(name: task == .occupancy ? "eval cell accuracy" : "eval accuracy", points: acc, axis: .right)
    if !iou.isEmpty { chart.addSeries(name: "eval occupied IoU", points: iou, axis: .right) }
    try chart.svg().write(toFile: path, atomically: true, encoding: .utf8)
}


/// The slots an Open MPI hostfile offers (`HOST [slots=K]` a line, `#` comments; a host without slots counts 1).
func hostfileSlots(_ path: String) throws -> Int {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw CLIError("--hostfile \(path): cannot read it (no such file)") }
    guard !isFolder.boolValue, let handle = FileHandle(forReadingAtPath: path) else {
        throw CLIError("--hostfile \(path): cannot read it (\(isFolder.boolValue ? "a folder" : "permission denied"))")
    }
    defer { try? handle.close() }
    guard let data = try? handle.read(upToCount: 1 << 20) ?? Data() else { throw CLIError("--hostfile \(path): cannot read it") }
    var slots = 0
    var seen = Set<String>()
    var maxSlots: Int?
    for (n, raw) in String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        if line.isEmpty { continue }
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard let host = words.first, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_:".contains($0)) }) else {
            throw CLIError("--hostfile \(path) line \(n + 1): '\(String(line.prefix(60)).debugDescription.dropFirst().dropLast())' does not start with a host name or address")
        }
        guard seen.insert(String(host)).inserted else { throw CLIError("--hostfile \(path) line \(n + 1): host \(host) is named twice (give it slots=K once)") }
        var k = 1
        for w in words.dropFirst() {
            if w.hasPrefix("slots=") {
                guard let v = Int(w.dropFirst(6)), v >= 1 else { throw CLIError("--hostfile \(path) line \(n + 1): slots must be a whole number ≥ 1, got '\(w)'") }
                k = v
            } else if w.hasPrefix("max_slots=") {
                guard let v = Int(w.dropFirst(10)), v >= 1 else { throw CLIError("--hostfile \(path) line \(n + 1): max_slots must be a whole number ≥ 1, got '\(w)'") }
                maxSlots = v
            } else {
                throw CLIError("--hostfile \(path) line \(n + 1): '\(String(w.prefix(40)).debugDescription.dropFirst().dropLast())' is not slots=K or max_slots=K (one host a line)")
            }
        }
        if let m = maxSlots, m < k { throw CLIError("--hostfile \(path) line \(n + 1): max_slots=\(m) is less than slots=\(k)") }
        maxSlots = nil
        slots += k
    }
    guard slots > 0 else { throw CLIError("--hostfile \(path) names no host (one `HOST slots=K` a line)") }
    return slots
}
