// The generated value types (configs, info, metrics, errors) are part of the
// public API; re-export them so apps only `import PocketLM`.
@_exported import PocketLMFFI
