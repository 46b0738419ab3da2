import Foundation
import Testing
import DojoData

@Suite struct DrivingScenesTests {
    let data = try! DrivingScenes(count: 1000, seed: 42)

    @Test func shapes() throws {
        #expect(data.inputShape == [4, 3, 32, 32])
        #expect(data.targetShape == [16, 16])
        #expect(data.classNames == ["no-pedestrian", "pedestrian"])
        let ex = data.example(at: 3)
        #expect(ex.input.count == 4 * 3 * 32 * 32)
        #expect(ex.target.count == 256)
        #expect(ex.label == 0 || ex.label == 1)
        #expect(ex.input.allSatisfy { $0.isFinite })
        let other = try DrivingScenes(count: 5, seed: 1, cameras: 6, imageSize: 20, gridSize: 40, range: 20)
        let e2 = other.example(at: 4)
        #expect(other.inputShape == [6, 3, 20, 20])
        #expect(e2.input.count == 6 * 3 * 20 * 20)
        #expect(e2.target.count == 1600)
        // Extremes of the allowed arguments render finite values.
        let odd = try DrivingScenes(count: 3, seed: 2, cameras: 1, imageSize: 9, gridSize: 2, range: 30)
        let e3 = odd.example(at: 2)
        #expect(e3.input.count == 3 * 81 && e3.target.count == 4 && e3.input.allSatisfy { $0.isFinite })
        let wide = try DrivingScenes(count: 3, seed: 2, cameras: 8, imageSize: 64, gridSize: 128, range: 16)
        let e4 = wide.example(at: 1)
        #expect(e4.input.count == 8 * 3 * 64 * 64 && e4.input.allSatisfy { $0.isFinite })
        #expect(e4.target.reduce(0, +) > 0)
    }

