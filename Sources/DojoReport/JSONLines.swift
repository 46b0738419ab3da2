// JSON-lines logs: one JSON object per line, appended and flushed line by line, so that a run killed at any
// moment leaves every finished line readable. `JSONLinesReader.truncate(path:afterStep:)` cuts a metrics log
// back to a checkpoint's step when a run resumes.
import Foundation

/// A JSON value. Objects are written with sorted keys; integral numbers below 2^53 without a fraction;
/// NaN and infinities as null (JSON has no spelling for them).
public enum JSONValue: Sendable, Equatable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
    public init(_ value: Int) { self = .number(Double(value)) }
    public init(_ value: Double) { self = .number(value) }
    public init(_ value: Float) { self = .number(Double(value)) }
    public init(_ value: String) { self = .string(value) }
    public init(_ value: Bool) { self = .bool(value) }

    public var doubleValue: Double? { if case .number(let v) = self { return v }; return nil }
    /// The number as an Int when it is integral.
    public var intValue: Int? {
        if case .number(let v) = self, v.rounded() == v, abs(v) < 9.0e18 { return Int(v) }
        return nil
    }
    public var stringValue: String? { if case .string(let v) = self { return v }; return nil }
    public var boolValue: Bool? { if case .bool(let v) = self { return v }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let v) = self { return v }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let v) = self { return v }; return nil }
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// Compact JSON text on one line.
    public var description: String {
        var out = ""
        write(to: &out)
        return out
    }

    /// Appends compact JSON text (keys sorted) to `out`.
    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let v): out += JSONValue.numberText(v)
        case .string(let s): JSONValue.appendString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let map):
            out += "{"
            for (i, key) in map.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSONValue.appendString(key, to: &out)
                out += ":"
                map[key]!.write(to: &out)
            }
            out += "}"
        }
    }

    static func numberText(_ v: Double) -> String {
        guard v.isFinite else { return "null" }
        if v.rounded() == v, abs(v) < 9_007_199_254_740_992 { return String(Int64(v)) }
        // Swift's description is the shortest text that reads back as the same Double ("0.1", "1e-05").
        return "\(v)"
    }

    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Parses one JSON text.
    public static func parse(_ text: String) throws(JSONLinesError) -> JSONValue {
        let any: Any
        do {
            any = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw .invalidJSON(path: "<string>", line: 1, text: String(text.prefix(80)))
        }
        return JSONValue(foundation: any)
    }

    /// Converts what JSONSerialization returns.
    init(foundation any: Any) {
        switch any {
        case let s as String: self = .string(s)
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" { self = .bool(n.boolValue) } else { self = .number(n.doubleValue) }
        case let a as [Any]: self = .array(a.map(JSONValue.init(foundation:)))
        case let o as [String: Any]: self = .object(o.mapValues(JSONValue.init(foundation:)))
        default: self = .null
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let v): if v.isFinite { try c.encode(v) } else { try c.encodeNil() }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

public enum JSONLinesError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case ioError(path: String, reason: String)
    case invalidJSON(path: String, line: Int, text: String)
    case notAnObject(path: String, line: Int)
    case encodingFailed(reason: String)
    case decodingFailed(path: String, line: Int, type: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "\(path): file not found"
        case .ioError(let path, let reason): return "\(path): \(reason)"
        case .invalidJSON(let path, let line, let text): return "\(path):\(line): not valid JSON: \(text)"
        case .notAnObject(let path, let line): return "\(path):\(line): line is not a JSON object"
        case .encodingFailed(let reason): return "cannot encode a JSON line: \(reason)"
        case .decodingFailed(let path, let line, let type, let reason):
            return "\(path):\(line): line does not match \(type): \(reason)"
        }
    }
}

/// Appends one JSON object per line to a file; each line goes to the file with one `write` call as soon as
/// it is appended (no buffering), so a killed process loses at most the line being written.
public final class JSONLinesWriter: @unchecked Sendable {
    public let path: String
    private var fd: Int32
    private let lock = NSLock()

