import CZlib
import DojoReport
import Foundation

/// Minimal PNG writer (8-bit RGB, no interlace) on zlib, so a user can look at what the cameras see.
public enum PNGImage {
    /// The PNG file bytes of an RGB image stored row by row, 3 bytes a pixel.
    public static func encode(width: Int, height: Int, rgb: [UInt8]) -> Data {
        precondition(width > 0 && height > 0 && rgb.count == width * height * 3, "PNG: \(rgb.count) bytes for \(width)×\(height) RGB")
        var raw = [UInt8]()
        raw.reserveCapacity((width * 3 + 1) * height)
        for y in 0..<height {
            raw.append(0)   // filter: none
            raw.append(contentsOf: rgb[(y * width * 3)..<((y + 1) * width * 3)])
        }
        var compressedSize = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
        let status = compress2(&compressed, &compressedSize, raw, uLong(raw.count), 9)
        precondition(status == Z_OK, "zlib compress2 failed with \(status)")
        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func chunk(_ type: String, _ body: [UInt8]) {
            var length = UInt32(body.count).bigEndian
            out.append(Data(bytes: &length, count: 4))
            let typed = Array(type.utf8) + body
            out.append(contentsOf: typed)
            var crc = UInt32(crc32(0, typed, uInt(typed.count))).bigEndian
            out.append(Data(bytes: &crc, count: 4))
        }
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])   // 8-bit, RGB, deflate, no filter, no interlace
        chunk("IDAT", Array(compressed.prefix(Int(compressedSize))))
        chunk("IEND", [])
        return out
    }
}

extension DrivingScenes {
    /// Writes scene `index` as a PNG: the camera views side by side, then the BEV occupancy grid.
    public func writePNG(at index: Int, to path: String, scale: Int = 4) throws(DataError) {
        let img = preview(at: index, scale: scale)
        do { try UserFiles.write(PNGImage.encode(width: img.width, height: img.height, rgb: img.rgb), to: path, what: "PNG") } catch {
            throw DataError.writeFailed(path: path, reason: error.problem)
        }
    }
}
