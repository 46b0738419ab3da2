import Yams

/// Where a parameter's value comes from: a published figure (with the source IDs of
/// `docs/SOURCES.md` §0, or NVIDIA's documents) or an assumption (with the reason).
public enum Provenance: Sendable, Equatable, Codable {
    case source(String)
    case assumption(String)
    /// Measured on the machine itself (`dojo machine calibrate`): how, and when.
    case measured(String)
    /// A bare value in a user's file.
    case user

    /// Whether the value is a published figure.
    public var isSource: Bool { if case .source = self { return true } else { return false } }

    public var text: String {
        switch self {
        case .source(let s): return s
        case .assumption(let s): return "ASSUMPTION: " + s
        case .measured(let s): return "MEASURED: " + s
        case .user: return "(user value)"
        }
    }
}

/// One parameter of a machine file as read: its key path, its value as written, and its provenance.
public struct Parameter: Sendable, Equatable, Codable {
    public var path: String
    public var value: String
    public var provenance: Provenance

    private enum CodingKeys: String, CodingKey { case path, value, source, assumption, measured }

    public init(path: String, value: String, provenance: Provenance) {
        self.path = path
        self.value = value
        self.provenance = provenance
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        value = try c.decode(String.self, forKey: .value)
        if let s = try c.decodeIfPresent(String.self, forKey: .source) {
            provenance = .source(s)
        } else if let a = try c.decodeIfPresent(String.self, forKey: .assumption) {
            provenance = .assumption(a)
        } else if let m = try c.decodeIfPresent(String.self, forKey: .measured) {
            provenance = .measured(m)
        } else {
            provenance = .user
        }
    }

    /// `{"path", "value", "source"}` or `{"path", "value", "assumption"}` (neither for a bare user value).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(value, forKey: .value)
        switch provenance {
        case .source(let s): try c.encode(s, forKey: .source)
        case .assumption(let a): try c.encode(a, forKey: .assumption)
        case .measured(let m): try c.encode(m, forKey: .measured)
        case .user: break
        }
    }
}

/// A YAML mapping read strictly: every key must be taken by the reader, `finish()` rejects the rest.
/// A parameter is a scalar (`sram_bytes: 1.25MB`) or a mapping with `value` and one of `source` / `assumption`:
/// `sram_bytes: {value: 1.25MB, source: "S2"}`.
struct Section {
    let file: String
    let path: String
    private let pairs: [(String, Node)]
    private var taken: Set<String> = []
    /// Optional parameters this section's reader asked for (`optional`), present or not: named among the allowed keys.
    private var optionalKeys: Set<String> = []
    private(set) var parameters: [Parameter] = []

    init(file: String, path: String, node: Node) throws {
        self.file = file
        self.path = path
        guard case .mapping(let m) = node else {
            throw MachineError.wrongType(file: file, path: path.isEmpty ? "(top)" : path, expected: "a mapping", got: describe(node))
        }
        var pairs: [(String, Node)] = []
        var seen: Set<String> = []
        for (k, v) in m {
            guard let key = k.string else {
                throw MachineError.wrongType(file: file, path: path.isEmpty ? "(top)" : path, expected: "string keys", got: describe(k))
            }
            if !seen.insert(key).inserted {
                throw MachineError.invalidValue(file: file, path: join(path, key), reason: "key given twice")
            }
            pairs.append((key, v))
        }
        self.pairs = pairs
    }

    func keyPath(_ key: String) -> String { join(path, key) }

    /// Takes in the parameters a nested section read (so that they are listed with their provenance).
    mutating func absorb(_ other: Section) { parameters += other.parameters }

    func has(_ key: String) -> Bool { pairs.contains { $0.0 == key } }

    /// Whether an optional parameter is given; either way it is a key this section allows.
    mutating func optional(_ key: String) -> Bool {
        optionalKeys.insert(key)
        return has(key)
    }

    /// The keys in file order.
    var keys: [String] { pairs.map(\.0) }

