import Foundation
import GRDB

/// The durable state: tenants, tiles, jobs, their transitions and attempts, in one SQLite file (GRDB).
/// Every change of a job is one transaction, written before the controller acts on it.
struct Store: Sendable {
    let db: DatabaseQueue

    init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(5)
        do {
            db = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw ServiceError(.internalError, "cannot open the database \(path): \(error)")
        }
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE tenant (name TEXT PRIMARY KEY, quota INTEGER NOT NULL, borrow_limit INTEGER,
                                     token_hash TEXT NOT NULL UNIQUE, created REAL NOT NULL);
                CREATE TABLE tile (id INTEGER PRIMARY KEY, health TEXT NOT NULL, since REAL NOT NULL, cause TEXT);
                CREATE TABLE job (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    tenant TEXT NOT NULL REFERENCES tenant(name),
                    name TEXT NOT NULL, command TEXT NOT NULL,
                    shape_w INTEGER NOT NULL, shape_h INTEGER NOT NULL,
                    priority INTEGER NOT NULL, time_limit REAL NOT NULL, retries INTEGER NOT NULL,
                    checkpoint_dir TEXT NOT NULL,
                    state TEXT NOT NULL, reason TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
                    pod INTEGER, x INTEGER, y INTEGER, w INTEGER, h INTEGER,
                    submit_time REAL NOT NULL, start_time REAL, end_time REAL, exit_code INTEGER,
                    stop_reason TEXT, stop_deadline REAL,
                    reaped INTEGER NOT NULL DEFAULT 1,
                    depends_on TEXT NOT NULL DEFAULT '[]');
                CREATE INDEX job_state ON job(state);
                CREATE INDEX job_tenant ON job(tenant, id);
                CREATE INDEX job_unreaped ON job(reaped) WHERE reaped = 0;
                CREATE TABLE transition (job INTEGER NOT NULL REFERENCES job(id), state TEXT NOT NULL, time REAL NOT NULL,
                                         detail TEXT NOT NULL);
                CREATE INDEX transition_job ON transition(job);
                CREATE TABLE attempt (job INTEGER NOT NULL REFERENCES job(id), n INTEGER NOT NULL, tenant TEXT NOT NULL,
                                      tiles INTEGER NOT NULL, start REAL NOT NULL, end REAL, outcome TEXT, exit_code INTEGER,
                                      PRIMARY KEY (job, n));
                CREATE INDEX attempt_tenant ON attempt(tenant);
                """)
        }
        // The sandbox: a tenant may be allowed the network; admin actions are audited.
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE tenant ADD COLUMN network INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, actor TEXT NOT NULL,
                                    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL);
                """)
        }
        m.registerMigration("v3") { db in
            try db.execute(sql: "ALTER TABLE job ADD COLUMN ranks INTEGER NOT NULL DEFAULT 1")
        }
        do { try m.migrate(db) } catch {
            throw ServiceError(.internalError, "\(path) is not an OpenDojo job database: \(error)")
        }
    }

    func meta(_ key: String) throws -> String? {
        try db.read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }
}

/// A job's row.
struct JobRow: Sendable {
    var id: Int, tenant: String, name: String, command: [String]
    var shapeW: Int, shapeH: Int, priority: Int, timeLimit: Double, retries: Int, checkpointDir: String
    var state: JobPhase, reason: String?, attempts: Int, failures: Int
    var pod: Int?, x: Int?, y: Int?, w: Int?, h: Int?
    var submitTime: Double, startTime: Double?, endTime: Double?, exitCode: Int?
    var stopReason: String?, stopDeadline: Double?
    var dependsOn: [Int]
    var ranks: Int

    init(row r: Row) {
        id = r["id"]; tenant = r["tenant"]; name = r["name"]
        command = (try? JSONDecoder().decode([String].self, from: Data((r["command"] as String).utf8))) ?? []
        shapeW = r["shape_w"]; shapeH = r["shape_h"]; priority = r["priority"]; timeLimit = r["time_limit"]
        retries = r["retries"]; checkpointDir = r["checkpoint_dir"]
        state = JobPhase(rawValue: r["state"]) ?? .failed; reason = r["reason"]
        attempts = r["attempts"]; failures = r["failures"]
        pod = r["pod"]; x = r["x"]; y = r["y"]; w = r["w"]; h = r["h"]
        submitTime = r["submit_time"]; startTime = r["start_time"]; endTime = r["end_time"]; exitCode = r["exit_code"]
        stopReason = r["stop_reason"]; stopDeadline = r["stop_deadline"]
        dependsOn = (try? JSONDecoder().decode([Int].self, from: Data((r["depends_on"] as String? ?? "[]").utf8))) ?? []
        ranks = max(1, (r["ranks"] as Int?) ?? 1)
    }
}
