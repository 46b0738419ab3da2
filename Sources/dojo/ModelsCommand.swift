import ArgumentParser
import DojoNN
import DojoReport
import DojoTensor

/// `dojo models`: the model zoo.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the model zoo: what each network is, its task, and its size at its usual input.")

    func run() throws {
        var table = TextTable(headers: ["model", "task", "default input", "parameters", "recipe", "what it is"])
        for e in ModelZoo.entries {
            let spec = try ModelZoo.resolve(e.name)
            let shape = spec.defaultInputShape
            // built on shapes only: no memory or initialisation, so gpt-175b counts as fast as the MLP
            let classes = e.task == .classification ? (shape[0] == 1 ? 10 : 1000) : 10
            let params = Engine.$shapeOnly.withValue(true) {
                (try? ModelZoo.make(e.name, inputShape: shape, classes: classes, seed: 0))?.parameterCount ?? 0
            }
            let input = e.task == .languageModeling ? "\(shape[0]) tokens" : shape.map(String.init).joined(separator: "×")
            table.addRow([e.name, e.task.rawValue, input, formatThousands(params),
                          "\(e.optimizer) lr \(e.learningRate), \(e.epochs) epochs", e.summary])
        }
        print(table.render())
        print("""

        Transformers take a size: NAME:key=value,... with keys \(ModelSpec.allKeys.joined(separator: ", ")) \
        (e.g. gpt:layers=24,hidden=2048,heads=16,seq=4096,vocab=131072, bert-large:seq=128, vit-b16:image=384).
        Train one with `dojo train --model NAME`; see its Graph IR with `dojo graph --model SPEC`.
        """)
    }
}
