//! Vector index files (an app's own storage, but a damaged disk or a
//! hostile backup can put anything there) and the index operations. Any
//! bytes, and valid files changed in their body with the checksum made good
//! again, must give a typed error or an index that saves back to the same
//! bytes; arbitrary adds, removes and searches must keep every id findable.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pocketlm_base::vector_index::VectorIndex;
use sha2::{Digest, Sha256};

fn vector(u: &mut Unstructured, d: usize) -> arbitrary::Result<Vec<f32>> {
    (0..d).map(|_| f32::arbitrary(u)).collect()
}

/// An index built through the API, checked as it goes.
fn built(u: &mut Unstructured) -> arbitrary::Result<VectorIndex> {
    let d = u.int_in_range(1..=6)?;
    let mut index = VectorIndex::new(d).expect("a small width is valid");
    for _ in 0..u.int_in_range(0..=24)? {
        let id = u.choose(&["a", "b", "c", "d", "e", "f"])?.to_string();
        match u.int_in_range(0..=2)? {
            0 | 1 => {
                let added = index.add(&id, &String::arbitrary(u)?, &vector(u, d)?).is_ok();
                assert!(!added || index.contains(&id));
            }
            _ => {
                let had = index.contains(&id);
                assert_eq!(index.remove(&id), had);
                assert!(!index.contains(&id));
            }
        }
        let k = u.int_in_range(0..=8)?;
        if let Ok(hits) = index.search(&vector(u, d)?, k) {
            assert_eq!(hits.len(), k.min(index.len()));
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "{hits:?}");
            assert!(hits.iter().all(|h| index.contains(&h.id) && (-1.0..=1.0).contains(&h.score)));
        }
    }
    Ok(index)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(mode) = u.int_in_range(0..=2u8) else { return };
    let bytes = match mode {
        0 => u.peek_bytes(u.len()).unwrap_or_default().to_vec(),
        _ => {
            let Ok(index) = built(&mut u) else { return };
            let mut bytes = index.to_bytes();
            assert_eq!(VectorIndex::from_bytes(&bytes).as_ref(), Ok(&index));
            if mode == 2 && bytes.len() > 32 {
                // Change the body, then make the checksum match it again.
                let body = bytes.len() - 32;
                let at = u.int_in_range(0..=body - 1).unwrap_or(0);
                let patch = u.bytes(u.len().min(16)).unwrap_or_default().to_vec();
                bytes.truncate(body);
                for (i, b) in patch.into_iter().enumerate() {
                    match bytes.get_mut(at + i) {
                        Some(slot) => *slot = b,
                        None => bytes.push(b),
                    }
                }
                if bool::arbitrary(&mut u).unwrap_or(false) {
                    bytes.truncate(at);
                }
                let digest = Sha256::digest(&bytes);
                bytes.extend_from_slice(&digest);
            }
            bytes
        }
    };
    if let Ok(index) = VectorIndex::from_bytes(&bytes) {
        assert_eq!(index.to_bytes(), bytes);
    }
});
