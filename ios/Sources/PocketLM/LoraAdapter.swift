import PocketLMFFI

/// A LoRA adapter loaded onto a ``LanguageModel`` with ``LanguageModel/loadAdapter(path:)``:
/// a small file of weight changes fine-tuned for one task, applied at run time without
/// reloading the model.
///
/// ```swift
/// let support = try await model.loadAdapter(path: dir + "/support-tone.gguf")
/// try await conversation.setAdapters([support: 1])   // on
/// try await conversation.setAdapters([:])            // off again
/// ```
/// One adapter may be set on any number of conversations of its model at once, each with its
/// own scale. Two values are equal when they are the same loaded adapter. Its memory is freed
/// when it is released and no conversation uses it any more.
public final class LoraAdapter: Sendable, Hashable {
    let adapter: PocketAdapter

    init(_ adapter: PocketAdapter) {
        self.adapter = adapter
    }

    /// What the adapter is: rank, alpha, how many matrices it changes, its size and SHA-256.
    public var info: AdapterInfo { adapter.info() }

    public static func == (lhs: LoraAdapter, rhs: LoraAdapter) -> Bool { lhs === rhs }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(self))
    }
}
