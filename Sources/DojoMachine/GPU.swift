import Foundation

/// NVIDIA GPU systems: a GPU, a DGX node of GPUs on NVLink/NVSwitch with InfiniBand NICs, and a cluster of
/// nodes. Rates are dense (no structured sparsity). Sources are named in the presets (NVIDIA data sheets).

/// One GPU. Section `gpu`. A precision the GPU lacks has rate 0.
public struct GPUSpec: Sendable, Equatable {
    /// `model`: e.g. "H100 SXM5 80GB".
    public var model: String
    /// `fp32`, `tf32`, `fp16`, `bf16`, `fp8`: dense peak FLOP/s (tensor cores where they apply).
    public var fp32: Double
    public var tf32: Double
    public var fp16: Double
    public var bf16: Double
    public var fp8: Double
    /// `hbm_bytes`, `hbm_bandwidth`.
    public var hbmBytes: Double
    public var hbmBandwidth: Double
    /// `l2_bytes`: on-chip L2 cache.
    public var l2Bytes: Double
    /// `nvlink_bandwidth`: NVIDIA's per-GPU figure, both directions together (900 GB/s on H100; a PCIe card's NVLink
    /// bridge joins pairs only).
    public var nvlinkBandwidthBidirectional: Double
    /// `tdp`: board power.
    public var tdp: Double
    /// `sms`: streaming multiprocessors (NVIDIA architecture whitepapers): GEMM tiles run in waves of this many.
    public var sms: Int
    /// `gemm_tile`: the side of the square output tile one SM computes in a GEMM (ASSUMPTION, a cuBLAS-like 128).
    public var gemmTile: Int
    /// `launch_overhead`: fixed time per kernel that does not overlap with work (ASSUMPTION: launch and
    /// inter-kernel gap of eager training).
    public var launchOverhead: Double
    /// `compute_capability` (optional; 0 = not given): CUDA's compute capability, e.g. 9.0 for Hopper, 10.0 for the
    /// B200. What software decides by it: Transformer Engine keeps FP8 GEMM operands transposed (TN layout only)
    /// below 10.0 and not from 10.0 on (`nvte_is_non_tn_fp8_gemm_supported`).
    public var computeCapability: Double = 0
    /// `power_limit` (optional; 0 = not given: the `tdp`): a board power limit set below the TDP (`nvidia-smi -pl`),
    /// as some published runs state (torchtitan's Grand Teton hosts: 500 W on a 700 W part).
    public var powerLimit: Double = 0
    /// `pcie_bandwidth` (optional; 0 = not given): the card's PCIe link, both directions together as the data sheets
    /// give it (64 GB/s Gen4 x16, 128 GB/s Gen5 x16). Required where the server's `interconnect` is `pcie`.
    public var pcieBandwidthBidirectional: Double = 0

    /// The share of the data-sheet clocks the GPU keeps under its power limit: (limit ÷ TDP)^(1/3), 1 at or above the
    /// TDP. ASSUMPTION: compute-bound training runs at the limit, its power all dynamic power, P = C·V²·f with the
    /// voltage proportional to the clock in the DVFS range, so P ∝ f³ (Hennessy & Patterson, "Computer Architecture:
    /// A Quantitative Approach", 6th ed., §1.5, "Trends in Power and Energy"). Leaving static power out makes it
    /// optimistic (less clock is lost than when the fixed part keeps its share). HBM bandwidth is not scaled.
    public var clockScale: Double {
        guard powerLimit > 0, tdp > 0, powerLimit < tdp else { return 1 }
        return Foundation.pow(powerLimit / tdp, 1.0 / 3)
    }
}

/// A DGX node. Section `server`.
public struct GPUServer: Sendable, Equatable {
    /// `model`: e.g. "DGX H100".
    public var model: String
    /// `gpus`: 8.
    public var gpus: Int
    /// `interconnect`: `nvswitch`, `hybrid-cube-mesh` (DGX-1) or `pcie` (a server of PCIe cards: the GPUs exchange
    /// data over their PCIe links, `gpu.pcie_bandwidth`, through the server's PCIe switches).
    public var interconnect: String
    /// Whether the GPUs are PCIe cards talking over PCIe (`interconnect: pcie`).
    public var overPCIe: Bool { interconnect == "pcie" }
    /// `nvlink_bisection_fraction`: the share of half the GPUs' link bandwidth (NVLink, or PCIe for `pcie`) that
    /// crosses the node's bisection (1 for a non-blocking NVSwitch; DGX-1's cube mesh less: an ASSUMPTION in that
    /// preset).
    public var nvlinkBisectionFraction: Double
    /// `nics`, `nic_bandwidth`: compute-fabric InfiniBand ports and their rate per direction.
    public var nics: Int
    public var nicBandwidth: Double
    /// `power`: the system's maximum power.
    public var power: Double
    /// `fabric_bisection_fraction`: the share of the nodes' NIC bandwidth the cluster fabric carries across a
    /// bisection (1 = non-blocking fat tree; ASSUMPTION).
    public var fabricBisectionFraction: Double
    /// `host_cores`, `host_threads` (optional; 0 = not given): the node's host CPU cores and hardware threads, which
    /// decode and augment input when a run's data loader works on the host (`dojo sim --assume loader_workers=N`).
    public var hostCores: Int = 0
    public var hostThreads: Int = 0
}

/// `count` DGX nodes.
public struct GPUCluster: Sendable, Equatable {
    public var gpu: GPUSpec
    public var server: GPUServer
    public var nodes: Int

    /// What a node's GPUs exchange data over: "PCIe" in a server of PCIe cards, else "NVLink".
    public var peerLink: String { server.overPCIe ? "PCIe" : "NVLink" }
    /// That link's bandwidth per GPU and direction (half the data sheet's both-directions figure).
    public var peerBandwidth: Double {
        (server.overPCIe ? gpu.pcieBandwidthBidirectional : gpu.nvlinkBandwidthBidirectional) / 2
    }
}
