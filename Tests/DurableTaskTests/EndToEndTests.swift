import DurableTask
import Foundation
import Testing

@Suite struct EndToEndTests {
    @Test(arguments: [1, 10, 1000])
    func fanOutFanInReturnsExactSum(n: Int) async throws {
        let backend = InMemoryBackend()
        let total = try await withWorker(backend: backend, register: {
            $0.addOrchestrator(SumOfSquares())
            $0.addActivity(Square())
        }) { client, _ in
            let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: n)
            return try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(30))
        }
        #expect(total == (1...n).reduce(0) { $0 + $1 * $1 })
    }
}
