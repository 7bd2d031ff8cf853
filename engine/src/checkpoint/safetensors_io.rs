//! safetensors in and out. `salient convert` writes torchvision key names, f32 or f16, and
//! keeps the input normalization in the header's metadata so nothing is lost on the way to
//! the browser.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View as TensorView};

use super::{DType, Format, HostTensor, StateDict, classify, torch::MAX_TENSORS};
use crate::error::Error;
use crate::preprocess::{Normalization, View};

const MEAN_KEY: &str = "salient.normalize.mean";
const STD_KEY: &str = "salient.normalize.std";
/// A JSON array of class names.
const CLASSES_KEY: &str = "salient.class_names";
/// The model's input view, `resize,crop`.
const VIEW_KEY: &str = "salient.view";

pub(super) fn read(name: &str, bytes: &[u8]) -> Result<StateDict, Error> {
    let fail = |m: String| Error::checkpoint(name, m);
    let st = SafeTensors::deserialize(bytes).map_err(|e| fail(format!("not a valid safetensors file ({e})")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| fail(format!("not a valid safetensors file ({e})")))?;
    if st.len() > MAX_TENSORS {
        return Err(fail(format!("holds {} tensors, more than the {MAX_TENSORS} allowed", st.len())));
    }
    let names = st.names();
    if names.is_empty() {
        return Err(fail("holds no tensors".into()));
    }
    let (layout, keep) = classify(&names);
    let mut sd = StateDict {
        source: name.to_owned(),
        format: Format::Safetensors,
        layout,
        tensors: BTreeMap::new(),
        normalization: None,
        class_names: None,
        view: None,
    };
    for (stored, view) in st.iter() {
        let Some(key) = keep(stored) else { continue };
        let dtype = match view.dtype() {
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
        let numel: usize = view.shape().iter().product();
        let data = (0..numel).map(|i| dtype.read(view.data(), i)).collect();
        sd.insert(key, HostTensor { shape: view.shape().to_vec(), dtype, data })?;
    }
    if let Some(m) = meta.metadata()
        && let (Some(mean), Some(std)) = (m.get(MEAN_KEY), m.get(STD_KEY))
    {
        let parse = |s: &str| -> Result<Vec<f32>, Error> {
            s.split(',')
                .map(|v| v.trim().parse::<f32>().map_err(|_| fail(format!("metadata `{MEAN_KEY}`/`{STD_KEY}` is not a list of 3 numbers"))))
                .collect()
        };
        sd.normalization = Some(Normalization::from_slices(name, &parse(mean)?, &parse(std)?)?);
    }
    if let Some(names) = meta.metadata().as_ref().and_then(|m| m.get(CLASSES_KEY)) {
        let names: Vec<String> = serde_json::from_str(names)
            .map_err(|e| fail(format!("metadata `{CLASSES_KEY}` is not a JSON list of names ({e})")))?;
        sd.class_names = Some(names);
    }
    if let Some(v) = meta.metadata().as_ref().and_then(|m| m.get(VIEW_KEY)) {
        sd.view = Some(View::from_text(v).ok_or_else(|| fail(format!("metadata `{VIEW_KEY}` is {v:?}, not `resize,crop`")))?);
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
