import ArgumentParser
import DojoCluster
import DojoReport
import DojoServer
import DojoService
import Foundation

// The job service from the command line (issue 4 §5): `dojo serve` runs it; the other commands are its HTTP clients
// (--server, default $DOJO_SERVER or http://127.0.0.1:8080; --token, default $DOJO_TOKEN).

/// `dojo serve`: the job service with its HTTP API, dashboard and metrics.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the job service: the scheduler, workers, HTTP API (/v1), dashboard (/) and metrics (/metrics).",
        discussion: """
        State lives in the SQLite file --db (created when missing); the admin token is written beside it to \
        <db>.admin-token. SIGINT or SIGTERM stop the server; running jobs keep running and the next start adopts them. \
        Every job runs in a sandbox (bubblewrap: its own namespaces, the system read-only, only its work and checkpoint \
        folders writable, loopback only unless its tenant has --network; as a per-tenant uid when run as root) under \
        CPU, memory and process limits from its DPU (cgroups) and a disk limit per tenant; the first lines say which. \
        Then: dojo tenant add NAME --quota N --token-file <db>.admin-token; dojo submit …; open the dashboard URL.
        """)

    @Option(help: "The SQLite database (created when missing; the server's job folders go to <db>.jobs/, tenants' storage to <db>.tenants/).")
    var db: String
    @Option(help: "A Dojo machine preset or file (dojo machines; default: the database's, exapod for a new one); fixed when the database is created.")
    var machine: String?
    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).")
    var port = 8080
    @Option(help: "Scheduling policy: fifo, fifo-backfill or opendojo.")
    var policy = "opendojo"
    @Option(help: "Seconds between SIGTERM and SIGKILL (preemption, time limit, cancel).")
    var grace = 10.0
    @Option(help: "Random tile faults per tile-hour (0: none; for trying the failure path).")
    var faultsPerTileHour = 0.0
    @Option(help: "Seconds between controller rounds.")
    var tick = 0.2
    @Option(help: "How jobs are contained: bwrap (bubblewrap namespaces; per-tenant uids when run as root) or none (jobs run unconfined as this user: a single trusted user only).")
    var sandbox = "bwrap"
    @Option(help: "CPU cores per tile of a job's DPU (cgroup quota; 0: no limit). ASSUMPTION: a tile's work runs on one host core.")
    var cpuPerTile = 1.0
    @Option(help: "Memory per tile of a job's DPU, e.g. 4G, 512M (cgroup limit; over it a job ends OUT_OF_MEMORY; 0: no limit).")
    var memoryPerTile = "4G"
    @Option(help: "Processes and threads one job may have (cgroup pids; 0: no limit).")
    var pidsPerJob = 1024
    @Option(help: "Disk a tenant's storage may hold, e.g. 20G (its running jobs are killed above it; also the largest file or log; 0: no limit).")
    var diskPerTenant = "20G"
    @Option(help: "Files and folders a tenant's storage may hold (its running jobs that add more are killed above it).")
    var filesPerTenant = 200_000
    @Option(help: "Jobs a tenant may have waiting (PENDING or REQUEUED); more submissions are refused with 429.")
    var maxQueuedPerTenant = 1000
    @Option(help: "Running as root, tenant n runs its jobs as uid BASE+n (no passwd entries needed).")
    var tenantUidBase = 1_900_000
    @Option(help: "The hosts that serve the machine's tiles, one a line: `ADDRESS tiles=0-5,12 cores=8` (every tile on one host). A job's ranks then run on the hosts of its DPU's tiles, started by mpirun through --host-launcher, in the job's sandbox on each host (dojo, its data and the database's folder at the same paths on every host); a host that stops answering fails its tiles and their jobs requeue. Default: every job runs on this host.")
    var hosts: String?
    @Option(help: "With --hosts: the program that starts Open MPI's daemon on a host, called as `PROGRAM HOST COMMAND` (default: ssh; scripts/netns-hosts.sh --agent writes one for namespace hosts).")
    var hostLauncher: String?
    @Option(help: "With --hosts: the network ranks talk over, as CIDR (e.g. 10.99.1.0/24); Open MPI picks otherwise.")
    var hostNetwork: String?
    @Option(help: "With --hosts: the TCP port probed every second to see that a host answers (a refused connection answers too).")
    var hostProbePort = 22
    @Option(help: "With --hosts: seconds a host may not answer before its tiles fail.")
    var hostTimeout = 5.0
    @Option(help: "PEM certificate chain: serve HTTPS (with --tls-key), so tokens from other hosts do not cross the network in clear.")
    var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    func run() throws {
        guard let p = Policy(rawValue: policy) else {
            throw ClientError("unknown policy '\(policy)' (fifo, fifo-backfill, opendojo)")
        }
        guard (0...65535).contains(port) else { throw ClientError("--port must be 0…65535, got \(port)") }
        guard grace >= 0, grace.isFinite else { throw ClientError("--grace must be ≥ 0 seconds, got \(grace)") }
        guard faultsPerTileHour >= 0, faultsPerTileHour.isFinite else {
            throw ClientError("--faults-per-tile-hour must be ≥ 0, got \(faultsPerTileHour)")
        }
        guard tick > 0, tick.isFinite else { throw ClientError("--tick must be > 0 seconds, got \(tick)") }
        guard let mode = SandboxMode(rawValue: sandbox) else { throw ClientError("--sandbox must be bwrap or none, got '\(sandbox)'") }
        guard cpuPerTile >= 0, cpuPerTile.isFinite, cpuPerTile <= 1024 else { throw ClientError("--cpu-per-tile must be 0…1024 cores, got \(cpuPerTile)") }
        guard (0...1 << 22).contains(pidsPerJob) else { throw ClientError("--pids-per-job must be 0…4194304, got \(pidsPerJob)") }
        guard (1...Int(Int32.max) - 100_000).contains(tenantUidBase) else { throw ClientError("--tenant-uid-base must be 1…\(Int(Int32.max) - 100_000), got \(tenantUidBase)") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ClientError("--tls-cert and --tls-key go together (the certificate chain and its private key, PEM)") }
        let tls = tlsCert.map { TLSFiles(certificateChain: $0, privateKey: tlsKey!) }
        let scheme = tls == nil ? "http" : "https"
        guard (1...100_000_000).contains(filesPerTenant) else { throw ClientError("--files-per-tenant must be 1…100000000, got \(filesPerTenant)") }
        guard (1...1_000_000).contains(maxQueuedPerTenant) else { throw ClientError("--max-queued-per-tenant must be 1…1000000, got \(maxQueuedPerTenant)") }
        let memory = try parseBytes(memoryPerTile, flag: "--memory-per-tile")
        let disk = try parseBytes(diskPerTenant, flag: "--disk-per-tenant")
        if memory > 0 && memory < 16 << 20 { throw ClientError("--memory-per-tile must be 0 (no limit) or at least 16M, got \(memoryPerTile)") }
        var options = ServiceOptions(database: db, machine: machine, policy: p, grace: grace, tickInterval: tick,
                                     faultsPerTileHour: faultsPerTileHour, sandbox: mode,
                                     limits: SandboxLimits(cpuPerTile: cpuPerTile, memoryPerTile: memory, pidsPerJob: pidsPerJob, diskPerTenant: disk,
                                                           filesPerTenant: filesPerTenant),
                                     tenantUIDBase: tenantUidBase)
        options.reapOrphans = true
        options.maxQueuedPerTenant = maxQueuedPerTenant
        options.hostFile = hosts
        options.hostLauncher = hostLauncher
        options.hostNetwork = hostNetwork
        options.hostProbePort = hostProbePort
        options.hostDownAfter = hostTimeout
        let opts = options
        let host = self.host, db = self.db, policy = self.policy
        let outcome = runBlocking {
            try await DojoServer.serve(options: opts, host: host, port: self.port, tls: tls) { port, machineName, notes in
                let shown = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
                // Unbuffered, so that whoever started the server sees the URL at once (stdout may be a pipe).
                FileHandle.standardOutput.write(Data("""
                    OpenDojo service on \(scheme)://\(shown):\(port) (machine \(machineName), policy \(policy), database \(db))
                    admin token: \(db).admin-token
                    dashboard:   \(scheme)://\(shown):\(port)/#token=TOKEN    API: \(scheme)://\(shown):\(port)/openapi.yaml    metrics: /metrics
                    stop with Ctrl-C (running jobs keep running; the next start adopts them)

                    """.utf8) + Data(notes.map { $0 + "\n" }.joined().utf8))
            }
        }
        if case .failure(let error) = outcome {
            if let e = error as? ServiceError { throw ClientError(e.message) }
            throw ClientError("cannot serve: \(error)")
        }
        print("stopped")
    }
}