    private mutating func node(_ key: String) throws -> Node {
        taken.insert(key)
        guard let n = pairs.first(where: { $0.0 == key })?.1 else {
            throw MachineError.missingKey(file: file, path: keyPath(key))
        }
        return n
    }

    /// The scalar of a parameter, unwrapping `{value, source|assumption}`, recording its provenance.
    private mutating func scalar(_ key: String) throws -> String {
        let n = try node(key)
        let p = keyPath(key)
        switch n {
        case .scalar(let s):
            // Top-level structure (kind, top, count) is not a hardware parameter.
            if !path.isEmpty { parameters.append(Parameter(path: p, value: s.string, provenance: .user)) }
            return s.string
        case .mapping:
            var inner = try Section(file: file, path: p, node: n)
            let valueNode = try inner.node("value")
            guard case .scalar(let v) = valueNode else {
                throw MachineError.wrongType(file: file, path: join(p, "value"), expected: "a scalar", got: describe(valueNode))
            }
            let hasSource = inner.has("source"), hasAssumption = inner.has("assumption"), hasMeasured = inner.has("measured")
            guard [hasSource, hasAssumption, hasMeasured].filter({ $0 }).count == 1 else {
                throw MachineError.invalidValue(file: file, path: p, reason: "give exactly one of 'source', 'assumption' or 'measured' beside 'value'")
            }
            let provenance: Provenance = hasSource ? .source(try inner.string("source"))
                : hasAssumption ? .assumption(try inner.string("assumption")) : .measured(try inner.string("measured"))
            try inner.finish()
            parameters.append(Parameter(path: p, value: v.string, provenance: provenance))
            return v.string
        default:
            throw MachineError.wrongType(file: file, path: p, expected: "a scalar or {value, source|assumption}", got: describe(n))
        }
    }

    /// A plain string (not recorded as a parameter): names, summaries, sources.
    mutating func string(_ key: String) throws -> String {
        let n = try node(key)
        guard case .scalar(let s) = n else {
            throw MachineError.wrongType(file: file, path: keyPath(key), expected: "a string", got: describe(n))
        }
        return s.string
    }

    mutating func optionalString(_ key: String) throws -> String? {
        has(key) ? try string(key) : nil
    }

