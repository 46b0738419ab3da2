/// Every way a machine name or a machine file can be wrong. The description names the file and the key path,
/// so a user editing their own YAML file sees where: `tile.yaml: node.sram_bytes: must be positive, got -1`.
public enum MachineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Neither a preset (optionally scaled, `dgx-h100x8`) nor a readable file.
    case unknownMachine(String, known: [String])
    /// The file exists but cannot be read.
    case unreadable(file: String, reason: String)
    /// Not YAML, or YAML whose top is not a mapping.
    case invalidYAML(file: String, reason: String)
    /// A key the format does not define (strict decoding: typos are errors, not silently ignored).
    case unknownKey(file: String, path: String, allowed: [String])
    /// A key the format requires.
    case missingKey(file: String, path: String)
    /// A value of the wrong kind: a string where a number is needed, a mapping where a scalar is, a unit of the
    /// wrong dimension ("2GHz" for a byte count).
    case wrongType(file: String, path: String, expected: String, got: String)
    /// A value of the right type that is impossible: negative, zero where it must be positive, a mesh smaller
    /// than its node count, a section that the chosen top level does not use.
    case invalidValue(file: String, path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownMachine(name, known):
            return "unknown machine '\(name)': not a preset and not a readable file. Presets: "
                + known.joined(separator: ", ") + "; scale one with xN (dgx-h100x8, exapodx2)."
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .invalidYAML(file, reason):
            return "\(file): not a valid machine file: \(reason)"
        case let .unknownKey(file, path, allowed):
            return "\(file): \(path): unknown key (allowed here: \(allowed.joined(separator: ", ")))"
        case let .missingKey(file, path):
            return "\(file): \(path): missing key"
        case let .wrongType(file, path, expected, got):
            return "\(file): \(path): expected \(expected), got \(got)"
        case let .invalidValue(file, path, reason):
            return "\(file): \(path): \(reason)"
        }
    }
}

extension MachineError {
    /// The key path the error is about, if any.
    public var keyPath: String? {
        switch self {
        case let .unknownKey(_, path, _), let .missingKey(_, path), let .wrongType(_, path, _, _), let .invalidValue(_, path, _): return path
        default: return nil
        }
    }

    /// The same error said of another source (`--set node.clock=0 (on presets/tile.yaml)` instead of the preset's
    /// file, which the user never wrote).
    public func from(_ source: String) -> MachineError {
        switch self {
        case let .unknownKey(_, path, allowed): return .unknownKey(file: source, path: path, allowed: allowed)
        case let .missingKey(_, path): return .missingKey(file: source, path: path)
        case let .wrongType(_, path, expected, got): return .wrongType(file: source, path: path, expected: expected, got: got)
        case let .invalidValue(_, path, reason): return .invalidValue(file: source, path: path, reason: reason)
        case let .unreadable(_, reason): return .unreadable(file: source, reason: reason)
        case let .invalidYAML(_, reason): return .invalidYAML(file: source, reason: reason)
        case .unknownMachine: return self
        }
    }
}