/// "4G", "512M", "64K", "1073741824" → bytes (powers of 1024); 0 turns a limit off.
func parseBytes(_ s: String, flag: String) throws -> Int64 {
    let t = s.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [(String, Int64)] = [("TIB", 1 << 40), ("GIB", 1 << 30), ("MIB", 1 << 20), ("KIB", 1 << 10), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
    var number = t, scale: Int64 = 1
    for (u, v) in units where t.hasSuffix(u) { number = String(t.dropLast(u.count)).trimmingCharacters(in: .whitespaces); scale = v; break }
    guard let x = Double(number), x.isFinite, x >= 0, x * Double(scale) < 9e18 else {
        throw ClientError("\(flag) must be a size like 4G, 512M or 0, got '\(s)'")
    }
    return Int64(x * Double(scale))
}

/// Runs async work to its end from a synchronous command.
func runBlocking(_ work: @escaping @Sendable () async throws -> Void) -> Result<Void, any Error> {
    final class Box: @unchecked Sendable { var result: Result<Void, any Error> = .success(()) }
    let box = Box(), done = DispatchSemaphore(value: 0)
    Task {
        do { try await work() } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return box.result
}

/// `dojo submit`: queue a job.
struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a job to the service: dojo submit --tiles 6 -- dojo train --epochs 1.",
        discussion: "Prints 'Submitted job ID …' (just the id with --parsable). The job learns its DPU from DOJO_* environment variables.")

    @OptionGroup var connection: ServerOptions
    @Option(help: "Tiles wanted (the smallest allowed shape holding them).")
    var tiles: Int?
    @Option(help: "An allowed DPU shape WxH instead of --tiles (e.g. 2x3).")
    var shape: String?
    @Option(help: "A name (default: the program's).")
    var name: String?
    @Option(help: "Higher runs first.")
    var priority: Int?
    @Option(help: "Wall-clock limit in seconds (default 3600).")
    var timeLimit: Double?
    @Option(help: "Restarts after a non-zero exit before the job is FAILED.")
    var retries: Int?
    @Option(help: "Where the job keeps checkpoints (DOJO_CHECKPOINT_DIR).")
    var checkpointDir: String?
    @Option(help: "Submit for this tenant (admin token only).")
    var tenant: String?
    @Option(help: "Start only after these jobs (comma-separated ids) have completed; if one ends otherwise, this job is cancelled.")
    var after: String?
    @Option(help: "Processes under Open MPI (at most the tiles and the host's cores): dojo train gets --ranks N (data-parallel), another program runs as mpirun -n N PROGRAM.")
    var ranks: Int?
    @Flag(help: "Print only the job id.")
    var parsable = false
    @Argument(parsing: .postTerminator, help: "-- PROGRAM ARGS...: the job's command after '--' (argv, not a shell line).")
    var command: [String] = []

    func run() throws {
        var argv = command
        if argv.first == "--" { argv.removeFirst() }
        guard !argv.isEmpty else { throw ClientError("no command: dojo submit [options] -- PROGRAM ARGS...") }
        if tiles != nil && shape != nil { throw ClientError("give --tiles or --shape, not both") }
        var deps: [Int]? = nil
        if let after {
            deps = try after.split(separator: ",", omittingEmptySubsequences: false).map {
                guard let d = Int($0.trimmingCharacters(in: .whitespaces)), d > 0 else {
                    throw ClientError("--after: expected job ids separated by commas, got '\(after)'")
                }
                return d
            }
        }
        let s = JobSubmission(name: name, command: argv, tiles: shape == nil ? (tiles ?? 1) : nil, shape: shape,
                              priority: priority, timeLimit: timeLimit, retries: retries, checkpointDir: checkpointDir,
                              tenant: tenant, dependsOn: deps, ranks: ranks)
        let job = try connection.client().post(JobInfo.self, "/v1/jobs", s)
        if parsable { print(job.id); return }
        print("Submitted job \(job.id) '\(job.name)' for \(job.tenant): \(job.shape) (\(job.tiles) tile\(job.tiles == 1 ? "" : "s"))\(job.ranks > 1 ? ", \(job.ranks) ranks" : ""), \(job.state.rawValue)\(job.reason.map { " (\($0))" } ?? "")")
    }
}

