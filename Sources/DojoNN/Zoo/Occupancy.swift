import DojoTensor

/// The multi-camera occupancy network, in the spirit of Tesla's: N camera images → a shared convolutional
/// backbone → image features lifted into a bird's-eye-view (BEV) grid by a learned view transform → a BEV
/// convolutional head → one occupancy logit per grid cell.
///
/// Input [B, cameras, 3, H, W]; output [B, G, G] logits (G = `gridSize`, row 0 farthest ahead).
public final class OccupancyNetwork: Module {
    public let cameras: Int, gridSize: Int, bevChannels: Int
    let backbone: Sequential
    let lift: Linear, liftActivation = ReLU()
    let bevHead: Sequential
    let featureShape: [Int]

    public init(cameras: Int, imageSize: Int, gridSize: Int, width: Int = 16, bevChannels: Int = 16, generator: inout RandomSource) {
        precondition(imageSize % 8 == 0 && imageSize >= 16, "occupancy network: image size \(imageSize) must be a multiple of 8, at least 16")
        precondition(gridSize % 2 == 0, "occupancy network: grid size \(gridSize) must be even")
        self.cameras = cameras; self.gridSize = gridSize; self.bevChannels = bevChannels
        // shared per-camera backbone: three conv-BN-ReLU stages, each halving the resolution
        backbone = Sequential([
            Conv2d(3, width, kernel: 3, padding: 1, bias: false, generator: &generator), BatchNorm2d(width), ReLU(), MaxPool2d(kernel: 2),
            Conv2d(width, width * 2, kernel: 3, padding: 1, bias: false, generator: &generator), BatchNorm2d(width * 2), ReLU(), MaxPool2d(kernel: 2),
            Conv2d(width * 2, width * 2, kernel: 3, padding: 1, bias: false, generator: &generator), BatchNorm2d(width * 2), ReLU(), MaxPool2d(kernel: 2),
        ])
        let f = imageSize / 8
        featureShape = [width * 2, f, f]
        // view transform: every camera's features → a half-resolution BEV feature grid
        let half = gridSize / 2
        lift = Linear(cameras * width * 2 * f * f, bevChannels * half * half, generator: &generator)
        // BEV head: two 3×3 convolutions, then 4 logits per half-resolution cell (its 2×2 full-resolution cells)
        bevHead = Sequential([
            Conv2d(bevChannels, 32, kernel: 3, padding: 1, bias: false, generator: &generator), BatchNorm2d(32), ReLU(),
            Conv2d(32, 32, kernel: 3, padding: 1, bias: false, generator: &generator), BatchNorm2d(32), ReLU(),
            Conv2d(32, 4, kernel: 1, generator: &generator),
        ])
    }

    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 5 && x.shape[1] == cameras && x.shape[2] == 3,
                     "occupancy network expects [B, \(cameras), 3, H, W], got \(x.shape)")
        let b = x.shape[0], half = gridSize / 2
        let images = x.reshaped([b * cameras, 3, x.shape[3], x.shape[4]])
        let features = backbone(images).reshaped([b, -1])                     // [B, cameras·C·f·f]
        let bev = liftActivation(lift(features)).reshaped([b, bevChannels, half, half])
        let logits = bevHead(bev)                                             // [B, 4, G/2, G/2]
        // depth-to-space: channel (dy·2 + dx) of cell (i, j) is full-resolution cell (2i+dy, 2j+dx)
        return logits.reshaped([b, 2, 2, half, half]).permuted([0, 3, 1, 4, 2]).reshaped([b, gridSize, gridSize])
    }
}
