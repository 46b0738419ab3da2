import ArgumentParser
import DojoReport
import Foundation

/// `dojo`: train networks with Dojo's numerics on the CPU, and predict their cost on Dojo machines and GPU clusters.
/// One subcommand per user task, one file per subcommand.
@main
struct Dojo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dojo",
        abstract: "OpenDojo: Tesla's Dojo training supercomputer as open software.",
        discussion: """
        Trains vision networks for real on the CPU with Dojo's number formats (BF16, CFP8, CFP16) \
        and records the Graph IR of each step; predicts what the same step costs on any Dojo machine, \
        from a D1 die to several ExaPODs, and on DGX GPU clusters, side by side (sim, compare, sweep). \
        Runs Dojo as a multi-tenant service: serve starts it (HTTP API, dashboard, metrics); submit, jobs, job, \
        cancel, usage, tenant and cluster status talk to it.
        """,
        version: "0.1.0",
        subcommands: [
            // subcommands: keep one per line, sorted
            AuditCommand.self,
            BenchCommand.self,
            CancelCommand.self,
            ClusterCommand.self,
            CompareCommand.self,
            FormatsCommand.self,
            GraphCommand.self,
            JobCommand.self,
            JobsCommand.self,
            MachineCommand.self,
            MachinesCommand.self,
            ModelsCommand.self,
            ScenesCommand.self,
            ServeCommand.self,
            SimCommand.self,
            SubmitCommand.self,
            SweepCommand.self,
            TenantCommand.self,
            TrainCommand.self,
            UsageCommand.self,
            ValidateCommand.self,
        ]
    )

    /// ArgumentParser's entry point, with a last resort for errors nobody worded: Foundation's file errors and
    /// JSON encoding errors become one plain line instead of a dump (`Error Domain=NSCocoaErrorDomain …`).
    static func main() {
        // ArgumentParser's time grows with the square of the arguments (100,000 numbers for `formats convert` never
        // finished): a bound before it parses.
        let maxArguments = 10_000
        if CommandLine.arguments.count - 1 > maxArguments {
            exit(withError: CLIError("\(CommandLine.arguments.count - 1) arguments; at most \(maxArguments) (convert more numbers in several calls)"))
        }
        do {
            var command = try parseAsRoot(nil)
            try command.run()
        } catch {
            var error = error
            if let words = UserFiles.plainWords(for: error) { error = CLIError(words) }
            else if error is EncodingError { error = CLIError("could not write JSON: a value in it is not a finite number") }
            // A rank under dojo train --ranks leaves its error for the launcher to print whole.
            let code = exitCode(for: error), message = fullMessage(for: error)
            if code != .success, !message.isEmpty, RankErrors.leave(message) { Foundation.exit(code.rawValue) }
            exit(withError: error)
        }
    }
}
