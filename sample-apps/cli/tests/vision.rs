//! `--mmproj` and `--image` on `generate` and `plan`, on the shaped Gemma 3 4B
//! and its 1-block projector (scripts/make-test-shaped-models.sh).

mod common;

use std::path::PathBuf;

use common::{fetch, pocketlm};

fn shaped(file: &str) -> String {
    let gemma = fetch("gemma3-270m");
    let path: PathBuf = gemma.parent().unwrap().join("shaped").join(file);
    assert!(path.exists(), "{} is missing: run scripts/make-test-shaped-models.sh", path.display());
    path.to_str().unwrap().to_string()
}

fn png(dir: &std::path::Path) -> String {
    let path = dir.join("red.png");
    image::RgbImage::from_pixel(24, 16, image::Rgb([200, 30, 30])).save(&path).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn generate_sees_images_and_refuses_what_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let (model, mmproj, image) = (shaped("gemma-3-4b-6layers.gguf"), shaped("gemma-3-4b-mmproj-1block/mmproj.gguf"), png(dir.path()));
    let base =
        ["generate", "--model", &model, "--ctx", "1024", "--threads", "2", "--max-tokens", "2", "--json", "--prompt", "What is this?"];
    let run = |extra: &[&str]| pocketlm(&[&base[..], extra].concat(), None);

    let seen = run(&["--mmproj", &mmproj, "--image", &image]);
    assert!(seen.status.success(), "{}", String::from_utf8_lossy(&seen.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&seen.stdout).unwrap();
    assert!(reply["metrics"]["prompt_tokens_evaluated"].as_u64().unwrap() > 256, "{reply}");

    let gif = dir.path().join("photo.gif");
    std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00").unwrap();
    let not_an_image = run(&["--mmproj", &mmproj, "--image", gif.to_str().unwrap()]);
    assert_eq!(not_an_image.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_an_image.stderr).contains("not JPEG or PNG"));
    let no_projector = run(&["--image", &image]);
    assert_eq!(no_projector.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_projector.stderr).contains("--mmproj"));
    let broken = run(&["--mmproj", &shaped("gemma-3-4b-mmproj-1block/bad-shape.gguf"), "--image", &image]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("attn_k"));
}

#[test]
fn plan_counts_the_projector() {
    let (model, mmproj) = (shaped("gemma-3-4b-6layers.gguf"), shaped("gemma-3-4b-mmproj-1block/mmproj.gguf"));
    let plan = |extra: &[&str]| {
        let out = pocketlm(&[&["plan", &model, "--budget", "3GiB", "--ctx", "1024", "--json"][..], extra].concat(), None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (without, with) = (plan(&[]), plan(&["--mmproj", &mmproj]));
    let projector = with["estimate"]["projector_bytes"].as_u64().unwrap();
    assert!(projector > 45 << 20, "{with}");
    assert_eq!(with["predicted_peak_bytes"].as_u64().unwrap(), without["predicted_peak_bytes"].as_u64().unwrap() + projector);
}
