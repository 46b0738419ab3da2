import DojoCompiler
import DojoGraph
import DojoMachine
@_spi(Testing) import DojoSim
import Testing

/// What issue 11 asked of the importer: rows a user's CSV will carry (other units, model names, a DGX-2, FSDP) are
/// read, and what cannot be modelled is skipped with the reason instead of failing the file.
@Suite("validation importer: rows from other sources")
struct ValidationImportTests {
    static let header = "id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source"

    /// A row with the given fields (the others as a ResNet-50 run on 8 A100s).
    func row(id: String = "t", gpu: String = "A100-SXM4-80GB", gpus: String = "8", nodes: String = "1",
             model: String = "ResNet-50 v1.5", detail: String = "224px", precision: String = "AMP",
             batch: String = "2048", plan: String = "DP=8", metric: String = "training throughput",
             value: String = "1000", unit: String = "images/s", source: String = "https://example.org") -> String {
        [id, "", gpu, gpus, nodes, "", model, "\"\(detail)\"", precision, batch, "\"\(plan)\"", metric, value, unit, source]
            .joined(separator: ",")
    }

    func parse(_ rows: [String]) throws -> [ValidationCase] {
        try Validation.parseCases(csv: ([Self.header] + rows).joined(separator: "\n") + "\n", file: "rows.csv")
    }

    @Test("units: tokens/s (system), samples/s/GPU, ms per step, TFLOP/s (system; model or hardware count)")
    func units() throws {
        let gpt = (model: "GPT", detail: "hidden 2048; 24 layers; 16 heads; seq 2048; vocab 51200")
        let cases = try parse([
            row(id: "a", model: gpt.model, detail: gpt.detail, batch: "512", metric: "training throughput", unit: "tokens/s"),
            row(id: "b", unit: "images/s/GPU"),
            row(id: "c", metric: "time per iteration", unit: "ms"),
            row(id: "d", model: gpt.model, detail: gpt.detail, batch: "512", metric: "achieved model TFLOP/s", unit: "TFLOP/s"),
            row(id: "e", model: gpt.model, detail: gpt.detail, batch: "512", metric: "hardware TFLOP/s (HFU)", unit: "TFLOP/s/GPU"),
        ])
        #expect(cases.map(\.metric) == [.tokensPerSecond, .samplesPerSecondPerGPU, .millisecondsPerStep,
                                         .teraflops(.megatronModel), .teraflopsPerGPU(.megatronRecompute)])
        // One step of 0.5 s on 8 GPUs: each metric from it, and back (measuredStepSeconds inverts predictedValue).
        let step = SimulatedStep(stepSeconds: 0.5, globalBatch: 512, devices: 8, plan: "dp=8")
        let a = try cases[0].predictedValue(step)
        #expect(a == 512 * 2048 / 0.5)
        #expect(try cases[2].predictedValue(SimulatedStep(stepSeconds: 0.5, globalBatch: 2048, devices: 8, plan: "")) == 500)
        #expect(try cases[1].predictedValue(SimulatedStep(stepSeconds: 0.5, globalBatch: 2048, devices: 8, plan: "")) == 512)
        let total = try cases[3].predictedValue(step), perGPU = try cases[4].predictedValue(step)
        #expect(total > 8 * perGPU * 0.7 && total < 8 * perGPU)   // hardware FLOPs count the recomputed forward
        for c in cases {
            var m = c
            m.measured = try c.predictedValue(c.id == "b" || c.id == "c"
                ? SimulatedStep(stepSeconds: 0.5, globalBatch: 2048, devices: 8, plan: "") : step)
            #expect(abs(m.measuredStepSeconds! - 0.5) < 1e-9, "\(c.id)")
        }
    }

    @Test("model names: Llama 2/3 sizes, ViT-B/16, BERT-Base, GPT-3 sizes by name")
    func modelNames() throws {
        let cases = try parse([
            row(id: "l13", model: "Llama 2 13B pretraining", detail: "seq 4096; MBS 1", batch: "128", plan: "TP=1; PP=4; DP=2", unit: "tokens/s/GPU"),
            row(id: "l8", model: "Llama 3 8B", detail: "MBS 1", batch: "128", unit: "tokens/s/GPU"),
            row(id: "l405", model: "Llama 3.1 405B", detail: "seq 8192", batch: "64", unit: "tokens/s/GPU"),
            row(id: "vit", model: "ViT-B/16", detail: "image 224", batch: "4096"),
            row(id: "bb", model: "BERT-Base", detail: "seq 128", batch: "1024", unit: "sequences/s"),
            row(id: "g", model: "GPT-3 2.7B", detail: "", batch: "512", unit: "sequences/s"),
        ])
        #expect(cases[0].modelSpec == "llama:layers=40,hidden=5120,heads=40,kv-heads=40,ffn=13824,seq=4096,vocab=32000")
        #expect(cases[1].transformer?.kvHeads == 8 && cases[1].transformer?.vocabulary == 128256 && cases[1].sequenceLength == 8192)
        // Llama 3 8B has 8.03 × 10⁹ parameters (Meta's model card), 405B 405.9 × 10⁹.
        #expect(abs(cases[1].transformer!.parameters / 8.03e9 - 1) < 0.01)
        #expect(abs(cases[2].transformer!.parameters / 405.9e9 - 1) < 0.01)
        #expect(cases[3].modelSpec == "vit:layers=12,hidden=768,heads=12,patch=16,image=224")
        #expect(cases[4].modelSpec == "bert-base:seq=128")
        #expect(cases[5].modelSpec == "gpt:layers=32,hidden=2560,heads=32,seq=2048,vocab=50257")
        #expect(cases.allSatisfy { $0.unsupported == nil })
    }

    @Test("a DGX-2 row: 16 V100 SXM3 in one NVSwitch node")
    func dgx2() throws {
        let c = try parse([row(gpu: "V100-SXM3-32GB", gpus: "16", nodes: "1", plan: "DP=16")])[0]
        #expect(c.unsupported == nil && c.gpusPerNode == 16 && c.nodes == 1)
        let m = try c.machine()
        guard case .gpu(let g) = m.system else { Issue.record("not a GPU machine"); return }
        #expect(g.server.gpus == 16 && g.server.interconnect == "nvswitch" && g.server.nvlinkBisectionFraction == 1)
        #expect(c.machineDescription.hasPrefix("dgx-v100 "))
        // 16 GPUs in one DGX-1 node are still an error.
        #expect(throws: ValidationDataError.self) { try parse([row(gpu: "V100-SXM2-32GB", gpus: "16", nodes: "1", plan: "DP=16")]) }
    }

    @Test("FSDP in the row: zero=3 (parameters sharded too), and GPT-3 175B on 256 GPUs with DP only then fits")
    func fsdp() throws {
        let text = row(model: "GPT-3 175B (Pax)", detail: "FSDP 256; hidden 12288; 96 layers; 96 heads; seq 2048", precision: "BF16",
                       batch: "1536", plan: "dp=256,zero=on; TP=1", unit: "sequences/s")
        let c = try parse([text.replacingOccurrences(of: ",8,1,", with: ",256,32,")])[0]
        #expect(c.plan.shardParameters == true && c.plan.shardOptimizer == true)
        #expect(c.notes.contains { $0.hasPrefix("zero=3") })
        #expect(try PlanSpec(parsing: "dp=8,zero=3").shardParameters == true)
        #expect(try PlanSpec(parsing: "dp=8,zero=3").description == "dp=8,zero=3")
        #expect(throws: PlanError.self) { try PlanSpec(parsing: "zero=4") }
    }

    @Test("FP32 in JAX on A100/H100 is TF32 (JAX's default matmul precision), on V100 FP32")
    func jaxPrecision() throws {
        let cases = try parse([
            row(id: "a", model: "ViT-B/16", precision: "FP32 model dtype", batch: "4096", source: "https://github.com/NVIDIA/JAX-Toolbox/rosetta"),
            row(id: "v", gpu: "V100-SXM2-32GB", model: "ViT-B/16", precision: "FP32", batch: "4096", source: "jax t5x"),
            row(id: "p", precision: "FP32", source: "https://example.org/tensorflow"),   // (PyTorch: softwareWords)
        ])
        #expect(cases.map(\.precision) == [.tf32, .fp32, .fp32])
    }
}

