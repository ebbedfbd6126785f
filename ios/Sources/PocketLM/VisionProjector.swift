import PocketLMFFI

/// A vision projector loaded beside a ``LanguageModel`` with
/// ``LanguageModel/loadProjector(path:)``: what lets its conversations see images (Gemma 3's
/// `mmproj` file).
///
/// ```swift
/// let vision = try await model.loadProjector(path: dir + "/mmproj-model-f16.gguf")
/// try await conversation.setProjector(vision)
/// for try await event in conversation.send("What is on this receipt?", images: [jpegData]) { ... }
/// ```
/// One projector serves any number of conversations of its model. Its memory is freed when it
/// is released and no conversation uses it any more.
public final class VisionProjector: Sendable {
    let projector: PocketProjector

    init(_ projector: PocketProjector) {
        self.projector = projector
    }

    /// What the projector is: its type, the context positions one image takes, its memory.
    public var info: ProjectorInfo { projector.info() }
}
