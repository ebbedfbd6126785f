//! Vision projector files (apps download them beside models): any bytes
//! must be a typed GGUF error or a checked verdict against the model, never
//! a panic, and an accepted projector must be exactly the Gemma 3 layout
//! llama.cpp runs without aborting.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pocketlm_base::gguf::{GgufFile, GgufValue};
use pocketlm_base::vision::{check_projector, projector_bytes};

/// A Gemma 3 text model 16 wide (what the seed projector, written by
/// scripts/fuzz_seeds.py, projects to).
fn base() -> GgufFile {
    let metadata = BTreeMap::from([
        ("general.architecture".to_string(), GgufValue::String("gemma3".into())),
        ("gemma3.embedding_length".to_string(), GgufValue::UInt(16)),
    ]);
    let value_types = BTreeMap::from([("general.architecture".to_string(), 8), ("gemma3.embedding_length".to_string(), 4)]);
    GgufFile { version: 3, metadata, value_types, tensors: Vec::new(), data_offset: 0, file_size: 0 }
}

fuzz_target!(|data: &[u8]| {
    let Ok(projector) = GgufFile::parse(data) else { return };
    if let Ok(shape) = check_projector(&projector, &base()) {
        assert_eq!(shape.projection, 16);
        assert_eq!(shape.projector_type, "gemma3");
        let side = shape.image_size / shape.patch_size;
        assert_eq!(shape.image_size % shape.patch_size, 0);
        assert_eq!(side % shape.merge, 0);
        assert_eq!(shape.image_tokens, (side / shape.merge).pow(2));
        let type_of = |name: &str| projector.tensors.iter().find(|t| t.name == name).map(|t| t.ggml_type.name);
        assert_eq!(type_of("v.position_embd.weight"), Some("F32"));
        assert!(matches!(type_of("mm.input_projection.weight"), Some("F32" | "F16")));
        assert_eq!(projector.tensors.len() as u32, 7 + 16 * shape.blocks);
        assert!(projector_bytes(&shape) >= shape.tensor_bytes);
    }
});
