import DurableTask
import DurableTaskTesting
import Testing

/// The public conformance suite (`DurableTaskTesting`), run on every backend of this package from the
/// outside, as a third-party backend's tests would run it.
@Suite("Backend conformance")
struct BackendConformanceTests {
    @Test(arguments: BackendKind.allCases, BackendConformance.checks)
    func conformance(kind: BackendKind, check: BackendConformance.Check) async throws {
        let directory = try TemporaryDirectory()
        try await check.run { clock in try kind.make(clock: clock, in: directory) }
    }
}
