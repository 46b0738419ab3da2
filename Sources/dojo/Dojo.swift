import ArgumentParser

/// `dojo`: train networks with Dojo's numerics on the CPU, and (later) predict their cost on Dojo machines.
/// One subcommand per user task, one file per subcommand.
@main
struct Dojo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dojo",
        abstract: "OpenDojo: Tesla's Dojo training supercomputer as open software.",
        discussion: """
        Trains vision networks for real on the CPU with Dojo's number formats (BF16, CFP8, CFP16) \
        and records the Graph IR that the Dojo compiler and simulator consume.
        """,
        version: "0.1.0",
        subcommands: [
            // subcommands: keep one per line, sorted
            FormatsCommand.self,
            BenchCommand.self,
            GraphCommand.self,
            MachineCommand.self,
            MachinesCommand.self,
            ModelsCommand.self,
            ScenesCommand.self,
            TrainCommand.self,
            ValidateCommand.self,
        ]
    )
}
