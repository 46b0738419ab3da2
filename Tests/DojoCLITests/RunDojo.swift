import Foundation

/// The built `dojo` executable: next to the test bundle (the products directory), else under
/// `.build/{release,debug}` of the package. Shared by every CLI test file.
let dojoExecutableURL: URL? = {
    let fm = FileManager.default
    var candidates: [URL] = []
    let bundle = Bundle.main.bundleURL
    candidates.append(bundle.appendingPathComponent("dojo"))
    candidates.append(bundle.deletingLastPathComponent().appendingPathComponent("dojo"))
    if let exe = Bundle.main.executableURL {
        candidates.append(exe.deletingLastPathComponent().appendingPathComponent("dojo"))
    }
    for b in Bundle.allBundles {
        candidates.append(b.bundleURL.deletingLastPathComponent().appendingPathComponent("dojo"))
    }
    // Tests/DojoCLITests/RunDojo.swift → package root.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for config in ["release", "debug"] {
        candidates.append(root.appendingPathComponent(".build/\(config)/dojo"))
    }
    return candidates.first { fm.isExecutableFile(atPath: $0.path) }
}()

/// This test process's folder for runs' outputs (a training run's checkpoints, scenes' images), removed at exit, so
/// that `make test` leaves nothing in the temporary directory.
let cliTestsFolder: String = {
    let dir = NSTemporaryDirectory() + "dojo-cli-tests-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: cliTestsFolder) }
    return dir
}()

/// Runs the built `dojo` binary with `args` and returns its exit status, stdout and stderr.
/// Output goes through temporary files, so large outputs cannot dead-lock on a full pipe.
/// Returns status -1 and a message in stderr when the binary is not found or cannot start.
func runDojo(_ args: [String], environment: [String: String]? = nil) -> (status: Int32, stdout: String, stderr: String) {
    guard let exe = dojoExecutableURL else {
        return (-1, "", "dojo executable not found next to the test bundle or in .build/{release,debug}")
    }
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("dojo-cli-\(UUID().uuidString)")
    do {
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
    } catch {
        return (-1, "", "cannot create \(dir.path): \(error)")
    }
    defer { try? fm.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
    _ = fm.createFile(atPath: outURL.path, contents: nil)
    _ = fm.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = exe
    process.arguments = args
    if let environment { process.environment = environment }
    do {
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        defer { try? out.close(); try? err.close() }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
    } catch {
        return (-1, "", "cannot run \(exe.path): \(error)")
    }
    let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return (process.terminationStatus, stdout, stderr)
}