extension ValidationImportTests {
    @Test("other spellings of the SXM and PCIe parts are read (and say how); NVL parts and unknown GPUs are skipped")
    func gpuSpellings() throws {
        let names = ["NVIDIA A100 SXM 80GB", "A100", "a100-sxm4-40gb", "Tesla V100-SXM2-16GB", "NVIDIA H100 SXM", "A100-PCIE-40GB", "GH200",
                     "H100 80GB PCIe Gen5", "NVIDIA A100 PCIe", "H100 NVL", "Tesla V100-PCIE-32GB"]
        let cases = try parse(names.enumerated().map { row(id: "g\($0.offset)", gpu: $0.element) })
        #expect(cases.map(\.machineDescription).prefix(5) == ["dgx-a100", "dgx-a100", "dgx-a100 gpu.hbm_bandwidth=1555GB/s gpu.hbm_bytes=40GiB", "dgx-v100 gpu.hbm_bytes=16GiB", "dgx-h100"])
        #expect(cases[1].notes.contains { $0.contains("read as A100-SXM4-80GB (ASSUMPTION: the 80GB SXM4 part)") })
        // PCIe cards: the pcie-* presets (the 40GB A100 card with its memory, bandwidth and 250 W TDP)
        #expect(cases[5].unsupported == nil && cases[5].machinePreset == "pcie-a100")
        #expect(cases[5].machineOverrides == ["gpu.model": "A100 PCIe 40GB", "gpu.hbm_bytes": "40GiB", "gpu.hbm_bandwidth": "1555GB/s", "gpu.tdp": "250W"])
        #expect(cases[7].machinePreset == "pcie-h100" && cases[7].notes.contains { $0.contains("read as H100-PCIE-80GB") })
        #expect(cases[8].machinePreset == "pcie-a100" && cases[8].notes.contains { $0.contains("(ASSUMPTION: the 80GB card)") })
        #expect(cases[9].unsupported?.contains("no machine preset for GPU 'H100 NVL'") == true)
        #expect(cases[10].unsupported?.contains("no machine preset for GPU 'Tesla V100-PCIE-32GB'") == true)
        #expect(cases[6].unsupported?.contains("no machine preset for GPU 'GH200'") == true)
        // the DGX H200 and DGX B200 presets; a GB200 (72 GPUs in one NVLink domain) has none
        let newer = try parse(["H200", "NVIDIA H200 SXM 141GB", "B200 SXM (DGX-B200)", "GB200"].enumerated().map {
            row(id: "h\($0.offset)", gpu: $0.element)
        })
        #expect(newer.map(\.machinePreset).prefix(3) == ["dgx-h200", "dgx-h200", "dgx-b200"])
        #expect(newer[3].unsupported?.contains("no machine preset for GPU 'GB200'") == true)
        let more = try parse([row(id: "n", gpu: "A100-SXM4-80GB (NVLink)"), row(id: "q", gpu: "RTX A1000"),
                              row(id: "s", model: "GPT", detail: "hidden 2,048; 24 layers; 16 heads; seq 2,048; vocab 51,200", batch: "512", unit: "sequences/s"),
                              row(id: "r", model: "RoBERTa-Base", detail: "seq 128", batch: "512", unit: "sequences/s")])
        #expect(more[0].unsupported == nil && more[0].machinePreset == "dgx-a100")
        #expect(more[1].unsupported?.contains("no machine preset") == true)
        #expect(more[2].modelSpec == "gpt:layers=24,hidden=2048,heads=16,seq=2048,vocab=51200")   // thousands separators
        #expect(more[3].unsupported?.contains("no zoo model") == true)                            // not BERT-Base
    }

    @Test("models by published names: GPT-3 Small … XL (Brown et al. Table 2.1), GPT-2's sizes, Mistral 7B (its config)")
    func publishedNames() throws {
        let cases = try parse([row(id: "x", model: "GPT-3 XL", detail: "seq 2048", batch: "512", unit: "tokens/s"),
                               row(id: "s", model: "GPT-3 Small", detail: "seq 2048", batch: "512", unit: "tokens/s"),
                               row(id: "m", model: "Mistral 7B", detail: "seq 4096", batch: "512", unit: "tokens/s"),
                               row(id: "n", model: "Mistral-7B-v0.1", detail: "", batch: "512", unit: "tokens/s"),
                               row(id: "g", model: "GPT-2 Medium", detail: "", batch: "512", unit: "tokens/s")])
        #expect(cases[0].modelSpec == "gpt:layers=24,hidden=2048,heads=16,seq=2048,vocab=50257")
        #expect(cases[1].modelSpec == "gpt:layers=12,hidden=768,heads=12,seq=2048,vocab=50257")
        #expect(cases[2].modelSpec == "llama:layers=32,hidden=4096,heads=32,kv-heads=8,ffn=14336,seq=4096,vocab=32000")
        #expect(cases[2].notes.contains { $0.contains("sliding window priced as full causal attention (ASSUMPTION)") })
        #expect(cases[3].modelSpec?.hasSuffix("seq=8192,vocab=32000") == true, "\(cases[3].modelSpec ?? "")")
        #expect(cases[4].modelSpec == "gpt:layers=24,hidden=1024,heads=16,seq=1024,vocab=50257")
    }

    @Test("state offloaded to host memory (ZeRO-Offload, CPU offloading) is skipped with that reason")
    func offloadSkipped() throws {
        let gpt = "96 layers; hidden 12,288; 96 heads; seq 512; vocab 51200"
        let cases = try parse([row(id: "o1", model: "GPT", detail: gpt + "; ZeRO-3 with CPU offloading", batch: "512", unit: "sequences/s"),
                               row(id: "o2", model: "GPT", detail: gpt, batch: "512", plan: "DP=8; ZeRO-Offload", unit: "sequences/s"),
                               row(id: "o3", model: "GPT", detail: gpt + "; no CPU offloading", batch: "512", unit: "sequences/s"),
                               row(id: "o4", model: "GPT", detail: gpt + "; Activation CPUOffload False", batch: "512", unit: "sequences/s")])
        #expect(cases[0].unsupported?.contains("state offloaded to host memory") == true)
        #expect(cases[1].unsupported?.contains("state offloaded to host memory") == true)
        #expect(cases[2].unsupported == nil, "\(cases[2].unsupported ?? "")")   // said to be off: read
        #expect(cases[3].unsupported == nil, "\(cases[3].unsupported ?? "")")
    }

    /// A PCIe card in older slots: the interconnect column's PCIe generation sets the card's link.
    @Test("PCIe cards: the interconnect column's PCIe 3.0 or 4.0 slots set gpu.pcie_bandwidth")
    func pcieSlots() throws {
        func r(_ id: String, _ gpu: String, _ interconnect: String) -> String {
            [id, "", gpu, "8", "1", "\"\(interconnect)\"", "ResNet-50 v1.5", "224px", "AMP", "2048", "DP=8", "training throughput", "1000",
             "images/s", "https://example.org"].joined(separator: ",")
        }
        let cases = try parse([r("p3", "NVIDIA A100-PCIE-40GB (250W)", "1x ConnectX-5 IB EDR 100Gb/Sec; accelerator interconnect N/A (PCIe 3.0x16)"),
                               r("p4", "H100 PCIe", "PCIe Gen4 switches"), r("p5", "H100 PCIe", "not stated"),
                               r("s3", "A100-SXM4-80GB", "PCIe 3.0 to the host")])
        #expect(cases[0].machineOverrides["gpu.pcie_bandwidth"] == "31.5GB/s")
        #expect(cases[0].notes.contains { $0.contains("PCIe 3.0 x16 slots") })
        #expect(!cases[0].notes.contains { $0.contains("power limit") })   // 250 W is the 40GB card's own TDP
        #expect(cases[1].machineOverrides["gpu.pcie_bandwidth"] == "63GB/s")
        #expect(cases[2].machineOverrides["gpu.pcie_bandwidth"] == nil)
        #expect(cases[3].machineOverrides["gpu.pcie_bandwidth"] == nil)    // an SXM part's GPUs talk over NVLink
        let m = try cases[0].machine()
        guard case .gpu(let g) = m.system else { Issue.record("not a GPU machine"); return }
        #expect(g.peerLink == "PCIe" && g.peerBandwidth == 15.75e9)
    }

    /// NVIDIA's Megatron-Bridge performance summary gives FSDP as a flag (0 = DDP, 1 = FSDP over the replicas) and heads
    /// its columns "Sequence Length", "MBS", "GA": a row in those words is read, not refused.
    @Test("Megatron-Bridge's words: FSDP 0/1 as a flag, 'Sequence Length N'")
    func megatronBridgeWords() throws {
        let bridge = "https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/0/docs/performance-summary.md"
        let cases = try parse([("FSDP 0", bridge), ("FSDP 1", bridge), ("FSDP 1", "https://example.org")].enumerated().map {
            row(id: "b\($0.offset)", gpu: "H100", model: "LLAMA3_8B", detail: "Sequence Length 4096; MBS 1; GA 16; \($0.element.0)",
                precision: "FP8-CS", batch: "128", plan: "TP=1; PP=1; CP=1; VP=n/a", unit: "Tokens / sec / GPU", source: $0.element.1)
        })
        #expect(cases.allSatisfy { $0.unsupported == nil && $0.transformer?.sequence == 4096 && $0.precision == .fp8 })
        #expect(cases.map(\.plan.shardParameters) == [nil, true, nil])
        #expect(cases[0].notes.contains { $0.contains("FSDP 0: not fully sharded") })
        #expect(cases[1].notes.contains { $0.contains("Megatron-Bridge's FSDP flag") })
        // FSDP as a degree elsewhere, with any separator; "FSDP2" names PyTorch's API; a degree above the GPUs skips
        // that row only
        let degrees = try parse(["FSDP: 8", "FSDP = 8", "FSDP2 (1D); FSDP 8", "FSDP 16", "FSDP2 (1D)"].enumerated().map {
            row(id: "d\($0.offset)", gpu: "H100", model: "Llama 3 8B", detail: "seq 2048; \($0.element)", precision: "BF16", batch: "64",
                plan: "DP=8", unit: "tokens/s/GPU")
        })
        #expect(degrees.prefix(3).allSatisfy { $0.plan.shardParameters == true })
        #expect(degrees[3].unsupported?.contains("FSDP 16 is not a count in 1…8") == true)
        #expect(degrees[4].unsupported == nil && degrees[4].plan.shardParameters == nil)
        for words in ["seq 2048", "seq_len 2048", "Sequence Length: 2048", "seq length=2048", "max_seq_len=2048", "Seq. length 2048",
                      "seq 2K", "sequence length 2k"] {
            let c = try parse([row(gpu: "H100", model: "Llama 3 8B", detail: words, precision: "BF16", batch: "64",
                                   plan: "FSDP=8", unit: "tokens/s/GPU")])[0]
            #expect(c.transformer?.sequence == 2048, "'\(words)'")
        }
    }

