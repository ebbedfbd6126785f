//! Image bytes from strangers: any bytes must decode to pixels within the
//! limits or be refused with a reason, never a panic or an allocation
//! beyond the limits (libFuzzer's RSS limit catches those).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketlm_base::image::{Image, MAX_KEPT_SIDE, MAX_PIXELS, MAX_SIDE};

fuzz_target!(|data: &[u8]| {
    match Image::decode(data) {
        Ok(image) => {
            let (w, h) = image.source_size();
            assert!(w >= 1 && h >= 1 && w <= MAX_SIDE && h <= MAX_SIDE && u64::from(w) * u64::from(h) <= MAX_PIXELS);
            assert!(image.width() <= MAX_KEPT_SIDE && image.height() <= MAX_KEPT_SIDE);
            assert_eq!(image.rgb().len(), image.width() as usize * image.height() as usize * 3);
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
});
