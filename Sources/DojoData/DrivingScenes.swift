// DrivingScenes: the embedded default data set — a seeded procedural multi-camera driving-scene generator
// with bird's-eye-view (BEV) occupancy targets, the task Dojo was built to train. No download.
//
// Conventions (ego frame, metres): the ego car's roof-top camera rig sits at the origin, x forward, y left,
// z up; the ground is z = 0. Camera k of n has yaw 2πk/n counter-clockwise from +x, so 4 cameras are
// front, left, rear, right. Every camera is a pinhole at 1.6 m height, level, 90° horizontal field of view.
//
// Input: [cameras, 3, S, S] RGB planes, row 0 = top of the image, column 0 = left of the image, values
// (v − 0.5) / 0.25 for linear colours v in about [0, 1].
//
// Target: occupancy [G, G] over [−range, range]² around the ego car, like a map seen from above with the
// direction of travel up: row 0 is the farthest ahead (x from range − cell to range), column 0 the leftmost
// (y from range − cell to range); a cell is 1 where the footprint (a rotated rectangle) of a vehicle or a
// pedestrian overlaps the cell with positive area, else 0. The ego car itself and the roadside scenery
// (buildings, trees) are not marked.
//
// Label: 1 ("pedestrian") if the centre of some pedestrian lies inside the BEV area [−range, range]²,
// else 0 ("no-pedestrian"); about half the scenes have one. (Every scene has vehicles, so "nearest object
// class" would almost always be "vehicle".)
import DojoReport
import Foundation

/// A box-shaped road user standing on the ground.
public struct SceneObject: Sendable, Equatable {
    /// Road users (`vehicle`, `pedestrian`) are what the occupancy grid marks; `building` and `tree` are
    /// roadside scenery (in `Scene.scenery`), drawn in the cameras but never marked.
    public enum Kind: Int32, Sendable { case vehicle = 0, pedestrian = 1, building = 2, tree = 3 }
    public var kind: Kind
    /// Footprint centre (m, ego frame).
    public var x: Float
    public var y: Float
    /// Direction of the length axis, radians counter-clockwise from +x.
    public var heading: Float
    public var length: Float
    public var width: Float
    public var height: Float
    /// Vehicles: body colour; pedestrians: shirt colour; buildings: walls; trees: crown (linear RGB in [0, 1]).
    public var color: SIMD3<Float>
    /// Pedestrians: trousers colour; buildings: windows; trees: trunk; unused for vehicles.
    public var secondaryColor: SIMD3<Float>
    public var parked: Bool

    public init(kind: Kind, x: Float, y: Float, heading: Float, length: Float, width: Float, height: Float,
                color: SIMD3<Float>, secondaryColor: SIMD3<Float> = SIMD3(0.1, 0.1, 0.15), parked: Bool = false) {
        self.kind = kind
        self.x = x
        self.y = y
        self.heading = heading
        self.length = length
        self.width = width
        self.height = height
        self.color = color
        self.secondaryColor = secondaryColor
        self.parked = parked
    }

    /// The footprint's four corners (counter-clockwise).
    public var footprint: [SIMD2<Float>] { footprint(margin: 0) }

    /// The corners of the footprint grown by `margin` metres on every side.
    public func footprint(margin: Float) -> [SIMD2<Float>] {
        let c = cos(heading), s = sin(heading)
        let a = SIMD2<Float>(c, s) * (length / 2 + margin), b = SIMD2<Float>(-s, c) * (width / 2 + margin)
        let o = SIMD2<Float>(x, y)
        return [o + a + b, o - a + b, o - a - b, o + a - b]
    }

    /// Whether the ground point (px, py) lies inside the footprint.
    public func footprintContains(x px: Float, y py: Float) -> Bool {
        let c = cos(heading), s = sin(heading)
        let dx = px - x, dy = py - y
        let u = dx * c + dy * s, v = -dx * s + dy * c
        return abs(u) <= length / 2 && abs(v) <= width / 2
    }
}

/// The road: a gently curving strip of lanes, kerbs and sidewalks, grass beyond.
public struct Road: Sendable, Equatable {
    /// Lateral position (y) of the road's centre line at x = 0.
    public var offset: Float
    /// Road direction at x = 0 (radians).
    public var heading: Float
    /// Curvature (1/m): the centre line is y = offset + tan(heading)·x + curvature·x²/2.
    public var curvature: Float
    public var laneCount: Int
    public var laneWidth: Float
    public var sidewalkWidth: Float
    /// Lanes 0..<forwardLanes (counted from the right edge) carry traffic in +x; the rest oncoming.
    public var forwardLanes: Int
    /// Phase (m) of the dashed lane markings.
    public var dashPhase: Float

    public init(offset: Float, heading: Float, curvature: Float, laneCount: Int, laneWidth: Float,
                sidewalkWidth: Float, forwardLanes: Int, dashPhase: Float) {
        self.offset = offset
        self.heading = heading
        self.curvature = curvature
        self.laneCount = laneCount
        self.laneWidth = laneWidth
        self.sidewalkWidth = sidewalkWidth
        self.forwardLanes = forwardLanes
        self.dashPhase = dashPhase
    }

