import Foundation
#if canImport(Glibc)
import Glibc
#endif

// The sandbox of an attempt: everything that decides what a job can see, write, use and signal lives in this file.
//
//   supervisor (/bin/sh, the server's user, outside)  writes pid and exit into <db>.jobs/<id>/attempt-N/
//     └ sh: joins the attempt's cgroups, ignores SIGTERM/SIGINT (so the outer bwrap outlives them), execs
//       prlimit --fsize (files and the log) [--nproc without a pids cgroup]
//         setpriv --reuid/--regid TENANT_UID --clear-groups     (when the server runs as root)
//           bwrap --unshare-all [--share-net] --die-with-parent --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp
//                 --tmpfs <db>.jobs --tmpfs <db>.tenants --ro-bind /dev/null <db>, <db>.admin-token, …
//                 --bind WORK WORK --bind CHECKPOINT CHECKPOINT --chdir WORK
//             env --default-signal=TERM,INT  PROGRAM ARGS…      (the job gets SIGTERM again)
//
// The job sees the system read-only, its own work and checkpoint folders read-write, a private /tmp, a PID
// namespace of its own (it cannot see or signal anything outside), no network but loopback unless its tenant may
// use it; the database, the token file, the attempts' bookkeeping and every other job's folders are not there.
// SIGKILL to the attempt's process group kills the outer bwrap, and with it (--die-with-parent, PID namespace) every
// process of the job, daemons included; the cgroups, when there are any, are emptied as well.

/// How attempts are contained (`dojo serve --sandbox`).
public enum SandboxMode: String, Sendable, CaseIterable {
    /// bubblewrap namespaces, a per-tenant uid when the server runs as root.
    case bwrap
    /// The job runs as the server's user with its files: only for a single trusted user.
    case none
}

/// Resource limits of a job, from its DPU (per tile) or fixed per job/tenant. 0 turns a limit off.
/// ASSUMPTION: OpenDojo runs a tile's work on the host CPU, so a tile is given one core and 4 GiB by default;
/// these are parameters (`dojo serve --cpu-per-tile --memory-per-tile --pids-per-job --disk-per-tenant`).
public struct SandboxLimits: Sendable, Equatable {
    /// CPU cores per tile (cgroup CPU quota; capped at the host's cores).
    public var cpuPerTile: Double
    /// Bytes of memory per tile (cgroup memory limit; also the size of the job's private /tmp).
    public var memoryPerTile: Int64
    /// Processes and threads of one job (cgroup pids.max; RLIMIT_NPROC of its uid without a pids cgroup).
    public var pidsPerJob: Int
    /// Bytes a tenant's storage (work and checkpoint folders) may hold; also the largest file (and log) a job writes.
    public var diskPerTenant: Int64
    /// Files and folders (inodes) a tenant's storage may hold: empty files take no blocks but do take inodes, and
    /// every one costs the disk check time.
    public var filesPerTenant: Int

    public init(cpuPerTile: Double = 1, memoryPerTile: Int64 = 4 << 30, pidsPerJob: Int = 1024, diskPerTenant: Int64 = 20 << 30,
                filesPerTenant: Int = 200_000) {
        self.cpuPerTile = cpuPerTile; self.memoryPerTile = memoryPerTile; self.pidsPerJob = pidsPerJob; self.diskPerTenant = diskPerTenant
        self.filesPerTenant = filesPerTenant
    }
}

/// The sandbox for this service: what the host offers (bwrap, root, cgroups) and the paths jobs must never see.
struct Sandbox: Sendable {
    let mode: SandboxMode
    let limits: SandboxLimits
    let cgroups: Cgroups?
    /// Running as root: jobs run as `tenantUIDBase + n`, one uid per tenant, never as root.
    let asRoot: Bool
    let tenantUIDBase: Int
    /// Folders replaced by an empty tmpfs, and files by /dev/null, inside every sandbox.
    let hiddenFolders: [String]
    let hiddenFiles: [String]
    let bwrap: String, setpriv: String, prlimit: String, env: String

