import DojoData
import DojoGraph
import DojoTensor
import Foundation

/// Everything that decides a training run. Saved in every checkpoint.
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var model: String
    public var dataset: String
    public var epochs: Int
    /// Stop after this many steps in all (nil: run every epoch).
    public var maxSteps: Int?
    public var batchSize: Int
    public var learningRate: Float
    public var schedule: String
    public var warmupSteps: Int
    public var optimizer: String
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    public var precision: String
    public var stochasticGradients: Bool
    public var seed: UInt64
    public var checkpointEvery: Int
    /// Occupancy only: weight of occupied cells in the loss (they are rare).
    public var positiveWeight: Float
    /// Random augmentation of training examples (flips, shifts; mirrored scenes).
    public var augment: Bool = true
    /// How the data set was made: examples used (nil: the data set's default), and for scenes the cameras, the
    /// image side and the BEV grid side. A resumed run rebuilds exactly the same data from these.
    public var trainExamples: Int? = nil
    public var evalExamples: Int? = nil
    public var cameras: Int = 4
    public var imageSize: Int = 32
    public var gridSize: Int = 16

    public init(model: String, dataset: String, epochs: Int = 1, maxSteps: Int? = nil, batchSize: Int = 32,
                learningRate: Float = 0.05, schedule: String = "cosine", warmupSteps: Int = 0, optimizer: String = "sgd",
                momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 5e-4, precision: String = "fp32",
                stochasticGradients: Bool = false, seed: UInt64 = 0, checkpointEvery: Int = 200, positiveWeight: Float = 2,
                augment: Bool = true) {
        self.model = model; self.dataset = dataset; self.epochs = epochs; self.maxSteps = maxSteps; self.batchSize = batchSize
        self.learningRate = learningRate; self.schedule = schedule; self.warmupSteps = warmupSteps; self.optimizer = optimizer
        self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay; self.precision = precision
        self.stochasticGradients = stochasticGradients; self.seed = seed; self.checkpointEvery = checkpointEvery
        self.positiveWeight = positiveWeight; self.augment = augment
    }
}

extension TrainingConfig {
    /// Counts above this are refused (a run of 10^9 steps or examples is beyond what a CPU trains; larger numbers
    /// overflow schedules and step counters).
    public static let maxCount = 1_000_000_000

    /// The first value no run can train with, said in the terms of `dojo train`'s flags (`--momentum must be a
    /// number in [0, 1), got 2`), or nil. The one list of the rules: the CLI checks the configuration it resolved
    /// from flags, recipe and checkpoint with it, so a tampered checkpoint is held to the flags' bounds.
    public func problem() -> String? {
        func count(_ v: Int?, _ flag: String, min: Int = 1) -> String? {
            guard let v else { return nil }
            if v < min { return "--\(flag) must be at least \(min), got \(v)" }
            if v > Self.maxCount { return "--\(flag) must be at most 1,000,000,000, got \(v)" }
            return nil
        }
        let checks: [String?] = [
            count(epochs, "epochs"), count(maxSteps, "steps"), count(batchSize, "batch-size"),
            count(warmupSteps, "warmup", min: 0), count(checkpointEvery, "checkpoint-every", min: 0),
            count(trainExamples, "train-examples"), count(evalExamples, "eval-examples"),
            learningRate > 0 && learningRate.isFinite ? nil : "--lr must be a positive number, got \(learningRate)",
            momentum >= 0 && momentum < 1 ? nil : "--momentum must be a number in [0, 1), got \(momentum)",
            weightDecay >= 0 && weightDecay.isFinite ? nil : "--weight-decay must be 0 or more, got \(weightDecay)",
            positiveWeight > 0 && positiveWeight.isFinite ? nil : "--positive-weight must be a positive number, got \(positiveWeight)",
            ["sgd", "adamw"].contains(optimizer) ? nil : "unknown optimizer '\(optimizer)'; choose sgd or adamw",
            PrecisionPolicy.Mode(rawValue: precision) != nil ? nil : "unknown precision '\(precision)'; choose fp32, bf16 or cfp8",
            LearningRateSchedule.Shape(rawValue: schedule) != nil ? nil : "unknown schedule '\(schedule)'; choose cosine or constant",
            (1...8).contains(cameras) ? nil : "--cameras must be 1…8, got \(cameras)",
            (8...256).contains(imageSize) ? nil : "--image-size must be 8…256 pixels, got \(imageSize)",
            (2...128).contains(gridSize) ? nil : "--grid-size must be 2…128 cells, got \(gridSize)",
        ]
        return checks.compactMap { $0 }.first
    }
}