    public var width: Float { Float(laneCount) * laneWidth }
    @inline(__always) public func centre(atX x: Float) -> Float { offset + tan(heading) * x + 0.5 * curvature * x * x }
    /// Signed lateral distance from the centre line (+ left), a good approximation for gentle curves.
    @inline(__always) public func lateral(x: Float, y: Float) -> Float { y - centre(atX: x) }
    /// Road direction at x (radians).
    public func direction(atX x: Float) -> Float { atan(tan(heading) + curvature * x) }
    /// Lateral offset of the middle of lane i (0 = rightmost).
    public func laneCentre(_ i: Int) -> Float { -width / 2 + (Float(i) + 0.5) * laneWidth }
}

/// Everything a scene is drawn from.
public struct Scene: Sendable, Equatable {
    public var road: Road
    /// Road users: vehicles and pedestrians (what the occupancy grid marks).
    public var objects: [SceneObject]
    /// Roadside buildings and trees beyond the sidewalks (drawn, not marked).
    public var scenery: [SceneObject]
    /// Global light multiplier (about 0.7–1.25).
    public var brightness: Float
    public var sunAzimuth: Float
    public var sunElevation: Float
    public var asphalt: SIMD3<Float>
    public var grass: SIMD3<Float>
    public var sidewalk: SIMD3<Float>
    public var skyHorizon: SIMD3<Float>
    public var skyZenith: SIMD3<Float>
    public var noiseSeed: UInt64
    /// Amplitude of the per-pixel noise (linear colour units).
    public var noise: Float

    public init(road: Road, objects: [SceneObject], scenery: [SceneObject] = [], brightness: Float = 1, sunAzimuth: Float = 0.7,
                sunElevation: Float = 0.8, asphalt: SIMD3<Float> = SIMD3(0.32, 0.32, 0.34),
                grass: SIMD3<Float> = SIMD3(0.25, 0.45, 0.18), sidewalk: SIMD3<Float> = SIMD3(0.6, 0.58, 0.54),
                skyHorizon: SIMD3<Float> = SIMD3(0.78, 0.84, 0.92), skyZenith: SIMD3<Float> = SIMD3(0.35, 0.55, 0.9),
                noiseSeed: UInt64 = 0, noise: Float = 0) {
        self.road = road
        self.objects = objects
        self.scenery = scenery
        self.brightness = brightness
        self.sunAzimuth = sunAzimuth
        self.sunElevation = sunElevation
        self.asphalt = asphalt
        self.grass = grass
        self.sidewalk = sidewalk
        self.skyHorizon = skyHorizon
        self.skyZenith = skyZenith
        self.noiseSeed = noiseSeed
        self.noise = noise
    }

    /// The scene mirrored left–right (y → −y): what `DrivingScenes.mirrored(_:)` does to an example.
    public var mirrored: Scene {
        var m = self
        m.road.offset = -road.offset
        m.road.heading = -road.heading
        m.road.curvature = -road.curvature
        // Lanes are counted from the right edge: mirroring reverses them and the travel directions.
        m.road.forwardLanes = road.laneCount - road.forwardLanes
        m.sunAzimuth = -sunAzimuth
        func mirror(_ o: SceneObject) -> SceneObject {
            var o = o
            o.y = -o.y
            o.heading = -o.heading
            return o
        }
        m.objects = objects.map(mirror)
        m.scenery = scenery.map(mirror)
        return m
    }

    /// The object nearest the ego car (centre distance), if any.
    public var nearestObject: SceneObject? {
        objects.min { ($0.x * $0.x + $0.y * $0.y) < ($1.x * $1.x + $1.y * $1.y) }
    }
}

public struct DrivingScenes: Dataset {
    public let count: Int
    public let seed: UInt64
    public let cameras: Int
    public let imageSize: Int
    public let gridSize: Int
    public let range: Float
    /// Camera height above the ground (m) and horizontal field of view (radians).
    public static let cameraHeight: Float = 1.6
    public static let fieldOfView: Float = .pi / 2
    /// The ego car's footprint (4.5 × 1.9 m centred on the origin); it is not rendered or marked.
    public static let egoFootprint: [SIMD2<Float>] = [SIMD2(2.25, 0.95), SIMD2(-2.25, 0.95), SIMD2(-2.25, -0.95), SIMD2(2.25, -0.95)]

    public var name: String { "driving-scenes" }
    public var inputShape: [Int] { [cameras, 3, imageSize, imageSize] }
    public var targetShape: [Int] { [gridSize, gridSize] }
    public var classNames: [String] { ["no-pedestrian", "pedestrian"] }

