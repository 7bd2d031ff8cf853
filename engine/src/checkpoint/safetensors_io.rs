//! safetensors in and out. `salient convert` writes torchvision key names, f32 or f16, and
//! keeps the input normalization in the header's metadata so nothing is lost on the way to
//! the browser.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, View as TensorView};

use super::{DType, Format, HostTensor, StateDict, check_total_elements, classify, torch::MAX_TENSORS};
use crate::error::Error;
use crate::preprocess::{Normalization, View};

const MEAN_KEY: &str = "salient.normalize.mean";
const STD_KEY: &str = "salient.normalize.std";
/// A JSON array of class names.
const CLASSES_KEY: &str = "salient.class_names";
/// The model's input view, `resize,crop`.
const VIEW_KEY: &str = "salient.view";
/// Most classes a model's metadata may name, and the longest name.
const MAX_CLASSES: usize = 100_000;
const MAX_CLASS_NAME_BYTES: usize = 256;
/// The safetensors crate's own header limit.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Reads a safetensors file of `len` bytes from `reader`: the header first (at most the
/// safetensors crate's 100 MB, its offsets checked to tile the file exactly), then only the
/// bytes of the tensors kept, once their total is known to be within
/// [`MAX_WEIGHT_ELEMENTS`](super::MAX_WEIGHT_ELEMENTS).
pub(super) fn read<R: Read + Seek>(name: &str, mut reader: R, len: u64) -> Result<StateDict, Error> {
    let fail = |m: String| Error::checkpoint(name, m);
    let invalid = |e: &dyn std::fmt::Display| fail(format!("not a valid safetensors file ({e})"));
    let mut n = [0u8; 8];
    reader.read_exact(&mut n).map_err(|e| Error::read(name, e))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > MAX_HEADER_BYTES || header_len.saturating_add(8) > len {
        return Err(fail(format!(
            "its header claims {header_len} bytes, but the file has {len} and headers are limited to {MAX_HEADER_BYTES}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header).map_err(|e| Error::read(name, e))?;
    let meta: Metadata = serde_json::from_slice(&header).map_err(|e| invalid(&e))?;
    let data_start = 8 + header_len;
    if data_start.checked_add(meta.data_len() as u64) != Some(len) {
        return Err(fail(format!(
            "the header describes {} bytes of tensor data but the file holds {} after its header (truncated, or trailing bytes)",
            meta.data_len(),
            len - data_start
        )));
    }
    let infos = meta.tensors();
    if infos.len() > MAX_TENSORS {
        return Err(fail(format!("holds {} tensors, more than the {MAX_TENSORS} allowed", infos.len())));
    }
    let mut names: Vec<&str> = infos.keys().map(String::as_str).collect();
    if names.is_empty() {
        return Err(fail("holds no tensors".into()));
    }
    names.sort_unstable();
    let (layout, keep) = classify(&names);
    let kept: Vec<(String, &str, &TensorInfo)> =
        names.iter().filter_map(|n| keep(n).map(|k| (k, *n, infos[*n]))).collect();
    check_total_elements(kept.iter().try_fold(0usize, |a, (_, _, i)| a.checked_add(i.shape.iter().product())))
        .map_err(fail)?;
    let mut sd = StateDict {
        source: name.to_owned(),
        format: Format::Safetensors,
        layout,
        tensors: BTreeMap::new(),
        normalization: None,
        class_names: None,
        view: None,
    };
    for (key, stored, info) in kept {
        let dtype = match info.dtype {
            Dtype::F32 => DType::F32,
            Dtype::F64 => DType::F64,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            Dtype::I64 => DType::I64,
            Dtype::I32 => DType::I32,
            Dtype::I16 => DType::I16,
            Dtype::I8 => DType::I8,
            Dtype::U8 => DType::U8,
            Dtype::BOOL => DType::Bool,
            other => return Err(fail(format!("tensor `{stored}` has unsupported dtype {other:?}"))),
        };
        let (from, to) = info.data_offsets;
        let mut bytes = vec![0u8; to - from];
        reader
            .seek(SeekFrom::Start(data_start + from as u64))
            .and_then(|_| reader.read_exact(&mut bytes))
            .map_err(|e| Error::read(name, e))?;
        let numel: usize = info.shape.iter().product();
        let data = (0..numel).map(|i| dtype.read(&bytes, i)).collect();
        sd.insert(key, HostTensor { shape: info.shape.clone(), dtype, data })?;
    }
    if let Some(m) = meta.metadata()
        && let (Some(mean), Some(std)) = (m.get(MEAN_KEY), m.get(STD_KEY))
    {
        let parse = |s: &str| -> Result<Vec<f32>, Error> {
            s.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .map_err(|_| fail(format!("metadata `{MEAN_KEY}`/`{STD_KEY}` is not a list of 3 numbers")))
                })
                .collect()
        };
        sd.normalization = Some(Normalization::from_slices(name, &parse(mean)?, &parse(std)?)?);
    }
    if let Some(names) = meta.metadata().as_ref().and_then(|m| m.get(CLASSES_KEY)) {
        let names: Vec<String> = serde_json::from_str(names)
            .map_err(|e| fail(format!("metadata `{CLASSES_KEY}` is not a JSON list of names ({e})")))?;
        if names.len() > MAX_CLASSES {
            return Err(fail(format!(
                "metadata `{CLASSES_KEY}` names {} classes, over the limit of {MAX_CLASSES}",
                names.len()
            )));
        }
        if let Some(long) = names.iter().find(|n| n.len() > MAX_CLASS_NAME_BYTES || n.chars().any(char::is_control)) {
            return Err(fail(format!(
                "metadata `{CLASSES_KEY}`: a class name is {} bytes long or holds control characters (limit: {MAX_CLASS_NAME_BYTES} printable bytes)",
                long.len()
            )));
        }
        sd.class_names = Some(names);
    }
    if let Some(v) = meta.metadata().as_ref().and_then(|m| m.get(VIEW_KEY)) {
        sd.view = Some(View::from_text(v).ok_or_else(|| {
            fail(format!(
                "metadata `{VIEW_KEY}` is {:?}, not `resize,crop` with {}",
                crate::fsutil::escape(&v.chars().take(64).collect::<String>()),
                View::LIMITS
            ))
        })?);
    }
    Ok(sd)
}

/// One tensor to serialize.
struct Out {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorView for &Out {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Serializes the float tensors of `sd` (torchvision names), as f16 when `half`, to bytes.
pub fn safetensors_bytes(sd: &StateDict, half: bool) -> Result<Vec<u8>, Error> {
    let outs: Vec<(String, Out)> = sd
        .tensors
        .iter()
        .filter(|(_, t)| t.dtype.is_float())
        .map(|(k, t)| {
            let (dtype, bytes) = if half {
                (Dtype::F16, t.data.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect())
            } else {
                (Dtype::F32, t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
            };
            (k.clone(), Out { dtype, shape: t.shape.clone(), bytes })
        })
        .collect();
    let mut meta = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    if let Some(n) = sd.normalization {
        let join = |v: [f32; 3]| v.map(|x| x.to_string()).join(",");
        meta.insert(MEAN_KEY.to_owned(), join(n.mean));
        meta.insert(STD_KEY.to_owned(), join(n.std));
    }
    if let Some(v) = sd.view {
        meta.insert(VIEW_KEY.to_owned(), v.to_text());
    }
    if let Some(names) = &sd.class_names {
        meta.insert(CLASSES_KEY.to_owned(), serde_json::to_string(names).expect("strings serialize"));
    }
    let bytes = safetensors::serialize(outs.iter().map(|(k, o)| (k.as_str(), o)), Some(meta))
        .map_err(|e| Error::Invalid(format!("cannot serialize weights: {e}")))?;
    Ok(canonical_header(bytes))
}

/// The same file with its JSON header's keys in sorted order (the metadata is a `HashMap`, whose
/// order changes from run to run), so that the same weights always give the same bytes. The
/// header keeps its length: the same keys and values, reordered.
fn canonical_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + n]) else { return bytes };
    // serde_json's maps are sorted by key.
    let sorted = serde_json::to_string(&header).expect("JSON serializes");
    if sorted.len() <= n {
        let padded = format!("{sorted:<n$}");
        bytes[8..8 + n].copy_from_slice(padded.as_bytes());
    }
    bytes
}

/// Writes `sd` as safetensors to `path` atomically (a temporary file renamed into place).
pub fn write_safetensors(sd: &StateDict, path: &Path, half: bool) -> Result<(), Error> {
    let bytes = safetensors_bytes(sd, half)?;
    crate::fsutil::write_atomic(path, &bytes)
}
