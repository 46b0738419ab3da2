import DojoData

/// The data sets `dojo train` knows by name.
enum DataSets {
    static let names = ["scenes", "fashion-mnist"]

    struct Choice {
        let train: any Dataset
        let eval: any Dataset
    }

    /// `scenes`: the embedded procedural multi-camera driving scenes (train and validation drawn from different
    /// seeds). `fashion-mnist`: the real IDX files of Debian's dataset-fashion-mnist.
    static func make(_ name: String, trainCount: Int?, evalCount: Int?, seed: UInt64, dataDirectory: String?,
                     cameras: Int, imageSize: Int, gridSize: Int) throws -> Choice {
        switch name {
        case "scenes":
            return Choice(
                train: try DrivingScenes(count: trainCount ?? 8192, seed: seed, cameras: cameras, imageSize: imageSize, gridSize: gridSize),
                eval: try DrivingScenes(count: evalCount ?? 512, seed: seed ^ 0x5EED_0F_E7A1, cameras: cameras, imageSize: imageSize, gridSize: gridSize))
        case "fashion-mnist":
            let dir = dataDirectory ?? FashionMNIST.defaultDirectory
            return Choice(train: try FashionMNIST(split: .train, directory: dir, limit: trainCount),
                          eval: try FashionMNIST(split: .test, directory: dir, limit: evalCount))
        default:
            throw DataSetError("unknown data set '\(name)'; choose one of: \(names.joined(separator: ", "))")
        }
    }
}

struct DataSetError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