    public init(count: Int, seed: UInt64, cameras: Int = 4, imageSize: Int = 32, gridSize: Int = 16,
                range: Float = 16) throws(DataError) {
        guard count > 0 else { throw .invalidArgument(name: "count", value: "\(count)", expected: "> 0") }
        guard (1...8).contains(cameras) else {
            throw .invalidArgument(name: "cameras", value: "\(cameras)", expected: "1...8")
        }
        guard (8...256).contains(imageSize) else {
            throw .invalidArgument(name: "imageSize", value: "\(imageSize)", expected: "8...256")
        }
        guard (2...128).contains(gridSize) else {
            throw .invalidArgument(name: "gridSize", value: "\(gridSize)", expected: "2...128")
        }
        guard range.isFinite, range >= 2, range <= 200 else {
            throw .invalidArgument(name: "range", value: "\(range)", expected: "2...200 metres")
        }
        self.count = count
        self.seed = seed
        self.cameras = cameras
        self.imageSize = imageSize
        self.gridSize = gridSize
        self.range = range
    }

    /// Yaw of camera k (radians, counter-clockwise from straight ahead).
    public func cameraYaw(_ k: Int) -> Float { 2 * .pi * Float(k) / Float(cameras) }

    public func example(at index: Int) -> Example {
        precondition(index >= 0 && index < count, "DrivingScenes index \(index) out of range 0..<\(count)")
        let s = scene(at: index)
        let label: Int32 = pedestrianInRange(s) ? 1 : 0
        return Example(input: render(s), label: label, target: occupancy(s))
    }

    /// Whether some pedestrian's centre lies inside the BEV area (the label).
    public func pedestrianInRange(_ scene: Scene) -> Bool {
        scene.objects.contains { $0.kind == .pedestrian && abs($0.x) < range && abs($0.y) < range }
    }

    /// Augmentation: with probability 1/2 the whole example is mirrored left–right (`mirrored(_:)`), so
    /// images, camera order and BEV grid stay consistent; the label is unchanged (the BEV area is symmetric).
    public func augment(_ example: inout Example, generator: inout SplitMix64) {
        if generator.next() >> 63 == 1 { example = mirrored(example) }
    }

    /// An example mirrored left–right (y → −y): camera k takes the horizontally flipped image of camera
    /// (n − k) mod n (front and rear stay, left and right swap), and the BEV grid's columns are reversed.
    public func mirrored(_ example: Example) -> Example {
        let S = imageSize, G = gridSize
        var out = example
        example.input.withUnsafeBufferPointer { src in
            out.input.withUnsafeMutableBufferPointer { dst in
                for cam in 0..<cameras {
                    let from = (cameras - cam) % cameras
                    for ch in 0..<3 {
                        for v in 0..<S {
                            let d = ((cam * 3 + ch) * S + v) * S, s0 = ((from * 3 + ch) * S + v) * S
                            for u in 0..<S { dst[d + u] = src[s0 + S - 1 - u] }
                        }
                    }
                }
            }
        }
        if example.target.count == G * G {
            for r in 0..<G { for c in 0..<G { out.target[r * G + c] = example.target[r * G + G - 1 - c] } }
        }
        return out
    }

    // MARK: scene generation