/// `dojo jobs`: the queue, like squeue.
struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List jobs like squeue: queued and running (--all: finished too), with the reason each one waits.")

    @OptionGroup var connection: ServerOptions
    @Flag(help: "Also finished jobs.")
    var all = false
    @Option(help: "Only these states, comma-separated (e.g. PENDING,RUNNING).")
    var state: String?
    @Option(help: "Only this tenant's jobs (admin).")
    var tenant: String?
    @Option(help: "At most this many (newest first).")
    var limit: Int?

    func run() throws {
        var q: [(String, String)] = []
        if let state { q.append(("state", state)) }
        else if !all { q.append(("state", "PENDING,REQUEUED,RUNNING,PREEMPTED,NODE_FAIL")) }
        if let tenant { q.append(("tenant", tenant)) }
        if let limit { q.append(("limit", "\(limit)")) }
        let jobs = try connection.client().get([JobInfo].self, "/v1/jobs", query: q)
        print(jobsTable(jobs), terminator: "")
    }
}

/// The squeue-like table: `NODELIST(REASON)` is the DPU of a running job, the reason of a waiting one.
func jobsTable(_ jobs: [JobInfo], now: Double = Date().timeIntervalSince1970) -> String {
    var t = TextTable(headers: ["JOBID", "TENANT", "NAME", "STATE", "SHAPE", "TILES", "PRIO", "TIME", "TIME_LIMIT", "DPU(REASON)"],
                      alignments: [.right, .left, .left, .left, .left, .right, .right, .right, .right, .left])
    for j in jobs.sorted(by: { $0.id < $1.id }) {
        let where_: String
        if j.state.isActive, let d = j.dpu { where_ = dpuText(d) }
        else if let r = j.reason, !r.isEmpty { where_ = "(\(r))" }
        else { where_ = dpuText(j.dpu) }
        t.addRow(["\(j.id)", j.tenant, j.name.count > 24 ? String(j.name.prefix(23)) + "…" : j.name, j.state.rawValue, j.shape, "\(j.tiles)",
                  "\(j.priority)", squeueTime(elapsed(j, now: now)), squeueTime(j.timeLimit), where_])
    }
    return t.render() + (jobs.isEmpty ? "(no jobs)\n" : "")
}

