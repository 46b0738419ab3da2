import ArgumentParser
import DojoData
import DojoReport
import Foundation

/// `dojo scenes`: look at the embedded driving scenes the occupancy network trains on.
struct ScenesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenes",
        abstract: "Render procedural driving scenes to PNG: every camera view, then the bird's-eye-view occupancy grid.",
        discussion: """
        The same generator and seed as `dojo train --data scenes` (training scenes use --seed, evaluation scenes \
        a derived seed). Row 0 of the grid is farthest ahead, column 0 leftmost; white cells are occupied.
        """)

    @Option(name: .long, help: "Index of the first scene.")
    var index: Int = 0
    @Option(name: .long, help: "How many scenes to write.")
    var count: Int = 1
    @Option(name: .long, help: "Seed of the scene set.")
    var seed: UInt64 = 0
    @Option(name: .long, help: "Cameras around the car.")
    var cameras: Int = 4
    @Option(name: .long, help: "Side of each camera image in pixels.")
    var imageSize: Int = 32
    @Option(name: .long, help: "Cells per side of the BEV grid.")
    var gridSize: Int = 16
    @Option(name: .long, help: "Pixels per image pixel in the PNG.")
    var scale: Int = 4
    @Option(name: .long, help: "Output file (scene-N.png is added per scene when --count > 1).")
    var out: String = "scene.png"

    func validate() throws {
        guard index >= 0 else { throw ValidationError("--index must be 0 or more, got \(index)") }
        guard (1...1000).contains(count) else { throw ValidationError("--count must be 1…1000, got \(count)") }
        guard (1...16).contains(scale) else { throw ValidationError("--scale must be 1…16, got \(scale)") }
        guard index <= 1_000_000_000 - count else { throw ValidationError("--index must be at most \(1_000_000_000 - count) (scenes are numbered below 10^9), got \(index)") }
        guard (1...8).contains(cameras) else { throw ValidationError("--cameras must be 1…8, got \(cameras)") }
        guard (8...256).contains(imageSize) else { throw ValidationError("--image-size must be 8…256 pixels, got \(imageSize)") }
        guard (2...128).contains(gridSize) else { throw ValidationError("--grid-size must be 2…128 cells, got \(gridSize)") }
        // What the PNGs would take, before any is written (8 cameras × 256 px × 16 scale is 25 MB a scene).
        let side = (imageSize * scale)
        let bytes = Double(count) * Double(side * side * 3) * Double(cameras + 1)
        guard bytes <= 2e9 else {
            throw ValidationError("--count \(count) scenes of \(cameras) cameras at \(imageSize)×\(imageSize) × --scale \(scale) would write about \(Int(bytes / 1e9)) GB of PNG pixels; at most 2 GB (fewer scenes, or a smaller --scale)")
        }
        try UserFiles.checkWritable(out, what: "--out")
    }

    func run() throws {
        let scenes = try DrivingScenes(count: index + count, seed: seed, cameras: cameras, imageSize: imageSize, gridSize: gridSize)
        for i in index..<(index + count) {
            let path = count == 1 ? out : (out as NSString).deletingPathExtension + "-\(i).png"
            try scenes.writePNG(at: i, to: path, scale: scale)
            let objects = scenes.scene(at: i).objects.count
            let occupied = scenes.example(at: i).target.filter { $0 > 0.5 }.count
            print("wrote \(path): scene \(i), \(objects) road users, \(occupied) of \(gridSize * gridSize) cells occupied")
        }
    }
}
