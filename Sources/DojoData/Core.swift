@_exported import DojoNumerics
// DojoData core types: examples, the Dataset protocol, the seeded generator and typed errors.

/// One training example.
///
/// - `input`: `inputShape.reduce(1, *)` floats, row-major in `inputShape` order.
/// - `label`: a class index into `classNames`, or -1 when the data set has no labels.
/// - `target`: `targetShape.reduce(1, *)` floats (empty when the data set has no dense target).
public struct Example: Sendable, Equatable {
    public var input: [Float]
    public var label: Int32
    public var target: [Float]

    public init(input: [Float], label: Int32, target: [Float] = []) {
        self.input = input
        self.label = label
        self.target = target
    }
}

/// A random-access collection of examples. Implementations must be thread-safe and deterministic:
/// `example(at: i)` returns bit-identical values every time, from any thread.
public protocol Dataset: Sendable {
    var name: String { get }
    var count: Int { get }
    /// Shape of one example's input, e.g. `[1, 28, 28]` or `[cameras, 3, H, W]`.
    var inputShape: [Int] { get }
    /// Shape of one example's target, `[]` if none, e.g. `[G, G]` for BEV occupancy.
    var targetShape: [Int] { get }
    /// Label names, `[]` if the data set has no labels.
    var classNames: [String] { get }
    func example(at index: Int) -> Example
    /// Random training-time augmentation; must depend only on `example` and `generator`.
    func augment(_ example: inout Example, generator: inout SplitMix64)
}

extension Dataset {
    public func augment(_ example: inout Example, generator: inout SplitMix64) {}

    /// Number of floats in one example's input.
    public var inputSize: Int { inputShape.reduce(1, *) }
    /// Number of floats in one example's target (0 if none).
    public var targetSize: Int { targetShape.isEmpty ? 0 : targetShape.reduce(1, *) }
}

/// Errors a user can cause: bad arguments, missing or damaged data files. Every message says what is wrong
/// and, for files, names the file.
public enum DataError: Error, CustomStringConvertible, Equatable {
    /// A constructor argument is out of range.
    case invalidArgument(name: String, value: String, expected: String)
    /// A data directory or file does not exist.
    case notFound(path: String, hint: String)
    /// A file could not be opened or read.
    case readFailed(path: String, reason: String)
    /// The gzip stream is damaged.
    case corruptGzip(path: String, reason: String)
    /// The IDX magic number is not the expected one.
    case badMagic(path: String, expected: UInt32, found: UInt32)
    /// The header is malformed (too short, wrong dimensions).
    case badHeader(path: String, reason: String)
    /// The file holds fewer bytes than its header promises.
    case truncated(path: String, what: String, expected: Int, found: Int)
    /// Image and label files disagree on the number of examples.
    case countMismatch(imagesPath: String, images: Int, labelsPath: String, labels: Int)
    /// The data set is empty or too small for the requested batching.
    case emptyDataset(name: String, reason: String)
    /// A file could not be written.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidArgument(name, value, expected):
            return "invalid argument \(name) = \(value): expected \(expected)"
        case let .notFound(path, hint):
            return hint.isEmpty ? "\(path) not found" : "\(path) not found; \(hint)"
        case let .readFailed(path, reason):
            return "\(path): could not read: \(reason)"
        case let .corruptGzip(path, reason):
            return "\(path): corrupt gzip data: \(reason)"
        case let .badMagic(path, expected, found):
            return "\(path): bad IDX magic number 0x\(hex8(found)), expected 0x\(hex8(expected))"
        case let .badHeader(path, reason):
            return "\(path): bad IDX header: \(reason)"
        case let .truncated(path, what, expected, found):
            return "\(path): truncated file: expected \(expected) bytes of \(what), found \(found)"
        case let .countMismatch(imagesPath, images, labelsPath, labels):
            return "\(imagesPath) holds \(images) images but \(labelsPath) holds \(labels) labels"
        case let .emptyDataset(name, reason):
            return "data set \(name): \(reason)"
        case let .writeFailed(path, reason):
            return "\(path): could not write: \(reason)"
        }
    }
}

private func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}