    /// The scene of example `index`: a pure function of (seed, index).
    public func scene(at index: Int) -> Scene {
        var g = SplitMix64(seed: SplitMix64.mix(seed, UInt64(index), 0x5343_454E))
        let laneCount = 2 + g.nextInt(below: 3)
        let laneWidth = g.uniform(3.2, 3.8)
        let forwardLanes = (laneCount + 1) / 2
        let egoLane = g.nextInt(below: forwardLanes)
        let width = Float(laneCount) * laneWidth
        var road = Road(offset: 0, heading: g.uniform(-0.12, 0.12), curvature: g.uniform(-0.012, 0.012),
                        laneCount: laneCount, laneWidth: laneWidth, sidewalkWidth: g.uniform(2.0, 4.0),
                        forwardLanes: forwardLanes, dashPhase: g.uniform(0, 9))
        // The ego car drives in the middle of lane egoLane: the lateral position of y = 0 is its centre.
        road.offset = width / 2 - (Float(egoLane) + 0.5) * laneWidth + g.uniform(-0.25, 0.25)

        var objects: [SceneObject] = []
        let reach = range + 3
        // Objects keep a gap from the ego car (4.5 × 1.9 m at the origin) and from each other.
        func fits(_ o: SceneObject, radius: Float) -> Bool {
            let grown = o.footprint(margin: o.kind == .vehicle ? 0.5 : 0.2)
            if polygonsOverlap(grown, Self.egoFootprint) { return false }
            for p in objects where polygonsOverlap(grown, p.footprint) { return false }
            return true
        }
        func vehicleColor(_ g: inout SplitMix64) -> SIMD3<Float> {
            let palette: [SIMD3<Float>] = [
                SIMD3(0.92, 0.92, 0.92), SIMD3(0.08, 0.08, 0.09), SIMD3(0.62, 0.63, 0.66), SIMD3(0.75, 0.1, 0.08),
                SIMD3(0.1, 0.22, 0.65), SIMD3(0.3, 0.3, 0.32), SIMD3(0.12, 0.45, 0.2), SIMD3(0.9, 0.75, 0.1),
                SIMD3(0.55, 0.05, 0.25), SIMD3(0.95, 0.45, 0.05),
            ]
            let base = palette[g.nextInt(below: palette.count)]
            let j = SIMD3<Float>(g.uniform(-0.05, 0.05), g.uniform(-0.05, 0.05), g.uniform(-0.05, 0.05))
            return simdClamp(base + j)
        }
        // Moving vehicles on lanes.
        let vehicles = 3 + g.nextInt(below: 6)
        for _ in 0..<vehicles {
            for _ in 0..<12 {
                let lane = g.nextInt(below: laneCount)
                let x = g.uniform(-reach, reach)
                let d = road.laneCentre(lane) + g.uniform(-0.3, 0.3)
                let forward = lane < forwardLanes
                let o = SceneObject(kind: .vehicle, x: x, y: road.centre(atX: x) + d,
                                    heading: road.direction(atX: x) + (forward ? 0 : .pi) + g.uniform(-0.08, 0.08),
                                    length: g.uniform(4.2, 4.9), width: g.uniform(1.8, 2.0), height: g.uniform(1.4, 1.7),
                                    color: vehicleColor(&g))
                if fits(o, radius: 2.5) { objects.append(o); break }
            }
        }
        // Maybe a car parked at the road edge.
        if g.chance(0.5) {
            for _ in 0..<8 {
                let left = g.chance(0.5)
                let x = g.uniform(-reach, reach)
                let d = (left ? 1 : -1) * (width / 2 - 1.05)
                let o = SceneObject(kind: .vehicle, x: x, y: road.centre(atX: x) + d,
                                    heading: road.direction(atX: x) + (left ? .pi : 0) + g.uniform(-0.04, 0.04),
                                    length: g.uniform(4.2, 4.8), width: g.uniform(1.8, 1.95), height: g.uniform(1.4, 1.6),
                                    color: vehicleColor(&g), parked: true)
                if fits(o, radius: 2.5) { objects.append(o); break }
            }
        }
        // Pedestrians: mostly on the sidewalks, some crossing.
        let pedestrians = g.chance(0.4) ? 0 : 1 + g.nextInt(below: 4)
        for _ in 0..<pedestrians {
            for _ in 0..<12 {
                let x = g.uniform(-reach, reach)
                let crossing = g.chance(0.2)
                let d: Float
                let heading: Float
                if crossing {
                    d = g.uniform(-width / 2, width / 2)
                    heading = road.direction(atX: x) + .pi / 2 + (g.chance(0.5) ? .pi : 0) + g.uniform(-0.2, 0.2)
                } else {
                    let side: Float = g.chance(0.5) ? 1 : -1
                    d = side * (width / 2 + 0.5 + g.uniform(0, max(0.1, road.sidewalkWidth - 1)))
                    heading = g.uniform(-.pi, .pi)
                }
                let shirt = SIMD3<Float>(g.nextFloat(), g.nextFloat(), g.nextFloat()) * 0.8 + 0.1
                let trousers = SIMD3<Float>(repeating: g.uniform(0.05, 0.3)) + SIMD3(0, 0, g.uniform(0, 0.2))
                let o = SceneObject(kind: .pedestrian, x: x, y: road.centre(atX: x) + d, heading: heading,
                                    length: g.uniform(0.5, 0.65), width: g.uniform(0.55, 0.65),
                                    height: g.uniform(1.6, 1.9), color: shirt, secondaryColor: trousers)
                if fits(o, radius: 0.45) { objects.append(o); break }
            }
        }

        let tint = g.uniform(0.85, 1.15)
        // Scenery from its own stream, so that it can change without changing the road users.
        let scenery = makeScenery(road: road, seed: SplitMix64.mix(seed, UInt64(index), 0x5343_4E59))
        return Scene(road: road, objects: objects, scenery: scenery, brightness: g.uniform(0.7, 1.25),
                     sunAzimuth: g.uniform(-.pi, .pi), sunElevation: g.uniform(0.35, 1.2),
                     asphalt: SIMD3(repeating: g.uniform(0.22, 0.4)) + SIMD3(0, 0, 0.015),
                     grass: SIMD3(0.22 * tint, g.uniform(0.36, 0.5), 0.15 * tint),
                     sidewalk: SIMD3(repeating: g.uniform(0.52, 0.68)) - SIMD3(0, 0.02, 0.05),
                     skyHorizon: SIMD3(0.78, 0.83, 0.9) * g.uniform(0.9, 1.05),
                     skyZenith: SIMD3(g.uniform(0.25, 0.45), g.uniform(0.45, 0.6), g.uniform(0.8, 0.95)),
                     noiseSeed: g.next(), noise: 0.03)
    }