    @Test func determinism() throws {
        let a = data.example(at: 17)
        let b = data.example(at: 17)
        #expect(a == b)
        let same = try DrivingScenes(count: 1000, seed: 42)
        #expect(same.example(at: 17) == a)
        let other = try DrivingScenes(count: 1000, seed: 43)
        #expect(other.example(at: 17).input != a.input)
        #expect(data.example(at: 18).input != a.input)
        // Thread-safe: concurrent generation gives the same bits.
        let results = ResultsBox(count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { i in results.set(i, data.example(at: 10 + i)) }
        for i in 0..<8 { #expect(results.get(i) == data.example(at: 10 + i)) }
    }

    /// The grid marks exactly the cells that an object's footprint overlaps: checked by dense sampling
    /// inside every cell, independently of the library's separating-axis test.
    @Test func occupancyMatchesObjects() {
        let G = data.gridSize, R = data.range
        let cell = 2 * R / Float(G)
        for index in 0..<30 {
            let scene = data.scene(at: index)
            let grid = data.example(at: index).target
            #expect(!scene.objects.isEmpty)
            for r in 0..<G {
                for c in 0..<G {
                    let xHi = R - Float(r) * cell, yHi = R - Float(c) * cell
                    var sampledHit = false
                    var nearHit = false
                    for i in 0..<12 {
                        for j in 0..<12 {
                            let x = xHi - (Float(i) + 0.5) / 12 * cell
                            let y = yHi - (Float(j) + 0.5) / 12 * cell
                            if scene.objects.contains(where: { $0.footprintContains(x: x, y: y) }) { sampledHit = true }
                        }
                    }
                    // A marked cell must at least come within a sample spacing of some footprint.
                    let cx = xHi - cell / 2, cy = yHi - cell / 2
                    for o in scene.objects {
                        let grown = SceneObject(kind: o.kind, x: o.x, y: o.y, heading: o.heading,
                                                length: o.length + cell * 1.5, width: o.width + cell * 1.5,
                                                height: o.height, color: o.color)
                        if grown.footprintContains(x: cx, y: cy) { nearHit = true }
                    }
                    if sampledHit { #expect(grid[r * G + c] == 1, "scene \(index) cell (\(r), \(c)) should be occupied") }
                    if grid[r * G + c] == 1 { #expect(nearHit, "scene \(index) cell (\(r), \(c)) marked with no object near") }
                    #expect(grid[r * G + c] == 0 || grid[r * G + c] == 1)
                }
            }
        }
    }

    /// No object overlaps another or the ego car (checked by sampling footprints on a 10 cm lattice).
    @Test func objectsDoNotOverlap() {
        for index in 0..<40 {
            let objects = data.scene(at: index).objects
            for (i, o) in objects.enumerated() {
                let r = max(o.length, o.width)
                var x = o.x - r
                while x <= o.x + r {
                    var y = o.y - r
                    while y <= o.y + r {
                        if o.footprintContains(x: x, y: y) {
                            #expect(!(abs(x) < 2.25 && abs(y) < 0.95), "scene \(index) object \(i) overlaps the ego car")
                            for (j, p) in objects.enumerated() where j != i {
                                #expect(!p.footprintContains(x: x, y: y), "scene \(index) objects \(i), \(j) overlap")
                            }
                        }
                        y += 0.1
                    }
                    x += 0.1
                }
            }
        }
    }

    @Test func gridConvention() throws {
        // One car straight ahead, 10 m, on the left: rows near the top, columns left of centre.
        let d = try DrivingScenes(count: 1, seed: 0, gridSize: 16, range: 16)
        var scene = d.scene(at: 0)
        scene.objects = [SceneObject(kind: .vehicle, x: 11, y: 5, heading: 0, length: 4, width: 2, height: 1.5,
                                     color: SIMD3(1, 0, 0))]
        let grid = d.occupancy(scene)
        // x in [9, 13] → rows (16 − 13)/2 = 1.5 … (16 − 9)/2 = 3.5 → rows 1, 2, 3; column c covers y in [14 − 2c, 16 − 2c].
        var marked: [[Int]] = []
        for r in 0..<16 { for c in 0..<16 where grid[r * 16 + c] == 1 { marked.append([r, c]) } }
        #expect(marked == [[1, 5], [2, 5], [3, 5]])  // y in [4, 6] is exactly column 5: touching does not count
        scene.objects[0].y = 5.2  // now y in [4.2, 6.2] overlaps columns 4 and 5
        let grid2 = d.occupancy(scene)
        var marked2: [[Int]] = []
        for r in 0..<16 { for c in 0..<16 where grid2[r * 16 + c] == 1 { marked2.append([r, c]) } }
        #expect(marked2 == [[1, 4], [1, 5], [2, 4], [2, 5], [3, 4], [3, 5]])
    }

    @Test func occupancyFractionAndLabels() {
        var occupied = 0.0, minFrac = 1.0, maxFrac = 0.0
        var labelCounts = [0, 0]
        for i in 0..<200 {
            let ex = data.example(at: i)
            let f = Double(ex.target.reduce(0, +)) / Double(ex.target.count)
            occupied += f
            minFrac = min(minFrac, f)
            maxFrac = max(maxFrac, f)
            labelCounts[Int(ex.label)] += 1
            let scene = data.scene(at: i)
            let ped = scene.objects.contains { $0.kind == .pedestrian && abs($0.x) < 16 && abs($0.y) < 16 }
            #expect(ex.label == (ped ? 1 : 0))
        }
        let mean = occupied / 200
        print("DrivingScenes occupancy: mean \(mean), min \(minFrac), max \(maxFrac); labels \(labelCounts)")
        #expect(mean > 0.03 && mean < 0.2)
        #expect(maxFrac < 0.4)
        #expect(labelCounts[0] > 40 && labelCounts[1] > 40)
    }

    @Test func imagesNotConstant() {
        let ex = data.example(at: 5)
        let plane = 32 * 32
        for cam in 0..<4 {
            for ch in 0..<3 {
                let p = ex.input[(cam * 3 + ch) * plane ..< (cam * 3 + ch + 1) * plane]
                let mean = p.reduce(0, +) / Float(plane)
                let variance = p.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(plane)
                #expect(variance > 0.05, "camera \(cam) channel \(ch) is nearly constant")
                #expect(abs(mean) < 2.5)
            }
            // Sky (top row) is bluer than it is red; the bottom row is ground.
            let top = ex.input[(cam * 3 + 2) * plane + 16] - ex.input[(cam * 3 + 0) * plane + 16]
            #expect(top > 0)
        }
        // Over many scenes the values are roughly centred and of unit-ish range.
        var sum = 0.0, sq = 0.0, n = 0.0
        for i in 0..<20 { for v in data.example(at: i).input { sum += Double(v); sq += Double(v * v); n += 1 } }
        let mean = sum / n, sd = (sq / n - mean * mean).squareRoot()
        print("DrivingScenes pixel mean \(mean), sd \(sd)")
        #expect(abs(mean) < 0.8 && sd > 0.3 && sd < 2)
    }

    /// A red car 8 m straight ahead shows up red in the front camera, where the empty road is grey,
    /// and not at all in the rear camera.
    @Test func cameraSeesObject() throws {
        let d = try DrivingScenes(count: 1, seed: 0)
        var scene = d.scene(at: 0)
        scene.road.heading = 0
        scene.road.curvature = 0
        scene.road.offset = 0
        scene.noise = 0
        scene.objects = []
        scene.scenery = []
        let empty = d.render(scene)
        scene.objects = [SceneObject(kind: .vehicle, x: 8 + 2.25, y: 0, heading: 0, length: 4.5, width: 1.9,
                                     height: 1.5, color: SIMD3(0.9, 0.05, 0.05))]
        let car = d.render(scene)
        let S = 32, plane = S * S
        // The car's rear face spans depth 8 m: columns 16 ± 16·0.95/8 ≈ 14…17, rows below the horizon to 16+16·1.6/8·… .
        // Body pixel: just below the horizon (z ≈ 0.4–0.9 m at 8 m → rows 17–18), centre columns.
        func rgb(_ img: [Float], cam: Int, v: Int, u: Int) -> SIMD3<Float> {
            SIMD3(img[(cam * 3) * plane + v * S + u], img[(cam * 3 + 1) * plane + v * S + u],
                  img[(cam * 3 + 2) * plane + v * S + u]) * 0.25 + 0.5
        }
        for (v, u) in [(18, 15), (18, 16), (17, 16)] {
            let withCar = rgb(car, cam: 0, v: v, u: u)
            let road = rgb(empty, cam: 0, v: v, u: u)
            #expect(withCar.x > withCar.y + 0.2 && withCar.x > withCar.z + 0.2, "pixel (\(v), \(u)) \(withCar) should be red")
            #expect(abs(road.x - road.y) < 0.06 && abs(road.y - road.z) < 0.08, "road pixel (\(v), \(u)) \(road) should be grey")
        }
        // Rear, left and right cameras do not see it.
        for cam in 1..<4 {
            #expect(Array(car[cam * 3 * plane ..< (cam + 1) * 3 * plane]) == Array(empty[cam * 3 * plane ..< (cam + 1) * 3 * plane]))
        }
        // Pixels away from the car are unchanged in the front camera.
        #expect(rgb(car, cam: 0, v: 30, u: 2) == rgb(empty, cam: 0, v: 30, u: 2))
        #expect(rgb(car, cam: 0, v: 5, u: 16) == rgb(empty, cam: 0, v: 5, u: 16))
    }

    /// The mirror augmentation matches rendering the mirrored scene: images (up to float rounding at a few
    /// edge pixels), camera order and BEV grid.
    @Test func mirrorAugmentationIsConsistent() throws {
        var sawMirror = false, sawPlain = false
        for index in 0..<6 {
            var scene = data.scene(at: index)
            scene.noise = 0
            let ex = Example(input: data.render(scene), label: 0, target: data.occupancy(scene))
            let m = data.mirrored(ex)
            #expect(data.mirrored(m) == ex)
            let direct = Example(input: data.render(scene.mirrored), label: 0, target: data.occupancy(scene.mirrored))
            let differing = zip(m.input, direct.input).filter { abs($0 - $1) > 0.02 }.count
            #expect(differing < m.input.count / 200, "scene \(index): \(differing) pixels differ")
            let cellsDiffering = zip(m.target, direct.target).filter { $0 != $1 }.count
            #expect(cellsDiffering <= 1, "scene \(index): \(cellsDiffering) cells differ")
            // The front camera's image is flipped in place; left (1) and right (3) swap.
            let plane = 32 * 32
            #expect(m.input[5] == ex.input[31 - 5 + 0 * plane])
            #expect(m.input[3 * 3 * plane + 7] == ex.input[1 * 3 * plane + 31 - 7])

            for seed in UInt64(0)..<8 {
                var g = SplitMix64(seed: seed)
                var aug = data.example(at: index)
                let original = aug
                data.augment(&aug, generator: &g)
                if aug == original { sawPlain = true } else { sawMirror = true; #expect(aug == data.mirrored(original)) }
            }
        }
        #expect(sawMirror && sawPlain)
    }

    @Test func argumentValidation() {
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 0, seed: 1) }?.contains("count") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, cameras: 0) }?.contains("cameras") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, cameras: 9) }?.contains("1...8") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, imageSize: 7) }?.contains("imageSize") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, imageSize: 257) }?.contains("imageSize") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, gridSize: 1) }?.contains("gridSize") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, gridSize: 129) }?.contains("gridSize") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, range: .nan) }?.contains("range") == true)
        #expect(dataErrorMessage { _ = try DrivingScenes(count: 1, seed: 1, cameras: 8, imageSize: 256, gridSize: 128) } == nil)
    }

    @Test func previewPPM() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dojo-scene-\(getpid()).ppm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try data.writePPM(at: 0, to: path, scale: 2)
        let bytes = try #require(FileManager.default.contents(atPath: path))
        let header = "P6\n\(5 * 64 + 8) 64\n255\n"
        #expect(bytes.starts(with: Data(header.utf8)))
        #expect(bytes.count == header.utf8.count + (5 * 64 + 8) * 64 * 3)
        if let dir = ProcessInfo.processInfo.environment["DOJO_SCENE_PREVIEW"] {
            for i in 0..<6 { try data.writePPM(at: i, to: "\(dir)/scene\(i).ppm", scale: 6) }
            let large = try DrivingScenes(count: 1000, seed: 42, imageSize: 128, gridSize: 32)
            for i in 0..<6 { try large.writePPM(at: i, to: "\(dir)/large\(i).ppm", scale: 1) }
        }
    }

    /// Generation speed (printed; the bound is loose because the test machine is shared).
    @Test func generationSpeed() {
        let n = 1000
        let start = Date()
        var checksum: Float = 0
        for i in 0..<n { checksum += data.example(at: i).input[100] }
        let single = Double(n) / Date().timeIntervalSince(start)
        let boxed = ResultsBox(count: 2)
        let start2 = Date()
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            var i = t
            while i < n { _ = data.example(at: i); i += 2 }
            boxed.set(t, Example(input: [], label: 0))
        }
        let dual = Double(n) / Date().timeIntervalSince(start2)
        print("DrivingScenes 4×3×32×32 generation: \(Int(single)) examples/s on 1 thread, \(Int(dual)) examples/s on 2 threads (checksum \(checksum))")
        #expect(single > 100)
    }
}

final class ResultsBox: @unchecked Sendable {
    private var items: [Example?]
    private let lock = NSLock()
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ e: Example) { lock.lock(); items[i] = e; lock.unlock() }
    func get(_ i: Int) -> Example? { lock.lock(); defer { lock.unlock() }; return items[i] }
}

/// The description of the DataError `body` throws, nil if it throws nothing.
func dataErrorMessage(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch let e as DataError { return e.description } catch { return "unexpected error \(error)" }
}