/// `dojo job show|logs ID`.
struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "One job: every field and its transitions (show), or its output (logs).",
        subcommands: [Show.self, Logs.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every field of a job and its timestamped transitions.")
        @OptionGroup var connection: ServerOptions
        @Argument(help: "The job id.")
        var id: Int
        @Flag(help: "The server's JSON as is.")
        var json = false

        func run() throws {
            let client = try connection.client()
            if json {
                print(String(decoding: try client.send("GET", "/v1/jobs/\(id)"), as: UTF8.self))
                return
            }
            print(jobDetails(try client.get(JobInfo.self, "/v1/jobs/\(id)")), terminator: "")
        }
    }

    struct Logs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A job's output: stdout and stderr of every attempt.")
        @OptionGroup var connection: ServerOptions
        @Argument(help: "The job id.")
        var id: Int
        @Option(help: "Only the last BYTES bytes.")
        var tail: Int?
        @Flag(help: "Write the bytes as they are, even to a terminal (by default escape sequences and other control characters a job printed are shown as \\u{…} on a terminal, so that a job's output cannot drive yours).")
        var raw = false

        func run() throws {
            let data = try connection.client().send("GET", "/v1/jobs/\(id)/logs", query: tail.map { [("tail", "\($0)")] } ?? [])
            guard !raw, isatty(1) == 1 else { FileHandle.standardOutput.write(data); return }
            FileHandle.standardOutput.write(Data(terminalSafe(String(decoding: data, as: UTF8.self)).utf8))
        }
    }
}

