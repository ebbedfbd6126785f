import PocketLMFFI

/// Turns texts into vectors with an embedding model (all-MiniLM, bge, e5, nomic-embed, …),
/// for on-device retrieval with ``VectorIndex``.
///
/// ```swift
/// let embedder = try await Embedder.load(path: path)
/// let index = try VectorIndex(dimensions: embedder.dimensions)
/// for (i, (text, vector)) in zip(chunks, try await embedder.embed(chunks)).enumerated() {
///     try index.add(id: "\(i)", text: text, vector: vector)
/// }
/// let best = try index.search(try await embedder.embed([question])[0], k: 3)
/// ```
/// Loading and embedding run on PocketLM's own threads, never the caller's.
public final class Embedder: Sendable {
    private let embedder: PocketEmbedder

    private init(embedder: PocketEmbedder) {
        self.embedder = embedder
    }

    /// Loads the model at `path` for embeddings. A chat model embeds only with `config.pooling` set.
    /// - Throws: ``LanguageModelError/cannotEmbed(path:reason:message:)`` for a model that cannot
    ///   embed, and the model-file errors of ``LanguageModel/load(path:config:progress:)``.
    public static func load(path: String, config: EmbedConfig = EmbedConfig()) async throws -> Embedder {
        try await Blocking.run { Embedder(embedder: try PocketEmbedder.load(path: path, config: config)) }
    }

    /// The width of the vectors.
    public var dimensions: Int { Int(embedder.dimensions()) }

    /// One vector per text, in order.
    /// - Throws: ``LanguageModelError/embeddingInputTooLong(index:tokens:limit:message:)`` naming the
    ///   first text over the token limit (unless `config.truncate`).
    public func embed(_ texts: [String]) async throws -> [[Float]] {
        let embedder = self.embedder
        return try await Blocking.run { try embedder.embed(texts: texts) }
    }
}

/// Chunks of text and their vectors, searchable by cosine similarity; exact search, fast
/// for tens of thousands of chunks. Safe to share between tasks.
public final class VectorIndex: Sendable {
    private let index: PocketVectorIndex

    private init(index: PocketVectorIndex) {
        self.index = index
    }

    /// An empty index for vectors of `dimensions` values (an ``Embedder``'s).
    public convenience init(dimensions: Int) throws {
        do {
            self.init(index: try PocketVectorIndex(dimensions: Int32(clamping: dimensions)))
        } catch {
            throw LanguageModelError.from(error)
        }
    }

    /// Reads an index written by ``save(to:)``.
    /// - Throws: ``LanguageModelError/vectorIndex(detail:message:)`` for a damaged file.
    public static func load(from path: String) async throws -> VectorIndex {
        try await Blocking.run { VectorIndex(index: try PocketVectorIndex.load(path: path)) }
    }

    /// How many chunks it holds.
    public var count: Int { Int(index.size()) }

    /// Adds a chunk, or replaces the one with the same `id`.
    public func add(id: String, text: String, vector: [Float]) throws {
        do { try index.add(id: id, text: text, vector: vector) } catch { throw LanguageModelError.from(error) }
    }

    /// Removes a chunk; `false` if there was none with this `id`.
    @discardableResult
    public func remove(id: String) -> Bool { index.remove(id: id) }

    /// The `k` chunks closest to `query`, closest first.
    public func search(_ query: [Float], k: Int) throws -> [SearchHit] {
        do { return try index.search(query: query, k: Int32(clamping: k)) } catch { throw LanguageModelError.from(error) }
    }

    /// Writes the index to `path` (a temporary file, then a rename).
    public func save(to path: String) async throws {
        let index = self.index
        try await Blocking.run { try index.save(path: path) }
    }
}
