import Foundation
import PocketLMFFI

/// One event of a download.
public enum DownloadEvent: Sendable {
    /// Progress: state, bytes, speed and time left (throttled; every state change is sent).
    case progress(DownloadProgress)
    /// The file is installed, its SHA-256 verified.
    case done(InstalledModel)
}

/// Model files in one directory the app chooses (e.g. Application Support/models):
/// verified, resumable downloads, the installed files, and deleting them. Failures
/// are ``LanguageModelError/download(kind:transient:detail:message:)``.
public final class ModelDownloads: Sendable {
    private let inner: ModelDownloader

    /// The models in `directory` (created if missing).
    public init(directory: String, options: DownloadOptions = DownloadOptions()) throws {
        do {
            inner = try ModelDownloader(dir: directory, options: options)
        } catch {
            throw LanguageModelError.from(error)
        }
    }

    /// A download of `request`; it runs while its ``Download/events`` are iterated.
    public func download(_ request: DownloadRequest) -> Download {
        Download(inner, request)
    }

    /// Installs a file a background `URLSession` downloaded (move it out of the
    /// temporary location first) after checking its SHA-256; a wrong file
    /// throws `.download(kind: .hashMismatch, …)` and stays where it was.
    public func adopt(path: String, fileName: String, sha256: String?) async throws -> InstalledModel {
        let inner = self.inner
        return try await Blocking.run { try inner.adopt(sourcePath: path, fileName: fileName, sha256: sha256) }
    }

    /// The installed files, by name.
    public func installed() async throws -> [InstalledModel] {
        let inner = self.inner
        return try await Blocking.run { try inner.installed() }
    }

    /// Deletes `fileName` and any part of it; false if there was nothing.
    public func delete(_ fileName: String) async throws -> Bool {
        let inner = self.inner
        return try await Blocking.run { try inner.delete(fileName: fileName) }
    }

    /// Bytes used by installed files and parts of downloads.
    public var usedBytes: Int64 { inner.usedBytes() }

    /// Free bytes on the directory's file system, when the system says.
    public var freeBytes: Int64? { inner.freeBytes() }
}

/// One download. Iterating ``events`` runs it (resuming a part an earlier run
/// left); cancelling the iterating `Task` cancels it and keeps the part.
/// ``pause()`` and ``resume()`` work from any thread, before or while it runs.
public final class Download: @unchecked Sendable {
    private let downloader: ModelDownloader
    private let request: DownloadRequest
    private let lock = NSLock()
    private var handle: DownloadHandle?
    private var paused = false

    init(_ downloader: ModelDownloader, _ request: DownloadRequest) {
        self.downloader = downloader
        self.request = request
    }

    /// Progress events, then `.done`; a failure is thrown as ``LanguageModelError``.
    public var events: AsyncThrowingStream<DownloadEvent, Error> {
        AsyncThrowingStream(bufferingPolicy: .unbounded) { continuation in
            let running = downloader.download(request: request, listener: DownloadStreamListener(continuation))
            lock.lock()
            handle = running
            if paused { running.pause() }
            lock.unlock()
            continuation.onTermination = { _ in running.cancel() }
        }
    }

    /// Stops transferring (the connection closes, the part stays) until ``resume()``.
    public func pause() {
        lock.lock()
        paused = true
        handle?.pause()
        lock.unlock()
    }

    /// Continues from the byte the download reached.
    public func resume() {
        lock.lock()
        paused = false
        handle?.resume()
        lock.unlock()
    }

    /// Runs the download to the end and returns the installed file.
    public func value() async throws -> InstalledModel {
        for try await event in events {
            if case .done(let model) = event {
                return model
            }
        }
        throw CancellationError()
    }
}

private final class DownloadStreamListener: DownloadListener {
    private let continuation: AsyncThrowingStream<DownloadEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<DownloadEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onProgress(progress: DownloadProgress) {
        continuation.yield(.progress(progress))
    }

    func onComplete(model: InstalledModel) {
        continuation.yield(.done(model))
        continuation.finish()
    }

    func onError(error: FfiError) {
        continuation.finish(throwing: LanguageModelError(error))
    }
}
