import ArgumentParser
import DojoNN
import DojoReport

/// `dojo models`: the model zoo.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the model zoo: what each network is, its task, and its size at its usual input.")

    func run() throws {
        var table = TextTable(headers: ["model", "task", "default input", "parameters", "recipe", "what it is"])
        for e in ModelZoo.entries {
            let shape = ModelDefaults.inputShape(for: e.name)
            let params = (try? ModelZoo.make(e.name, inputShape: shape, classes: e.task == .classification ? (shape[0] == 1 ? 10 : 1000) : 10, seed: 0))?.parameterCount ?? 0
            table.addRow([e.name, e.task.rawValue, shape.map(String.init).joined(separator: "×"), formatThousands(params),
                          "\(e.optimizer) lr \(e.learningRate), \(e.epochs) epochs", e.summary])
        }
        print(table.render())
        print("\nTrain one with `dojo train --model NAME`; see its Graph IR with `dojo graph --model NAME`.")
    }
}
