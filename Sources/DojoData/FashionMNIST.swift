// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from the original IDX files, as shipped by Debian's
// `dataset-fashion-mnist` in /usr/share/datasets/fashion-mnist (gzip-compressed; uncompressed also read).
import CZlib
import DojoReport
import Foundation

public struct FashionMNIST: Dataset {
    public enum Split: Sendable { case train, test }

    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// Per-pixel mean and standard deviation of the training images (pixel / 255), the usual constants.
    public static let mean: Float = 0.2860
    public static let std: Float = 0.3530
    public static let rows = 28
    public static let columns = 28
    public static let classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    static let installHint = "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"

    public let split: Split
    public let count: Int
    public let imagesPath: String
    public let labelsPath: String
    /// Raw pixels, `count × 28 × 28`, and raw labels, as in the files.
    public let pixels: [UInt8]
    public let rawLabels: [UInt8]

    public var name: String { split == .train ? "fashion-mnist-train" : "fashion-mnist-test" }
    public var inputShape: [Int] { [1, Self.rows, Self.columns] }
    public var targetShape: [Int] { [] }
    public var classNames: [String] { Self.classes }

    /// Normalised value of a pixel byte: (p / 255 − mean) / std.
    @inline(__always)
    public static func normalize(_ p: UInt8) -> Float { (Float(p) / 255 - mean) / std }
    /// Normalised value of a black (0) pixel: what translation fills in.
    public static let background: Float = normalize(0)

    public init(split: Split, directory: String = defaultDirectory, limit: Int? = nil) throws(DataError) {
        if let limit, limit <= 0 {
            throw .invalidArgument(name: "limit", value: "\(limit)", expected: "> 0 or nil")
        }
        var isDir: ObjCBool = false
        guard !directory.isEmpty else { throw .readFailed(path: "''", reason: "the Fashion-MNIST folder is an empty path") }
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw .notFound(path: directory, hint: Self.installHint)
        }
        guard isDir.boolValue else {
            throw .readFailed(path: directory, reason: "not a folder: the Fashion-MNIST folder holds the four IDX files (train-images-idx3-ubyte[.gz], …)")
        }
        let prefix = split == .train ? "train" : "t10k"
        let imagesPath = try Self.locate(directory, "\(prefix)-images-idx3-ubyte")
        let labelsPath = try Self.locate(directory, "\(prefix)-labels-idx1-ubyte")

        let imageBytes = try readMaybeGzip(imagesPath)
        let labelBytes = try readMaybeGzip(labelsPath)
        let images = try parseIDX(imageBytes, path: imagesPath, magic: 0x0000_0803, what: "image data")
        let labels = try parseIDX(labelBytes, path: labelsPath, magic: 0x0000_0801, what: "label data")
        guard images.dims.count == 3, images.dims[1] == Self.rows, images.dims[2] == Self.columns else {
            throw .badHeader(path: imagesPath, reason: "dimensions \(images.dims), expected [N, 28, 28]")
        }
        guard labels.dims.count == 1 else {
            throw .badHeader(path: labelsPath, reason: "dimensions \(labels.dims), expected [N]")
        }
        guard images.dims[0] == labels.dims[0] else {
            throw .countMismatch(imagesPath: imagesPath, images: images.dims[0],
                                 labelsPath: labelsPath, labels: labels.dims[0])
        }
        var n = images.dims[0]
        if let limit { n = min(n, limit) }
        let pixelCount = n * Self.rows * Self.columns
        let pixels = Array(imageBytes[images.dataOffset..<(images.dataOffset + pixelCount)])
        let rawLabels = Array(labelBytes[labels.dataOffset..<(labels.dataOffset + n)])
        if let bad = rawLabels.firstIndex(where: { $0 >= 10 }) {
            throw .badHeader(path: labelsPath, reason: "label \(rawLabels[bad]) of example \(bad) is not in 0...9")
        }
        self.split = split
        self.count = n
        self.imagesPath = imagesPath
        self.labelsPath = labelsPath
        self.pixels = pixels
        self.rawLabels = rawLabels
    }

    /// `name.gz` if present, else `name`, else a not-found error naming `name.gz`.
    static func locate(_ directory: String, _ name: String) throws(DataError) -> String {
        let base = (directory as NSString).appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: base + ".gz") { return base + ".gz" }
        if FileManager.default.fileExists(atPath: base) { return base }
        throw .notFound(path: base + ".gz", hint: installHint)
    }

    public func example(at index: Int) -> Example {
        precondition(index >= 0 && index < count, "FashionMNIST index \(index) out of range 0..<\(count)")
        let n = Self.rows * Self.columns
        var input = [Float](repeating: 0, count: n)
        pixels.withUnsafeBufferPointer { px in
            let base = index * n
            for i in 0..<n { input[i] = normalizeTable[Int(px[base + i])] }
        }
        return Example(input: input, label: Int32(rawLabels[index]), target: [])
    }

    /// The augmentation drawn from `generator`: flip with probability 0.5, then a shift of −2…2 pixels
    /// in x and y (three draws, always, so the generator advances the same way every time).
    public static func augmentParameters(_ generator: inout SplitMix64) -> (flip: Bool, dx: Int, dy: Int) {
        let flip = generator.next() >> 63 == 1
        let dx = generator.nextInt(below: 5) - 2
        let dy = generator.nextInt(below: 5) - 2
        return (flip, dx, dy)
    }

    /// Mirrors (if `flip`) then shifts a 28×28 image by (dx, dy) pixels: output(y, x) = flipped(y − dy, x − dx),
    /// filling uncovered pixels with `background` (a black pixel, normalised).
    public static func transform(_ image: [Float], flip: Bool, dx: Int, dy: Int) -> [Float] {
        let h = rows, w = columns
        var out = [Float](repeating: background, count: h * w)
        for y in 0..<h {
            let sy = y - dy
            guard sy >= 0 && sy < h else { continue }
            for x in 0..<w {
                let fx = x - dx
                guard fx >= 0 && fx < w else { continue }
                let sx = flip ? w - 1 - fx : fx
                out[y * w + x] = image[sy * w + sx]
            }
        }
        return out
    }

    /// Random horizontal flip (p = 0.5) and random translation by up to 2 pixels (black fill).
    public func augment(_ example: inout Example, generator: inout SplitMix64) {
        let p = Self.augmentParameters(&generator)
        if !p.flip && p.dx == 0 && p.dy == 0 { return }
        example.input = Self.transform(example.input, flip: p.flip, dx: p.dx, dy: p.dy)
    }
}