    init(mode: SandboxMode, limits: SandboxLimits, tenantUIDBase: Int, database: String, groupName: String) throws {
        self.mode = mode
        self.limits = limits
        self.tenantUIDBase = tenantUIDBase
        asRoot = geteuid() == 0
        cgroups = Cgroups.detect(name: groupName)
        hiddenFolders = [database + ".jobs", database + ".tenants"]
        hiddenFiles = ["", "-journal", "-wal", "-shm", ".lock", ".admin-token"].map { database + $0 }
        func find(_ p: String) -> String? {
            for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] where access(dir + "/" + p, X_OK) == 0 { return dir + "/" + p }
            return nil
        }
        prlimit = find("prlimit") ?? ""
        env = find("env") ?? "/usr/bin/env"
        setpriv = find("setpriv") ?? ""
        bwrap = find("bwrap") ?? ""
        guard mode == .bwrap else { return }
        guard !bwrap.isEmpty else {
            throw ServiceError.badRequest("--sandbox bwrap needs bubblewrap: install it (apt-get install bubblewrap), or start with --sandbox none to run jobs unconfined as this user (trusted users only)")
        }
        if asRoot, setpriv.isEmpty {
            throw ServiceError.badRequest("running as root, jobs run as per-tenant uids through setpriv (util-linux), which was not found")
        }
        // bwrap must work here (user namespaces may be off): try it once.
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: bwrap)
        probe.arguments = ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "/bin/true"]
        probe.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        probe.standardError = err
        do { try probe.run() } catch { throw ServiceError.badRequest("cannot run \(bwrap): \(error)") }
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else {
            let why = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ServiceError.badRequest("bubblewrap does not work on this host (\(why)); start with --sandbox none to run jobs unconfined (trusted users only)")
        }
    }

    /// What `dojo serve` says about containment in its first lines.
    var summary: [String] {
        var lines: [String] = []
        switch mode {
        case .bwrap:
            lines.append("sandbox: bubblewrap (own PID/IPC/mount/UTS namespaces, system read-only, private /tmp, loopback only unless a tenant has network), "
                + (asRoot ? "jobs run as per-tenant uids from \(tenantUIDBase + 1)" : "jobs run as this user inside a user namespace (run as root for per-tenant uids)"))
        case .none:
            lines.append("WARNING: --sandbox none: jobs run unconfined as \(asRoot ? "root" : "this user"): they can read the database, the admin token and every other job's files. Use it only for a single trusted user.")
        }
        if let c = cgroups {
            lines.append("limits: \(c.summary): \(formatCores(limits.cpuPerTile)) and \(formatBytes(limits.memoryPerTile)) per tile, \(limits.pidsPerJob) processes per job; disk \(formatBytes(limits.diskPerTenant)) per tenant")
        } else {
            lines.append("limits: no writable cgroup hierarchy (v1 or v2) on this host: CPU and memory limits are off; \(limits.pidsPerJob) processes per tenant uid (RLIMIT_NPROC), disk \(formatBytes(limits.diskPerTenant)) per tenant")
        }
        return lines
    }

    func uid(tenantNumber n: Int) -> Int? { asRoot ? tenantUIDBase + n : nil }

    /// The argv that runs `command` in the sandbox (or, with `none`, as it is behind the rlimits). The work folder is
    /// bound from descriptor 3 and the checkpoint folder from descriptor 4 (the worker passes them; bwrap closes them
    /// once mounted, so the job holds no descriptor of the host's tree).
    /// `onHost`: the sandbox of a job's ranks on one of the service's hosts (started there by mpirun's launch agent,
    /// so no descriptors reach it): the folders are bound by path (every folder above them is the server's, so the
    /// path cannot be redirected) and the host's hostname stays (Open MPI tells its daemons apart by it).
    func wrap(_ command: [String], uid: Int?, work: String, checkpoint: String, network: Bool, tiles: Int,
              programFolder: String? = nil, onHost: Bool = false) -> [String] {
        var argv: [String] = []
        if !prlimit.isEmpty {
            argv += [prlimit]
            if limits.diskPerTenant > 0 { argv.append("--fsize=\(limits.diskPerTenant)") }
            if cgroups?.controllers.contains("pids") != true, limits.pidsPerJob > 0, uid != nil { argv.append("--nproc=\(limits.pidsPerJob)") }
            argv.append("--")
        }
        guard mode == .bwrap else { return argv + command }
        if let uid { argv += [setpriv, "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--"] }
        argv += [bwrap, "--unshare-all"]
        if network { argv.append("--share-net") }
        // --disable-userns: no user namespaces inside (less kernel surface); /sys/fs/cgroup would show every job's group.
        argv += ["--die-with-parent", "--unshare-user", "--disable-userns", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/sys/fs/cgroup"]
        if limits.memoryPerTile > 0 { argv += ["--size", "\(limits.memoryPerTile * Int64(max(tiles, 1)))"] }
        argv += ["--tmpfs", "/tmp"]
        for d in hiddenFolders { argv += ["--tmpfs", d] }
        for f in hiddenFiles where !f.hasPrefix("/tmp/") && FileManager.default.fileExists(atPath: f) { argv += ["--ro-bind", "/dev/null", f] }
        // The folder of this dojo binary, read-only, in case /tmp (now private) holds it: `dojo train …` jobs need it.
        if let p = programFolder, p != "/", FileManager.default.fileExists(atPath: p) { argv += ["--ro-bind", p, p] }
        argv += onHost ? ["--bind", work, work] : ["--bind-fd", "3", work]
        if !(checkpoint + "/").hasPrefix(work + "/") { argv += onHost ? ["--bind", checkpoint, checkpoint] : ["--bind-fd", "4", checkpoint] }
        argv += ["--chdir", work]
        if !onHost { argv += ["--hostname", "dojo-job"] }
        // `--` ends env's options: a command that starts with '-' is the program's name, not an option of env.
        argv += ["--", env, "--default-signal=TERM,INT", "--"]
        return argv + command
    }

    /// The tenant's storage root `<db>.tenants/<name>`: made by the server in a folder only it writes, and owned by
    /// the server (mode 0711) — like every folder above a job's own ones, so that a tenant's job can never rename,
    /// replace or symlink a component of a path the server mounts into a sandbox.
    static func ensureTenantRoot(_ root: String) throws {
        let parent = (root as NSString).deletingLastPathComponent
        if mkdir(parent, 0o711) != 0 && errno != EEXIST { throw ServiceError(.internalError, "cannot create \(parent): \(String(cString: strerror(errno)))") }
        if mkdir(root, 0o711) != 0 && errno != EEXIST { throw ServiceError(.internalError, "cannot create \(root): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard lstat(root, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { throw ServiceError(.internalError, "\(root) is not a folder") }
        // A root made by an earlier version for the tenant's uid: the server takes it back.
        if st.st_uid != geteuid() || st.st_mode & 0o7777 != 0o711 { _ = lchown(root, geteuid(), getegid()); chmod(root, 0o711) }
    }

    /// Makes `relative` (components, no `..`) under the tenant's root, one component at a time from descriptors
    /// without following a symlink. Every folder above the last is the server's (0711: made so here, and an existing
    /// one must be the server's); the last is the tenant's (0700, owned by its uid), the only one its jobs can write.
    /// So when the server runs as root, no job can change any component of the returned path before or after the
    /// sandbox mounts it: the mount cannot be redirected (without root every folder is the server user's and the
    /// jobs', which the threat model states). Returns the absolute path and an open descriptor of the folder.
    static func ensureFolder(root: String, relative: [String], uid: Int?, serverOwnedLeaf: Bool = false) throws -> (path: String, fd: Int32) {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw ServiceError(.internalError, "cannot open \(root): \(String(cString: strerror(errno)))") }
        var done = false
        defer { if !done { close(fd) } }
        var path = root
        for (k, c) in relative.enumerated() {
            let leaf = k == relative.count - 1
            let tenantOwns = leaf && !serverOwnedLeaf
            if mkdirat(fd, c, tenantOwns ? 0o700 : 0o711) == 0 {
                if tenantOwns, let uid { _ = fchownat(fd, c, uid_t(uid), gid_t(uid), AT_SYMLINK_NOFOLLOW) }
            } else if errno != EEXIST {
                throw ServiceError(.unprocessable, "cannot create \(path)/\(c): \(String(cString: strerror(errno)))")
            }
            let next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                throw ServiceError(.unprocessable, "\(path)/\(c) is not a folder of the tenant's storage (a symlink or a file)")
            }
            close(fd)
            fd = next
            path += "/" + c
            if tenantOwns, let uid {
                // Only the server makes this folder, by a mkdir and then a chown: a server killed between the two
                // left it the server's (0700), and the tenant's sandbox could not enter it: its job failed at its next
                // start. A leaf not the tenant's is given to it now.
                var st = stat()
                guard fstat(fd, &st) == 0 else { throw ServiceError(.internalError, "cannot read \(path): \(String(cString: strerror(errno)))") }
                if st.st_uid != uid_t(uid) || st.st_gid != gid_t(uid) {
                    guard fchown(fd, uid_t(uid), gid_t(uid)) == 0, fchmod(fd, 0o700) == 0 else {
                        throw ServiceError(.internalError, "cannot give \(path) to the tenant's uid \(uid): \(String(cString: strerror(errno)))")
                    }
                }
            }
            if !leaf, uid != nil {
                var st = stat()
                if fstat(fd, &st) == 0, st.st_uid != geteuid() {
                    throw ServiceError(.unprocessable, "\(path) is a folder jobs write (a work or checkpoint folder): a checkpoint folder cannot be inside one; name one beside it")
                }
            }
        }
        done = true
        return (path, fd)
    }

    /// `checkpoint_dir` as a tenant gives it: a path relative to its storage root, without `..`, empty parts, NUL or
    /// control characters. Returns its components.
    static func relativeComponents(_ s: String) throws -> [String] {
        func bad(_ why: String) -> ServiceError { .unprocessable("checkpoint_dir '\(printable(s))': \(why)") }
        guard !s.isEmpty, s.utf8.count <= 1024 else { throw bad("1–1024 bytes") }
        guard !s.hasPrefix("/") else { throw bad("must be relative to the tenant's storage (no leading '/')") }
        guard isPrintable(s) else { throw bad("control characters are not allowed") }
        let parts = s.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        guard !parts.isEmpty else { throw bad("names no folder") }
        guard !parts.contains("..") else { throw bad("'..' is not allowed: it stays inside the tenant's storage") }
        guard parts[0] != "logs" else { throw bad("'logs' holds the server's copies of the tenant's job output; choose another folder") }
        guard parts.count <= 32, parts.allSatisfy({ $0.utf8.count <= 255 }) else { throw bad("at most 32 parts of 255 bytes") }
        return parts
    }

    /// What a folder tree holds: bytes on disk (allocated blocks) and entries (files, folders, links: inodes).
    struct Usage: Sendable { var bytes: Int64 = 0; var entries: Int = 0 }

    /// A job's folders and its log, together.
    static func usage(folders: [String], log: String?, limits: SandboxLimits) -> Usage {
        var u = Usage()
        for f in folders {
            let x = diskUsage(f, cap: 4 * limits.diskPerTenant, entryCap: 4 * limits.filesPerTenant)
            u.bytes += x.bytes; u.entries += x.entries
        }
        var st = stat()
        if let log, lstat(log, &st) == 0 { u.bytes += Int64(st.st_blocks) * 512 }
        return u
    }

    /// Walks a tree from open descriptors (`openat` + `fstatat`, never a path string: no PATH_MAX limit, and a
    /// folder swapped for a symlink mid-walk is not followed), depth first, holding one descriptor per level (not per
    /// pending folder: a folder of 100,000 subfolders costs no more descriptors than one). Stops once the entries pass
    /// `entryCap` (that bounds the work), or — only for a caller that does not count entries — once the bytes pass
    /// `cap`: stopping at the byte cap alone would leave the entries short by whatever the walk had not reached yet, and
    /// which folders those are depends on the file system's readdir order (a tenant over its bytes could then drain
    /// inodes unseen: seen in CI). A tree deeper than `maxDepth` levels counts as over both caps.
    static func diskUsage(_ root: String, cap: Int64, entryCap: Int = Int.max, maxDepth: Int = 512) -> Usage {
        var u = Usage()
        let top = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else { return u }
        guard let first = fdopendir(top) else { close(top); return u }
        var stack: [OpaquePointer] = [first]
        defer { for d in stack { closedir(d) } }
        while let d = stack.last {
            if u.entries > entryCap || (entryCap == Int.max && u.bytes > cap) { break }
            guard let e = readdir(d) else { closedir(d); stack.removeLast(); continue }
            let isDot = withUnsafeBytes(of: e.pointee.d_name) { b in b[0] == 46 && (b[1] == 0 || (b[1] == 46 && b[2] == 0)) }
            if isDot { continue }
            var st = stat()
            let named = withUnsafeBytes(of: e.pointee.d_name) { b in
                fstatat(dirfd(d), b.bindMemory(to: CChar.self).baseAddress!, &st, AT_SYMLINK_NOFOLLOW) == 0 }
            guard named else { continue }
            u.bytes += Int64(st.st_blocks) * 512
            u.entries += 1
            guard st.st_mode & S_IFMT == S_IFDIR else { continue }
            guard stack.count < maxDepth else { u.bytes = max(u.bytes, cap + 1); u.entries = max(u.entries, entryCap == Int.max ? Int.max : entryCap + 1); break }
            let child = withUnsafeBytes(of: e.pointee.d_name) { b in
                openat(dirfd(d), b.bindMemory(to: CChar.self).baseAddress!, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if child >= 0 {
                if let c = fdopendir(child) { stack.append(c) } else { close(child) }
            }
        }
        return u
    }
}

/// What a folder tree holds (bytes in blocks, entries), walked as the disk check walks it; see `Sandbox.diskUsage`.
public func treeUsage(_ root: String, byteCap: Int64, entryCap: Int = Int.max) -> (bytes: Int64, entries: Int) {
    let u = Sandbox.diskUsage(root, cap: byteCap, entryCap: entryCap)
    return (u.bytes, u.entries)
}

/// Text that is safe to echo to a terminal: no C0/C1 control characters (tab excepted), no unpaired surrogates.
func isPrintable(_ s: String, allowTab: Bool = false) -> Bool {
    s.unicodeScalars.allSatisfy { u in
        if allowTab && u == "\t" { return true }
        if u.value < 0x20 || (0x7F...0x9F).contains(u.value) { return false }
        // Bidirectional overrides and isolates can make a terminal show text in another order.
        if (0x202A...0x202E).contains(u.value) || (0x2066...0x2069).contains(u.value) { return false }
        return true
    }
}

/// A string shortened and with control characters escaped, for error messages.
func printable(_ s: String, max: Int = 80) -> String {
    var out = ""
    for u in s.unicodeScalars.prefix(max) {
        if u.value < 0x20 || (0x7F...0x9F).contains(u.value) || (0x202A...0x202E).contains(u.value) || (0x2066...0x2069).contains(u.value) {
            out += String(format: "\\u{%X}", u.value)
        } else { out.unicodeScalars.append(u) }
    }
    return s.unicodeScalars.count > max ? out + "…" : out
}

func formatBytes(_ b: Int64) -> String {
    if b >= 1 << 30, b % (1 << 30) == 0 { return "\(b >> 30) GiB" }
    if b >= 1 << 20, b % (1 << 20) == 0 { return "\(b >> 20) MiB" }
    if b >= 1 << 30 { return String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
    if b >= 1 << 20 { return String(format: "%.1f MiB", Double(b) / Double(1 << 20)) }
    return "\(b) bytes"
}

func formatCores(_ c: Double) -> String { c == 1 ? "1 core" : "\(c == c.rounded() ? String(Int(c)) : String(c)) cores" }

/// Control groups for the attempts: v1 (one hierarchy per controller) or v2 (one unified hierarchy), whichever this
/// host mounts writable. Each attempt gets `<parent>/<attempt>` in every controller; the supervisor's child joins
/// them before it execs the job, so the whole tree is inside.
struct Cgroups: Sendable {
    enum Version: String, Sendable { case v1, v2 }
    let version: Version
    /// Controller → the folder under which attempts' groups are made (v2: the same folder for all).
    let parents: [String: String]
    var controllers: [String] { parents.keys.sorted() }
    var summary: String { "cgroup \(version.rawValue) (\(controllers.joined(separator: ", ")))" }

    /// Finds a hierarchy where this process may make groups: under its own group (nested limits stay inside the
    /// server's own), named `name` (unique per database).
    static func detect(name: String) -> Cgroups? {
        let fm = FileManager.default
        guard let own = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        var v1: [String: String] = [:]
        var v2Path: String?
        for line in own.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty { v2Path = parts[2]; continue }
            for c in parts[1].split(separator: ",").map(String.init) where ["memory", "cpu", "pids"].contains(c) {
                let mount = "/sys/fs/cgroup/" + c
                guard fm.fileExists(atPath: mount + "/cgroup.procs") else { continue }
                let base = mount + (parts[2] == "/" ? "" : parts[2])
                let parent = base + "/" + name
                if mkdir(parent, 0o755) == 0 || errno == EEXIST, access(parent + "/cgroup.procs", W_OK) == 0 { v1[c] = parent }
            }
        }
        if v1["memory"] != nil || v1["pids"] != nil { return Cgroups(version: .v1, parents: v1) }
        // v2: controllers are enabled for children through subtree_control; a group with processes cannot have
        // children with controllers, so attempts go beside the server's group (in its parent), or under the root.
        if let p = v2Path, fm.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") {
            let ownDir = "/sys/fs/cgroup" + (p == "/" ? "" : p)
            let candidates = p == "/" ? ["/sys/fs/cgroup"] : [(ownDir as NSString).deletingLastPathComponent, "/sys/fs/cgroup"]
            for base in candidates {
                guard let avail = try? String(contentsOfFile: base + "/cgroup.controllers", encoding: .utf8) else { continue }
                let want = ["memory", "cpu", "pids"].filter { avail.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.contains($0) }
                guard !want.isEmpty else { continue }
                _ = write(base + "/cgroup.subtree_control", want.map { "+" + $0 }.joined(separator: " "))
                let parent = base + "/" + name
                guard mkdir(parent, 0o755) == 0 || errno == EEXIST else { continue }
                _ = write(parent + "/cgroup.subtree_control", want.map { "+" + $0 }.joined(separator: " "))
                let enabled = (try? String(contentsOfFile: parent + "/cgroup.subtree_control", encoding: .utf8)) ?? ""
                let got = want.filter { enabled.contains($0) }
                guard !got.isEmpty else { continue }
                return Cgroups(version: .v2, parents: Dictionary(uniqueKeysWithValues: got.map { ($0, parent) }))
            }
        }
        return nil
    }

    static func write(_ path: String, _ value: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let b = Array(value.utf8)
        return b.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == b.count
    }

    private var dirs: [(String, String)] {
        version == .v2 ? [("all", parents.values.first!)] : parents.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Makes the attempt's groups with its limits; returns the `cgroup.procs` files to join.
    func create(_ group: String, limits: SandboxLimits, tiles: Int) throws -> [String] {
        let t = Double(max(tiles, 1))
        let memory = limits.memoryPerTile > 0 ? limits.memoryPerTile * Int64(t) : 0
        let cores = limits.cpuPerTile > 0 ? min(limits.cpuPerTile * t, Double(ProcessInfo.processInfo.activeProcessorCount)) : 0
        var procs: [String] = []
        for (c, parent) in dirs {
            let dir = parent + "/" + group
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw ServiceError(.internalError, "cannot create the cgroup \(dir): \(String(cString: strerror(errno)))") }
            var ok = true
            switch (version, c) {
            case (.v1, "memory"):
                if memory > 0 {
                    ok = Cgroups.write(dir + "/memory.limit_in_bytes", "\(memory)")
                    _ = Cgroups.write(dir + "/memory.memsw.limit_in_bytes", "\(memory)")   // no swap beyond it, where accounted
                }
            case (.v1, "cpu"):
                if cores > 0 { ok = Cgroups.write(dir + "/cpu.cfs_period_us", "100000") && Cgroups.write(dir + "/cpu.cfs_quota_us", "\(Int(cores * 100000))") }
            case (.v1, "pids"):
                if limits.pidsPerJob > 0 { ok = Cgroups.write(dir + "/pids.max", "\(limits.pidsPerJob)") }
            case (.v2, _):
                if memory > 0, parents["memory"] != nil { ok = Cgroups.write(dir + "/memory.max", "\(memory)") && ok; _ = Cgroups.write(dir + "/memory.swap.max", "0") }
                if cores > 0, parents["cpu"] != nil { ok = Cgroups.write(dir + "/cpu.max", "\(Int(cores * 100000)) 100000") && ok }
                if limits.pidsPerJob > 0, parents["pids"] != nil { ok = Cgroups.write(dir + "/pids.max", "\(limits.pidsPerJob)") && ok }
            default: break
            }
            guard ok else { throw ServiceError(.internalError, "cannot set the limits of the cgroup \(dir)") }
            procs.append(dir + "/cgroup.procs")
        }
        return procs
    }

    /// Removes this service's parent groups if they are empty (a running job keeps them: rmdir then fails).
    func removeParents() { for p in Set(parents.values) { rmdir(p) } }

    /// Times the kernel's OOM killer acted in the attempt's group.
    func oomKills(_ group: String) -> Int {
        guard let parent = parents["memory"] else { return 0 }
        let file = parent + "/" + group + (version == .v1 ? "/memory.oom_control" : "/memory.events")
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") { return Int(line.dropFirst(9)) ?? 0 }
        return 0
    }

    /// SIGKILLs every process left in the attempt's groups (until they are empty, at most `timeout` s), then
    /// removes the groups.
    func killAndRemove(_ group: String, timeout: Double = 2) {
        let end = Date().addingTimeInterval(timeout)
        for (_, parent) in dirs {
            let dir = parent + "/" + group
            guard FileManager.default.fileExists(atPath: dir) else { continue }
            while true {
                let pids = ((try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
                if pids.isEmpty || Date() > end { break }
                for p in pids where p > 1 { kill(p, SIGKILL) }
                usleep(2_000)
            }
            // Removal fails while the last processes are still exiting: retry briefly.
            for _ in 0..<1000 where rmdir(dir) != 0 && errno == EBUSY { usleep(1_000) }
        }
    }
}
