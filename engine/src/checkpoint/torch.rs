//! PyTorch `torch.save` files: the zip format (torch ≥ 1.6) and the legacy format (pickles
//! back to back, then raw storages), read without executing any pickled code.
//!
//! A tensor in the pickle is a call `torch._utils._rebuild_tensor_v2(storage, offset, size,
//! stride, ...)` whose `storage` is a persistent id `('storage', torch.FloatStorage, key,
//! location, numel)`; the bytes of storage `key` live outside the pickle (`archive/data/<key>`
//! in the zip, or after the pickles in the legacy file).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use super::pickle::{self, Id, Node, Pickle};
use super::{DType, HostTensor, check_total_elements};

/// torch's legacy-format magic number, the first pickle of such a file.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The largest pickle we accept: real checkpoint pickles are kilobytes (tensor data lives
/// outside them).
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// More tensors than any image classifier checkpoint holds.
pub const MAX_TENSORS: usize = 100_000;
/// The longest dict key followed on the way to a tensor (real tensor names are under 200 bytes).
pub const MAX_KEY_BYTES: usize = 1024;

/// Where a tensor's elements are: storage `key`, starting `offset` elements in, laid out by
/// `shape` and `strides` (in elements).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: String,
    pub dtype: DType,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

/// A named tensor found in the pickle, with the path of dict keys that lead to it
/// (e.g. `["model", "module.model.conv1.weight"]`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: Vec<String>,
    pub tensor: TensorRef,
}

/// Storage facts from the persistent ids: dtype and number of elements.
#[derive(Debug, Clone, Copy)]
struct StorageInfo {
    dtype: DType,
    numel: usize,
}

/// Every tensor reachable through string-keyed dicts from the pickle's root, plus the storages
/// they use. Unknown objects (optimizer classes, dill-pickled functions) are skipped.
pub struct Catalog {
    pub entries: Vec<Entry>,
    storages: HashMap<String, StorageInfo>,
    /// Dict items the walk may still visit: a pickle can share one dict from many places
    /// (memo `GET`), so a walk over paths could take exponential time in the file's size.
    steps_left: usize,
    /// The walk's whole budget, for the message: each object visited a few times over at most
    /// (a state dict kept under two names).
    steps: usize,
}

impl Catalog {
    pub fn from_pickle(p: &Pickle) -> Result<Self, String> {
        let steps = p.nodes.len().saturating_mul(4).saturating_add(10_000);
        let mut cat = Catalog { entries: Vec::new(), storages: HashMap::new(), steps_left: steps, steps };
        let mut path = Vec::new();
        cat.walk(p, p.root, &mut path, 0)?;
        Ok(cat)
    }