    /// Opens `path` for appending, creating it if needed; `truncate: true` starts it empty.
    public init(path: String, truncate: Bool = false) throws(JSONLinesError) {
        self.path = path
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0)
        fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw .ioError(path: path, reason: "cannot open for appending: \(String(cString: strerror(errno)))") }
    }

    deinit { if fd >= 0 { _ = Foundation.close(fd) } }

    /// Appends one object as a line (keys sorted).
    public func append(_ object: [String: JSONValue]) throws(JSONLinesError) {
        var line = ""
        JSONValue.object(object).write(to: &line)
        try appendLine(line)
    }

    /// Appends any Encodable value (encoded with sorted keys) as a line.
    public func append<T: Encodable>(_ value: T) throws(JSONLinesError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let data: Data
        do { data = try encoder.encode(value) } catch { throw .encodingFailed(reason: "\(error)") }
        try appendLine(String(decoding: data, as: UTF8.self))
    }

    private func appendLine(_ text: String) throws(JSONLinesError) {
        let bytes = Array((text + "\n").utf8)
        lock.lock()
        defer { lock.unlock() }
        guard fd >= 0 else { throw .ioError(path: path, reason: "writer is closed") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .ioError(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Forces the lines written so far to disk.
    public func sync() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { _ = fsync(fd) }
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { _ = Foundation.close(fd); fd = -1 }
    }
}

/// Reads JSON-lines files back.
public enum JSONLinesReader {
    /// The result of reading a file: its objects, and whether a torn last line (no newline, not valid JSON —
    /// what a kill mid-write leaves) was dropped.
    public struct Contents: Sendable, Equatable {
        public var objects: [[String: JSONValue]]
        public var droppedTornLine: Bool
    }

    /// Every object in the file, in order; blank lines are skipped; a torn last line is dropped; any other
    /// bad line is an error naming the file and the line number.
    public static func read(path: String) throws(JSONLinesError) -> [[String: JSONValue]] {
        try readContents(path: path).objects
    }

    public static func readContents(path: String) throws(JSONLinesError) -> Contents {
        try parseLines(path: path).contents
    }

    /// Decodes every line as `T`.
    public static func decode<T: Decodable>(_ type: T.Type, path: String) throws(JSONLinesError) -> [T] {
        let lines = try parseLines(path: path).lines
        var out: [T] = []
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        for line in lines {
            do {
                out.append(try decoder.decode(T.self, from: Data(line.text.utf8)))
            } catch let DecodingError.keyNotFound(key, _) {
                throw .decodingFailed(path: path, line: line.number, type: "\(T.self)", reason: "missing key '\(key.stringValue)'")
            } catch {
                throw .decodingFailed(path: path, line: line.number, type: "\(T.self)", reason: "\(error)")
            }
        }
        return out
    }

    /// Cuts the log back so that it ends with the last line whose `key` (default "step") is ≤ `step`: every
    /// line from the first one with a larger step on is removed (a resumed run writes them again), and a torn
    /// last line is removed too. The file is replaced atomically (a new file under the same name), so call
    /// this before opening a `JSONLinesWriter` on it: a writer opened earlier keeps appending to the old file.
    /// Returns the number of lines kept.
    @discardableResult
    public static func truncate(path: String, afterStep step: Int, key: String = "step") throws(JSONLinesError) -> Int {
        let parsed = try parseLines(path: path)
        var kept: [String] = []
        for (line, object) in zip(parsed.lines, parsed.contents.objects) {
            if let s = object[key]?.doubleValue, s > Double(step) { break }
            kept.append(line.text)
        }
        let text = kept.map { $0 + "\n" }.joined()
        try replaceAtomically(path: path, with: Data(text.utf8))
        return kept.count
    }

    private struct Line { var number: Int; var text: String }

    private static func parseLines(path: String) throws(JSONLinesError) -> (lines: [Line], contents: Contents) {
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .ioError(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let endsWithNewline = text.hasSuffix("\n")
        var rawLines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if endsWithNewline { rawLines.removeLast() }
        var lines: [Line] = []
        var objects: [[String: JSONValue]] = []
        var torn = false
        for (i, raw) in rawLines.enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let isLast = i == rawLines.count - 1 && !endsWithNewline
            let value: JSONValue
            do {
                value = try JSONValue.parse(trimmed)
            } catch {
                if isLast { torn = true; break }
                throw .invalidJSON(path: path, line: i + 1, text: String(trimmed.prefix(80)))
            }
            guard let object = value.objectValue else {
                if isLast { torn = true; break }
                throw .notAnObject(path: path, line: i + 1)
            }
            lines.append(Line(number: i + 1, text: trimmed))
            objects.append(object)
        }
        return (lines, Contents(objects: objects, droppedTornLine: torn))
    }

    private static func replaceAtomically(path: String, with data: Data) throws(JSONLinesError) {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        do {
            try data.write(to: URL(fileURLWithPath: tmp))
        } catch {
            throw .ioError(path: path, reason: "cannot write \(tmp): \(error.localizedDescription)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw .ioError(path: path, reason: "cannot replace: \(String(cString: strerror(errno)))")
        }
    }
}
