/// Element types a tensor of the graph can hold. Dojo's own formats are Tesla's CFloat8/CFloat16 (CFP whitepaper,
/// `docs/SOURCES.md` §8); the engine computes in FP32 and rounds values to these where the
/// precision policy says so.
public enum DType: String, Codable, Sendable, CaseIterable {
    case fp32, bf16, fp16, cfp8_143 = "cfp8-143", cfp8_152 = "cfp8-152", shp, uhp, int32, uint8

    /// Bytes one element takes in memory.
    public var byteSize: Int {
        switch self {
        case .fp32, .int32: return 4
        case .bf16, .fp16, .shp, .uhp: return 2
        case .cfp8_143, .cfp8_152, .uint8: return 1
        }
    }

    /// Whether every value of the type is exact in BF16 (BF16 itself, and CFP8 1-4-3/1-5-2 at any bias: their 3 or 2
    /// fraction bits and exponent range fit in BF16's): products on such values may run on BF16 kernels.
    public var valuesExactInBF16: Bool { self == .bf16 || self == .cfp8_143 || self == .cfp8_152 }
}

/// The part of a training step an op belongs to.
public enum Phase: String, Codable, Sendable, CaseIterable {
    case forward, backward, optimizer
}
