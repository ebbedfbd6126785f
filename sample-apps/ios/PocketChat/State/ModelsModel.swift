import Foundation
#if canImport(Combine)
import Combine
#endif
import PocketLM

/// Where one catalog model stands on this phone.
public enum ModelState: Equatable, Sendable {
    /// Not on the phone.
    case available
    /// Downloading (`paused` while paused); `total` is nil until the server says.
    case downloading(downloaded: Int64, total: Int64?, paused: Bool)
    /// On the phone, verified, ready to load from `path`.
    case installed(path: String)
    /// The last download failed; the part is kept, so downloading again resumes.
    case failed(String)
}

/// One row of the model screen: a catalog entry, whether the planner says it fits, and its state.
public struct ModelRow: Equatable, Identifiable, Sendable {
    public let id: String
    public let name: String
    public let downloadBytes: Int64?
    public let fits: Bool
    /// Why it does not fit (or what the planner had to give up), for the row's subtitle.
    public let note: String?
    public var state: ModelState
}

/// The model screen: catalog entries with fit-for-this-phone from the memory
/// planner, and downloads with progress, pause, resume, cancel and delete.
/// Nothing here blocks the main actor.
@MainActor
public final class ModelsModel: ObservableObject {
    /// The rows, in catalog order.
    @Published public private(set) var rows: [ModelRow] = []

    private let catalog: ModelCatalog
    private let downloads: ModelDownloads
    private let budgetBytes: Int64
    private let contextLength: Int32
    private var running: [String: (download: Download, task: Task<Void, Never>)] = [:]

    public init(catalog: ModelCatalog, downloads: ModelDownloads, budgetBytes: Int64, contextLength: Int32) {
        self.catalog = catalog
        self.downloads = downloads
        self.budgetBytes = budgetBytes
        self.contextLength = contextLength
    }

    /// Reads the catalog, the planner's verdicts and what is installed.
    public func refresh() async {
        let installed = Dictionary(((try? await downloads.installed()) ?? []).map { ($0.fileName, $0) }, uniquingKeysWith: { a, _ in a })
        let verdicts = Dictionary(((try? catalog.recommend(budgetBytes: budgetBytes, contextLength: contextLength)) ?? []).map { ($0.id, $0) },
                                  uniquingKeysWith: { a, _ in a })
        rows = catalog.entries.map { entry in
            let verdict = verdicts[entry.id]
            let current = rows.first { $0.id == entry.id }?.state
            var state = ModelState.available
            if let model = installed[entry.file.fileName] {
                state = .installed(path: model.path)
            } else if case .downloading = current {
                state = current!
            } else if case .failed = current {
                state = current!
            }
            return ModelRow(id: entry.id, name: entry.name, downloadBytes: verdict?.downloadBytes,
                            fits: verdict?.fits ?? false, note: verdict?.reason, state: state)
        }
    }

    /// Starts (or resumes after a failure) downloading `id`.
    public func download(_ id: String) {
        guard let entry = catalog[id], running[id] == nil else { return }
        let download = downloads.download(entry)
        set(id) { _ in .downloading(downloaded: 0, total: entry.file.size, paused: false) }
        let task = Task { [weak self] in
            do {
                for try await event in download.events {
                    switch event {
                    case .progress(let progress):
                        self?.set(id) { old in
                            if case .downloading(_, _, let paused) = old {
                                return .downloading(downloaded: progress.downloaded, total: progress.total, paused: paused)
                            }
                            return .downloading(downloaded: progress.downloaded, total: progress.total, paused: false)
                        }
                    case .done(let model):
                        self?.set(id) { _ in .installed(path: model.path) }
                    }
                }
            } catch is CancellationError {
            } catch {
                self?.set(id) { _ in .failed("\(error)") }
            }
            // Only this download's entry: a new download of `id` may have started after a cancel.
            if self?.running[id]?.download === download { self?.running[id] = nil }
        }
        running[id] = (download, task)
    }

    /// Pauses `id`'s download (the connection closes; the part stays).
    public func pause(_ id: String) {
        guard let download = running[id]?.download else { return }
        download.pause()
        set(id) { old in
            if case .downloading(let done, let total, _) = old { return .downloading(downloaded: done, total: total, paused: true) }
            return old
        }
    }

    /// Resumes `id`'s paused download from the byte it reached.
    public func resume(_ id: String) {
        guard let download = running[id]?.download else { return }
        download.resume()
        set(id) { old in
            if case .downloading(let done, let total, _) = old { return .downloading(downloaded: done, total: total, paused: false) }
            return old
        }
    }

    /// Cancels `id`'s download and deletes what it fetched.
    public func cancel(_ id: String) async {
        if let task = running.removeValue(forKey: id)?.task {
            task.cancel()
            await task.value
        }
        if let entry = catalog[id] { _ = try? await downloads.delete(entry.file.fileName) }
        set(id) { _ in .available }
    }

    /// Deletes installed model `id` from the phone.
    public func delete(_ id: String) async {
        if let entry = catalog[id] { _ = try? await downloads.delete(entry.file.fileName) }
        set(id) { _ in .available }
    }

    private func set(_ id: String, _ change: (ModelState) -> ModelState) {
        guard let i = rows.firstIndex(where: { $0.id == id }) else { return }
        rows[i].state = change(rows[i].state)
    }
}
