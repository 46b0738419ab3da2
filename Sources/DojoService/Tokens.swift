import Crypto
import Foundation

/// Tokens: made from 256 random bits and stored only as SHA-256 hashes, both from swift-crypto.
public enum Tokens {
    /// The lowercase hex SHA-256 of a token's UTF-8 bytes (what the store keeps).
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// `prefix` and 64 hex digits of a fresh 256-bit key.
    public static func make(prefix: String) -> String {
        prefix + SymmetricKey(size: .bits256).withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    /// Compares two hashes in time that does not depend on where they differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var d: UInt8 = 0
        for i in x.indices { d |= x[i] ^ y[i] }
        return d == 0
    }
}