    /// Buildings and trees along both sides of the road, beyond the sidewalks.
    func makeScenery(road: Road, seed: UInt64) -> [SceneObject] {
        var g = SplitMix64(seed: seed)
        var out: [SceneObject] = []
        let reach = max(45, range + 10)
        let edge = road.width / 2 + road.sidewalkWidth
        for side in [Float(1), -1] {
            var x = -reach + g.uniform(0, 10)
            while x < reach {
                if g.chance(0.4) {
                    let size = g.uniform(1.2, 2.4)
                    let d = side * (edge + g.uniform(1, 3) + size / 2)
                    out.append(SceneObject(kind: .tree, x: x, y: road.centre(atX: x) + d, heading: road.direction(atX: x),
                                           length: size, width: size, height: g.uniform(3, 6),
                                           color: SIMD3(0.1, g.uniform(0.28, 0.42), 0.08),
                                           secondaryColor: SIMD3(0.3, 0.2, 0.12)))
                    x += size + g.uniform(2, 9)
                } else {
                    let length = g.uniform(8, 20), depth = g.uniform(6, 12)
                    let cx = x + length / 2
                    let d = side * (edge + g.uniform(2, 6) + depth / 2)
                    let wall = simdClamp(SIMD3(g.uniform(0.9, 1.1), 1, g.uniform(0.8, 1.05)) * g.uniform(0.45, 0.85))
                    out.append(SceneObject(kind: .building, x: cx, y: road.centre(atX: cx) + d,
                                           heading: road.direction(atX: cx), length: length, width: depth,
                                           height: g.uniform(4, 14), color: wall,
                                           secondaryColor: SIMD3(0.15, 0.2, 0.28) * g.uniform(0.7, 1.3)))
                    x += length + g.uniform(3, 14)
                }
            }
        }
        return out
    }

    // MARK: occupancy

    /// The BEV occupancy grid of a scene (see the file header for the convention).
    public func occupancy(_ scene: Scene) -> [Float] {
        let n = gridSize
        let cell = 2 * range / Float(n)
        var grid = [Float](repeating: 0, count: n * n)
        for o in scene.objects {
            let corners = o.footprint
            let minX = corners.map(\.x).min()!, maxX = corners.map(\.x).max()!
            let minY = corners.map(\.y).min()!, maxY = corners.map(\.y).max()!
            // Rows: x = range − (r + 1)·cell ... range − r·cell; columns likewise in y.
            let r0 = max(0, Int(((range - maxX) / cell).rounded(.down)))
            let r1 = min(n - 1, Int(((range - minX) / cell).rounded(.down)))
            let c0 = max(0, Int(((range - maxY) / cell).rounded(.down)))
            let c1 = min(n - 1, Int(((range - minY) / cell).rounded(.down)))
            guard r0 <= r1, c0 <= c1 else { continue }
            for r in r0...r1 {
                let xHi = range - Float(r) * cell, xLo = xHi - cell
                for c in c0...c1 {
                    let yHi = range - Float(c) * cell, yLo = yHi - cell
                    if rectangleOverlapsBox(corners, xLo: xLo, xHi: xHi, yLo: yLo, yHi: yHi) {
                        grid[r * n + c] = 1
                    }
                }
            }
        }
        return grid
    }

    // MARK: rendering

    /// Renders the camera images of a scene: [cameras, 3, S, S], normalised.
    public func render(_ scene: Scene) -> [Float] {
        let S = imageSize
        var out = [Float](repeating: 0, count: cameras * 3 * S * S)
        var colour = [SIMD3<Float>](repeating: .zero, count: S * S)
        var depth = [Float](repeating: 0, count: S * S)
        let focal = Float(S) / 2 / tan(Self.fieldOfView / 2)
        let h = Self.cameraHeight
        let road = scene.road
        let halfW = road.width / 2
        let sun = SIMD3<Float>(cos(scene.sunElevation) * cos(scene.sunAzimuth),
                               cos(scene.sunElevation) * sin(scene.sunAzimuth), sin(scene.sunElevation))
        let tanH = tan(road.heading)
        let haze = scene.skyHorizon
        let marking = SIMD3<Float>(0.9, 0.9, 0.86)
        let kerb = scene.sidewalk * 1.12
        var noiseGen = SplitMix64(seed: scene.noiseSeed)

        for cam in 0..<cameras {
            let yaw = cameraYaw(cam)
            let f = SIMD3<Float>(cos(yaw), sin(yaw), 0)          // forward
            let rgt = SIMD3<Float>(sin(yaw), -cos(yaw), 0)       // image right
            // Ray of pixel (u, v): focal·f + px·rgt + py·(0, 0, −1), px = u + ½ − S/2, py = v + ½ − S/2.
            // Background: sky above the horizon, ground below.
            for v in 0..<S {
                let py = Float(v) + 0.5 - Float(S) / 2
                let dz = -py
                for u in 0..<S {
                    let px = Float(u) + 0.5 - Float(S) / 2
                    let dx = focal * f.x + px * rgt.x
                    let dy = focal * f.y + px * rgt.y
                    let p = v * S + u
                    if dz >= 0 {
                        let e = dz / (dx * dx + dy * dy + dz * dz).squareRoot()
                        let t = min(1, e * 1.6)
                        colour[p] = haze + (scene.skyZenith - haze) * t
                        depth[p] = .infinity
                    } else {
                        let t = h / -dz
                        let gx = t * dx, gy = t * dy
                        let lat = gy - (road.offset + tanH * gx + 0.5 * road.curvature * gx * gx)
                        let al = abs(lat)
                        var c: SIMD3<Float>
                        if al < halfW {
                            c = scene.asphalt
                            if al > halfW - 0.35 && al < halfW - 0.12 {
                                c = marking  // solid edge line
                            } else {
                                // Dashed lines between lanes: 3 m dash, 6 m gap.
                                let q = (lat + halfW) / road.laneWidth
                                let nearest = q.rounded()
                                if nearest > 0.5 && nearest < Float(road.laneCount) - 0.5
                                    && abs(q - nearest) * road.laneWidth < 0.09 {
                                    let s = gx + road.dashPhase
                                    if s - 9 * (s / 9).rounded(.down) < 3 { c = marking }
                                }
                            }
                        } else if al < halfW + 0.25 {
                            c = kerb
                        } else if al < halfW + road.sidewalkWidth {
                            c = scene.sidewalk
                        } else {
                            c = scene.grass
                        }
                        let dist = t * (dx * dx + dy * dy + dz * dz).squareRoot()
                        let fog = dist / (dist + 75)  // haze, cheaper than 1 − exp(−dist/L)
                        colour[p] = c + (haze - c) * fog
                        depth[p] = t
                    }
                }
            }
            // Objects: oriented boxes, ray-cast inside their projected bounding rectangle.
            // Road users first: they are nearer, so more scenery pixels are skipped by the depth check.
            for o in scene.objects {
                renderBox(o, f: f, rgt: rgt, focal: focal, sun: sun, haze: haze, colour: &colour, depth: &depth)
            }
            for o in scene.scenery {
                renderBox(o, f: f, rgt: rgt, focal: focal, sun: sun, haze: haze, colour: &colour, depth: &depth)
            }
            // Light, noise, normalisation, planar output.
            let planeSize = S * S
            let base = cam * 3 * planeSize
            let bright = scene.brightness
            let amp = scene.noise
            out.withUnsafeMutableBufferPointer { ob in
                for p in 0..<planeSize {
                    let bits = noiseGen.next()
                    let n0 = Float(bits & 0xFFFF) * (1 / 65535) - 0.5
                    let n1 = Float((bits >> 16) & 0xFFFF) * (1 / 65535) - 0.5
                    let n2 = Float((bits >> 32) & 0xFFFF) * (1 / 65535) - 0.5
                    let c = colour[p] * bright
                    ob[base + p] = (c.x + amp * n0 - 0.5) * 4
                    ob[base + planeSize + p] = (c.y + amp * n1 - 0.5) * 4
                    ob[base + 2 * planeSize + p] = (c.z + amp * n2 - 0.5) * 4
                }
            }
        }
        return out
    }

