//! Structure-aware: a torch zip whose local headers, central directory, zip64 records and end
//! of central directory are written by hand from fields the fuzzer picks (declared sizes,
//! offsets, names, method, flags, zip64 extra fields, data descriptors), around a valid small
//! pickle and storages. Must return Ok or a clear error, never panic, hang or allocate beyond
//! what the bytes present justify.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone)]
enum Name {
    ArchiveDataPkl,
    DataPkl,
    OtherDataPkl,
    ArchiveData0,
    ArchiveData1,
    ArchiveByteorder,
    ArchiveVersion,
    Traversal,
    Absolute,
    Empty,
    Other(String),
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Name::ArchiveDataPkl => b"archive/data.pkl".to_vec(),
            Name::DataPkl => b"data.pkl".to_vec(),
            Name::OtherDataPkl => b"resnet50/data.pkl".to_vec(),
            Name::ArchiveData0 => b"archive/data/0".to_vec(),
            Name::ArchiveData1 => b"archive/data/1".to_vec(),
            Name::ArchiveByteorder => b"archive/byteorder".to_vec(),
            Name::ArchiveVersion => b"archive/version".to_vec(),
            Name::Traversal => b"../../../../tmp/salient-pwned".to_vec(),
            Name::Absolute => b"/etc/passwd".to_vec(),
            Name::Empty => Vec::new(),
            Name::Other(s) => s.as_bytes().iter().take(64).copied().collect(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Numel {
    Zero,
    One,
    Four,
    Small(u8),
    ElementLimit,
    Tib,
    Any(u32),
}

impl Numel {
    fn value(self) -> u64 {
        match self {
            Numel::Zero => 0,
            Numel::One => 1,
            Numel::Four => 4,
            Numel::Small(v) => v as u64,
            Numel::ElementLimit => 1 << 28,
            Numel::Tib => 1 << 38,
            Numel::Any(v) => v as u64,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum PickleKind {
    EmptyDict,
    /// `{key: tensor of numel floats in storage key}` as torch writes it.
    Tensor { name: u8, storage: bool, numel: Numel },
    TwoTensors { numel: Numel },
    CallsSystem,
    Deep(u16),
    Raw(Vec<u8>),
}

fn binunicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn long1(out: &mut Vec<u8>, v: u64) {
    let mut b = v.to_le_bytes().to_vec();
    b.push(0);
    while b.len() > 1 && b[b.len() - 1] == 0 && b[b.len() - 2] & 0x80 == 0 {
        b.pop();
    }
    out.extend([0x8a, b.len() as u8]);
    out.extend(b);
}

fn tensor_items(out: &mut Vec<u8>, name: &str, key: &str, numel: u64) {
    binunicode(out, name);
    out.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    out.push(b'(');
    binunicode(out, "storage");
    out.extend(b"ctorch\nFloatStorage\n");
    binunicode(out, key);
    binunicode(out, "cpu");
    long1(out, numel);
    out.extend(b"tQK\x00(");
    long1(out, numel);
    out.extend(b"t(K\x01t\x89ccollections\nOrderedDict\n)RtR");
}

impl PickleKind {
    fn bytes(&self) -> Vec<u8> {
        const NAMES: [&str; 4] = ["conv1.weight", "fc.weight", "module.model.fc.bias", "bn1.running_var"];
        let mut out = b"\x80\x02".to_vec();
        match self {
            PickleKind::EmptyDict => out.extend(b"}q\x00."),
            PickleKind::Tensor { name, storage, numel } => {
                out.extend(b"}(");
                tensor_items(&mut out, NAMES[*name as usize % 4], if *storage { "1" } else { "0" }, numel.value());
                out.extend(b"u.");
            }
            PickleKind::TwoTensors { numel } => {
                out.extend(b"}(");
                tensor_items(&mut out, "conv1.weight", "0", numel.value());
                tensor_items(&mut out, "fc.weight", "1", numel.value());
                out.extend(b"u.");
            }
            PickleKind::CallsSystem => {
                out.extend(b"cos\nsystem\n");
                binunicode(&mut out, "touch /tmp/salient-pwned");
                out.extend(b"\x85R.");
            }
            PickleKind::Deep(n) => {
                out.extend(std::iter::repeat_n(b']', *n as usize));
                out.push(b'.');
            }
            PickleKind::Raw(b) => return b.iter().take(1024).copied().collect(),
        }
        out
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Content {
    Pickle(PickleKind),
    /// `len` bytes of `fill` (1.0f32 needs 00 00 80 3f; any fill is finite or not).
    Storage { fill: u8, len: u16 },
    Byteorder(bool),
    Raw(Vec<u8>),
}

impl Content {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Content::Pickle(p) => p.bytes(),
            Content::Storage { fill, len } => vec![*fill; (*len % 8192) as usize],
            Content::Byteorder(le) => if *le { b"little".to_vec() } else { b"big".to_vec() },
            Content::Raw(b) => b.iter().take(1024).copied().collect(),
        }
    }
}

/// A 32-bit size or offset field, relative to the true value.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Field32 {
    Actual,
    Zero,
    /// 0xFFFFFFFF: "see the zip64 extra field".
    Marker,
    Delta(i8),
    Value(u32),
}

impl Field32 {
    fn get(self, actual: u64) -> u32 {
        match self {
            Field32::Actual => actual.min(u32::MAX as u64) as u32,
            Field32::Zero => 0,
            Field32::Marker => u32::MAX,
            Field32::Delta(d) => (actual as i64).wrapping_add(d as i64) as u32,
            Field32::Value(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Field64 {
    Actual,
    Zero,
    Tib,
    Max,
    IMax,
    Delta(i8),
    Value(u64),
}

impl Field64 {
    fn get(self, actual: u64) -> u64 {
        match self {
            Field64::Actual => actual,
            Field64::Zero => 0,
            Field64::Tib => 1 << 40,
            Field64::Max => u64::MAX,
            Field64::IMax => i64::MAX as u64,
            Field64::Delta(d) => actual.wrapping_add(d as i64 as u64),
            Field64::Value(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Field16 {
    Actual,
    Zero,
    Max,
    Delta(i8),
    Value(u16),
}

impl Field16 {
    fn get(self, actual: u64) -> u16 {
        match self {
            Field16::Actual => actual.min(u16::MAX as u64) as u16,
            Field16::Zero => 0,
            Field16::Max => u16::MAX,
            Field16::Delta(d) => (actual as i64).wrapping_add(d as i64) as u16,
            Field16::Value(v) => v,
        }
    }
}

/// The zip64 extended information extra field (header id 0x0001).
#[derive(Arbitrary, Debug, Clone)]
struct Zip64Extra {
    uncompressed: Option<Field64>,
    compressed: Option<Field64>,
    offset: Option<Field64>,
    disk: Option<u32>,
    /// The field's declared data size, when not the true one.
    declared_len: Option<u8>,
}

impl Zip64Extra {
    fn bytes(&self, size: u64, offset: u64) -> Vec<u8> {
        let mut data = Vec::new();
        if let Some(f) = self.uncompressed {
            data.extend(f.get(size).to_le_bytes());
        }
        if let Some(f) = self.compressed {
            data.extend(f.get(size).to_le_bytes());
        }
        if let Some(f) = self.offset {
            data.extend(f.get(offset).to_le_bytes());
        }
        if let Some(d) = self.disk {
            data.extend(d.to_le_bytes());
        }
        let mut out = 1u16.to_le_bytes().to_vec();
        out.extend((self.declared_len.map(u16::from).unwrap_or(data.len() as u16)).to_le_bytes());
        out.extend(data);
        out
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Method {
    Stored,
    Deflated,
    Bzip2,
    Lzma,
    Zstd,
    Aes,
    Other(u16),
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
            Method::Bzip2 => 12,
            Method::Lzma => 14,
            Method::Zstd => 93,
            Method::Aes => 99,
            Method::Other(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
struct Descriptor {
    signature: bool,
    zip64: bool,
    crc: Option<u32>,
    size: Field64,
}

#[derive(Arbitrary, Debug, Clone)]
struct Entry {
    name: Name,
    /// A different name in the central directory.
    central_name: Option<Name>,
    content: Content,
    method: Method,
    /// Low bits pick flags: encrypted, data descriptor, strong encryption, UTF-8.
    flags: u8,
    version_needed: u8,
    crc: Option<u32>,
    local_compressed: Field32,
    local_uncompressed: Field32,
    central_compressed: Field32,
    central_uncompressed: Field32,
    local_zip64: Option<Zip64Extra>,
    central_zip64: Option<Zip64Extra>,
    local_offset: Field32,
    disk_start: Field16,
    extra_junk: Vec<u8>,
    descriptor: Option<Descriptor>,
    in_central: bool,
    /// Bytes between this entry's data and the next record.
    gap: u8,
}

#[derive(Arbitrary, Debug, Clone)]
struct Zip64End {
    record_size: Field64,
    version_needed: u8,
    disk: u32,
    cd_disk: u32,
    entries_disk: Field64,
    entries_total: Field64,
    cd_size: Field64,
    cd_offset: Field64,
    locator_disk: u32,
    locator_offset: Field64,
    total_disks: u32,
    extensible: Vec<u8>,
}

#[derive(Arbitrary, Debug, Clone)]
struct End {
    disk: Field16,
    cd_disk: Field16,
    entries_disk: Field16,
    entries_total: Field16,
    cd_size: Field32,
    cd_offset: Field32,
    comment: Vec<u8>,
    comment_len: Field16,
}

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<Entry>,
    /// Entries listed twice in the central directory (by index).
    repeat: Vec<u8>,
    gap_before_central: Vec<u8>,
    zip64: Option<Zip64End>,
    end: End,
    trailing: Vec<u8>,
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend(v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend(v.to_le_bytes());
}
fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend(v.to_le_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn flags(f: u8) -> u16 {
    let mut out = 0;
    if f & 1 != 0 {
        out |= 0x0001;
    }
    if f & 2 != 0 {
        out |= 0x0008;
    }
    if f & 4 != 0 {
        out |= 0x0040;
    }
    if f & 8 != 0 {
        out |= 0x0800;
    }
    out
}

fn version(v: u8) -> u16 {
    match v % 4 {
        0 => 20,
        1 => 45,
        2 => 63,
        _ => v as u16,
    }
}

fn build(input: &Input) -> Vec<u8> {
    let mut out = Vec::new();
    let entries: Vec<&Entry> = input.entries.iter().take(8).collect();
    // (entry, offset of its local header, data) for the central directory.
    let mut placed = Vec::new();
    for e in &entries {
        let data = e.content.bytes();
        let size = data.len() as u64;
        let offset = out.len() as u64;
        let name = e.name.bytes();
        let crc = e.crc.unwrap_or_else(|| crc32(&data));
        let mut extra = e.local_zip64.as_ref().map(|z| z.bytes(size, offset)).unwrap_or_default();
        extra.extend(e.extra_junk.iter().take(32));
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, version(e.version_needed));
        u16le(&mut out, flags(e.flags));
        u16le(&mut out, e.method.code());
        u16le(&mut out, 0);
        u16le(&mut out, 0x21);
        u32le(&mut out, crc);
        u32le(&mut out, e.local_compressed.get(size));
        u32le(&mut out, e.local_uncompressed.get(size));
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, extra.len() as u16);
        out.extend(&name);
        out.extend(&extra);
        out.extend(&data);
        if let Some(d) = &e.descriptor {
            if d.signature {
                u32le(&mut out, 0x0807_4b50);
            }
            u32le(&mut out, d.crc.unwrap_or(crc));
            let s = d.size.get(size);
            if d.zip64 {
                u64le(&mut out, s);
                u64le(&mut out, s);
            } else {
                u32le(&mut out, s as u32);
                u32le(&mut out, s as u32);
            }
        }
        out.extend(std::iter::repeat_n(0u8, e.gap as usize % 16));
        placed.push((*e, offset, size, crc));
    }
    out.extend(input.gap_before_central.iter().take(64));
    let cd_start = out.len() as u64;
    let mut listed: Vec<usize> = (0..placed.len()).filter(|&i| placed[i].0.in_central || i == 0).collect();
    listed.extend(input.repeat.iter().take(4).filter(|_| !placed.is_empty()).map(|&i| i as usize % placed.len()));
    for &i in &listed {
        let (e, offset, size, crc) = placed[i];
        let name = e.central_name.as_ref().unwrap_or(&e.name).bytes();
        let extra = e.central_zip64.as_ref().map(|z| z.bytes(size, offset)).unwrap_or_default();
        u32le(&mut out, 0x0201_4b50);
        u16le(&mut out, 0x031e);
        u16le(&mut out, version(e.version_needed));
        u16le(&mut out, flags(e.flags));
        u16le(&mut out, e.method.code());
        u16le(&mut out, 0);
        u16le(&mut out, 0x21);
        u32le(&mut out, crc);
        u32le(&mut out, e.central_compressed.get(size));
        u32le(&mut out, e.central_uncompressed.get(size));
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, extra.len() as u16);
        u16le(&mut out, 0);
        u16le(&mut out, e.disk_start.get(0));
        u16le(&mut out, 0);
        u32le(&mut out, 0o100644 << 16);
        u32le(&mut out, e.local_offset.get(offset));
        out.extend(&name);
        out.extend(&extra);
    }
    let cd_size = out.len() as u64 - cd_start;
    let count = listed.len() as u64;
    if let Some(z) = &input.zip64 {
        let record = out.len() as u64;
        let ext: Vec<u8> = z.extensible.iter().take(32).copied().collect();
        u32le(&mut out, 0x0606_4b50);
        u64le(&mut out, z.record_size.get(44 + ext.len() as u64));
        u16le(&mut out, 0x031e);
        u16le(&mut out, version(z.version_needed));
        u32le(&mut out, z.disk % 3);
        u32le(&mut out, z.cd_disk % 3);
        u64le(&mut out, z.entries_disk.get(count));
        u64le(&mut out, z.entries_total.get(count));
        u64le(&mut out, z.cd_size.get(cd_size));
        u64le(&mut out, z.cd_offset.get(cd_start));
        out.extend(ext);
        u32le(&mut out, 0x0706_4b50);
        u32le(&mut out, z.locator_disk % 3);
        u64le(&mut out, z.locator_offset.get(record));
        u32le(&mut out, z.total_disks % 4);
    }
    let comment: Vec<u8> = input.end.comment.iter().take(64).copied().collect();
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, input.end.disk.get(0));
    u16le(&mut out, input.end.cd_disk.get(0));
    u16le(&mut out, input.end.entries_disk.get(count));
    u16le(&mut out, input.end.entries_total.get(count));
    u32le(&mut out, input.end.cd_size.get(cd_size));
    u32le(&mut out, input.end.cd_offset.get(cd_start));
    u16le(&mut out, input.end.comment_len.get(comment.len() as u64));
    out.extend(comment);
    out.extend(input.trailing.iter().take(64));
    out
}

fuzz_target!(|input: Input| {
    let bytes = build(&input);
    let _ = salient_engine::StateDict::from_bytes("fuzz.pt", &bytes);
});
