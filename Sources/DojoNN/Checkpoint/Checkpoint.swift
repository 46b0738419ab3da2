import DojoTensor
import Foundation

/// A training checkpoint as a safetensors file: the model's tensors under `model.<path>`, the optimizer's under
/// `optimizer.<path>.<state>`, and in the metadata the position, the configuration and the precision history,
/// so that a resumed run continues with the same losses, bit for bit.
public struct Checkpoint {
    public static let formatName = "opendojo-checkpoint"
    public var file: SafeTensorsFile

    init(trainer t: Trainer) throws {
        var f = SafeTensorsFile()
        for (name, tensor) in t.model.stateTensors {
            f.setFloats("model." + name, shape: tensor.shape, values: UnsafeBufferPointer(tensor.storage.buffer))
        }
        for (name, tensor) in t.optimizer.state {
            f.setFloats("optimizer." + name, shape: tensor.shape, values: UnsafeBufferPointer(tensor.storage.buffer))
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ v: T) throws -> String { String(decoding: try enc.encode(v), as: UTF8.self) }
        f.metadata = [
            "format": Checkpoint.formatName,
            "model": t.config.model,
            "step": String(t.step), "epoch": String(t.epoch), "batch_in_epoch": String(t.batchInEpoch),
            "config": try json(t.config),
            "optimizer": t.optimizer.name,
            "optimizer_counters": try json(t.optimizer.counters),
            "precision_history": try json(t.policy?.history ?? [:]),
            // How the batch norms saw the batch: a run resumed otherwise normalises differently (said on resume).
            "ranks": String(t.group?.size ?? 1), "sync_batchnorm": t.syncBatchNorm ? "1" : "0",
        ]
        file = f
    }

    init(file: SafeTensorsFile) { self.file = file }

    public func write(to path: String) throws { try file.write(to: path) }

    public static func read(from path: String) throws -> Checkpoint {
        let f = try SafeTensorsFile.read(from: path)
        guard f.metadata["format"] == formatName else {
            throw TrainingError.badCheckpoint("\(path) is a safetensors file but not an OpenDojo training checkpoint (no format=\(formatName) in its metadata)")
        }
        return Checkpoint(file: f)
    }

    /// The model this checkpoint was written for.
    public var modelName: String { file.metadata["model"] ?? "?" }

    func restore(into t: Trainer) throws {
        let source = file.source
        guard modelName == t.config.model else {
            throw TrainingError.badCheckpoint("\(source) holds a checkpoint of model '\(modelName)', not '\(t.config.model)'")
        }
        func int(_ key: String) throws -> Int {
            guard let s = file.metadata[key], let v = Int(s), v >= 0 else {
                throw TrainingError.badCheckpoint("\(source): metadata '\(key)' is missing or not a count")
            }
            return v
        }
        // every model tensor must be there with its shape, and nothing else
        let state = t.model.stateTensors
        let expected = Set(state.map { "model." + $0.0 })
        let present = Set(file.names.filter { $0.hasPrefix("model.") })
        if let missing = expected.subtracting(present).sorted().first {
            throw TrainingError.badCheckpoint("\(source) does not fit model '\(t.config.model)': it has no tensor \(missing)")
        }
        if let extra = present.subtracting(expected).sorted().first {
            throw TrainingError.badCheckpoint("\(source) does not fit model '\(t.config.model)': it has a tensor \(extra) that the model lacks")
        }
        var loaded: [(Tensor, [Float])] = []
        for (name, tensor) in state {
            let (shape, values) = try file.floats("model." + name)
            guard shape == tensor.shape else {
                throw TrainingError.badCheckpoint("\(source) does not fit model '\(t.config.model)': \(name) is \(shape) there, \(tensor.shape) here")
            }
            guard values.allSatisfy(\.isFinite) else {
                throw TrainingError.badCheckpoint("\(source): tensor model.\(name) holds values that are not finite (NaN or ∞): the checkpoint is damaged")
            }
            loaded.append((tensor, values))
        }
        var optimizerState: [String: Tensor] = [:]
        for name in file.names where name.hasPrefix("optimizer.") {
            let (shape, values) = try file.floats(name)
            optimizerState[String(name.dropFirst("optimizer.".count))] = Tensor(values, shape: shape)
        }
        let dec = JSONDecoder()
        guard let counters = try? dec.decode([String: Int].self, from: Data((file.metadata["optimizer_counters"] ?? "{}").utf8)) else {
            throw TrainingError.badCheckpoint("\(source): metadata 'optimizer_counters' is not a JSON object of counts")
        }
        guard let history = try? dec.decode([String: [Float]].self, from: Data((file.metadata["precision_history"] ?? "{}").utf8)) else {
            throw TrainingError.badCheckpoint("\(source): metadata 'precision_history' is not a JSON object of number lists")
        }
        guard file.metadata["optimizer"] == t.optimizer.name else {
            throw TrainingError.badCheckpoint("\(source) was written with optimizer \(file.metadata["optimizer"] ?? "?"), this run uses \(t.optimizer.name)")
        }
        let step = try int("step"), epoch = try int("epoch"), batch = try int("batch_in_epoch")
        // The position is one number three ways: steps done = epoch × batches per epoch + batches into this epoch
        // (tampered metadata such as step=2^63−1 or batch_in_epoch=1000000 resumed "successfully"; issue 12).
        let perEpoch = t.train.batchesPerEpoch
        let (whole, overflow) = epoch.multipliedReportingOverflow(by: perEpoch)
        guard batch <= perEpoch, !overflow, whole.addingReportingOverflow(batch) == (step, false) else {
            throw TrainingError.badCheckpoint("\(source): its position does not add up (step \(step), epoch \(epoch), batch \(batch) of \(perEpoch) per epoch): the metadata is damaged, or the data set differs")
        }
        // …and within the run that wrote it: its own configuration's steps (consistent tampering such as epoch=10^18
        // with step = epoch × batches resumed "successfully" and wrote the number back).
        if let json = file.metadata["config"], let own = try? dec.decode(TrainingConfig.self, from: Data(json.utf8)) {
            let (all, o) = own.epochs.multipliedReportingOverflow(by: perEpoch)
            let end = min(own.maxSteps ?? Int.max, o ? Int.max : all)
            guard step <= end else {
                throw TrainingError.badCheckpoint("\(source): its position (step \(step), epoch \(epoch)) is past the end of the run that wrote it (\(end) steps): the metadata is damaged, or the data set differs")
            }
        }
        // the optimizer checks its state as it takes it (a failed resume ends the run), then the weights change
        do { try t.optimizer.restore(state: optimizerState, counters: counters) } catch {
            throw TrainingError.badCheckpoint("\(source): its optimizer state does not fit: \(error)")
        }
        for (tensor, values) in loaded { values.withUnsafeBufferPointer { tensor.pointer.update(from: $0.baseAddress!, count: values.count) } }
        t.policy?.restore(history: history)
        t.setPosition(step: step, epoch: epoch, batchInEpoch: batch)
    }
}