    /// A TFLOP/s row whose model_detail says how its source counted: MaxText's weights plus causal attention, or
    /// 6·N·tokens as such (no assumption then); a row that does not say keeps 6·N·tokens as an assumption.
    @Test("TFLOP counts as model_detail states them: MaxText's 6·params·tokens + causal attention, 6·N·tokens")
    func flopCountsAsStated() throws {
        let details = ["seq 4096; TFLOP count: 6·params·tokens + causal attention (maxtext_utils.calculate_tflops_training_per_device)",
                       "seq 4096; TFLOPs counted as 6·N·tokens", "seq 4096"]
        let cases = try parse(details.enumerated().map {
            row(id: "f\($0.offset)", gpu: "H100", model: "Llama 2 7B", detail: $0.element, precision: "BF16", batch: "32",
                plan: "FSDP=8", metric: "achieved TFLOP/s per GPU", value: "450", unit: "TFLOP/s/GPU")
        })
        #expect(cases.map(\.metric) == [.teraflopsPerGPU(.sixNCausalAttention), .teraflopsPerGPU(.sixN), .teraflopsPerGPU(.sixN)])
        #expect(cases[0].notes.contains { $0.contains("MaxText's calculate_tflops_training_per_device") })
        #expect(cases[1].notes.contains { $0.contains("as model_detail says") })
        #expect(cases[2].notes.contains { $0.contains("(ASSUMPTION)") })
    }

    @Test("parallelism words: FSDP=N, ZeRO-N, distributed optimizer, SP, DDP; EP > 1 skipped")
    func parallelismWords() throws {
        let cases = try parse([
            row(id: "f", plan: "FSDP=8"), row(id: "z", plan: "DP=8; ZeRO-1"), row(id: "d", plan: "DP=8; distributed optimizer; DDP"),
            row(id: "e", plan: "DP=8; EP=8"), row(id: "g", plan: "DP=1; FSDP=8"), row(id: "m", plan: "dp=8,mb=16"),
        ])
        #expect(cases[4].plan.dataParallel == 8 && cases[4].plan.shardParameters == true)   // Pax: "DP 1, FSDP 256"
        #expect(cases[5].plan.microBatch == 16 && cases[5].unsupported == nil)               // mb is bounded by the batch
        #expect(cases[0].plan.dataParallel == 8 && cases[0].plan.shardParameters == true)
        #expect(cases[1].plan.shardOptimizer == true && cases[1].plan.shardParameters == nil)
        #expect(cases[2].plan.shardOptimizer == true)
        #expect(cases[3].unsupported?.contains("expert parallelism EP=8") == true)
    }
}

