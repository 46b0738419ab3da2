import CZlib
import Foundation
import Testing
import DojoData

/// Decompresses a gzip file with the `gunzip` tool, independently of the library's reader.
func gunzipTool(_ path: String) throws -> [UInt8] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/gunzip")
    p.arguments = ["-c", path]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return [UInt8](data)
}

/// A fresh temporary directory.
func makeTempDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("dojo-data-\(getpid())-\(UInt64.random(in: 0...UInt64.max))").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A valid IDX byte image: header + data.
func idx(magic: UInt32, dims: [Int], data: [UInt8]) -> [UInt8] {
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
    return be(magic) + dims.flatMap { be(UInt32($0)) } + data
}

/// Writes bytes gzip-compressed with zlib.
func writeGzip(_ bytes: [UInt8], to path: String) {
    let gz = gzopen(path, "wb")!
    _ = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
    gzclose(gz)
}

@Suite struct FashionMNISTTests {
    static let dir = FashionMNIST.defaultDirectory
    static let available = FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz")

    @Test(.enabled(if: available)) func realFiles() throws {
        let start = Date()
        let train = try FashionMNIST(split: .train)
        print("FashionMNIST train split loaded (gzip, 60000 images) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        let test = try FashionMNIST(split: .test)
        #expect(train.count == 60000)
        #expect(test.count == 10000)
        #expect(train.inputShape == [1, 28, 28])
        #expect(train.classNames.count == 10)
        #expect(train.classNames[9] == "Ankle boot")

        // Independent read of the first bytes with gunzip.
        let labels = try gunzipTool(Self.dir + "/train-labels-idx1-ubyte.gz")
        let images = try gunzipTool(Self.dir + "/train-images-idx3-ubyte.gz")
        #expect(labels.count == 8 + 60000)
        #expect(images.count == 16 + 60000 * 784)
        #expect(labels[8] == 9)  // the first training image is an ankle boot
        let first = train.example(at: 0)
        #expect(first.label == Int32(labels[8]))
        #expect(first.target.isEmpty)
        for (i, pixel) in [0, 100, 300, 400, 500, 783].map({ ($0, images[16 + $0]) }) {
            #expect(abs(first.input[i] - (Float(pixel) / 255 - 0.2860) / 0.3530) < 1e-6)
        }
        let last = train.example(at: 59999)
        #expect(last.label == Int32(labels[8 + 59999]))
        #expect(abs(last.input[400] - (Float(images[16 + 59999 * 784 + 400]) / 255 - 0.2860) / 0.3530) < 1e-6)
        #expect(first.input.contains { $0 > 2 })  // some bright pixels

        var perClass = [Int](repeating: 0, count: 10)
        for l in train.rawLabels { perClass[Int(l)] += 1 }
        #expect(perClass == Array(repeating: 6000, count: 10))

        // Mean / std of the normalised training data are about 0 / 1.
        var sum = 0.0, sq = 0.0
        for p in train.pixels { let v = Double(FashionMNIST.normalize(p)); sum += v; sq += v * v }
        let n = Double(train.pixels.count)
        #expect(abs(sum / n) < 0.01)
        #expect(abs((sq / n - (sum / n) * (sum / n)).squareRoot() - 1) < 0.01)

        let limited = try FashionMNIST(split: .test, limit: 100)
        #expect(limited.count == 100)
        #expect(limited.example(at: 99) == test.example(at: 99))
    }

    @Test func uncompressedAndCompressedCrafted() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pixels = (0..<(3 * 784)).map { UInt8($0 % 251) }
        // Uncompressed images, gzip labels: both accepted.
        try Data(idx(magic: 0x803, dims: [3, 28, 28], data: pixels)).write(to: URL(fileURLWithPath: dir + "/t10k-images-idx3-ubyte"))
        writeGzip(idx(magic: 0x801, dims: [3], data: [4, 0, 9]), to: dir + "/t10k-labels-idx1-ubyte.gz")
        let d = try FashionMNIST(split: .test, directory: dir)
        #expect(d.count == 3)
        #expect(d.example(at: 2).label == 9)
        #expect(d.example(at: 1).input[5] == FashionMNIST.normalize(pixels[784 + 5]))
    }

