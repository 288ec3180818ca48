// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "DurableTask",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DurableTask", targets: ["DurableTask"]),
        .library(name: "DurableTaskSQLite", targets: ["DurableTaskSQLite"]),
        .library(name: "DurableTaskPostgres", targets: ["DurableTaskPostgres"]),
        .library(name: "DurableTaskTesting", targets: ["DurableTaskTesting"]),
        .executable(name: "WordCount", targets: ["WordCount"]),
        .library(name: "DurableTaskDashboard", targets: ["DurableTaskDashboard"]),
        .executable(name: "durabletask", targets: ["DurableTaskCLI"]),
        .executable(name: "BackupSiteContent", targets: ["BackupSiteContent"]),
        .executable(name: "FanOutPatterns", targets: ["FanOutPatterns"]),
        .executable(name: "LoadTest", targets: ["LoadTest"])
    ],
    targets: [
        .target(name: "DurableTask"),
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        .target(name: "DurableTaskSQLite", dependencies: ["DurableTask", "CSQLite"]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        .target(name: "DurableTaskPostgres", dependencies: ["DurableTask", "CLibPQ"]),
        .testTarget(name: "DurableTaskPostgresTests", dependencies: ["DurableTask", "DurableTaskPostgres", "DurableTaskTesting"]),
        .target(name: "DurableTaskTesting", dependencies: ["DurableTask"]),
        .executableTarget(
            name: "WordCount",
            dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskPostgres"],
            path: "Examples/WordCount",
            resources: [.copy("texts")]
        ),
        .executableTarget(
            name: "BackupSiteContent", dependencies: ["DurableTask", "DurableTaskSQLite"],
            path: "Examples/BackupSiteContent"),
        .executableTarget(
            name: "FanOutPatterns", dependencies: ["DurableTask", "DurableTaskSQLite"],
            path: "Examples/FanOutPatterns"),
        .executableTarget(
            name: "LoadTest", dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskPostgres"],
            path: "Examples/LoadTest"),
        .executableTarget(name: "DurableTaskBench", dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskPostgres"]),
        .executableTarget(name: "DurableTaskTorture", dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskPostgres", "CSQLite", "CLibPQ"]),
        .testTarget(
            name: "DurableTaskTests", dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskTesting", "DurableTaskPostgres"], exclude: ["Fixtures"]),
        .testTarget(name: "DurableTaskSQLiteTests", dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskTesting"]),
        .testTarget(name: "DurableTaskReliabilityTests", dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskTorture"]),
        .target(name: "DurableTaskDashboard", dependencies: ["DurableTask"]),
        .executableTarget(name: "DurableTaskCLI", dependencies: ["DurableTask", "DurableTaskDashboard", "DurableTaskSQLite", "DurableTaskPostgres"]),
        .testTarget(
            name: "DurableTaskDashboardTests", dependencies: ["DurableTask", "DurableTaskSQLite", "DurableTaskDashboard"],
            resources: [.copy("Fixtures")])
    ],
    swiftLanguageModes: [.v6]
)