    private func renderBox(_ o: SceneObject, f: SIMD3<Float>, rgt: SIMD3<Float>, focal: Float, sun: SIMD3<Float>,
                           haze: SIMD3<Float>, colour: inout [SIMD3<Float>], depth: inout [Float]) {
        let S = imageSize
        let h = Self.cameraHeight
        let ch = cos(o.heading), sh = sin(o.heading)
        let hl = o.length / 2, hw = o.width / 2
        // Project the box, clipped at 5 cm in front of the camera, to find the pixel rectangle to test:
        // the in-front corners and the points where edges cross the clipping plane.
        var rx = SIMD8<Float>(), ry = SIMD8<Float>(), rz = SIMD8<Float>()
        for i in 0..<8 {
            let a: Float = (i & 1) == 0 ? hl : -hl
            let b: Float = (i & 2) == 0 ? hw : -hw
            rx[i] = o.x + a * ch - b * sh
            ry[i] = o.y + a * sh + b * ch
            rz[i] = (i & 4) == 0 ? -h : o.height - h
        }
        let depthOf = rx * f.x + ry * f.y
        func rel(_ i: Int) -> SIMD3<Float> { SIMD3(rx[i], ry[i], rz[i]) }
        let near: Float = 0.05
        if depthOf.max() < near { return }
        var uMin = Float.infinity, uMax = -Float.infinity, vMin = Float.infinity, vMax = -Float.infinity
        func include(_ p: SIMD3<Float>, _ d: Float) {
            let px = focal * (p * rgt).sum() / d
            let py = -focal * p.z / d
            uMin = min(uMin, px); uMax = max(uMax, px); vMin = min(vMin, py); vMax = max(vMax, py)
        }
        for i in 0..<8 {
            if depthOf[i] >= near { include(rel(i), depthOf[i]) }
            var bit = 1
            while bit < 8 {
                let j = i | bit
                let di = depthOf[i], dj = depthOf[j]
                if i & bit == 0 && (di < near) != (dj < near) {
                    let t = (near - di) / (dj - di)
                    include(rel(i) + (rel(j) - rel(i)) * t, near)
                }
                bit <<= 1
            }
        }
        // Pixels already covered by something nearer than the whole box are skipped before the slab test
        // (depth is t along the ray focal·f + …, so forward distance = t·focal).
        let boxNear = max(near, depthOf.min()) / focal
        let u0 = max(0, Int((uMin + Float(S) / 2 - 0.5).rounded(.down)))
        let u1 = min(S - 1, Int((uMax + Float(S) / 2 - 0.5).rounded(.up)))
        let v0 = max(0, Int((vMin + Float(S) / 2 - 0.5).rounded(.down)))
        let v1 = min(S - 1, Int((vMax + Float(S) / 2 - 0.5).rounded(.up)))
        if u0 > u1 || v0 > v1 { return }
        // Ray in the box frame (centred on the footprint, z from the ground): origin and direction basis.
        let ox = -o.x, oy = -o.y
        let oLocal = SIMD3<Float>(ox * ch + oy * sh, -ox * sh + oy * ch, h - o.height / 2)
        func toLocal(_ w: SIMD3<Float>) -> SIMD3<Float> { SIMD3(w.x * ch + w.y * sh, -w.x * sh + w.y * ch, w.z) }
        let fL = toLocal(f) * focal, rL = toLocal(rgt), dL = SIMD3<Float>(0, 0, -1)
        let half = SIMD3<Float>(hl, hw, o.height / 2)
        // Per-face shading (world normals of the 6 faces, in local axis order ±x, ±y, ±z).
        func worldNormal(_ axis: Int, _ sign: Float) -> SIMD3<Float> {
            switch axis {
            case 0: return SIMD3(ch, sh, 0) * sign
            case 1: return SIMD3(-sh, ch, 0) * sign
            default: return SIMD3(0, 0, sign)
            }
        }
        var shade = SIMD8<Float>()
        for axis in 0..<3 {
            for k in 0..<2 {
                let n = worldNormal(axis, k == 0 ? 1 : -1)
                shade[axis * 2 + k] = 0.5 + 0.55 * max(0, (n * sun).sum())
            }
        }
        for v in v0...v1 {
            let py = Float(v) + 0.5 - Float(S) / 2
            for u in u0...u1 {
                let p = v * S + u
                if depth[p] < boxNear { continue }
                let px = Float(u) + 0.5 - Float(S) / 2
                var d = fL + rL * px + dL * py
                if abs(d.x) < 1e-9 { d.x = 1e-9 }
                if abs(d.y) < 1e-9 { d.y = 1e-9 }
                if abs(d.z) < 1e-9 { d.z = 1e-9 }
                let inv = 1 / d
                let t1 = (-half - oLocal) * inv
                let t2 = (half - oLocal) * inv
                let tn = pointwiseMin(t1, t2), tf = pointwiseMax(t1, t2)
                let tNear = tn.max(), tFar = tf.min()
                guard tNear <= tFar, tFar > 0, tNear > 0, tNear < depth[p] else { continue }
                let axis = tn.x == tNear ? 0 : (tn.y == tNear ? 1 : 2)
                let sign: Float = d[axis] > 0 ? -1 : 1
                let hit = oLocal + d * tNear
                let z = hit.z + o.height / 2  // height above ground
                var c: SIMD3<Float>
                switch o.kind {
                case .vehicle:
                    if z < 0.32 {
                        c = SIMD3(0.05, 0.05, 0.05)  // tyres, underbody
                    } else if axis != 2 && z > 0.58 * o.height && z < 0.92 * o.height {
                        c = o.color * 0.25 + SIMD3(0.08, 0.1, 0.13)  // windows
                    } else {
                        c = o.color
                    }
                case .pedestrian:
                    if z > 0.86 * o.height {
                        c = SIMD3(0.85, 0.65, 0.5)  // head
                    } else if z > 0.5 * o.height {
                        c = o.color
                    } else {
                        c = o.secondaryColor
                    }
                case .tree:
                    c = z < 0.35 * o.height ? o.secondaryColor : o.color
                case .building:
                    c = o.color
                    if axis != 2 {
                        // Windows: 3 m storeys, 2.5 m bays.
                        let along = axis == 0 ? hit.y : hit.x
                        let fz = z / 3 - (z / 3).rounded(.down)
                        let fa = along / 2.5 - (along / 2.5).rounded(.down)
                        if fz > 0.35 && fz < 0.75 && fa > 0.25 && fa < 0.75 { c = o.secondaryColor }
                    }
                }
                c *= shade[axis * 2 + (sign > 0 ? 0 : 1)]
                let dist = tNear * (d * d).sum().squareRoot()
                let fog = dist / (dist + 75)  // haze, cheaper than 1 − exp(−dist/L)
                colour[p] = c + (haze - c) * fog
                depth[p] = tNear
            }
        }
    }

