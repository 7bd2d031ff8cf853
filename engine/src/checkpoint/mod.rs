//! Model weights from disk or memory: PyTorch checkpoints (zip and legacy formats, including
//! the robustness library's wrapped checkpoints) and safetensors, into one [`StateDict`] with
//! torchvision key names.
//!
//! Nothing in a pickle is executed (see [`pickle`]). Only tensors are kept; optimizer state,
//! schedules and other entries are skipped without being read.

pub mod pickle;
mod safetensors_io;
pub mod torch;

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};
use std::path::Path;

use crate::error::Error;
use crate::preprocess::{Normalization, View};

pub use safetensors_io::{safetensors_bytes, write_safetensors};

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// torch's storage class names (`torch.FloatStorage`, ...).
    pub fn from_storage_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// Decodes element `i` of little-endian `bytes` as f32.
    fn read(self, bytes: &[u8], i: usize) -> f32 {
        let at = |n: usize| &bytes[i * n..(i + 1) * n];
        match self {
            DType::F32 => f32::from_le_bytes(at(4).try_into().unwrap_or_default()),
            DType::F64 => f64::from_le_bytes(at(8).try_into().unwrap_or_default()) as f32,
            DType::F16 => half::f16::from_le_bytes(at(2).try_into().unwrap_or_default()).to_f32(),
            DType::BF16 => half::bf16::from_le_bytes(at(2).try_into().unwrap_or_default()).to_f32(),
            DType::I64 => i64::from_le_bytes(at(8).try_into().unwrap_or_default()) as f32,
            DType::I32 => i32::from_le_bytes(at(4).try_into().unwrap_or_default()) as f32,
            DType::I16 => i16::from_le_bytes(at(2).try_into().unwrap_or_default()) as f32,
            DType::I8 => bytes[i] as i8 as f32,
            DType::U8 | DType::Bool => bytes[i] as f32,
        }
    }
}

/// A tensor in host memory, converted to f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    /// The element type it was stored as.
    pub dtype: DType,
    pub data: Vec<f32>,
}

/// The most tensor elements a checkpoint may make us hold (1 GiB as f32): the largest ResNet,
/// wide_resnet101_2, has 127 million.
pub const MAX_WEIGHT_ELEMENTS: usize = 1 << 28;

/// Refuses a set of tensors of `total` elements in all (checked before any is read).
pub(crate) fn check_total_elements(total: Option<usize>) -> Result<(), String> {
    match total {
        Some(n) if n <= MAX_WEIGHT_ELEMENTS => Ok(()),
        Some(n) => Err(format!(
            "its tensors hold {n} elements, more than the {MAX_WEIGHT_ELEMENTS} (1 GiB as f32) any supported model needs"
        )),
        None => Err("the sizes of its tensors overflow".into()),
    }
}

impl HostTensor {
    /// Copies the elements `t` describes out of its storage's bytes (bounds were checked when
    /// the reference was built).
    pub(crate) fn gather(storage: &[u8], t: &torch::TensorRef) -> Self {
        let numel: usize = t.shape.iter().product();
        let mut data = Vec::with_capacity(numel);
        if numel == 0 {
            return HostTensor { shape: t.shape.clone(), dtype: t.dtype, data };
        }
        let contiguous = {
            let mut expect = 1usize;
            t.shape.iter().zip(&t.strides).rev().all(|(&d, &s)| {
                let ok = d <= 1 || s == expect;
                expect = expect.saturating_mul(d);
                ok
            })
        };
        if contiguous {
            data.extend((t.offset..t.offset + numel).map(|i| t.dtype.read(storage, i)));
        } else {
            let mut index = vec![0usize; t.shape.len()];
            for _ in 0..numel {
                let at = t.offset + index.iter().zip(&t.strides).map(|(i, s)| i * s).sum::<usize>();
                data.push(t.dtype.read(storage, at));
                for d in (0..index.len()).rev() {
                    index[d] += 1;
                    if index[d] < t.shape[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
        }
        HostTensor { shape: t.shape.clone(), dtype: t.dtype, data }
    }
}

/// The container a checkpoint came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `torch.save` since PyTorch 1.6 (a zip archive).
    TorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)` and PyTorch < 1.6.
    TorchLegacy,
    Safetensors,
}

/// How the checkpoint named its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// torchvision names (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.bias`).
    Torchvision,
    /// `nn.DataParallel`: torchvision names behind `module.`.
    DataParallel,
    /// The robustness library's `AttackerModel`: `module.model.*` plus `module.normalizer.*`
    /// (and `module.attacker.*` duplicates, which are skipped).
    Robustness,
}

/// Model weights with torchvision key names.
#[derive(Debug, Clone)]
pub struct StateDict {
    /// Where the weights came from, for messages.
    pub source: String,
    pub format: Format,
    pub layout: Layout,
    pub tensors: BTreeMap<String, HostTensor>,
    /// The input normalization stored with the weights, if any (robustness checkpoints carry
    /// theirs; safetensors written by `salient convert` keep it in their metadata).
    pub normalization: Option<Normalization>,
    /// Class names stored with the weights (safetensors metadata), if any.
    pub class_names: Option<Vec<String>>,
    /// The input view the model was trained on, if not ImageNet's (safetensors metadata).
    pub view: Option<View>,
}

