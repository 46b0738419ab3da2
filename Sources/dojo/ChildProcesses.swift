import Dispatch
import Foundation

/// Child processes a command runs (dojo train runs, calibration, mpirun) and what to undo when it is interrupted: on
/// SIGINT or SIGTERM every child (and the process group it leads) gets SIGTERM and up to 15 s to finish — a dojo train
/// passes it to its ranks and saves a checkpoint — then the cleanups run (namespace hosts, temporary folders) and the
/// command exits 130 or 143. Without this, a Ctrl-C reached only the parent: its children run in their own process
/// groups and kept going, and namespace hosts stayed up.
final class ChildProcesses: @unchecked Sendable {
    static let shared = ChildProcesses()
    private let lock = NSLock()
    private var children: [Process] = []
    private var cleanups: [(id: Int, run: () -> Void)] = []
    private var nextID = 0
    private var sources: [DispatchSourceSignal] = []

    /// Handles SIGINT and SIGTERM from now on (once per process).
    func install() {
        lock.lock(); defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [unowned self] in self.interrupted(sig) }
            s.resume()
            sources.append(s)
        }
    }

    func add(_ p: Process) { lock.lock(); children.append(p); lock.unlock() }
    func remove(_ p: Process) { lock.lock(); children.removeAll { $0 === p }; lock.unlock() }

    /// Registers an undo step; returns an id for `done` (run in reverse order of registration on interrupt).
    @discardableResult func onInterrupt(_ body: @escaping () -> Void) -> Int {
        lock.lock(); defer { lock.unlock() }
        nextID += 1
        cleanups.append((nextID, body))
        return nextID
    }
    func done(_ id: Int) { lock.lock(); cleanups.removeAll { $0.id == id }; lock.unlock() }

    private func interrupted(_ sig: Int32) {
        lock.lock()
        let running = children.filter(\.isRunning)
        let undo = cleanups.reversed().map(\.run)
        lock.unlock()
        FileHandle.standardError.write(Data("dojo: interrupted; stopping \(running.count) child process\(running.count == 1 ? "" : "es") and cleaning up…\n".utf8))
        for p in running {
            let pid = p.processIdentifier
            kill(pid, SIGTERM)
            if getpgid(pid) == pid { kill(-pid, SIGTERM) }
        }
        let deadline = Date().addingTimeInterval(15)
        while running.contains(where: \.isRunning) && Date() < deadline { usleep(50_000) }
        for p in running where p.isRunning { kill(p.processIdentifier, SIGKILL); kill(-p.processIdentifier, SIGKILL) }
        for u in undo { u() }
        exit(sig == SIGTERM ? 143 : 130)
    }
}

/// This dojo binary's path, to start itself again (under mpirun, or as a child run).
var selfExecutable: String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0] }

/// Open MPI's mpirun, or nil when it is not installed.
var mpirunPath: String? {
    let candidates: [String] = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
    return candidates.first { access($0, X_OK) == 0 }
}

/// Whether `text` is an IPv4 network in CIDR form (10.99.1.0/24), as Open MPI's `*_if_include` take.
func isIPv4CIDR(_ text: String) -> Bool {
    text.range(of: #"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)/(3[0-2]|[12]?\d)$"#, options: .regularExpression) != nil
}

/// Runs `dojo ARGS…` (this binary) as a child that an interrupt stops, and waits for it; its exit status.
func runSelf(_ args: [String], quiet: Bool) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: selfExecutable)
    p.arguments = args
    if quiet { p.standardOutput = FileHandle.nullDevice }
    try p.run()
    ChildProcesses.shared.add(p)
    defer { ChildProcesses.shared.remove(p) }
    p.waitUntilExit()
    return p.terminationStatus
}

/// Where the ranks of `dojo train --ranks` leave their last error for the launcher, one file a rank (`rank-N`). Open
/// MPI forwards a rank's stderr and prints its own abort report into the same stream: when another rank failed first,
/// the report could cut rank 0's error line in two, or mpirun could end rank 0 before its line came through (CI saw
/// "Error: rank 0 on v" and a report). A rank that cannot write there (a host without this folder) prints as before.
enum RankErrors {
    static let variable = "DOJO_RANK_ERRORS"

    /// Under the launcher: leaves `line` in this rank's file; false when there is no such folder here (print it).
    static func leave(_ line: String) -> Bool {
        let env = ProcessInfo.processInfo.environment
        guard let folder = env[variable], !folder.isEmpty, let rank = env["OMPI_COMM_WORLD_RANK"].flatMap({ Int($0) }) else { return false }
        return (try? Data(line.utf8).write(to: URL(fileURLWithPath: folder).appendingPathComponent("rank-\(rank)"), options: .atomic)) != nil
    }

    /// The lines the ranks left, rank 0's first; an error every rank met (the same words after "rank N on HOST: ")
    /// once, from the lowest rank that met it.
    static func collect(from folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let ranks = names.compactMap { $0.hasPrefix("rank-") ? Int($0.dropFirst(5)) : nil }.sorted()
        var seen = Set<String>(), lines: [String] = []
        for r in ranks {
            guard let text = try? String(contentsOfFile: folder + "/rank-\(r)", encoding: .utf8) else { continue }
            let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let words = line.replacingOccurrences(of: #"^Error: rank \d+ on \S+: "#, with: "Error: ", options: .regularExpression)
            if !line.isEmpty, seen.insert(words).inserted { lines.append(line) }
        }
        return lines
    }
}