public struct StepReport: Sendable {
    public var step: Int, epoch: Int, batchInEpoch: Int, batchesPerEpoch: Int, totalSteps: Int
    public var loss: Float, learningRate: Float
    public var samplesPerSecond: Double, seconds: Double
    /// Data-parallel: seconds the step waited for gradient sums after backward (0 in one process).
    public var communicationWait: Double = 0
}

/// Metrics of a pass over an evaluation set.
public struct EvalMetrics: Sendable, Codable, Equatable {
    public var loss: Float
    /// Classification: share of examples whose top class is right. Occupancy: share of cells right. Language
    /// modelling: share of tokens whose most likely prediction is right.
    public var accuracy: Float
    /// Occupancy only: intersection over union of the occupied cells, precision and recall.
    public var iou: Float?
    public var precision: Float?
    public var recall: Float?
    public var examples: Int
}

public struct EpochReport: Sendable {
    public var epoch: Int, step: Int
    public var trainLoss: Float
    public var eval: EvalMetrics?
    public var seconds: Double
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int, loss: Float, checkpoint: String?, precision: String)
    case interrupted(step: Int, checkpoint: String?)
    case badCheckpoint(String)
    case invalidConfig(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let s, let l, let c, let p):
            return "the loss became \(l.isNaN ? "NaN (not a number)" : "infinite") at step \(s); training stopped. "
                + (c.map { "The last good checkpoint is \($0)." } ?? "No checkpoint was written yet.")
                + (p == "fp32" ? " Try a lower --lr or --weight-decay." : " Try a lower --lr or --weight-decay, or --precision fp32.")
        case .interrupted(let s, let c):
            return "interrupted at step \(s)" + (c.map { "; checkpoint saved to \($0) (continue with --resume)" } ?? "")
        case .badCheckpoint(let m): return m
        case .invalidConfig(let m): return m
        }
    }
}

/// Trains a model on a data set: forward under a tape, backward, Dojo-precision rounding, optimizer step;
/// evaluation at each epoch's end; checkpoints that resume bit for bit.
public final class Trainer {
    public let config: TrainingConfig
    public let model: Module
    public let task: Task
    public let train: DataLoader
    public let eval: DataLoader?
    public let optimizer: Optimizer
    public let policy: PrecisionPolicy?
    public let schedule: LearningRateSchedule
    public let checkpointPath: String?

    public var onStep: ((StepReport) -> Void)?
    public var onEpoch: ((EpochReport) -> Void)?
    /// Polled between steps (e.g. set by SIGINT/SIGTERM): the trainer saves a checkpoint and stops. With a
    /// data-parallel group, any rank's request stops every rank at the same step.
    public var shouldStop: () -> Bool = { false }
    /// Data-parallel training across processes (nil: this process alone). Only rank 0 writes checkpoints.
    public var group: DataParallelGroup?
    /// Seconds the last step waited for gradient sums after its backward pass (what overlap did not hide).
    public private(set) var lastExposedCommunication = 0.0
    /// Sum gradients bucket by bucket while backward runs (default); false: all of them after backward (to measure
    /// what the overlap hides).
    public var overlapCommunication = true
    /// The format gradients are summed over the ranks in: fp32 (exact up to the order of sums) or bf16 (half the bytes).
    public var gradientReduceFormat = GradientReduceFormat.fp32
    /// With a group: batch norm uses the statistics of the whole global batch, summed over the ranks in every
    /// forward and backward (synchronised; the run normalises as one process does), instead of each rank's own
    /// examples (the default, as PyTorch's DDP without SyncBatchNorm: no extra messages, statistics of fewer examples).
    public var syncBatchNorm = false
    /// The first failure of a batch-norm sum inside forward or backward (which cannot throw), raised after the step.
    var batchNormSyncFailure: Error?
    /// The gradient reduction of the last step, reused by the next one with the same weight.
    var reductionCache: OverlappedGradientReduction?
    /// Pipeline-parallel training (`dojo train --plan dp=D,pp=P`): this rank's stage (nil: every rank holds the whole
    /// model). `group` is then every rank of the run.
    public var pipeline: PipelineRuntime?
    /// Seconds the last pipeline step waited for its stage's gradient sums over the replicas.
    var lastPipelineReduction = 0.0

    /// Position: steps done, and where in which epoch the next batch comes from.
    public private(set) var step = 0
    public private(set) var epoch = 0
    public private(set) var batchInEpoch = 0
    /// The Graph IR of the first training step this trainer ran.
    public var recordedGraph: Graph?

