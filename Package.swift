// swift-tools-version:6.0
import PackageDescription

/// Release builds target the host's vector units (AVX2/FMA/F16C) so that Float16 conversion and
/// SIMD kernels compile to native instructions instead of library calls. Set IRM_PORTABLE=1 to
/// build for baseline x86-64 instead.
import Foundation
let portable = ProcessInfo.processInfo.environment["IRM_PORTABLE"] == "1"
let hostVectorFlags: [SwiftSetting] = portable ? [] : [
    .unsafeFlags(["-target-cpu", "native"], .when(configuration: .release)),
    // Lets code choose a path that the native target makes fast (F16C's half-to-float conversion).
    .define("IRM_NATIVE_TARGET", .when(configuration: .release)),
]
// The library's numerics run optimised in debug builds too: the test suite runs real forward passes
// and statistics, which are about 20x slower unoptimised. Tests still see internals (-enable-testing).
let optimisedDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "irm",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "IRMKit", targets: ["IRMKit"]),
        .executable(name: "irm", targets: ["irm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
    ],
    targets: [
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        // zlib (already linked by libhdf5) for the CRC-32 that checkpoints store with each tensor.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLapack", path: "Sources/CLapack", pkgConfig: "lapacke",
                       providers: [.apt(["liblapacke-dev"])]),
        // The C half of AtomicOutput: the signal handler that removes unfinished outputs'
        // temporary files, and the atomic exchange of two directories.
        .target(name: "CAtomicOutput", path: "Sources/CAtomicOutput"),
        // The chat-template (Jinja) renderer: its own module, depending on Foundation only.
        .target(name: "ChatTemplate", swiftSettings: optimisedDebug),
        .target(
            name: "IRMKit",
            dependencies: ["CHDF5", "CZlib", "CBLAS", "CLapack", "CAtomicOutput", "ChatTemplate", .product(name: "Yams", package: "Yams"),
                           .product(name: "CSV", package: "CSV.swift")],
            swiftSettings: hostVectorFlags + optimisedDebug
        ),
        .executableTarget(
            name: "irm",
            dependencies: ["IRMKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "IRMKitTests",
            // The CLI tests run the built `irm` executable, so the tests depend on it being built.
            dependencies: ["IRMKit", "ChatTemplate", "irm"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