func jobDetails(_ j: JobInfo, now: Double = Date().timeIntervalSince1970) -> String {
    func fmt(_ d: Double) -> String { formatFixed(d, d == d.rounded() ? 0 : 1) }
    var rows: [(String, String)] = [
        ("JobId", "\(j.id)"), ("Name", j.name), ("Tenant", j.tenant),
        ("Command", j.command.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")),
        ("State", j.state.rawValue), ("Reason", j.reason ?? "-"),
        ("Shape", "\(j.shape) (\(j.tiles) tile\(j.tiles == 1 ? "" : "s"))"), ("DPU", dpuText(j.dpu)),
        ("DPUTiles", j.dpu.map { $0.tiles.map(String.init).joined(separator: ",") } ?? "-"),
        ("Priority", "\(j.priority)"), ("TimeLimit", "\(squeueTime(j.timeLimit)) (\(fmt(j.timeLimit)) s)"),
        ("Retries", "\(j.retries)"), ("Attempts", "\(j.attempts)"),
        ("SubmitTime", timeText(j.submitTime)), ("StartTime", timeText(j.startTime)), ("EndTime", timeText(j.endTime)),
        ("RunTime", squeueTime(elapsed(j, now: now))), ("ExitCode", j.exitCode.map(String.init) ?? "-"),
        ("TileSeconds", formatFixed(j.tileSeconds, 1)), ("CheckpointDir", j.checkpointDir),
        ("DependsOn", j.dependsOn.isEmpty ? "-" : j.dependsOn.map(String.init).joined(separator: ",")), ("Ranks", "\(j.ranks)"),
    ]
    let width = rows.map(\.0.count).max()! + 1
    var out = rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + " " + $0.1 }.joined(separator: "\n") + "\n"
    out += "Transitions:\n"
    if j.transitions.isEmpty { out += "  (none)\n" }
    for t in j.transitions {
        out += "  \(timeText(t.time))  \(t.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0))  \(t.detail)\n"
    }
    rows.removeAll()
    return out
}

/// `dojo cancel ID`.
struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a job: at once when queued; a running one gets SIGTERM, a grace period, then SIGKILL.")
    @OptionGroup var connection: ServerOptions
    @Argument(help: "The job id.")
    var id: Int

    func run() throws {
        let j = try connection.client().post(JobInfo.self, "/v1/jobs/\(id)/cancel")
        print("Job \(j.id) '\(j.name)': \(j.state.rawValue)\(j.state.isFinal ? "" : " (cancel requested; it stops within the grace period)")")
    }
}

/// `dojo usage`: tile-seconds per tenant, like sreport.
struct UsageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Tile-hours used per tenant, like sreport (a tenant sees its own row).")
    @OptionGroup var connection: ServerOptions

    func run() throws {
        let rows = try connection.client().get([UsageRow].self, "/v1/usage")
        print(usageTable(rows), terminator: "")
    }
}

func usageTable(_ rows: [UsageRow]) -> String {
    var t = TextTable(headers: ["TENANT", "QUOTA", "JOBS", "ATTEMPTS", "TILE-SECONDS", "TILE-HOURS", "SHARE"],
                      alignments: [.left] + Array(repeating: .right, count: 6))
    let total = rows.reduce(0) { $0 + $1.tileSeconds }
    for r in rows.sorted(by: { $0.tenant < $1.tenant }) {
        t.addRow([r.tenant, "\(r.quota)", "\(r.jobs)", "\(r.attempts)", formatFixed(r.tileSeconds, 1), formatFixed(r.tileSeconds / 3600, 3),
                  total > 0 ? formatFixed(100 * r.tileSeconds / total, 1) + "%" : "-"])
    }
    if rows.count > 1 {
        t.addRow(["total", "\(rows.reduce(0) { $0 + $1.quota })", "\(rows.reduce(0) { $0 + $1.jobs })", "\(rows.reduce(0) { $0 + $1.attempts })",
                  formatFixed(total, 1), formatFixed(total / 3600, 3), total > 0 ? "100.0%" : "-"])
    }
    return t.render() + (rows.isEmpty ? "(no tenants)\n" : "")
}

