// swift-tools-version: 6.0
// OpenDojo: Tesla's Dojo training supercomputer as open software. See docs/ARCHITECTURE.md.
import PackageDescription

let package = Package(
    name: "OpenDojo",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "dojo", targets: ["dojo"]),
        .library(name: "DojoNumerics", targets: ["DojoNumerics"]),
        .library(name: "DojoGraph", targets: ["DojoGraph"]),
        .library(name: "DojoTensor", targets: ["DojoTensor"]),
        .library(name: "DojoNN", targets: ["DojoNN"]),
        .library(name: "DojoONNX", targets: ["DojoONNX"]),
        .library(name: "DojoDistributed", targets: ["DojoDistributed"]),
        .library(name: "DojoData", targets: ["DojoData"]),
        .library(name: "DojoReport", targets: ["DojoReport"]),
        .library(name: "DojoMachine", targets: ["DojoMachine"]),
        .library(name: "DojoCompiler", targets: ["DojoCompiler"]),
        .library(name: "DojoSim", targets: ["DojoSim"]),
        .library(name: "DojoCluster", targets: ["DojoCluster"]),
        .library(name: "DojoService", targets: ["DojoService"]),
        .library(name: "DojoServer", targets: ["DojoServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C libraries, each behind a tiny shim module (Debian packages in `providers`).
        .systemLibrary(name: "COneDNN", path: "Sources/COneDNN", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),

        // The formats' hot loops in C, each compiled for baseline x86-64 and for AVX2, chosen at start-up (issue 14 §2).
        .target(name: "CDojoKernels"),
        // Tesla's number formats: BF16, CFP8 (1-4-3, 1-5-2), CFP16 (SHP, UHP). Only its own C loops.
        .target(name: "DojoNumerics", dependencies: ["CDojoKernels"]),
        // The Graph IR: op kinds, shapes, FLOP and byte counts, JSON form. No dependencies.
        .target(name: "DojoGraph"),
        // Tensors, kernels (oneDNN + pure-Swift references), reverse-mode tape that records the Graph IR.
        .target(name: "DojoTensor", dependencies: ["DojoNumerics", "DojoGraph", "COneDNN", "CDojoKernels"]),
        // Layers, model zoo, losses, optimizers, mixed precision, checkpoints (safetensors).
        .target(name: "DojoNN", dependencies: ["DojoTensor", "DojoGraph", "DojoNumerics", "DojoData", "DojoReport"]),
        // ONNX import: .onnx files (apple/swift-protobuf; onnx.proto's Swift generated once by scripts/gen-onnx-proto.sh)
        // read into an engine network, so a PyTorch export trains, records the Graph IR and is priced like a zoo model.
        .target(name: "DojoONNX", dependencies: ["DojoNN", "DojoTensor", "DojoGraph", "DojoReport",
                                                 .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Proto"]),
        // The distributed runtime: data-parallel training across processes and hosts over Open MPI.
        .target(name: "DojoDistributed", dependencies: ["DojoNN", "CMPI"]),
        // Data sets (procedural multi-camera driving scenes, Fashion-MNIST IDX) and the loader.
        .target(name: "DojoData", dependencies: ["CZlib", "DojoNumerics", "DojoReport"]),
        // What users read: SVG charts, text tables, progress bars, JSON-lines logs. No dependencies.
        .target(name: "DojoReport"),
        // Machine descriptions: Dojo node → D1 → tile → tray → cabinet → ExaPOD(s), DGX GPU clusters; YAML presets
        // with a source for every figure and a parameter for every assumption (compiled in by scripts/embed-data.py);
        // derived totals. Only Yams.
        .target(name: "DojoMachine", dependencies: ["DojoGraph", "DojoReport", .product(name: "Yams", package: "Yams")],
                exclude: ["Presets"]),
        // Where work goes: an op's spatial mapping on a D1 mesh, parallelism plans across chips, tiles and GPUs,
        // sharding and memory fit. Reads the Graph IR and machine descriptions only.
        .target(name: "DojoCompiler", dependencies: ["DojoGraph", "DojoMachine", "DojoReport"]),
        // How long it takes: op cost models (D1 mesh, GPU roofline), collectives on the real topology, the step's
        // timeline, plan search, traces and validation against published measurements (the published GPU
        // measurements, with their sources: Validation/gpu-training.csv and its README, compiled in by scripts/embed-data.py).
        .target(name: "DojoSim", dependencies: ["DojoCompiler", "DojoGraph", "DojoMachine", "DojoReport"],
                exclude: ["Validation"]),
        // The resource manager's core (issue 4): tile inventory with mesh coordinates and health, the DPU allocator
        // (contiguous rectangles of allowed shapes, best fit), the scheduler (gang, priorities, quotas with borrowing,
        // fair share, EASY backfill, preemption, pending reasons), trace replay in simulated time. Pure Swift; no
        // database or HTTP server here (those go in DojoServer).
        .target(name: "DojoCluster", dependencies: ["DojoMachine", "DojoReport"]),
        // The resource manager running for real: the durable job store (SQLite through GRDB), workers that run each
        // job as a process on its DPU, time limits, preemption, tile failures, recovery after a crash, accounting.
        .target(name: "DojoService", dependencies: ["DojoCluster", "DojoMachine", .product(name: "GRDB", package: "GRDB.swift"),
                                                    .product(name: "Crypto", package: "swift-crypto")]),
        // `dojo serve`: the HTTP API (Hummingbird) with its OpenAPI document, tokens, the dashboard, Prometheus metrics.
        .target(name: "DojoServer", dependencies: ["DojoService", "DojoCluster",
                                                   .product(name: "Hummingbird", package: "hummingbird"),
                                                   .product(name: "HummingbirdTLS", package: "hummingbird")],
                exclude: ["Web"]),
        // The command-line tool: one subcommand per user task.
        .executableTarget(name: "dojo", dependencies: [
            "DojoNumerics", "DojoGraph", "DojoTensor", "DojoNN", "DojoData", "DojoReport", "DojoMachine", "DojoCompiler", "DojoSim", "DojoCluster", "DojoService", "DojoServer", "DojoDistributed", "DojoONNX", "COneDNN",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "DojoNumericsTests", dependencies: ["DojoNumerics", "CDojoKernels"]),
        .testTarget(name: "DojoGraphTests", dependencies: ["DojoGraph"]),
        .testTarget(name: "DojoTensorTests", dependencies: ["DojoTensor", "DojoNumerics"]),
        .testTarget(name: "DojoNNTests", dependencies: ["DojoNN", "DojoData"]),
        .testTarget(name: "DojoONNXTests", dependencies: ["DojoONNX", "DojoNN", "DojoTensor", "DojoGraph",
                                                          .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "DojoDataTests", dependencies: ["DojoData"]),
        .testTarget(name: "DojoReportTests", dependencies: ["DojoReport"]),
        .testTarget(name: "DojoMachineTests", dependencies: ["DojoMachine"]),
        .testTarget(name: "DojoCompilerTests", dependencies: ["DojoCompiler", "DojoGraph", "DojoMachine"]),
        .testTarget(name: "DojoSimTests", dependencies: ["DojoSim", "DojoCompiler", "DojoGraph", "DojoMachine", "DojoNumerics", "DojoTensor"]),
        .testTarget(name: "DojoClusterTests", dependencies: ["DojoCluster", "DojoMachine"]),
        .testTarget(name: "DojoServiceTests", dependencies: ["DojoService", "DojoCluster", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "DojoServerTests", dependencies: ["DojoServer", "DojoService",
                                                            .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                            .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "DojoCLITests", dependencies: ["dojo", "DojoCompiler", "DojoData", "DojoGraph", "DojoMachine", "DojoNN", "DojoNumerics", "DojoSim"]),
    ],
    swiftLanguageModes: [.v6]
)