    fn walk(&mut self, p: &Pickle, id: Id, path: &mut Vec<String>, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return Err("the pickle nests dicts more than 64 levels deep".into());
        }
        match p.get(id) {
            Node::Dict(items) => {
                for &(k, v) in items {
                    if self.steps_left == 0 {
                        return Err(format!(
                            "the pickle shares its dicts so often that reading them would visit more than {} entries (a crafted file?)",
                            self.steps
                        ));
                    }
                    self.steps_left -= 1;
                    let key = match p.get(k) {
                        Node::Str(s) if s.len() > MAX_KEY_BYTES => {
                            let place = if path.is_empty() {
                                "at the top level".to_owned()
                            } else {
                                format!("under `{}`", path.join("."))
                            };
                            return Err(format!(
                                "a dict key {place} is {} bytes long, over the {MAX_KEY_BYTES}-byte limit for tensor names",
                                s.len()
                            ));
                        }
                        Node::Str(s) => s.clone(),
                        Node::Int(i) => i.to_string(),
                        _ => continue,
                    };
                    path.push(key);
                    self.walk(p, v, path, depth + 1)?;
                    path.pop();
                }
            }
            Node::Call { .. } => {
                if let Some(t) = self.tensor(p, id, 0).map_err(|e| format!("tensor `{}`: {e}", path.join(".")))? {
                    if self.entries.len() >= MAX_TENSORS {
                        return Err(format!("more than {MAX_TENSORS} tensors"));
                    }
                    self.entries.push(Entry { path: path.clone(), tensor: t });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Interprets a call node as a tensor if it is one of torch's rebuild functions.
    fn tensor(&mut self, p: &Pickle, id: Id, depth: usize) -> Result<Option<TensorRef>, String> {
        match p.get(id) {
            Node::Call { callable, args, .. } => self.tensor_call(p, *callable, *args, depth),
            _ => Ok(None),
        }
    }

    /// `callable(*args)`, if `callable` is one of torch's tensor rebuild functions.
    fn tensor_call(&mut self, p: &Pickle, callable: Id, args: Id, depth: usize) -> Result<Option<TensorRef>, String> {
        let Some((module, name)) = p.as_global(callable) else { return Ok(None) };
        let args = p.as_seq(args).unwrap_or(&[]);
        if depth > 4 {
            return Err("tensor rebuild calls nest too deeply".into());
        }
        match (module, name) {
            ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2" | "_rebuild_tensor_v3") => {
                self.rebuild(p, args).map(Some)
            }
            // Parameters wrap a tensor: (data, requires_grad, backward_hooks[, state]).
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => match args.first() {
                Some(&inner) => self.tensor(p, inner, depth + 1),
                None => Err("_rebuild_parameter without arguments".into()),
            },
            // Tensor subclasses: (func, type, args, state) where func(*args) is the tensor.
            ("torch._tensor", "_rebuild_from_type_v2" | "_rebuild_from_type") => match args {
                [func, _ty, inner_args, ..] => self.tensor_call(p, *func, *inner_args, depth + 1),
                _ => Err("_rebuild_from_type_v2 with too few arguments".into()),
            },
            _ => Ok(None),
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`.
    fn rebuild(&mut self, p: &Pickle, args: &[Id]) -> Result<TensorRef, String> {
        let [storage, offset, size, stride, ..] = args else {
            return Err(format!("tensor rebuild call has {} arguments, expected at least 4", args.len()));
        };
        let (key, info, view_offset) = self.storage(p, *storage)?;
        let offset = to_usize(p.as_int(*offset), "storage offset")? + view_offset;
        let ints = |id: Id, what: &str| -> Result<Vec<usize>, String> {
            p.as_seq(id)
                .ok_or_else(|| format!("tensor {what} is not a tuple"))?
                .iter()
                .map(|&d| to_usize(p.as_int(d), what))
                .collect()
        };
        let shape = ints(*size, "size")?;
        let strides = ints(*stride, "stride")?;
        if shape.len() != strides.len() {
            return Err(format!("tensor has {} dimensions but {} strides", shape.len(), strides.len()));
        }
        let t = TensorRef { storage: key, dtype: info.dtype, offset, shape, strides };
        // The last element the tensor reads must lie inside its storage, and it may not hold
        // more elements than the storage (a view repeating elements with stride 0 would turn a
        // few stored bytes into gigabytes; state dicts hold none).
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("tensor size overflows")?;
        if numel > info.numel {
            return Err(format!(
                "tensor of shape {:?} has {numel} elements but its storage `{}` only {}: views that repeat elements are not supported",
                t.shape, t.storage, info.numel
            ));
        }
        if numel > 0 {
            let last = t
                .shape
                .iter()
                .zip(&t.strides)
                .try_fold(t.offset, |a, (&d, &s)| a.checked_add((d - 1).checked_mul(s)?))
                .ok_or("tensor strides overflow")?;
            if last >= info.numel {
                return Err(format!(
                    "tensor of shape {:?} reads element {last} of storage `{}`, which has only {} elements",
                    t.shape, t.storage, info.numel
                ));
            }
        }
        Ok(t)
    }

    /// Decodes a storage persistent id: `('storage', StorageType, key, location, numel[, view])`.
    fn storage(&mut self, p: &Pickle, id: Id) -> Result<(String, StorageInfo, usize), String> {
        let Node::Persistent(pid) = p.get(id) else {
            return Err("tensor storage is not a persistent id".into());
        };
        let fields = p.as_seq(*pid).ok_or("storage persistent id is not a tuple")?;
        let [tag, ty, key, _location, numel, rest @ ..] = fields else {
            return Err(format!("storage persistent id has {} fields, expected 5 or 6", fields.len()));
        };
        if p.as_str(*tag) != Some("storage") {
            return Err("persistent id is not a storage".into());
        }
        let dtype = match p.as_global(*ty) {
            Some((_, name)) => {
                DType::from_storage_name(name).ok_or_else(|| format!("unsupported storage type `{name}`"))?
            }
            None => return Err("storage type is not a class reference".into()),
        };
        let key = match p.get(*key) {
            Node::Str(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            _ => return Err("storage key is not a string".into()),
        };
        let numel = to_usize(p.as_int(*numel), "storage size")?;
        let info = StorageInfo { dtype, numel };
        if let Some(prev) = self.storages.insert(key.clone(), info)
            && (prev.dtype != dtype || prev.numel != numel)
        {
            return Err(format!("storage `{key}` is declared twice with different types or sizes"));
        }
        // Legacy views: (view_key, offset, size) into the root storage.
        let view_offset = match rest.first().map(|&v| p.get(v)) {
            Some(Node::Tuple(view)) if view.len() == 3 => to_usize(p.as_int(view[1]), "view offset")?,
            _ => 0,
        };
        Ok((key, info, view_offset))
    }
}

fn to_usize(v: Option<i128>, what: &str) -> Result<usize, String> {
    match v {
        Some(i) if i >= 0 && i <= (isize::MAX as i128) => Ok(i as usize),
        Some(i) => Err(format!("{what} {i} is out of range")),
        None => Err(format!("{what} is not an integer")),
    }
}

/// Reads the bytes of the storages a set of tensors needs and converts the tensors.
pub trait StorageSource {
    /// The raw bytes of storage `key` (`nbytes` long).
    fn read(&mut self, key: &str, nbytes: usize) -> Result<Vec<u8>, String>;
}

impl Catalog {
    /// Loads the given entries' data, reading each storage once.
    pub fn load(&self, entries: &[&Entry], src: &mut dyn StorageSource) -> Result<Vec<HostTensor>, String> {
        // What will be held, checked before anything is read: each storage once, plus the
        // tensors converted to f32.
        let mut keys: Vec<&str> = entries.iter().map(|e| e.tensor.storage.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let stored = keys.iter().try_fold(0usize, |a, k| a.checked_add(self.storages[*k].numel));
        let converted = entries
            .iter()
            .try_fold(0usize, |a, e| a.checked_add(e.tensor.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?));
        check_total_elements(stored)?;
        check_total_elements(converted)?;
        let mut cache: HashMap<&str, Vec<u8>> = HashMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let t = &e.tensor;
            let info = self.storages[&t.storage];
            if !cache.contains_key(t.storage.as_str()) {
                let nbytes = info
                    .numel
                    .checked_mul(info.dtype.size())
                    .ok_or_else(|| format!("storage `{}` is too large", t.storage))?;
                cache.insert(&t.storage, src.read(&t.storage, nbytes)?);
            }
            out.push(HostTensor::gather(&cache[t.storage.as_str()], t));
        }
        Ok(out)
    }
}

/// A zip-format checkpoint: `<prefix>/data.pkl` and `<prefix>/data/<key>`.
pub struct ZipSource<R: Read + Seek> {
    archive: zip::ZipArchive<R>,
    prefix: String,
}

impl<R: Read + Seek> ZipSource<R> {
    /// Opens the archive and returns it with its parsed `data.pkl`.
    pub fn open(reader: R) -> Result<(Self, Pickle), String> {
        let archive = zip::ZipArchive::new(reader).map_err(|e| match e {
            zip::result::ZipError::InvalidArchive(_) => {
                format!("the zip archive is truncated or corrupt: its central directory is missing or invalid ({e})")
            }
            e => format!("not a readable zip archive ({e})"),
        })?;
        let pkl_name = archive
            .file_names()
            .filter_map(Result::ok)
            .find(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
            .map(|n| n.into_owned())
            .ok_or("zip archive has no data.pkl: not a torch.save file")?;
        let prefix = pkl_name.trim_end_matches("data.pkl").to_owned();
        let mut src = ZipSource { archive, prefix };
        if let Ok(order) = src.entry_bytes(&format!("{}byteorder", src.prefix), 16)
            && order != b"little"
        {
            return Err("checkpoint was written on a big-endian machine, which is not supported".into());
        }
        let bytes = src.entry_bytes(&pkl_name, MAX_PICKLE_BYTES as usize)?;
        let (p, _) = pickle::parse(&bytes).map_err(|e| format!("data.pkl {e}"))?;
        Ok((src, p))
    }

    fn entry_bytes(&mut self, name: &str, max: usize) -> Result<Vec<u8>, String> {
        let f = self.archive.by_name(name).map_err(|e| format!("zip entry `{name}`: {e}"))?;
        if f.size() > max as u64 {
            return Err(format!("zip entry `{name}` is {} bytes, more than the {max} allowed", f.size()));
        }
        // The size the zip declares is not trusted for the allocation: memory grows with the
        // bytes that actually arrive.
        let mut buf = Vec::with_capacity((f.size() as usize).min(1 << 20));
        f.take(max as u64 + 1).read_to_end(&mut buf).map_err(|e| format!("zip entry `{name}`: {e}"))?;
        Ok(buf)
    }
}

impl<R: Read + Seek> StorageSource for ZipSource<R> {
    fn read(&mut self, key: &str, nbytes: usize) -> Result<Vec<u8>, String> {
        let name = format!("{}data/{key}", self.prefix);
        let bytes = self.entry_bytes(&name, nbytes)?;
        if bytes.len() != nbytes {
            return Err(format!("zip entry `{name}` has {} bytes, expected {nbytes} (truncated?)", bytes.len()));
        }
        Ok(bytes)
    }
}

/// A legacy-format checkpoint: five pickles (magic, protocol, sys info, payload, storage keys),
/// then each storage as a little-endian u64 element count and its raw bytes.
pub struct LegacySource<R: Read + Seek> {
    reader: R,
    /// Byte offset of each storage's data (after its count).
    offsets: HashMap<String, u64>,
}

impl<R: Read + Seek> LegacySource<R> {
    pub fn open(mut reader: R) -> Result<(Self, Pickle, Catalog), String> {
        let mut pos = 0u64;
        let next_pickle = |reader: &mut R, pos: &mut u64, what: &str| -> Result<Pickle, String> {
            let mut buf = Vec::new();
            reader.seek(SeekFrom::Start(*pos)).map_err(|e| e.to_string())?;
            reader
                .by_ref()
                .take(MAX_PICKLE_BYTES)
                .read_to_end(&mut buf)
                .map_err(|e| format!("reading the {what}: {e}"))?;
            let (p, used) = pickle::parse(&buf).map_err(|e| {
                let at = *pos + e.offset as u64;
                format!("the {what} is not a valid pickle (at byte {at} of the file: {})", e.message)
            })?;
            *pos += used as u64;
            Ok(p)
        };
        let magic = next_pickle(&mut reader, &mut pos, "header")?;
        if magic.as_int(magic.root) != Some(LEGACY_MAGIC) {
            return Err("it is a pickle but not a PyTorch checkpoint (torch's magic number is missing)".into());
        }
        let proto = next_pickle(&mut reader, &mut pos, "protocol version")?;
        if proto.as_int(proto.root) != Some(1001) {
            return Err(format!("unsupported legacy checkpoint protocol {:?}", proto.as_int(proto.root)));
        }
        let sys = next_pickle(&mut reader, &mut pos, "system info")?;
        if let Some(le) = sys.dict_get(sys.root, "little_endian")
            && sys.get(le) == &Node::Bool(false)
        {
            return Err("checkpoint was written on a big-endian machine, which is not supported".into());
        }
        let payload_start = pos;
        let payload = next_pickle(&mut reader, &mut pos, "payload")
            .map_err(|e| format!("{e} (payload starts at byte {payload_start})"))?;
        let catalog = Catalog::from_pickle(&payload)?;
        let keys = next_pickle(&mut reader, &mut pos, "storage key list")?;
        let keys: Vec<String> = keys
            .as_seq(keys.root)
            .ok_or("the storage key list is not a list")?
            .iter()
            .map(|&k| match keys.get(k) {
                Node::Str(s) => Ok(s.clone()),
                Node::Int(i) => Ok(i.to_string()),
                _ => Err("a storage key is not a string".to_string()),
            })
            .collect::<Result<_, _>>()?;
        let file_len = reader.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
        let mut offsets = HashMap::new();
        for key in keys {
            let Some(info) = catalog.storages.get(&key) else {
                return Err(format!("storage `{key}` is listed but no tensor declares it"));
            };
            let mut count = [0u8; 8];
            reader.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
            reader.read_exact(&mut count).map_err(|_| {
                format!("the file ends at byte {file_len}, inside the header of storage `{key}` (truncated?)")
            })?;
            let count = u64::from_le_bytes(count);
            if count != info.numel as u64 {
                return Err(format!(
                    "storage `{key}` at byte {pos} holds {count} elements, but its tensors declare {}",
                    info.numel
                ));
            }
            let data_start = pos + 8;
            let end = (info.numel as u64)
                .checked_mul(info.dtype.size() as u64)
                .and_then(|n| n.checked_add(data_start))
                .ok_or_else(|| format!("storage `{key}` is too large"))?;
            if end > file_len {
                return Err(format!(
                    "storage `{key}` needs bytes {data_start}..{end} but the file ends at byte {file_len} (truncated?)"
                ));
            }
            offsets.insert(key, data_start);
            pos = end;
        }
        Ok((LegacySource { reader, offsets }, payload, catalog))
    }
}

impl<R: Read + Seek> StorageSource for LegacySource<R> {
    fn read(&mut self, key: &str, nbytes: usize) -> Result<Vec<u8>, String> {
        let start = *self.offsets.get(key).ok_or_else(|| format!("storage `{key}` is not in the file"))?;
        let mut buf = vec![0u8; nbytes];
        self.reader
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.reader.read_exact(&mut buf))
            .map_err(|e| format!("reading storage `{key}` at byte {start}: {e}"))?;
        Ok(buf)
    }
}
