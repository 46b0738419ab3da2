import DojoMachine
import Foundation
import Testing

/// The presets are compiled into the binary from the YAML files users read and copy; the two must not drift
/// (after editing a preset, run scripts/embed-data.py).
@Suite struct EmbeddedPresetsTests {
    static let presetsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Sources/DojoMachine/Presets").standardized

    @Test func embeddedPresetsEqualTheFiles() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.presetsDirectory.path)
            .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
        #expect(files == Presets.names.sorted())
        for name in files {
            let text = try String(contentsOf: Self.presetsDirectory.appendingPathComponent(name + ".yaml"), encoding: .utf8)
            #expect(Presets.yaml(name) == text, "\(name).yaml differs from the embedded copy: run scripts/embed-data.py")
        }
        #expect(Presets.yaml("nosuch") == nil)
    }
}
