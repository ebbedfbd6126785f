//! Image input: JPEG or PNG bytes from an app (untrusted: a user's photo,
//! a web download) decoded in safe Rust, with size limits, before any pixel
//! reaches llama.cpp.
//!
//! The header is read first, so an oversized image is refused before its
//! pixels are allocated; EXIF orientation (how phone cameras store a
//! turned photo) is applied; a large photo that fits is scaled down to
//! [`MAX_KEPT_SIDE`] on its longer side (vision projectors look at a few
//! hundred pixels a side: Gemma 3 at 896×896), so a conversation holding
//! images keeps megabytes, not tens of megabytes, per image.

use std::io::Cursor;
use std::sync::Arc;

use image::{ImageDecoder, ImageFormat as Format, ImageReader, Limits};
use sha2::{Digest, Sha256};

/// Widest or tallest image accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels accepted (a 48-megapixel phone photo fits).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Largest decoded image accepted, in bytes: a 48-megapixel JPEG (8-bit
/// RGB) fits; a 16-bit PNG with alpha fits up to 33 megapixels.
pub const MAX_DECODED_BYTES: u64 = 256 << 20;
/// Largest encoded image accepted, in bytes.
pub const MAX_ENCODED_BYTES: usize = 64 << 20;
/// Decoded images larger than this on their longer side are scaled down to it.
pub const MAX_KEPT_SIDE: u32 = 2048;

/// The encodings accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (baseline or progressive).
    Jpeg,
    /// PNG (any bit depth and colour type).
    Png,
    /// Raw RGB pixels ([`Image::from_rgb`]).
    Rgb,
}

/// A decoded image: 8-bit RGB pixels, row-major, and the SHA-256 of the
/// bytes it was decoded from (equal bytes, equal digest: the KV cache keys
/// images by it). Cheap to clone.
#[derive(Clone)]
pub struct Image {
    inner: Arc<Decoded>,
}

struct Decoded {
    format: ImageFormat,
    source_size: (u32, u32),
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    sha256: String,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("format", &self.inner.format)
            .field("source_size", &self.inner.source_size)
            .field("size", &(self.inner.width, self.inner.height))
            .field("sha256", &self.inner.sha256)
            .finish()
    }
}

/// Equal when their digests are (the same bytes, or the same pixels).
impl PartialEq for Image {
    fn eq(&self, other: &Self) -> bool {
        self.inner.sha256 == other.inner.sha256
    }
}

impl Eq for Image {}

impl Image {
    /// Decodes JPEG or PNG `bytes`. The error is a sentence for the user:
    /// not an image, an encoding other than JPEG or PNG, too large, or
    /// corrupt.
    pub fn decode(bytes: &[u8]) -> Result<Image, String> {
        if bytes.len() > MAX_ENCODED_BYTES {
            return Err(format!("the image is {} bytes; at most {} MiB is accepted", bytes.len(), MAX_ENCODED_BYTES >> 20));
        }
        let format = sniff(bytes)?;
        let mut reader = ImageReader::with_format(Cursor::new(bytes), if format == ImageFormat::Jpeg { Format::Jpeg } else { Format::Png });
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(MAX_DECODED_BYTES);
        reader.limits(limits);
        let mut decoder = reader.into_decoder().map_err(|e| describe(format, &e))?;
        let (w, h) = decoder.dimensions();
        check_size(w, h)?;
        if decoder.total_bytes() > MAX_DECODED_BYTES {
            return Err(format!(
                "the image is {w}×{h} pixels at {} bytes a pixel, {} MiB decoded; at most {} MiB is accepted: scale it down first",
                decoder.total_bytes() / (u64::from(w) * u64::from(h)),
                decoder.total_bytes() >> 20,
                MAX_DECODED_BYTES >> 20
            ));
        }
        // Phone cameras store pixels as the sensor saw them and say in EXIF how to turn them.
        let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut decoded = image::DynamicImage::from_decoder(decoder).map_err(|e| describe(format, &e))?;
        decoded.apply_orientation(orientation);
        let mut rgb = decoded.into_rgb8();
        if rgb.width().max(rgb.height()) > MAX_KEPT_SIDE {
            let scale = f64::from(MAX_KEPT_SIDE) / f64::from(rgb.width().max(rgb.height()));
            let nw = ((f64::from(rgb.width()) * scale).round() as u32).max(1);
            let nh = ((f64::from(rgb.height()) * scale).round() as u32).max(1);
            rgb = image::imageops::resize(&rgb, nw, nh, image::imageops::FilterType::Triangle);
        }
        let sha256 = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
        let (width, height) = rgb.dimensions();
        let source_size = if orientation_swaps(orientation) { (h, w) } else { (w, h) };
        Ok(Image { inner: Arc::new(Decoded { format, source_size, width, height, rgb: rgb.into_raw(), sha256 }) })
    }