    mutating func bool(_ key: String) throws -> Bool {
        let s = try string(key)
        switch s.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw MachineError.wrongType(file: file, path: keyPath(key), expected: "true or false", got: "'\(s)'")
        }
    }

    /// A sub-section (a mapping of parameters).
    mutating func section(_ key: String) throws -> Section {
        try Section(file: file, path: keyPath(key), node: node(key))
    }

    /// An integer count.
    mutating func int(_ key: String, min: Int = 1) throws -> Int {
        let s = try scalar(key)
        guard let v = Int(s.trimmingSpaces()) else {
            throw MachineError.wrongType(file: file, path: keyPath(key), expected: "an integer", got: "'\(s)'")
        }
        guard v >= min else {
            throw MachineError.invalidValue(file: file, path: keyPath(key),
                                            reason: min == 1 ? "must be positive, got \(v)" : "must be at least \(min), got \(v)")
        }
        // every integer of a machine file counts something; two of them multiplied must still fit (Limits)
        guard v <= 1 << 31 else {
            throw MachineError.invalidValue(file: file, path: keyPath(key), reason: "\(v) is more than \(1 << 31), the most any count in a machine may be")
        }
        return v
    }

    /// A whole number in 1...most held as a Double (a block side, in elements).
    mutating func whole(_ key: String, most: Int) throws -> Double {
        let v = try number(key)
        guard v == v.rounded(), v >= 1, v <= Double(most) else {
            throw MachineError.invalidValue(file: file, path: keyPath(key), reason: "must be a whole number 1…\(most), got \(try scalar(key))")
        }
        return v
    }

    /// A plain number (a count of FLOP per cycle, a fraction…).
    mutating func number(_ key: String, positive: Bool = true) throws -> Double {
        let s = try scalar(key)
        guard let v = Double(s.trimmingSpaces()), v.isFinite else {
            throw MachineError.wrongType(file: file, path: keyPath(key), expected: "a number", got: "'\(s)'")
        }
        return try check(key, v, positive: positive, shown: s)
    }

    /// A fraction in (0, 1]: `0.9` or `90%`.
    mutating func fraction(_ key: String) throws -> Double {
        let s = try scalar(key).trimmingSpaces()
        let v: Double?
        if s.hasSuffix("%") { v = Double(String(s.dropLast()).trimmingSpaces()).map { $0 / 100 } } else { v = Double(s) }
        guard let v, v.isFinite else {
            throw MachineError.wrongType(file: file, path: keyPath(key), expected: "a fraction (0.9 or 90%)", got: "'\(s)'")
        }
        guard v > 0, v <= 1 else {
            throw MachineError.invalidValue(file: file, path: keyPath(key), reason: "must be in (0, 1], got \(s)")
        }
        guard v >= 1e-6 else {
            throw MachineError.invalidValue(file: file, path: keyPath(key), reason: "\(s) is below 1e-6: too small a share to compute with")
        }
        return v
    }

    /// A quantity with a unit (`2GHz`, `1.25 MB`) or a plain number in base units (`270e9` bytes/s). A bare number
    /// below 1,000 of a clock, a bandwidth or a FLOP rate is refused: a clock `2` read as 2 Hz gave a step of two million
    /// seconds, so such a value must say its unit (sizes and times, where 64 bytes or 0.002 s are natural, are not).
    mutating func quantity(_ key: String, _ dimension: Dimension, positive: Bool = true) throws -> Double {
        let s = try scalar(key)
        guard let v = parseQuantity(s, dimension) else {
            throw MachineError.wrongType(file: file, path: keyPath(key), expected: dimension.example, got: "'\(s)'")
        }
        if [.hertz, .bytesPerSecond, .flopsPerSecond].contains(dimension), v > 0, v < 1000, Double(s.trimmingSpaces()) != nil {
            throw MachineError.wrongType(file: file, path: keyPath(key), expected: "\(dimension.example): \(s.trimmingSpaces()) without a unit would be \(s.trimmingSpaces()) \(dimension.rawValue)", got: "'\(s)'")
        }
        return try check(key, v, positive: positive, shown: s)
    }

    /// One of a fixed set of words.
    mutating func choice(_ key: String, _ allowed: [String]) throws -> String {
        let s = try scalar(key).trimmingSpaces()
        guard allowed.contains(s) else {
            throw MachineError.invalidValue(file: file, path: keyPath(key),
                                            reason: "must be one of \(allowed.joined(separator: ", ")), got '\(s)'")
        }
        return s
    }

    private func check(_ key: String, _ v: Double, positive: Bool, shown: String) throws -> Double {
        if positive, v <= 0 {
            throw MachineError.invalidValue(file: file, path: keyPath(key), reason: "must be positive, got \(shown)")
        }
        if !positive, v < 0 {
            throw MachineError.invalidValue(file: file, path: keyPath(key), reason: "must not be negative, got \(shown)")
        }
        // Products and quotients of these stay finite only within this range (a 1e308 overhead gave a nan step).
        if v != 0 && !(v >= 1e-30 && v <= 1e30) {
            throw MachineError.invalidValue(file: file, path: keyPath(key), reason: "\(shown.trimmingSpaces()) is outside 1e-30…1e30 (in base units), the range the simulator computes in")
        }
        return v
    }

    /// Rejects keys nobody took (unknown keys), naming the allowed ones.
    func finish(allowed extra: [String] = []) throws {
        for (k, _) in pairs where !taken.contains(k) {
            throw MachineError.unknownKey(file: file, path: keyPath(k), allowed: Array(taken.union(optionalKeys).union(extra)).sorted())
        }
    }
}

func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

func describe(_ n: Node) -> String {
    switch n {
    case .scalar(let s): return "'\(s.string)'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}
