import DojoNN

/// The input each zoo model is shown with when a user names no data: the size its publications use
/// (`ModelSpec.defaultInputShape`; [tokens] for language models).
enum ModelDefaults {
    static func inputShape(for model: String) -> [Int] {
        (try? ModelZoo.resolve(model))?.defaultInputShape ?? [3, 224, 224]
    }
}

/// Parses "3x224x224" (or "3,224,224") into a shape.
func parseShape(_ s: String) -> [Int]? {
    let parts = s.split(whereSeparator: { $0 == "x" || $0 == "," || $0 == "×" })
    let dims = parts.compactMap { Int($0) }
    guard !dims.isEmpty, dims.count == parts.count, dims.allSatisfy({ $0 > 0 }) else { return nil }
    return dims
}