extension ValidationImportTests {
    /// The words of llm-foundry's, torchtitan's and Megatron-DeepSpeed's tables and logs (docs/validation-candidates/set2).
    @Test("units as sources write them: T/s/GPU, TPS/GPU, WPS per GPU, TFLOP/s per GPU, TFLOPs per GPU in a log")
    func unitSpellings() throws {
        let gpt = "hidden 2048; 24 layers; 16 heads; seq 2048; vocab 50368"
        let cases = try parse([
            row(id: "t", model: "MPT-1B", detail: gpt, batch: "512", metric: "training throughput (Throughput (T/s/GPU) column)", unit: "T/s/GPU"),
            row(id: "p", model: "MPT-1B", detail: gpt, batch: "512", metric: "training throughput", unit: "TPS/GPU"),
            row(id: "w", model: "MPT-1B", detail: gpt, batch: "512", metric: "training throughput (WPS; tokens/s per GPU)", unit: "WPS"),
            row(id: "f", model: "MPT-1B", detail: gpt, batch: "512", metric: "achieved model TFLOP/s", unit: "TFLOP/s per GPU"),
            row(id: "l", model: "MPT-1B", detail: gpt, batch: "512", metric: "TFLOPs (hardware; per GPU)", value: "150", unit: "TFLOPs"),
            row(id: "s", model: "MPT-1B", detail: gpt, batch: "512", metric: "training throughput", unit: "tokens per second"),
        ])
        #expect(cases.map(\.metric) == [.tokensPerSecondPerGPU, .tokensPerSecondPerGPU, .tokensPerSecondPerGPU,
                                         .teraflopsPerGPU(.megatronModel), .teraflopsPerGPU(.megatronRecompute), .tokensPerSecond])
        #expect(cases[2].notes.contains { $0.contains("read as tokens/s/GPU: the metric says per GPU") })
        #expect(cases.allSatisfy { $0.unsupported == nil })
        // 150 "TFLOPs" for a whole system of 8 GPUs is 19 a GPU, plausible; 150 over 384 GPUs is not (0.4 a GPU, under 2 %
        // of an A100's 312): read per GPU, saying so; 1,500 over 384 is neither one GPU's nor a system's: skipped
        let big = try parse([row(id: "b", gpus: "384", nodes: "48", model: "MPT-1B", detail: gpt, batch: "3072", plan: "DP=384",
                                 metric: "TFLOPs (hardware)", value: "149.77", unit: "TFLOPs")])[0]
        #expect(big.unsupported == nil && big.metric == .teraflopsPerGPU(.megatronRecompute))
        #expect(big.notes.contains { $0.contains("read per GPU") && $0.contains("under 2 %") })
        let eight = try parse([row(id: "e", model: "MPT-1B", detail: gpt, batch: "512", metric: "TFLOPs (hardware)", value: "150", unit: "TFLOPs")])[0]
        #expect(eight.metric == .teraflops(.megatronRecompute))
        let neither = try parse([row(id: "n", gpus: "384", nodes: "48", model: "MPT-1B", detail: gpt, batch: "3072", plan: "DP=384",
                                     metric: "TFLOPs (hardware)", value: "1500", unit: "TFLOPs")])[0]
        #expect(neither.unsupported?.contains("above any one GPU's peak") == true)
        #expect(try parse([row(unit: "furlongs/s")])[0].unsupported?.contains("unknown unit 'furlongs/s'") == true)
    }

    @Test("decoder-only models by other names (MPT, BLOOM, OPT) and Llama 3 405B; Float8; FSDP strategies; recompute words")
    func otherSources() throws {
        let cases = try parse([
            row(id: "mpt", model: "MPT-7B", detail: "hidden 4096; 32 layers; 32 heads; seq 8192; vocab 50368; Activation Checkpointing True",
                precision: "amp_bf16", batch: "128", plan: "FSDP=8", unit: "tokens/s/GPU"),
            row(id: "bloom", model: "BLOOM-176B", detail: "activation check-pointing", precision: "bf16", batch: "2048",
                plan: "TP=4; PP=2; DP=1", unit: "sequences/s"),
            row(id: "opt", model: "OPT-175B", detail: "", precision: "FP16 (weights); Adam state FP32", batch: "1024", plan: "TP=8; DP=1", unit: "sequences/s"),
            row(id: "l3", model: "Llama 3 405B", detail: "seq 8192; selective op activation checkpointing", precision: "Float8",
                batch: "64", plan: "FSDP=8 SHARD_GRAD_OP", unit: "tokens/s/GPU"),
            row(id: "noac", model: "MPT-1B", detail: "Activation Checkpointing False; FSDP Sharding Strategy NO_SHARD", precision: "bf16",
                batch: "512", plan: "FSDP=8", unit: "tokens/s/GPU"),
            row(id: "pp", model: "Llama 3 8B", detail: "full activation checkpointing", precision: "BF16", batch: "64",
                plan: "FSDP=2; PP=4 (interleaved 1F1B)", unit: "tokens/s/GPU"),
        ])
        #expect(cases.allSatisfy { $0.unsupported == nil })
        #expect(cases[0].modelSpec == "gpt:layers=32,hidden=4096,heads=32,seq=8192,vocab=50368")
        #expect(cases[0].precision == .bf16 && cases[0].plan.recompute == .full && cases[0].plan.shardParameters == true)
        #expect(cases[1].modelSpec == "gpt:layers=70,hidden=14336,heads=112,seq=2048,vocab=250880" && cases[1].plan.recompute == .full)
        #expect(cases[2].modelSpec == "gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=50272" && cases[2].precision == .fp16)
        #expect(cases[3].transformer?.layers == 126 && cases[3].precision == .fp8 && cases[3].plan.recompute == .op)
        #expect(cases[3].plan.shardOptimizer == true && cases[3].plan.shardParameters == nil)          // ZeRO-2
        #expect(cases[4].plan.recompute == PlanSpec.Recompute.none && cases[4].plan.shardOptimizer == nil && cases[4].plan.shardParameters == nil)
        #expect(cases[5].plan.virtualStages == 2 && cases[5].plan.pipelineParallel == 4 && cases[5].plan.dataParallel == 2)
        #expect(cases[5].notes.contains { $0.contains("ASSUMPTION: 2, the fewest an interleaved schedule has") })
        // "no activation checkpointing" and "without AC" are none; a detail that does not say leaves it to the planner
        let said = try parse(["no activation checkpointing", "selective recompute", "seq 2048; micro-batch 4/GPU"]
            .enumerated().map { row(id: "r\($0.offset)", model: "MPT-1B", detail: "hidden 2048; 24 layers; seq 2048; " + $0.element,
                                    precision: "BF16", batch: "512", plan: "DP=8", unit: "tokens/s/GPU") })
        #expect(said.map(\.plan.recompute) == [PlanSpec.Recompute.none, .selective, nil])
        // torchtitan's "selective" is its per-op policy (selective_ac_option = 'op' in its configs); elsewhere Megatron's
        let titan = try parse(["https://github.com/pytorch/torchtitan/blob/0/docs/performance.md", "https://example.org"].enumerated().map {
            row(id: "t\($0.offset)", model: "Llama 3 8B", detail: "seq 8192; selective activation checkpointing", precision: "BF16", batch: "64",
                plan: "FSDP=8", unit: "tokens/s/GPU", source: $0.element)
        })
        #expect(titan.map(\.plan.recompute) == [.op, .selective])
        #expect(titan[0].notes.contains { $0.contains("recompute=op") && $0.contains("selective_ac_option = 'op'") })
        // torchtitan without torch.compile is eager PyTorch: nothing fused; with it (or elsewhere) fused chains stand
        #expect(titan[0].assumptions["fusion"] == "0" && titan[1].assumptions["fusion"] == nil)
        let compiled = try parse(["FSDP + torch.compile", "compile true"].enumerated().map {
            row(id: "c\($0.offset)", model: "Llama 3 8B", detail: "seq 8192; \($0.element)", precision: "BF16", batch: "64",
                plan: "FSDP=8", unit: "tokens/s/GPU", source: "https://github.com/pytorch/torchtitan/blob/0/docs/performance.md")
        })
        #expect(compiled.allSatisfy { $0.assumptions["fusion"] == nil })
        // torchtitan named in the system only, a negative mention of torch.compile, its wordings of the policy; its
        // layer mode (every Nth block in full) is not modelled: skipped saying so, not read as another policy
        let words = ["selective (op) activation checkpointing; no torch.compile", "activation checkpointing: selective (op); torch.compile: false",
                     "selective activation checkpointing; without torch.compile", "selective layer activation checkpointing",
                     "selective activation checkpointing; selective_ac_option = 2", "activation checkpointing: full"]
        let titan2 = try parse(words.enumerated().map {
            "t\($0.offset),torchtitan on 8x H100,H100,8,1,,Llama 3 8B,\"seq 8192; \($0.element)\",BF16,64,FSDP=8,training throughput,5000,tokens/s/GPU,https://example.org/report"
        })
        #expect(titan2.prefix(3).allSatisfy { $0.plan.recompute == .op && $0.assumptions["fusion"] == "0" }, "\(titan2.prefix(3).map(\.notes))")
        #expect(titan2[3].unsupported?.contains("per-layer selective checkpointing") == true)
        #expect(titan2[4].unsupported?.contains("per-layer selective checkpointing") == true)
        #expect(titan2[5].plan.recompute == .full)
        // words that name recomputation only to say it is not known say nothing; Megatron's granularity and "not used" are read
        let phrasings: [(String, PlanSpec.Recompute?)] = [
            ("activation checkpointing not stated", nil), ("activation checkpointing: unknown", nil),
            ("recompute not reported", nil), ("recompute_granularity: n/a", nil),
            ("activation checkpointing not used", PlanSpec.Recompute.none), ("activation checkpointing is off", PlanSpec.Recompute.none),
            ("no recompute", PlanSpec.Recompute.none), ("without recomputation", PlanSpec.Recompute.none),
            ("recompute_granularity: null", PlanSpec.Recompute.none), ("recompute granularity selective", .selective),
            ("recompute_granularity=full", .full), ("activation checkpointing", .full),
            ("activation checkpointing: true", .full), ("selective op activation checkpointing", .op),
            ("selective layer activation checkpointing", .selective),
            // clause by clause: an unknown in one clause leaves another clause's statement standing
            ("recompute granularity unknown; selective recompute", .selective),
            ("full recompute; activation checkpointing: not stated", .full),
            ("seq 4096; recompute unknown; micro-batch 2", nil),
            // Megatron-LM's flags: the 2021 one checkpoints every layer, the 2022 one is selective
            ("--micro-batch-size 1; --fp16; --checkpoint-activations", .full), ("--recompute-activations", .selective),
            // Hugging Face's and Colossal-AI's words for it
            ("gradient checkpointing", .full), ("gradient_checkpointing: false", PlanSpec.Recompute.none), ("grad checkpointing on", .full),
            ("grad_checkpoint=True", .full),
        ]
        for (words, expected) in phrasings {
            #expect(readRecompute(words)?.0 == expected, "'\(words)'")
        }
    }

    @Test("context parallelism: each sequence split over CP GPUs, simulated as CP× the samples of 1/CP the tokens, attending to CP× their own")
    func contextParallelism() throws {
        // torchtitan: 8 GPUs, FSDP=4 × CP=2, a global batch of 4 sequences of 65,536 tokens (fewer than DP × CP)
        let c = try parse([row(gpu: "H100", model: "Llama 3.1 8B", detail: "seq 65536", precision: "BF16", batch: "4",
                               plan: "FSDP=4; CP=2", metric: "training throughput", unit: "tokens/s/GPU")])[0]
        #expect(c.unsupported == nil && c.contextParallel == 2 && c.plan.dataParallel == 8)
        let (spec, batch, assumptions) = try c.simulationInputs()
        #expect(spec.contains("seq=32768") && !spec.contains("seq=65536") && batch == 8)
        #expect(assumptions["attention_segments"].flatMap(Double.init) == 0.5)
        // the metric stays in the run's own sequences: 4 × 65,536 tokens a step
        let step = SimulatedStep(stepSeconds: 2, globalBatch: c.globalBatch, devices: 8, plan: "")
        #expect(try c.predictedValue(step) == 4 * 65536 / 2 / 8)
        // a CP that does not divide the sequence is said
        var odd = c
        odd.transformer?.sequence = 65535
        #expect(throws: ValidationRunError.self) { try odd.simulationInputs() }
        // a row whose CP does not divide its sequence, or whose batch does not split into DP × CP parts: skipped saying why
        let bad = try parse([
            row(id: "s", gpu: "H100", model: "Llama 3.1 8B", detail: "seq 65535", precision: "BF16", batch: "8",
                plan: "FSDP=4; CP=2", unit: "tokens/s/GPU"),
            row(id: "b", gpu: "H100", model: "Llama 3.1 8B", detail: "seq 65536", precision: "BF16", batch: "2",
                plan: "FSDP=4; CP=2", unit: "tokens/s/GPU"),
        ])
        #expect(bad[0].unsupported?.contains("CP=2 does not divide the sequence length 65535") == true, "\(bad[0].unsupported ?? "")")
        #expect(bad[1].unsupported?.contains("with CP=2 the global batch of 2 sequences is counted as 4 parts") == true, "\(bad[1].unsupported ?? "")")
        // (the step model's side of it: SavedActivationTests.attentionSegmentsKnob)
    }

    /// The third held-out set's words (docs/validation-candidates/set3): nanotron's, NeMo's, MaxText's, launchers'.
    @Test("parallelism as sources write it: 'DP: 4  TP: 1  PP: 2', 'TP 4; PP 1; DP 8; CP 4', MaxText's mesh, launchers, words without a degree")
    func parallelismSpellings() throws {
        let llama = (model: "Llama 2 7B", detail: "seq 4096")
        let cases = try parse([
            row(id: "nt", gpus: "8", model: llama.model, detail: llama.detail, precision: "BF16", batch: "256", plan: "DP: 4    TP: 1    PP: 2", unit: "tokens/s/GPU"),
            row(id: "nemo", gpus: "128", nodes: "16", model: llama.model, detail: llama.detail, precision: "FP8", batch: "8", plan: "TP 4; PP 1; DP 8; CP 4", unit: "tokens/s/GPU"),
            row(id: "mt", gpus: "32", nodes: "4", model: llama.model, detail: llama.detail, precision: "BF16", batch: "128", plan: "dcn_data_parallelism=4 ici_fsdp_parallelism=8", unit: "tokens/s/GPU"),
            row(id: "ddp", plan: "multiproc.py --nproc_per_node 8"),
            row(id: "pl", plan: "trainer.devices=8; DDPStrategyZero1 (ZeroRedundancyOptimizer)"),
            row(id: "one", gpus: "1", batch: "256", plan: "single GPU"),
            row(id: "hvd", plan: "KVSTORE=horovod"),
            row(id: "ns", plan: "not stated in source"),
            row(id: "gpus", plan: "8 GPUs (torch.distributed)"),
        ])
        #expect(cases.allSatisfy { $0.unsupported == nil }, "\(cases.compactMap(\.unsupported))")
        #expect(cases[0].plan.dataParallel == 4 && cases[0].plan.tensorParallel == 1 && cases[0].plan.pipelineParallel == 2)
        #expect(cases[1].contextParallel == 4 && cases[1].plan.tensorParallel == 4 && cases[1].plan.dataParallel == 32)
        #expect(cases[2].plan.dataParallel == 32 && cases[2].plan.shardParameters == true && cases[2].plan.tensorParallel == 1)
        for i in [3, 4, 6, 8] { #expect(cases[i].plan.dataParallel == 8 && cases[i].plan.tensorParallel == 1, "\(cases[i].id)") }
        #expect(cases[4].plan.shardOptimizer == true)
        #expect(cases[5].plan.dataParallel == 1)
        #expect(cases[7].plan.dataParallel == nil && cases[7].notes.contains { $0.contains("the planner's choice") })
        // a degree the importer cannot place is still refused, saying what it read
        #expect(try parse([row(plan: "PP=2 and 3 more")])[0].unsupported?.contains("cannot read 'PP=2 and 3 more'") == true)
    }

    @Test("values and units from logs and tables: 169k, imgs_sec, training_sequences_per_second, TFLOPs/s, teraflops, TFLOP/sec/chip; MFU skipped")
    func logUnits() throws {
        let gpt = "hidden 2048; 24 layers; 16 heads; seq 2048; vocab 50257"
        let cases = try parse([
            row(id: "k", model: "GPT3-1.3B", detail: gpt, batch: "512", metric: "training throughput", value: "169k", unit: "tokens/sec"),
            row(id: "i", metric: "training throughput", value: "26737.2", unit: "imgs_sec"),
            row(id: "s", model: "BERT-Large", detail: "seq 512", batch: "448", metric: "training throughput", unit: "training_sequences_per_second"),
            row(id: "f", model: "GPT3-1.3B", detail: gpt, batch: "512", metric: "training speed (TFLOPs/s/GPU)", value: "196", unit: "TFLOPs/s"),
            row(id: "t", model: "GPT3-1.3B", detail: gpt, batch: "512", metric: "throughput (teraflops)", value: "64", unit: "teraflops"),
            row(id: "c", model: "GPT3-1.3B", detail: gpt, batch: "512", metric: "TFLOP/sec/chip", value: "400", unit: "TFLOP/sec/chip"),
            row(id: "m", model: "GPT3-1.3B", detail: gpt, batch: "512", metric: "MFU", value: "44.3", unit: "MFU"),
            row(id: "g", model: "GPT3-355M", detail: "", batch: "256", unit: "sequences/s"),
            row(id: "v", model: "vit_base_patch16_224", detail: "", batch: "1024"),
        ])
        #expect(cases[0].measured == 169_000 && cases[0].metric == .tokensPerSecond)
        #expect(cases[1].metric == .samplesPerSecond && cases[2].metric == .samplesPerSecond)
        #expect(cases[3].metric.kind == cases[5].metric.kind && cases[5].notes.contains { $0.contains("tflop/s/gpu") })
        if case .teraflopsPerGPU = cases[3].metric {} else { Issue.record("TFLOPs/s with a metric per GPU: \(cases[3].metric)") }
        if case .teraflops = cases[4].metric {} else { Issue.record("teraflops: \(cases[4].metric)") }
        #expect(cases[6].unsupported?.contains("a utilisation ('MFU'") == true)
        #expect(cases[7].modelSpec == "gpt:layers=24,hidden=1024,heads=16,seq=2048,vocab=50257")
        #expect(cases[8].modelSpec == "vit:layers=12,hidden=768,heads=12,patch=16,image=224")
        // a value that is not a number is still an error naming the column
        #expect(throws: ValidationDataError.self) { try parse([row(value: "lots")]) }
    }

    @Test("words of other tables: 'sentences per second' (DLE TensorFlow BERT), 'sequence length of 384', 'teraFLOPs per GPU', LLaMA (the first) by size, bert_large_squad")
    func otherTablesWords() throws {
        let gpt = "hidden 12288; 96 layers; 96 heads; seq 2048; vocab 51200"
        let cases = try parse([
            row(id: "s1", model: "BERT-Large", detail: "sequence length of 384; batch 32", batch: "256",
                metric: "Throughput - mixed precision (sentences/sec)", unit: "sentences/sec"),
            row(id: "s2", model: "BERT-Large", detail: "seq 128", batch: "256", metric: "Performance (in sentences per second)",
                unit: "sentences per second"),
            row(id: "tf", model: "GPT-3 175B", detail: gpt, batch: "1536", metric: "teraFLOPs per GPU", value: "138",
                unit: "teraFLOPs per GPU"),
            row(id: "l65", model: "LLaMA 65B", detail: "batch 4M tokens", batch: "2048", metric: "training throughput",
                value: "380", unit: "tokens/s/GPU"),
            row(id: "l7", model: "LLaMA-7B", detail: "seq 4096", batch: "512", unit: "tokens/s/GPU"),
            row(id: "sq", model: "bert_large_squad", detail: "seq 384; SQuAD v1.1 fine-tuning", batch: "112",
                metric: "training throughput", unit: "training_sequences_per_second"),
        ])
        #expect(cases.allSatisfy { $0.unsupported == nil }, "\(cases.compactMap(\.unsupported))")
        #expect(cases[0].metric == .samplesPerSecond && cases[0].sequenceLength == 384)
        #expect(cases[1].metric == .samplesPerSecond && cases[1].sequenceLength == 128)
        if case .teraflopsPerGPU = cases[2].metric {} else { Issue.record("teraFLOPs per GPU: \(cases[2].metric)") }
        // LLaMA 65B (Touvron et al. 2023, Table 2): 80 layers of 8,192, 64 heads; 65.2 × 10⁹ parameters; context 2,048
        #expect(cases[3].modelSpec == "llama:layers=80,hidden=8192,heads=64,kv-heads=64,ffn=22016,seq=2048,vocab=32000")
        #expect(abs(cases[3].transformer!.parameters / 65.2e9 - 1) < 0.01)
        #expect(cases[4].modelSpec == "llama:layers=32,hidden=4096,heads=32,kv-heads=32,ffn=11008,seq=4096,vocab=32000")
        #expect(abs(cases[4].transformer!.parameters / 6.7e9 - 1) < 0.01)
        // fine-tuning: no MLM head over the vocabulary, dropout 0.1
        #expect(cases[5].modelSpec == "bert-large:seq=384,predict=1,dropout=10")
    }

    @Test("DLE PyTorch BERT at 512 is its phase 2 (length-binned) whether or not the row says 'phase 2'; its SQuAD is not")
    func dlePhase2BySequence() throws {
        let source = "https://github.com/NVIDIA/DeepLearningExamples/blob/729963dd47e7c8bd462ad10bfac7a7b0b604e6dd/PyTorch/LanguageModeling/BERT/README.md"
        let cases = try parse([
            row(id: "said", model: "BERT-Large pretraining", detail: "phase 2, seq 512", batch: "4096", unit: "sequences/s", source: source),
            row(id: "unsaid", model: "BERT-Large pretraining", detail: "Sequence length 512", batch: "4096", unit: "sequences/s", source: source),
            row(id: "phase2", model: "BERT-Large", detail: "phase2; seq 512", batch: "4096", unit: "sequences/s", source: source),
            row(id: "squad", model: "BERT-Large", detail: "SQuAD fine-tuning; seq 512", batch: "256", unit: "sequences/s", source: source),
        ])
        #expect(cases[0].modelSpec == "bert-large:seq=288,predict=43,dropout=10")
        #expect(cases[1].modelSpec == cases[0].modelSpec)
        #expect(cases[2].modelSpec?.hasPrefix("bert-large:seq=288") == true)
        #expect(cases[3].modelSpec == "bert-large:seq=512,predict=1,dropout=10")
    }

    @Test("words of a sixth set: ZeRO with its group (zero1=8, zero2(dp8), zero1(dp2)+tp2+pp4), TGS, samp/s, per A100-40G GPU, Llama 3.2, TinyLlama, Llama-like, InternEvo's config names, a BERT by its sizes")
    func sixthSetWords() throws {
        let intern = "NUM_LAYER 32; HIDDEN_SIZE 4096; NUM_ATTENTION_HEAD 32; MLP_RATIO 8/3; VOCAB_SIZE 103168; seq_len 2048; micro_num 4; micro_bsz 2; checkpoint=False"
        let cases = try parse([
            row(id: "ie", model: "7B model", detail: intern, precision: "bf16", batch: "64", plan: "tp=1, zero1=8", metric: "TGS",
                value: "4078", unit: "Tokens/GPU/Second"),
            row(id: "ie-all", gpus: "16", nodes: "2", model: "7B model", detail: intern.replacingOccurrences(of: "checkpoint=False", with: "Activation Ckpt TRUE"),
                precision: "bf16", batch: "128", plan: "TP=2, Zero1=-1", metric: "TGS", value: "2785", unit: "Tokens per GPU per Second"),
            row(id: "ca", gpu: "H200", model: "Llama-like 7B", detail: "Seqlen 4096; Batch Size per DP 36", precision: "not stated",
                batch: "288", plan: "zero2(dp8)", metric: "Throughput", value: "17.13", unit: "samp/s"),
            row(id: "ca3d", gpu: "H200", gpus: "16", nodes: "2", model: "Llama-like 70B", detail: "Seqlen 4096", precision: "bf16",
                batch: "256", plan: "zero1(dp2)+tp2+pp4", metric: "Throughput", value: "5.66", unit: "samp/s"),
            row(id: "tl", gpu: "A100-40G", gpus: "16", nodes: "2", model: "TinyLlama-1.1B", detail: "Sequence Length 2048; micro_batch_size 8",
                precision: "bf16", batch: "1024", plan: "FSDP", metric: "throughput", value: "24000", unit: "tokens per second per A100-40G GPU"),
            row(id: "l32", gpus: "1", model: "Llama 3.2 3B", detail: "Max seq len 4096", precision: "bf16", batch: "2", plan: "single device",
                metric: "Tokens Per Second", value: "8998", unit: "Tokens Per Second"),
            row(id: "b4", model: "4B BERT", detail: "48 layers; hidden 2560; ffn_hidden_size 4*hidden; 32 heads; seq 512; micro_batch_size 8",
                precision: "bf16", batch: "2048", plan: "TP=1; PP=1; DP=8", metric: "Tokens per Second", value: "57287", unit: "Tokens per Second"),
        ])
        #expect(cases.allSatisfy { $0.unsupported == nil }, "\(cases.map { "\($0.id): \($0.unsupported ?? "")" })")
        // InternEvo: the Llama block from its configuration names, SwiGLU int(4096 × 8/3) = 10,922 → 11,008
        #expect(cases[0].modelSpec == "llama:layers=32,hidden=4096,heads=32,kv-heads=32,ffn=11008,seq=2048,vocab=103168")
        #expect(cases[0].metric == .tokensPerSecondPerGPU)
        #expect(cases[0].plan.shardOptimizer == true && cases[0].plan.tensorParallel == 1)
        #expect(cases[0].plan.microBatch == 2 && cases[0].plan.microBatches == 4 && cases[0].plan.recompute == PlanSpec.Recompute.none)
        #expect(cases[0].notes.contains { $0.contains("groups of 8 data-parallel ranks") })
        #expect(cases[0].assumptions["zero_group"] == "8" && cases[1].assumptions["zero_group"] == nil)   // zero1=-1: all
        #expect(cases[0].assumptions["param_broadcast"] == nil)   // not InternEvo's code: an all-gather
        // InternEvo's own rows: its HybridZeroOptimizer broadcasts the updated weights from each rank of the group
        let ie = try parse([row(id: "ie", model: "7B model", detail: intern, precision: "bf16", batch: "64", plan: "tp=1, zero1=8",
                                metric: "TGS", value: "4078", unit: "Tokens/GPU/Second",
                                source: "https://github.com/InternLM/InternEvo/blob/34fc28d760282c11a2aba552d5b21ffefed3e188/doc/en/train_performance.md")])
        #expect(ie[0].assumptions["param_broadcast"] == "1" && ie[0].assumptions["zero_group"] == "8")
        #expect(cases[1].plan.tensorParallel == 2 && cases[1].plan.shardOptimizer == true && cases[1].plan.recompute == .full)
        #expect(cases[2].plan.dataParallel == 8 && cases[2].plan.shardOptimizer == true && cases[2].metric == .samplesPerSecond)
        #expect(cases[2].modelSpec == "llama:layers=32,hidden=4096,heads=32,kv-heads=32,ffn=11008,seq=4096,vocab=32000")
        #expect(cases[3].plan.dataParallel == 2 && cases[3].plan.tensorParallel == 2 && cases[3].plan.pipelineParallel == 4)
        #expect(cases[3].modelSpec == "llama:layers=80,hidden=8192,heads=64,kv-heads=8,ffn=28672,seq=4096,vocab=32000")
        #expect(cases[4].metric == .tokensPerSecondPerGPU && cases[4].plan.microBatch == 8)
        #expect(cases[4].modelSpec == "llama:layers=22,hidden=2048,heads=32,kv-heads=4,ffn=5632,seq=2048,vocab=32000")
        #expect(cases[5].modelSpec == "llama:layers=28,hidden=3072,heads=24,kv-heads=8,ffn=8192,seq=4096,vocab=128256")
        #expect(cases[5].transformer?.tiedEmbeddings == true)
        // a BERT of another size from its sizes: the zoo's encoder with its MLM head over every token
        #expect(cases[6].modelSpec == "bert:layers=48,hidden=2560,heads=32,seq=512,vocab=30522" && cases[6].plan.microBatch == 8)
    }

    @Test("words of a seventh set: DGX-2 by the system column, Megatron-DeepSpeed's script variables and TFLOPs, llm.c's launcher, ms/iter, sizes as scripts write them")
    func seventhSetWords() throws {
        let mds = "https://github.com/microsoft/Megatron-DeepSpeed/blob/f4157bea69f3df8c6cb66f2ebcda66ba03d1288e/examples_deepspeed/rebase/README.md"
        let llmc = "https://github.com/karpathy/llm.c/blob/f1e2ace651495b74ae22d45d1723443fd00ecd3a/scripts/run_gpt2_124M.sh"
        let cases = try parse([
            // 0: a DGX-2 named by the system column, 16 GPUs a node; 3D parallelism's degrees from model_detail
            row(id: "dgx2", gpu: "V100", gpus: "128", nodes: "8", model: "GPT-3 13B",
                detail: "seq_len=2048; num_layers=40; hidden_size=5120; num_attn_heads=40; batch_size=2 (micro batch size per GPU); mp_size=4; pp_size=8; --checkpoint-activations",
                precision: "fp16", batch: "1024", plan: "3D parallelism (DeepSpeed ZeRO stage 1, tensor parallelism, pipeline parallelism)",
                metric: "TFLOPs (per GPU)", value: "50", unit: "TFLOPs (per GPU)", source: mds)
                .replacingOccurrences(of: "dgx2,,", with: "dgx2,8 DGX-2 nodes (16 GPU per node),"),
            // 1: the script variables in the parallelism column; "throughput" in TFLOPs
            row(id: "vars", model: "GPT-3 2.7B", detail: "num_layers=32; hidden_size=2560; num_attn_heads=32; seq_len=2048; batch_size=2",
                precision: "fp16", batch: "512", plan: "mp_size=2; pp_size=2; zero_stage=1", metric: "training throughput",
                value: "121", unit: "TFLOPs", source: mds),
            // 2: llm.c: mpirun's processes, its -z and -b, a GPT-2 by its parameter count, ms/iter
            row(id: "llmc", model: "GPT-2 (124M)", detail: "mpirun -np 8; -b 64 (per-GPU, micro) batch size; -t 1024 sequence length; -z 1",
                precision: "bf16", batch: "512", plan: "mpirun -np 8 (data parallel), -z 1", metric: "steps in", value: "300",
                unit: "ms/iter", source: llmc),
            // 3: a BERT by its script sizes; ZeRO stage-1 without model parallelism
            row(id: "bert", gpus: "64", nodes: "8", model: "1.3B BERT",
                detail: "num_layers=24; hidden_size=2048; num_attn_heads=32; seq_len=512; batch size 4096 (64 per GPU)",
                precision: "fp16", batch: "4096", plan: "ZeRO stage-1, without model parallelism", metric: "throughput",
                value: "145", unit: "TFLOPs per GPU", source: mds),
            // 4: TP size=32; a decoder by llm.c's depth and channels
            row(id: "tpsize", gpus: "32", nodes: "4", model: "GPT", detail: "depth 12: channels 768, num_heads 12; 2048 sequence length",
                precision: "fp16", batch: "2", plan: "TP size=32", metric: "iteration time", value: "1.5", unit: "s/iter"),
            // 5: GPT-3 125M by its count in parentheses
            row(id: "gpt3", model: "GPT-3 (125M)", detail: "2048 sequence length", precision: "bf16", batch: "256",
                plan: "DP=8", metric: "steps in", value: "150", unit: "ms/iter"),
            // 6: MLPerf BERT's unpadding as its log writes it (index 6); 7: Megatron-DeepSpeed's Triton FlashAttention flag
            row(id: "unpad", model: "BERT-Large", detail: "max_seq_length=512; dense_seq_output=True, unpad_fmha=True", precision: "fp16",
                batch: "448", plan: "8 GPUs (torch.distributed, DP)", metric: "training throughput", value: "2415", unit: "training_sequences_per_second"),
            row(id: "triton", gpus: "32", nodes: "4", model: "GPT", detail: "num_layers=64; hidden_size=6144; num_attn_heads=64; Sequence Length 8k; --use-flash-attn-triton",
                precision: "fp16", batch: "2", plan: "TP size=32", metric: "TFLOPS", value: "86", unit: "TFLOPS", source: mds),
        ])
        #expect(cases[7].assumptions["attention_kernel"] == "triton" && cases[7].modelSpec?.contains("seq=8192") == true)
        for c in cases.prefix(5) { #expect(c.unsupported == nil, "\(c.id): \(c.unsupported ?? "")") }
        #expect(cases[0].gpusPerNode == 16 && cases[0].nodes == 8 && cases[0].machineOverrides["server.model"] == "DGX-2")
        #expect(cases[0].plan.tensorParallel == 4 && cases[0].plan.pipelineParallel == 8 && cases[0].plan.microBatch == 2)
        #expect(cases[0].plan.shardOptimizer == true && cases[0].plan.recompute == .full)
        #expect(cases[0].metric == .teraflopsPerGPU(.megatronRecompute))
        #expect(cases[0].modelSpec == "gpt:layers=40,hidden=5120,heads=40,seq=2048,vocab=51200")
        #expect(cases[1].plan.tensorParallel == 2 && cases[1].plan.pipelineParallel == 2 && cases[1].plan.shardOptimizer == true)
        #expect(cases[1].plan.microBatch == 2)   // Megatron-DeepSpeed's batch_size is its --micro-batch-size
        #expect(cases[1].metric == .teraflopsPerGPU(.megatronModel))   // its TFLOPs are a GPU's, no recompute here
        #expect(cases[2].plan.dataParallel == 8 && cases[2].plan.shardOptimizer == true && cases[2].plan.microBatch == 64)
        #expect(cases[2].modelSpec?.hasPrefix("gpt:layers=12,hidden=768,heads=12,seq=1024") == true && cases[2].metric == .millisecondsPerStep)
        #expect(cases[3].modelSpec == "bert:layers=24,hidden=2048,heads=32,seq=512,vocab=30522")
        #expect(cases[3].plan.dataParallel == 64 && cases[3].plan.shardOptimizer == true)
        #expect(cases[4].plan.tensorParallel == 32 && cases[4].metric == .secondsPerStep)
        #expect(cases[4].modelSpec?.hasPrefix("gpt:layers=12,hidden=768,heads=12,seq=2048") == true)
        #expect(cases[5].modelSpec?.hasPrefix("gpt:layers=12,hidden=768,heads=12,seq=2048") == true, "\(cases[5].unsupported ?? "")")
        #expect(cases[6].sequencesPerSample == 2)
        // NVIDIA's MLPerf v2.0 BERT reduces after the backward pass unless its flags ask for overlap
        let mlperf = "https://github.com/mlcommons/training_results_v2.0/blob/8437fbb78349aa3c3054aeccb1d47d2a315a80e7/Dell/results/x/bert/result_0.txt"
        let bert = try parse([
            row(id: "post", model: "BERT-Large", detail: "max_seq_length=512; --dense_seq_output --unpad --unpad_fmha", precision: "fp16",
                batch: "448", plan: "8 GPUs (torch.distributed, DP)", metric: "training throughput", value: "2415",
                unit: "training_sequences_per_second", source: mlperf),
            row(id: "overlap", model: "BERT-Large", detail: "max_seq_length=512; --unpad --dwu-overlap-reductions", precision: "fp16",
                batch: "448", plan: "8 GPUs (torch.distributed, DP)", metric: "training throughput", value: "2415",
                unit: "training_sequences_per_second", source: mlperf),
        ])
        #expect(bert[0].assumptions["gradient_overlap"] == "0" && bert[1].assumptions["gradient_overlap"] == nil)
        // an MPI launcher whose processes are not the row's GPUs: that row skipped, saying why
        let mpi = try parse([row(id: "mpi", model: "GPT-2 (124M)", detail: "1024 sequence length", precision: "bf16", batch: "512",
                                 plan: "mpirun -np 4", metric: "steps in", value: "300", unit: "ms/iter")])
        #expect(mpi[0].unsupported?.contains("mpirun starts 4 processes, but the row has 8 GPUs") == true, "\(mpi[0].unsupported ?? "read")")
        // the management Ethernet beside the compute NICs is not the fabric
        #expect(nodeFabric("1x Ethernet 40Gb/Sec, 8x ConnectX-6 IB HDR 200Gb/Sec", gpusPerNode: 8).map { [Double($0.0), $0.1] } == [8, 200])
    }

    @Test("the nodes' network from the interconnect column: NICs × rate, a rate a GPU or a node's total; NVLink is not a NIC")
    func nodeFabricWords() throws {
        func read(_ text: String, _ perNode: Int = 8) -> [Double]? { nodeFabric(text, gpusPerNode: perNode).map { [Double($0.0), $0.1] } }
        #expect(read("Inter-machine bandwidth 4 * 100Gb RoCE; 8 GPUs a node") == [4, 100])
        #expect(read("Compute: 8x ConnectX-6 IB HDR 200Gb/Sec; NVLINK 3.0, NVSWITCH 2.0 600GB/s") == [8, 200])
        #expect(read("NVLink Gen4 900GB/s + NVSwitch Gen3; 8x ConnectX-7 IB NDR 400Gb/s per node (MLPerf system JSON)") == [8, 400])
        #expect(read("2x ConnectX-6 IB HDR 200Gb/Sec per node; NVLink 3.0 600GB/s; 4 accelerators per node", 4) == [2, 200])
        #expect(read("one 200 Gb/s HDR InfiniBand a GPU") == [8, 200])
        #expect(read("RoCE, 400 Gbps interconnects between GPUs (paper §3.3.1)") == [8, 400])
        #expect(read("1600 Gbps node-node interconnect (RoCE) (table heading)") == [8, 200])
        #expect(read("not stated for this table (the scalability table's runs: 4x200Gbps RDMA inter-bandwidth)") == [4, 200])
        for none in ["NVLink 3.0 + NVSwitch 2.0 600GB/s (MLPerf system JSON)", "not stated in source", "",
                     "8 GPUs per node using NVLink 4 inter-gpu connects, 4 OmniPath links (README Hardware)"] {
            #expect(read(none) == nil, "\(none)")
        }
        // a row's fabric replaces the preset's, and says so
        let cases = try parse([row(id: "roce", gpus: "16", nodes: "2", model: "GPT-3 1.3B", detail: "seq 2048", precision: "bf16",
                                   batch: "64", plan: "DP=16", metric: "throughput", value: "1000", unit: "tokens/s")
                                   .replacingOccurrences(of: ",2,,GPT-3", with: ",2,4 * 100Gb RoCE,GPT-3")])
        #expect(cases[0].unsupported == nil, "\(cases[0].unsupported ?? "")")
        #expect(cases[0].machineOverrides["server.nics"] == "4" && cases[0].machineOverrides["server.nic_bandwidth"] == "100Gb/s",
                "\(cases[0].machineOverrides)")
        #expect(cases[0].notes.contains { $0.contains("4 × 100 Gb/s") })
    }

    @Test("DLE's PyTorch SQuAD (run_squad.py, also through Lambda's benchmark): eager, apex DDP's overlap, BertAdam op by op without --fp16")
    func pyTorchSquadSoftware() throws {
        let dle = "https://github.com/NVIDIA/DeepLearningExamples/blob/729963dd47e7c8bd462ad10bfac7a7b0b604e6dd/PyTorch/LanguageModeling/BERT/README.md"
        let lambda = "https://github.com/lambdal/deeplearning-benchmark/blob/4e11f68/pytorch/pytorch-train-throughput-fp16.csv"
        let cases = try parse([
            row(id: "tf32", model: "BERT-Large", detail: "Fine-tuning SQuAD v1.1; max_seq_length=384", precision: "TF32", batch: "32",
                unit: "sequences/sec", source: dle),
            row(id: "amp", model: "BERT-Large", detail: "Fine-tuning SQuAD v1.1; max_seq_length=384", precision: "mixed precision",
                batch: "256", unit: "sequences/sec", source: dle),
            row(id: "lambda", model: "bert_large_squad", detail: "seq 384; SQuAD v1.1 fine-tuning (run_squad.py)", precision: "fp16",
                batch: "112", unit: "training_sequences_per_second", source: lambda),
            row(id: "pretrain", model: "BERT-Large pretraining", detail: "phase 1, seq 128", precision: "TF32", batch: "8192",
                unit: "sequences/sec", source: dle),
        ])
        #expect(cases.allSatisfy { $0.unsupported == nil }, "\(cases.compactMap(\.unsupported))")
        for c in cases.prefix(3) {
            #expect(c.assumptions["fusion"] == "0" && c.assumptions["fused_attention"] == "0" && c.assumptions["eager_attention"] == "1", "\(c.id)")
            #expect(c.assumptions["gradient_overlap"] == nil, "\(c.id): apex DDP overlaps")
        }
        #expect(cases[0].assumptions["optimizer_kernels"] == "19" && cases[0].assumptions["optimizer_bytes"] == "140")
        #expect(cases[0].notes.contains { $0.contains("BertAdam") })
        #expect(cases[1].assumptions["optimizer_kernels"] == nil && cases[2].assumptions["optimizer_kernels"] == nil)   // FusedAdam
        // pretraining keeps its own: scripted and fused, all-reduce after accumulation, the fused LAMB
        #expect(cases[3].assumptions["fusion"] == nil && cases[3].assumptions["gradient_overlap"] == "0"
                && cases[3].assumptions["optimizer_kernels"] == nil)
    }

    @Test("MXNet's FP16 ResNet-50 (DLE's MXNet, NVIDIA's MLPerf) keeps its batch norm's input on chip: one pass; others two")
    func mxnetBatchNorm() throws {
        let cases = try parse([
            row(id: "mlperf", detail: "MLPerf ImageNet; MXNet NGC 23.09; DALI; LARS", precision: "Mixed (FP16)", batch: "3200",
                source: "https://github.com/mlcommons/training_results_v3.1/blob/d06288b/NVIDIA/results/eos_n8_ngc23.09_mxnet/resnet/result_0.txt"),
            row(id: "dle-mx-tf32", precision: "TF32", batch: "2048",
                source: "https://github.com/NVIDIA/DeepLearningExamples/blob/x/MxNet/Classification/RN50v1.5/README.md"),
            row(id: "pytorch", precision: "AMP", batch: "2048",
                source: "https://github.com/NVIDIA/DeepLearningExamples/blob/x/PyTorch/Classification/ConvNets/resnet50v1.5/README.md"),
        ])
        #expect(cases[0].assumptions["batch_norm_passes"] == "1" && cases[0].notes.contains { $0.contains("NhwcBatchNormAddRelu") })
        #expect(cases[1].assumptions["batch_norm_passes"] == nil)   // NCHW TF32: cuDNN's general batch norm
        #expect(cases[2].assumptions["batch_norm_passes"] == nil)
    }

    @Test("what a row's text says of the software: PyTorch FP32 convolutions are TF32 on A100, NCHW, unpadded BERT, no flash attention")
    func softwareWords() throws {
        let cases = try parse([
            row(id: "tf32", gpus: "1", detail: "memory_format : nchw", precision: "fp32", batch: "256", plan: "DP=1",
                source: "https://github.com/lambdal/deeplearning-benchmark/blob/x/pytorch/train.csv"),
            row(id: "v100", gpu: "V100-SXM2-32GB", gpus: "1", precision: "fp32", batch: "256", plan: "DP=1", source: "https://example.org/pytorch"),
            row(id: "unpad", model: "BERT-Large", detail: "seq 512; --unpad", batch: "448", unit: "sequences/s"),
            row(id: "noflash", model: "GPT3-2.7B", detail: "seq 8192; Without FlashAttention column", precision: "BF16", batch: "128",
                unit: "sequences/s"),
        ])
        #expect(cases[0].precision == .tf32 && cases[0].assumptions["channels_last"] == nil)   // NCHW: TF32's default
        let fp16 = try parse([row(detail: "memory_format : nchw", precision: "fp16")])[0]
        #expect(fp16.assumptions["channels_last"] == "0" && fp16.notes.contains { $0.contains("model_detail says 'nchw'") })
        #expect(cases[1].precision == .fp32)
        #expect(cases[2].sequencesPerSample == 2 && cases[2].assumptions["attention_segments"] == "2")
        #expect(cases[3].assumptions["fused_attention"] == "0")
        // llm-foundry's attn_impl: triton (the 2022 Triton FlashAttention), flash (flash-attn), torch (op by op)
        let impls = try parse(["triton", "flash", "torch", "xformers"].map {
            row(id: $0, model: "MPT-7B", detail: "hidden 4096; 32 layers; 32 heads; seq 2048; attn_impl \($0) (submit_benchmarks.py default)",
                precision: "amp_bf16", batch: "48", unit: "tokens/s")
        })
        #expect(impls[0].assumptions["attention_kernel"] == "triton" && impls[0].notes.contains { $0.contains("Triton FlashAttention") })
        #expect(impls[1].assumptions["attention_kernel"] == "fa2")
        #expect(impls[2].assumptions["fused_attention"] == "0" && impls[2].assumptions["attention_kernel"] == nil)
        #expect(impls[3].assumptions["attention_kernel"] == nil && impls[3].assumptions["fused_attention"] == nil)
    }

    @Test("an H100 with other memory (94 GB, 96 GB HBM2e) fits by that memory, HBM2e at its own bandwidth; a power limit below the TDP lowers its clocks")
    func h100Variants() throws {
        let c = try parse([row(gpu: "H100 96GB HBM2e (Grand Teton; 500W power limit)")])[0]
        #expect(c.machinePreset == "dgx-h100" && c.machineOverrides["gpu.hbm_bytes"] == "96GiB")
        #expect(c.machineOverrides["gpu.power_limit"] == "500W")
        #expect(c.notes.contains { $0.contains("gpu.power_limit = 500 W as the name says") && $0.contains("0.894 of the data sheet's clocks") })
        // HBM2e: 2.41 TB/s (source G9), not the SXM5 part's 3.35 TB/s of HBM3
        #expect(c.machineOverrides["gpu.hbm_bandwidth"] == "2410GB/s" && c.notes.contains { $0.contains("source G9") })
        let m = try c.machine()
        guard case .gpu(let g) = m.system else { Issue.record("not a GPU machine"); return }
        #expect(g.gpu.hbmBytes == 96 * 1073741824)
        #expect(abs(g.gpu.hbmBandwidth - 2.41e12) < 1e6)
        #expect(g.gpu.powerLimit == 500 && abs(g.gpu.clockScale - 0.8939) < 1e-4)
        // an H100 with other memory whose name does not say HBM2e keeps the SXM5 part's bandwidth
        let nvl = try parse([row(gpu: "H100 94GB")])[0]
        #expect(nvl.machineOverrides["gpu.hbm_bytes"] == "94GiB" && nvl.machineOverrides["gpu.hbm_bandwidth"] == nil)
        guard case .gpu(let g2) = try nvl.machine().system else { Issue.record("not a GPU machine"); return }
        #expect(abs(g2.gpu.hbmBandwidth - 3.35e12) < 1e6)
    }
}

