//! Image input through a vision projector, on the shaped Gemma 3 4B layout
//! (scripts/make-test-shaped-models.sh): the text model cut to 6 layers and
//! its projector cut to 1 encoder block, both with the real tensor shapes
//! and random weights. What the model says about an image is noise; these
//! tests check the path: images reach the model and change what it says,
//! equal images give equal answers, the KV cache keeps images across turns,
//! and every bad input is a typed error that leaves the conversation working.
//! What only the real Gemma 3 4B can show is in docs/images.md.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{model_dir, qwen};
use pocketlm::{
    CancelToken, Constraint, Conversation, ConversationOptions, Error, Image, Model, ModelOptions, Projector, SamplingParams, SendOptions,
    Structured,
};

fn shaped(file: &str) -> PathBuf {
    let path = model_dir().join("shaped").join(file);
    assert!(path.exists(), "{} is missing: scripts/test.sh generates it with scripts/make-test-shaped-models.sh", path.display());
    path
}

fn projector_path(name: &str) -> PathBuf {
    shaped(&format!("gemma-3-4b-mmproj-1block/{name}.gguf"))
}

fn gemma4b() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(shaped("gemma-3-4b-6layers.gguf"), &ModelOptions::default()).expect("the shaped Gemma 3 4B loads"))
}

fn projector() -> &'static Projector {
    static PROJECTOR: OnceLock<Projector> = OnceLock::new();
    PROJECTOR.get_or_init(|| Projector::load(gemma4b(), projector_path("mmproj")).expect("the shaped projector loads"))
}

fn chat(max_tokens: u32) -> Conversation {
    let options = ConversationOptions {
        context_length: Some(1024),
        threads: Some(2),
        sampling: SamplingParams { max_tokens, ..SamplingParams::greedy() },
        ..Default::default()
    };
    let mut c = Conversation::new(gemma4b(), options).unwrap();
    c.set_projector(Some(projector().clone())).unwrap();
    c
}

fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([rgb[0] ^ (x as u8 & 16), rgb[1], rgb[2] ^ (y as u8 & 16)]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn send(c: &mut Conversation, text: &str, images: &[Image]) -> pocketlm::Result<pocketlm::Reply> {
    c.send_with_images_events(text, images, &SendOptions::default(), &mut |_| {})
}

#[test]
fn a_projector_loads_and_says_what_an_image_costs() {
    let info = projector().info();
    assert_eq!(info.projector_type, "gemma3");
    // 256 embeddings (64 patches a side pooled by 4) and the text tokens around them.
    assert_eq!(info.embeddings_per_image, 256);
    assert!((257..=262).contains(&info.tokens_per_image), "{info:?}");
    assert_eq!(info.tensor_bytes, pocketlm::gguf::GgufFile::read(&projector_path("mmproj")).unwrap().unwrap().tensor_bytes());
    assert!(info.memory_bytes > info.tensor_bytes);
    assert_eq!(info.sha256.len(), 64);
}

/// The model's probabilities for three answers: a continuous reading of
/// what it saw (a random-weight model's free text is the same noise for
/// every image, but its probabilities move).
fn ask_colour(c: &mut Conversation, text: &str, images: &[Image]) -> (Vec<f64>, pocketlm::Reply) {
    let options = SendOptions {
        constraint: Some(Constraint::Choice { options: vec!["red".into(), "green".into(), "blue".into()] }),
        ..Default::default()
    };
    let reply = c.send_with_images_events(text, images, &options, &mut |_| {}).unwrap();
    match &reply.structured {
        Some(Structured::Choice { probabilities, .. }) => (probabilities.clone(), reply),
        other => panic!("expected a choice, got {other:?}"),
    }
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn images_reach_the_model_and_stay_in_the_cache_across_turns() {
    let red = Image::decode(&png(64, 48, [200, 30, 30])).unwrap();
    let blue = Image::decode(&png(64, 48, [30, 30, 200])).unwrap();
    let per_image = projector().info().tokens_per_image;

    let mut a = chat(6);
    let (first, reply) = ask_colour(&mut a, "Which colour is this picture?", std::slice::from_ref(&red));
    assert!(reply.metrics.prompt_tokens_evaluated >= per_image, "{:?}", reply.metrics);
    let first_evaluated = reply.metrics.prompt_tokens_evaluated;

    // The same image and words give the same probabilities; another image
    // and no image move them.
    let (same, _) = ask_colour(&mut chat(6), "Which colour is this picture?", std::slice::from_ref(&red));
    assert_eq!(same, first);
    let (other, _) = ask_colour(&mut chat(6), "Which colour is this picture?", std::slice::from_ref(&blue));
    let (none, _) = ask_colour(&mut chat(6), "Which colour is this picture?", &[]);
    assert!(max_diff(&other, &first) > 1e-4, "a different image must change the model's reading: {first:?} {other:?}");
    assert!(max_diff(&none, &first) > 1e-4, "an image must change the model's reading: {first:?} {none:?}");

    // The next turn reuses the cached image: only the new text is evaluated.
    let (second, reply) = ask_colour(&mut a, "And the background?", &[]);
    assert!(reply.metrics.prompt_tokens_reused >= first_evaluated, "{:?}", reply.metrics);
    assert!(reply.metrics.prompt_tokens_evaluated < per_image, "{:?}", reply.metrics);

    // A fresh conversation given the same history evaluates all of it and reads it alike.
    let mut fresh = chat(6);
    let mut history = a.messages().to_vec();
    history.truncate(history.len() - 2);
    fresh.set_messages(history);
    let (again, reply) = ask_colour(&mut fresh, "And the background?", &[]);
    assert!(reply.metrics.prompt_tokens_evaluated > per_image, "{:?}", reply.metrics);
    // Batches split differently (the cached turn evaluates only its new
    // text), which moves this random model's probabilities by a few 1e-3,
    // with or without images (measured: 0.0036 here, 0.0039 on text alone).
    let noise = max_diff(&again, &second);
    assert!(noise < 0.02, "cached {second:?} vs fresh {again:?}");
    // The same history with the other image reads differently, by far more.
    let mut swapped = chat(6);
    let mut history = fresh.messages().to_vec();
    history.truncate(history.len() - 2);
    history[0].images = vec![blue.clone()];
    swapped.set_messages(history);
    let (elsewhere, _) = ask_colour(&mut swapped, "And the background?", &[]);
    eprintln!("noise {noise}, other image {}", max_diff(&elsewhere, &second));
    assert!(max_diff(&elsewhere, &second) > 3.0 * noise, "cached {second:?}, other image {elsewhere:?}, noise {noise}");

    // Two images in one message, in order: swapping them is another prompt.
    let (both, _) = ask_colour(&mut chat(6), "Which comes first?", &[red.clone(), blue.clone()]);
    let (swapped, _) = ask_colour(&mut chat(6), "Which comes first?", &[blue.clone(), red.clone()]);
    assert!(max_diff(&both, &swapped) > 1e-4, "{both:?} {swapped:?}");
}

#[test]
fn both_gemma3_layouts_read_an_image_alike_and_a_new_projector_reads_it_again() {
    // The same weights with the FFN matrices under the first converter's names.
    let old = Projector::load(gemma4b(), projector_path("mmproj-old-ffn-names")).unwrap();
    let red = Image::decode(&png(40, 40, [200, 30, 30])).unwrap();
    let mut a = chat(4);
    let (read, first) = ask_colour(&mut a, "Which colour is this picture?", std::slice::from_ref(&red));
    let mut b = chat(4);
    b.set_projector(Some(old.clone())).unwrap();
    let (read_old, _) = ask_colour(&mut b, "Which colour is this picture?", std::slice::from_ref(&red));
    assert_eq!(read, read_old);

    // Another projector on the same conversation: its images are encoded again, not
    // taken from the cache the first projector filled.
    a.set_projector(Some(old)).unwrap();
    let (_, again) = ask_colour(&mut a, "And now?", &[]);
    assert!(
        again.metrics.prompt_tokens_evaluated >= projector().info().embeddings_per_image,
        "{:?} then {:?}",
        first.metrics,
        again.metrics
    );
}

#[test]
fn bad_input_is_a_typed_error_and_the_conversation_carries_on() {
    let red = Image::decode(&png(32, 32, [200, 30, 30])).unwrap();
    // No projector set: refused before anything changes.
    let mut plain =
        Conversation::new(gemma4b(), ConversationOptions { context_length: Some(1024), threads: Some(2), ..Default::default() }).unwrap();
    let before = plain.messages().to_vec();
    assert!(matches!(send(&mut plain, "Look", std::slice::from_ref(&red)), Err(Error::ImagesUnsupported { .. })));
    assert_eq!(plain.messages(), &before[..]);

    // Projectors that would abort llama.cpp, or do not fit the model, are refused first.
    for (name, expected) in [
        ("bad-shape", "v.blk.0.attn_k.weight"),
        ("bad-key-type", "clip.vision.image_size"),
        ("bad-projection", "2560 wide"),
        ("bad-type", "must be F32 or F16"),
        ("bad-position-type", "v.position_embd.weight is F16"),
    ] {
        match Projector::load(gemma4b(), projector_path(name)) {
            Err(Error::ProjectorMismatch { reason, .. }) => assert!(reason.contains(expected), "{name}: {reason}"),
            other => panic!("{name}: expected ProjectorMismatch, got {other:?}"),
        }
    }
    match Projector::load(qwen(), projector_path("mmproj")) {
        Err(Error::ProjectorMismatch { reason, .. }) => assert!(reason.contains("wide") || reason.contains("qwen2"), "{reason}"),
        other => panic!("expected ProjectorMismatch, got {other:?}"),
    }
    assert!(matches!(Projector::load(gemma4b(), shaped("gemma-3-4b-6layers.gguf")), Err(Error::ProjectorMismatch { .. })));
    let missing = model_dir().join("shaped").join("no-such-projector.gguf");
    assert!(matches!(Projector::load(gemma4b(), missing), Err(Error::ModelNotFound { .. })));

    // A projector for another model's conversation, or a batch too small for an image.
    let mut q = common::conversation(qwen(), common::greedy(4));
    assert!(matches!(q.set_projector(Some(projector().clone())), Err(Error::ProjectorMismatch { .. })));
    let options = ConversationOptions { context_length: Some(1024), batch_size: 128, threads: Some(2), ..Default::default() };
    let mut small = Conversation::new(gemma4b(), options).unwrap();
    assert!(matches!(small.set_projector(Some(projector().clone())), Err(Error::ImagesUnsupported { .. })));

    // An image that does not fit the context is a context overflow, and the history is kept.
    let options = ConversationOptions { context_length: Some(256), threads: Some(2), sampling: common::greedy(2), ..Default::default() };
    let mut tight = Conversation::new(gemma4b(), options).unwrap();
    tight.set_projector(Some(projector().clone())).unwrap();
    assert!(matches!(send(&mut tight, "Look", std::slice::from_ref(&red)), Err(Error::ContextOverflow { .. })));
    assert!(tight.messages().is_empty());
    assert!(send(&mut tight, "Hello", &[]).is_ok());

    // Cancelled while the image is evaluated: nothing is kept but the user's turn.
    let mut c = chat(4);
    let cancel = CancelToken::new();
    cancel.cancel();
    let reply =
        c.send_with_images_events("Look", std::slice::from_ref(&red), &SendOptions { cancel, ..Default::default() }, &mut |_| {}).unwrap();
    assert_eq!(reply.metrics.stop_reason, pocketlm::StopReason::Cancelled);
    // And it still answers afterwards, the image included.
    let reply = send(&mut c, "Now?", &[]).unwrap();
    assert!(reply.metrics.generated_tokens >= 1);

    // A conversation holding images cannot be saved yet: a typed error, no file.
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(c.save(&dir.path().join("s.pocketlm")), Err(Error::ImagesUnsupported { .. })));
    assert!(!dir.path().join("s.pocketlm").exists());
}