    /// Writes a crafted test split into a fresh directory and returns the error message of loading it.
    func loadError(images: [UInt8]?, labels: [UInt8]?, gzipImages: Bool = true) throws -> (String?, String) {
        let dir = try makeTempDir()
        if let images {
            if gzipImages { writeGzip(images, to: dir + "/t10k-images-idx3-ubyte.gz") } else {
                try Data(images).write(to: URL(fileURLWithPath: dir + "/t10k-images-idx3-ubyte.gz"))
            }
        }
        if let labels { writeGzip(labels, to: dir + "/t10k-labels-idx1-ubyte.gz") }
        let message = dataErrorMessage { _ = try FashionMNIST(split: .test, directory: dir) }
        try? FileManager.default.removeItem(atPath: dir)
        return (message, dir)
    }

    @Test func missingDirectoryAndFiles() throws {
        let m = dataErrorMessage { _ = try FashionMNIST(split: .train, directory: "/nonexistent/fashion") }
        #expect(m == "/nonexistent/fashion not found; install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
        let (m2, dir) = try loadError(images: nil, labels: idx(magic: 0x801, dims: [1], data: [0]))
        #expect(m2?.contains(dir + "/t10k-images-idx3-ubyte.gz not found") == true)
        #expect(m2?.contains("apt-get install dataset-fashion-mnist") == true)
    }

    @Test func truncatedFile() throws {
        let (m, dir) = try loadError(images: idx(magic: 0x803, dims: [2, 28, 28], data: [UInt8](repeating: 7, count: 1000)),
                                     labels: idx(magic: 0x801, dims: [2], data: [1, 2]))
        #expect(m == "\(dir)/t10k-images-idx3-ubyte.gz: truncated file: expected 1568 bytes of image data, found 1000")
        let (m2, dir2) = try loadError(images: idx(magic: 0x803, dims: [2, 28, 28], data: [UInt8](repeating: 7, count: 1568)),
                                       labels: idx(magic: 0x801, dims: [2], data: [1]))
        #expect(m2 == "\(dir2)/t10k-labels-idx1-ubyte.gz: truncated file: expected 2 bytes of label data, found 1")
        let (m3, dir3) = try loadError(images: [0, 0, 8], labels: idx(magic: 0x801, dims: [2], data: [1, 2]))
        #expect(m3?.hasPrefix("\(dir3)/t10k-images-idx3-ubyte.gz: truncated file") == true)
    }

    @Test func badMagic() throws {
        // A labels file where the images file should be.
        let (m, dir) = try loadError(images: idx(magic: 0x801, dims: [2], data: [1, 2]),
                                     labels: idx(magic: 0x801, dims: [2], data: [1, 2]))
        #expect(m == "\(dir)/t10k-images-idx3-ubyte.gz: bad IDX magic number 0x00000801, expected 0x00000803")
        let (m2, dir2) = try loadError(images: idx(magic: 0x803, dims: [1, 28, 28], data: [UInt8](repeating: 0, count: 784)),
                                       labels: [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 0])
        #expect(m2 == "\(dir2)/t10k-labels-idx1-ubyte.gz: bad IDX magic number 0x12345678, expected 0x00000801")
    }

    @Test func countMismatchAndDimensions() throws {
        let (m, dir) = try loadError(images: idx(magic: 0x803, dims: [2, 28, 28], data: [UInt8](repeating: 0, count: 1568)),
                                     labels: idx(magic: 0x801, dims: [3], data: [1, 2, 3]))
        #expect(m == "\(dir)/t10k-images-idx3-ubyte.gz holds 2 images but \(dir)/t10k-labels-idx1-ubyte.gz holds 3 labels")
        let (m2, dir2) = try loadError(images: idx(magic: 0x803, dims: [1, 32, 32], data: [UInt8](repeating: 0, count: 1024)),
                                       labels: idx(magic: 0x801, dims: [1], data: [1]))
        #expect(m2?.hasPrefix("\(dir2)/t10k-images-idx3-ubyte.gz: bad IDX header") == true)
    }