impl StateDict {
    /// Reads a checkpoint file of any supported format. Only regular files are opened (a FIFO
    /// or a device is refused before it is read); only the tensors' bytes are read, up to
    /// [`MAX_WEIGHT_ELEMENTS`] elements.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let name = crate::fsutil::shown(path);
        let (file, len) = crate::fsutil::open_regular(path)?;
        if len == 0 {
            return Err(Error::checkpoint(&name, "the file is empty"));
        }
        let mut reader = std::io::BufReader::new(file);
        let mut head = [0u8; 16];
        let n = read_head(&mut reader, &mut head).map_err(|e| Error::read(&name, e))?;
        reader.seek(std::io::SeekFrom::Start(0)).map_err(|e| Error::read(&name, e))?;
        match sniff(&head[..n], len) {
            Some(Format::Safetensors) => safetensors_io::read(&name, reader, len),
            Some(format) => Self::from_torch(&name, format, reader),
            None => Err(not_a_checkpoint(&name, &head[..n])),
        }
    }

    /// Reads a checkpoint held in memory (a browser upload or download); `name` is used in messages.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Err(Error::checkpoint(name, "the file is empty"));
        }
        match sniff(&bytes[..bytes.len().min(16)], bytes.len() as u64) {
            Some(Format::Safetensors) => safetensors_io::read(name, Cursor::new(bytes), bytes.len() as u64),
            Some(format) => Self::from_torch(name, format, Cursor::new(bytes)),
            None => Err(not_a_checkpoint(name, bytes)),
        }
    }

    fn from_torch<R: Read + Seek>(name: &str, format: Format, reader: R) -> Result<Self, Error> {
        let fail = |m: String| Error::checkpoint(name, m);
        let (catalog, mut source): (torch::Catalog, Box<dyn torch::StorageSource>) = match format {
            Format::TorchZip => {
                let (src, p) = torch::ZipSource::open(reader).map_err(fail)?;
                (torch::Catalog::from_pickle(&p).map_err(fail)?, Box::new(src))
            }
            _ => {
                let (src, _, catalog) = torch::LegacySource::open(reader).map_err(fail)?;
                (catalog, Box::new(src))
            }
        };
        // The state dict is the root dict, or its `model` / `state_dict` entry (training
        // checkpoints such as the robustness library's).
        let container = ["model", "state_dict"]
            .into_iter()
            .find(|k| catalog.entries.iter().any(|e| e.path.len() == 2 && e.path[0] == *k));
        let named: Vec<(String, &torch::Entry)> = catalog
            .entries
            .iter()
            .filter_map(|e| match (container, e.path.as_slice()) {
                (Some(c), [first, key]) if first == c => Some((key.clone(), e)),
                (None, [key]) => Some((key.clone(), e)),
                _ => None,
            })
            .collect();
        if named.is_empty() {
            return Err(fail(
                "no tensors found: expected a state dict (a dict of tensors), or a training checkpoint with a `model` or `state_dict` entry".into(),
            ));
        }
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        let (layout, keep) = classify(&names);
        let kept: Vec<(String, &torch::Entry)> = named.iter().filter_map(|(n, e)| keep(n).map(|k| (k, *e))).collect();
        let entries: Vec<&torch::Entry> = kept.iter().map(|(_, e)| *e).collect();
        let tensors = catalog.load(&entries, source.as_mut()).map_err(fail)?;
        let mut sd = StateDict {
            source: name.to_owned(),
            format,
            layout,
            tensors: BTreeMap::new(),
            normalization: None,
            class_names: None,
            view: None,
        };
        for ((key, _), t) in kept.into_iter().zip(tensors) {
            sd.insert(key, t)?;
        }
        if layout == Layout::Robustness {
            let mut normalizer = named
                .iter()
                .filter(|(n, _)| n.starts_with("module.normalizer."))
                .map(|(n, e)| (n.as_str(), *e))
                .collect::<Vec<_>>();
            normalizer.sort_by_key(|(n, _)| *n);
            let entries: Vec<&torch::Entry> = normalizer.iter().map(|(_, e)| *e).collect();
            let loaded = catalog.load(&entries, source.as_mut()).map_err(fail)?;
            let get = |suffix: &str| {
                normalizer.iter().zip(&loaded).find(|((n, _), _)| n.ends_with(suffix)).map(|(_, t)| t.data.clone())
            };
            if let (Some(mean), Some(std)) = (get("new_mean"), get("new_std")) {
                sd.normalization = Some(Normalization::from_slices(name, &mean, &std)?);
            }
        }
        Ok(sd)
    }

    /// Adds a tensor, rejecting non-finite float weights.
    pub(crate) fn insert(&mut self, key: String, t: HostTensor) -> Result<(), Error> {
        if t.dtype.is_float()
            && let Some(i) = t.data.iter().position(|v| !v.is_finite())
        {
            return Err(Error::checkpoint(
                &self.source,
                format!("tensor `{key}` holds {} at element {i}: the weights are corrupt", t.data[i]),
            ));
        }
        self.tensors.insert(key, t);
        Ok(())
    }

    /// Tensor `key`, checked to have `shape`; the error names the key and both shapes.
    pub fn get(&self, key: &str, shape: &[usize]) -> Result<&HostTensor, Error> {
        match self.tensors.get(key) {
            Some(t) if !t.dtype.is_float() => Err(Error::checkpoint(
                &self.source,
                format!(
                    "tensor `{key}` is stored as {:?}: model weights must be floating point (f32, f64, f16 or bf16)",
                    t.dtype
                ),
            )),
            Some(t) if t.shape == shape => Ok(t),
            Some(t) => Err(Error::checkpoint(
                &self.source,
                format!("tensor `{key}` has shape {:?}, but the model needs {shape:?}", t.shape),
            )),
            None => Err(Error::checkpoint(&self.source, format!("tensor `{key}` is missing{}", self.missing_hint()))),
        }
    }

    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.tensors.get(key).map(|t| t.shape.as_slice())
    }

    fn missing_hint(&self) -> String {
        let sample: Vec<&str> = self.tensors.keys().take(3).map(String::as_str).collect();
        if sample.is_empty() {
            String::new()
        } else {
            format!(" (the checkpoint has e.g. {}: is it a torchvision ResNet?)", sample.join(", "))
        }
    }
}

