import DojoCompiler
import DojoMachine
import Foundation

// The importer of `dojo validate`: a CSV row (ValidationCSV.swift reads the file) → a `ValidationCase`
// (Validation.swift: the case types, the scoring and the report). What a row cannot be simulated from is a skip
// with the reason (`RowSkip`), never a whole-file error; a value that is malformed is an error naming its line
// and column.

// MARK: - Reading a row

/// A row the simulator cannot model (a GPU without a preset, context parallelism, LoRA fine-tuning, a time-to-train
/// without its work, a unit it does not know): the case is kept, skipped with `reason`, and the other rows run.
struct RowSkip: Error { var reason: String }

/// The case of a row that `readCase` skipped: what the report shows of it (id, GPU, model, measurement). Its counts
/// and value must still be well-formed and its id unique (those are errors in any row).
func skippedCase(_ row: Row, reason: String) throws -> ValidationCase {
    let id = try row.nonEmpty("id")
    let gpus = try row.positiveInt("gpus", max: Limits.devices, why: "the most devices a machine may have")
    let nodes = row["nodes"].isEmpty ? 1 : try row.positiveInt("nodes", max: Limits.devices, why: "the most devices a machine may have")
    let batch = try row.positiveInt("global_batch", max: Limits.batch, why: "the most samples a step may have")
    guard nodes <= gpus else {
        throw row.fail("nodes", "\(nodes) nodes for \(gpus) GPU\(gpus == 1 ? "" : "s"): every node holds at least one of them")
    }
    let m = row["metric"].lowercased()
    let metric: ValidationMetric = m.contains("time-to-train") || m.contains("time to train")
        ? .timeToTrain(TrainingWork(samples: 0, basis: "not read"), secondsPerUnit: 1) : .samplesPerSecond
    return ValidationCase(
        id: id, file: row.table.file, line: row.line, system: row["system"], gpuName: row["gpu"],
        modelName: row["model"], machinePreset: "", nodes: nodes, machineOverrides: [:],
        gpus: gpus, modelSpec: nil, transformer: nil, precision: .fp32, globalBatch: batch,
        plan: PlanSpec(), modelParallel: nil, metric: metric, measured: try row.positiveNumber("value"),
        unit: row["unit"], source: row["source"], unsupported: reason, notes: [])
}

/// One record with its column names, for messages that name the line and column.
struct Row {
    var table: CSVTable
    var record: CSVTable.Record

    var line: Int { record.line }

    subscript(_ column: String) -> String {
        guard let i = table.index(of: column) else { return "" }
        return record.fields[i].trimmingCharacters(in: .whitespaces)
    }

    /// A row the simulator cannot use as written (its plan does not add up, its metric or precision is not one the
    /// model knows): skipped with the reason, naming the column, while the other rows run.
    func skip(_ column: String, _ message: String) -> RowSkip {
        RowSkip(reason: "\(column): \(message)")
    }

    func fail(_ column: String, _ message: String) -> ValidationDataError {
        ValidationDataError(file: table.file, line: record.line, column: table.index(of: column).map { $0 + 1 },
                            columnName: column, message: message)
    }

    /// A whole number in 1...max (`why` says where the bound comes from).
    func positiveInt(_ column: String, max: Int, why: String) throws -> Int {
        let text = self[column]
        let digits = text.replacingOccurrences(of: ",", with: "")
        guard let n = Int(digits), n >= 1 else {
            if !digits.isEmpty, digits.allSatisfy(\.isNumber) { throw fail(column, "\(text) is more than \(max) (\(why))") }
            throw fail(column, "expected a whole number ≥ 1, got '\(text)'")
        }
        guard n <= max else { throw fail(column, "\(text) is more than \(max) (\(why))") }
        return n
    }