    /// An image from raw 8-bit RGB pixels (`width * height` triples, row by
    /// row), such as a camera frame; its digest covers the size and pixels.
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Image, String> {
        check_size(width, height)?;
        if width.max(height) > MAX_KEPT_SIDE {
            return Err(format!(
                "the image is {width}×{height} pixels; raw pixels are taken up to {MAX_KEPT_SIDE} a side: scale it down first"
            ));
        }
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected {
            return Err(format!("{} bytes of pixels were given for {width}×{height} RGB, which needs {expected}", rgb.len()));
        }
        let mut hasher = Sha256::new();
        hasher.update(b"rgb8");
        hasher.update(width.to_le_bytes());
        hasher.update(height.to_le_bytes());
        hasher.update(&rgb);
        let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Image { inner: Arc::new(Decoded { format: ImageFormat::Rgb, source_size: (width, height), width, height, rgb, sha256 }) })
    }

    /// The encoding it was decoded from.
    pub fn format(&self) -> ImageFormat {
        self.inner.format
    }

    /// Width and height of the encoded image.
    pub fn source_size(&self) -> (u32, u32) {
        self.inner.source_size
    }

    /// Width of the kept pixels.
    pub fn width(&self) -> u32 {
        self.inner.width
    }

    /// Height of the kept pixels.
    pub fn height(&self) -> u32 {
        self.inner.height
    }

    /// The kept pixels: `width * height` RGB triples, row by row.
    pub fn rgb(&self) -> &[u8] {
        &self.inner.rgb
    }

    /// Lower-case hex SHA-256 of the encoded bytes.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }
}

/// The encoding `bytes` start with, from their magic bytes.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, String> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok(ImageFormat::Jpeg)
    } else if bytes.starts_with(PNG) {
        Ok(ImageFormat::Png)
    } else if bytes.is_empty() {
        Err("the image is empty (0 bytes); send the bytes of a JPEG or PNG file".into())
    } else {
        let head: Vec<u8> = bytes.iter().take(8).copied().collect();
        Err(format!("the image is not JPEG or PNG (it starts with {head:02x?}); convert it to JPEG or PNG"))
    }
}

