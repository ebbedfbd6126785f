import Foundation

/// The real test model every suite runs on. A missing model is a failure,
/// never a skip: `scripts/test-swift.sh` always sets the path.
public enum TestModel {
    /// The path is not set.
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "POCKETLM_TEST_MODEL is not set: run scripts/test-swift.sh, or set it to the Qwen2.5 0.5B GGUF path"
        }
    }

    /// The Qwen2.5 0.5B GGUF path from `POCKETLM_TEST_MODEL`.
    public static var path: String {
        get throws {
            guard let path = ProcessInfo.processInfo.environment["POCKETLM_TEST_MODEL"], !path.isEmpty else {
                throw Missing()
            }
            return path
        }
    }
}
