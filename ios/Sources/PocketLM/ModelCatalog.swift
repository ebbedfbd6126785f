import Foundation
import PocketLMFFI

#if canImport(os) && os(iOS)
import os
#endif

/// The models an app can offer: PocketLM's built-in catalog (Llama 3.2, Gemma 3,
/// Qwen 2.5 and 3, Phi-4-mini; Q4_K_M), plus the app's own entries, and which of
/// them fit the device before any byte is downloaded. Computed locally in
/// microseconds: no network, safe on any thread.
public final class ModelCatalog: Sendable {
    private let inner: PocketCatalog

    private init(_ inner: PocketCatalog) {
        self.inner = inner
    }

    /// PocketLM's built-in catalog.
    public static func builtin() -> ModelCatalog {
        ModelCatalog(PocketCatalog.builtin())
    }

    /// A catalog from a JSON document `{"version": 1, "models": [...]}`; a bad one throws.
    public convenience init(json: String) throws {
        do {
            self.init(try PocketCatalog.fromJson(json: json))
        } catch {
            throw LanguageModelError.from(error)
        }
    }

    /// Every entry, in order.
    public var entries: [CatalogEntry] { inner.entries() }

    /// The entry with `id`, if any.
    public subscript(id: String) -> CatalogEntry? { inner.get(id: id) }

    /// Adds `entry` after checking it (replacing one with the same id); a bad one
    /// throws ``LanguageModelError/invalidOption(name:value:expected:message:)``.
    public func add(_ entry: CatalogEntry) throws {
        do {
            try inner.add(entry: entry)
        } catch {
            throw LanguageModelError.from(error)
        }
    }

    /// Every entry costed by the memory planner for `budgetBytes` of memory (see
    /// ``availableMemory()``) at `contextLength` tokens, with the vision projector
    /// when `withProjector`: the ones that fit first, largest first.
    public func recommend(budgetBytes: Int64, contextLength: Int32 = 4096, withProjector: Bool = false) throws -> [Recommendation] {
        do {
            return try inner.recommend(budgetBytes: budgetBytes, contextLength: contextLength, withProjector: withProjector)
        } catch {
            throw LanguageModelError.from(error)
        }
    }

    /// The catalog as JSON that ``init(json:)`` reads back.
    public func json() -> String { inner.toJson() }

    /// Memory this process may still use, in bytes: `os_proc_available_memory()` on
    /// iOS (what the system lets the app grow by before it is terminated), the
    /// physical memory elsewhere. A starting point for a budget.
    public static func availableMemory() -> Int64 {
        #if canImport(os) && os(iOS)
        return Int64(os_proc_available_memory())
        #else
        return Int64(clamping: ProcessInfo.processInfo.physicalMemory)
        #endif
    }
}

extension CatalogFile {
    /// The request that downloads this file, verified against its size and SHA-256 when known.
    public func downloadRequest(token: String? = nil) -> DownloadRequest {
        DownloadRequest(url: url, fileName: fileName, sha256: sha256, size: size, token: token)
    }
}

extension ModelDownloads {
    /// A download of `entry`'s model file (`token` for a gated model).
    public func download(_ entry: CatalogEntry, token: String? = nil) -> Download {
        download(entry.file.downloadRequest(token: token))
    }
}
