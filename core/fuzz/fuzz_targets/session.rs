//! Saved-conversation files (an app's own storage, but a damaged disk, a
//! half-written copy or a hostile backup can put anything there): any bytes,
//! and valid files with one byte changed or cut short. Reading must return a
//! typed error or a header and payload that match their digests, never panic,
//! and never allocate more than the input holds.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pocketlm_base::plan::KvType;
use pocketlm_base::session_file::{
    parse_session, write_session, AdapterInEffect, ContextSettings, ModelIdentity, SessionHeader, SessionPayload,
};
use pocketlm_base::template::Message;

fn valid(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    let header = SessionHeader {
        model: ModelIdentity { file_size: u64::arbitrary(u)?, header_sha256: String::arbitrary(u)?, architecture: "qwen2".into(), name: None },
        template_sha256: String::arbitrary(u)?,
        context: ContextSettings { context_length: u32::arbitrary(u)?, kv_type: KvType::F16, full_swa_cache: bool::arbitrary(u)? },
        // Scales as a conversation records them: finite (set_adapters refuses others).
        adapters: vec![AdapterInEffect { sha256: String::arbitrary(u)?, scale: f32::from(i16::arbitrary(u)?) / 64.0 }],
        engine: String::arbitrary(u)?,
        saved_at: u64::arbitrary(u)?,
        messages: vec![Message::user(String::arbitrary(u)?), Message::assistant(String::arbitrary(u)?)],
        tokens: 0,
        state_bytes: 0,
        payload_sha256: String::new(),
    };
    let payload = SessionPayload { tokens: Vec::<i32>::arbitrary(u)?, state: Vec::<u8>::arbitrary(u)? };
    let mut out = Vec::new();
    write_session(&mut out, &header, &payload).expect("writing to memory works");
    let (read, back) = parse_session(&out).expect("a written file reads back");
    assert_eq!(read.messages, header.messages);
    assert_eq!(back.expect("its payload is intact"), payload);
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(mode) = u8::arbitrary(&mut u) else { return };
    let bytes = match mode % 3 {
        0 => u.take_rest().to_vec(),
        _ => {
            let Ok(mut bytes) = valid(&mut u) else { return };
            let at = usize::arbitrary(&mut u).unwrap_or(0) % bytes.len().max(1);
            if mode % 3 == 1 {
                bytes[at] ^= u8::arbitrary(&mut u).unwrap_or(1).max(1);
            } else {
                bytes.truncate(at);
            }
            bytes
        }
    };
    if let Ok((header, Ok(payload))) = parse_session(&bytes) {
        assert_eq!(payload.tokens.len(), header.tokens as usize);
        assert_eq!(payload.state.len() as u64, header.state_bytes);
    }
});
