import DojoCompiler
import DojoMachine
import DojoSim
import Foundation
import Testing

/// The shipped validation data read into cases, the FLOP conventions against the sources' own figures,
/// `Validation.evaluate` with synthetic simulators, and the strict CSV reader's errors.
@Suite("Validation data and scoring")
struct ValidationTests {
    func shipped() throws -> [ValidationCase] { try Validation.shippedCases() }

    func shippedCase(_ id: String) throws -> ValidationCase {
        try #require(try shipped().first { $0.id == id }, "no case \(id)")
    }

    // MARK: - The shipped data

    @Test("NeMo from 24.01 on an H100 or a B200 reads attention_kernel=cudnn (Transformer Engine >= 1.2, Hopper+); NeMo 23.x and A100s keep FlashAttention's figures")
    func nemoAttentionKernel() throws {
        let header = "id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source"
        func row(_ id: String, gpu: String, version: String) -> String {
            "\(id),8x DGX,\(gpu),64,8,not stated,Llama 2 70B pretraining,seq 4096; MBS 1; NeMo \(version),FP8,128,TP=4; PP=4; VP=20; DP=4,training throughput per GPU,1707,tokens/s/GPU,https://github.com/NVIDIA/NeMo/blob/x/docs/source/performance/performance_summary.md (NeMo \(version) container)"
        }
        let cases = try Validation.parseCases(csv: [header, row("h24", gpu: "H100-SXM5-80GB", version: "24.03"),
                                                    row("h23", gpu: "H100-SXM5-80GB", version: "23.11"),
                                                    row("a24", gpu: "A100-SXM4-80GB", version: "24.07"),
                                                    row("b25", gpu: "B200 SXM (DGX-B200)", version: "25.11")].joined(separator: "\n") + "\n",
                                              file: "nemo.csv")
        #expect(cases.first { $0.id == "h24" }?.assumptions["attention_kernel"] == "cudnn")
        #expect(cases.first { $0.id == "b25" }?.assumptions["attention_kernel"] == "cudnn")
        #expect(cases.first { $0.id == "h23" }?.assumptions["attention_kernel"] == nil)
        #expect(cases.first { $0.id == "a24" }?.assumptions["attention_kernel"] == nil)
    }

