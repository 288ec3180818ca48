@_spi(Backend) import DurableTask
@testable import DurableTaskSQLite
import Foundation
import Testing

/// Writes queued together share one transaction, and one failing write is undone alone.
@Suite("SQLite group commit")
struct GroupCommitTests {
    struct Failure: Error, Equatable {
        let value: Int
    }

    /// A writer thread on a fresh file with one table, held busy by a first job until `release()`, so
    /// the writes queued meanwhile run as one batch.
    final class HeldThread: Sendable {
        let directory: TemporaryDirectory
        let thread: DatabaseThread
        private let gate = DispatchSemaphore(value: 0)

        init() throws {
            directory = try TemporaryDirectory()
            let path = directory.path("batch.sqlite")
            thread = try DatabaseThread(name: "test writer") {
                let c = try Connection(path: path)
                try c.execute("PRAGMA journal_mode=WAL; CREATE TABLE t (v INTEGER PRIMARY KEY)")
                return c
            }
            let gate = self.gate
            thread.enqueue { _ in gate.wait() }
        }

        func release() { gate.signal() }

        /// Waits (off the cooperative pool's hot path, briefly) until `count` jobs are queued.
        func waitForQueued(_ count: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while thread.queuedCount < count {
                guard ContinuousClock.now < deadline else { throw Failure(value: -1) }
                try await Task.sleep(for: .milliseconds(1))
            }
        }

        func values() async throws -> [Int] {
            try await thread.run { c in
                let select = try c.prepare("SELECT v FROM t ORDER BY v")
                var values: [Int] = []
                try select.forEachRow { values.append(select.int(0)) }
                return values
            }
        }

        deinit { thread.stop() }
    }

    @Test func aFailingWriteInABatchIsUndoneAloneAndTheOthersCommit() async throws {
        let held = try HeldThread()
        let thread = held.thread
        let results = try await withThrowingTaskGroup(of: (Int, Result<Int, Failure>).self) { group in
            for value in 1...5 {
                group.addTask {
                    do {
                        let written = try await thread.write { c -> Int in
                            // Each write sees the ones before it in its batch, as if they ran one by one.
                            try c.execute("INSERT INTO t (v) VALUES (\(value))")
                            if value == 3 { throw Failure(value: value) }
                            return value * 10
                        }
                        return (value, .success(written))
                    } catch let error as Failure {
                        return (value, .failure(error))
                    }
                }
                try await held.waitForQueued(value)
            }
            held.release()
            var results: [Int: Result<Int, Failure>] = [:]
            for try await (value, result) in group { results[value] = result }
            return results
        }
        #expect(results[1] == .success(10))
        #expect(results[2] == .success(20))
        #expect(results[3] == .failure(Failure(value: 3)))
        #expect(results[4] == .success(40))
        #expect(results[5] == .success(50))
        #expect(try await held.values() == [1, 2, 4, 5])
    }

    @Test func aStatementErrorInABatchFailsThatWriteOnly() async throws {
        let held = try HeldThread()
        let thread = held.thread
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            // The second write inserts the first one's key again: a constraint error of its own.
            for (index, value) in [7, 7, 8].enumerated() {
                group.addTask {
                    let ok = (try? await thread.write { c in try c.execute("INSERT INTO t (v) VALUES (\(value))") }) != nil
                    return (index, ok)
                }
                try await held.waitForQueued(index + 1)
            }
            held.release()
            var outcomes: [Int: Bool] = [:]
            for try await (index, ok) in group { outcomes[index] = ok }
            return outcomes
        }
        #expect(outcomes == [0: true, 1: false, 2: true])
        #expect(try await held.values() == [7, 8])
    }

    @Test func aFailingCheckFailsTheWholeBatchAndWritesNothing() async throws {
        let held = try HeldThread()
        let thread = held.thread
        thread.setBatchCheck { throw Failure(value: 0) }
        let failures = try await withThrowingTaskGroup(of: Bool.self) { group in
            for value in 1...3 {
                group.addTask {
                    do {
                        try await thread.write { c in try c.execute("INSERT INTO t (v) VALUES (\(value))") }
                        return false
                    } catch {
                        return error as? Failure == Failure(value: 0)
                    }
                }
                try await held.waitForQueued(value)
            }
            held.release()
            var failures = 0
            for try await failed in group where failed { failures += 1 }
            return failures
        }
        #expect(failures == 3)
        thread.setBatchCheck {}
        #expect(try await held.values() == [])
    }

    /// Through the backend: concurrent creates commit together; the one whose ID exists fails alone.
    @Test func concurrentCreatesCommitTogetherAndADuplicateFailsAlone() async throws {
        let directory = try TemporaryDirectory()
        let backend = try SQLiteBackend(path: directory.path("hub.sqlite"))
        func request(_ id: String) -> NewOrchestrationInstance {
            NewOrchestrationInstance(
                instanceID: id,
                startEvent: HistoryEvent(
                    timestamp: Date(),
                    kind: .executionStarted(name: "Orchestrator", executionID: "e", input: nil, parent: nil, scheduledStart: nil)))
        }
        try await backend.createOrchestrationInstance(request("dup"))
        let duplicates = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    do {
                        try await backend.createOrchestrationInstance(request(index == 100 ? "dup" : "i\(index)"))
                        return false
                    } catch let error as DurableTaskError where error.code == .instanceAlreadyExists {
                        return true
                    }
                }
            }
            var duplicates = 0
            for try await duplicate in group where duplicate { duplicates += 1 }
            return duplicates
        }
        #expect(duplicates == 1)
        let all = try await backend.queryOrchestrations(OrchestrationQuery(pageSize: 1_000))
        #expect(all.instances.count == 200)
        await backend.close()
    }
}