/// Decides the layout from the key names; returns it and a map from a stored name to the
/// torchvision name (or `None` to skip the tensor).
fn classify(names: &[&str]) -> (Layout, fn(&str) -> Option<String>) {
    if names.iter().any(|n| n.starts_with("module.model.")) {
        (Layout::Robustness, |n| n.strip_prefix("module.model.").map(str::to_owned))
    } else if names.iter().all(|n| n.starts_with("module.")) {
        (Layout::DataParallel, |n| n.strip_prefix("module.").map(str::to_owned))
    } else {
        (Layout::Torchvision, |n| Some(n.to_owned()))
    }
}

fn read_head(r: &mut impl Read, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Recognizes a format from the first bytes of a file of `len` bytes. safetensors is tried
/// first: its header length is any little-endian number, and one whose low byte is 0x80 would
/// otherwise pass for a pickle's PROTO opcode.
fn sniff(head: &[u8], len: u64) -> Option<Format> {
    if head.len() >= 9 {
        let header_len = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        if head[8] == b'{' && header_len.saturating_add(8) <= len {
            return Some(Format::Safetensors);
        }
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Format::TorchZip);
    }
    // PROTO 2 (torch's legacy files); protocols above 5 do not exist.
    if head.first() == Some(&0x80) && head.get(1).is_some_and(|&v| (2..=5).contains(&v)) {
        return Some(Format::TorchLegacy);
    }
    None
}

fn not_a_checkpoint(name: &str, head: &[u8]) -> Error {
    let shown: String = head
        .iter()
        .take(8)
        .map(|&b| if b.is_ascii_graphic() || b == b' ' { (b as char).to_string() } else { format!("\\x{b:02x}") })
        .collect();
    let message = if head.starts_with(b"\x1f\x8b") {
        "it is gzip-compressed: decompress it first".to_owned()
    } else {
        format!(
            "not a model checkpoint: it starts with \"{shown}\", which is neither a PyTorch checkpoint (zip or legacy) nor safetensors"
        )
    };
    Error::checkpoint(name, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_follows_strides() {
        // A 2×3 tensor stored transposed (strides [1, 2]) in f32.
        let storage: Vec<u8> = [0f32, 3., 1., 4., 2., 5.].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = torch::TensorRef {
            storage: "0".into(),
            dtype: DType::F32,
            offset: 0,
            shape: vec![2, 3],
            strides: vec![1, 2],
        };
        assert_eq!(HostTensor::gather(&storage, &t).data, vec![0., 1., 2., 3., 4., 5.]);
    }

    #[test]
    fn text_file_is_not_a_checkpoint() {
        let e = StateDict::from_bytes("model.pt", b"hello, this is text\n").unwrap_err().to_string();
        assert!(e.starts_with("model.pt: not a model checkpoint"), "{e}");
    }

    #[test]
    fn classify_layouts() {
        assert_eq!(
            classify(&["module.model.conv1.weight", "module.attacker.model.conv1.weight"]).0,
            Layout::Robustness
        );
        assert_eq!(classify(&["module.conv1.weight"]).0, Layout::DataParallel);
        assert_eq!(classify(&["conv1.weight"]).0, Layout::Torchvision);
        let (_, keep) = classify(&["module.model.fc.bias", "module.attacker.model.fc.bias"]);
        assert_eq!(keep("module.attacker.model.fc.bias"), None);
        assert_eq!(keep("module.model.fc.bias").as_deref(), Some("fc.bias"));
    }
}
