// Checkpoints in the safetensors format (Hugging Face's ecosystem standard), read and written with
// Foundation only.
//
// Layout (https://github.com/huggingface/safetensors, "Format"):
//   - 8 bytes: N, an unsigned little-endian 64-bit integer, the size of the header;
//   - N bytes: a UTF-8 JSON object `{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//     ..., "__metadata__": {"key": "value"}}`; the metadata map is string → string only; writers pad the
//     header with spaces (0x20) so that the buffer starts at a multiple of 8;
//   - the byte buffer: every tensor stored contiguously, row-major, little-endian; `data_offsets` are
//     relative to the start of the buffer; the buffer must be fully indexed (no gaps, no overlaps).
//
// Writing is deterministic: `__metadata__` first (keys sorted), then tensors sorted by name, with their
// data laid out in the same order, so the same content always gives the same bytes.
import DojoReport
import Foundation

/// The element types of the safetensors format, with their sizes in bytes.
public enum SafeTensorDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8", u16 = "U16", i16 = "I16", u32 = "U32", i32 = "I32", u64 = "U64", i64 = "I64"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case f16 = "F16", bf16 = "BF16", f32 = "F32", f64 = "F64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2: return 1
        case .u16, .i16, .f16, .bf16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64: return 8
        }
    }
}

/// One tensor of a safetensors file: its dtype name (as in the header, e.g. "F32"), shape, and raw
/// little-endian bytes.
public struct SafeTensor: Sendable, Equatable {
    public var dtype: String
    public var shape: [Int]
    public var data: Data

    public init(dtype: String, shape: [Int], data: Data) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// The number of elements (1 for a scalar, shape `[]`).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Everything that can go wrong reading or writing a checkpoint; each message names the file and the problem.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case ioError(path: String, reason: String)
    case fileTooShort(source: String, size: Int)
    case headerTooLarge(source: String, headerLength: UInt64, fileSize: Int)
    case invalidHeader(source: String, reason: String)
    case invalidEntry(source: String, tensor: String, reason: String)
    case unknownDType(source: String, tensor: String, dtype: String)
    case offsetsOutOfBounds(source: String, tensor: String, begin: Int, end: Int, bufferSize: Int)
    case overlappingTensors(source: String, tensor: String, other: String)
    case sizeMismatch(source: String, tensor: String, shape: [Int], dtype: String, expectedBytes: Int, actualBytes: Int)
    case bufferNotCovered(source: String, begin: Int, end: Int, bufferSize: Int)
    case tensorNotFound(source: String, name: String, available: [String])
    case wrongDType(source: String, name: String, expected: String, actual: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "checkpoint \(path): file not found"
        case .ioError(let path, let reason):
            return "checkpoint \(path): \(reason)"
        case .fileTooShort(let source, let size):
            return "checkpoint \(source): file is \(size) bytes, shorter than the 8-byte header length"
        case .headerTooLarge(let source, let headerLength, let fileSize):
            return "checkpoint \(source): header length \(headerLength) bytes is larger than the file (\(fileSize) bytes)"
        case .invalidHeader(let source, let reason):
            return "checkpoint \(source): invalid header: \(reason)"
        case .invalidEntry(let source, let tensor, let reason):
            return "checkpoint \(source): tensor '\(tensor)': \(reason)"
        case .unknownDType(let source, let tensor, let dtype):
            let known = SafeTensorDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "checkpoint \(source): tensor '\(tensor)': unknown dtype '\(dtype)' (known: \(known))"
        case .offsetsOutOfBounds(let source, let tensor, let begin, let end, let bufferSize):
            return "checkpoint \(source): tensor '\(tensor)': data_offsets [\(begin), \(end)] out of the \(bufferSize)-byte buffer"
        case .overlappingTensors(let source, let tensor, let other):
            return "checkpoint \(source): tensor '\(tensor)' overlaps tensor '\(other)' in the buffer"
        case .sizeMismatch(let source, let tensor, let shape, let dtype, let expected, let actual):
            return "checkpoint \(source): tensor '\(tensor)': shape \(shape) of \(dtype) needs \(expected) bytes, data_offsets give \(actual)"
        case .bufferNotCovered(let source, let begin, let end, let bufferSize):
            return "checkpoint \(source): buffer bytes [\(begin), \(end)) of \(bufferSize) are not covered by any tensor"
        case .tensorNotFound(let source, let name, let available):
            let some = available.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let more = available.count > 5 ? ", … (\(available.count) in all)" : ""
            let list = available.isEmpty ? "the file holds no tensors" : "available: \(some)\(more)"
            return "checkpoint \(source): no tensor named '\(name)'; \(list)"
        case .wrongDType(let source, let name, let expected, let actual):
            return "checkpoint \(source): tensor '\(name)' has dtype \(actual), asked for \(expected)"
        }
    }
}