@Suite("GPU GEMM tiles and layouts")
struct GPUTileTests {
    @Test("a GEMM 64 wide runs in 128×64 tiles, not half-empty 128² ones: faster, but below the 128² tile's rate")
    func narrowGEMM() throws {
        let a100 = try #require(GPUCostModel(machine: try Presets.load("dgx-a100")))
        let wide = a100.cost(gemmWork(200_704, 128, 576, .fp16), precision: .fp16)
        let narrow = a100.cost(gemmWork(200_704, 64, 576, .fp16), precision: .fp16)
        // Half the work: with one 128² tile shape it took as long as the wide one; with 128×64 tiles
        // (reuse 42.7 against 64: two thirds the rate) it takes 3/4 of it.
        #expect(narrow.computeSeconds < 0.8 * wide.computeSeconds)
        #expect(narrow.computeSeconds > 0.6 * wide.computeSeconds)
        // CUDA-core FP32 GEMMs are not fed from tensor-core tiles: half the work, half the time.
        let v100 = try #require(GPUCostModel(machine: try Presets.load("dgx-v100")))
        let w32 = v100.cost(gemmWork(200_704, 128, 576, .fp32), precision: .fp32)
        let n32 = v100.cost(gemmWork(200_704, 64, 576, .fp32), precision: .fp32)
        #expect(abs(n32.computeSeconds / w32.computeSeconds - 0.5) < 0.02)
    }

}
