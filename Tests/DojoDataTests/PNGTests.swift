import DojoData
import Foundation
import Testing

@Suite struct PNGTests {
    /// The file decodes, with an independent reader (Python's zlib), to exactly the pixels written.
    @Test func pngDecodesToThePixelsWritten() throws {
        let w = 5, h = 3
        let rgb = (0..<(w * h * 3)).map { UInt8(($0 * 37) % 256) }
        let path = NSTemporaryDirectory() + "opendojo-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PNGImage.encode(width: w, height: h, rgb: rgb).write(to: URL(fileURLWithPath: path))
        let script = """
        import struct, sys, zlib
        d = open(sys.argv[1], 'rb').read()
        assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
        i, idat, ihdr = 8, b'', None
        while i < len(d):
            n, t = struct.unpack('>I4s', d[i:i+8]); body = d[i+8:i+8+n]
            assert struct.unpack('>I', d[i+8+n:i+12+n])[0] == zlib.crc32(t + body) & 0xffffffff
            if t == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
            if t == b'IDAT': idat += body
            i += 12 + n
        w, h = ihdr[0], ihdr[1]
        raw = zlib.decompress(idat)
        rows = [raw[r*(w*3+1)+1:(r+1)*(w*3+1)] for r in range(h)]
        print(ihdr[2], ihdr[3], ','.join(str(b) for b in b''.join(rows)))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0)
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "8 2 " + rgb.map(String.init).joined(separator: ","))
    }
}
