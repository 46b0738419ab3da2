import DojoCluster
import DojoMachine
import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

// Authentication and tenants.

extension JobService {
    // MARK: Authentication and tenants

    /// The admin token (also in `<database>.admin-token`).
    public var adminToken: String { adminTokenValue }

    /// `Bearer` token → who calls. Missing or unknown: 401.
    public func authenticate(token: String?) throws -> Principal {
        guard let token, !token.isEmpty else { throw ServiceError.unauthorized("missing token: send 'Authorization: Bearer TOKEN'") }
        let h = Tokens.hash(token)
        if Tokens.equal(h, adminHash) { return .admin }
        if let name = try store.db.read({ try String.fetchOne($0, sql: "SELECT name FROM tenant WHERE token_hash = ?", arguments: [h]) }) {
            return .tenant(name)
        }
        throw ServiceError.unauthorized("unknown token")
    }

    func requireAdmin(_ p: Principal, _ what: String) throws {
        guard p == .admin else { throw ServiceError.forbidden("\(what) needs the admin token") }
    }

    static func validName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, s.unicodeScalars.count <= 64, CharacterSet.alphanumerics.contains(f), f.isASCII else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    /// Admin: add a tenant with a quota of tiles (and how many more it may borrow), and whether its jobs may use the
    /// network; the answer carries its token.
    public func createTenant(name: String, quota: Int, borrowLimit: Int?, network: Bool = false, by p: Principal) throws -> TenantInfo {
        try requireAdmin(p, "adding a tenant")
        guard JobService.validName(name) else {
            throw ServiceError.unprocessable("tenant name '\(printable(name))': 1–64 characters, letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        let total = scheduler.inventory.count
        guard quota >= 0, quota <= total else { throw ServiceError.unprocessable("quota must be 0…\(total) tiles (the machine's), got \(quota)") }
        if let b = borrowLimit, b < 0 || b > total { throw ServiceError.unprocessable("borrow_limit must be 0…\(total) tiles, got \(b)") }
        let token = Tokens.make(prefix: "dojo_")
        let now = Date().timeIntervalSince1970
        try store.db.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM tenant WHERE name = ?", arguments: [name]) == true {
                throw ServiceError.conflict("tenant '\(name)' exists")
            }
            try db.execute(sql: "INSERT INTO tenant (name, quota, borrow_limit, token_hash, created, network) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [name, quota, borrowLimit, Tokens.hash(token), now, network])
            try JobService.audit(db, p, "create-tenant", name, "quota \(quota)" + (borrowLimit.map { ", borrow limit \($0)" } ?? "") + (network ? ", network" : ""), now)
        }
        scheduler.addTenant(Tenant(name, quota: quota, borrowLimit: borrowLimit))
        return TenantInfo(name: name, quota: quota, borrowLimit: borrowLimit, network: network, token: token)
    }

    /// Admin: every tenant (without tokens); a tenant: itself.
    public func tenants(by p: Principal) throws -> [TenantInfo] {
        let rows = try store.db.read { try Row.fetchAll($0, sql: "SELECT name, quota, borrow_limit, network FROM tenant ORDER BY name") }
        return rows.map { TenantInfo(name: $0["name"], quota: $0["quota"], borrowLimit: $0["borrow_limit"], network: $0["network"], token: nil) }
            .filter { p == .admin || $0.name == p.tenantName }
    }

    /// A tenant's number (its uid is the base + it) and whether its jobs get the network.
    func tenantPolicy(_ name: String) throws -> (number: Int, network: Bool) {
        guard let r = try store.db.read({ try Row.fetchOne($0, sql: "SELECT rowid AS n, network FROM tenant WHERE name = ?", arguments: [name]) }) else {
            throw ServiceError(.unprocessable, "tenant '\(name)' does not exist")
        }
        return (r["n"], r["network"])
    }

    // MARK: Audit

    /// Records an admin action in the same transaction as the action itself.
    static func audit(_ db: Database, _ p: Principal, _ action: String, _ target: String, _ detail: String, _ now: Double) throws {
        try db.execute(sql: "INSERT INTO audit (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                       arguments: [now, p.tenantName.map { "tenant \($0)" } ?? "admin", action, target, detail])
    }

    /// Admin: the audit log, newest first.
    public func auditLog(by p: Principal, limit: Int? = nil) throws -> [AuditEntry] {
        try requireAdmin(p, "reading the audit log")
        if let l = limit, l < 1 || l > 100_000 { throw ServiceError.badRequest("limit must be 1…100000, got \(l)") }
        return try store.db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit ?? 1000]).map {
                AuditEntry(id: $0["id"], time: $0["time"], actor: $0["actor"], action: $0["action"], target: $0["target"], detail: $0["detail"])
            }
        }
    }
}
