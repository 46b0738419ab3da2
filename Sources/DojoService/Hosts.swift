import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The hosts that serve the machine's tiles (`dojo serve --hosts FILE`): a job's ranks run on the hosts of its DPU's
/// tiles, started by Open MPI's mpirun through a launch agent (ssh by default), each host's ranks in the job's
/// sandbox there; a host that stops answering fails its tiles. Without a host map every job runs on the server's host.
///
/// The file, one host a line (`#` starts a comment):
///
///     ADDRESS tiles=0-5,12 cores=8
///
/// ADDRESS: an IPv4 address or a host name the launch agent and the probe reach; tiles: ids or ranges (`dojo cluster
/// status` shows them), every tile of the machine on exactly one host; cores: how many ranks (and threads) it runs
/// at once.
public struct HostMap: Sendable, Equatable {
    public struct Host: Sendable, Equatable {
        public var address: String
        public var tiles: [Int]
        public var cores: Int
    }
    public var hosts: [Host]
    /// The program mpirun starts each host's daemon with, as `PROGRAM HOST COMMAND` (like ssh). nil: ssh.
    public var launcher: String?
    /// The network ranks and daemons talk over (CIDR), for Open MPI's TCP interface choice; nil: Open MPI picks.
    public var network: String?
    /// The TCP port the health probe connects to (a refused connection still answers: the host's kernel replied).
    public var probePort: Int = 22
    /// Seconds between probes, and how long a host may go without answering before its tiles fail.
    public var probeInterval: Double = 1
    public var downAfter: Double = 5
    /// host index of each tile
    public let hostOfTile: [Int]

    public init(hosts: [Host], tileCount: Int, launcher: String? = nil, network: String? = nil) throws {
        var owner = [Int](repeating: -1, count: tileCount)
        for (h, host) in hosts.enumerated() {
            for t in host.tiles {
                guard t >= 0, t < tileCount else { throw HostMapError("\(host.address): tile \(t) is not a tile of this machine (0…\(tileCount - 1))") }
                guard owner[t] < 0 else { throw HostMapError("tile \(t) is on two hosts: \(hosts[owner[t]].address) and \(host.address)") }
                owner[t] = h
            }
        }
        if let missing = owner.firstIndex(of: -1) {
            let count = owner.filter { $0 < 0 }.count
            throw HostMapError("tile \(missing)\(count > 1 ? " and \(count - 1) more" : "") on no host: every tile of the machine (0…\(tileCount - 1)) must be on one")
        }
        self.hosts = hosts; self.hostOfTile = owner; self.launcher = launcher; self.network = network
    }

