//! A strict, allocation-bounded reader for GGUF headers and tensor tables.
//!
//! llama.cpp aborts the whole process on some malformed files, so every model
//! is read here first: magic, version, metadata, tensor table and data extent
//! are checked in Rust and any problem becomes a [`GgufError`]. No tensor data
//! is read, so this costs a few milliseconds even for multi-gigabyte files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// GGUF versions this reader accepts (v1 is obsolete and unsupported by llama.cpp).
const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];
/// Longest string (key, value or tensor name) accepted: 64 MiB.
const MAX_STRING_BYTES: u64 = 64 << 20;
/// Most metadata entries, tensors and array elements a sane file has.
const MAX_METADATA: u64 = 1 << 16;
const MAX_TENSORS: u64 = 1 << 20;
const MAX_ARRAY_LEN: u64 = 1 << 30;
/// Arrays longer than this keep only their length, not their values.
const MAX_KEPT_ARRAY_LEN: u64 = 1024;
/// Most dimensions a ggml tensor can have.
const MAX_DIMS: u32 = 4;
/// Default tensor data alignment when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;

/// Why a file is not a usable GGUF model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GgufError {
    /// The file does not start with the `GGUF` magic bytes.
    #[error("not a GGUF file (the first bytes are {found:02x?}, expected \"GGUF\")")]
    BadMagic {
        /// The first bytes actually found.
        found: Vec<u8>,
    },
    /// The GGUF version is not one llama.cpp reads.
    #[error("unsupported GGUF version {0} (supported: 2 and 3)")]
    UnsupportedVersion(u32),
    /// The file ends before its header, metadata, tensor table or tensor data.
    #[error("the file is truncated: {0}")]
    Truncated(String),
    /// A structural value is impossible (counts, lengths, types, shapes, offsets).
    #[error("the file is malformed: {0}")]
    Malformed(String),
}

/// A metadata value. Long arrays keep only their element type and length.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Any unsigned integer type.
    UInt(u64),
    /// Any signed integer type.
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string (invalid bytes replaced).
    String(String),
    /// An array; `values` is empty when `len` exceeds the kept limit.
    Array {
        /// Number of elements in the file.
        len: u64,
        /// The elements, when the array is short enough to keep.
        values: Vec<GgufValue>,
    },
}

impl GgufValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::UInt(v) => Some(v),
            GgufValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::UInt(v) => Some(v as f64),
            GgufValue::Int(v) => Some(v as f64),
            GgufValue::Float(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor's entry in the tensor table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost first (ggml order).
    pub dims: Vec<u64>,
    /// The ggml element type.
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size_bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A ggml tensor element type with its block layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    /// The numeric `ggml_type` id.
    pub id: u32,
    /// Its name, e.g. `Q4_K`.
    pub name: &'static str,
    /// Elements per block.
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
}

impl GgmlType {
    /// Look up a type id; `None` for ids llama.cpp does not know or has removed.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        let (name, block_size, type_size) = match id {
            0 => ("F32", 1, 4),
            1 => ("F16", 1, 2),
            2 => ("Q4_0", 32, 18),
            3 => ("Q4_1", 32, 20),
            6 => ("Q5_0", 32, 22),
            7 => ("Q5_1", 32, 24),
            8 => ("Q8_0", 32, 34),
            9 => ("Q8_1", 32, 36),
            10 => ("Q2_K", 256, 84),
            11 => ("Q3_K", 256, 110),
            12 => ("Q4_K", 256, 144),
            13 => ("Q5_K", 256, 176),
            14 => ("Q6_K", 256, 210),
            15 => ("Q8_K", 256, 292),
            16 => ("IQ2_XXS", 256, 66),
            17 => ("IQ2_XS", 256, 74),
            18 => ("IQ3_XXS", 256, 98),
            19 => ("IQ1_S", 256, 50),
            20 => ("IQ4_NL", 32, 18),
            21 => ("IQ3_S", 256, 110),
            22 => ("IQ2_S", 256, 82),
            23 => ("IQ4_XS", 256, 136),
            24 => ("I8", 1, 1),
            25 => ("I16", 1, 2),
            26 => ("I32", 1, 4),
            27 => ("I64", 1, 8),
            28 => ("F64", 1, 8),
            29 => ("IQ1_M", 256, 56),
            30 => ("BF16", 1, 2),
            34 => ("TQ1_0", 256, 54),
            35 => ("TQ2_0", 256, 66),
            39 => ("MXFP4", 32, 17),
            40 => ("NVFP4", 64, 36),
            41 => ("Q1_0", 128, 18),
            42 => ("Q2_0", 64, 18),
            _ => return None,
        };
        Some(GgmlType { id, name, block_size, type_size })
    }
}