private let normalizeTable: [Float] = (0..<256).map { FashionMNIST.normalize(UInt8($0)) }

/// Header of an IDX file: dimensions and where the data starts.
struct IDXHeader {
    var dims: [Int]
    var dataOffset: Int
}

/// Parses an unsigned-byte IDX header and checks the file holds all the data it promises.
func parseIDX(_ bytes: [UInt8], path: String, magic: UInt32, what: String) throws(DataError) -> IDXHeader {
    func be32(_ o: Int) -> UInt32 {
        UInt32(bytes[o]) << 24 | UInt32(bytes[o + 1]) << 16 | UInt32(bytes[o + 2]) << 8 | UInt32(bytes[o + 3])
    }
    guard bytes.count >= 4 else {
        throw .truncated(path: path, what: "header", expected: 4, found: bytes.count)
    }
    let m = be32(0)
    guard m == magic else { throw .badMagic(path: path, expected: magic, found: m) }
    let rank = Int(m & 0xFF)
    let headerSize = 4 + 4 * rank
    guard bytes.count >= headerSize else {
        throw .truncated(path: path, what: "header", expected: headerSize, found: bytes.count)
    }
    var dims: [Int] = []
    var total = 1
    for d in 0..<rank {
        let v = Int(be32(4 + 4 * d))
        guard v > 0, v < 1 << 30 else { throw .badHeader(path: path, reason: "dimension \(d) is \(v)") }
        dims.append(v)
        total *= v
        guard total < 1 << 40 else { throw .badHeader(path: path, reason: "dimensions \(dims) are too large") }
    }
    let found = bytes.count - headerSize
    guard found >= total else { throw .truncated(path: path, what: what, expected: total, found: found) }
    return IDXHeader(dims: dims, dataOffset: headerSize)
}

/// Reads a whole file; gzip-compressed files (by magic bytes 1f 8b) are decompressed with zlib.
func readMaybeGzip(_ path: String) throws(DataError) -> [UInt8] {
    // A folder, pipe or device where the file should be is said as such (a pipe would block for ever).
    let data: Data
    do { data = try UserFiles.read(path, what: "IDX file") } catch { throw .readFailed(path: path, reason: error.problem) }
    if data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B {
        return try gunzip(path)
    }
    return [UInt8](data)
}

/// Decompresses a gzip file with zlib's gz* API, reporting damage as `corruptGzip`.
func gunzip(_ path: String) throws(DataError) -> [UInt8] {
    guard let gz = gzopen(path, "rb") else {
        throw .readFailed(path: path, reason: "gzopen failed")
    }
    defer { gzclose(gz) }
    _ = gzbuffer(gz, 1 << 17)
    var out: [UInt8] = []
    out.reserveCapacity(1 << 20)
    let chunk = 1 << 20
    var buffer = [UInt8](repeating: 0, count: chunk)
    while true {
        let n = buffer.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32(chunk)) }
        if n < 0 {
            throw .corruptGzip(path: path, reason: gzErrorMessage(gz))
        }
        if n == 0 { break }
        out.append(contentsOf: buffer[0..<Int(n)])
    }
    var errnum: Int32 = 0
    let message = gzerror(gz, &errnum).map { String(cString: $0) } ?? ""
    if errnum != Z_OK && errnum != Z_STREAM_END {
        throw .corruptGzip(path: path, reason: message.isEmpty ? "zlib error \(errnum)" : message)
    }
    return out
}

private func gzErrorMessage(_ gz: gzFile) -> String {
    var errnum: Int32 = 0
    let message = gzerror(gz, &errnum).map { String(cString: $0) } ?? ""
    return message.isEmpty ? "zlib error \(errnum)" : message
}
