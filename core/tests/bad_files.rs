//! Every kind of bad model file gives its typed error, never a crash, and
//! leaves the process able to load a good model afterwards.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{model_path, GEMMA_FILE};
use pocketlm::{inspect_file, Error, Model, ModelOptions};

/// A scratch file in the temp directory, removed when dropped: the truncated
/// copies of a real model add up to hundreds of MB per run. Names carry the
/// process id; tests in one process use distinct names.
struct TempFile(PathBuf);

impl std::ops::Deref for TempFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> TempFile {
    let path = std::env::temp_dir().join(format!("pocketlm-bad-files-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    TempFile(path)
}

fn load(path: &Path) -> Error {
    Model::load(path, &ModelOptions::default()).expect_err("a bad file must not load")
}

/// A minimal GGUF v3 writer for hand-made files.
struct Gguf(Vec<u8>);

impl Gguf {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Gguf {
        let mut b = b"GGUF".to_vec();
        b.extend(version.to_le_bytes());
        b.extend(n_tensors.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        Gguf(b)
    }
    fn string(mut self, s: &str) -> Self {
        self.0.extend((s.len() as u64).to_le_bytes());
        self.0.extend(s.as_bytes());
        self
    }
    fn kv_str(self, key: &str, value: &str) -> Self {
        let mut g = self.string(key);
        g.0.extend(8u32.to_le_bytes());
        g.string(value)
    }
    fn tensor(self, name: &str, dims: &[u64], ggml_type: u32, offset: u64) -> Self {
        let mut g = self.string(name);
        g.0.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            g.0.extend(d.to_le_bytes());
        }
        g.0.extend(ggml_type.to_le_bytes());
        g.0.extend(offset.to_le_bytes());
        g
    }
    fn pad_with_data(mut self, data_bytes: usize) -> Vec<u8> {
        while self.0.len() % 32 != 0 {
            self.0.push(0);
        }
        self.0.extend(std::iter::repeat_n(0u8, data_bytes));
        self.0
    }
}

#[test]
fn missing_file() {
    let err = load(Path::new("/nonexistent/dir/model.gguf"));
    assert!(matches!(err, Error::ModelNotFound { .. }), "{err}");
    assert!(err.to_string().contains("not found"));
}

#[test]
fn directory_instead_of_file() {
    let err = load(&std::env::temp_dir());
    assert!(matches!(err, Error::ModelUnreadable { .. }), "{err}");
}

#[test]
fn empty_file_and_wrong_magic_are_not_gguf() {
    for (name, bytes) in [("empty.gguf", &b""[..]), ("ggml.gguf", b"ggml\x01\x00\x00\x00 old format"), ("text.gguf", b"hello world")] {
        let err = load(&temp_file(name, bytes));
        assert!(matches!(err, Error::NotGguf { .. }), "{name}: {err}");
    }
}

#[test]
fn random_bytes_are_not_gguf() {
    let mut state = 0x2545F4914F6CDD1Du64;
    let bytes: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let err = load(&temp_file("random.gguf", &bytes));
    assert!(matches!(err, Error::NotGguf { .. }), "{err}");
    // Random bytes after a valid magic are corrupt or truncated, never a crash.
    let mut with_magic = b"GGUF\x03\x00\x00\x00".to_vec();
    with_magic.extend(&bytes);
    let err = load(&temp_file("random-magic.gguf", &with_magic));
    assert!(matches!(err, Error::ModelCorrupt { .. } | Error::ModelTruncated { .. }), "{err}");
}

#[test]
fn unsupported_gguf_version() {
    let err = load(&temp_file("v1.gguf", &Gguf::header(1, 0, 0).0));
    assert!(matches!(&err, Error::NotGguf { detail, .. } if detail.contains("version 1")), "{err}");
}

#[test]
fn huge_counts_and_lengths_are_corrupt() {
    let cases = [
        ("tensors.gguf", Gguf::header(3, u64::MAX / 2, 0).0),
        ("kvs.gguf", Gguf::header(3, 1, 1 << 40).0),
        ("string.gguf", {
            let mut g = Gguf::header(3, 1, 1);
            g.0.extend(u64::MAX.to_le_bytes());
            g.0.extend(b"general.architecture");
            g.0
        }),
        ("array.gguf", {
            let mut g = Gguf::header(3, 0, 1).string("tokenizer.ggml.tokens");
            g.0.extend(9u32.to_le_bytes());
            g.0.extend(8u32.to_le_bytes());
            g.0.extend((1u64 << 50).to_le_bytes());
            g.0
        }),
        (
            "dims.gguf",
            Gguf::header(3, 1, 1).kv_str("general.architecture", "llama").tensor("t", &[1 << 40, 1 << 40], 0, 0).pad_with_data(64),
        ),
        ("type.gguf", Gguf::header(3, 1, 1).kv_str("general.architecture", "llama").tensor("t", &[32], 99, 0).pad_with_data(64)),
    ];
    for (name, bytes) in cases {
        let err = load(&temp_file(name, &bytes));
        assert!(matches!(err, Error::ModelCorrupt { .. }), "{name}: {err}");
    }
}

#[test]
fn tensor_data_past_the_end_is_truncated() {
    let bytes = Gguf::header(3, 1, 1).kv_str("general.architecture", "llama").tensor("t", &[1024], 0, 0).pad_with_data(100);
    let err = load(&temp_file("short-data.gguf", &bytes));
    assert!(matches!(err, Error::ModelTruncated { .. }), "{err}");
}

#[test]
fn unknown_architecture_is_unsupported() {
    let bytes = Gguf::header(3, 1, 1).kv_str("general.architecture", "not-a-real-arch").tensor("t", &[32], 0, 0).pad_with_data(128);
    let err = load(&temp_file("arch.gguf", &bytes));
    assert!(matches!(&err, Error::UnsupportedArchitecture { architecture, .. } if architecture == "not-a-real-arch"), "{err}");
    let bytes = Gguf::header(3, 1, 0).tensor("t", &[32], 0, 0).pad_with_data(128);
    let err = load(&temp_file("no-arch.gguf", &bytes));
    assert!(matches!(err, Error::UnsupportedArchitecture { .. }), "{err}");
}

#[test]
fn structurally_valid_but_incomplete_model_fails_cleanly_in_llama_cpp() {
    let bytes = Gguf::header(3, 1, 1).kv_str("general.architecture", "llama").tensor("t", &[32], 0, 0).pad_with_data(128);
    let err = load(&temp_file("incomplete.gguf", &bytes));
    assert!(matches!(err, Error::ModelLoadFailed { .. }), "{err}");
}

#[test]
fn real_model_truncated_at_many_offsets() {
    let source = model_path(GEMMA_FILE);
    let size = std::fs::metadata(&source).unwrap().len();
    let offsets = [3u64, 8, 16, 24, 100, 10_000, 1_000_000, 5_000_000, size / 2, size - 1];
    let mut file = std::fs::File::open(&source).unwrap();
    let mut prefix = Vec::new();
    for &offset in &offsets {
        if (prefix.len() as u64) < offset {
            let mut more = vec![0u8; (offset - prefix.len() as u64) as usize];
            file.read_exact(&mut more).unwrap();
            prefix.extend(more);
        }
        let path = temp_file("truncated.gguf", &prefix[..offset as usize]);
        let err = load(&path);
        let expected = if offset < 4 { matches!(err, Error::NotGguf { .. }) } else { matches!(err, Error::ModelTruncated { .. }) };
        assert!(expected, "truncated at {offset}: {err}");
        assert!(inspect_file(&path).is_err());
    }
    // After all that, a good model still loads in this process.
    let model = Model::load(&source, &ModelOptions::default()).unwrap();
    assert_eq!(model.info().architecture, "gemma3");
}

#[test]
fn info_reads_the_real_models_without_loading_weights() {
    let info = pocketlm::describe(&inspect_file(&model_path(common::QWEN_FILE)).unwrap());
    assert_eq!(info.architecture, "qwen2");
    assert_eq!(info.quantization, "Q4_K_M");
    assert_eq!(info.file_size_bytes, 491_400_064);
    assert_eq!(info.context_length_trained, 32768);
    assert_eq!(info.vocab_size, 151_936);
    assert!(info.has_chat_template);
    assert!(info.parameter_count > 400_000_000 && info.parameter_count < 700_000_000, "{}", info.parameter_count);
    let info = pocketlm::describe(&inspect_file(&model_path(GEMMA_FILE)).unwrap());
    assert_eq!((info.architecture.as_str(), info.has_chat_template, info.vocab_size), ("gemma3", false, 262_144));
}

#[test]
fn models_that_cannot_chat_are_refused_before_llama_cpp() {
    for arch in ["bert", "nomic-bert", "t5encoder", "t5", "wavtokenizer-dec", "dream"] {
        let bytes = Gguf::header(3, 1, 1).kv_str("general.architecture", arch).tensor("t", &[32], 0, 0).pad_with_data(128);
        let err = load(&temp_file(&format!("{arch}.gguf"), &bytes));
        assert!(matches!(&err, Error::NotAChatModel { architecture, .. } if architecture == arch), "{arch}: {err}");
        assert!(err.to_string().contains("cannot chat"), "{err}");
    }
}

#[test]
fn absurd_shapes_in_a_header_are_corrupt_for_the_planner() {
    // Hand-made headers claiming what no model has: each is a typed error,
    // never an allocation of the claimed size or a wrapped product.
    let kv_u32 = |g: Gguf, key: &str, v: u32| {
        let mut g = g.string(key);
        g.0.extend(4u32.to_le_bytes());
        g.0.extend(v.to_le_bytes());
        g
    };
    let header = |layers: u32, embd: u32, heads: u32| {
        let g = Gguf::header(3, 1, 4).kv_str("general.architecture", "llama");
        let g = kv_u32(g, "llama.block_count", layers);
        let g = kv_u32(g, "llama.embedding_length", embd);
        let g = kv_u32(g, "llama.attention.head_count", heads);
        g.tensor("t", &[32], 0, 0).pad_with_data(128)
    };
    for (layers, embd, heads) in [(u32::MAX, 2048, 32), (513, 2048, 32), (16, u32::MAX, 32), (16, 2048, u32::MAX), (0, 2048, 32)] {
        let file = temp_file("shapes.gguf", &header(layers, embd, heads));
        let gguf = inspect_file(&file).unwrap();
        let err = pocketlm::plan::fit_budget(&gguf, 4 << 30, None, None).unwrap_err();
        assert!(matches!(err, Error::ModelCorrupt { .. }), "{layers}/{embd}/{heads}: {err}");
    }
    // A sane header plans.
    let file = temp_file("sane.gguf", &header(16, 2048, 32));
    assert!(pocketlm::plan::fit_budget(&inspect_file(&file).unwrap(), 4 << 30, None, None).is_ok());
}