/// `dojo tenant add|list` (admin).
struct TenantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Add a tenant and print its token, or list tenants (admin token: --token-file <db>.admin-token).",
        subcommands: [Add.self, List.self])

    struct Body: Encodable {
        var name: String, quota: Int, borrowLimit: Int?, network: Bool
        enum CodingKeys: String, CodingKey { case name, quota, network; case borrowLimit = "borrow_limit" }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a tenant with a quota of tiles; prints its token (shown only once).")
        @OptionGroup var connection: ServerOptions
        @Argument(help: "The tenant's name.")
        var name: String
        @Option(help: "Tiles guaranteed to it.")
        var quota: Int
        @Option(help: "Tiles it may borrow beyond its quota while they are idle.")
        var borrowLimit: Int?
        @Flag(help: "Its jobs may use the host's network (multi-rank jobs need it); without it they have loopback only.")
        var network = false

        func run() throws {
            let t = try connection.client().post(TenantInfo.self, "/v1/tenants", Body(name: name, quota: quota, borrowLimit: borrowLimit, network: network))
            print(t.token ?? "")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every tenant with its quota and borrow limit.")
        @OptionGroup var connection: ServerOptions

        func run() throws {
            let ts = try connection.client().get([TenantInfo].self, "/v1/tenants")
            var t = TextTable(headers: ["TENANT", "QUOTA", "BORROW_LIMIT", "NETWORK"], alignments: [.left, .right, .right, .left])
            for x in ts { t.addRow([x.name, "\(x.quota)", x.borrowLimit.map(String.init) ?? "-", x.network ? "yes" : "loopback"]) }
            print(t.render() + (ts.isEmpty ? "(no tenants)\n" : ""), terminator: "")
        }
    }
}

extension ClusterCommand {
    /// `dojo cluster status`: the tile map as text.
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The running service's tiles as a map (one character per tile), a legend and counts.")
        @OptionGroup var connection: ServerOptions

        func run() throws {
            let client = try connection.client()
            let c = try client.get(ClusterStatus.self, "/v1/cluster")
            let jobs = try client.get([JobInfo].self, "/v1/jobs", query: [("state", "RUNNING,PREEMPTED")])
            print(clusterMap(c, jobs: jobs), terminator: "")
        }
    }

    struct FailTile: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fail-tile",
            abstract: "Mark a tile failed (admin): its job goes to NODE_FAIL and is requeued; the tile leaves the pool.")
        @OptionGroup var connection: ServerOptions
        @Argument(help: "The tile id (dojo cluster status shows them).")
        var id: Int

        struct Answer: Decodable { var tile: Int; var requeued: [Int]? }
        func run() throws {
            let a = try connection.client().post(Answer.self, "/v1/tiles/\(id)/fail")
            let r = a.requeued ?? []
            print("Tile \(a.tile) failed" + (r.isEmpty ? "; no job was on it" : "; requeued job\(r.count == 1 ? "" : "s") \(r.map(String.init).joined(separator: ", "))"))
        }
    }

    struct RepairTile: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repair-tile",
            abstract: "Return a failed tile to the pool (admin).")
        @OptionGroup var connection: ServerOptions
        @Argument(help: "The tile id.")
        var id: Int

        struct Answer: Decodable { var tile: Int }
        func run() throws {
            let a = try connection.client().post(Answer.self, "/v1/tiles/\(id)/repair")
            print("Tile \(a.tile) repaired")
        }
    }
}

