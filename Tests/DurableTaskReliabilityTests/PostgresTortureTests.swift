import Foundation
import Testing

/// The PostgreSQL server of the tortures below.
enum TortureServer {
    static let url = ProcessInfo.processInfo.environment["DURABLETASK_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
}

/// The kill tortures against PostgreSQL, when `DURABLETASK_POSTGRES_URL` names a server (`.ci/run`
/// always starts one). Each run has a task hub (schema) of its own.
///
/// Competing processes with kills is the run that found the batched lease delivering a committed
/// episode's events again (a batch of results recorded twice, in 4 of 5 runs of 1,500 orchestrations).
@Suite(
    .serialized,
    .enabled(
        if: TortureServer.url != nil,
        "DURABLETASK_POSTGRES_URL is not set: no PostgreSQL server for the Postgres tortures. Run `export DURABLETASK_POSTGRES_URL=$(.ci/postgres start)` first"
    ))
struct PostgresTortureTests {

    func int(_ outcome: TortureTests.Outcome, _ key: String) -> Int { (outcome.json[key] as? NSNumber)?.intValue ?? -1 }

    @Test func crashTortureKeepsEveryPromiseOnPostgres() async throws {
        let url = try #require(TortureServer.url)
        TortureTests.expectCrashTortureKeptEveryPromise(
            try await TortureTests.torture(["crash", "--items", "200", "--kills", "12", "--seeds", "2", "--seed", "7", "--postgres", url]))
    }

    @Test func competingProcessesSurviveKillsOnPostgres() async throws {
        let url = try #require(TortureServer.url)
        let outcome = try await TortureTests.torture([
            "competing", "--processes", "4", "--orchestrations", "1000", "--fanout", "10", "--kill-every", "0.5", "--postgres", url
        ])
        #expect(outcome.status == 0, "\(outcome.output)")
        #expect(int(outcome, "kills") >= 5, "\(outcome.output)")
        #expect(int(outcome, "completed") == 1000)
        #expect(int(outcome, "completed_more_than_once") == 0)
        #expect(int(outcome, "duplicate_completions") == 0, "\(outcome.output)")
        #expect(int(outcome, "lost") == 0)
        #expect(int(outcome, "wrong_results") == 0)
    }
}