    public init(config: TrainingConfig, model: Module, task: Task, train: DataLoader, eval: DataLoader?,
                checkpointDirectory: String?) throws {
        guard config.epochs >= 1 else { throw TrainingError.invalidConfig("epochs must be at least 1, got \(config.epochs)") }
        guard config.batchSize >= 1 else { throw TrainingError.invalidConfig("batch size must be at least 1, got \(config.batchSize)") }
        guard config.learningRate > 0, config.learningRate.isFinite else {
            throw TrainingError.invalidConfig("learning rate must be positive, got \(config.learningRate)")
        }
        self.config = config; self.model = model; self.task = task; self.train = train; self.eval = eval
        switch config.optimizer {
        case "sgd": optimizer = SGD(momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay)
        case "adamw": optimizer = AdamW(weightDecay: config.weightDecay)
        default: throw TrainingError.invalidConfig("unknown optimizer '\(config.optimizer)'; choose sgd or adamw")
        }
        guard let mode = PrecisionPolicy.Mode(rawValue: config.precision) else {
            throw TrainingError.invalidConfig("unknown precision '\(config.precision)'; choose fp32, bf16 or cfp8")
        }
        policy = mode == .fp32 ? nil : PrecisionPolicy(mode: mode, stochasticGradients: config.stochasticGradients, seed: config.seed)
        guard let shape = LearningRateSchedule.Shape(rawValue: config.schedule) else {
            throw TrainingError.invalidConfig("unknown schedule '\(config.schedule)'; choose constant or cosine")
        }
        schedule = LearningRateSchedule(base: config.learningRate, warmupSteps: config.warmupSteps,
                                        totalSteps: plannedSteps(config, train), shape: shape)
        checkpointPath = checkpointDirectory.map { ($0 as NSString).appendingPathComponent("checkpoint.safetensors") }
    }

    public var totalSteps: Int { plannedSteps(config, train) }

    /// The loss of one batch (and the model's output), in training or evaluation mode.
    func forward(_ batch: Batch, training: Bool, seed: UInt64, sync: BatchNormSync? = nil) -> (loss: Tensor, output: Tensor) {
        let x = Tensor(batch.inputs, shape: batch.inputShape)
        let ctx = ForwardContext(training: training, seed: seed, precision: policy, batchNormSync: sync)
        return Module.$context.withValue(ctx) {
            let y = model(x)
            return (loss(of: y, batch), y)
        }
    }

    /// The task's loss of the model's output `y` for `batch` (its mean over the batch's examples).
    func loss(of y: Tensor, _ batch: Batch) -> Tensor {
        switch task {
        case .classification:
            return y.crossEntropy(labels: batch.labels)
        case .occupancy:
            let t = Tensor(batch.targets, shape: batch.targetShape)
            return y.binaryCrossEntropyWithLogits(targets: t, positiveWeight: config.positiveWeight)
        case .languageModeling:
            // inputs [B, T] token ids, targets [B, T] the token to predict at each position
            let v = y.shape[y.rank - 1]
            return y.reshaped([-1, v]).crossEntropy(labels: batch.targets.map { Int32($0) })
        }
    }