    // MARK: looking at scenes

    /// An RGB picture of example `index`: the camera views side by side (camera 0 first), each scaled by
    /// `scale`, then a BEV panel (the occupancy grid over a sketch of the road: grey asphalt, green grass,
    /// brown buildings, bright green trees, red vehicle cells, yellow pedestrian cells, the ego car cyan in the
    /// centre, forward = up).
    public func preview(at index: Int, scale: Int = 4) -> (width: Int, height: Int, rgb: [UInt8]) {
        let scene = scene(at: index)
        let images = render(scene)
        let grid = occupancy(scene)
        let S = imageSize, panel = S * scale
        let width = (cameras + 1) * panel + cameras * 2, height = panel
        var rgb = [UInt8](repeating: 255, count: width * height * 3)
        func put(_ x: Int, _ y: Int, _ c: SIMD3<Float>) {
            let i = (y * width + x) * 3
            rgb[i] = UInt8(max(0, min(255, c.x * 255)))
            rgb[i + 1] = UInt8(max(0, min(255, c.y * 255)))
            rgb[i + 2] = UInt8(max(0, min(255, c.z * 255)))
        }
        for cam in 0..<cameras {
            let x0 = cam * (panel + 2)
            for y in 0..<panel {
                for x in 0..<panel {
                    let p = (y / scale) * S + x / scale
                    let base = cam * 3 * S * S
                    let c = SIMD3<Float>(images[base + p], images[base + S * S + p], images[base + 2 * S * S + p]) * 0.25 + 0.5
                    put(x0 + x, y, c)
                }
            }
        }
        let x0 = cameras * (panel + 2)
        let G = gridSize
        for y in 0..<panel {
            for x in 0..<panel {
                // Ground point under this BEV pixel.
                let gx = range - (Float(y) + 0.5) / Float(panel) * 2 * range
                let gy = range - (Float(x) + 0.5) / Float(panel) * 2 * range
                let r = y * G / panel, col = x * G / panel
                let al = abs(scene.road.lateral(x: gx, y: gy))
                var c: SIMD3<Float> = al < scene.road.width / 2 ? SIMD3(0.25, 0.25, 0.27)
                    : (al < scene.road.width / 2 + scene.road.sidewalkWidth ? SIMD3(0.45, 0.45, 0.42) : SIMD3(0.15, 0.3, 0.12))
                if let o = scene.scenery.first(where: { $0.footprintContains(x: gx, y: gy) }) {
                    c = o.kind == .tree ? SIMD3(0.1, 0.5, 0.1) : SIMD3(0.55, 0.45, 0.4)
                }
                if grid[r * G + col] > 0 {
                    let isPed = scene.objects.contains { $0.kind == .pedestrian && $0.footprintContains(x: gx, y: gy) }
                    let isCar = scene.objects.contains { $0.kind == .vehicle && $0.footprintContains(x: gx, y: gy) }
                    c = isPed ? SIMD3(1, 0.9, 0.2) : (isCar ? SIMD3(1, 0.25, 0.2) : SIMD3(0.75, 0.3, 0.3))
                }
                if abs(gx) < 2.25 && abs(gy) < 0.95 { c = SIMD3(0.2, 0.9, 1) }
                if (x * G) % panel < G || (y * G) % panel < G { c *= 0.8 }  // cell lines
                put(x0 + x, y, c)
            }
        }
        return (width, height, rgb)
    }

