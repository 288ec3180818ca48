import DurableTask
import Foundation
import Testing

@Suite struct EndToEndTests {
    @Test(arguments: [1, 10, 1000])
    func fanOutFanInReturnsExactSum(n: Int) async throws {
        let backend = InMemoryBackend()
        let total = try await withWorker(
            backend: backend,
            register: {
                $0.addOrchestrator(SumOfSquares())
                $0.addActivity(Square())
            }
        ) { client, _ in
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

struct SlowOrFast: Activity {
    static var name: String { "SlowOrFast" }
    let slow: Bool
    let started: Ledger
    func run(context: ActivityContext, input: Int) async throws -> Int {
        _ = await started.record("started")
        if slow { try await Task.sleep(for: .seconds(60)) }
        return input * 10
    }
}

struct CallsSlowOrFast: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.callActivity(SlowOrFast.self, input: input).value
    }
}

extension LifecycleTests {
    @Test func stoppingTheWorkerHandsRunningActivitiesBackInsteadOfFailingThem() async throws {
        let backendUnderTest = InMemoryBackend()
        let backend = backendUnderTest
        let client = DurableTaskClient(backend: backend)
        let started = Ledger()
        let first = DurableTaskWorker(backend: backend, options: .init(logHandler: { _, _ in }))
        first.addOrchestrator(CallsSlowOrFast())
        first.addActivity(SlowOrFast(slow: true, started: started))
        let running = Task { await first.run() }
        let id = try await client.scheduleNewOrchestration(CallsSlowOrFast.self, input: 4)
        try await eventually("activity started") { await started.count("started") == 1 }
        first.stop()
        await running.value

        try await withWorker(
            backend: backend,
            register: {
                $0.addOrchestrator(CallsSlowOrFast())
                $0.addActivity(SlowOrFast(slow: false, started: started))
            }
        ) { client, _ in
            let output = try await client.waitForCompletion(CallsSlowOrFast.self, instanceID: id, timeout: .seconds(20))
            #expect(output == 40)
        }
        #expect(await started.count("started") == 2)
    }
}
