import DojoService
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL

/// `dojo serve --tls-cert --tls-key`: HTTPS, so that a tenant on another host does not send its token in clear.
public struct TLSFiles: Sendable {
    public var certificateChain: String
    public var privateKey: String
    public init(certificateChain: String, privateKey: String) { self.certificateChain = certificateChain; self.privateKey = privateKey }

    /// The server's TLS configuration; a file that is missing or not PEM is a clear error.
    func configuration() throws -> TLSConfiguration {
        let certs: [NIOSSLCertificate]
        do { certs = try NIOSSLCertificate.fromPEMFile(certificateChain) } catch {
            throw ServiceError.badRequest("--tls-cert \(certificateChain): not a readable PEM certificate (\(error))")
        }
        guard !certs.isEmpty else { throw ServiceError.badRequest("--tls-cert \(certificateChain): no certificate in the file") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: privateKey, format: .pem) } catch {
            throw ServiceError.badRequest("--tls-key \(privateKey): not a readable PEM private key (\(error))")
        }
        return TLSConfiguration.makeServerConfiguration(certificateChain: certs.map { .certificate($0) }, privateKey: .privateKey(key))
    }
}

/// `dojo serve`: the job service's controller loop and its HTTP API in one process.
public enum DojoServer {
    /// The Hummingbird application serving `api` on `host:port` (port 0: any free port; `onReady` gets the bound one).
    public static func application(api: DojoAPI, host: String, port: Int, tls: TLSConfiguration? = nil,
                                   onReady: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        // Hummingbird's own lines ("Server started…") only when asked for (LOG_LEVEL=info): dojo serve prints its own.
        var logger = Logger(label: "dojo-serve")
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        return Application(
            responder: api,
            // A connection idle for 30 s (a client that sent half a request and stopped) is closed: many such
            // connections would otherwise hold the server's descriptors.
            server: try tls.map { try .tls(.http1(configuration: .init(idleTimeout: .seconds(30))), tlsConfiguration: $0) }
                ?? .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: .init(address: .hostname(host, port: port), serverName: "OpenDojo"),
            onServerRunning: { channel in await onReady(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// Opens the service, then runs its controller loop and the HTTP server until SIGINT or SIGTERM. Workers keep
    /// running after it returns; the next start adopts them.
    /// `onReady` gets the bound port, the machine's name, and what the start found of an earlier controller's jobs
    /// (empty when nothing).
    public static func serve(options: ServiceOptions, host: String, port: Int, tls: TLSFiles? = nil,
                             onReady: @escaping @Sendable (Int, String, [String]) async -> Void = { _, _, _ in }) async throws {
        let tlsConfiguration = try tls?.configuration()   // before the service opens: a bad file changes nothing
        let service = try await JobService.open(options)
        let machine = service.machineName
        let r = await service.recovered
        let found = [(r.adopted, "adopted (still running)"), (r.booked, "booked (ended while down)"), (r.restarted, "restarted"),
                     (r.orphansKilled, "orphan process groups killed")].filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
        let notes = service.sandboxSummary + (found.isEmpty ? [] : ["recovered from the last run: " + found.joined(separator: ", ")])
        let app = try application(api: DojoAPI(service: service), host: host, port: port, tls: tlsConfiguration,
                                  onReady: { await onReady($0, machine, notes) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await service.run() }
            // A controller round that fails is retried by the next; say so on stderr, once per distinct error.
            group.addTask {
                var last: String?
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: 1_000_000_000)
                    let e = await service.lastError
                    if let e, e != last { FileHandle.standardError.write(Data("dojo serve: controller round failed: \(e)\n".utf8)) }
                    last = e
                    for note in await service.takeHostNotes() { FileHandle.standardError.write(Data("dojo serve: \(note)\n".utf8)) }
                }
            }
            // Returns after a graceful shutdown (SIGINT/SIGTERM), or throws when it cannot bind.
            do {
                try await app.runService()
            } catch {
                group.cancelAll()
                let text = "\(error)"
                if text.contains("Address already in use") {
                    throw ServiceError.conflict("cannot listen on \(host):\(port): the address is in use (another dojo serve? pick --port)")
                }
                throw ServiceError(.internalError, "cannot listen on \(host):\(port): \(text)")
            }
            group.cancelAll()
            try await group.waitForAll()
        }
    }
}
