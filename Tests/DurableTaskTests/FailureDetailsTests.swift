import DurableTask
import Foundation
import Testing

/// A user error that describes itself only through `LocalizedError`.
private struct LocalizedFailure: LocalizedError {
    var errorDescription: String? { "the invoice could not be sent: the mail server refused it" }
}

/// A `LocalizedError` that leaves `errorDescription` at its default, `nil`.
private struct SilentLocalizedFailure: LocalizedError {
    var code = 7
}

/// Both: the localized text is the one meant for people.
private struct DescribedLocalizedFailure: LocalizedError, CustomStringConvertible {
    var errorDescription: String? { "localized text" }
    var description: String { "debug text" }
}

private struct DescribedFailure: Error, CustomStringConvertible {
    var description: String { "described text" }
}

/// Throws a ``LocalizedFailure``.
private struct SendsInvoice: Activity {
    func run(context: ActivityContext, input: Int) async throws -> Int { throw LocalizedFailure() }
}

/// Calls ``SendsInvoice`` and lets its failure fail the orchestration.
private struct BillsCustomer: Orchestrator {
    func run(context: OrchestrationContext, input: Int) async throws -> Int {
        try await context.callActivity(SendsInvoice.self, input: input).value
    }
}

@Suite struct FailureDetailsTests {
    @Test func aLocalizedErrorIsDescribedByItsErrorDescription() {
        let details = FailureDetails(error: LocalizedFailure())
        #expect(details.message == "the invoice could not be sent: the mail server refused it")
        #expect(details.errorType.hasSuffix("LocalizedFailure"))
        #expect(details.isRetriable)
    }

    @Test func theLocalizedTextWinsOverDescription() {
        #expect(FailureDetails(error: DescribedLocalizedFailure()).message == "localized text")
    }

    @Test func otherErrorsKeepTheirDescription() {
        // No errorDescription: `String(describing:)`, not Foundation's generic "could not be completed".
        #expect(FailureDetails(error: SilentLocalizedFailure()).message == "SilentLocalizedFailure(code: 7)")
        #expect(FailureDetails(error: DescribedFailure()).message == "described text")
        let cocoa = FailureDetails(error: CocoaError(.fileNoSuchFile))
        #expect(cocoa.message == String(describing: CocoaError(.fileNoSuchFile)))
    }

    @Test func anActivitysLocalizedErrorReachesTheClient() async throws {
        let backend = InMemoryBackend()
        try await withWorker(
            backend: backend,
            register: { worker in
                worker.addOrchestrator(BillsCustomer())
                worker.addActivity(SendsInvoice())
            }
        ) { client, _ in
            let id = try await client.scheduleNewOrchestration(BillsCustomer.self, input: 1)
            let metadata = try await client.waitForCompletion(id, timeout: .seconds(20))
            #expect(metadata.status == .failed)
            let failure = try #require(metadata.failure)
            #expect("\(failure)".contains("the invoice could not be sent: the mail server refused it"))
            #expect(!"\(failure)".contains("LocalizedFailure()"))
        }
    }
}
