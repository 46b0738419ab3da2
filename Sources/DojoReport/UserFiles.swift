#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A file or folder a user named that cannot be used, said as a person would: what the path is, what it was
/// expected to be, what is wrong (`runs/x: not a folder: a file is there`, `/dev/null: not a regular file (a
/// character device)`), never a Foundation error dump. `what` is the role the path plays (`machine file`,
/// `--out`, `checkpoint`).
public struct FileProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var what: String
    public var problem: String
    public init(path: String, what: String, problem: String) { self.path = path; self.what = what; self.problem = problem }
    public var description: String { "\(what) \(path.isEmpty ? "''" : path): \(problem)" }
}

/// Reading and making the files and folders users name: one place for the checks and their messages, used by the
/// data sets, checkpoints, machine and CSV files, and the CLI's output folders.
public enum UserFiles {
    /// What kind of thing is at `path` (following symbolic links), for messages.
    public static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a file"
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a named pipe"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a file"
        }
    }

    /// The reason an errno gives, in words (`no such file or folder`, `permission denied`).
    public static func reason(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file or folder"
        case EACCES, EPERM: return "permission denied"
        case ENOTDIR: return "a component of the path is not a folder"
        case EROFS: return "on a read-only file system"
        case ENOSPC: return "no space left on the device"
        case ENAMETOOLONG: return "the name is too long"
        case ELOOP: return "too many symbolic links"
        case EISDIR: return "is a folder"
        case EEXIST: return "already exists"
        default: return String(cString: strerror(code)).lowercased()
        }
    }

    /// The folder that holds `path` ("/" for "/x"), or nil for a name without a folder (the working folder).
    /// (Plain string work: NSString's deletingLastPathComponent trapped in one of these functions in a release build.)
    static func parentFolder(of path: String) -> String? {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return nil }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    /// Reads the whole regular file at `path`. A folder, a pipe, a device or a socket is refused before it is
    /// opened (a named pipe would block for ever, /dev/zero would never end), as is a file larger than `limit`
    /// bytes; errors say which.
    public static func read(_ path: String, what: String, limit: Int = 1 << 36) throws(FileProblem) -> Data {
        guard !path.isEmpty else { throw FileProblem(path: path, what: what, problem: "the path is empty") }
        var st = stat()
        guard stat(path, &st) == 0 else { throw FileProblem(path: path, what: what, problem: reason(errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw FileProblem(path: path, what: what, problem: "not a regular file (\(kind(of: st.st_mode)))")
        }
        guard Int(st.st_size) <= limit else {
            throw FileProblem(path: path, what: what, problem: "\(st.st_size) bytes, more than the \(limit) a \(what) may have")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileProblem(path: path, what: what, problem: reason(errno)) }
        defer { close(fd) }
        var data = Data(count: Int(st.st_size))
        var done = 0
        while done < data.count {
            let n = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileProblem(path: path, what: what, problem: "cannot read: \(reason(errno))")
            }
            if n == 0 { data.count = done; break }   // shrank while read
            done += n
        }
        return data
    }

    /// Checks that `path` names a regular file that can be opened for reading, without reading it (for files a
    /// library opens itself, like zlib's gzopen).
    public static func checkReadable(_ path: String, what: String) throws(FileProblem) {
        guard !path.isEmpty else { throw FileProblem(path: path, what: what, problem: "the path is empty") }
        var st = stat()
        guard stat(path, &st) == 0 else { throw FileProblem(path: path, what: what, problem: reason(errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw FileProblem(path: path, what: what, problem: "not a regular file (\(kind(of: st.st_mode)))")
        }
        guard access(path, R_OK) == 0 else { throw FileProblem(path: path, what: what, problem: reason(errno)) }
    }

    /// Checks, without creating anything, that `path` is a folder or can be made one: the path is not empty, no
    /// component of it is a file, and the nearest folder that exists can be written. Run it for every output
    /// folder before making any, so a run that cannot write leaves nothing behind.
    public static func checkFolderCanBeMade(_ path: String, what: String) throws(FileProblem) {
        guard !path.isEmpty else { throw FileProblem(path: path, what: what, problem: "the path is empty") }
        var current = path
        while true {
            var st = stat()
            if stat(current, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFDIR else {
                    let problem = current == path ? "not a folder (\(kind(of: st.st_mode)) is there)"
                                                  : "\(current) is \(kind(of: st.st_mode)), not a folder"
                    throw FileProblem(path: path, what: what, problem: problem)
                }
                if access(current, W_OK | X_OK) != 0 {
                    let why = errno == EROFS ? "on a read-only file system" : "cannot be written (\(reason(errno)))"
                    throw FileProblem(path: path, what: what, problem: current == path ? why : "\(current) \(why)")
                }
                return
            }
            let code = errno
            guard code == ENOENT else { throw FileProblem(path: path, what: what, problem: reason(code)) }
            guard let parent = parentFolder(of: current), parent != current else { return }   // relative: the working folder
            current = parent
        }
    }

    /// Checks, without writing, that a file can be written at `path`: the path is not empty and not a folder, and
    /// its folder exists and can be written. Run it before the work whose result goes there.
    public static func checkWritable(_ path: String, what: String) throws(FileProblem) {
        guard !path.isEmpty else { throw FileProblem(path: path, what: what, problem: "the path is empty") }
        try checkReplaceable(path, what: what)
        var st = stat()
        let folder = parentFolder(of: path) ?? "."
        guard stat(folder, &st) == 0 else {
            throw FileProblem(path: path, what: what, problem: "its folder \(folder) \(errno == ENOENT ? "does not exist" : "cannot be used (\(reason(errno)))")")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw FileProblem(path: path, what: what, problem: "\(folder) is \(kind(of: st.st_mode)), not a folder") }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw FileProblem(path: path, what: what, problem: "its folder \(folder) cannot be written (\(reason(errno)))")
        }
        // The permission bits can say yes where the file system says no (/proc, a read-only mount): try it.
        let probe = folder + "/.dojo-write-check-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST { return }
            throw FileProblem(path: path, what: what, problem: "no file can be made in \(folder) (\(reason(code)))")
        }
        close(fd)
        unlink(probe)
    }

    /// Checks that what is at `path`, if anything, is a regular file: only such a file is ever replaced (writing goes
    /// through a rename, which would put a file in place of a device such as /dev/null, a pipe or a link; opening a
    /// pipe blocks).
    public static func checkReplaceable(_ path: String, what: String) throws(FileProblem) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: throw FileProblem(path: path, what: what, problem: "a folder is there, not a file (give a file name)")
        case S_IFLNK: throw FileProblem(path: path, what: what, problem: "is a symbolic link (give the file it points to)")
        default: throw FileProblem(path: path, what: what, problem: "is \(kind(of: st.st_mode)), not a file (give a file name)")
        }
    }

    /// Writes `data` to `path` (whole, through a temporary file and a rename), with errors that name the path
    /// and the reason.
    public static func write(_ data: Data, to path: String, what: String) throws(FileProblem) {
        try checkWritable(path, what: what)
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            let ns = error as NSError
            let code = (ns.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { $0.domain == NSPOSIXErrorDomain ? Int32($0.code) : nil }
            throw FileProblem(path: path, what: what, problem: "cannot be written here (\(code.map(reason) ?? "the file system refused it"))")
        }
    }

    /// Makes the folder `path` and its parents, with errors that name the path and the reason.
    public static func makeFolder(_ path: String, what: String) throws(FileProblem) {
        try checkFolderCanBeMade(path, what: what)
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
            throw FileProblem(path: path, what: what, problem: "cannot be made (\(reason(errno)))")
        }
        // A pseudo file system (/proc, /sys) can say yes to the checks and still hold no folder.
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FileProblem(path: path, what: what, problem: "cannot be made here")
        }
    }

    /// The words for an error Foundation threw about a file (`CocoaError` with a path), or nil for any other
    /// error: the CLI's last resort, so no `Error Domain=NSCocoaErrorDomain …` dump reaches a user.
    public static func plainWords(for error: any Error) -> String? {
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain else { return nil }
        let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path ?? ""
        let underlying = (ns.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { $0.domain == NSPOSIXErrorDomain ? Int32($0.code) : nil }
        let why: String
        if let underlying { why = reason(underlying) } else {
            switch CocoaError.Code(rawValue: ns.code) {
            case .fileNoSuchFile, .fileReadNoSuchFile: why = "no such file or folder"
            case .fileWriteFileExists: why = "something is already there (a file where a folder is wanted?)"
            case .fileReadNoPermission, .fileWriteNoPermission: why = "permission denied"
            case .fileWriteVolumeReadOnly: why = "on a read-only file system"
            case .fileWriteOutOfSpace: why = "no space left on the device"
            case .fileReadCorruptFile: why = "not in the expected format"
            case .fileReadInapplicableStringEncoding: why = "not UTF-8 text"
            default: why = "cannot be read or written (\(ns.code))"
            }
        }
        return path.isEmpty ? "a file or folder: \(why)" : "\(path): \(why)"
    }
}