/// The parsed header, metadata and tensor table of a GGUF file.
#[derive(Debug, Clone)]
pub struct GgufFile {
    /// GGUF format version.
    pub version: u32,
    /// Metadata key/value pairs.
    pub metadata: BTreeMap<String, GgufValue>,
    /// The GGUF type id (`GGUF_TYPE_*`: 4 `UINT32`, 6 `FLOAT32`, 8 `STRING`,
    /// 9 `ARRAY`, …) each metadata value has in the file. llama.cpp asserts a
    /// key's exact type when it reads it, so checks before llama.cpp need it.
    pub value_types: BTreeMap<String, u32>,
    /// The tensor table, in file order.
    pub tensors: Vec<TensorInfo>,
    /// Byte offset where tensor data starts.
    pub data_offset: u64,
    /// Total file size in bytes.
    pub file_size: u64,
}

impl GgufFile {
    /// Read and validate `path`'s header and tensor table.
    ///
    /// Returns `Err(io)` only for I/O failures (missing or unreadable file);
    /// structural problems are `Ok(Err(GgufError))`.
    pub fn read(path: &Path) -> std::io::Result<Result<GgufFile, GgufError>> {
        GgufFile::read_open(&File::open(path)?)
    }

    /// [`GgufFile::read`] on a file already open (from its start; it leaves
    /// the file's position somewhere after the header), so a caller can hand
    /// the very file it checked to llama.cpp.
    pub fn read_open(file: &File) -> std::io::Result<Result<GgufFile, GgufError>> {
        use std::io::Seek;
        let mut file = file;
        file.rewind()?;
        let file_size = file.metadata()?.len();
        let mut reader = Reader { inner: BufReader::with_capacity(1 << 16, file), pos: 0, file_size };
        match reader.parse() {
            Ok(parsed) => Ok(Ok(parsed)),
            Err(ReadError::Io(e)) => Err(e),
            Err(ReadError::Gguf(e)) => Ok(Err(e)),
        }
    }

    /// Parses and validates a whole GGUF file held in memory (tensor data
    /// included, so extents are checked against `bytes.len()`). The fuzz
    /// targets and tests use this; apps use [`GgufFile::read`].
    pub fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
        let mut reader = Reader { inner: bytes, pos: 0, file_size: bytes.len() as u64 };
        match reader.parse() {
            Ok(parsed) => Ok(parsed),
            Err(ReadError::Gguf(e)) => Err(e),
            // Reading from a slice fails only at its end.
            Err(ReadError::Io(e)) => Err(GgufError::Truncated(e.to_string())),
        }
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// A string metadata value by key.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(GgufValue::as_str)
    }

    /// An integer metadata value by key.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(GgufValue::as_u64)
    }

    /// `general.architecture`, if present.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// An architecture-scoped integer, e.g. `arch_u64("context_length")`.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let arch = self.architecture()?;
        self.get_u64(&format!("{arch}.{suffix}"))
    }

    /// Total number of weight elements over all tensors.
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().fold(0u64, |sum, t| sum.saturating_add(t.n_elements()))
    }

    /// Total bytes of tensor data.
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().fold(0u64, |sum, t| sum.saturating_add(t.size_bytes))
    }
}

enum ReadError {
    Io(std::io::Error),
    Gguf(GgufError),
}

impl From<GgufError> for ReadError {
    fn from(e: GgufError) -> Self {
        ReadError::Gguf(e)
    }
}

type ReadResult<T> = Result<T, ReadError>;

fn malformed(msg: impl Into<String>) -> ReadError {
    ReadError::Gguf(GgufError::Malformed(msg.into()))
}

struct Reader<R> {
    inner: R,
    pos: u64,
    file_size: u64,
}