    /// A positive number, with thousands separators or a k/M/G suffix as tables write them ("1,310,000", "169k",
    /// "1.3M").
    func positiveNumber(_ column: String) throws -> Double {
        let text = self[column]
        var t = text.replacingOccurrences(of: ",", with: "").trimmingCharacters(in: .whitespaces)
        var scale = 1.0
        if let last = t.last, let s = ["k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9][String(last)] { scale = s; t.removeLast() }
        guard let x = Double(t).map({ $0 * scale }), x.isFinite, x > 0 else {
            throw fail(column, "expected a positive number, got '\(text)'")
        }
        return x
    }

    func nonEmpty(_ column: String) throws -> String {
        let text = self[column]
        guard !text.isEmpty else { throw fail(column, "empty") }
        return text
    }
}

/// A GPU as the `gpu` column names it → the preset that has it, and overrides for variants.
private struct GPUEntry {
    var names: [String]
    var preset: String
    var overrides: [String: String]
    var note: String?
    /// GPUs in one node of this system (16 in a DGX-2).
    var gpusPerNode = 8
}

private let knownGPUs: [GPUEntry] = [
    GPUEntry(names: ["A100-SXM4-80GB", "A100 SXM4 80GB"], preset: "dgx-a100", overrides: [:]),
    // The A100 data sheet (G2 in the dgx-a100 preset) gives the 40GB SXM4 part 1,555 GB/s of HBM2 against the 80GB
    // part's 2,039 GB/s of HBM2e; same clocks and tensor-core peaks.
    GPUEntry(names: ["A100-SXM4-40GB", "A100 SXM4 40GB"], preset: "dgx-a100",
             overrides: ["gpu.hbm_bytes": "40GiB", "gpu.hbm_bandwidth": "1555GB/s"],
             note: "A100 40GB: the dgx-a100 preset (80GB) with gpu.hbm_bytes = 40GiB (40,960 MiB as nvidia-smi reports it) and gpu.hbm_bandwidth = 1,555 GB/s (A100 data sheet: HBM2, against the 80GB part's 2,039 GB/s HBM2e)"),
    GPUEntry(names: ["V100-SXM2-32GB", "V100 SXM2 32GB"], preset: "dgx-v100", overrides: [:]),
    GPUEntry(names: ["V100-SXM2-16GB", "V100 SXM2 16GB"], preset: "dgx-v100", overrides: ["gpu.hbm_bytes": "16GiB"],
             note: "V100 16GB (DGX-1 16GB): the dgx-v100 preset (32GB) with gpu.hbm_bytes = 16GiB; same 900 GB/s HBM2 and NVLink"),
    // DGX-2 (data sheet: 16 × V100 SXM3 32GB on 12 NVSwitches, 2 PFLOPS FP16 = 125 TFLOPS a GPU, 8 × 100 Gb/s
    // EDR InfiniBand, 2 × 24-core Xeon Platinum 8168, 10 kW): the dgx-v100 preset's GPU in a 16-GPU NVSwitch node.
    GPUEntry(names: ["V100-SXM3-32GB", "V100 SXM3 32GB"], preset: "dgx-v100",
             overrides: ["gpu.model": "V100 SXM3 32GB", "server.model": "DGX-2", "server.gpus": "16",
                         "server.interconnect": "nvswitch", "server.nvlink_bisection_fraction": "1", "server.nics": "8",
                         "server.power": "10kW", "server.host_cores": "48", "server.host_threads": "96", "gpu.tdp": "350W"],
             note: "V100 SXM3 32GB: a DGX-2 (16 GPUs on NVSwitch, 8 × 100 Gb/s EDR per node; DGX-2 data sheet), the dgx-v100 preset's GPU with the DGX-2's server figures",
             gpusPerNode: 16),
    GPUEntry(names: ["H100-SXM5-80GB", "H100 SXM5 80GB", "H100-SXM (DGX H100)"], preset: "dgx-h100", overrides: [:]),
    GPUEntry(names: ["H100"], preset: "dgx-h100", overrides: [:],
             note: "gpu 'H100' without a variant: H100 SXM5 80GB as in a DGX H100 (ASSUMPTION)"),
    GPUEntry(names: ["H200-SXM-141GB", "H200 SXM 141GB"], preset: "dgx-h200", overrides: [:]),
    GPUEntry(names: ["H200"], preset: "dgx-h200", overrides: [:],
             note: "gpu 'H200' without a variant: H200 SXM 141GB as in a DGX H200 (ASSUMPTION)"),
    GPUEntry(names: ["B200-SXM-180GB", "B200 SXM 180GB"], preset: "dgx-b200", overrides: [:]),
    GPUEntry(names: ["B200"], preset: "dgx-b200", overrides: [:],
             note: "gpu 'B200' without a variant: B200 SXM 180GB as in a DGX B200 (ASSUMPTION)"),
    // PCIe cards, in a server of 8 on PCIe switches (the pcie-* presets; the server's figures are ASSUMPTIONS there).
    GPUEntry(names: ["A100-PCIE-80GB", "A100 PCIe 80GB"], preset: "pcie-a100", overrides: [:],
             note: "A100 PCIe 80GB: the pcie-a100 preset (8 cards a server on PCIe, no NVSwitch: ASSUMPTION)"),
    // The A100 data sheet (G2): the 40GB PCIe card has 1,555 GB/s of HBM2 and a 250 W TDP (the 80GB card 1,935 GB/s,
    // 300 W); same tensor-core peaks.
    GPUEntry(names: ["A100-PCIE-40GB", "A100 PCIe 40GB"], preset: "pcie-a100",
             overrides: ["gpu.model": "A100 PCIe 40GB", "gpu.hbm_bytes": "40GiB", "gpu.hbm_bandwidth": "1555GB/s", "gpu.tdp": "250W"],
             note: "A100 PCIe 40GB: the pcie-a100 preset (80GB) with gpu.hbm_bytes = 40GiB, gpu.hbm_bandwidth = 1,555 GB/s and gpu.tdp = 250 W (A100 data sheet: the 40GB PCIe card); 8 cards a server on PCIe, no NVSwitch (ASSUMPTION)"),
    GPUEntry(names: ["H100-PCIE-80GB", "H100 PCIe 80GB", "H100 PCIe"], preset: "pcie-h100", overrides: [:],
             note: "H100 PCIe 80GB: the pcie-h100 preset (8 cards a server on PCIe, no NVSwitch: ASSUMPTION)"),
]

/// The GPU a `gpu` column names: an exact known name, or another spelling of an SXM or PCIe part (letters and digits
/// compared: `A100 SXM 80GB`, `NVIDIA H100-SXM5`, `Tesla V100-SXM2-16GB`, `H100 80GB PCIe Gen5`), with a note saying
/// how it was read. NVL parts (other memory, clocks and links), V100 PCIe cards and GPUs without a preset: nil.
private func lookupGPU(_ name: String) -> (GPUEntry, String?)? {
    if let e = knownGPUs.first(where: { $0.names.contains { $0.caseInsensitiveCompare(name) == .orderedSame } }) { return (e, nil) }
    let n = name.lowercased().filter { $0.isLetter || $0.isNumber }
    func entry(_ exact: String) -> GPUEntry? { knownGPUs.first { $0.names.contains(exact) } }
    if n.replacingOccurrences(of: "nvlink", with: "").contains("nvl") { return nil }
    let read: GPUEntry?
    var assumed = ""
    if n.contains("pcie") {
        if n.contains("h100") {
            read = entry("H100-PCIE-80GB")
        } else if n.range(of: "a100(?!0)", options: .regularExpression) != nil {
            read = n.contains("40g") ? entry("A100-PCIE-40GB") : entry("A100-PCIE-80GB")
            if !n.contains("40g") && !n.contains("80g") { assumed = " (ASSUMPTION: the 80GB card)" }
        } else {
            read = nil
        }
    } else if n.contains("h200") && !n.contains("gh200") {
        read = entry("H200-SXM-141GB")
    } else if n.contains("b200") && !n.contains("gb200") {
        read = entry("B200-SXM-180GB")
    } else if n.contains("h100") {
        read = entry("H100-SXM5-80GB")
        if !n.contains("80") { assumed = " (ASSUMPTION: the 80GB SXM5 part of a DGX H100)" }
    } else if n.range(of: "a100(?!0)", options: .regularExpression) != nil {
        read = n.contains("40g") ? entry("A100-SXM4-40GB") : entry("A100-SXM4-80GB")
        if !n.contains("40g") && !n.contains("80g") { assumed = " (ASSUMPTION: the 80GB SXM4 part)" }
    } else if n.contains("v100") {
        read = n.contains("sxm3") || n.contains("dgx2") ? entry("V100-SXM3-32GB") : n.contains("16g") ? entry("V100-SXM2-16GB") : entry("V100-SXM2-32GB")
        if !n.contains("16g") && !n.contains("32g") { assumed = " (ASSUMPTION: the 32GB SXM2 part)" }
    } else {
        read = nil
    }
    guard var e = read else { return nil }
    var note = "gpu '\(name)' read as \(e.names[0])\(assumed)"
    // An H100 with another memory than the DGX H100's 80 GB (94 GB H100 NVL-class HBM3, 96 GB HBM2e parts of
    // Meta's Grand Teton): that memory for the fit; an HBM2e part's bandwidth where the name says HBM2e; the clocks
    // stay the SXM5 part's.
    if n.contains("h100"), let c = groups(#"\b(\d{2,3}) ?GB\b"#, name), let gb = Int(c[0]), gb != 80, (16...256).contains(gb) {
        e.overrides["gpu.hbm_bytes"] = "\(gb)GiB"
        note += "; gpu.hbm_bytes = \(gb)GiB as the name says (in binary units, as the 80GB parts report)"
        if n.contains("hbm2e") {
            // an HBM2e part, not the SXM5's HBM3: the 2.41 TB/s published for an H100 with 94 GiB of HBM2e (source G9)
            e.overrides["gpu.hbm_bandwidth"] = "2410GB/s"
            note += "; gpu.hbm_bandwidth = 2,410 GB/s, the HBM2e H100's (source G9; ASSUMPTION: this part's, and the SXM5 part's clocks)"
        } else {
            note += " (ASSUMPTION: the SXM5 part's 3.35 TB/s and clocks)"
        }
    }
    // A power limit other than the part's TDP (the preset's gpu.tdp, from the data sheets)
    if let c = groups(#"\b(\d{3,4}) ?W\b"#, name), let w = Double(c[0]),
       case .gpu(let g)? = (try? Presets.load(e.preset).with(e.overrides))?.system, w != g.gpu.tdp {
        if w < g.gpu.tdp {
            e.overrides["gpu.power_limit"] = "\(c[0])W"
            var limited = g.gpu; limited.powerLimit = w
            note += "; gpu.power_limit = \(c[0]) W as the name says, below the part's \(Int(g.gpu.tdp)) W TDP: compute at \(String(format: "%.3f", limited.clockScale)) of the data sheet's clocks ((limit ÷ TDP)^(1/3), ASSUMPTION: dynamic power ∝ f³; HBM unchanged)"
        } else {
            note += "; its \(c[0]) W power limit is above the part's \(Int(g.gpu.tdp)) W TDP and not modelled (ASSUMPTION: the data sheet's clocks)"
        }
    }
    return (e, note)
}

/// The first capture of `pattern` in `text` as a number (commas allowed), or nil.
/// A count read from model_detail by `pattern`: nil when absent, an error naming it when it is not in 1...max.
private func firstCount(_ pattern: String, in text: String, row: Row, what: String, max: Int) throws -> Int? {
    guard let x = firstNumber(pattern, in: text) else { return nil }
    guard x >= 1, x <= Double(max) else {
        // free text: an implausible count there skips its row with the reason (the other rows run)
        throw row.skip("model_detail", "\(what) \(x < 1e15 ? String(Int(x)) : "\(x)") is not a count in 1…\(max)")
    }
    return Int(x)
}

private func firstNumber(_ pattern: String, in text: String) -> Double? {
    captures(pattern, in: text).first.flatMap { Double($0.replacingOccurrences(of: ",", with: "")) }
}

/// The captures of a match of `pattern` (case-insensitive) in `text`, or nil when it does not match.
private func groups(_ pattern: String, _ text: String) -> [String]? {
    guard let re = try? Regex(pattern).ignoresCase(), let m = text.firstMatch(of: re) else { return nil }
    return (1..<m.output.count).map { m.output[$0].substring.map(String.init) ?? "" }
}

/// The captures of the first match of `pattern` (case-insensitive) in `text`; empty when none.
private func captures(_ pattern: String, in text: String) -> [String] {
    groups(pattern, text) ?? []
}

/// The compute fabric a node has, as an interconnect column states it: NICs × rate ("4 * 100Gb RoCE",
/// "8x ConnectX-7 IB NDR 400Gb/s"), a rate a GPU ("one 200 Gb/s HDR InfiniBand a GPU", "400 Gbps interconnects
/// between GPUs") or a node's total ("1600 Gbps node-node interconnect"). Rates in gigabits: "Gb" with a small b,
/// so NVLink's "900GB/s" is not read as a NIC. Returns (NICs, Gb/s each, the words read).
@_spi(Testing) public func nodeFabric(_ text: String, gpusPerNode: Int) -> (Int, Double, String)? {
    let rate = #"(\d+(?:\.\d+)?)\s?Gb(?:ps|/s(?:ec)?|/Sec|it/s)?\b"#
    func match(_ pattern: String) -> [String]? {
        guard let re = try? Regex(pattern), let m = text.firstMatch(of: re) else { return nil }
        return (0..<m.output.count).map { m.output[$0].substring.map(String.init) ?? "" }
    }
    // "N x … R Gb": N NICs (ports) of R each, within one clause; an Ethernet port beside them is the management
    // network ("1x Ethernet 40Gb/Sec, 8x ConnectX-6 IB HDR 200Gb/Sec"), not the compute fabric
    if let re = try? Regex(#"\b(\d{1,2})\s?[x×*]\s?([^;,()]*?)"# + rate) {
        for m in text.matches(of: re) {
            let out = (0..<m.output.count).map { m.output[$0].substring.map(String.init) ?? "" }
            guard let n = Int(out[1]), n > 0, let r = Double(out[3]), r > 0,
                  out[2].range(of: "ethernet", options: .caseInsensitive) == nil else { continue }
            return (n, r, out[0])
        }
    }
    // "R Gb … a/per GPU", "between GPUs": a NIC of R for every GPU
    if let c = match(#"(?i:one\s)?"# + rate + #"[^;,]*?\b(?i:a|per|each|between) GPUs?\b"#), let r = Double(c[1]), r > 0 {
        return (gpusPerNode, r, c[0])
    }
    // "R Gb node-node" / "per node": a node's total over one NIC a GPU
    if let c = match(rate + #"\s(?i:node-node|node-to-node|per node|a node)\b"#), let r = Double(c[1]), r > 0 {
        return (gpusPerNode, r / Double(gpusPerNode), c[0])
    }
    return nil
}

func readCase(_ row: Row) throws -> ValidationCase {
    var notes: [String] = []
    let id = try row.nonEmpty("id")
    let detail = row["model_detail"]
    let modelName = try row.nonEmpty("model")
    let source = try row.nonEmpty("source")

    // The machine.
    let gpuName = try row.nonEmpty("gpu")
    guard var (gpu, spelled) = lookupGPU(gpuName) else {
        throw RowSkip(reason: "no machine preset for GPU '\(gpuName)' (known: \(knownGPUs.flatMap(\.names).joined(separator: ", ")), and other spellings of the SXM parts)")
    }
    if let spelled { notes.append(spelled) }
    // A V100 in a DGX-2 where the system or interconnect column says so ("8 DGX-2 nodes, 16 GPU per node"): the
    // DGX-2's 16 SXM3 parts on NVSwitch, whatever the gpu column's spelling
    if gpu.preset == "dgx-v100", gpu.gpusPerNode != 16,
       (row["system"] + " " + row["interconnect"]).range(of: #"\bDGX-?2\b"#, options: [.regularExpression, .caseInsensitive]) != nil,
       let dgx2 = knownGPUs.first(where: { $0.names.contains("V100-SXM3-32GB") }) {
        gpu = dgx2
        notes.append("the system or interconnect column names a DGX-2: 16 V100 SXM3 32GB a node")
    }
    let perNode = gpu.gpusPerNode
    if let n = gpu.note { notes.append(n) }
    // A PCIe card in a slot of an older generation than its own (the interconnect column says which) runs its link at
    // that generation's rate: x16 at 8 GT/s (3.0) or 16 GT/s (4.0), 128b/130b coded, is 15.75 or 31.5 GB/s a direction
    // (PCI-SIG's PCIe 3.0 and 4.0 base specifications).
    if gpu.preset.hasPrefix("pcie-"), let c = groups(#"\bPCIe[ -]?(?:Gen ?)?([34])(?:\.0)?"#, row["interconnect"]) {
        let rate = c[0] == "3" ? "31.5GB/s" : "63GB/s"
        gpu.overrides["gpu.pcie_bandwidth"] = rate
        notes.append("gpu.pcie_bandwidth = \(rate) both ways: the interconnect column's PCIe \(c[0]).0 x16 slots")
    }
    // The nodes' network where the interconnect column states it ("4 * 100Gb RoCE", "8x ConnectX-6 IB HDR 200Gb/Sec",
    // "400 Gb/s per GPU", "1600 Gbps node-node"): the run's own fabric, in place of the preset's.
    if let (nics, gbps, said) = nodeFabric(row["interconnect"], gpusPerNode: perNode),
       case .gpu(let g)? = (try? Presets.load(gpu.preset).with(gpu.overrides))?.system,
       nics != g.server.nics || abs(gbps * 1e9 / 8 - g.server.nicBandwidth) > 1e6 {
        gpu.overrides["server.nics"] = "\(nics)"
        gpu.overrides["server.nic_bandwidth"] = "\(gbps.formatted(.number.grouping(.never)))Gb/s"
        notes.append("server.nics = \(nics) × \(gbps.formatted(.number.grouping(.never))) Gb/s: the interconnect column's '\(said)' (the preset has \(g.server.nics) × \((g.server.nicBandwidth * 8 / 1e9).formatted(.number.grouping(.never))) Gb/s)")
    }
    let gpus = try row.positiveInt("gpus", max: Limits.devices, why: "the most devices a machine may have")
    let nodes: Int
    if row["nodes"].isEmpty {
        nodes = (gpus + perNode - 1) / perNode
        notes.append("nodes not stated: \(nodes) nodes of \(perNode) GPUs (ASSUMPTION: the GPUs sit in full DGX-like nodes)")
    } else {
        nodes = try row.positiveInt("nodes", max: Limits.devices / perNode, why: "the most devices a machine may have, \(perNode) a node")
        guard nodes <= gpus else {
            throw row.fail("nodes", "\(nodes) nodes for \(gpus) GPU\(gpus == 1 ? "" : "s"): every node holds at least one of them")
        }
        guard gpus <= nodes * perNode else {
            throw row.fail("nodes", "\(nodes) node\(nodes == 1 ? "" : "s") of \(perNode) GPUs cannot hold \(gpus) GPUs")
        }
    }
    if gpus < nodes * perNode { notes.append("\(gpus) of the \(nodes * perNode) GPUs used") }
    if modelName.localizedCaseInsensitiveContains("ResNet-50") && isPyTorchDLE(source) && gpus > 1 {
        notes.append("the data README: these runs used PyTorch's native JPEG loader, whose CPU decoding may bound the multi-GPU figures (the DLE README's own AMP scaling is 6.72× on 8 A100, 6.93× on 8 V100)")
    }
    if row["system"].localizedCaseInsensitiveContains("HGX") {
        notes.append("HGX H100 system modelled as DGX H100 (same GPUs, NVSwitch and 8× 400 Gb/s NICs per node per the MLPerf system JSON)")
    }

    // The model.
    if (modelName + " " + detail).range(of: #"\b(LoRA|PEFT|adapter)"#, options: [.regularExpression, .caseInsensitive]) != nil {
        throw RowSkip(reason: "LoRA/adapter fine-tuning: the frozen base model's weights get no gradients nor optimizer state and the adapters' small GEMMs are not in the zoo's graphs; not modelled")
    }
    // State kept in host memory (ZeRO-Offload / ZeRO-Infinity, "CPU offloading") is moved over PCIe every step and its
    // optimizer runs on the host: neither is in the step model
    // (clause by clause: "Activation CPUOffload False", "no CPU offloading" say it is off)
    let offloaded = (detail + ";" + row["parallelism"]).split(whereSeparator: { ";,|".contains($0) }).contains { clause in
        clause.range(of: #"\b(cpu[ -]?offload(ing)?|zero[ -]?(offload|infinity)|offload(ing|ed)? to (the )?(cpu|host|nvme))\b"#,
                     options: [.regularExpression, .caseInsensitive]) != nil
            && clause.range(of: #"\b(no|not|without|false|off|none|disabled|0)\b"#, options: [.regularExpression, .caseInsensitive]) == nil
    }
    if offloaded {
        throw RowSkip(reason: "state offloaded to host memory (ZeRO-Offload / CPU offloading): its PCIe traffic and the optimizer on the host are not modelled")
    }
    // Images decoded and augmented by DALI on the host CPU: no published per-thread rate for DALI's CPU pipeline
    // (calibration.host_decode_rate is PyTorch's PIL loader's), so the input bound cannot be priced
    if detail.range(of: #"\bDALI\b[^;]*\bCPU\b"#, options: [.regularExpression, .caseInsensitive]) != nil {
        throw RowSkip(reason: "input decoded and augmented by DALI on the host CPU: no published per-thread rate for that pipeline (calibration.host_decode_rate is PyTorch's PIL loader's), so the input bound is not modelled")
    }
    var model = try readModel(row, name: modelName, detail: detail, notes: &notes)
    if isPyTorchDLE(source) || (source.contains("DeepLearningExamples") && detail.contains("LDDL")),
       model.spec?.hasPrefix("bert-large:seq=") == true,
       detail.range(of: #"(?i)\bphase[ _-]?2\b"#, options: .regularExpression) != nil
        // (DLE's pretraining runs phase 2 at 512 and names it so or not; its fine-tuning, SQuAD, runs at 384)
        || (model.shape?.sequence == 512
            && !isFineTuning(modelName + " " + detail)),
       let s = model.shape?.sequence {
        // DLE's phase 2 reads LDDL data binned by length (run_pretraining.sh: phase2_bin_size 64), and LDDL pads
        // each batch only to its longest sequence: the GPUs compute on about the real length rounded up to its bin,
        // not on `s`. Real length: padding is over half the tokens of Wikipedia at 512 (Krell et al. 2021, arXiv
        // 2107.02027), so about s/2 (ASSUMPTION: exactly half); plus half a bin on average.
        let padded = min(s, s / 2 + binSizeDLEPhase2 / 2)
        model.spec = "bert-large:seq=\(padded)"
        notes.append("bert-large:seq=\(padded): DLE's phase 2 bins sequences by length (LDDL, bin size \(binSizeDLEPhase2)) and pads a batch only to its longest; Wikipedia at \(s) is over half padding (Krell et al. 2021), so a batch is about \(s / 2) + \(binSizeDLEPhase2 / 2) tokens long (ASSUMPTION); sequences/s is unchanged by it")
    }
    if let spec = model.spec, spec.hasPrefix("bert-large:seq=") || spec.hasPrefix("bert-base:seq="),
       let s = Int(spec.split(separator: "=").last ?? ""),
       (modelName + " " + detail).range(of: #"pre-?train|MLPerf"#, options: [.regularExpression, .caseInsensitive]) != nil {
        // BERT pretraining as published (Devlin et al. 2019, §3.1 and A.2): 15 % of the tokens are masked and only
        // those go through the MLM head (Google's gather_indexes, NVIDIA's dense_seq_output), and dropout 0.1 on every
        // layer, the attention probabilities too.
        let predict = max(1, Int((0.15 * Double(s)).rounded()))
        model.spec = spec + ",predict=\(predict),dropout=10"
        notes.append("predict=\(predict), dropout=10: BERT pretraining runs the MLM head on the masked 15 % of the tokens only (Google's gather_indexes, NVIDIA's dense_seq_output; ASSUMPTION: 15 % of the \(s) modelled tokens, where TensorFlow gathers up to max_predictions_per_seq, 20 at 128 and 76-80 at 512) and drops out 10 % after attention, after the MLP and of the attention probabilities (Devlin et al. 2019)")
    }
    if let spec = model.spec, spec.hasPrefix("bert-large:seq=") || spec.hasPrefix("bert-base:seq="), !spec.contains("predict="),
       isFineTuning(modelName + " " + detail) {
        // BERT fine-tuned (SQuAD): no MLM head, a span head of 2 outputs a token instead, and dropout kept at 0.1
        // (Devlin et al. 2019, A.3: "The dropout probability was always kept at 0.1")
        model.spec = spec + ",predict=1,dropout=10"
        notes.append("predict=1, dropout=10: BERT fine-tuning (SQuAD) has no MLM head over the vocabulary, only a span head of 2 outputs a token (priced as the zoo's head on 1 position: ASSUMPTION, both negligible), and keeps dropout at 0.1 (Devlin et al. 2019, A.3)")
    }
    let globalBatch = try row.positiveInt("global_batch", max: Limits.batch, why: "the most samples a step may have")

    // Precision.
    var precision = try readPrecision(row, preset: gpu.preset, notes: &notes)
    if precision == .fp32, gpu.preset != "dgx-v100",
       (source + " " + detail).range(of: #"\b(jax|JAX|paxml|Pax|t5x|rosetta)\b"#, options: .regularExpression) != nil {
        // JAX: lax.Precision.DEFAULT runs FP32 matmuls and convolutions in TF32 on A100/H100 (FP32 on V100):
        // jax-ml/jax#18934, #12008.
        precision = .tf32
        notes.append("FP32 in JAX on A100/H100: tf32 (JAX's default matmul precision uses TF32 tensor cores there; jax-ml/jax#18934)")
    }

    if precision == .fp32, gpu.preset != "dgx-v100", model.spec?.hasPrefix("resnet") == true,
       (source + " " + detail + " " + row["system"]).range(of: #"(?i)pytorch|torch\b|torchvision"#, options: .regularExpression) != nil {
        // PyTorch runs FP32 convolutions on TF32 tensor cores on A100/H100 by default (torch.backends.cudnn.allow_tf32
        // is True since 1.7; matmuls are FP32 by default since 1.12, and a ResNet's work is its convolutions)
        precision = .tf32
        notes.append("FP32 in PyTorch on A100/H100 convolutions: tf32 (torch.backends.cudnn.allow_tf32 defaults to True)")
    }

    // What the sources say of the runs' software, as step-model assumptions (SimOptions keys).
    var assumptions: [String: String] = [:]

    // Parallelism.
    var (plan, modelParallel, contextParallel) = try readPlan(row, gpus: gpus, globalBatch: globalBatch, detail: detail,
                                                              assumptions: &assumptions, notes: &notes)
    if contextParallel > 1, let s = model.shape?.sequence, s % contextParallel != 0 {
        throw RowSkip(reason: "CP=\(contextParallel) does not divide the sequence length \(s): each GPU holds an equal share of every sequence")
    }
    // What the data README (§6) says of NVIDIA's MLPerf v3.0 GPT-3 runs and the rows do not repeat.
    if modelName.localizedCaseInsensitiveContains("GPT-3 175B (MLPerf)") && source.contains("training_results_v3.0") {
        if plan.virtualStages == nil { plan.virtualStages = 12 }
        if plan.shardOptimizer == nil { plan.shardOptimizer = true }
        if plan.microBatch == nil { plan.microBatch = 1 }
        try deriveMicroBatches(&plan, row: row, globalBatch: globalBatch, notes: &notes)
        try checkPlan(plan, globalBatch: globalBatch, gpus: gpus)
        notes.append("vp=12 (interleave 12), distributed optimizer (zero=1), micro-batch 1: the data README's §6 on NVIDIA's MLPerf v3.0 GPT-3 configuration")
    }
    if modelName.localizedCaseInsensitiveContains("Megatron-LM") && !modelName.localizedCaseInsensitiveContains("GPT-3")
        && plan.recompute == nil && source.contains("cases_april2021") {
        plan.recompute = .full
        notes.append("recompute=full: Narayanan et al. 2021 train with activation recomputation (their FLOP count includes it) (ASSUMPTION for the planner)")
    }

    sourceAssumptions(modelName: modelName, source: source, detail: detail, preset: gpu.preset, precision: precision,
                      isTorchtitan: isTorchtitan(row),
                      assumptions: &assumptions, notes: &notes)
    if let segments = model.attentionSegments { assumptions["attention_segments"] = formatCount(segments) }
    if model.spec?.hasPrefix("resnet") == true, let c = groups(#"\b(nchw|channels[_ -]first|nhwc|channels[_ -]last)\b"#, detail.lowercased()) {
        // (set where it differs from the default by precision: channels-last in 16/8-bit, channels-first in FP32/TF32)
        let last = c[0] == "nhwc" || c[0].hasPrefix("channels") && c[0].hasSuffix("last")
        if last != (precision != .fp32 && precision != .tf32) {
            assumptions["channels_last"] = last ? "1" : "0"
            notes.append("channels_last=\(last ? 1 : 0): model_detail says '\(c[0])'")
        }
    }

    // The measurement.
    let measured = try row.positiveNumber("value")
    // No training measurement in any unit the schema knows comes near 10^12 (sequences/s, tokens/s/GPU, TFLOP/s/GPU,
    // seconds or minutes): beyond it the row is a typo, not a run.
    guard measured <= 1e12 else { throw row.fail("value", "\(row["value"]) is more than 10^12 (no training measurement in these units is that large)") }
    let unit = try row.nonEmpty("unit")
    let metric = try readMetric(row, unit: unit, model: model, modelName: modelName, detail: detail, gpus: gpus,
                                preset: gpu.preset, measured: measured, notes: &notes)

    return ValidationCase(
        id: id, file: row.table.file, line: row.line, system: row["system"], gpuName: gpuName, modelName: modelName,
        machinePreset: gpu.preset, nodes: nodes, machineOverrides: gpu.overrides, gpus: gpus, gpusPerNode: perNode,
        modelSpec: model.spec, transformer: model.shape, precision: precision, globalBatch: globalBatch,
        plan: plan, modelParallel: modelParallel, metric: metric, measured: measured, unit: unit, source: source,
        unsupported: model.unsupported, notes: notes, assumptions: assumptions, sequencesPerSample: model.sequencesPerSample,
        contextParallel: contextParallel)
}

/// NVIDIA DeepLearningExamples' PyTorch examples (the rows whose loader and phase-2 binning facts are read from its
/// PyTorch scripts); its TensorFlow, MXNet and PaddlePaddle examples differ.
/// A row of torchtitan's (its performance pages, benchmark files or paper): the name in its source or system.
private func isTorchtitan(_ row: Row) -> Bool {
    (row["source"] + " " + row["system"]).lowercased().contains("torchtitan")
}

/// A row from Microsoft's Megatron-DeepSpeed (its READMEs and example scripts).
private func isMegatronDeepSpeed(_ row: Row) -> Bool { row["source"].contains("/Megatron-DeepSpeed/") }

/// A row from Karpathy's llm.c (its scripts and train_gpt2.cu flags).
private func isLLMc(_ row: Row) -> Bool { row["source"].contains("karpathy/llm.c") }

/// A row of NVIDIA's Megatron-Bridge performance tables (GitHub or docs.nvidia.com/nemo/megatron-bridge).
private func isMegatronBridge(_ row: Row) -> Bool {
    (row["source"] + " " + row["system"]).lowercased().contains("megatron-bridge")
}

private func isPyTorchDLE(_ source: String) -> Bool {
    source.contains("DeepLearningExamples") && source.contains("/PyTorch/")
}

/// Whether a row's model or detail says it fine-tunes (SQuAD, "fine-tuning"), not pretrains.
private func isFineTuning(_ text: String) -> Bool {
    text.range(of: #"(?i)squad|fine-?tun"#, options: .regularExpression) != nil
}

/// LDDL's bin size in DLE BERT's phase 2 (run_pretraining.sh: `phase2_bin_size=${30:-64}`).
private let binSizeDLEPhase2 = 64

/// The compute capability of a machine preset's GPU (0 when it does not say, or for a machine without GPUs).
private func computeCapability(ofPreset preset: String) -> Double {
    if case .gpu(let g)? = (try? Presets.load(preset))?.system { return g.gpu.computeCapability }
    return 0
}

/// A machine preset's GPU's dense 16-bit peak, TFLOP/s (its FP32 peak where it has none; 0 without GPUs).
private func halfPeakTFLOPs(ofPreset preset: String) -> Double {
    guard case .gpu(let g)? = (try? Presets.load(preset))?.system else { return 0 }
    return max(g.gpu.bf16, g.gpu.fp16, g.gpu.fp32) / 1e12
}

/// Software facts of a row's source that the step model takes as assumptions (`SimOptions` keys). Each is read
/// from the source the row cites (its README, scripts or configs), never tuned per row.
private func sourceAssumptions(modelName: String, source: String, detail: String, preset: String, precision: Precision,
                               isTorchtitan: Bool = false, assumptions: inout [String: String], notes: inout [String]) {
    let dle = source.contains("DeepLearningExamples")
    let lowerDetail = detail.lowercased()
    if dle && source.contains("/TensorFlow/Classification/") && modelName.localizedCaseInsensitiveContains("ResNet-50") {
        // DLE's TensorFlow 1 ResNet-50: training_perf.sh runs the benchmark on TFRecords without --dali, so tf.data
        // decodes on the host (10 parallel map threads a GPU process, runtime/runner.py). calibration.host_decode_rate
        // is the rate of PyTorch's PIL loader, not of TensorFlow's decoder, so it is not applied.
        notes.append("input: tf.data decodes the JPEGs on the host CPU (training_perf.sh passes no --dali); not priced (ASSUMPTION: not the bound: the README's real-data inference in the same container reaches 3.2-3.9 k images/s a GPU, above these training rates; calibration.host_decode_rate is PyTorch's PIL loader's rate)")
    } else if dle && !isPyTorchDLE(source) && modelName.localizedCaseInsensitiveContains("ResNet-50") {
        // DLE's MXNet and PaddlePaddle ResNet-50 read ImageNet through DALI, which decodes on the GPU.
        notes.append("input: DALI decodes the JPEGs on the GPU (DLE's MXNet and PaddlePaddle ResNet-50 READMEs); no host-decode bound")
    }
    if modelName.localizedCaseInsensitiveContains("ResNet"), precision == .fp16 || precision == .bf16,
       (source + " " + detail).range(of: "mxnet", options: .caseInsensitive) != nil {
        // MXNet's ResNet-50 in FP16 (DLE's MXNet example, NVIDIA's MLPerf submissions) runs NVIDIA's NHWC batch norm
        // with the residual add and ReLU fused (NhwcBatchNormAddRelu): it keeps the tile of its input in registers and
        // shared memory between the statistics and the normalisation, its heuristic counting DRAM traffic as
        // footprint × (2 + add) plus what does not fit on chip: one pass, not two.
        assumptions["batch_norm_passes"] = "1"
        notes.append("batch_norm_passes=1: MXNet's FP16 NHWC batch norm (NhwcBatchNormAddRelu, the kernel of DLE's MXNet ResNet-50 and NVIDIA's MLPerf submissions) keeps its input on chip between the statistics and the normalisation: DRAM traffic footprint × (2 + add) in its own heuristic; frameworks' general kernels read the input twice")
    }
    if source.range(of: #"github\.com/InternLM/(InternEvo|InternLM)/"#, options: [.regularExpression, .caseInsensitive]) != nil {
        // InternEvo's HybridZeroOptimizer (internlm/solver/optimizer/hybrid_zero_optim.py at the rows' commit 34fc28d7):
        // gradients all-reduced over the data-parallel group (reduce_tensor with dst_rank None), then after the update
        // broadcast_params sends each rank's shard of the weights with one dist.broadcast per rank of the zero1 group,
        // waited on layer by layer in the next forward pass (overlap_sync_param=True in configs/7B_sft.py).
        assumptions["param_broadcast"] = "1"
        notes.append("param_broadcast=1: InternEvo's HybridZeroOptimizer returns the updated weights with one broadcast from each rank of the zero1 group (broadcast_params, hybrid_zero_optim.py lines 851-878 at 34fc28d7), behind the next forward pass (overlap_sync_param=True, configs/7B_sft.py line 98)")
    }
    if isPyTorchDLE(source) && modelName.localizedCaseInsensitiveContains("ResNet-50") {
        // configs.yml (the file the rows cite for the batch) sets data_backend: pytorch and, per platform,
        // workers: 16 (DGXA100) and 8 (DGX1V): DataLoader processes per GPU decoding JPEGs on the host.
        let workers = preset == "dgx-a100" ? "16" : preset == "dgx-v100" ? "8" : nil
        if let w = workers {
            assumptions["loader_workers"] = w
            notes.append("loader_workers=\(w): PyTorch's native JPEG loader (configs.yml: data_backend pytorch, workers \(w) per GPU on \(preset == "dgx-a100" ? "DGXA100" : "DGX1V")) decodes on the host CPU at calibration.host_decode_rate per worker, at most the host's threads ÷ the node's GPUs in use")
        }
    }
    // NVIDIA's MLPerf v2.0 BERT (the implementation Dell, Azure and others submitted): run_and_time.sh trains with
    // --distributed_lamb, whose reductions overlap the backward pass only with --dwu-overlap-reductions
    // (run_pretraining.py: default False, passed as DistributedFusedLAMB's overlap_reductions); the rows list the
    // run's flags (--unpad, dense_seq_output …) without it
    if modelName.localizedCaseInsensitiveContains("BERT"), source.contains("training_results_v2.0"),
       lowerDetail.range(of: #"unpad|dense_seq_output"#, options: .regularExpression) != nil,
       !lowerDetail.contains("overlap"), assumptions["gradient_overlap"] == nil {
        assumptions["gradient_overlap"] = "0"
        notes.append("gradient_overlap=0: NVIDIA's MLPerf v2.0 BERT reduces the gradients after the backward pass (run_and_time.sh --distributed_lamb; run_pretraining.py --dwu-overlap-reductions is off unless passed, and the row's flags do not pass it)")
    }
    // Lambda's PyTorch benchmarks run DLE's PyTorch examples (its fork, patched for newer NGC containers: the
    // repository's pytorch/README.md), BERT's run_squad.py among them.
    let pyTorchDLE = isPyTorchDLE(source) || (source.contains("lambdal/deeplearning-benchmark") && source.contains("/pytorch/"))
    if (dle || pyTorchDLE) && (modelName.localizedCaseInsensitiveContains("BERT")) {
        // DLE's BERT pretraining: gradients are accumulated over the micro-batches and all-reduced after the last
        // one's backward pass, not overlapped with it (PyTorch run_pretraining.sh: allreduce_post_accumulation;
        // TensorFlow and PaddlePaddle: Horovod / fleet after gradient accumulation). PyTorch's SQuAD fine-tuning
        // (run_squad.py) wraps the model in apex's DistributedDataParallel, which all-reduces buckets during the
        // backward pass (delay_allreduce=False, its default): the default overlap.
        let squadPyTorch = pyTorchDLE && isFineTuning(modelName + " " + detail)
        let overlap = squadPyTorch ? "" : ", gradient_overlap=0"
        if !squadPyTorch { assumptions["gradient_overlap"] = "0" }
        if lowerDetail.contains("fused mha") || lowerDetail.contains("flash") {
            // PaddlePaddle's BERT at a5388a45 (2023-08) "integrate[s] cuDNN fused MHA": attention in one kernel.
            notes.append("gradient_overlap=0: DLE's BERT all-reduces after gradient accumulation; attention fused (the row: cuDNN fused MHA)")
        } else {
            // PyTorch 21.11, TensorFlow 20.06 / 21.02: attention as separate matmul and softmax kernels
            // (FlashAttention came in 2022, and DLE's BERT never took it up).
            assumptions["fused_attention"] = "0"
            notes.append("fused_attention=0\(overlap): DLE's BERT computes attention op by op (no FlashAttention: it came in 2022, after this code)" + (squadPyTorch ? "; run_squad.py's apex DistributedDataParallel all-reduces during the backward pass (delay_allreduce=False), the default overlap" : " and all-reduces after accumulation (run_pretraining.sh: allreduce_post_accumulation; Horovod after accumulation in TensorFlow)"))
            if pyTorchDLE {
                // PyTorch's BertSelfAttention.forward (modeling.py) runs eagerly: `attention_scores / math.sqrt(...)`
                // and `attention_scores + attention_mask` are kernels of their own before the softmax (only bias_gelu
                // is TorchScript-fused); TensorFlow's rows run under XLA, which fuses them.
                assumptions["eager_attention"] = "1"
                notes.append("eager_attention=1: DLE's PyTorch BERT scales the scores and adds the padding mask in kernels of their own (modeling.py, BertSelfAttention.forward: attention_scores / math.sqrt(head size), + attention_mask; eager PyTorch, only bias_gelu is TorchScript)")
                if squadPyTorch {
                    // run_squad.py never scripts the model (run_pretraining.py does: torch.jit.script with nvFuser);
                    // it turns the profiling executor off (lines 47-48), so every elementwise op (dropout, residual
                    // add, layer norm) is a kernel of its own.
                    assumptions["fusion"] = "0"
                    notes.append("fusion=0: DLE's SQuAD fine-tuning (run_squad.py) runs the model eagerly: no torch.jit.script of the model as run_pretraining.py does, the profiling executor off (run_squad.py lines 47-48), so dropout, residual add and layer norm are kernels of their own")
                    if precision == .tf32 || precision == .fp32 {
                        // Without --fp16, run_squad.py (lines 986-989) takes optimization.py's BertAdam, a Python loop over
                        // the parameters: per tensor clip_grad_norm_ (norm, stack, norm, add, reciprocal, mul, clamp,
                        // mul_: 8 kernels), the moments (mul_, add_, mul_, addcmul_), sqrt, add, div, the weight decay
                        // (mul, add_), the learning rate (mul) and the step (neg, add_): 18-20 kernels, each a pass over
                        // the tensor in FP32 (about 128 bytes a parameter in all), after the script's own multi-tensor
                        // GradientClipper (12 more: a norm read, a scale). With --fp16 it takes apex's FusedAdam.
                        assumptions["optimizer_kernels"] = "19"
                        assumptions["optimizer_bytes"] = "140"
                        notes.append("optimizer_kernels=19, optimizer_bytes=140: without --fp16, run_squad.py (lines 986-989) updates with optimization.py's BertAdam, op by op for each parameter: a clip_grad_norm_ of its own (8 kernels), the moments, sqrt, division, weight decay, learning rate and step (10-12 more), about 128 bytes a parameter in FP32, after the script's multi-tensor GradientClipper (12); with --fp16 apex's FusedAdam (the default, fused)")
                    }
                }
            }
        }
    }
    if dle && source.contains("/TensorFlow/LanguageModeling/BERT") {
        // DLE's TensorFlow 1 BERT (optimization.py at the pinned commit) works on every gradient at every
        // micro-batch, not once a step: clip_by_global_norm (an L2Loss of each gradient and a multiply, lines
        // 138-143) and an fp32 assign_add into the accumulators (117-122, 145-147): 24 bytes a parameter in 3 kernels
        // a tensor. With AMP (the graph rewrite and a dynamic loss scale, lines 98-101) also an is_finite check of
        // every gradient (130), the unscaling multiply (TF's loss_scale_optimizer) and the fp32 → fp16 cast of each
        // weight for the whitelisted MatMuls: about 18 bytes and 3 kernels more. (XLA may fuse some of these
        // kernels; not modelled.)
        let amp = precision.bytes < 4
        assumptions["micro_batch_gradient_bytes"] = amp ? "42" : "24"
        assumptions["micro_batch_gradient_kernels"] = amp ? "6" : "3"
        if amp {
            // TensorFlow 1's automatic mixed precision (optimization.py line 100: enable_mixed_precision_graph_rewrite)
            // keeps Softmax in FP32: it is on the rewrite's black list (NVIDIA/tensorflow,
            // grappler/optimizers/auto_mixed_precision_lists.h), and the scale, mask add and dropout around it follow
            // it in FP32 (gray ops downstream of a black one, or not between two white ones): the attention scores move
            // as 4-byte values between the two batched matmuls.
            assumptions["score_bytes"] = "4"
            notes.append("score_bytes=4: TensorFlow's AMP graph rewrite keeps Softmax in FP32 (auto_mixed_precision_lists.h black list), so attention's scale, mask, softmax and dropout move 4-byte scores")
        }
        notes.append("micro_batch_gradient_bytes=\(amp ? 42 : 24), micro_batch_gradient_kernels=\(amp ? 6 : 3): DLE's TensorFlow 1 BERT clips and accumulates every gradient in fp32 at each micro-batch\(amp ? " and, with AMP, checks it for overflow, unscales it and casts each weight to fp16" : "") (optimization.py: clip_by_global_norm, assign_add\(amp ? ", is_finite, loss-scale unscaling" : ""))")
    }
    if dle && source.contains("/TensorFlow2/LanguageModeling/BERT") {
        // DLE's TensorFlow 2 BERT (official/modeling/model_training_utils.py, forward(): at every micro-batch, with
        // AMP, optimizer.get_unscaled_gradients multiplies each gradient by 1/scale, then GradientAccumulator.add_gradients
        // (optimization.py) assign_adds it into an FP32 accumulator; clipping and the all-reduce once a step in step()):
        // FP32 gradients (Keras mixed_float16 keeps the variables in FP32): 12 bytes a parameter in one kernel a tensor
        // for the sum, 8 bytes and one kernel more for the unscaling.
        let amp = precision.bytes < 4
        assumptions["micro_batch_gradient_bytes"] = amp ? "20" : "12"
        assumptions["micro_batch_gradient_kernels"] = amp ? "2" : "1"
        notes.append("micro_batch_gradient_bytes=\(amp ? 20 : 12), micro_batch_gradient_kernels=\(amp ? 2 : 1): DLE's TensorFlow 2 BERT accumulates every FP32 gradient at each micro-batch\(amp ? " after unscaling it" : "") (model_training_utils.py forward(): \(amp ? "get_unscaled_gradients, " : "")GradientAccumulator.add_gradients)")
    }
    if !dle && assumptions["fused_attention"] == nil && !source.contains("cases_april2021") && !source.contains("2205.05198") {
        // What the row itself says of its attention kernels.
        if lowerDetail.range(of: #"\b(?:no|without)[ -]flash[ -]?attention"#, options: .regularExpression) != nil {
            assumptions["fused_attention"] = "0"
            notes.append("fused_attention=0: the row says the run used no flash attention (the scores are written to memory)")
        }
    }
    if assumptions["fused_attention"] == nil, assumptions["attention_kernel"] == nil, lowerDetail.contains("--use-flash-attn-triton") {
        // Megatron-DeepSpeed's flag for the 2022 Triton FlashAttention (megatron/model/transformer.py's
        // FlashSelfAttentionTriton)
        assumptions["attention_kernel"] = "triton"
        notes.append("attention_kernel=triton: --use-flash-attn-triton is the Triton FlashAttention of 2022, priced at its published rate where there is one (A100: Dao 2023, Fig. 4), else attention_efficiency")
    }
    if assumptions["fused_attention"] == nil, assumptions["attention_kernel"] == nil,
       let m = lowerDetail.firstMatch(of: /attn_impl[ :=]+([a-z_]+)/) {
        // llm-foundry's attention implementation (its model config's attn_config.attn_impl)
        switch String(m.1) {
        case "triton":
            assumptions["attention_kernel"] = "triton"
            notes.append("attention_kernel=triton: the row's attn_impl triton is the Triton FlashAttention of 2022 (llm-foundry's flash_attn_triton), priced at its published rate where there is one (A100: Dao 2023, Fig. 4), else attention_efficiency")
        case "flash":
            assumptions["attention_kernel"] = "fa2"
            notes.append("attention_kernel=fa2: the row's attn_impl flash (flash-attn)")
        case "torch":
            assumptions["fused_attention"] = "0"
            notes.append("fused_attention=0: the row's attn_impl torch computes attention op by op")
        default:
            break
        }
    }
    // (Transformer Engine's test is the GPU's compute capability: the preset's)
    if source.contains("NVIDIA/NeMo") || source.contains("NVIDIA-NeMo/"), computeCapability(ofPreset: preset) >= 9,
       assumptions["fused_attention"] == nil,
       assumptions["attention_kernel"] == nil,
       let m = (detail + " " + source).firstMatch(of: /NeMo ?([0-9]{2})\.[0-9]{2}/), let year = Int(m.1), year >= 24 {
        // NeMo's containers from 24.01 on carry Transformer Engine 1.2 or later, whose DotProductAttention prefers
        // cuDNN's fused attention to FlashAttention on Hopper (transformer_engine/pytorch/attention.py from v1.2,
        // commit 32db392: "Select FusedAttention on sm90 and FlashAttention on others for performance"); Transformer
        // Engine 2.x extends the preference to every newer GPU, the B200 (sm100) included
        // (transformer_engine/pytorch/attention/dot_product_attention/utils.py @002a3e57, "Select FusedAttention for
        // performance": `device_compute_capability >= (9, 0)`, "give FusedAttention preference on Hopper+").
        assumptions["attention_kernel"] = "cudnn"
        notes.append("attention_kernel=cudnn: NeMo \(m.1).x runs Transformer Engine >= 1.2, which on Hopper and newer (H100, H200, B200) picks cuDNN's fused attention over FlashAttention (TE attention.py: \"Select FusedAttention on sm90 and FlashAttention on others for performance\"; TE 2.x dot_product_attention/utils.py: \"give FusedAttention preference on Hopper+\", compute capability >= 9.0)")
    }
    let compiled = lowerDetail.range(of: #"\bcompile\s*[:=]?\s*(?:true|on|enabled|yes)\b"#, options: .regularExpression) != nil
        || (lowerDetail.contains("torch.compile")
            && lowerDetail.range(of: #"\b(?:no|without|not|w/o)\s+(?:using\s+)?torch\.compile|torch\.compile\s*(?:[:=]\s*|is |was )?(?:false|off|disabled|no|not used)\b|\bcompile\s*[:=]?\s*(?:false|off|disabled)\b"#,
                                 options: .regularExpression) == nil)
    if isTorchtitan, assumptions["fusion"] == nil, !compiled {
        // torchtitan without torch.compile runs eager PyTorch (its train_configs set `compile = false` by default):
        // RMSNorm (norm_type "rmsnorm", not "fused_rmsnorm"), RoPE and SwiGLU's silu and product are kernels of their
        // own, each a round trip through memory.
        assumptions["fusion"] = "0"
        notes.append("fusion=0: torchtitan without torch.compile (the row does not name it; its train_configs default to compile = false) runs eager PyTorch: RMSNorm, RoPE, SwiGLU and the residual adds are kernels of their own")
    }
    if source.contains("cases_april2021") || source.contains("2205.05198") {
        // Megatron-LM 2021-22: its fused softmax still writes the score matrices (Korthikanti et al.'s selective
        // recompute exists to drop them), and its default --DDP-impl local all-reduces after the backward pass.
        assumptions["fused_attention"] = "0"
        assumptions["gradient_overlap"] = "0"
        notes.append("fused_attention=0, gradient_overlap=0: Megatron-LM of 2021-22 materialises the attention scores (fused softmax, no FlashAttention) and its default local DDP (--DDP-impl local) all-reduces gradients after the backward pass")
    }
}

private struct ModelReading {
    var spec: String?
    var shape: TransformerShape?
    var unsupported: String?
    /// Real sequences in one simulated sample (packed samples hold several).
    var sequencesPerSample: Double = 1
    /// Sequences a packed sample's attention is split into (the step model's `attention_segments`; nil: one).
    var attentionSegments: Double? = nil
}

/// Real sequences in one packed sample of MLPerf BERT at 512 (Krell et al. 2021; see `readModel`).
private let packedSequencesPerPack = 2.0

/// model_detail with the sizes as training scripts write them put in the words the readers look for: Megatron's
/// `num_layers=64; hidden_size=6144; num_attn_heads=64` (its flags --num-layers, --hidden-size,
/// --num-attention-heads), llm.c's "depth 12: channels 768, num_heads 12", and "1024 sequence length".
func sizeWords(_ detail: String) -> String {
    var d = detail
    // (the script forms only, `name=N` or `--flag N`: other spellings, such as InternEvo's HIDDEN_SIZE, have readers of their own)
    for (pattern, with) in [(#"(?:--num-layers[ =]+|\bnum_layers=)(\d+)"#, "$1 layers"),
                            (#"(?:--hidden-size[ =]+|\bhidden_size=)(\d+)"#, "hidden $1"),
                            (#"(?:--num-attention-heads[ =]+|\bnum_(?:attn_|attention_)?heads[ =]+)(\d+)"#, "$1 heads"),
                            (#"(?i)\bdepth (\d+)\b"#, "$1 layers"),
                            (#"(?i)\bchannels (\d+)\b"#, "hidden $1"),
                            (#"(?i)\b(\d+) (?:sequence|context) length\b"#, "seq $1")] {
        d = d.replacingOccurrences(of: pattern, with: with, options: .regularExpression)
    }
    return d
}

private func readModel(_ row: Row, name: String, detail raw: String, notes: inout [String]) throws -> ModelReading {
    let detail = sizeWords(raw)
    let lower = name.lowercased()
    if detail.lowercased().hasPrefix("as above") {
        notes.append("model_detail '\(detail)' refers to another row of the data's larger collection; the model is read from the model column")
    }
    // "seq 8192", and as tables head the column: "Sequence Length 8192", "seq length 4096", "seq_len 2048", "max_seq_len=…"
    // "seq 8K", "Sequence Length 32k": K is 1,024 for a sequence length (8K = 8,192 tokens)
    let seqWords = #"(?:^|[^a-z])seq(?:uence|\.)?(?:[ _-]?len(?:gth)?)?[ :=]*(?:of )?"#
    let seq = try firstCount(seqWords + #"([0-9][0-9,]*[0-9]|[0-9])(?!\w|\.\d)"#, in: detail, row: row,
                             what: "sequence length", max: 1 << 20)
        ?? firstNumber(seqWords + #"([0-9]{1,4}) ?[kK](?![a-zA-Z0-9])"#, in: detail).map { Int($0) * 1024 }
    if lower.contains("resnet-50") || lower.contains("resnet50") {
        notes.append("resnet50: ResNet-50 v1.5 at 224×224 (ImageNet), 1,000 classes")
        return ModelReading(spec: "resnet50", shape: nil)
    }
    if lower.range(of: #"(?<![a-z])bert[ _-]?large"#, options: .regularExpression) != nil {   // bert_large_squad (Lambda's)
        guard let s = seq else {
            return ModelReading(unsupported: "BERT-Large without a sequence length ('seq N') in model_detail")
        }
        if detail.localizedCaseInsensitiveContains("packed") || detail.range(of: #"(?i)--unpad\b|\bunpadded\b|\bunpad(?:_fmha)?\s*=\s*true\b"#, options: .regularExpression) != nil {
            // MLPerf BERT packs several real sequences into each sample of `s` tokens, and its sequences/s counts the
            // real sequences. Krell et al. 2021 (arXiv 2107.02027): Wikipedia at 512 is about half padding, and their
            // packing fills packs almost completely, so a pack holds about 2 sequences (ASSUMPTION: exactly
            // `packedSequencesPerPack`). A pack is priced as one sample of `s` tokens whose sequences attend within
            // themselves (Krell et al.'s packing "without cross-contamination"; NVIDIA's MLPerf BERT runs its
            // attention on the packed sequences' own lengths): the step model's `attention_segments`.
            notes.append("packed samples (MLPerf): each sample is a pack of \(s) tokens holding about \(formatCount(packedSequencesPerPack)) real sequences (Krell et al. 2021: Wikipedia at 512 is about half padding, packing fills packs almost fully; ASSUMPTION: \(formatCount(packedSequencesPerPack)) of equal length); sequences/s = packs/s × \(formatCount(packedSequencesPerPack)); attention_segments=\(formatCount(packedSequencesPerPack)): each sequence attends within itself (packing without cross-contamination), so a pack computes \(formatCount(packedSequencesPerPack)) blocks of the scores, not the whole \(s) × \(s)")
            return ModelReading(spec: "bert-large:seq=\(s)", shape: .bertLarge(sequence: s), sequencesPerSample: packedSequencesPerPack,
                                attentionSegments: packedSequencesPerPack)
        }
        notes.append("bert-large: 24 layers, hidden 1,024, 16 heads, vocab 30,522 (Devlin et al. 2018), seq \(s)")
        return ModelReading(spec: "bert-large:seq=\(s)", shape: .bertLarge(sequence: s))
    }
    if lower.contains("llama 2 70b") || lower.contains("llama2-70b") || lower.contains("llama-2-70b") {
        let s = seq ?? 4096
        if seq == nil { notes.append("sequence length not stated: 4,096 (Llama 2's context)") }
        notes.append("llama2-70b: 80 layers, hidden 8,192, 64 heads (8 key/value), SwiGLU FFN 28,672, vocab 32,000, seq \(s)")
        return ModelReading(spec: "llama2-70b:seq=\(s)", shape: .llama2_70B(sequence: s))
    }
    if let c = groups(#"llama[ _-]?(2|3|3\.1|3\.2|3\.3)[ _-]+(\d+)b\b"#, lower), let (shape, what) = llamaShape(version: c[0], billions: c[1]) {
        var t = shape
        if let s = seq { t.sequence = s } else { notes.append("sequence length not stated: \(formatCount(Double(t.sequence))) (the model's context)") }
        notes.append("\(what): \(t.layers) layers, hidden \(formatCount(Double(t.hidden))), \(t.heads) heads (\(t.kvHeads) key/value), SwiGLU FFN \(formatCount(Double(t.ffnHidden))), vocab \(formatCount(Double(t.vocabulary))), seq \(formatCount(Double(t.sequence))) (Meta's released config.json)")
        return ModelReading(spec: llamaSpec(t), shape: t)
    }
    // LLaMA (the first: Touvron et al. 2023, arXiv 2302.13971, Table 2: dimension, heads, layers; context 2,048;
    // vocabulary 32,000; SwiGLU of 2/3·4d rounded up to a multiple of 256, as its released params.json gives it:
    // 11,008, 13,824, 17,920, 22,016). "LLaMA 13B" without a version is this one; 30B is the 33B's released name.
    if let c = groups(#"\bllama(?:[ _-]?1)?[ _-]+(7|13|30|33|65)b\b"#, lower) {
        let (l, h, n, f): (Int, Int, Int, Int) = switch c[0] {
        case "7": (32, 4096, 32, 11008)
        case "13": (40, 5120, 40, 13824)
        case "30", "33": (60, 6656, 52, 17920)
        default: (80, 8192, 64, 22016)
        }
        var t = TransformerShape(layers: l, hidden: h, heads: n, kvHeads: n, ffnHidden: f, gatedMLP: true, sequence: 2048,
                                 vocabulary: 32000, tiedEmbeddings: false, learnedPositions: false)
        if let s = seq { t.sequence = s } else { notes.append("sequence length not stated: 2,048 (LLaMA's context, Touvron et al. 2023)") }
        notes.append("LLaMA \(c[0])B: \(l) layers, hidden \(formatCount(Double(h))), \(n) heads, SwiGLU FFN \(formatCount(Double(f))), vocab 32,000, seq \(formatCount(Double(t.sequence))) (Touvron et al. 2023, Table 2; its released params.json)")
        return ModelReading(spec: llamaSpec(t), shape: t)
    }
    // Llama-block models by name, from their released configurations. Mistral 7B (v0.1 config.json; Jiang et al. 2023,
    // arXiv 2310.06825, Table 1): its 4,096-token sliding attention window is not modelled (ASSUMPTION: full causal
    // attention, the same at sequences up to the window). TinyLlama 1.1B: its README's table and lit_gpt/config.py
    // tiny_LLaMA_1b.
    let namedLlamaBlocks: [(pattern: String, name: String, shape: TransformerShape, source: String)] = [
        (#"\bmistral[ _-]?7b\b"#, "Mistral 7B",
         TransformerShape(layers: 32, hidden: 4096, heads: 32, kvHeads: 8, ffnHidden: 14336, gatedMLP: true, sequence: 8192,
                          vocabulary: 32000, tiedEmbeddings: false, learnedPositions: false),
         "Mistral AI's released config.json; Jiang et al. 2023, Table 1; its 4,096-token sliding window priced as full causal attention (ASSUMPTION)"),
        (#"\btinyllama[ _-]?1\.1b\b"#, "TinyLlama 1.1B",
         TransformerShape(layers: 22, hidden: 2048, heads: 32, kvHeads: 4, ffnHidden: 5632, gatedMLP: true, sequence: 2048,
                          vocabulary: 32000, tiedEmbeddings: false, learnedPositions: false),
         "its README; lit_gpt/config.py tiny_LLaMA_1b"),
    ]
    if let m = namedLlamaBlocks.first(where: { lower.range(of: $0.pattern, options: .regularExpression) != nil }) {
        var t = m.shape
        if let s = seq { t.sequence = s } else { notes.append("sequence length not stated: \(formatCount(Double(t.sequence))) (\(m.name)'s training context)") }
        notes.append("\(m.name): \(t.layers) layers, hidden \(formatCount(Double(t.hidden))), \(t.heads) heads (\(t.kvHeads) key/value), SwiGLU FFN \(formatCount(Double(t.ffnHidden))), vocab \(formatCount(Double(t.vocabulary))), seq \(formatCount(Double(t.sequence))) (\(m.source))")
        return ModelReading(spec: llamaSpec(t), shape: t)
    }
    // Colossal-AI's "Llama-like" benchmark models (examples/language/llama/benchmark.py MODEL_CONFIGS,
    // hpcaitech/ColossalAI@0094bc0a): "7b" is transformers' LlamaConfig defaults (Llama 2 7B's sizes), "13b" and "70b"
    // Llama 2's (70b with 8 key/value heads); vocab 32,000 (the default), context 4,096
    if let c = groups(#"\bllama[ _-]?like[ _-]+(7|13|70)b\b"#, lower), let (shape, _) = llamaShape(version: "2", billions: c[0]) {
        var t = shape
        if let s = seq { t.sequence = s }
        notes.append("Llama-like \(c[0])B: Colossal-AI's benchmark configuration (examples/language/llama/benchmark.py MODEL_CONFIGS[\"\(c[0])b\"], Llama 2 \(c[0])B's sizes): \(t.layers) layers, hidden \(formatCount(Double(t.hidden))), \(t.heads) heads (\(t.kvHeads) key/value), SwiGLU FFN \(formatCount(Double(t.ffnHidden))), vocab 32,000, seq \(formatCount(Double(t.sequence)))")
        return ModelReading(spec: llamaSpec(t), shape: t)
    }
    // InternEvo's (InternLM's) configuration names (configs/7B_sft.py): NUM_LAYER, HIDDEN_SIZE, NUM_ATTENTION_HEAD,
    // MLP_RATIO, VOCAB_SIZE. Its model is the Llama block (RMSNorm, SwiGLU, rotary positions); the SwiGLU width is
    // int(hidden × MLP_RATIO) rounded up to a multiple of 256 (its FeedForward's multiple_of).
    if let l = try firstCount(#"\bNUM_LAYER[ =:]+(\d+)"#, in: detail, row: row, what: "NUM_LAYER", max: 1 << 16),
       let h = try firstCount(#"\bHIDDEN_SIZE[ =:]+(\d+)"#, in: detail, row: row, what: "HIDDEN_SIZE", max: 1 << 20),
       let n = try firstCount(#"\bNUM_ATTENTION_HEAD[ =:]+(\d+)"#, in: detail, row: row, what: "NUM_ATTENTION_HEAD", max: 1 << 16),
       let v = try firstCount(#"\bVOCAB_SIZE[ =:]+(\d+)"#, in: detail, row: row, what: "VOCAB_SIZE", max: 1 << 24) {
        guard let s = seq else { return ModelReading(unsupported: "a model given by InternEvo's configuration names without a sequence length ('seq_len N') in model_detail") }
        let ratio = groups(#"\bMLP_RATIO[ =:]+(\d+(?:\.\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?))?"#, detail)
            .flatMap { c in Double(c[0]).map { $0 / (c[1].isEmpty ? 1 : Double(c[1]) ?? 1) } } ?? 8.0 / 3
        let f = (Int(Double(h) * ratio) + 255) / 256 * 256
        let kv = try firstCount(#"\bNUM_KV_ATTENTION_HEAD[ =:]+(\d+)"#, in: detail, row: row, what: "NUM_KV_ATTENTION_HEAD", max: 1 << 16) ?? n
        let t = TransformerShape(layers: l, hidden: h, heads: n, kvHeads: kv, ffnHidden: f, gatedMLP: true, sequence: s,
                                 vocabulary: v, tiedEmbeddings: false, learnedPositions: false)
        notes.append("InternEvo configuration (NUM_LAYER, HIDDEN_SIZE, …): the Llama block, \(l) layers, hidden \(formatCount(Double(h))), \(n) heads, SwiGLU FFN \(formatCount(Double(f))) (int(hidden × \(String(format: "%.4g", ratio))) rounded up to 256), vocab \(formatCount(Double(v))), seq \(s)")
        return ModelReading(spec: llamaSpec(t), shape: t)
    }
    if let c = groups(#"\bvit[ _-]?([blh])[ _/-]?(\d+)\b"#, lower)
        ?? groups(#"\bvit_(b|l|h)(?:ase|arge|uge)_patch(\d+)_\d+\b"#, lower) {   // timm's vit_base_patch16_224
        // Dosovitskiy et al. 2021, Table 1: Base 12 × 768 (12 heads), Large 24 × 1,024 (16), Huge 32 × 1,280 (16);
        // MLP 4 × hidden; the number after the slash is the patch side.
        let (layers, hidden, heads) = c[0] == "b" ? (12, 768, 12) : c[0] == "l" ? (24, 1024, 16) : (32, 1280, 16)
        let patch = Int(c[1]) ?? 16
        let image = try firstCount(#"image ([0-9][0-9,]*[0-9]|[0-9])(?!\w|\.\d)"#, in: detail, row: row, what: "image", max: 1 << 14) ?? 224
        guard patch >= 1, image % patch == 0 else {
            return ModelReading(unsupported: "ViT patch \(patch) does not divide the image side \(image)")
        }
        notes.append("vit: \(layers) layers, hidden \(hidden), \(heads) heads, patch \(patch), image \(image) (Dosovitskiy et al. 2021, Table 1), 1,000 classes")
        return ModelReading(spec: "vit:layers=\(layers),hidden=\(hidden),heads=\(heads),patch=\(patch),image=\(image)", shape: nil)
    }
    if lower.range(of: #"(?<![a-z])bert[ _-]?base"#, options: .regularExpression) != nil {
        guard let s = seq else {
            return ModelReading(unsupported: "BERT-Base without a sequence length ('seq N') in model_detail")
        }
        notes.append("bert-base: 12 layers, hidden 768, 12 heads, vocab 30,522 (Devlin et al. 2018), seq \(s)")
        return ModelReading(spec: "bert-base:seq=\(s)", shape: TransformerShape(layers: 12, hidden: 768, heads: 12, sequence: s, vocabulary: 30522))
    }
    // A BERT of another size with its sizes in model_detail (NeMo Megatron's "4B BERT": 48 layers; hidden 2560; 32 heads):
    // the zoo's BERT encoder, its MLM head over every token as Megatron's BertModel computes it, vocab 30,522 unless given
    if lower.range(of: #"(?<![a-z])bert(?![a-z])"#, options: .regularExpression) != nil,
       let h = try firstCount(#"hidden ([0-9][0-9,]*[0-9]|[0-9])(?!\w|\.\d)"#, in: detail, row: row, what: "hidden", max: 1 << 20),
       let l = try firstCount(#"(\d+) layers"#, in: detail, row: row, what: "layers", max: 1 << 16),
       let n = try firstCount(#"(\d+) heads"#, in: detail, row: row, what: "heads", max: 1 << 16) {
        guard let s = seq else { return ModelReading(unsupported: "a BERT without a sequence length ('seq N') in model_detail") }
        let v = try firstCount(#"vocab(?:ulary)? ([0-9][0-9,]*[0-9])(?!\w|\.\d)"#, in: detail, row: row, what: "vocab", max: 1 << 24) ?? 30522
        notes.append("bert: \(l) layers, hidden \(formatCount(Double(h))), \(n) heads, vocab \(formatCount(Double(v))), seq \(s) (model_detail), the MLM head over every token")
        return ModelReading(spec: "bert:layers=\(l),hidden=\(h),heads=\(n),seq=\(s),vocab=\(v)",
                            shape: TransformerShape(layers: l, hidden: h, heads: n, sequence: s, vocabulary: v))
    }
    // Decoder-only language models by other names: read as a GPT from model_detail's sizes, or from their published
    // configurations by name (`namedDecoders`).
    let decoder = lower.contains("gpt") || lower.range(of: #"\b(mpt|opt|bloom|falcon|pythia|neox|decoder)\b"#, options: .regularExpression) != nil
    if decoder {
        let hidden = try firstCount(#"hidden ([0-9][0-9,]*[0-9]|[0-9])(?!\w|\.\d)"#, in: detail, row: row, what: "hidden", max: 1 << 20)
        let layers = try firstCount(#"(\d+) layers"#, in: detail, row: row, what: "layers", max: 1 << 16)
        let heads = try firstCount(#"(\d+) heads"#, in: detail, row: row, what: "heads", max: 1 << 16)
        let vocab = try firstCount(#"vocab ([0-9][0-9,]*[0-9]|[0-9])(?!\w|\.\d)"#, in: detail, row: row, what: "vocab", max: 1 << 24)
        if !lower.contains("gpt") {
            if hidden == nil, layers == nil,
               let (key, d) = namedDecoders.first(where: { lower.range(of: $0.key, options: .regularExpression) != nil }) {
                let shape = TransformerShape.gpt(layers: d.layers, hidden: d.hidden, heads: d.heads, sequence: seq ?? d.sequence,
                                                 vocabulary: d.vocabulary)
                notes.append("\(name) read by name (\(key)): \(d.layers) layers, hidden \(formatCount(Double(d.hidden))), \(d.heads) heads, seq \(shape.sequence), vocab \(formatCount(Double(d.vocabulary))) (\(d.source)), as a GPT decoder")
                return ModelReading(spec: gptSpec(shape), shape: shape)
            }
            notes.append("\(name): a decoder-only language model, read as a GPT of model_detail's sizes")
        }
        if lower.contains("gpt-3 175b") {
            let g = TransformerShape.gpt3_175B
            let agrees = (hidden ?? g.hidden) == g.hidden && (layers ?? g.layers) == g.layers
                && (heads ?? g.heads) == g.heads && (seq ?? g.sequence) == g.sequence
            if agrees {
                var shape = g
                if let v = vocab { shape.vocabulary = v }
                notes.append("gpt-175b: GPT-3 175B (Brown et al. 2020): 96 layers, hidden 12,288, 96 heads, seq 2,048, vocab \(formatCount(Double(shape.vocabulary)))")
                return ModelReading(spec: shape == g ? "gpt-175b" : gptSpec(shape), shape: shape)
            }
            notes.append("model_detail's sizes differ from GPT-3 175B's: read as a generic GPT")
        }
        // GPT-3's sizes by number, or by the names Table 2.1 of Brown et al. 2020 gives the four smallest
        let gpt3Names = ["small": "125m", "medium": "350m", "large": "760m", "xl": "1.3b"]
        if hidden == nil, layers == nil, let c = groups(#"gpt[ _-]?3[ _-]+\(?(125m|350m|355m|760m|1\.3b|2\.7b|6\.7b|13b|small|medium|large|xl)\b"#, lower),
           let g = gpt3Sizes[gpt3Names[c[0]] ?? (c[0] == "355m" ? "350m" : c[0])] {
            var shape = TransformerShape.gpt(layers: g.layers, hidden: g.hidden, heads: heads ?? g.heads, sequence: seq ?? 2048,
                                             vocabulary: vocab ?? 50257)
            shape.kvHeads = shape.heads
            notes.append("GPT-3 \(c[0].uppercased()): \(g.layers) layers, hidden \(formatCount(Double(g.hidden))), \(shape.heads) heads (Brown et al. 2020, Table 2.1), seq \(shape.sequence), vocab \(formatCount(Double(shape.vocabulary)))")
            return ModelReading(spec: gptSpec(shape), shape: shape)
        }
        // GPT-2's sizes by name (Radford et al. 2019, Table 2: layers and width; heads from OpenAI's released hparams:
        // 12, 16, 20, 25): vocab 50,257, context 1,024
        // (and by their parameter counts as OpenAI and llm.c write them: 124M/117M, 350M/345M, 774M/762M, 1558M/1.5B)
        let gpt2Sizes = ["small": (12, 768, 12), "medium": (24, 1024, 16), "large": (36, 1280, 20), "xl": (48, 1600, 25)]
        let gpt2Counts = ["124m": "small", "117m": "small", "350m": "medium", "345m": "medium", "355m": "medium",
                          "774m": "large", "762m": "large", "1558m": "xl", "1.5b": "xl"]
        if hidden == nil, layers == nil, let c = groups(#"gpt[ _-]?2[ _-]+\(?(small|medium|large|xl|124m|117m|350m|345m|355m|774m|762m|1558m|1\.5b)(?![\w.])"#, lower),
           let (l, h, n) = gpt2Sizes[gpt2Counts[c[0]] ?? c[0]] {
            let shape = TransformerShape.gpt(layers: l, hidden: h, heads: heads ?? n, sequence: seq ?? 1024, vocabulary: vocab ?? 50257)
            notes.append("GPT-2 \(c[0]): \(l) layers, hidden \(formatCount(Double(h))), \(shape.heads) heads (Radford et al. 2019, Table 2; heads from OpenAI's released hparams), seq \(shape.sequence), vocab \(formatCount(Double(shape.vocabulary)))")
            return ModelReading(spec: gptSpec(shape), shape: shape)
        }
        guard let h = hidden, let l = layers else {
            return ModelReading(unsupported: "GPT without 'hidden N' and 'N layers' in model_detail (nor a size the zoo knows by name: GPT-3 125M … 13B or Small … XL, 175B; GPT-2 Small … XL)")
        }
        guard let s = seq else {
            return ModelReading(unsupported: "GPT without a sequence length ('seq N') in model_detail")
        }
        var shape = TransformerShape.gpt(layers: l, hidden: h, heads: heads ?? max(1, h / 128), sequence: s,
                                         vocabulary: vocab ?? 51200)
        if heads == nil {
            notes.append("heads not stated: hidden ÷ 128 = \(shape.heads) (ASSUMPTION: head size 128; heads do not change the FLOP counts)")
        }
        if vocab == nil {
            notes.append("vocabulary not stated: 51,200, the Megatron-LM README's (@2e90a342) for its GPT runs (ASSUMPTION)")
            shape.vocabulary = 51200
        }
        return ModelReading(spec: gptSpec(shape), shape: shape)
    }
    if lower.contains("mask r-cnn") || lower.contains("maskrcnn") {
        return ModelReading(unsupported: "no Mask R-CNN in the model zoo (detection heads, RoI align, variable image sizes)")
    }
    return ModelReading(unsupported: "no zoo model for '\(name)'")
}

/// Decoder-only models that rows name without their sizes, matched on the lower-cased model name: their published
/// configurations. Read as GPT decoders (learned positions, GELU MLP of 4 × hidden); their own position encodings
/// (ALiBi) and biases change the step by well under 1 %.
private let namedDecoders: [(key: String, value: (layers: Int, hidden: Int, heads: Int, sequence: Int, vocabulary: Int, source: String))] = {
    let mpt = "llm-foundry scripts/train/yamls/pretrain/mpt-*.yaml @5e85bd62: d_model, n_heads, n_layers, max_seq_len 2048, vocab 50368"
    return [
        (#"\bbloom[ _-]?176b\b"#, (70, 14336, 112, 2048, 250880, "BigScience tr11-176B-ml README and config: 70 layers, hidden 14336, 112 heads, seq 2048, vocab 250,880 padded")),
        (#"\bopt[ _-]?175b\b"#, (96, 12288, 96, 2048, 50272, "Zhang et al. 2022, arXiv 2205.01068 Table 1: 96 layers, 96 heads, hidden 12,288; seq 2048; vocab 50,272")),
        (#"\bmpt[ _-]?125m\b"#, (12, 768, 12, 2048, 50368, mpt)),
        (#"\bmpt[ _-]?1b\b"#, (24, 2048, 16, 2048, 50368, mpt)),
        (#"\bmpt[ _-]?3b\b"#, (32, 2560, 20, 2048, 50368, mpt)),
        (#"\bmpt[ _-]?7b\b"#, (32, 4096, 32, 2048, 50368, mpt)),
        (#"\bmpt[ _-]?13b\b"#, (40, 5120, 40, 2048, 50368, mpt)),
        (#"\bmpt[ _-]?30b\b"#, (48, 7168, 56, 2048, 50368, mpt)),
        (#"\bmpt[ _-]?70b\b"#, (80, 8192, 64, 2048, 50368, mpt)),
    ]
}()

/// GPT-3's sizes (Brown et al. 2020, Table 2.1; 1.3B with 16 heads of 128, as the zoo's gpt-1.3b).
private let gpt3Sizes: [String: (layers: Int, hidden: Int, heads: Int)] = [
    "125m": (12, 768, 12), "350m": (24, 1024, 16), "760m": (24, 1536, 16), "1.3b": (24, 2048, 16),
    "2.7b": (32, 2560, 32), "6.7b": (32, 4096, 32), "13b": (40, 5120, 40),
]

/// The Llama models by version and size: Meta's released `config.json` (Hugging Face meta-llama/*): layers, hidden,
/// heads, key/value heads, SwiGLU width, vocabulary, context.
private func llamaShape(version: String, billions: String) -> (TransformerShape, String)? {
    let t: (Int, Int, Int, Int, Int, Int, Int)?   // layers, hidden, heads, kv heads, ffn, vocab, context
    switch (version, billions) {
    case ("2", "7"): t = (32, 4096, 32, 32, 11008, 32000, 4096)
    case ("2", "13"): t = (40, 5120, 40, 40, 13824, 32000, 4096)
    case ("2", "70"): t = (80, 8192, 64, 8, 28672, 32000, 4096)
    case ("3", "8"), ("3.1", "8"): t = (32, 4096, 32, 8, 14336, 128256, 8192)
    case ("3", "70"), ("3.1", "70"), ("3.3", "70"): t = (80, 8192, 64, 8, 28672, 128256, 8192)
    case ("3", "405"), ("3.1", "405"): t = (126, 16384, 128, 8, 53248, 128256, 8192)   // "Llama 3 405B" in Dubey et al. 2024
    // Llama 3.2's small models (Meta's released config.json): the output layer tied to the embeddings; context 8,192
    // (ASSUMPTION: their pretraining length before the long-context stage; rows give their own)
    case ("3.2", "1"): t = (16, 2048, 32, 8, 8192, 128256, 8192)
    case ("3.2", "3"): t = (28, 3072, 24, 8, 8192, 128256, 8192)
    default: t = nil
    }
    guard let (l, h, n, g, f, v, s) = t else { return nil }
    return (TransformerShape(layers: l, hidden: h, heads: n, kvHeads: g, ffnHidden: f, gatedMLP: true, sequence: s,
                             vocabulary: v, tiedEmbeddings: version == "3.2", learnedPositions: false), "Llama \(version) \(billions)B")
}

private func llamaSpec(_ t: TransformerShape) -> String {
    "llama:layers=\(t.layers),hidden=\(t.hidden),heads=\(t.heads),kv-heads=\(t.kvHeads),ffn=\(t.ffnHidden),seq=\(t.sequence),vocab=\(t.vocabulary)"
}

private func gptSpec(_ t: TransformerShape) -> String {
    "gpt:layers=\(t.layers),hidden=\(t.hidden),heads=\(t.heads),seq=\(t.sequence),vocab=\(t.vocabulary)"
}

/// Where a GPT row leaves the heads out and another row of the same file gives them for the same shape (hidden
/// and layers), take them from that row: Megatron-LM's 529.6B model (hidden 20,480, 105 layers) has 128 heads,
/// not hidden ÷ 128 = 160.
func borrowHeads(_ cases: inout [ValidationCase]) {
    let assumed = "heads not stated: hidden ÷ 128"
    for i in cases.indices {
        guard let t = cases[i].transformer, let k = cases[i].notes.firstIndex(where: { $0.hasPrefix(assumed) }) else { continue }
        let donor = cases.first { d in
            guard let u = d.transformer, d.id != cases[i].id else { return false }
            return u.hidden == t.hidden && u.layers == t.layers && !d.notes.contains { $0.hasPrefix(assumed) }
                && d.transformer?.heads != nil && d.modelSpec != nil
        }
        guard let donor, let heads = donor.transformer?.heads, heads != t.heads else { continue }
        var shape = t
        shape.heads = heads
        shape.kvHeads = heads
        cases[i].transformer = shape
        cases[i].modelSpec = gptSpec(shape)
        cases[i].notes[k] = "heads not stated: \(heads), as row \(donor.id) (line \(donor.line)) gives for the same hidden and layers (hidden ÷ 128 would be \(t.heads))"
    }
}

private func readPrecision(_ row: Row, preset: String, notes: inout [String]) throws -> Precision {
    let text = try row.nonEmpty("precision")
    let p = text.lowercased()
    if p.contains("fp8") || p.contains("float8") || p.contains("e4m3") || p.contains("e5m2") {
        if p.contains("hybrid") { notes.append("FP8 hybrid: E4M3 forward, E5M2 gradients (Transformer Engine); fp8") }
        return .fp8
    }
    if p.contains("bf16") || p.contains("bfloat16") { return .bf16 }
    if p.contains("fp16") || p.contains("float16") || p.contains("amp") || p.contains("half") { return .fp16 }
    if p.contains("tf32") { return .tf32 }
    if p.contains("fp32") || p.contains("float32") { return .fp32 }
    if p.contains("not stated") {
        let guess: Precision = preset == "dgx-v100" ? .fp16 : .bf16
        notes.append("precision not stated: \(guess.rawValue) (ASSUMPTION: the usual mixed precision on this GPU; the README's MFU implies a 16-bit peak)")
        return guess
    }
    if p.contains("mixed") {
        notes.append("precision '\(text)': the format is not stated; fp16 (ASSUMPTION: Transformer Engine may also run some GEMMs in FP8)")
        return .fp16
    }
    throw row.skip("precision", "unknown precision '\(text)' (expected FP32, TF32, FP16/AMP, BF16, FP8/Float8, Mixed or 'not stated')")
}

private func readPlan(_ row: Row, gpus: Int, globalBatch: Int, detail: String,
              assumptions: inout [String: String], notes: inout [String]) throws -> (PlanSpec, Int?, Int) {
    var plan = PlanSpec()
    var modelParallel: Int?
    var contextParallel = 1, fullySharded = 1
    // PyTorch FSDP's sharding strategy, where model_detail names it (the parallelism column may name it too)
    var fsdpStrategy = groups(#"\b(FULL_SHARD|SHARD_GRAD_OP|_HYBRID_SHARD_ZERO2|HYBRID_SHARD|NO_SHARD)\b"#, detail)?.first?.uppercased() ?? "FULL_SHARD"
    let text = row["parallelism"]
    // A degree of parallelism is at most the GPUs; a micro-batch or an accumulation count at most the batch.
    func count(_ text: String, _ what: String) throws -> Int {
        let samples = what.contains("micro") || what.contains("accumulation") || what == "mb"
        let bound = samples ? globalBatch : what == "VP" || what == "vp" ? Limits.virtualStages : gpus
        guard let n = Int(text), n >= 1, n <= bound else {
            throw row.fail("parallelism", "\(what)=\(text) is not a count in 1…\(bound) (\(samples ? "global_batch" : bound == gpus ? "gpus" : "chunks a stage may have"))")
        }
        return n
    }
    func set(_ field: WritableKeyPath<PlanSpec, Int?>, _ text: String, _ what: String) throws {
        try set(field, try count(text, what), what)
    }
    func set(_ field: WritableKeyPath<PlanSpec, Int?>, _ value: Int, _ what: String) throws {
        if let old = plan[keyPath: field], old != value {
            throw row.fail("parallelism", "\(what) given twice (\(old) and \(value))")
        }
        plan[keyPath: field] = value
    }
    // Other ways sources write degrees: "DP: 4    TP: 1    PP: 2" (nanotron), "TP 4; PP 1; DP 8" (NeMo), MaxText's
    // "dcn_data_parallelism=4 ici_fsdp_parallelism=8": as "DP=4; TP=1; PP=2", one part each.
    var normalised = text.replacingOccurrences(of: #"\b(DP|TP|PP|CP|EP|VP)(?:\s*:\s*|\s+)(\d+)\b"#, with: "$1=$2", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(\b(?:DP|TP|PP|CP|EP|VP)=\d+)[\s,]+(?=(?:DP|TP|PP|CP|EP|VP)=)"#, with: "$1; ", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"\s+(?=(?:dcn|ici)_[a-z]+_parallelism=)"#, with: "; ", options: .regularExpression)
    // ZeRO with its group, as Colossal-AI and InternEvo write it: "zero2(dp8)", "zero1(dp2)+tp2+pp4", "tp=1, zero1=8"
    // (InternEvo's zero1=N shards the optimizer over N data-parallel ranks; -1 over all of them)
    normalised = normalised.replacingOccurrences(of: #"(?i)\bzero[-_ ]?([0-3])\s*\(\s*dp\s*(\d+)\s*\)"#, with: "ZeRO-$1; DP=$2", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(?i)\bzero[-_ ]?([0-3])\s*=\s*(-1|\d+)"#, with: "ZeRO-$1 over $2", options: .regularExpression)
    // Megatron-DeepSpeed's script variables and flags ("mp_size=2; pp_size=2; zero_stage=1", "TP size=32",
    // --tensor-model-parallel-size 8) and DeepSpeed's "ZeRO stage-1": as TP=, PP= and ZeRO-N
    normalised = normalised.replacingOccurrences(of: #"(?i)\b(tp|pp|dp|cp)[ _-]?size\s*[=:]?\s*(\d+)"#, with: "$1=$2", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(?i)(?:\bmp_size|--tensor-model-parallel-size)[ =]+(\d+)"#, with: "TP=$1", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(?i)(?:\bpp_size|--pipeline-model-parallel-size)[ =]+(\d+)"#, with: "PP=$1", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(?i)\bzero_stage[ =]+([0-3])\b"#, with: "ZeRO-$1", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(?i)\bZeRO[ -]stage[ -]([0-3])\b"#, with: "ZeRO-$1", options: .regularExpression)
    // an MPI launcher's total processes (llm.c: "mpirun -np 8"), and llm.c's own ZeRO flag (-z N, train_gpt2.cu's
    // zero_stage)
    if isLLMc(row) {
        normalised = normalised.replacingOccurrences(of: #"(?:^|(?<=[\s,;]))-z\s*([0-3])\b"#, with: "; ZeRO-$1", options: .regularExpression)
    }
    normalised = normalised.replacingOccurrences(of: #"(?i)\b(?:mpirun|mpiexec)\s+(?:-np|-n)\s+(\d+)\b[^;]*"#, with: "MPI processes=$1", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(?i)\s*,\s*(?=(?:without|no) (?:model|tensor|pipeline) parallel)"#, with: "; ", options: .regularExpression)
    normalised = normalised.replacingOccurrences(of: #"(?i)\s*[+,]\s*(?=ZeRO-|(?:tp|pp|dp|cp)\s*=?\s*\d)"#, with: "; ", options: .regularExpression)
    /// ZeRO stage N ("0"…"3"): 1 and 2 shard the optimizer state, 3 the weights too.
    func setZeRO(stage: String) {
        plan.shardOptimizer = stage != "0"
        if stage == "3" { plan.shardParameters = true }
    }
    var launched: Int?            // processes a node from a launcher (--nproc_per_node N, trainer.devices=N, N GPUs)
    var dataParallelOnly = false  // "no tensor/pipeline parallelism", a launcher of plain data parallelism
    var unread: [String] = []
    var maxText: [String: Int] = [:]
    for raw in normalised.split(separator: ";") {
        var part = raw.trimmingCharacters(in: .whitespaces)
        if part.isEmpty { continue }
        if let c = groups(#"^(?i)(tp|pp|dp|cp|vp|ep)\s*=?\s*(\d+)$"#, part) { part = "\(c[0].uppercased())=\(c[1])" }   // tp2, dp=8
        if let c = groups(#"^DP=(\d+)( \(derived\))?$"#, part) {
            try set(\.dataParallel, c[0], "DP")
            if !c[1].isEmpty { notes.append("DP = GPUs ÷ (TP × PP), derived in the data (not published)") }
        } else if let c = groups(#"^TP=(\d+)$"#, part) {
            try set(\.tensorParallel, c[0], "TP")
        } else if let c = groups(#"^PP=(\d+)(?: \((interleaved)(?: x(\d+))?([^)]*)\))?$"#, part) {
            try set(\.pipelineParallel, c[0], "PP")
            if !c[2].isEmpty {
                try set(\.virtualStages, c[2], "VP")
                notes.append("vp=\(c[2]): interleaved pipeline\(c[3]) (as the row says)")
            } else if !c[1].isEmpty {
                // an interleaved schedule without its count: the fewest chunks a stage has in one
                try set(\.virtualStages, 2, "VP")
                notes.append("vp=2: an interleaved pipeline\(c[3]) whose chunks a stage are not stated (ASSUMPTION: 2, the fewest an interleaved schedule has)")
            }
        } else if let c = groups(#"^VP=(\d+)$"#, part) {
            try set(\.virtualStages, c[0], "VP")
        } else if let c = groups(#"^CP=(\d+)$"#, part) {
            contextParallel = try count(c[0], "CP")
        } else if let c = groups(#"^(?:grad-accum|gradient accumulation) (\d+)$"#, part) {
            try set(\.microBatches, c[0], "gradient accumulation")
        } else if let c = groups(#"^(?:microbatch|micro-batch|MBS)[ =](\d+)$"#, part) {
            try set(\.microBatch, c[0], "micro-batch")
        } else if let c = groups(#"^(?i:FSDP)[ =](\d+)(?:[ ,]+\(?(?i:(FULL_SHARD|SHARD_GRAD_OP|HYBRID_SHARD|_HYBRID_SHARD_ZERO2|NO_SHARD))\)?)?$"#, part) {
            // fully sharded data parallelism over N GPUs: data-parallel replicas with everything sharded (times any
            // DP the row also gives: Pax writes "DP 1, FSDP 256"); PyTorch's sharding strategies by name
            fullySharded = try count(c[0], "FSDP")
            if !c[1].isEmpty { fsdpStrategy = c[1].uppercased() }
        } else if let c = groups(#"^(?i:ZeRO)[- ]?(?:stage )?([0-3])(?: over (-1|\d+))?$"#, part) {
            setZeRO(stage: c[0])
            if !c[1].isEmpty && c[0] != "0" {
                if c[1] == "-1" {
                    notes.append("ZeRO-\(c[0]) over the whole data-parallel group (zero\(c[0])=-1)")
                } else if c[0] == "3" {
                    notes.append("ZeRO-3 over groups of \(c[1]) data-parallel ranks (zero3=\(c[1])): priced as sharded over all of them (ASSUMPTION; the state per GPU is larger where the group is smaller)")
                } else {
                    assumptions["zero_group"] = c[1]
                    notes.append("zero_group=\(c[1]): ZeRO-\(c[0]) over groups of \(c[1]) data-parallel ranks (zero\(c[0])=\(c[1])), each group one copy of the optimizer state")
                }
            }
        } else if part.range(of: #"^(?i:distributed optimizer|DDP|data parallel)$"#, options: .regularExpression) != nil {
            if part.lowercased() == "distributed optimizer" { plan.shardOptimizer = true }
        } else if part.range(of: #"^(?i:SP|SP=1|sequence parallel(ism)?)$"#, options: .regularExpression) != nil {
            plan.sequenceParallel = true
        } else if let c = groups(#"^EP=(\d+)$"#, part) {
            guard c[0] == "1" else {
                throw RowSkip(reason: "expert parallelism EP=\(c[0]) (a mixture of experts) is not modelled; the zoo's models are dense")
            }
        } else if let c = groups(#"^model-parallel \(TPxPP\)=(\d+)$"#, part) {
            modelParallel = try count(c[0], "model-parallel (TPxPP)")
            notes.append("only TP × PP = \(c[0]) is published; the planner splits it")
        } else if let p = try? PlanSpec(parsing: part) {
            // The `--plan` syntax (dp=64,tp=8,…) for user files.
            for (field, name) in [(\PlanSpec.dataParallel, "dp"), (\.tensorParallel, "tp"), (\.pipelineParallel, "pp"),
                                  (\.microBatch, "mb"), (\.microBatches, "micro"), (\.virtualStages, "vp")] {
                if let v = p[keyPath: field] { try set(field, "\(v)", name) }
            }
            plan.recompute = p.recompute ?? plan.recompute
            plan.shardOptimizer = p.shardOptimizer ?? plan.shardOptimizer
            plan.shardParameters = p.shardParameters ?? plan.shardParameters
            plan.sequenceParallel = p.sequenceParallel ?? plan.sequenceParallel
        } else if let c = groups(#"^(dcn|ici)_(data|fsdp|tensor|pipeline|sequence|context|expert)_parallelism=(\d+)$"#, part) {
            // MaxText: the mesh over data-centre links (dcn) times the one within a slice or node (ici)
            maxText[c[1], default: 1] = Limits.product(maxText[c[1], default: 1], try count(c[2], "\(c[0])_\(c[1])_parallelism"))
        } else if let c = groups(#"^(?:.*\s)?(?:--nproc_per_node|nproc_per_node|trainer\.devices|--gpus|--ngpus)[ =](\d+)\b.*$"#, part)
                    ?? groups(#"^(\d+) GPUs?\b.*$"#, part) {
            // a launcher of N processes a node (torch.distributed, Lightning, horovodrun): data parallelism unless
            // the row says otherwise
            launched = try count(c[0], "processes a node")
            if part.range(of: #"(?i)zero ?1|ZeroRedundancyOptimizer"#, options: .regularExpression) != nil { plan.shardOptimizer = true }
        } else if let c = groups(#"^MPI processes=(\d+)$"#, part) {
            // an MPI launcher's processes in all: one a GPU, data parallelism unless the row says otherwise
            guard try count(c[0], "MPI processes") == gpus else {
                throw row.skip("parallelism", "mpirun starts \(c[0]) processes, but the row has \(gpus) GPUs (one process a GPU)")
            }
            dataParallelOnly = true
        } else if part.range(of: #"^(?i:(?:without|no) (?:model|tensor(?: or pipeline)?|pipeline) parallel(?:ism)?)$"#, options: .regularExpression) != nil {
            dataParallelOnly = true
        } else if let c = groups(#"^\d+D parallelism\b.*?\bZeRO-([0-3])\b.*$"#, part) {
            // "3D parallelism (DeepSpeed ZeRO stage 1, Megatron-LM's tensor parallelism, DeepSpeed's pipeline
            // parallelism)": the ZeRO stage; the degrees, if anywhere, in model_detail
            setZeRO(stage: c[0])
            unread.append(part)
        } else if part.range(of: #"^(?i:single GPU|1 GPU)$"#, options: .regularExpression) != nil {
            launched = 1
        } else if part.range(of: #"(?i)^(?:DDP\w*|horovod|KVSTORE=\w+|torch\.distributed|\(?ZeroRedundancyOptimizer\)?|zero[ -]?(?:powered )?data parallel(?:ism)?)\b"#, options: .regularExpression) != nil {
            // data-parallel frameworks by name (PyTorch DDP and its ZeRO-1 optimizer, Horovod, MXNet's kvstore)
            if part.range(of: #"(?i)zero ?1|ZeroRedundancyOptimizer"#, options: .regularExpression) != nil { plan.shardOptimizer = true }
            if part.range(of: #"(?i)no tensor[ /-]*(?:or |and )?pipeline parallel"#, options: .regularExpression) != nil { dataParallelOnly = true }
            else if part.range(of: #"(?i)^(?:DDP|horovod|KVSTORE|torch\.distributed)"#, options: .regularExpression) != nil { dataParallelOnly = true }
        } else if part.range(of: #"\d"#, options: .regularExpression) == nil {
            // words without a degree ("not stated in source", "data parallel across nodes"): the planner chooses
            unread.append(part)
        } else {
            throw row.skip("parallelism", "cannot read '\(part)' (expected DP=, TP=, PP=, VP=, CP=1, grad-accum N, "
                           + "microbatch N, model-parallel (TPxPP)=N, or dp=…,tp=… as in --plan; separated by ';')")
        }
    }

    // Context parallelism (Megatron-Core's CP): each of c GPUs computes 1/c of every sequence's tokens in every
    // layer — its queries against all keys, so 1/c of the attention too — on the same weights, and the gradients are
    // reduced over DP × CP. Per GPU that is the work, memory traffic and gradient reduction of c× data
    // parallelism at the same global batch, which is how it is simulated. ASSUMPTIONS: the ring exchange of keys
    // and values hides behind the attention it feeds (as ring attention overlaps it); micro-batches stay whole
    // sequences, so the simulated pipeline has 1/c the micro-batches of c× the size (a larger bubble, and up to c×
    // the activations in flight: a verdict of "does not fit" can be the model's, not the run's).
    if !maxText.isEmpty {
        let dp = maxText["data", default: 1], fsdp = maxText["fsdp", default: 1]
        try set(\.dataParallel, Limits.product(dp, fsdp), "DP")
        if let t = maxText["tensor"] { try set(\.tensorParallel, t, "TP") }
        if let p = maxText["pipeline"] { try set(\.pipelineParallel, p, "PP") }
        if plan.tensorParallel == nil && plan.pipelineParallel == nil && Limits.product(dp, fsdp) == gpus { plan.tensorParallel = 1; plan.pipelineParallel = 1 }
        contextParallel = Limits.product(maxText["sequence", default: 1], maxText["context", default: 1])
        guard maxText["expert", default: 1] == 1 else {
            throw RowSkip(reason: "expert parallelism (a mixture of experts) is not modelled; the zoo's models are dense")
        }
        if fsdp > 1 { plan.shardParameters = true; plan.shardOptimizer = true }
        notes.append("MaxText mesh \(maxText.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) (dcn × ici): dp=\(Limits.product(dp, fsdp))\(fsdp > 1 ? " with parameters, gradients and optimizer state sharded over the \(fsdp) FSDP ways (zero=3)" : "")")
    }
    if let n = launched {
        if gpus % n != 0 {
            notes.append("\(n) processes a node from the launcher, for \(gpus) GPUs")
        }
        dataParallelOnly = true
    }
    if dataParallelOnly && plan.dataParallel == nil && plan.tensorParallel == nil && plan.pipelineParallel == nil && fullySharded == 1 {
        plan.dataParallel = gpus
        notes.append("dp=\(gpus): a data-parallel launcher or framework (the row: '\(text)'), no tensor or pipeline parallelism")
    }
    if !unread.isEmpty {
        notes.append("parallelism words without a degree ('\(unread.joined(separator: "', '"))'): what they leave open is the planner's choice")
    }
    if fullySharded > 1 {
        plan.dataParallel = Limits.product(plan.dataParallel ?? 1, fullySharded)
        switch fsdpStrategy {
        case "NO_SHARD":
            notes.append("FSDP=\(fullySharded) NO_SHARD: dp=\(plan.dataParallel!), nothing sharded (PyTorch FSDP's NO_SHARD is DDP)")
        case "SHARD_GRAD_OP", "_HYBRID_SHARD_ZERO2":
            plan.shardOptimizer = true
            notes.append("FSDP=\(fullySharded) \(fsdpStrategy): dp=\(plan.dataParallel!) with gradients and optimizer state sharded, parameters kept whole between forward and backward (zero=1: PyTorch FSDP's SHARD_GRAD_OP is ZeRO-2)")
        default:
            plan.shardParameters = true; plan.shardOptimizer = true
            notes.append("FSDP=\(fullySharded)\(fsdpStrategy == "HYBRID_SHARD" ? " HYBRID_SHARD" : ""): dp=\(plan.dataParallel!) with parameters, gradients and optimizer state sharded (zero=3)\(fsdpStrategy == "HYBRID_SHARD" ? "; ASSUMPTION: sharded over all of them, where HYBRID_SHARD shards within a node and replicates across nodes" : "")")
        }
    }
    if contextParallel > 1 {
        if let dp = plan.dataParallel { plan.dataParallel = Limits.product(dp, contextParallel) }
        notes.append("CP=\(contextParallel): each GPU computes 1/\(contextParallel) of every sequence's tokens, its queries against all the sequence's keys, on the same weights (gradients reduced over DP × CP); simulated as \(contextParallel)× the samples, each 1/\(contextParallel) of a sequence, over DP × CP = \(plan.dataParallel.map(String.init) ?? "?") replicas, with attention over \(contextParallel)× their own tokens (ValidationCase.simulationInputs); ASSUMPTION: the ring exchange of keys and values hides behind attention")
    }
    // the plan's arithmetic in the simulated samples (CP parts of sequences)
    let simulatedBatch = Limits.product(globalBatch, contextParallel)

    // What model_detail adds: micro-batch, accumulation, recomputation, sequence parallelism.
    let lower = detail.lowercased()
    if let mb = try firstCount(#"micro-batch (\d+)/GPU"#, in: detail, row: row, what: "micro-batch", max: globalBatch)
        ?? firstCount(#"\bMBS (\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "MBS", max: globalBatch)
        ?? firstCount(#"\bmicro_batch_size[ =:]+(\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "micro_batch_size", max: globalBatch)
        // InternEvo's micro_bsz (sequences packed into one micro-batch) and micro_num (micro-batches a step)
        ?? firstCount(#"(?i)\bmicro[_ ]bsz[ =:]+(\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "micro_bsz", max: globalBatch)
        // Megatron-DeepSpeed's scripts: "batch_size=2 (micro batch size per GPU)", "batch_size=1 (--micro-batch-size)"
        ?? firstCount(#"(?i)\bbatch_size[ =:]+(\d+)\s*\(\s*(?:--)?micro"#, in: detail, row: row, what: "batch_size (micro)", max: globalBatch)
        ?? firstCount(#"(?i)--micro-batch-size[ =]+(\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "--micro-batch-size", max: globalBatch)
        // (Megatron-DeepSpeed's example scripts pass their batch_size as --micro-batch-size, beside global_batch_size)
        ?? (isMegatronDeepSpeed(row) ? firstCount(#"(?:^|[^a-z_])batch_size=(\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "batch_size (--micro-batch-size)", max: globalBatch) : nil)
        // llm.c's -b: the batch a GPU computes at once (train_gpt2.cu), accumulated up to -d tokens
        ?? (isLLMc(row) ? firstCount(#"(?:^|[\s;])-b (\d+)\b"#, in: detail, row: row, what: "llm.c -b", max: globalBatch) : nil) {
        try setFromDetail(&plan, \.microBatch, mb, "micro-batch", row: row)
    }
    // Megatron-DeepSpeed's script variables where the parallelism column gives no degree ("mp_size=4; pp_size=8")
    if plan.tensorParallel == nil, plan.pipelineParallel == nil,
       let t = try firstCount(#"(?i)\bmp_size[ =]+(\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "mp_size", max: gpus) {
        try setFromDetail(&plan, \.tensorParallel, t, "tensor parallel (mp_size)", row: row)
        if let p = try firstCount(#"(?i)\bpp_size[ =]+(\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "pp_size", max: gpus) {
            try setFromDetail(&plan, \.pipelineParallel, p, "pipeline parallel (pp_size)", row: row)
        }
        notes.append("tp=\(t)\(plan.pipelineParallel.map { ", pp=\($0)" } ?? ""): model_detail's mp_size\(plan.pipelineParallel != nil ? " and pp_size" : "") (Megatron-DeepSpeed's script variables)")
    }
    if let n = try firstCount(#"(?i)\bmicro[_ ]num[ =:]+(\d+)(?!\w|\.\d)"#, in: detail, row: row, what: "micro_num", max: globalBatch) {
        try setFromDetail(&plan, \.microBatches, n, "micro-batches", row: row)
    }
    if let acc = try firstCount(#"(\d+) accumulation"#, in: detail, row: row, what: "accumulation", max: globalBatch) {
        try setFromDetail(&plan, \.microBatches, acc, "accumulation steps", row: row)
    }
    if let (recompute, said) = readRecompute(lower) {
        plan.recompute = recompute
        if recompute == .selective, isTorchtitan(row),
           said.contains("layer") || lower.range(of: #"selective_ac_option\s*[:=]?\s*['"]?\d|every \d+(?:st|nd|rd|th)? layers?"#, options: .regularExpression) != nil {
            // torchtitan's layer mode checkpoints every Nth block in full: neither Megatron's selective nor its op policy
            throw row.skip("model_detail", "torchtitan's per-layer selective checkpointing (every Nth block recomputed in full, '\(said)') is not modelled")
        }
        if recompute == .selective, isTorchtitan(row) {
            // torchtitan's "selective" is its per-op policy unless a layer frequency is given
            plan.recompute = .op
            notes.append("recompute=op: model_detail says '\(said)', and torchtitan's selective activation checkpointing is per op (selective_ac_option = 'op' in its train_configs: every second matmul of a block and all but its attention kernel recomputed, parallelize_llama.py)")
        } else {
            notes.append("recompute=\(recompute.rawValue): model_detail says '\(said)'")
        }
    }
    // Fully sharded data parallelism (JAX's and PyTorch's FSDP, DeepSpeed's ZeRO-3): parameters sharded too. NVIDIA's
    // Megatron-Bridge tables give FSDP as a flag ("FSDP = 0: use DDP", "FSDP = 1: use FSDP"): 0 says it is not used
    // anywhere, and 1 in a row of theirs says it is, over the data-parallel replicas.
    // A degree needs a separator ("FSDP 8", "FSDP=8", "FSDP: 8"): "FSDP2" names PyTorch's API, not a degree.
    let degree = #"\bFSDP(?:\s*[=:]\s*|[ -]+)(\d+)(?!\w|\.\d)"#
    let flagged = groups(degree, detail)?.first.flatMap { $0 == "0" || $0 == "1" ? $0 : nil }
    let megatronBridge = isMegatronBridge(row)
    let fsdp = flagged == "0" ? nil
        : flagged == "1" && megatronBridge ? max(2, gpus)
        : try firstCount(degree, in: detail, row: row, what: "FSDP", max: gpus)
    if flagged == "0" { notes.append("FSDP 0: not fully sharded (the row's FSDP column, 0 = DDP)") }
    if flagged == "1" {
        notes.append(megatronBridge
            ? "FSDP 1: Megatron-Bridge's FSDP flag (its performance summary: \"FSDP = 1: use FSDP\"), sharding over the data-parallel replicas"
            : "FSDP 1: read as a degree of 1, nothing sharded (in Megatron-Bridge's tables it is a flag: name that source to read it so)")
    }
    if megatronBridge, let f = fsdp, f > 1, flagged == nil {
        notes.append("FSDP \(f): read as a degree, though Megatron-Bridge's tables give FSDP as a flag (0 or 1)")
    }
    if (fsdp ?? 0) > 1 || lower.contains("zero-3") || lower.contains("zero stage 3") {
        plan.shardParameters = true
        plan.shardOptimizer = true
        notes.append("zero=3: parameters, gradients and optimizer state sharded over the data-parallel replicas (the row: \(flagged == "1" && megatronBridge ? "FSDP 1" : fsdp.map { "FSDP \($0)" } ?? "ZeRO-3"))")
    }
    if lower.contains("no sequence parallel") { plan.sequenceParallel = false }
    else if lower.contains("sequence parallel") { plan.sequenceParallel = true }

    // Arithmetic the row implies.
    // Products of counts up to 2^32 each: saturating, so a wrong row is an error, not an overflow trap.
    let product = Limits.product(plan.tensorParallel ?? 1, plan.pipelineParallel ?? 1)
    if let dp = plan.dataParallel {
        if let mp = modelParallel {
            guard Limits.product(dp, mp) == gpus else {
                throw row.skip("parallelism", "DP × (TP×PP) = \(dp) × \(mp), but gpus = \(gpus)")
            }
        } else if plan.tensorParallel != nil && plan.pipelineParallel != nil {
            // DP × TP × PP = GPUs: checked with the rest of the plan's arithmetic (below)
        } else if plan.tensorParallel == nil && plan.pipelineParallel == nil {
            if dp == gpus {
                plan.tensorParallel = 1; plan.pipelineParallel = 1
            } else if gpus % dp == 0 {
                modelParallel = gpus / dp
                notes.append("TP × PP = GPUs ÷ DP = \(gpus / dp), split by the planner")
            } else {
                throw row.skip("parallelism", "DP=\(dp) does not divide gpus = \(gpus)")
            }
        } else {
            // One of TP, PP given: the other follows.
            guard Limits.product(dp, product) <= gpus, gpus % (dp * product) == 0 else {
                throw row.skip("parallelism", "DP × \(plan.tensorParallel != nil ? "TP" : "PP") = \(dp) × \(product) does not divide gpus = \(gpus)")
            }
            if plan.tensorParallel == nil { plan.tensorParallel = gpus / (dp * product) }
            else { plan.pipelineParallel = gpus / (dp * product) }
        }
    } else if plan.tensorParallel != nil && plan.pipelineParallel != nil {
        guard gpus % product == 0 else {
            throw row.skip("parallelism", "TP × PP = \(product) does not divide gpus = \(gpus)")
        }
        plan.dataParallel = gpus / product
        notes.append("dp = GPUs ÷ (TP × PP) = \(gpus / product) (derived)")
    }
    try deriveMicroBatches(&plan, row: row, globalBatch: simulatedBatch, notes: &notes)
    do { try checkPlan(plan, globalBatch: simulatedBatch, gpus: gpus) } catch let skip as RowSkip where contextParallel > 1 {
        throw RowSkip(reason: skip.reason + " (with CP=\(contextParallel) the global batch of \(globalBatch) sequences is counted as \(simulatedBatch) parts of 1/\(contextParallel) of a sequence, over DP × CP replicas)")
    }
    return (plan, modelParallel, contextParallel)
}

/// Activation recomputation as sources word it (Megatron's "full/selective recompute" and `recompute_granularity`,
/// PyTorch's and llm-foundry's "activation checkpointing True/False", torchtitan's "full/selective (op) activation
/// checkpointing"), and the words that said it; nil when model_detail does not say, or says it does not know ("activation
/// checkpointing not stated", "recompute unknown"; read clause by clause, so one clause's "unknown" leaves another
/// clause's "selective recompute" standing). A bare "activation checkpointing" is full recomputation, what
/// Megatron's `--checkpoint-activations` and llm-foundry's `activation_checkpointing: true` do.
@_spi(Testing) public func readRecompute(_ lower: String) -> (PlanSpec.Recompute, String)? {
    // (InternEvo writes "checkpoint=False" and its tables "Activation Ckpt TRUE")
    // (and Hugging Face's and Colossal-AI's "gradient checkpointing", `grad_checkpoint`)
    let checkpointing = #"(?:activation[ _-]?(?:checkpointing|check-pointing|recomputation|recompute|ckpt)|\bgrad(?:ient)?[ _-]?checkpoint(?:ing)?\b|\bac\b|\bcheckpoint(?=\s*=))"#
    let recomputing = #"(?:"# + checkpointing + #"|\brecomput(?:ation|e))"#
    // the words name it only to say they do not know: nothing is said
    let unknown = recomputing + #"(?:[ _-]?granularity)?\s*(?:[:=]\s*|is |was |were )?(?:not (?:stated|given|reported|specified|published|known)|unknown|unspecified|unstated|n/a|\?)"#
    // clause by clause (model_detail's facts are separated by semicolons): a clause that names recomputation only to
    // say it is not known says nothing, and another clause may still say what was used
    let clauses = lower.split(separator: ";").map(String.init).filter { $0.range(of: unknown, options: .regularExpression) == nil }
    let patterns: [(String, PlanSpec.Recompute)] = [
        // Megatron-LM's flags: --checkpoint-activations (2020-22: every layer checkpointed), --recompute-activations
        // (from 2022: "sets recompute_granularity to selective", megatron/arguments.py)
        (#"--checkpoint-activations\b"#, .full),
        (#"--recompute-activations\b"#, .selective),
        (#"\b(?:no|without) "# + recomputing, .none),
        (checkpointing + #"\s*(?:[:=]\s*|is |was )?(?:false|no|none|off|disabled|not used|unused)\b"#, .none),
        (#"\brecompute[ _-]?granularity\s*[:=]?\s*(?:none|null|off)\b"#, .none),
        (#"\brecompute[ _-]?granularity\s*[:=]?\s*selective\b"#, .selective),
        (#"\brecompute[ _-]?granularity\s*[:=]?\s*full\b"#, .full),
        (#"\bselective \(?op\)? (?:activation |recompute\b|"# + checkpointing + ")", .op),
        (checkpointing + #"\s*(?:[:=]\s*|mode\s*[:=]?\s*|is |was )['"]?selective['"]?\s*[,(]?\s*(?:selective_ac_option\s*[:=]?\s*)?['"]?op\b"#, .op),
        (checkpointing + #"\s*(?:[:=]\s*|mode\s*[:=]?\s*|is |was )['"]?selective\b"#, .selective),
        (checkpointing + #"\s*(?:[:=]\s*|mode\s*[:=]?\s*|is |was )['"]?full\b"#, .full),
        (#"\bselective(?: layer)? (?:activation |recompute\b|"# + checkpointing + ")", .selective),
        (#"\bselective recompute\b"#, .selective),
        (#"\bfull (?:activation recompute|recompute|"# + checkpointing + ")", .full),
        (checkpointing + #"\s*[:=]?\s*(?:true|yes|on|enabled)\b"#, .full),
        (#"activation[ _-]?(?:checkpointing|check-pointing|recomputation)"#, .full),
        (#"\bgrad(?:ient)?[ _-]?checkpoint(?:ing)?\b"#, .full),
    ]
    for (pattern, recompute) in patterns {
        for clause in clauses {
            if let r = clause.range(of: pattern, options: .regularExpression) { return (recompute, String(clause[r])) }
        }
    }
    return nil
}

/// The plan's arithmetic, checked where the CLI checks `--plan` (`PlanSpec.checkArithmetic`): a row whose plan does
/// not add up is skipped with the reason.
private func checkPlan(_ plan: PlanSpec, globalBatch: Int, gpus: Int) throws {
    do { try plan.checkArithmetic(globalBatch: globalBatch, devices: gpus) } catch let PlanError.inconsistent(m) {
        throw RowSkip(reason: "parallelism: \(m)")
    }
}

private func setFromDetail(_ plan: inout PlanSpec, _ field: WritableKeyPath<PlanSpec, Int?>, _ value: Int, _ what: String,
                   row: Row) throws {
    if let old = plan[keyPath: field], old != value {
        throw row.skip("model_detail", "\(what) \(value) disagrees with the parallelism column's \(old)")
    }
    plan[keyPath: field] = value
}

/// micro-batch × micro-batches × DP = global batch: fills the one that is missing where it divides (`checkPlan`
/// then says what does not add up).
private func deriveMicroBatches(_ plan: inout PlanSpec, row: Row, globalBatch: Int, notes: inout [String]) throws {
    guard let dp = plan.dataParallel, globalBatch % dp == 0 else { return }
    let perReplica = globalBatch / dp
    switch (plan.microBatch, plan.microBatches) {
    case let (mb?, nil) where perReplica % mb == 0:
        plan.microBatches = perReplica / mb
        notes.append("micro = global batch ÷ (DP × micro-batch) = \(perReplica / mb) (derived)")
    case let (nil, n?) where perReplica % n == 0:
        plan.microBatch = perReplica / n
        notes.append("mb = global batch ÷ (DP × accumulation) = \(perReplica / n) (derived)")
    default:
        break
    }
}

private func readMetric(_ row: Row, unit: String, model: ModelReading, modelName: String, detail: String, gpus: Int,
                preset: String, measured: Double, notes: inout [String]) throws -> ValidationMetric {
    let metric = try row.nonEmpty("metric")
    let m = metric.lowercased()
    let (u, unitNote) = canonicalUnit(unit, metric: metric)
    if let unitNote { notes.append(unitNote) }
    if u == "mfu" || u == "%" || u == "hfu" {
        throw RowSkip(reason: "a utilisation ('\(unit)': a share of a peak) is not turned into a throughput: the peak and the FLOP count the source divided by are not stated; give the TFLOP/s/GPU or tokens/s it came from")
    }
    // Free text, but it must say what was measured (a metric named 'vibes' was scored as throughput).
    // ("TGS": tokens per GPU per second, InternEvo's and InternLM's name for it)
    let words = ["throughput", "time", "tflop", "teraflop", "step", "iteration", "mfu", "samples", "images", "sequences",
                 "sentences", "tokens", "speed", "tgs"]
    guard words.contains(where: { m.contains($0) }) else {
        throw row.skip("metric", "'\(metric)' does not say what was measured (expected words such as training throughput, time per iteration, time-to-train, achieved TFLOP/s)")
    }
    if m.contains("time-to-train") || m.contains("time to train") {
        let perUnit: Double
        switch u {
        case "s", "sec", "seconds": perUnit = 1
        case "min", "minutes": perUnit = 60
        case "h", "hours": perUnit = 3600
        default: throw RowSkip(reason: "a time-to-train needs a time unit (seconds, minutes, hours), got '\(unit)'")
        }
        let work: TrainingWork
        if let tokens = firstNumber(#"([0-9][0-9,]*) tokens"#, in: detail) {
            guard let s = model.shape?.sequence else {
                if let why = model.unsupported { throw RowSkip(reason: why) }
                throw RowSkip(reason: "a time-to-train in tokens needs a language model with a sequence length")
            }
            work = TrainingWork(samples: tokens / Double(s), basis: "\(formatCount(tokens)) tokens ÷ \(s) per sequence (model_detail)")
        } else if let c = groups(#"(\d+) epochs x ([0-9][0-9,]*) images"#, detail),
                  let e = Double(c[0]), let n = Double(c[1].replacingOccurrences(of: ",", with: "")) {
            work = TrainingWork(samples: e * n, basis: "\(c[0]) epochs × \(c[1]) images (model_detail)")
        } else {
            throw RowSkip(reason: "a time-to-train without the work trained: model_detail needs 'N tokens' or 'E epochs x N images' to turn a throughput into a time")
        }
        guard work.samples.isFinite, work.samples >= 1, work.samples <= 1e18 else {
            throw row.fail("model_detail", "the work trained (\(work.basis)) is not 1…10^18 samples")
        }
        notes.append("time-to-train: \(work.basis) at the predicted throughput; evaluation pauses and start-up are not modelled, and the official score averages several runs whose work varies")
        return .timeToTrain(work, secondsPerUnit: perUnit)
    }
    // The words of the metric must fit its unit (a row worded as throughput but in TFLOP/s/GPU was scored as FLOPs).
    // (Megatron-DeepSpeed's READMEs call TFLOP/s a GPU "throughput": the word fits a FLOP rate too)
    let flopWords = ["tflop", "teraflop", "mfu", "hfu", "flop", "throughput"], tokenWords = ["throughput", "tokens", "speed", "tgs"]
    let samplesWords = ["throughput", "samples", "images", "sequences", "sentences", "speed"], stepWords = ["time", "step", "iteration"]
    let expected = tflopUnits.contains(u) || tflopPerGPUUnits.contains(u) ? flopWords
        : tokenUnits.contains(u) || tokenPerGPUUnits.contains(u) ? tokenWords
        : samplesUnits.contains(u) || samplesPerGPUUnits.contains(u) ? samplesWords
        : secondsUnits.contains(u) || millisecondsUnits.contains(u) ? stepWords : []
    if !expected.isEmpty && !expected.contains(where: { m.contains($0) }) {
        throw row.skip("metric", "'\(metric)' does not say it measures what the unit '\(unit)' is (expected a word such as \(expected.joined(separator: ", ")))")
    }
    if samplesUnits.contains(u) { return .samplesPerSecond }
    if samplesPerGPUUnits.contains(u) { return .samplesPerSecondPerGPU }
    if tokenPerGPUUnits.contains(u) || tokenUnits.contains(u) {
        guard model.shape != nil || model.unsupported != nil else {
            throw RowSkip(reason: "tokens/s needs a language model with a sequence length (GPT, BERT, Llama)")
        }
        return tokenUnits.contains(u) ? .tokensPerSecond : .tokensPerSecondPerGPU
    }
    if tflopUnits.contains(u) || tflopPerGPUUnits.contains(u) {
        // A whole system's TFLOP/s below 1 a GPU is no training run's (a V100's FP32 peak is 15.7): the figure is
        // per GPU (Megatron-DeepSpeed's logs print "TFLOPs" per GPU), and scoring it as the system's total would be off
        // by the GPU count.
        // As the system's total, under 2 % of a GPU's 16-bit peak a GPU (no training run is that slow), but within
        // one GPU's peak: read per GPU, as such tables mean it ("Training Model TFLOPS"), saying so.
        var perGPUByValue = false
        let peak = halfPeakTFLOPs(ofPreset: preset)
        // Megatron-DeepSpeed prints and publishes TFLOPs a GPU (megatron/utils.py throughput_calculator: the step's
        // FLOPs ÷ (time × world_size)), counted with the recomputed forward when activations are checkpointed
        let megatronDeepSpeed = isMegatronDeepSpeed(row)
        if megatronDeepSpeed && tflopUnits.contains(u) {
            perGPUByValue = true
            notes.append("\(row["value"]) \(unit) read per GPU: Megatron-DeepSpeed's TFLOPs are a GPU's (throughput_calculator divides by world_size)")
        }
        if !perGPUByValue, tflopUnits.contains(u), gpus > 1, peak > 0, measured / Double(gpus) < 0.02 * peak {
            guard measured <= peak else {
                throw RowSkip(reason: "\(row["value"]) \(unit) over \(gpus) GPUs is \(String(format: "%.2g", measured / Double(gpus))) a GPU, below any training run's, and above any one GPU's peak: write the unit as TFLOP/s/GPU if the figure is per GPU")
            }
            perGPUByValue = true
            notes.append("\(row["value"]) \(unit) read per GPU: as the \(gpus) GPUs' total it would be \(String(format: "%.2g", measured / Double(gpus))) TFLOP/s a GPU, under 2 % of the GPU's \(formatCount(peak)) TFLOP/s 16-bit peak, slower than any training run; as one GPU's it is within that peak")
        }
        let lowerName = modelName.lowercased()
        let convention: FlopConvention
        if megatronDeepSpeed {
            let full = readRecompute(detail.lowercased())?.0 == .full
            convention = full ? .megatronRecompute : .megatronModel
            notes.append("TFLOP/s counted as Megatron-DeepSpeed's throughput_calculator does (megatron/utils.py; Narayanan et al.'s formula)\(full ? ", with the recomputed forward (activations checkpointed)" : ", no recompute"): \(convention.formula)")
        } else if m.contains("hardware") || m.contains("hfu") || lowerName.contains("megatron-lm") {
            convention = .megatronRecompute
            notes.append("TFLOP/s counted with recomputation (hardware FLOPs, arXiv 2104.04473 appendix): \(convention.formula)")
        } else if row["source"].contains("github.com/NVIDIA/Megatron-LM"), detail.contains("--checkpoint-activations") {
            // Megatron-LM's README figures from the --checkpoint-activations era (2021) were computed with the paper's
            // formula, whose 96 = 4 passes × 24 counts the recomputed forward
            convention = .megatronRecompute
            notes.append("TFLOP/s counted as Megatron-LM counted it with --checkpoint-activations (2021): the paper's formula, with the recomputed forward (arXiv 2104.04473 appendix): \(convention.formula)")
        } else if m.contains("96") && (m.contains("megatron") || m.contains("b·s·l·h") || m.contains("bslh")) {
            // "the formula used by the Megatron paper: 96·B·s·l·h²(1 + s/6h + V/16lh)": with recomputation
            convention = .megatronRecompute
            notes.append("TFLOP/s counted by the Megatron paper's 96·B·s·l·h² formula, which counts the recomputed forward (arXiv 2104.04473 appendix): \(convention.formula)")
        } else if lowerName.contains("megatron-core") || m.contains("mfu") || m.contains("model")
                    || detail.lowercased().contains("nemo") || row["source"].lowercased().contains("nemo") {
            convention = .megatronModel
            notes.append("TFLOP/s counted as Megatron-Core's num_floating_point_operations (model FLOPs; NeMo and Korthikanti et al.'s MFU count the same): \(convention.formula)")
        } else if detail.lowercased().contains("calculate_tflops_training_per_device")
                    || (detail.lowercased().contains("causal attention")
                        && detail.range(of: #"6\s*[·*×x]\s*(?:params|parameters|N)\b"#, options: [.regularExpression, .caseInsensitive]) != nil) {
            convention = .sixNCausalAttention
            notes.append("TFLOP/s counted as model_detail says, MaxText's calculate_tflops_training_per_device: \(convention.formula)")
        } else if detail.range(of: #"6\s*[·*×x]\s*(?:params|parameters|N)\s*[·*×x]\s*tokens"#, options: [.regularExpression, .caseInsensitive]) != nil {
            convention = .sixN
            notes.append("TFLOP/s counted as model_detail says: \(convention.formula)")
        } else {
            convention = .sixN
            notes.append("TFLOP/s: the source's FLOP count is not known; 6·N·tokens (ASSUMPTION)")
        }
        if model.shape == nil && model.unsupported == nil {
            throw RowSkip(reason: "TFLOP/s needs a transformer model (GPT, BERT, Llama) whose FLOP count the sources define")
        }
        return tflopUnits.contains(u) && !perGPUByValue ? .teraflops(convention) : .teraflopsPerGPU(convention)
    }
    if secondsUnits.contains(u) { return .secondsPerStep }
    if millisecondsUnits.contains(u) { return .millisecondsPerStep }
    throw RowSkip(reason: "unknown unit '\(unit)' (known: images/s, sequences/s (sentences/s), samples/s, …/s/GPU, tokens/s (TPS, WPS, T/s), tokens/s/GPU, "
                  + "TFLOP/s (TFLOPs), TFLOP/s/GPU, s or ms per step; minutes or hours for a time-to-train metric; "
                  + "a rate is per GPU where the unit or the metric says 'per GPU')")
}

/// A unit as sources write it, in the spelling of the sets below (lower-cased): "per second" and "per GPU" as "/s" and
/// "/gpu"; tokens/s written TPS (torchtitan), T/s (llm-foundry), WPS (torchtitan's words, its tokens) or tokens/sec;
/// TFLOPs and TFLOPS as TFLOP/s. A rate whose unit does not say per GPU is per GPU when the metric says so
/// ("tokens/s per GPU", "TFLOPs … per GPU"), with a note.
func canonicalUnit(_ unit: String, metric: String) -> (String, String?) {
    var u = unit.lowercased().trimmingCharacters(in: .whitespaces)
    // "TFLOPs (per GPU)": the parenthesised qualifier as words
    u = u.replacingOccurrences(of: #"\(\s*((?:per|/)[^)]*)\)"#, with: "$1", options: .regularExpression)
    // log keys (imgs_sec, training_sequences_per_second, train_samples_per_sec) as words
    for (pattern, with) in [(#"_per_"#, "/"), (#"_"#, " "), (#"^(?:training|train) "#, ""), (#"^([a-z]+) (sec|second)$"#, "$1/s")] {
        u = u.replacingOccurrences(of: pattern, with: with, options: .regularExpression)
    }
    // ("per A100-40G GPU": a GPU's name between)
    for (pattern, with) in [(#"\s*(?:per|/)\s*-?\s*(?:[a-z0-9][a-z0-9.-]*\s+)?(?:gpu|chip|device|accelerator)\b"#, "/gpu"),
                            (#"\s*(?:per|/)\s*(?:second|sec)\b"#, "/s"), (#"\s*/\s*"#, "/"), (#"\s+"#, " ")] {
        u = u.replacingOccurrences(of: pattern, with: with, options: .regularExpression)
    }
    if u.hasSuffix("/gpu/s") { u = String(u.dropLast(6)) + "/s/gpu" }                   // tokens/GPU/s
    for (pattern, with) in [(#"^(?:tps|wps|t/s|words/s|token/s|tokens/s)"#, "tokens/s"),
                            (#"^(?:tflops/s|teraflops/s|tflop/s|tflops|teraflops|tflop)"#, "tflop/s"), (#"^(?:sample/s|samples/s|samp/s)"#, "samples/s"),
                            (#"^(?:image/s|images/s|imgs/s)"#, "images/s"),
                            // DLE's TensorFlow BERT tables count "sentences per second": its sequences
                            (#"^(?:sequence/s|sequences/s|seqs/s|sentence/s|sentences/s|sents/s|sent/s)"#, "sequences/s")] {
        if let r = u.range(of: pattern, options: .regularExpression) { u.replaceSubrange(r, with: with); break }
    }
    let rates = samplesUnits.union(tokenUnits).union(tflopUnits)
    let perGPU = metric.range(of: #"(?i)(?:\bper[ -]?GPU\b|/\s*GPU\b)"#, options: .regularExpression) != nil
    if rates.contains(u) && perGPU {
        return (u + "/gpu", "unit '\(unit)' read as \(u)/GPU: the metric says per GPU")
    }
    return (u, u == unit.lowercased() ? nil : "unit '\(unit)' read as \(u)")
}

/// The units a row may give, by what they measure (compared lower-cased).
private let samplesUnits: Set = ["images/s", "sequences/s", "samples/s", "img/s", "seq/s"]
private let samplesPerGPUUnits: Set = ["images/s/gpu", "sequences/s/gpu", "samples/s/gpu", "img/s/gpu", "seq/s/gpu"]
private let tokenUnits: Set = ["tokens/s", "tok/s"]
private let tokenPerGPUUnits: Set = ["tokens/s/gpu", "tok/s/gpu"]
private let tflopUnits: Set = ["tflop/s", "tflops"]
private let tflopPerGPUUnits: Set = ["tflop/s/gpu", "tflops/gpu"]
private let secondsUnits: Set = ["s", "sec", "seconds", "s per global step", "s per step", "s per iteration", "seconds per step", "s/step", "s/iteration",
                                  "s/iter", "s per iter", "sec/iter", "seconds per iteration"]
private let millisecondsUnits: Set = ["ms", "milliseconds", "ms per step", "ms per iteration", "ms/step", "ms/iteration", "ms per global step",
                                      "ms/iter", "ms per iter", "milliseconds per iteration"]

private func formatCount(_ x: Double) -> String {
    guard abs(x) < 1e18 else { return String(format: "%.4g", x) }
    let digits = String(Int(x.rounded()))
    var out = ""
    for (i, ch) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return String(out.reversed())
}