    /// Runs training to the end (or until `shouldStop`), from the current position.
    @discardableResult
    public func run() throws -> [EpochReport] {
        var reports: [EpochReport] = []
        let parameters = model.parameters
        // Each rank prepares only the share of every global batch it trains on (`shard` below, or its replica's in a
        // pipeline); the other rows of the batch it iterates stay empty.
        train.part = pipeline.map { ($0.replica, $0.replicas) } ?? group.map { ($0.rank, $0.size) }
        if let group, syncBatchNorm, group.size > 1 {
            // Every rank must take part in every batch-norm sum: none may have an empty share of a batch.
            let last = train.dataset.count % config.batchSize
            if !train.dropLast && last > 0 && last < group.size {
                throw TrainingError.invalidConfig("synchronised batch norm needs an example per rank in every batch: the last batch of each epoch has \(last) examples for \(group.size) ranks (change the number of examples or the batch size)")
            }
        }
        var stoppedInEvaluation = false
        while epoch < config.epochs && !finishedSteps {
            let epochStart = Date()
            var lossSum = 0.0, lossCount = 0
            for global in train.batches(epoch: epoch, startingAt: batchInEpoch) {
                var stop = shouldStop()
                if let group { group.keepAlive(); stop = try group.allReduceMax(stop ? 1 : 0) != 0 }
                if stop {
                    try consolidatePipeline()
                    let saved = try saveCheckpointIfConfigured()
                    throw TrainingError.interrupted(step: step, checkpoint: saved)
                }
                let t0 = Date()
                let tape = Tape()
                policy?.step = step
                policy?.updatesHistory = true
                var lossValue: Float = 0
                var grads = Gradients()
                var batch = global
                if let pipeline {
                    (lossValue, grads) = try pipelineStep(global, pipeline)
                    lastExposedCommunication = lastPipelineReduction
                } else {
                    // This rank's share of the global batch (all of it without a group).
                    batch = group.map { global.shard($0.rank, of: $0.size) } ?? global
                    // With a group: the global batch's mean loss and its gradient, each rank's weighted by its share
                    // (backward is seeded with it) and summed over the ranks, bucket by bucket while backward still runs.
                    let weight = Float(batch.size) / Float(global.size)
                    var reduction: OverlappedGradientReduction?
                    if let group {
                        // One per format, kept across steps (its buffers are as large as the model).
                        if let r = reductionCache, r.format == gradientReduceFormat { r.reset(); reduction = r } else {
                            reduction = OverlappedGradientReduction(group: group, parameters: parameters, format: gradientReduceFormat)
                            reductionCache = reduction
                        }
                    }
                    if batch.size > 0 {
                        var sync: BatchNormSync?
                        if let group, syncBatchNorm, group.size > 1 {
                            sync = BatchNormSync(weight: Double(weight)) { [unowned self] p, n in
                                guard self.batchNormSyncFailure == nil else { return }
                                do { try group.allReduceSum(p, count: n) } catch { self.batchNormSyncFailure = error }
                            }
                        }
                        let (loss, _) = tape.record { forward(batch, training: true, seed: mix(config.seed, UInt64(step)), sync: sync) }
                        lossValue = loss.item
                        if let reduction {
                            // Without overlap nothing is watched: `finish` sums every gradient after backward.
                            grads = tape.backward(from: loss, scale: weight, watching: overlapCommunication ? parameters.map(\.1) : []) {
                                reduction.ready($0, $1, exclusive: $2)
                            }
                        } else {
                            grads = tape.backward(from: loss)
                        }
                    }
                    if let failure = batchNormSyncFailure { throw failure }
                    if let group, let reduction {
                        try reduction.finish(into: &grads)
                        lastExposedCommunication = reduction.exposedSeconds
                        var l = lossValue * weight
                        try group.allReduceSum(&l, count: 1)
                        lossValue = l
                    }
                }
                guard lossValue.isFinite else {
                    throw TrainingError.nonFiniteLoss(step: step, loss: lossValue,
                                                      checkpoint: checkpointPath.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil },
                                                      precision: config.precision)
                }
                // A pipeline stage updates its own parameters only.
                let updated = pipeline?.ownParameters ?? parameters
                if let policy { for (path, p) in updated { if let g = grads[p] { policy.roundGradient(g, site: path) } } }
                let lr = schedule.rate(at: step)
                let records = recordedGraph == nil && pipeline == nil
                optimizer.step(updated, gradients: grads, learningRate: lr, tape: records ? tape : nil)
                if records, batch.size > 0 { recordedGraph = tape.graph(model: config.model, batch: batch.size) }
                step += 1
                batchInEpoch += 1
                lossSum += Double(lossValue); lossCount += 1
                let dt = Date().timeIntervalSince(t0)
                onStep?(StepReport(step: step, epoch: epoch, batchInEpoch: batchInEpoch, batchesPerEpoch: train.batchesPerEpoch,
                                   totalSteps: totalSteps, loss: lossValue, learningRate: lr,
                                   samplesPerSecond: Double(global.size) / max(dt, 1e-9), seconds: dt,
                                   communicationWait: group == nil ? 0 : lastExposedCommunication))
                if config.checkpointEvery > 0 && step % config.checkpointEvery == 0 { try consolidatePipeline(); _ = try saveCheckpointIfConfigured() }
                if finishedSteps { break }
            }
            let epochDone = batchInEpoch >= train.batchesPerEpoch
            try consolidatePipeline()   // every rank, also those that do not evaluate
            var metrics: EvalMetrics? = nil
            if let eval {
                // A stop asked during evaluation ends it at the next batch: the checkpoint holds the steps trained.
                // Under MPI rank 0 evaluates alone while the others wait in the next step's stop vote: it joins that
                // vote (its stop stands), and every rank stops there together; after the last epoch there is no vote,
                // and it stops at the end.
                if let m = evaluate(eval, stoppable: true) {
                    metrics = m
                } else if group == nil {
                    let saved = try saveCheckpointIfConfigured()
                    throw TrainingError.interrupted(step: step, checkpoint: saved)
                } else {
                    stoppedInEvaluation = true
                }
            }
            if !stoppedInEvaluation {
                let report = EpochReport(epoch: epoch, step: step, trainLoss: lossCount > 0 ? Float(lossSum / Double(lossCount)) : .nan,
                                         eval: metrics, seconds: Date().timeIntervalSince(epochStart))
                reports.append(report)
                onEpoch?(report)
            }
            if epochDone { epoch += 1; batchInEpoch = 0 }
        }
        try consolidatePipeline()
        let saved = try saveCheckpointIfConfigured()
        if stoppedInEvaluation { throw TrainingError.interrupted(step: step, checkpoint: saved) }
        return reports
    }

    var finishedSteps: Bool { config.maxSteps.map { step >= $0 } ?? false }

    /// Loss and accuracy (and IoU for occupancy) over a whole evaluation set.
    public func evaluate(_ loader: DataLoader) -> EvalMetrics {
        evaluate(loader, stoppable: false)!
    }

    /// The same, polling `shouldStop` before every batch when `stoppable`: nil when it asked to stop.
    func evaluate(_ loader: DataLoader, stoppable: Bool) -> EvalMetrics? {
        policy?.updatesHistory = false
        defer { policy?.updatesHistory = true }
        var lossSum = 0.0, examples = 0, correct = 0, cells = 0, tp = 0, fp = 0, fn = 0
        for batch in loader.batches(epoch: 0) {
            if stoppable && shouldStop() { return nil }
            group?.keepAlive()
            let (loss, y) = forward(batch, training: false, seed: 0)
            lossSum += Double(loss.item) * Double(batch.size)
            examples += batch.size
            switch task {
            case .classification:
                let c = y.shape[1]
                for i in 0..<batch.size {
                    var best = 0
                    for j in 1..<c where y.pointer[i * c + j] > y.pointer[i * c + best] { best = j }
                    if best == Int(batch.labels[i]) { correct += 1 }
                }
            case .occupancy:
                for i in 0..<y.count {
                    let predicted = y.pointer[i] > 0, actual = batch.targets[i] > 0.5
                    if predicted == actual { correct += 1 }
                    if predicted && actual { tp += 1 } else if predicted { fp += 1 } else if actual { fn += 1 }
                }
                cells += y.count
            case .languageModeling:
                let v = y.shape[y.rank - 1]
                for i in 0..<(y.count / v) {
                    var best = 0
                    for j in 1..<v where y.pointer[i * v + j] > y.pointer[i * v + best] { best = j }
                    if best == Int(batch.targets[i]) { correct += 1 }
                }
                cells += y.count / v
            }
        }
        let loss = Float(lossSum / Double(max(examples, 1)))
        if task == .languageModeling {
            return EvalMetrics(loss: loss, accuracy: Float(correct) / Float(max(cells, 1)), examples: examples)
        }
        if task == .occupancy {
            return EvalMetrics(loss: loss, accuracy: Float(correct) / Float(max(cells, 1)),
                               iou: Float(tp) / Float(max(tp + fp + fn, 1)), precision: Float(tp) / Float(max(tp + fp, 1)),
                               recall: Float(tp) / Float(max(tp + fn, 1)), examples: examples)
        }
        return EvalMetrics(loss: loss, accuracy: Float(correct) / Float(max(examples, 1)), examples: examples)
    }

    func saveCheckpointIfConfigured() throws -> String? {
        guard let checkpointPath else { return nil }
        try Checkpoint(trainer: self).write(to: checkpointPath)
        return checkpointPath
    }

    /// Continues from a checkpoint: weights, running statistics, optimizer state, precision history, position.
    public func resume(from path: String) throws {
        let c = try Checkpoint.read(from: path)
        try c.restore(into: self)
    }

    func setPosition(step: Int, epoch: Int, batchInEpoch: Int) {
        self.step = step; self.epoch = epoch; self.batchInEpoch = batchInEpoch
    }
}

func plannedSteps(_ config: TrainingConfig, _ train: DataLoader) -> Int {
    let all = config.epochs * train.batchesPerEpoch
    return config.maxSteps.map { min($0, all) } ?? all
}

/// A seed for step `b` of a run seeded `a`.
func mix(_ a: UInt64, _ b: UInt64) -> UInt64 { SplitMix64.mix(a, b) }