impl<R: Read> Reader<R> {
    fn bytes<const N: usize>(&mut self, what: &str) -> ReadResult<[u8; N]> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> ReadResult<()> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(ReadError::Gguf(GgufError::Truncated(format!("it ends at byte {} while reading {what}", self.file_size))))
            }
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    fn u32(&mut self, what: &str) -> ReadResult<u32> {
        Ok(u32::from_le_bytes(self.bytes(what)?))
    }

    fn u64(&mut self, what: &str) -> ReadResult<u64> {
        Ok(u64::from_le_bytes(self.bytes(what)?))
    }

    /// Checks that `count` items of at least `min_each` bytes can still fit in
    /// the file. A count beyond `plausible` is corruption; a plausible count
    /// that runs past the end of the file means the file was cut short.
    fn check_fits(&self, count: u64, min_each: u64, plausible: u64, what: &str) -> ReadResult<()> {
        let remaining = self.file_size.saturating_sub(self.pos);
        if count > plausible {
            return Err(malformed(format!("{what} count {count} is impossible (at most {plausible} expected)")));
        }
        match count.checked_mul(min_each) {
            Some(need) if need <= remaining => Ok(()),
            _ => Err(ReadError::Gguf(GgufError::Truncated(format!(
                "{what} needs at least {} bytes but only {remaining} are left in the file",
                count.saturating_mul(min_each)
            )))),
        }
    }

    fn string(&mut self, what: &str) -> ReadResult<String> {
        let len = self.u64(what)?;
        if len > MAX_STRING_BYTES {
            return Err(malformed(format!("{what} claims {len} bytes, more than the {MAX_STRING_BYTES} allowed")));
        }
        self.check_fits(len, 1, MAX_STRING_BYTES, what)?;
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf, what)?;
        Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn value(&mut self, value_type: u32, key: &str, depth: u32) -> ReadResult<GgufValue> {
        Ok(match value_type {
            0 => GgufValue::UInt(u64::from(self.bytes::<1>(key)?[0])),
            1 => GgufValue::Int(i64::from(self.bytes::<1>(key)?[0] as i8)),
            2 => GgufValue::UInt(u64::from(u16::from_le_bytes(self.bytes(key)?))),
            3 => GgufValue::Int(i64::from(i16::from_le_bytes(self.bytes(key)?))),
            4 => GgufValue::UInt(u64::from(self.u32(key)?)),
            5 => GgufValue::Int(i64::from(i32::from_le_bytes(self.bytes(key)?))),
            6 => GgufValue::Float(f64::from(f32::from_le_bytes(self.bytes(key)?))),
            7 => match self.bytes::<1>(key)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(malformed(format!("metadata '{key}' has invalid bool byte {b}"))),
            },
            8 => GgufValue::String(self.string(key)?),
            9 => {
                if depth > 0 {
                    return Err(malformed(format!("metadata '{key}' nests arrays, which GGUF does not allow")));
                }
                let elem_type = self.u32(key)?;
                let len = self.u64(key)?;
                let min_each = match elem_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    _ => return Err(malformed(format!("metadata '{key}' has unknown array element type {elem_type}"))),
                };
                self.check_fits(len, min_each, MAX_ARRAY_LEN, key)?;
                let keep = len <= MAX_KEPT_ARRAY_LEN;
                let mut values = Vec::with_capacity(if keep { len as usize } else { 0 });
                for _ in 0..len {
                    let v = self.value(elem_type, key, depth + 1)?;
                    if keep {
                        values.push(v);
                    }
                }
                GgufValue::Array { len, values }
            }
            10 => GgufValue::UInt(self.u64(key)?),
            11 => GgufValue::Int(i64::from_le_bytes(self.bytes(key)?)),
            12 => GgufValue::Float(f64::from_le_bytes(self.bytes(key)?)),
            t => return Err(malformed(format!("metadata '{key}' has unknown value type {t}"))),
        })
    }

    fn parse(&mut self) -> ReadResult<GgufFile> {
        let magic: [u8; 4] = match self.bytes("the GGUF magic") {
            Ok(m) => m,
            Err(ReadError::Gguf(GgufError::Truncated(_))) if self.file_size < 4 => {
                return Err(GgufError::BadMagic { found: Vec::new() }.into())
            }
            Err(e) => return Err(e),
        };
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: magic.to_vec() }.into());
        }
        let version = self.u32("the GGUF version")?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(GgufError::UnsupportedVersion(version).into());
        }
        let n_tensors = self.u64("the tensor count")?;
        let n_kv = self.u64("the metadata count")?;
        // Each metadata entry needs at least a key length, a type and one byte;
        // each tensor entry at least a name length, dims, type and offset.
        self.check_fits(n_kv, 8 + 4 + 1, MAX_METADATA, "metadata")?;
        let mut metadata = BTreeMap::new();
        let mut value_types = BTreeMap::new();
        for _ in 0..n_kv {
            let key = self.string("a metadata key")?;
            let value_type = self.u32(&key)?;
            let value = self.value(value_type, &key, 0)?;
            value_types.insert(key.clone(), value_type);
            metadata.insert(key, value);
        }
        self.check_fits(n_tensors, 8 + 4 + 8 + 4 + 8, MAX_TENSORS, "tensor")?;
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            tensors.push(self.tensor_info()?);
        }
        let alignment = match metadata.get("general.alignment").map(GgufValue::as_u64) {
            None => DEFAULT_ALIGNMENT,
            Some(Some(a)) if a > 0 && a.is_power_of_two() => a,
            Some(_) => return Err(malformed("general.alignment is not a power of two")),
        };
        let data_offset = self.pos.div_ceil(alignment) * alignment;
        self.check_tensor_extents(&tensors, data_offset, alignment)?;
        Ok(GgufFile { version, metadata, value_types, tensors, data_offset, file_size: self.file_size })
    }

    fn tensor_info(&mut self) -> ReadResult<TensorInfo> {
        let name = self.string("a tensor name")?;
        let n_dims = self.u32(&name)?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(malformed(format!("tensor '{name}' has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64(&name)?);
        }
        let type_id = self.u32(&name)?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| malformed(format!("tensor '{name}' has unknown ggml type {type_id}")))?;
        let offset = self.u64(&name)?;
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| if d == 0 { None } else { acc.checked_mul(d) })
            .filter(|&n| n < (1u64 << 48))
            .ok_or_else(|| malformed(format!("tensor '{name}' has impossible dimensions {dims:?}")))?;
        if dims[0] % ggml_type.block_size != 0 {
            return Err(malformed(format!(
                "tensor '{name}' row length {} is not a multiple of the {} block size {}",
                dims[0], ggml_type.name, ggml_type.block_size
            )));
        }
        let size_bytes = n_elements / ggml_type.block_size * ggml_type.type_size;
        Ok(TensorInfo { name, dims, ggml_type, offset, size_bytes })
    }

    fn check_tensor_extents(&self, tensors: &[TensorInfo], data_offset: u64, alignment: u64) -> ReadResult<()> {
        for t in tensors {
            if t.offset % alignment != 0 {
                return Err(malformed(format!("tensor '{}' offset {} is not {alignment}-byte aligned", t.name, t.offset)));
            }
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.size_bytes))
                .ok_or_else(|| malformed(format!("tensor '{}' offset overflows", t.name)))?;
            if end > self.file_size {
                return Err(GgufError::Truncated(format!(
                    "tensor '{}' needs bytes up to {end} but the file has only {}",
                    t.name, self.file_size
                ))
                .into());
            }
        }
        Ok(())
    }
}

/// Headers built in memory, for the unit tests of the checks that read them.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{GgmlType, GgufFile, GgufValue, TensorInfo};

    /// A tensor entry of `type_id` (a GGML type id) whose size follows from its shape.
    pub(crate) fn tensor(name: &str, dims: &[u64], type_id: u32) -> TensorInfo {
        let ggml_type = GgmlType::from_id(type_id).unwrap();
        let n: u64 = dims.iter().product();
        TensorInfo {
            name: name.into(),
            dims: dims.to_vec(),
            ggml_type,
            offset: 0,
            size_bytes: n / ggml_type.block_size * ggml_type.type_size,
        }
    }

    /// A header with `meta` (key, value, GGUF type id) and `tensors`.
    pub(crate) fn file(meta: &[(&str, GgufValue, u32)], tensors: Vec<TensorInfo>) -> GgufFile {
        GgufFile {
            version: 3,
            metadata: meta.iter().map(|(k, v, _)| (k.to_string(), v.clone())).collect(),
            value_types: meta.iter().map(|(k, _, t)| (k.to_string(), *t)).collect(),
            tensors,
            data_offset: 0,
            file_size: 1 << 30,
        }
    }
}
