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

@Suite struct LifecycleTests {
    @Test func workerBackendAndOrchestrationsAreReleasedAfterStop() async throws {
        weak var weakBackend: InMemoryBackend?
        weak var weakWorker: DurableTaskWorker?
        do {
            let backend = InMemoryBackend()
            weakBackend = backend
            let worker = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
            weakWorker = worker
            worker.addOrchestrator(SumOfSquares())
            worker.addActivity(Square())
            let running = Task { await worker.run() }
            let client = DurableTaskClient(backend: backend)
            let id = try await client.scheduleNewOrchestration(SumOfSquares.self, input: 100)
            #expect(try await client.waitForCompletion(SumOfSquares.self, instanceID: id, timeout: .seconds(20)) == 338_350)
            worker.stop()
            await running.value
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(weakWorker == nil, "the worker leaked")
        #expect(weakBackend == nil, "the backend leaked")
    }
}
