// swift-tools-version:6.0
import PackageDescription

// Release builds skip Swift's run-time exclusivity checks: every loop's state is owned by its one
// thread, the checks cost about 3% of a relayed answer's CPU (bench/RESULTS.md), and debug builds,
// which run the tests, keep them. Whole-module code is also offered across modules, so the JSON
// scanner and the reactor's buffers are specialised and inlined where the relay calls them.
let releaseSwift: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release)),
]

// ChatRelay: one single-threaded epoll reactor per worker, libcurl multi for upstream
// streams and non-blocking libpq for storage. No SwiftNIO on purpose: the reactor is the product.
let package = Package(
    name: "ChatRelay",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chatrelay", targets: ["chatrelay"]),
        .executable(name: "mock-upstream", targets: ["MockUpstream"]),
        .executable(name: "chatrelay-bench", targets: ["LoadGen"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "ChatAPI", targets: ["ChatAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Parses models.yaml (the model catalog) with line numbers for its error messages.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C shims: what Swift cannot import or call directly (epoll/eventfd/signalfd headers,
        // accept4 under _GNU_SOURCE, curl's variadic setopt, libpq, libcrypto's SHA-256).
        .target(name: "CLinux", cSettings: [.define("_GNU_SOURCE")]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        .target(name: "JSONCore", swiftSettings: releaseSwift),
        .target(name: "Reactor", dependencies: ["CLinux", "CCurl", "CLibPQ", "COpenSSL"], swiftSettings: releaseSwift),
        .target(name: "HTTP", dependencies: ["Reactor", "JSONCore"], swiftSettings: releaseSwift),
        .target(name: "Providers", dependencies: ["JSONCore"], swiftSettings: releaseSwift),
        .target(name: "Storage", dependencies: ["Reactor", "JSONCore"], swiftSettings: releaseSwift),
        .target(name: "Catalog", dependencies: ["Providers", .product(name: "Yams", package: "Yams")], swiftSettings: releaseSwift),
        .target(name: "ChatAPI", dependencies: ["Reactor", "HTTP", "Providers", "Catalog", "Storage", "JSONCore"], swiftSettings: releaseSwift),

        .executableTarget(name: "chatrelay", dependencies: ["ChatAPI"], swiftSettings: releaseSwift),
        .executableTarget(name: "MockUpstream", dependencies: ["Reactor", "HTTP", "JSONCore"]),
        .executableTarget(
            name: "LoadGen",
            dependencies: ["Reactor", "HTTP", "JSONCore", "Providers", .product(name: "Histogram", package: "hdrhistogram-swift")],
            path: "bench/LoadGen"),
        .executableTarget(name: "StoreBench", dependencies: ["Storage", "Reactor"], path: "bench/StoreBench"),
        .executableTarget(name: "DecodeBench", dependencies: ["Providers", "JSONCore"], path: "bench/DecodeBench"),

        .testTarget(name: "JSONCoreTests", dependencies: ["JSONCore"]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CLinux"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "Reactor"]),
        .testTarget(name: "ProvidersTests", dependencies: ["Providers", "JSONCore"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "Providers"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Reactor"]),
        .testTarget(name: "ChatAPITests", dependencies: ["ChatAPI", "Reactor", "HTTP", "Providers", "Storage", "JSONCore"],
                    exclude: ["golden"]),
    ],
    swiftLanguageModes: [.v6]
)