    /// Reads a host file (`file` names it in errors).
    public static func parse(_ text: String, file: String, tileCount: Int, launcher: String? = nil, network: String? = nil) throws -> HostMap {
        var hosts: [Host] = []
        var seen: [String: Int] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard let address = words.first else { continue }
            let at = "\(file):\(n + 1)"
            guard hosts.count < 4096 else { throw HostMapError("\(at): more than 4096 hosts") }
            guard isHostName(address) else {
                throw HostMapError("\(at): '\(printable(address))' is not a host address (an IPv4 address or a host name: letters, digits, '-', '.')")
            }
            if let first = seen[address] { throw HostMapError("\(at): host \(address) is listed twice (first on line \(first))") }
            seen[address] = n + 1
            var tiles: [Int]? = nil, cores: Int? = nil
            for w in words.dropFirst() {
                let kv = w.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard kv.count == 2, !kv[1].isEmpty else { throw HostMapError("\(at): '\(printable(w))' is not KEY=VALUE (tiles=0-5 cores=8)") }
                switch kv[0] {
                case "tiles":
                    guard tiles == nil else { throw HostMapError("\(at): tiles= given twice") }
                    tiles = try parseTiles(kv[1], at: at, tileCount: tileCount)
                case "cores":
                    guard cores == nil else { throw HostMapError("\(at): cores= given twice") }
                    guard let c = Int(kv[1]), (1...65536).contains(c) else { throw HostMapError("\(at): cores must be a whole number 1…65536, got '\(printable(kv[1]))'") }
                    cores = c
                default:
                    throw HostMapError("\(at): unknown key '\(printable(kv[0]))' (tiles=, cores=)")
                }
            }
            guard let t = tiles else { throw HostMapError("\(at): host \(address) has no tiles= (which tiles it serves, e.g. tiles=0-5)") }
            guard let c = cores else { throw HostMapError("\(at): host \(address) has no cores= (how many ranks it runs at once)") }
            hosts.append(Host(address: address, tiles: t, cores: c))
        }
        guard !hosts.isEmpty else { throw HostMapError("\(file): no hosts (one a line: ADDRESS tiles=0-5 cores=8)") }
        do { return try HostMap(hosts: hosts, tileCount: tileCount, launcher: launcher, network: network) }
        catch let e as HostMapError { throw HostMapError("\(file): \(e.message)") }
    }

    /// "0-5,12" → [0, 1, …, 5, 12]
    static func parseTiles(_ s: String, at: String, tileCount: Int) throws -> [Int] {
        var out: [Int] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(ends.count), let a = Int(ends[0]), let b = Int(ends.last!), a >= 0, a <= b else {
                throw HostMapError("\(at): tiles must be ids or ranges like 0-5,12, got '\(printable(s))'")
            }
            guard b < tileCount else { throw HostMapError("\(at): tile \(b) is not a tile of this machine (0…\(tileCount - 1))") }
            out += Array(a...b)
        }
        return out
    }

    static func isHostName(_ s: String) -> Bool {
        guard (1...253).contains(s.utf8.count), !s.hasPrefix("-"), !s.hasPrefix(".") else { return false }
        return s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 46 }
    }

    /// Where a job's ranks go: rank i on the host of the DPU's i-th tile (ranks ≤ tiles). Hosts in order of their
    /// first rank, with how many ranks each runs.
    public func placement(ranks: Int, tiles: [Int]) -> [(host: Int, ranks: Int)] {
        var order: [Int] = [], count: [Int: Int] = [:]
        for i in 0..<max(1, ranks) {
            let h = hostOfTile[tiles[i % tiles.count]]
            if count[h] == nil { order.append(h) }
            count[h, default: 0] += 1
        }
        return order.map { ($0, count[$0]!) }
    }

    public var totalCores: Int { hosts.reduce(0) { $0 + $1.cores } }

    /// One line for `dojo serve`'s start-up notes.
    public var summary: String {
        let each = hosts.prefix(8).map { "\($0.address) (\($0.tiles.count) tile\($0.tiles.count == 1 ? "" : "s"), \($0.cores) core\($0.cores == 1 ? "" : "s"))" }
        return "hosts: \(hosts.count) — " + each.joined(separator: ", ") + (hosts.count > 8 ? ", …" : "")
            + "; ranks started through \(launcher ?? "ssh")" + (network.map { " over \($0)" } ?? "")
            + "; a host silent for \(HostMap.seconds(downAfter)) (TCP port \(probePort)) fails its tiles"
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s) }

    /// Whether `address` answers on `port` within `timeout` seconds: a connection made or refused (the host's kernel
    /// replied); no route, unreachable or silence do not.
    public static func answers(address: String, port: Int, timeout: Double) -> Bool {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address, "\(port)", &hints, &res) == 0, let ai = res else { return false }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return true }
        if errno == ECONNREFUSED { return true }
        guard errno == EINPROGRESS else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { return false }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err == 0 || err == ECONNREFUSED
    }
}

public struct HostMapError: Error, CustomStringConvertible {
    public let message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}

/// Single-quotes `s` for /bin/sh.
func shellQuote(_ s: String) -> String {
    "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