/// The tile map: per pod a grid of one character per tile (`.` free, `X` failed, `#` another tenant's job, a letter
/// per job), a space between cabinets, then the legend and the counts.
func clusterMap(_ c: ClusterStatus, jobs: [JobInfo]) -> String {
    let symbols = Array("ABCDEFGHIJKLMNOPQRSTUVWYZabcdefghijklmnopqrstuvwxyz0123456789@%&*+=")
    let jobIds = Set(c.tiles.compactMap(\.job)).sorted()
    var symbolOf: [Int: Character] = [:]
    for (i, id) in jobIds.enumerated() { symbolOf[id] = i < symbols.count ? symbols[i] : "?" }
    let names = Dictionary(jobs.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    var out = "\(c.machine): \(c.pods) pod\(c.pods == 1 ? "" : "s") of \(c.height)x\(c.width) tiles (\(c.tiles.count) tiles)\n"
    for pod in 0..<c.pods {
        var grid: [[TileInfo?]] = Array(repeating: Array(repeating: nil, count: c.width), count: c.height)
        for t in c.tiles where t.pod == pod && t.y < c.height && t.x < c.width && t.x >= 0 && t.y >= 0 { grid[t.y][t.x] = t }
        if c.pods > 1 { out += "pod \(pod)\n" }
        for row in grid {
            var line = "  "
            for (x, t) in row.enumerated() {
                if x > 0, let t, let left = row[x - 1], left.cabinet != t.cabinet { line += " " }
                guard let t else { line += " "; continue }
                if t.health == .failed { line += "X" }
                else if let j = t.job { line.append(symbolOf[j] ?? "?") }
                else if t.busy { line += "#" }
                else { line += "." }
            }
            out += line + "\n"
        }
    }
    out += "legend: . free   X failed   # another tenant's job"
    out += jobIds.isEmpty ? "\n" : "\n"
    for id in jobIds {
        let j = names[id]
        out += "  \(symbolOf[id]!)  job \(id)" + (j.map { " \($0.name) (\($0.tenant), \($0.shape), \($0.state.rawValue))" } ?? "") + "\n"
    }
    let states = c.jobs.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    out += "tiles: \(c.tiles.count) (healthy \(c.healthy), failed \(c.failed)); busy \(c.busy), free \(c.free); utilisation \(formatFixed(100 * c.utilization, 1))%\n"
    out += "jobs: \(c.pending) pending, \(c.running) running" + (states.isEmpty ? "" : " (\(states))") + "\n"
    out += "shapes: \(c.shapes.joined(separator: ", "))\n"
    return out
}

/// `dojo audit` (admin): who did what, newest first.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "The audit log of admin actions (tenants added, tiles failed or repaired, jobs cancelled or submitted for a tenant).",
        discussion: "Needs the admin token (--token-file <db>.admin-token). Newest first.")

    @OptionGroup var connection: ServerOptions
    @Option(help: "At most this many entries (1…100000).")
    var limit = 100

    func run() throws {
        guard (1...100_000).contains(limit) else { throw ClientError("--limit must be 1…100000, got \(limit)") }
        let entries = try connection.client().get([AuditEntry].self, "/v1/audit", query: [("limit", "\(limit)")])
        var t = TextTable(headers: ["ID", "TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"], alignments: [.right, .left, .left, .left, .left, .left])
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        for e in entries {
            t.addRow(["\(e.id)", f.string(from: Date(timeIntervalSince1970: e.time)), e.actor, e.action, e.target, e.detail])
        }
        print(t.render() + (entries.isEmpty ? "(no admin actions yet)\n" : ""), terminator: "")
    }
}

/// Text for a terminal: newlines and tabs kept, every other control character (ESC sequences, carriage returns,
/// bidirectional overrides) shown as \u{…}.
func terminalSafe(_ s: String) -> String {
    var out = ""
    out.unicodeScalars.reserveCapacity(s.unicodeScalars.count)
    for u in s.unicodeScalars {
        let v = u.value
        if u == "\n" || u == "\t" { out.unicodeScalars.append(u); continue }
        if v < 0x20 || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) {
            out += String(format: "\\u{%X}", v)
        } else { out.unicodeScalars.append(u) }
    }
    return out
}