/// A whole safetensors file in memory: named tensors and string metadata.
public struct SafeTensorsFile: Sendable {
    public var tensors: [String: SafeTensor]
    public var metadata: [String: String]
    /// Where the file came from (a path, or "<memory>"); used in error messages.
    public var source: String

    /// Headers larger than this are rejected (the reference implementation's limit, 100 MB).
    public static let maxHeaderLength: UInt64 = 100_000_000

    public init(tensors: [String: SafeTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
        self.source = "<memory>"
    }

    /// The tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    // MARK: Float convenience (F32)

    /// Stores `values` as an F32 tensor (little-endian). `values.count` must equal the product of `shape`.
    public mutating func setFloats(_ name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
        precondition(shape.allSatisfy { $0 >= 0 }, "safetensors: negative dimension in shape \(shape) of '\(name)'")
        precondition(shape.reduce(1, *) == values.count,
                     "safetensors: shape \(shape) of '\(name)' holds \(shape.reduce(1, *)) values, given \(values.count)")
        var data = Data(count: values.count * 4)
        data.withUnsafeMutableBytes { raw in
            if values.isEmpty { return }
            #if _endian(little)
            raw.copyMemory(from: UnsafeRawBufferPointer(values))
            #else
            for (i, v) in values.enumerated() {
                raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
            #endif
        }
        tensors[name] = SafeTensor(dtype: SafeTensorDType.f32.rawValue, shape: shape, data: data)
    }

    /// Stores `values` as an F32 tensor (little-endian). `values.count` must equal the product of `shape`.
    public mutating func setFloats(_ name: String, shape: [Int], values: [Float]) {
        values.withUnsafeBufferPointer { setFloats(name, shape: shape, values: $0) }
    }

    /// Stores raw little-endian bytes of any dtype; `data.count` must equal shape × dtype size.
    public mutating func setRaw(_ name: String, dtype: SafeTensorDType, shape: [Int], data: Data) {
        precondition(shape.allSatisfy { $0 >= 0 }, "safetensors: negative dimension in shape \(shape) of '\(name)'")
        precondition(shape.reduce(1, *) * dtype.byteSize == data.count,
                     "safetensors: shape \(shape) of \(dtype.rawValue) '\(name)' needs \(shape.reduce(1, *) * dtype.byteSize) bytes, given \(data.count)")
        tensors[name] = SafeTensor(dtype: dtype.rawValue, shape: shape, data: data)
    }

    /// The tensor called `name`, or `.tensorNotFound` naming a few that exist.
    public func tensor(_ name: String) throws(CheckpointError) -> SafeTensor {
        guard let t = tensors[name] else {
            throw .tensorNotFound(source: source, name: name, available: names)
        }
        return t
    }

    /// The F32 tensor called `name`, decoded to Floats.
    public func floats(_ name: String) throws(CheckpointError) -> (shape: [Int], values: [Float]) {
        let t = try tensor(name)
        guard t.dtype == SafeTensorDType.f32.rawValue else {
            throw .wrongDType(source: source, name: name, expected: SafeTensorDType.f32.rawValue, actual: t.dtype)
        }
        let n = t.data.count / 4
        var values = [Float](repeating: 0, count: n)
        values.withUnsafeMutableBytes { dst in
            t.data.withUnsafeBytes { src in
                #if _endian(little)
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<(n * 4)]))
                #else
                for i in 0..<n {
                    let bits = UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                    dst.storeBytes(of: bits, toByteOffset: i * 4, as: UInt32.self)
                }
                #endif
            }
        }
        return (t.shape, values)
    }

    // MARK: Writing

    /// The file's bytes. Deterministic: metadata keys and tensor names sorted, data in name order.
    public func serialized() -> Data {
        let sortedNames = names
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += "\"__metadata__\":{"
            header += metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
                .joined(separator: ",")
            header += "}"
            first = false
        }
        var offset = 0
        for name in sortedNames {
            let t = tensors[name]!
            if !first { header += "," }
            first = false
            let end = offset + t.data.count
            header += "\(jsonString(name)):{\"dtype\":\(jsonString(t.dtype)),\"shape\":["
            header += t.shape.map(String.init).joined(separator: ",")
            header += "],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        header += "}"
        var headerBytes = Data(header.utf8)
        let padding = (8 - headerBytes.count % 8) % 8
        headerBytes.append(contentsOf: [UInt8](repeating: 0x20, count: padding))

        var out = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(headerBytes)
        for name in sortedNames { out.append(tensors[name]!.data) }
        return out
    }

    /// Writes the file atomically: a temporary file in the same directory is written, fsynced and renamed
    /// over `path`, so a crash mid-write leaves either the old checkpoint or the new one, never a broken one.
    public func write(to path: String) throws(CheckpointError) {
        let bytes = serialized()
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .ioError(path: path, reason: "cannot create temporary file \(tmp): \(errnoString())")
        }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var failure: String?
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write failed: \(errnoString())"
                    return
                }
                done += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync failed: \(errnoString())" }
        if close(fd) != 0, failure == nil { failure = "close failed: \(errnoString())" }
        if let failure { throw .ioError(path: path, reason: failure) }
        guard rename(tmp, path) == 0 else {
            throw .ioError(path: path, reason: "cannot rename \(tmp) to it: \(errnoString())")
        }
        ok = true
        // Make the rename itself durable.
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            _ = close(dfd)
        }
    }

    // MARK: Reading

    /// Reads and validates the file at `path`.
    public static func read(from path: String) throws(CheckpointError) -> SafeTensorsFile {
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path) }
        let data: Data
        do { data = try UserFiles.read(path, what: "checkpoint") } catch { throw .ioError(path: path, reason: error.problem) }
        return try parse(data, source: path)
    }

    /// Parses and validates a whole file held in `data`; `source` names it in error messages.
    public static func parse(_ data: Data, source: String) throws(CheckpointError) -> SafeTensorsFile {
        let bytes = data
        let base = data.startIndex // a slice's indices need not start at 0
        guard bytes.count >= 8 else { throw .fileTooShort(source: source, size: bytes.count) }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[base + i]) << (8 * UInt64(i)) }
        guard n <= UInt64(bytes.count - 8) else {
            throw .headerTooLarge(source: source, headerLength: n, fileSize: bytes.count)
        }
        guard n <= maxHeaderLength else {
            throw .invalidHeader(source: source, reason: "header length \(n) exceeds the limit of \(maxHeaderLength) bytes")
        }
        let headerLength = Int(n)
        let headerData = bytes.subdata(in: (base + 8)..<(base + 8 + headerLength))
        guard headerLength >= 2, headerData.first == UInt8(ascii: "{") else {
            throw .invalidHeader(source: source, reason: "header is not a JSON object (it must start with '{')")
        }
        guard String(data: headerData, encoding: .utf8) != nil else {
            throw .invalidHeader(source: source, reason: "header is not valid UTF-8")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData, options: [])
        } catch {
            throw .invalidHeader(source: source, reason: "header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw .invalidHeader(source: source, reason: "header is not a JSON object")
        }

        var file = SafeTensorsFile()
        file.source = source
        let bufferStart = 8 + headerLength
        let bufferSize = bytes.count - bufferStart

        struct Entry { var name: String; var dtype: SafeTensorDType; var shape: [Int]; var begin: Int; var end: Int }
        var entries: [Entry] = []
        for name in object.keys.sorted() {
            let value = object[name]!
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw .invalidHeader(source: source, reason: "__metadata__ is not an object of strings")
                }
                for (k, v) in map {
                    guard let s = v as? String else {
                        throw .invalidHeader(source: source, reason: "__metadata__ value of '\(k)' is not a string")
                    }
                    file.metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw .invalidEntry(source: source, tensor: name, reason: "entry is not a JSON object")
            }
            for key in info.keys where !["dtype", "shape", "data_offsets"].contains(key) {
                throw .invalidEntry(source: source, tensor: name, reason: "unknown key '\(key)'")
            }
            guard let dtypeValue = info["dtype"] else {
                throw .invalidEntry(source: source, tensor: name, reason: "missing 'dtype'")
            }
            guard let dtypeName = dtypeValue as? String else {
                throw .invalidEntry(source: source, tensor: name, reason: "'dtype' is not a string")
            }
            guard let dtype = SafeTensorDType(rawValue: dtypeName) else {
                throw .unknownDType(source: source, tensor: name, dtype: dtypeName)
            }
            guard let shapeValue = info["shape"] else {
                throw .invalidEntry(source: source, tensor: name, reason: "missing 'shape'")
            }
            guard let shape = nonNegativeInts(shapeValue) else {
                throw .invalidEntry(source: source, tensor: name, reason: "'shape' is not an array of non-negative integers")
            }
            guard let offsetsValue = info["data_offsets"] else {
                throw .invalidEntry(source: source, tensor: name, reason: "missing 'data_offsets'")
            }
            guard let offsets = nonNegativeInts(offsetsValue), offsets.count == 2 else {
                throw .invalidEntry(source: source, tensor: name, reason: "'data_offsets' is not [begin, end] of non-negative integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end, end <= bufferSize else {
                throw .offsetsOutOfBounds(source: source, tensor: name, begin: begin, end: end, bufferSize: bufferSize)
            }
            var elements = 1
            for d in shape {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw .invalidEntry(source: source, tensor: name, reason: "shape \(shape) is too large")
                }
                elements = p
            }
            let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, expected == end - begin else {
                throw .sizeMismatch(source: source, tensor: name, shape: shape, dtype: dtypeName,
                                    expectedBytes: overflow ? Int.max : expected, actualBytes: end - begin)
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }

        // The buffer must be fully indexed: sorted by offset, each tensor starts where the previous ended.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        var previous: String?
        for e in entries {
            if e.begin < covered, let previous {
                throw .overlappingTensors(source: source, tensor: e.name, other: previous)
            }
            if e.begin > covered {
                throw .bufferNotCovered(source: source, begin: covered, end: e.begin, bufferSize: bufferSize)
            }
            covered = e.end
            previous = e.name
        }
        if covered != bufferSize {
            throw .bufferNotCovered(source: source, begin: covered, end: bufferSize, bufferSize: bufferSize)
        }

        for e in entries {
            let slice = bytes.subdata(in: (base + bufferStart + e.begin)..<(base + bufferStart + e.end))
            file.tensors[e.name] = SafeTensor(dtype: e.dtype.rawValue, shape: e.shape, data: slice)
        }
        return file
    }
}

// MARK: Helpers

/// An array of JSON integers (not booleans, not numbers written with a fraction or exponent), each ≥ 0;
/// nil otherwise.
private func nonNegativeInts(_ value: Any) -> [Int]? {
    guard let array = value as? [Any] else { return nil }
    var out: [Int] = []
    out.reserveCapacity(array.count)
    for item in array {
        guard let number = item as? NSNumber else { return nil }
        // JSONSerialization gives booleans objCType "c" and fractional/exponent numbers "d".
        let kind = String(cString: number.objCType)
        guard !["c", "d", "f"].contains(kind), let i = item as? Int, i >= 0 else { return nil }
        out.append(i)
    }
    return out
}

/// `s` as a JSON string literal (the same escaping as the JSON-lines logs).
func jsonString(_ s: String) -> String {
    var out = ""
    JSONValue.string(s).write(to: &out)
    return out
}

private func errnoString() -> String { String(cString: strerror(errno)) }