/// Whether EXIF `orientation` turns the image a quarter (width and height swap).
fn orientation_swaps(orientation: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation::*;
    matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

fn check_size(w: u32, h: u32) -> Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("the image is {w}×{h} pixels; it has no pixels"));
    }
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!(
            "the image is {w}×{h} pixels; at most {MAX_SIDE} pixels a side and {} megapixels are accepted: scale it down first",
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

fn describe(format: ImageFormat, e: &image::ImageError) -> String {
    let name = if format == ImageFormat::Jpeg { "JPEG" } else { "PNG" };
    match e {
        image::ImageError::Limits(_) => format!(
            "the {name} image is larger than accepted (at most {MAX_SIDE} pixels a side, {} megapixels and {} MiB decoded): scale it down first",
            MAX_PIXELS / 1_000_000,
            MAX_DECODED_BYTES >> 20
        ),
        other => format!("the {name} image cannot be decoded ({other}); the file is corrupt or truncated"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, Format::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_png_and_jpeg_to_rgb() {
        let img = Image::decode(&png(5, 3)).unwrap();
        assert_eq!((img.width(), img.height(), img.format()), (5, 3, ImageFormat::Png));
        assert_eq!(img.rgb().len(), 5 * 3 * 3);
        assert_eq!(&img.rgb()[3..6], &[1, 0, 7]);
        let mut jpeg = Cursor::new(Vec::new());
        image::RgbImage::from_pixel(16, 8, image::Rgb([200, 10, 10])).write_to(&mut jpeg, Format::Jpeg).unwrap();
        let img = Image::decode(jpeg.get_ref()).unwrap();
        assert_eq!((img.width(), img.height(), img.format()), (16, 8, ImageFormat::Jpeg));
        assert!(img.rgb()[0] > 180 && img.rgb()[1] < 40, "{:?}", &img.rgb()[..3]);
    }

    #[test]
    fn takes_raw_pixels_of_the_stated_size() {
        let img = Image::from_rgb(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!((img.width(), img.height(), img.format(), img.rgb()), (2, 1, ImageFormat::Rgb, &[1u8, 2, 3, 4, 5, 6][..]));
        assert_ne!(img.sha256(), Image::from_rgb(1, 2, vec![1, 2, 3, 4, 5, 6]).unwrap().sha256());
        assert!(Image::from_rgb(2, 2, vec![0; 6]).unwrap_err().contains("needs 12"));
        assert!(Image::from_rgb(0, 2, vec![]).is_err());
    }

    #[test]
    fn equal_bytes_have_equal_digests() {
        let a = Image::decode(&png(4, 4)).unwrap();
        let b = Image::decode(&png(4, 4)).unwrap();
        let c = Image::decode(&png(4, 5)).unwrap();
        assert_eq!(a.sha256(), b.sha256());
        assert_ne!(a.sha256(), c.sha256());
        assert_eq!(a.sha256().len(), 64);
    }

    #[test]
    fn large_images_are_scaled_to_the_kept_side() {
        let img = Image::decode(&png(4000, 1000)).unwrap();
        assert_eq!(img.source_size(), (4000, 1000));
        assert_eq!((img.width(), img.height()), (MAX_KEPT_SIDE, 512));
    }

    #[test]
    fn refuses_what_is_not_a_whole_jpeg_or_png() {
        assert!(Image::decode(b"").unwrap_err().contains("empty"));
        assert!(Image::decode(b"GIF89a......").unwrap_err().contains("not JPEG or PNG"));
        let whole = png(64, 64);
        let cut = Image::decode(&whole[..whole.len() / 2]).unwrap_err();
        assert!(cut.contains("cannot be decoded"), "{cut}");
        assert!(Image::decode(&[0xff, 0xd8, 0xff, 0xe0, 0, 0]).unwrap_err().contains("JPEG"));
    }

    #[test]
    fn refuses_oversized_images_from_the_header() {
        // A valid PNG header claiming 20000×20000 pixels, with no pixel data:
        // refused on its size before anything is allocated.
        let bytes = png_header(20_000, 20_000, 8, 2);
        let err = Image::decode(&bytes).unwrap_err();
        assert!(err.contains("larger than accepted") || err.contains("scale it down"), "{err}");
        assert!(check_size(8000, 8000).is_err());
        assert!(check_size(7000, 7000).is_ok());
        // 6000×6000 at 16 bits with alpha is 275 MiB decoded: refused from the header too.
        let err = Image::decode(&png_header(6000, 6000, 16, 6)).unwrap_err();
        assert!(err.contains("MiB decoded"), "{err}");
    }

    #[test]
    fn applies_the_exif_orientation() {
        // A 3×2 PNG whose eXIf chunk says "turn a quarter clockwise" (orientation 6).
        let exif = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        let img = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 100, y as u8 * 100, 0]));
        let mut plain = Cursor::new(Vec::new());
        img.write_to(&mut plain, Format::Png).unwrap();
        let plain = plain.into_inner();
        // Insert eXIf right after IHDR (8 + 25 bytes).
        let mut bytes = plain[..33].to_vec();
        bytes.extend(chunk(b"eXIf", exif));
        bytes.extend(&plain[33..]);
        let turned = Image::decode(&bytes).unwrap();
        assert_eq!((turned.width(), turned.height()), (2, 3));
        assert_eq!(turned.source_size(), (2, 3));
        // Turned clockwise, the old bottom-left pixel (0, 1) is the new top-left.
        assert_eq!(&turned.rgb()[..3], &[0, 100, 0]);
    }

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
        out
    }

    /// A PNG signature, IHDR and an empty IDAT (no pixel data).
    fn png_header(w: u32, h: u32, depth: u8, colour: u8) -> Vec<u8> {
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([depth, colour, 0, 0, 0]);
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend(chunk(b"IHDR", &ihdr));
        bytes.extend(chunk(b"IDAT", &[]));
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
