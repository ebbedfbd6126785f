import Dispatch

/// Where PocketLM's blocking calls run (loading, creating a context, waiting
/// for a conversation's engine): threads of its own, never the cooperative
/// pool that Swift concurrency shares between all tasks, which a load or a
/// queued request would otherwise hold for seconds.
enum Blocking {
    private static let queue = DispatchQueue(label: "dev.pocketlm.blocking", qos: .userInitiated, attributes: .concurrent)

    /// Runs `work` on PocketLM's queue and suspends the caller until it returns.
    /// An error from the FFI is rethrown as ``LanguageModelError``.
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        let job = Job(work)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async {
                job.execute()
                done.resume()
            }
        }
        switch job.takeResult() {
        case .success(let value): return value
        case .failure(let error): throw LanguageModelError.from(error)
        }
    }

    /// ``run(_:)`` for work that cannot fail.
    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        let job = Job(work)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            queue.async {
                job.execute()
                done.resume()
            }
        }
        switch job.takeResult() {
        case .success(let value): return value
        case .failure: fatalError("unreachable: this work cannot throw")
        }
    }
}

/// One piece of blocking work and its result. The queue's thread lets go of
/// the work (and what it captured) and of the result before it resumes the
/// caller, which then takes the result: nothing the caller releases (a model,
/// a conversation) stays alive on the queue's thread a moment longer, so
/// `LanguageModel.liveModels` drops as soon as the caller lets go.
private final class Job<T: Sendable>: @unchecked Sendable {
    // Written by the queue's thread before `done.resume()`, read by the caller
    // after it: the continuation orders the two.
    private var work: (@Sendable () throws -> T)?
    private var result: Result<T, Error>?

    init(_ work: @escaping @Sendable () throws -> T) {
        self.work = work
    }

    func execute() {
        guard let work else { return }
        self.work = nil
        result = Result { try work() }
    }

    func takeResult() -> Result<T, Error> {
        guard let result else { fatalError("PocketLM's blocking work did not run") }
        self.result = nil
        return result
    }
}
