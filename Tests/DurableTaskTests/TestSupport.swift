import DurableTask
import Foundation
import Testing

struct Square: Activity {
    func run(context: ActivityContext, input: Int) async throws -> Int { input * input }
}

struct Fail: Activity {
    struct Boom: Error, CustomStringConvertible {
        var description: String { "boom" }
    }
    func run(context: ActivityContext, input: Int) async throws -> Int { throw Boom() }
}

struct SumOfSquares: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        let futures = (1...max(1, input)).map { context.callActivity(Square.self, input: $0) }
        return try await context.whenAll(futures).reduce(0, +)
    }
}

/// Runs a worker on `backend` for the duration of `body`.
func withWorker<R>(
    backend: any Backend, options: DurableTaskWorker.Options = .init(logHandler: { _, _ in }),
    register: (DurableTaskWorker) -> Void,
    _ body: (DurableTaskClient, DurableTaskWorker) async throws -> R
) async throws -> R {
    let worker = DurableTaskWorker(backend: backend, options: options)
    register(worker)
    let running = Task { await worker.run() }
    defer { running.cancel() }
    let result = try await body(DurableTaskClient(backend: backend), worker)
    running.cancel()
    await running.value
    return result
}

/// Runs CPU-bound or blocking test work on a thread of its own: Swift Testing runs tests on the
/// cooperative pool, which has one thread per core, and a test that holds one for seconds stalls every
/// worker and timer of the tests running beside it.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