    @Test func corruptGzip() throws {
        // A gzip header followed by garbage.
        var bytes: [UInt8] = [0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 3]
        bytes += (0..<200).map { UInt8(($0 * 37 + 11) % 256) }
        let (m, dir) = try loadError(images: bytes, labels: idx(magic: 0x801, dims: [1], data: [1]), gzipImages: false)
        #expect(m?.hasPrefix("\(dir)/t10k-images-idx3-ubyte.gz: corrupt gzip data") == true, "\(m ?? "nil")")
        // A valid gzip stream cut short.
        let dir2 = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        let full = dir2 + "/full.gz"
        writeGzip(idx(magic: 0x803, dims: [50, 28, 28], data: (0..<(50 * 784)).map { UInt8(($0 * 7) % 256) }), to: full)
        let gz = try Data(contentsOf: URL(fileURLWithPath: full))
        try gz.prefix(gz.count / 2).write(to: URL(fileURLWithPath: dir2 + "/t10k-images-idx3-ubyte.gz"))
        writeGzip(idx(magic: 0x801, dims: [50], data: [UInt8](repeating: 1, count: 50)), to: dir2 + "/t10k-labels-idx1-ubyte.gz")
        let m2 = dataErrorMessage { _ = try FashionMNIST(split: .test, directory: dir2) }
        #expect(m2?.hasPrefix("\(dir2)/t10k-images-idx3-ubyte.gz: corrupt gzip data") == true, "\(m2 ?? "nil")")
    }

    @Test func augmentFlipsAndShifts() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pixels = (0..<784).map { UInt8(($0 * 13) % 256) }
        writeGzip(idx(magic: 0x803, dims: [1, 28, 28], data: pixels), to: dir + "/train-images-idx3-ubyte.gz")
        writeGzip(idx(magic: 0x801, dims: [1], data: [3]), to: dir + "/train-labels-idx1-ubyte.gz")
        let d = try FashionMNIST(split: .train, directory: dir)
        let original = d.example(at: 0)
        var flips = 0, plain = 0, sawPureFlip = false
        for seed in UInt64(0)..<200 {
            var g1 = SplitMix64(seed: seed), g2 = SplitMix64(seed: seed)
            let p = FashionMNIST.augmentParameters(&g1)
            var ex = original
            d.augment(&ex, generator: &g2)
            #expect(g1.state == g2.state)  // augment draws exactly the parameters
            #expect(ex.label == original.label)
            if p.flip { flips += 1 }
            #expect((-2...2).contains(p.dx) && (-2...2).contains(p.dy))
            for y in 0..<28 {
                for x in 0..<28 {
                    let sy = y - p.dy, fx = x - p.dx
                    let expected: Float
                    if sy < 0 || sy >= 28 || fx < 0 || fx >= 28 {
                        expected = FashionMNIST.normalize(0)
                    } else {
                        expected = original.input[sy * 28 + (p.flip ? 27 - fx : fx)]
                    }
                    #expect(ex.input[y * 28 + x] == expected)
                }
            }
            if p.flip && p.dx == 0 && p.dy == 0 {
                sawPureFlip = true
                for y in 0..<28 { for x in 0..<28 { #expect(ex.input[y * 28 + x] == original.input[y * 28 + 27 - x]) } }
                #expect(ex.input != original.input)
            }
            if !p.flip && p.dx == 0 && p.dy == 0 { plain += 1; #expect(ex == original) }
        }
        #expect(flips > 70 && flips < 130)
        #expect(sawPureFlip)
        #expect(plain > 0)
    }

    @Test func limitValidation() {
        let m = dataErrorMessage { _ = try FashionMNIST(split: .train, limit: 0) }
        #expect(m?.contains("limit") == true)
    }
}