    @Test("the shipped CSV parses into 27 cases: 26 supported (MLPerf BERT's packed samples too), Mask R-CNN skipped, 3 time-to-train")
    func shippedCases() throws {
        let cases = try shipped()
        #expect(cases.count == 27)
        #expect(Set(cases.map(\.id)).count == 27)
        let unsupported = cases.filter { $0.unsupported != nil }
        #expect(unsupported.map(\.id) == ["mlp30-maskrcnn-dgxh100-1n"])
        #expect(unsupported.last?.unsupported?.contains("Mask R-CNN") == true)
        #expect(cases.filter { $0.kind == .timeToTrain }.map(\.id).sorted()
                == ["mlp30-gpt3-3584g-ttt", "mlp30-rn50-dgxh100-8n-ttt", "mlp40-gpt3-11616g-ttt"])
        // Every supported case has a model spec and a machine that resolves, with enough GPUs.
        for c in cases where c.unsupported == nil {
            #expect(c.modelSpec != nil, "\(c.id)")
            let m = try c.machine()
            guard case .gpu(let g) = m.system else { Issue.record("\(c.id): not a GPU machine"); continue }
            #expect(g.nodes == c.nodes, "\(c.id)")
            #expect(g.nodes * g.server.gpus >= c.gpus, "\(c.id)")
            #expect(c.source.hasPrefix("http") || c.source.hasPrefix("arXiv"), "\(c.id): \(c.source)")
        }
        // Each row keeps its source, and the line it came from (header is line 1).
        #expect(cases.first?.line == 2)
        #expect(cases.last?.line == 28)
    }

    @Test("meg21-145b-1536g: 192 DGX A100, GPT 80 × 12288, seq 2048, vocab 51200, fp16, batch 2304, TP×PP = 64")
    func megatron145B() throws {
        let c = try shippedCase("meg21-145b-1536g")
        #expect(c.machinePreset == "dgx-a100")
        #expect(c.nodes == 192)
        #expect(c.gpus == 1536)
        #expect(c.machineSpec == "dgx-a100x192")
        #expect(c.machineOverrides.isEmpty)
        let t = try #require(c.transformer)
        #expect(t.hidden == 12288 && t.layers == 80 && t.sequence == 2048 && t.vocabulary == 51200)
        #expect(t.heads == 96)  // not published: hidden ÷ 128, and said so
        #expect(c.notes.contains { $0.contains("heads not stated") })
        #expect(c.modelSpec == "gpt:layers=80,hidden=12288,heads=96,seq=2048,vocab=51200")
        #expect(c.precision == .fp16)
        #expect(c.globalBatch == 2304)
        #expect(c.plan.dataParallel == 24)
        #expect(c.plan.tensorParallel == nil && c.plan.pipelineParallel == nil)
        #expect(c.modelParallel == 64)
        #expect(c.metric == .teraflopsPerGPU(.megatronRecompute))
        #expect(c.measured == 148)
        #expect(c.unit == "TFLOP/s/GPU")
        #expect(c.kind == .throughput)
    }

    @Test("sp22-175b-64g-seqsel: gpt-175b, tp=8, pp=8, dp=1, micro-batch 1, 64 micro-batches, vp=3, selective, sp")
    func korthikanti175B() throws {
        let c = try shippedCase("sp22-175b-64g-seqsel")
        #expect(c.modelSpec == "gpt-175b")
        #expect(c.machineSpec == "dgx-a100x8")
        #expect(c.gpus == 64)
        #expect(c.plan.tensorParallel == 8)
        #expect(c.plan.pipelineParallel == 8)
        #expect(c.plan.dataParallel == 1)
        #expect(c.plan.microBatch == 1)
        #expect(c.plan.microBatches == 64)
        #expect(c.plan.virtualStages == 3)
        #expect(c.plan.recompute == .selective)
        #expect(c.plan.sequenceParallel == true)
        #expect(c.metric == .secondsPerStep)
        #expect(c.measured == 13.75)
        #expect(c.measuredStepSeconds == 13.75)
        let full = try shippedCase("sp22-175b-64g-full")
        #expect(full.plan.recompute == .full)
        #expect(full.plan.sequenceParallel == false)
        #expect(full.notes.contains { $0.contains("as above") })
    }

    @Test("one V100 16GB of a DGX-1: dgx-v100 with gpu.hbm_bytes = 16GiB, 1 GPU")
    func singleV100() throws {
        let c = try shippedCase("dle-rn50-v100-1g-amp")
        #expect(c.machinePreset == "dgx-v100")
        #expect(c.nodes == 1)
        #expect(c.gpus == 1)
        #expect(c.machineOverrides == ["gpu.hbm_bytes": "16GiB"])
        #expect(c.machineDescription == "dgx-v100 (1 of 8 GPUs) gpu.hbm_bytes=16GiB")
        guard case .gpu(let g) = try c.machine().system else { Issue.record("not a GPU machine"); return }
        #expect(g.gpu.hbmBytes == 16 * 1073741824)
        #expect(c.modelSpec == "resnet50")
        #expect(c.precision == .fp16)
        #expect(c.plan.dataParallel == 1)
        #expect(c.metric == .samplesPerSecond)
        #expect(abs(try #require(c.measuredStepSeconds) - 256.0 / 1200) < 1e-12)
        let v32 = try shippedCase("dle-bert-v100-8g-s128")
        #expect(v32.machineOverrides.isEmpty)
    }

    @Test("BERT rows: seq from model_detail; accumulation and micro-batch from the row, the other derived")
    func bert() throws {
        let v = try shippedCase("dle-bert-v100-8g-s128")
        #expect(v.modelSpec == "bert-large:seq=128,predict=19,dropout=10")
        #expect(v.plan.dataParallel == 8 && v.plan.microBatches == 64 && v.plan.microBatch == 64)
        let a = try shippedCase("dle-bert-a100-1g-s512")
        // phase 2: LDDL-binned (bins of 64) and padded to the batch's longest, about 256 + 32 tokens
        #expect(a.modelSpec == "bert-large:seq=288,predict=43,dropout=10")
        #expect(a.transformer?.sequence == 512)
        #expect(a.notes.contains { $0.contains("LDDL") })
        #expect(a.assumptions == ["fused_attention": "0", "gradient_overlap": "0", "eager_attention": "1"])
        #expect(v.assumptions == ["fused_attention": "0", "gradient_overlap": "0", "eager_attention": "1"])
        #expect(a.gpus == 1 && a.nodes == 1)
        #expect(a.plan.microBatch == 32 && a.plan.microBatches == 128 && a.plan.dataParallel == 1)
        let big = try shippedCase("dle-bert-a100-256g-s128")
        #expect(big.machineSpec == "dgx-a100x32")
        #expect(big.plan.microBatch == 256 && big.plan.microBatches == 1)
        #expect(try shippedCase("dle-rn50-a100-8g-amp").assumptions == ["loader_workers": "16"])
        #expect(try shippedCase("dle-rn50-v100-1g-amp").assumptions == ["loader_workers": "8"])
        // DALI decodes on the GPU (no loader); MXNet's NHWC FP16 batch norm keeps its input on chip (one pass)
        #expect(try shippedCase("mlp20-rn50-dgxa100-1n").assumptions == ["batch_norm_passes": "1"])
        #expect(try shippedCase("meg21-18b-256g").assumptions["gradient_overlap"] == "0")
        // NeMo 24.07 on H100: Transformer Engine >= 1.2 picks cuDNN's fused attention on sm90
        let nemo = try shippedCase("nemo2407-gpt3-175b-512g")
        #expect(nemo.assumptions == ["attention_kernel": "cudnn"])
        #expect(nemo.notes.contains { $0.contains("attention_kernel=cudnn") && $0.contains("NeMo 24.x") })
        let mlperf = try shippedCase("mlp30-bert-dgxh100-1n")
        // packed samples: packs of 512 tokens, about 2 real sequences each (Krell et al. 2021)
        #expect(mlperf.modelSpec == "bert-large:seq=512,predict=77,dropout=10" && mlperf.unsupported == nil && mlperf.sequencesPerSample == 2)
        #expect(try mlperf.predictedValue(SimulatedStep(stepSeconds: 0.2, globalBatch: 768, devices: 8, plan: "")) == 768 * 2 / 0.2)
        #expect(abs(mlperf.measuredStepSeconds! - 768 * 2 / mlperf.measured) < 1e-12)
        // the 1-node config passes --use_transformer_engine2 ("Enable FP8 layers"): FP8 hybrid
        #expect(mlperf.precision == .fp8)
        #expect(mlperf.notes.contains { $0.contains("Transformer Engine") })
        // each packed sequence attends within itself: 2 blocks of the scores a pack
        #expect(mlperf.assumptions == ["attention_segments": "2"])
    }

    @Test("Megatron-Core on H100: nodes and precision not stated, so assumed and noted; Megatron-Core FLOPs")
    func megatronCore() throws {
        let c = try shippedCase("mc24-1.7b-48g")
        #expect(c.machineSpec == "dgx-h100x6")
        #expect(c.modelSpec == "gpt:layers=24,hidden=2048,heads=16,seq=4096,vocab=131072")
        #expect(c.precision == .bf16)
        #expect(c.notes.contains { $0.contains("precision not stated") })
        #expect(c.notes.contains { $0.contains("nodes not stated") })
        #expect(c.plan.dataParallel == 48 && c.plan.tensorParallel == 1 && c.plan.pipelineParallel == 1)
        #expect(c.metric == .teraflopsPerGPU(.megatronModel))
    }

    @Test("NeMo and MLPerf GPT-3 / Llama rows: fp8, published plans, micro-batches derived")
    func nemoAndMLPerf() throws {
        let llama = try shippedCase("nemo2407-llama2-70b-64g")
        #expect(llama.modelSpec == "llama2-70b:seq=4096")
        #expect(llama.machineSpec == "dgx-h100x8")
        #expect(llama.precision == .fp8)
        #expect(llama.plan == PlanSpec(dataParallel: 4, tensorParallel: 4, pipelineParallel: 4, microBatch: 1,
                                       microBatches: 32, virtualStages: 20))
        #expect(llama.metric == .tokensPerSecondPerGPU)
        let gpt = try shippedCase("nemo2407-gpt3-175b-512g")
        #expect(gpt.modelSpec == "gpt-175b")
        #expect(gpt.plan.microBatch == 2 && gpt.plan.microBatches == 64 && gpt.plan.virtualStages == 6)
        let step = try shippedCase("mlp30-gpt3-768g-step")
        #expect(step.machineSpec == "dgx-h100x96")
        #expect(step.plan == PlanSpec(dataParallel: 24, tensorParallel: 4, pipelineParallel: 8, microBatch: 1,
                                      microBatches: 128, virtualStages: 12, shardOptimizer: true))
        #expect(step.metric == .secondsPerStep)
        let eos = try shippedCase("mlp40-gpt3-11616g-ttt")
        #expect(eos.machineSpec == "dgx-h100x1452")
        #expect(eos.plan.pipelineParallel == 6 && eos.plan.microBatches == 6)
        #expect(eos.plan.virtualStages == nil)  // the README's interleave 12 is v3.0's, not v4.0's
    }

    @Test("time-to-train rows: work from model_detail, predicted = work ÷ throughput in the row's unit")
    func timeToTrain() throws {
        let g = try shippedCase("mlp30-gpt3-3584g-ttt")
        guard case let .timeToTrain(work, unit) = g.metric else { Issue.record("not time-to-train"); return }
        #expect(work.samples == 1_211_105_280.0 / 2048)
        #expect(unit == 60)
        // 2,688 sequences per step; 10.9 minutes for 591,360 sequences → 2.973 s per step (the step rows say 2.5 s:
        // the rest is evaluation and pauses, which time-to-train includes).
        let implied = try #require(g.measuredStepSeconds)
        #expect(abs(implied - 2688 * 10.9 * 60 / 591_360) < 1e-9)
        let step = SimulatedStep(stepSeconds: 2.5, globalBatch: 2688, devices: 3584, plan: "")
        #expect(abs(try g.predictedValue(step) - 591_360 / (2688 / 2.5) / 60) < 1e-9)
        let r = try shippedCase("mlp30-rn50-dgxh100-8n-ttt")
        guard case let .timeToTrain(images, _) = r.metric else { Issue.record("not time-to-train"); return }
        #expect(images.samples == 35 * 1_281_167)
    }

    @Test("a GPT row without heads borrows them from another row of the same shape: 530B has 128 heads")
    func borrowedHeads() throws {
        let c = try shippedCase("meg21-530b-2520g")
        #expect(c.transformer?.heads == 128)
        #expect(c.modelSpec == "gpt:layers=105,hidden=20480,heads=128,seq=2048,vocab=51200")
        #expect(c.notes.contains { $0.contains("sp22-530b-280g-seqsel") })
    }

    // MARK: - FLOP conventions against the sources' figures

    @Test("Megatron-Core FLOPs reproduce Korthikanti et al.'s MFU: 175B 51.4%, 530B 56.0% (A100 312 TFLOP/s)")
    func mfuFromTable5() throws {
        for (id, mfu) in [("sp22-175b-64g-seqsel", 0.514), ("sp22-530b-280g-seqsel", 0.560)] {
            let c = try shippedCase(id)
            let flops = try #require(c.trainingFlops(sequences: Double(c.globalBatch), convention: .megatronModel))
            let achieved = flops / (c.measured * Double(c.gpus) * 312e12)
            #expect(abs(achieved - mfu) < 0.0006, "\(id): \(achieved)")
        }
    }

    @Test("NeMo's model TFLOP/s/GPU from its tokens/s/GPU: GPT-3 175B 842, Llama 2 70B 759")
    func nemoModelFlops() throws {
        for (id, tflops) in [("nemo2407-gpt3-175b-512g", 842.0), ("nemo2407-llama2-70b-64g", 759.0)] {
            let c = try shippedCase(id)
            let t = try #require(c.transformer)
            let perToken = t.trainingFlops(sequences: 1, .megatronModel) / Double(t.sequence)
            #expect(abs(c.measured * perToken / 1e12 - tflops) < 0.6, "\(id): \(c.measured * perToken / 1e12)")
            // Through the metric conversion: the case's own tokens/s → TFLOP/s.
            let step = try #require(c.measuredStepSeconds)
            let viaStep = t.trainingFlops(sequences: Double(c.globalBatch), .megatronModel) / step / Double(c.gpus) / 1e12
            #expect(abs(viaStep - tflops) < 0.6)
        }
    }

    @Test("Narayanan et al.'s counting gives their training-time estimates: 175B 34 days, 1T 84 days")
    func megatronDays() {
        // arXiv 2104.04473 §5.1: GPT-3 175B, 300B tokens, 1,024 A100 at 140 TFLOP/s → 34 days; 1T (128 layers,
        // hidden 25,600), 450B tokens, 3,072 A100 at 163 TFLOP/s → 84 days. They use the leading term (8·T·P);
        // the full count is within 3% of it.
        let gpt3 = TransformerShape.gpt(layers: 96, hidden: 12288, heads: 96, sequence: 2048, vocabulary: 51200)
        let oneT = TransformerShape.gpt(layers: 128, hidden: 25600, heads: 160, sequence: 2048, vocabulary: 51200)
        for (t, tokens, gpus, rate, days) in [(gpt3, 300e9, 1024.0, 140e12, 34.0), (oneT, 450e9, 3072.0, 163e12, 84.0)] {
            let flops = t.trainingFlops(sequences: tokens / Double(t.sequence), .megatronRecompute)
            let d = flops / (gpus * rate) / 86400
            #expect(abs(d / days - 1) < 0.03, "\(d) days, expected about \(days)")
        }
    }

    @Test("the conventions equal their closed forms for a GPT: 72·B·s·l·h²(…V/12lh) and 96·B·s·l·h²(…V/16lh)")
    func closedForms() {
        let t = TransformerShape.gpt(layers: 40, hidden: 6144, heads: 48, sequence: 2048, vocabulary: 51200)
        let b = 1024.0, s = 2048.0, l = 40.0, h = 6144.0, v = 51200.0
        let model = 72 * b * s * l * h * h * (1 + s / (6 * h) + v / (12 * l * h))
        let recompute = 96 * b * s * l * h * h * (1 + s / (6 * h) + v / (16 * l * h))
        #expect(abs(t.trainingFlops(sequences: b, .megatronModel) / model - 1) < 1e-12)
        #expect(abs(t.trainingFlops(sequences: b, .megatronRecompute) / recompute - 1) < 1e-12)
        #expect(abs(t.trainingFlops(sequences: b, .sixN) / (6 * t.parameters * b * s) - 1) < 1e-12)
        // MaxText (maxtext_utils.py at efb6d9e4): 6·N·s·B + 12·heads·layers·head_dim·s²·B / 2, heads × head_dim = h
        let maxText = 6 * t.parameters * s * b + 12 * 48 * l * (h / 48) * s * s * b / 2
        #expect(abs(t.trainingFlops(sequences: b, .sixNCausalAttention) / maxText - 1) < 1e-12)
    }

    @Test("parameter counts: GPT-3 175B 174.6 × 10⁹, Llama 2 70B 68.98 × 10⁹")
    func parameterCounts() {
        #expect(abs(TransformerShape.gpt3_175B.parameters / 174.59e9 - 1) < 1e-3)
        #expect(TransformerShape.llama2_70B().parameters == 68_975_329_280)  // + 161 norms × 8,192 = 68,976,648,192
        #expect(abs(TransformerShape.bertLarge(sequence: 512).parameters / 334e6 - 1) < 0.01)
    }

    // MARK: - Scoring

    @Test("a simulator that returns the measured step time: zero error on every supported case")
    func perfectSimulator() throws {
        let cases = try shipped()
        let report = Validation.evaluate(cases) { c in
            SimulatedStep(stepSeconds: c.measuredStepSeconds!, globalBatch: c.globalBatch, devices: c.gpus,
                          plan: c.planDescription)
        }
        #expect(report.count(.ok) == 26)
        #expect(report.count(.skipped) == 1)
        #expect(report.count(.failed) == 0)
        for r in report.cases where r.status == .ok {
            #expect(abs(r.error!) < 1e-12, "\(r.id): \(r.error!)")
            #expect(abs(r.predicted! / r.measured - 1) < 1e-12)
        }
        #expect(try #require(report.meanAbsError) < 1e-12)
        #expect(try #require(report.timeToTrainMeanAbsError) < 1e-12)
    }

    @Test("10% slow: throughput −9.09%, step time and time to train +10%; MAE over throughput cases only")
    func slowSimulator() throws {
        let cases = try shipped()
        let report = Validation.evaluate(cases) { c in
            SimulatedStep(stepSeconds: c.measuredStepSeconds! * 1.1, globalBatch: c.globalBatch, devices: c.gpus, plan: "")
        }
        var rates = 0, times = 0
        for (c, r) in zip(cases, report.cases) where r.status == .ok {
            switch c.metric {
            case .secondsPerStep, .timeToTrain:
                #expect(abs(r.error! - 0.1) < 1e-12, "\(r.id)")
                if c.kind == .throughput { times += 1 }
            default:
                #expect(abs(r.error! - (1 / 1.1 - 1)) < 1e-12, "\(r.id)")
                #expect(abs(r.error! + 0.0909) < 0.0001)
                rates += 1
            }
        }
        #expect(rates == 18 && times == 5)
        let mae = (Double(rates) * (1 - 1 / 1.1) + Double(times) * 0.1) / Double(rates + times)
        #expect(abs(try #require(report.meanAbsError) - mae) < 1e-12)
        #expect(abs(try #require(report.maxAbsError) - 0.1) < 1e-12)
        #expect(abs(try #require(report.timeToTrainMeanAbsError) - 0.1) < 1e-12)
    }

    @Test("a simulator that throws or returns nonsense: failed with the message; no MAE; JSON null")
    func failingSimulator() throws {
        let cases = try shipped()
        let report = Validation.evaluate(cases) { c in
            if c.id.hasPrefix("dle") { throw ValidationRunError("no plan fits") }
            return SimulatedStep(stepSeconds: 0, globalBatch: c.globalBatch, devices: c.gpus, plan: "")
        }
        #expect(report.count(.failed) == 26)
        #expect(report.cases.first { $0.id == "dle-rn50-a100-8g-amp" }?.message == "no plan fits")
        #expect(report.cases.first { $0.id == "mc24-1.7b-48g" }?.message?.contains("step time of 0.0 s") == true)
        #expect(report.meanAbsError == nil)
        let obj = try JSONSerialization.jsonObject(with: Data(try report.json().utf8)) as? [String: Any]
        #expect(obj?["mean_abs_error"] is NSNull)
    }

    @Test("JSON: {cases: [{id, predicted, measured, unit, error}], mean_abs_error}")
    func json() throws {
        let cases = try shipped()
        let report = Validation.evaluate(cases) { c in
            SimulatedStep(stepSeconds: c.measuredStepSeconds! / 1.25, globalBatch: c.globalBatch, devices: c.gpus, plan: "dp=1")
        }
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(try report.json().utf8)) as? [String: Any])
        let list = try #require(obj["cases"] as? [[String: Any]])
        #expect(list.count == 27)
        for key in ["id", "predicted", "measured", "unit", "error", "status", "kind"] {
            #expect(list.allSatisfy { $0.keys.contains(key) }, "\(key)")
        }
        let rn = try #require(list.first { $0["id"] as? String == "dle-rn50-a100-8g-amp" })
        #expect(rn["measured"] as? Double == 16621)
        #expect(abs((rn["error"] as? Double ?? 0) - 0.25) < 1e-12)
        #expect(rn["unit"] as? String == "images/s")
        let skipped = try #require(list.first { $0["id"] as? String == "mlp30-maskrcnn-dgxh100-1n" })
        #expect(skipped["predicted"] is NSNull)
        #expect(skipped["status"] as? String == "skipped")
        #expect(obj["mean_abs_error"] as? Double != nil)
    }

    @Test("a case made in code: tokens/s/GPU from a step; the machine resolves with its overrides")
    func caseInCode() throws {
        let c = ValidationCase(id: "x", machinePreset: "dgx-h100", nodes: 2, machineOverrides: ["gpu.hbm_bytes": "94GB"],
                               gpus: 16, modelSpec: "gpt-175b", transformer: .gpt3_175B, precision: .fp8,
                               globalBatch: 64, metric: .tokensPerSecondPerGPU, measured: 1000, unit: "tokens/s/GPU")
        #expect(c.machineSpec == "dgx-h100x2")
        guard case .gpu(let g) = try c.machine().system else { Issue.record("not a GPU machine"); return }
        #expect(g.gpu.hbmBytes == 94e9 && g.nodes == 2)
        let step = SimulatedStep(stepSeconds: 8.192, globalBatch: 64, devices: 16, plan: "dp=16")
        #expect(abs(try c.predictedValue(step) - 64 * 2048 / 8.192 / 16) < 1e-9)
        let report = Validation.evaluate([c]) { _ in step }
        #expect(abs(report.cases[0].error! - 0) < 1e-12)
    }

    // MARK: - Bad data

    static let header = "id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source"
    static let good = "t1,DGX A100,A100-SXM4-80GB,8,1,NVSwitch,ResNet-50 v1.5,\"224px, ImageNet\",AMP (FP16 mixed),2048,DP=8,training throughput,16621,images/s,https://example.org"

    func parse(_ lines: [String]) throws -> [ValidationCase] {
        try Validation.parseCases(csv: lines.joined(separator: "\n") + "\n", file: "bad.csv")
    }

    func dataError(_ lines: [String]) -> ValidationDataError? {
        do {
            _ = try parse(lines)
            return nil
        } catch let e as ValidationDataError {
            return e
        } catch {
            return ValidationDataError(file: "?", message: "\(error)")
        }
    }

    /// `good` with field `column` (1-based) replaced.
    func row(_ column: Int, _ value: String) -> String {
        var f = ["t1", "DGX A100", "A100-SXM4-80GB", "8", "1", "NVSwitch", "ResNet-50 v1.5", "224px", "AMP (FP16 mixed)",
                 "2048", "DP=8", "training throughput", "16621", "images/s", "https://example.org"]
        f[column - 1] = value
        return f.joined(separator: ",")
    }

    @Test("a good minimal file parses; quoted fields keep commas, doubled quotes and line breaks")
    func goodFile() throws {
        let cases = try parse([Self.header, Self.good])
        #expect(cases.count == 1)
        #expect(cases[0].modelSpec == "resnet50")
        let t = try CSVTable(parsing: "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n3,,\"\"\r\n", file: "t.csv")
        #expect(t.header == ["a", "b", "c"])
        #expect(t.records.map(\.fields) == [["x, y", "say \"hi\"", "two\nlines"], ["3", "", ""]])
        #expect(t.records.map(\.line) == [2, 4])
    }

    @Test("a quote never closed: the line and column where it opens")
    func unclosedQuote() throws {
        let e = try #require(dataError([Self.header, Self.good, "t2,DGX A100,A100-SXM4-80GB,8,1,x,ResNet-50 v1.5,\"224px"]))
        #expect(e.line == 3)
        #expect(e.column == 8)
        #expect(e.columnName == "model_detail")
        #expect(e.description.hasPrefix("bad.csv:3: column 8 (model_detail): the quote that opens this field is never closed"))
    }

    @Test("a quote inside an unquoted field, text after a closing quote, a wrong field count, an empty line")
    func syntaxErrors() throws {
        let q = try #require(dataError([Self.header, row(8, "224\"px")]))
        #expect(q.line == 2 && q.column == 8)
        #expect(q.message.contains("quote inside an unquoted field"))
        let after = try #require(dataError([Self.header, row(8, "\"224\"px")]))
        #expect(after.line == 2 && after.column == 8 && after.message.contains("after the closing quote"))
        let count = try #require(dataError([Self.header, Self.good, row(8, "224px, ImageNet")]))
        #expect(count.line == 3 && count.message.contains("16 fields, but the header has 15"))
        let empty = try #require(dataError([Self.header, "", Self.good]))
        #expect(empty.line == 2 && empty.message.contains("empty line"))
        #expect(throws: ValidationDataError.self) { try Validation.parseCases(csv: "", file: "e.csv") }
    }

    @Test("a missing, unknown or duplicate column names it")
    func columns() throws {
        let noValue = Self.header.replacingOccurrences(of: ",value,", with: ",")
        let e = try #require(dataError([noValue, row(13, "").replacingOccurrences(of: ",,", with: ",")]))
        #expect(e.line == 1 && e.message.contains("missing column value"))
        let typo = try #require(dataError([Self.header.replacingOccurrences(of: "interconnect", with: "interconect"), Self.good]))
        #expect(typo.column == 6 && typo.columnName == "interconect" && typo.message.contains("unknown column"))
        let dup = try #require(dataError([Self.header + ",id", Self.good + ",x"]))
        #expect(dup.column == 16 && dup.message.contains("twice"))
    }

    @Test("text in a number, an unknown GPU, unit, precision or parallelism: line and column named")
    func badValues() throws {
        let value = try #require(dataError([Self.header, Self.good, row(13, "fast")]))
        #expect(value.description == "bad.csv:3: column 13 (value): expected a positive number, got 'fast'")
        let gpus = try #require(dataError([Self.header, row(4, "eight")]))
        #expect(gpus.column == 4 && gpus.columnName == "gpus")
        // What the simulator cannot model is a skip with the reason, not a whole-file error: the other rows run.
        let skips = try parse([Self.header, row(3, "TPU-v4"), row(14, "furlongs/s").replacingOccurrences(of: "t1,", with: "t2,"),
                               row(11, "TP=1; CP=2; DP=4").replacingOccurrences(of: "t1,", with: "t3,"),
                               row(8, "LoRA rank 16").replacingOccurrences(of: "t1,", with: "t4,"), Self.good.replacingOccurrences(of: "t1,", with: "t5,"),
                               row(8, "ImageNet via DALI CPU webdataset").replacingOccurrences(of: "t1,", with: "t6,"),
                               row(8, "ImageNet via DALI (GPU decode); CPU count 128").replacingOccurrences(of: "t1,", with: "t7,")])
        #expect(skips.map(\.id) == ["t1", "t2", "t3", "t4", "t5", "t6", "t7"])
        #expect(skips[5].unsupported?.contains("DALI on the host CPU") == true)
        #expect(skips[6].unsupported == nil)
        #expect(skips[0].unsupported?.contains("no machine preset for GPU 'TPU-v4'") == true)
        #expect(skips[1].unsupported?.contains("unknown unit 'furlongs/s'") == true)
        // context parallelism is simulated as CP× data parallelism at the same batch (noted)
        #expect(skips[2].unsupported == nil && skips[2].plan.dataParallel == 8 && skips[2].notes.contains { $0.hasPrefix("CP=2") })
        #expect(skips[3].unsupported?.contains("LoRA") == true)
        #expect(skips[4].unsupported == nil)
        // A skipped row's value and id are still checked.
        let skippedValue = try #require(dataError([Self.header, row(3, "TPU-v4").replacingOccurrences(of: ",16621,", with: ",fast,")]))
        #expect(skippedValue.column == 13)
        // A precision, plan or metric the model cannot use as written: skipped with the reason naming the column.
        let unusable = try parse([Self.header, row(9, "int4"), row(11, "DP=8; magic 3").replacingOccurrences(of: "t1,", with: "t2,"),
                                  row(11, "TP=2; PP=2; DP=4").replacingOccurrences(of: "t1,", with: "t3,")])
        #expect(unusable[0].unsupported?.hasPrefix("precision: unknown precision 'int4'") == true)
        #expect(unusable[1].unsupported?.hasPrefix("parallelism: cannot read 'magic 3'") == true)
        #expect(unusable[2].unsupported == "parallelism: dp=4,tp=2,pp=2: DP × TP × PP = 16 devices, but the run used 8")
        let nodes = try #require(dataError([Self.header, row(4, "64")]))
        #expect(nodes.column == 5 && nodes.message.contains("cannot hold 64 GPUs"))
        let duplicate = try #require(dataError([Self.header, Self.good, Self.good]))
        #expect(duplicate.line == 3 && duplicate.columnName == "id")
    }

    @Test("TF1 BERT on A100 40GB: the 40GB part's 1,555 GB/s; gradients clipped and accumulated every micro-batch (TF2: accumulated)")
    func tensorFlowBERT() throws {
        let source = "https://github.com/NVIDIA/DeepLearningExamples/blob/x/TensorFlow/LanguageModeling/BERT/README.md"
        func bert(_ id: String, _ precision: String) -> String {
            [id, "DGX A100 40GB", "A100-SXM4-40GB", "8", "1", "NVSwitch", "BERT-Large pretraining", "seq 128; micro-batch 64/GPU",
             precision, "65536", "DP=8; grad-accum 128", "training throughput", "2872", "sequences/s", source].joined(separator: ",")
        }
        let cases = try parse([Self.header, bert("amp", "AMP (FP16 mixed)"), bert("tf32", "TF32")])
        #expect(cases[0].machineOverrides["gpu.hbm_bandwidth"] == "1555GB/s")
        #expect(cases[0].assumptions["micro_batch_gradient_bytes"] == "42" && cases[0].assumptions["micro_batch_gradient_kernels"] == "6")
        #expect(cases[1].assumptions["micro_batch_gradient_bytes"] == "24" && cases[1].assumptions["micro_batch_gradient_kernels"] == "3")
        #expect(cases[0].assumptions["fused_attention"] == "0" && cases[0].assumptions["gradient_overlap"] == "0")
        // TensorFlow 2's BERT (another example) unscales and accumulates each FP32 gradient every micro-batch, no clipping
        let tf2 = try parse([Self.header, bert("tf2", "AMP (FP16 mixed)").replacingOccurrences(of: "/TensorFlow/", with: "/TensorFlow2/"),
                             bert("tf2-32", "TF32").replacingOccurrences(of: "/TensorFlow/", with: "/TensorFlow2/")])
        #expect(tf2[0].assumptions["micro_batch_gradient_bytes"] == "20" && tf2[0].assumptions["micro_batch_gradient_kernels"] == "2")
        #expect(tf2[1].assumptions["micro_batch_gradient_bytes"] == "12" && tf2[1].assumptions["micro_batch_gradient_kernels"] == "1")
        // TF1's AMP graph rewrite keeps Softmax in FP32 (4-byte scores); TF32 and TF2's Keras fp16 do not
        #expect(cases[0].assumptions["score_bytes"] == "4" && cases[1].assumptions["score_bytes"] == nil)
        #expect(tf2[0].assumptions["score_bytes"] == nil)
        // only PyTorch's BERT runs attention eagerly (its scale and mask as kernels of their own); TensorFlow's is XLA
        let torch = try parse([Self.header, bert("pt", "AMP (FP16 mixed)").replacingOccurrences(of: "/TensorFlow/", with: "/PyTorch/")])
        #expect(torch[0].assumptions["eager_attention"] == "1" && torch[0].assumptions["fused_attention"] == "0")
        #expect(cases[0].assumptions["eager_attention"] == nil && tf2[0].assumptions["eager_attention"] == nil)
    }

    @Test("--plan syntax in the parallelism column; an unknown model is kept and skipped, not dropped")
    func userRows() throws {
        let cases = try parse([Self.header, row(11, "\"dp=2,tp=4\""), row(1, "t2").replacingOccurrences(of: "ResNet-50 v1.5", with: "U-Net")])
        #expect(cases[0].plan.dataParallel == 2 && cases[0].plan.tensorParallel == 4 && cases[0].plan.pipelineParallel == 1)
        #expect(cases[1].unsupported?.contains("U-Net") == true)
        let report = Validation.evaluate(cases) { _ in throw ValidationRunError("x") }
        #expect(report.cases.map(\.status) == [.failed, .skipped])
    }
}

/// The validation data is compiled into the binary from the CSV and README in Sources/DojoSim/Validation; they must
/// not drift (after editing them, run scripts/embed-data.py).
@Suite struct EmbeddedValidationTests {
    @Test func embeddedDataEqualsTheFiles() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/DojoSim/Validation").standardized
        let csv = try String(contentsOf: dir.appendingPathComponent("gpu-training.csv"), encoding: .utf8)
        let readme = try String(contentsOf: dir.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(try Validation.shippedCSV() == csv, "run scripts/embed-data.py")
        #expect(Validation.shippedREADME() == readme, "run scripts/embed-data.py")
    }
}