    /// Writes `preview(at:scale:)` as a binary PPM (P6) file.
    public func writePPM(at index: Int, to path: String, scale: Int = 4) throws(DataError) {
        let img = preview(at: index, scale: scale)
        var data = Data("P6\n\(img.width) \(img.height)\n255\n".utf8)
        data.append(contentsOf: img.rgb)
        do { try UserFiles.write(data, to: path, what: "PPM") } catch { throw .writeFailed(path: path, reason: error.problem) }
    }
}

@inline(__always)
private func simdClamp(_ v: SIMD3<Float>) -> SIMD3<Float> {
    pointwiseMin(pointwiseMax(v, SIMD3(repeating: 0)), SIMD3(repeating: 1))
}

/// Separating-axis test for two convex polygons (corners in order): do they overlap with positive area?
func polygonsOverlap(_ a: [SIMD2<Float>], _ b: [SIMD2<Float>]) -> Bool {
    for poly in [a, b] {
        for i in 0..<poly.count {
            let e = poly[(i + 1) % poly.count] - poly[i]
            let axis = SIMD2<Float>(-e.y, e.x)
            var aMin = Float.infinity, aMax = -Float.infinity, bMin = Float.infinity, bMax = -Float.infinity
            for p in a { let d = (p * axis).sum(); aMin = min(aMin, d); aMax = max(aMax, d) }
            for p in b { let d = (p * axis).sum(); bMin = min(bMin, d); bMax = max(bMax, d) }
            if aMax <= bMin || bMax <= aMin { return false }
        }
    }
    return true
}

/// Separating-axis test: does the convex quadrilateral `corners` overlap the axis-aligned box with
/// positive area? (Touching edges do not count.)
func rectangleOverlapsBox(_ corners: [SIMD2<Float>], xLo: Float, xHi: Float, yLo: Float, yHi: Float) -> Bool {
    let box = [SIMD2<Float>(xLo, yLo), SIMD2(xHi, yLo), SIMD2(xHi, yHi), SIMD2(xLo, yHi)]
    var axes: [SIMD2<Float>] = [SIMD2(1, 0), SIMD2(0, 1)]
    for i in 0..<2 {
        let e = corners[i + 1] - corners[i]
        axes.append(SIMD2(-e.y, e.x))
    }
    for a in axes {
        var aMin = Float.infinity, aMax = -Float.infinity, bMin = Float.infinity, bMax = -Float.infinity
        for p in corners { let d = (p * a).sum(); aMin = min(aMin, d); aMax = max(aMax, d) }
        for p in box { let d = (p * a).sum(); bMin = min(bMin, d); bMax = max(bMax, d) }
        if aMax <= bMin || bMax <= aMin { return false }
    }
    return true
}
