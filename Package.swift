// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Tributary",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tributary", targets: ["tributary"]),
        .library(name: "Flows", targets: ["Flows"]),
        .library(name: "FlowData", targets: ["FlowData"]),
        .library(name: "FlowCluster", targets: ["FlowCluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: System libraries (found through pkg-config; Debian packages named as providers)
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),

        // MARK: Libraries
        .target(name: "FlowRandom"),
        .target(name: "Flows", dependencies: ["COpenBLAS", "FlowRandom"]),
        .target(name: "FlowData", dependencies: ["FlowRandom"]),
        .target(name: "FlowWire"),
        .target(name: "FlowCluster", dependencies: ["Flows", "FlowData", "FlowWire", "ZeroMQ"]),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),

        // MARK: Tool
        .executableTarget(
            name: "tributary",
            dependencies: [
                "Flows", "FlowData", "FlowRandom", "FlowCluster", "ZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .testTarget(name: "FlowRandomTests", dependencies: ["FlowRandom"]),
        .testTarget(name: "FlowsTests", dependencies: ["Flows", "FlowRandom"]),
        .testTarget(name: "FlowDataTests", dependencies: ["FlowData", "FlowRandom"]),
        .testTarget(name: "FlowWireTests", dependencies: ["FlowWire"]),
        .testTarget(name: "FlowClusterTests", dependencies: ["FlowCluster", "Flows", "FlowData", "FlowRandom", "FlowWire", "ZeroMQ"]),
        .testTarget(name: "TributaryCLITests", dependencies: ["tributary", "Flows", "FlowData", "FlowCluster", "FlowWire", "FlowRandom", "ZeroMQ"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
    ],
    swiftLanguageModes: [.v6]
)
