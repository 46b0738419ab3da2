import DojoService
import Foundation

/// A JSON value as sent by a client, decoded without any schema, so that the server can name the field that is
/// wrong (JSONDecoder into a Codable struct would ignore unknown keys and report type errors by coding path).
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else if let o = try? c.decode([String: JSONValue].self) { self = .object(o) }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value") }
    }

    /// What a client sees in an error message: `a string`, `a number`, ….
    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Reads one JSON object strictly: every key must be known, every value of the right type; errors are 400s that
/// name the field.
struct StrictObject {
    let fields: [String: JSONValue]
    let what: String

    /// Parses `data` as one JSON object whose keys are all in `allowed`.
    init(_ data: Data, allowed: Set<String>, what: String) throws {
        self.what = what
        if data.isEmpty { throw ServiceError.badRequest("\(what): the body is empty; send a JSON object") }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw ServiceError.badRequest("\(what): the body is not valid JSON (\(Self.describe(error)))")
        }
        guard case .object(let o) = value else {
            throw ServiceError.badRequest("\(what): the body must be a JSON object, got \(value.kind)")
        }
        if let unknown = o.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw ServiceError.badRequest("\(what): unknown field '\(Self.clip(unknown))' (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        fields = o
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let c) = error {
            let inner = (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return inner ?? c.debugDescription
        }
        return "\(error)"
    }

    static func clip(_ s: String) -> String { s.count > 60 ? String(s.prefix(60)) + "…" : s }

    private func wrongType(_ key: String, _ want: String, _ got: JSONValue) -> ServiceError {
        .badRequest("\(what): field '\(key)' must be \(want), got \(got.kind)")
    }

    /// A boolean field (null or absent: nil).
    func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case let v?: throw wrongType(key, "true or false", v)
        }
    }

    /// A string field (null or absent: nil).
    func string(_ key: String, required: Bool = false) throws -> String? {
        switch fields[key] {
        case nil, .null?:
            if required { throw ServiceError.badRequest("\(what): field '\(key)' is missing") }
            return nil
        case .string(let s)?: return s
        case let v?: throw wrongType(key, "a string", v)
        }
    }

    /// A whole-number field (null or absent: nil). `2.0` is accepted as 2; `2.5` is not.
    func int(_ key: String, required: Bool = false) throws -> Int? {
        switch fields[key] {
        case nil, .null?:
            if required { throw ServiceError.badRequest("\(what): field '\(key)' is missing") }
            return nil
        case .int(let i)?: return i
        case .double(let d)?:
            if d.isFinite, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
            if d.isFinite, d == d.rounded() { throw ServiceError.badRequest("\(what): field '\(key)' is out of range, got \(d)") }
            throw ServiceError.badRequest("\(what): field '\(key)' must be a whole number, got \(d)")
        case let v?: throw wrongType(key, "a whole number", v)
        }
    }

    /// A number field (null or absent: nil).
    func double(_ key: String) throws -> Double? {
        switch fields[key] {
        case nil, .null?: return nil
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        case let v?: throw wrongType(key, "a number", v)
        }
    }

    /// An array of whole numbers.
    func ints(_ key: String) throws -> [Int]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let a)?:
            return try a.enumerated().map { i, v in
                if case .int(let n) = v { return n }
                if case .double(let d) = v, d.isFinite, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
                throw ServiceError.badRequest("\(what): field '\(key)[\(i)]' must be a whole number, got \(v.kind)")
            }
        case let v?: throw wrongType(key, "an array of whole numbers", v)
        }
    }

    /// An array of strings.
    func strings(_ key: String, required: Bool = false) throws -> [String]? {
        switch fields[key] {
        case nil, .null?:
            if required { throw ServiceError.badRequest("\(what): field '\(key)' is missing") }
            return nil
        case .array(let a)?:
            return try a.enumerated().map { i, v in
                guard case .string(let s) = v else {
                    throw ServiceError.badRequest("\(what): field '\(key)[\(i)]' must be a string, got \(v.kind)")
                }
                return s
            }
        case let v?: throw wrongType(key, "an array of strings", v)
        }
    }
}

extension JobSubmission {
    static let jsonFields: Set<String> = ["name", "command", "tiles", "shape", "priority", "time_limit", "retries", "checkpoint_dir", "tenant", "depends_on", "ranks"]

    /// A submission from a request body, strictly: unknown fields and wrong types are 400s naming the field.
    static func strict(_ data: Data) throws -> JobSubmission {
        let o = try StrictObject(data, allowed: jsonFields, what: "job")
        return JobSubmission(
            name: try o.string("name"), command: try o.strings("command", required: true) ?? [],
            tiles: try o.int("tiles"), shape: try o.string("shape"), priority: try o.int("priority"),
            timeLimit: try o.double("time_limit"), retries: try o.int("retries"),
            checkpointDir: try o.string("checkpoint_dir"), tenant: try o.string("tenant"), dependsOn: try o.ints("depends_on"),
            ranks: try o.int("ranks"))
    }
}

/// The body of `POST /v1/tenants`.
struct TenantRequest {
    var name: String
    var quota: Int
    var borrowLimit: Int?
    var network: Bool

    static func strict(_ data: Data) throws -> TenantRequest {
        let o = try StrictObject(data, allowed: ["name", "quota", "borrow_limit", "network"], what: "tenant")
        return TenantRequest(name: try o.string("name", required: true)!, quota: try o.int("quota", required: true)!,
                             borrowLimit: try o.int("borrow_limit"), network: try o.bool("network") ?? false)
    }
}
