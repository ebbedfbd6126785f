//! The GGUF reader on any bytes: it must return a typed error or a file whose
//! every tensor lies inside the input, never panic or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketlm_base::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = GgufFile::parse(data) {
        for t in &file.tensors {
            assert!(file.data_offset + t.offset + t.size_bytes <= data.len() as u64, "{t:?} lies outside the file");
        }
        let _ = (file.n_params(), file.tensor_bytes(), file.architecture());
    }
});
