//! Structure-aware: a sequence of pickle opcodes with arguments (containers, memo, strings,
//! torch globals, calls, persistent ids, integers at the edges), or a state-dict skeleton
//! (`{key: tensor rebuild call | memo GET | opcodes}`, optionally under `model`/`state_dict`)
//! with the storages its tensors declare, wrapped into a torch legacy checkpoint (five
//! pickles, then the storages) or a torch zip (`archive/data.pkl`, `archive/data/<key>`).
//! Must return Ok or a clear error, never panic, hang or allocate beyond the limits.
#![no_main]
use std::io::{Cursor, Write};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// Memo keys 0..8, so that GETs usually find what a PUT stored.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Memo(u8);

impl Memo {
    fn key(self) -> u8 {
        self.0 % 8
    }
}

/// Strings that lead somewhere in a checkpoint, and a few random ones.
#[derive(Arbitrary, Debug, Clone)]
enum Text {
    Storage,
    Cpu,
    Key0,
    Key1,
    Conv1Weight,
    FcWeight,
    FcBias,
    Bn1RunningVar,
    Model,
    StateDict,
    ModuleModelConv1Weight,
    ModuleNormalizerNewMean,
    ModuleNormalizerNewStd,
    ModuleConv1Weight,
    LittleEndian,
    Other(String),
}

impl Text {
    fn as_str(&self) -> &str {
        match self {
            Text::Storage => "storage",
            Text::Cpu => "cpu",
            Text::Key0 => "0",
            Text::Key1 => "1",
            Text::Conv1Weight => "conv1.weight",
            Text::FcWeight => "fc.weight",
            Text::FcBias => "fc.bias",
            Text::Bn1RunningVar => "bn1.running_var",
            Text::Model => "model",
            Text::StateDict => "state_dict",
            Text::ModuleModelConv1Weight => "module.model.conv1.weight",
            Text::ModuleNormalizerNewMean => "module.normalizer.new_mean",
            Text::ModuleNormalizerNewStd => "module.normalizer.new_std",
            Text::ModuleConv1Weight => "module.conv1.weight",
            Text::LittleEndian => "little_endian",
            Text::Other(s) => {
                // Short: at most 24 bytes, cut at a char boundary.
                let mut end = s.len().min(24);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                &s[..end]
            }
        }
    }
}

/// Integers at the edges of what the reader converts (i32, u32, i64, isize, the element limit).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Int {
    Zero,
    One,
    Two,
    Four,
    Sixteen,
    MinusOne,
    Small(u8),
    I32Max,
    I32Min,
    U32Max,
    ElementLimit,
    ElementLimitPlus1,
    Tib,
    I64Max,
    I64Min,
    IsizeMaxPlus1,
    U64Max,
    I128Max,
    I128Min,
    Any(i64),
}

impl Int {
    fn value(self) -> i128 {
        match self {
            Int::Zero => 0,
            Int::One => 1,
            Int::Two => 2,
            Int::Four => 4,
            Int::Sixteen => 16,
            Int::MinusOne => -1,
            Int::Small(v) => v as i128,
            Int::I32Max => i32::MAX as i128,
            Int::I32Min => i32::MIN as i128,
            Int::U32Max => u32::MAX as i128,
            Int::ElementLimit => 1 << 28,
            Int::ElementLimitPlus1 => (1 << 28) + 1,
            Int::Tib => 1 << 38,
            Int::I64Max => i64::MAX as i128,
            Int::I64Min => i64::MIN as i128,
            Int::IsizeMaxPlus1 => isize::MAX as i128 + 1,
            Int::U64Max => u64::MAX as i128,
            Int::I128Max => i128::MAX,
            Int::I128Min => i128::MIN,
            Int::Any(v) => v as i128,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Global {
    RebuildTensorV2,
    RebuildTensor,
    RebuildTensorV3,
    RebuildParameter,
    RebuildFromTypeV2,
    FloatStorage,
    HalfStorage,
    DoubleStorage,
    BFloat16Storage,
    LongStorage,
    ByteStorage,
    BoolStorage,
    UntypedStorage,
    OrderedDict,
    BuiltinsDict,
    BuiltinsList,
    BuiltinsSet,
    TensorClass,
    OsSystem,
}

impl Global {
    fn parts(self) -> (&'static str, &'static str) {
        match self {
            Global::RebuildTensorV2 => ("torch._utils", "_rebuild_tensor_v2"),
            Global::RebuildTensor => ("torch._utils", "_rebuild_tensor"),
            Global::RebuildTensorV3 => ("torch._utils", "_rebuild_tensor_v3"),
            Global::RebuildParameter => ("torch._utils", "_rebuild_parameter"),
            Global::RebuildFromTypeV2 => ("torch._tensor", "_rebuild_from_type_v2"),
            Global::FloatStorage => ("torch", "FloatStorage"),
            Global::HalfStorage => ("torch", "HalfStorage"),
            Global::DoubleStorage => ("torch", "DoubleStorage"),
            Global::BFloat16Storage => ("torch", "BFloat16Storage"),
            Global::LongStorage => ("torch", "LongStorage"),
            Global::ByteStorage => ("torch", "ByteStorage"),
            Global::BoolStorage => ("torch", "BoolStorage"),
            Global::UntypedStorage => ("torch", "UntypedStorage"),
            Global::OrderedDict => ("collections", "OrderedDict"),
            Global::BuiltinsDict => ("builtins", "dict"),
            Global::BuiltinsList => ("builtins", "list"),
            Global::BuiltinsSet => ("builtins", "set"),
            Global::TensorClass => ("torch", "Tensor"),
            Global::OsSystem => ("os", "system"),
        }
    }
}

/// A tensor rebuild call, pushed as one value: `_rebuild_tensor_v2(('storage', type, key,
/// 'cpu', numel), offset, size, stride, False, OrderedDict())`.
#[derive(Arbitrary, Debug, Clone)]
struct Tensor {
    storage_type: Global,
    key: Text,
    numel: Int,
    offset: Int,
    shape: Vec<Int>,
    /// Contiguous strides for `shape` when None.
    strides: Option<Vec<Int>>,
    /// A sixth persistent-id field: the legacy view `(view_key, offset, size)`.
    view: Option<(Int, Int)>,
    /// Wrapped in `_rebuild_parameter(tensor, True, OrderedDict())`.
    parameter: bool,
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    Proto(u8),
    Frame(u16),
    Mark,
    Pop,
    PopMark,
    Dup,
    None,
    True,
    False,
    EmptyDict,
    EmptyList,
    EmptyTuple,
    EmptySet,
    Dict,
    List,
    Tuple,
    Tuple1,
    Tuple2,
    Tuple3,
    FrozenSet,
    SetItem,
    SetItems,
    Append,
    Appends,
    AddItems,
    BinPut(Memo),
    LongBinPut(Memo),
    Put(Memo),
    Memoize,
    BinGet(Memo),
    LongBinGet(Memo),
    Get(Memo),
    /// BINUNICODE.
    Str(Text),
    ShortStr(Text),
    /// BINUNICODE / BINUNICODE8 / BINBYTES claiming `declared` bytes with only `actual` present.
    LongStr { declared: u32, actual: u8 },
    LongStr8 { declared: u64, actual: u8 },
    LongBytes { declared: u32, actual: u8 },
    ShortBinString(Text),
    TextUnicode(Text),
    TextString(Text),
    Global(Global),
    StackGlobal(Global),
    Inst(Global),
    Obj,
    Reduce,
    NewObj,
    NewObjEx,
    Build,
    BinPersId,
    PersId(Text),
    BinInt(Int),
    BinInt1(u8),
    BinInt2(u16),
    Long1(Int),
    /// LONG1 wider than 128 bits.
    Long1Wide(u8),
    Long4(Int),
    TextInt(Int),
    BinFloat(f64),
    Tensor(Box<Tensor>),
    Stop,
    Raw(u8),
}

fn binunicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn long1(out: &mut Vec<u8>, v: i128) {
    // Python's minimal little-endian two's complement.
    let bytes = v.to_le_bytes();
    let mut n = 16;
    while n > 1 {
        let top = bytes[n - 1];
        let below = bytes[n - 2] & 0x80;
        if (top == 0 && below == 0) || (top == 0xff && below != 0) {
            n -= 1;
        } else {
            break;
        }
    }
    let n = if v == 0 { 0 } else { n };
    out.push(0x8a);
    out.push(n as u8);
    out.extend(&bytes[..n]);
}

fn int(out: &mut Vec<u8>, v: i128) {
    match i32::try_from(v) {
        Ok(v) if (0..256).contains(&v) => out.extend([b'K', v as u8]),
        Ok(v) => {
            out.push(b'J');
            out.extend(v.to_le_bytes());
        }
        Err(_) => long1(out, v),
    }
}

fn global(out: &mut Vec<u8>, g: Global) {
    let (module, name) = g.parts();
    out.push(b'c');
    out.extend(module.as_bytes());
    out.push(b'\n');
    out.extend(name.as_bytes());
    out.push(b'\n');
}

fn tensor(out: &mut Vec<u8>, t: &Tensor) {
    if t.parameter {
        global(out, Global::RebuildParameter);
        out.push(b'(');
    }
    global(out, Global::RebuildTensorV2);
    out.push(b'(');
    // The persistent id.
    out.push(b'(');
    binunicode(out, "storage");
    global(out, t.storage_type);
    binunicode(out, t.key.as_str());
    binunicode(out, "cpu");
    int(out, t.numel.value());
    if let Some((offset, size)) = t.view {
        binunicode(out, t.key.as_str());
        int(out, offset.value());
        int(out, size.value());
        out.push(0x87);
    }
    out.extend(b"tQ");
    int(out, t.offset.value());
    let shape: Vec<i128> = t.shape.iter().take(6).map(|d| d.value()).collect();
    out.push(b'(');
    for &d in &shape {
        int(out, d);
    }
    out.push(b't');
    out.push(b'(');
    match &t.strides {
        Some(strides) => {
            for s in strides.iter().take(6) {
                int(out, s.value());
            }
        }
        None => {
            let mut strides = vec![1i128; shape.len()];
            for i in (0..shape.len().saturating_sub(1)).rev() {
                strides[i] = strides[i + 1].saturating_mul(shape[i + 1]);
            }
            for s in strides {
                int(out, s);
            }
        }
    }
    out.push(b't');
    out.push(0x89);
    global(out, Global::OrderedDict);
    out.extend(b")RtR");
    if t.parameter {
        out.push(0x88);
        global(out, Global::OrderedDict);
        out.extend(b")RtR");
    }
}

fn op(out: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Proto(v) => out.extend([0x80, v % 7]),
        Op::Frame(n) => {
            out.push(0x95);
            out.extend((*n as u64).to_le_bytes());
        }
        Op::Mark => out.push(b'('),
        Op::Pop => out.push(b'0'),
        Op::PopMark => out.push(b'1'),
        Op::Dup => out.push(b'2'),
        Op::None => out.push(b'N'),
        Op::True => out.push(0x88),
        Op::False => out.push(0x89),
        Op::EmptyDict => out.push(b'}'),
        Op::EmptyList => out.push(b']'),
        Op::EmptyTuple => out.push(b')'),
        Op::EmptySet => out.push(0x8f),
        Op::Dict => out.push(b'd'),
        Op::List => out.push(b'l'),
        Op::Tuple => out.push(b't'),
        Op::Tuple1 => out.push(0x85),
        Op::Tuple2 => out.push(0x86),
        Op::Tuple3 => out.push(0x87),
        Op::FrozenSet => out.push(0x91),
        Op::SetItem => out.push(b's'),
        Op::SetItems => out.push(b'u'),
        Op::Append => out.push(b'a'),
        Op::Appends => out.push(b'e'),
        Op::AddItems => out.push(0x90),
        Op::BinPut(m) => out.extend([b'q', m.key()]),
        Op::LongBinPut(m) => {
            out.push(b'r');
            out.extend((m.key() as u32).to_le_bytes());
        }
        Op::Put(m) => out.extend(format!("p{}\n", m.key()).as_bytes()),
        Op::Memoize => out.push(0x94),
        Op::BinGet(m) => out.extend([b'h', m.key()]),
        Op::LongBinGet(m) => {
            out.push(b'j');
            out.extend((m.key() as u32).to_le_bytes());
        }
        Op::Get(m) => out.extend(format!("g{}\n", m.key()).as_bytes()),
        Op::Str(t) => binunicode(out, t.as_str()),
        Op::ShortStr(t) => {
            let s = t.as_str();
            out.extend([0x8c, s.len() as u8]);
            out.extend(s.as_bytes());
        }
        Op::LongStr { declared, actual } => {
            out.push(b'X');
            out.extend(declared.to_le_bytes());
            out.extend(std::iter::repeat_n(b'a', *actual as usize));
        }
        Op::LongStr8 { declared, actual } => {
            out.push(0x8d);
            out.extend(declared.to_le_bytes());
            out.extend(std::iter::repeat_n(b'a', *actual as usize));
        }
        Op::LongBytes { declared, actual } => {
            out.push(b'B');
            out.extend(declared.to_le_bytes());
            out.extend(std::iter::repeat_n(0u8, *actual as usize));
        }
        Op::ShortBinString(t) => {
            let s = t.as_str();
            out.extend([b'U', s.len() as u8]);
            out.extend(s.as_bytes());
        }
        Op::TextUnicode(t) => {
            out.push(b'V');
            out.extend(t.as_str().replace('\n', "\\u000a").as_bytes());
            out.push(b'\n');
        }
        Op::TextString(t) => {
            out.extend(b"S'");
            out.extend(t.as_str().replace('\n', " ").as_bytes());
            out.extend(b"'\n");
        }
        Op::Global(g) => global(out, *g),
        Op::StackGlobal(g) => {
            let (module, name) = g.parts();
            binunicode(out, module);
            binunicode(out, name);
            out.push(0x93);
        }
        Op::Inst(g) => {
            let (module, name) = g.parts();
            out.push(b'i');
            out.extend(module.as_bytes());
            out.push(b'\n');
            out.extend(name.as_bytes());
            out.push(b'\n');
        }
        Op::Obj => out.push(b'o'),
        Op::Reduce => out.push(b'R'),
        Op::NewObj => out.push(0x81),
        Op::NewObjEx => out.push(0x92),
        Op::Build => out.push(b'b'),
        Op::BinPersId => out.push(b'Q'),
        Op::PersId(t) => {
            out.push(b'P');
            out.extend(t.as_str().replace('\n', " ").as_bytes());
            out.push(b'\n');
        }
        Op::BinInt(v) => {
            out.push(b'J');
            out.extend((v.value() as i32).to_le_bytes());
        }
        Op::BinInt1(v) => out.extend([b'K', *v]),
        Op::BinInt2(v) => {
            out.push(b'M');
            out.extend(v.to_le_bytes());
        }
        Op::Long1(v) => long1(out, v.value()),
        Op::Long1Wide(n) => {
            let n = 17 + (n % 16);
            out.extend([0x8a, n]);
            out.extend(std::iter::repeat_n(0x7fu8, n as usize));
        }
        Op::Long4(v) => {
            let b = v.value().to_le_bytes();
            out.push(0x8b);
            out.extend(16u32.to_le_bytes());
            out.extend(b);
        }
        Op::TextInt(v) => out.extend(format!("I{}\n", v.value()).as_bytes()),
        Op::BinFloat(v) => {
            out.push(b'G');
            out.extend(v.to_be_bytes());
        }
        Op::Tensor(t) => tensor(out, t),
        Op::Stop => out.push(b'.'),
        Op::Raw(b) => out.push(*b),
    }
}

/// How a listed storage's element count (legacy header) relates to its bytes.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Count {
    Floats,
    Halves,
    Doubles,
    Bytes,
    Edge(Int),
}

#[derive(Arbitrary, Debug, Clone)]
struct Storage {
    key: Text,
    count: Count,
    /// Filled with this byte (0 is finite in every dtype; ff.. is NaN).
    fill: u8,
    len: u16,
}

/// The storages after the pickle (legacy) or in `archive/data/` (zip).
#[derive(Arbitrary, Debug, Clone)]
enum Storages {
    /// One per storage key the tensors of the body declare, as long as they declare (up to
    /// 64 KiB), filled with `fill`.
    Declared { fill: u8, extra: Vec<Storage> },
    Listed(Vec<Storage>),
}

/// A value in the state dict skeleton.
#[derive(Arbitrary, Debug, Clone)]
enum Value {
    Tensor(Box<Tensor>),
    /// A memoized value again (a tensor or dict shared under two names).
    Get(Memo),
    Ops(Vec<Op>),
}

#[derive(Arbitrary, Debug, Clone)]
struct Item {
    key: Text,
    value: Value,
    /// BINPUT after the value.
    put: Option<Memo>,
}

#[derive(Arbitrary, Debug, Clone)]
enum Body {
    /// Opcodes only, after an optional PROTO 2 and before an optional STOP.
    Ops { proto: bool, ops: Vec<Op>, stop: bool },
    /// `{key: value, ...}` as torch writes a state dict, optionally inside `{wrapper: ...}`
    /// (`model`, `state_dict`), with opcodes spliced in before the final STOP.
    Dict { wrapper: Option<Text>, ordered: bool, items: Vec<Item>, tail: Vec<Op> },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Container {
    Legacy,
    Zip,
    /// `data.pkl` at the zip's top level, no prefix.
    ZipNoPrefix,
}

#[derive(Arbitrary, Debug)]
struct Input {
    container: Container,
    body: Body,
    storages: Storages,
    /// Legacy: the sys-info dict's `little_endian`; zip: an `archive/byteorder` entry.
    little_endian: Option<bool>,
    /// Legacy: the storage key list names keys the storages section does not hold.
    extra_keys: Vec<Text>,
}

fn payload(body: &Body) -> Vec<u8> {
    let mut out = Vec::new();
    match body {
        Body::Ops { proto, ops, stop } => {
            if *proto {
                out.extend([0x80, 0x02]);
            }
            for o in ops.iter().take(4096) {
                op(&mut out, o);
            }
            if *stop {
                out.push(b'.');
            }
        }
        Body::Dict { wrapper, ordered, items, tail } => {
            out.extend([0x80, 0x02]);
            if let Some(w) = wrapper {
                out.push(b'}');
                binunicode(&mut out, w.as_str());
            }
            if *ordered {
                global(&mut out, Global::OrderedDict);
                out.extend(b")R");
            } else {
                out.push(b'}');
            }
            out.push(b'(');
            for item in items.iter().take(64) {
                binunicode(&mut out, item.key.as_str());
                match &item.value {
                    Value::Tensor(t) => tensor(&mut out, t),
                    Value::Get(m) => out.extend([b'h', m.key()]),
                    Value::Ops(ops) => {
                        for o in ops.iter().take(256) {
                            op(&mut out, o);
                        }
                    }
                }
                if let Some(m) = item.put {
                    out.extend([b'q', m.key()]);
                }
            }
            out.push(b'u');
            if wrapper.is_some() {
                out.push(b's');
            }
            for o in tail.iter().take(256) {
                op(&mut out, o);
            }
            out.push(b'.');
        }
    }
    out
}

fn dtype_size(g: Global) -> u64 {
    match g {
        Global::DoubleStorage | Global::LongStorage => 8,
        Global::HalfStorage | Global::BFloat16Storage => 2,
        Global::ByteStorage | Global::BoolStorage => 1,
        _ => 4,
    }
}

/// (key, legacy element count, bytes) of each storage to write.
fn storages(input: &Input) -> Vec<(String, u64, Vec<u8>)> {
    let listed = |list: &[Storage]| -> Vec<(String, u64, Vec<u8>)> {
        list.iter()
            .take(16)
            .map(|s| {
                let bytes = vec![s.fill; (s.len % 8192) as usize];
                let count = match s.count {
                    Count::Floats => bytes.len() as u64 / 4,
                    Count::Halves => bytes.len() as u64 / 2,
                    Count::Doubles => bytes.len() as u64 / 8,
                    Count::Bytes => bytes.len() as u64,
                    Count::Edge(v) => v.value() as u64,
                };
                (s.key.as_str().to_owned(), count, bytes)
            })
            .collect()
    };
    match &input.storages {
        Storages::Listed(list) => listed(list),
        Storages::Declared { fill, extra } => {
            let mut out: Vec<(String, u64, Vec<u8>)> = Vec::new();
            if let Body::Dict { items, .. } = &input.body {
                for item in items.iter().take(64) {
                    let Value::Tensor(t) = &item.value else { continue };
                    let key = t.key.as_str();
                    if out.iter().any(|(k, _, _)| k == key) {
                        continue;
                    }
                    let numel = u64::try_from(t.numel.value()).unwrap_or(0);
                    let len = numel.saturating_mul(dtype_size(t.storage_type)).min(1 << 16);
                    out.push((key.to_owned(), numel, vec![*fill; len as usize]));
                }
            }
            out.extend(listed(extra));
            out
        }
    }
}

fn legacy(input: &Input, pkl: &[u8]) -> Vec<u8> {
    let mut out = b"\x80\x02\x8a\x0a".to_vec();
    out.extend(&0x1950a86a20f9469cfc6c_u128.to_le_bytes()[..10]);
    out.extend(b".\x80\x02M\xe9\x03.");
    // sys info
    out.extend(b"\x80\x02}");
    if let Some(le) = input.little_endian {
        out.push(b'(');
        binunicode(&mut out, "protocol_version");
        out.extend(b"M\xe9\x03");
        binunicode(&mut out, "little_endian");
        out.push(if le { 0x88 } else { 0x89 });
        out.push(b'u');
    }
    out.push(b'.');
    out.extend(pkl);
    // storage key list
    let storages = storages(input);
    out.extend(b"\x80\x02](");
    for (key, _, _) in &storages {
        binunicode(&mut out, key);
    }
    for k in input.extra_keys.iter().take(4) {
        binunicode(&mut out, k.as_str());
    }
    out.extend(b"e.");
    for (_, count, bytes) in storages {
        out.extend(count.to_le_bytes());
        out.extend(bytes);
    }
    out
}

fn torch_zip(input: &Input, pkl: &[u8], prefix: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    let add = |w: &mut zip::ZipWriter<Cursor<Vec<u8>>>, name: &str, data: &[u8]| {
        if w.start_file(name, opts).is_ok() {
            let _ = w.write_all(data);
        }
    };
    add(&mut w, &format!("{prefix}data.pkl"), pkl);
    add(&mut w, &format!("{prefix}version"), b"3\n");
    if let Some(le) = input.little_endian {
        add(&mut w, &format!("{prefix}byteorder"), if le { b"little" } else { b"big" });
    }
    for (key, _, bytes) in storages(input) {
        add(&mut w, &format!("{prefix}data/{key}"), &bytes);
    }
    match w.finish() {
        Ok(c) => c.into_inner(),
        Err(_) => Vec::new(),
    }
}

fuzz_target!(|input: Input| {
    let pkl = payload(&input.body);
    let bytes = match input.container {
        Container::Legacy => legacy(&input, &pkl),
        Container::Zip => torch_zip(&input, &pkl, "archive/"),
        Container::ZipNoPrefix => torch_zip(&input, &pkl, ""),
    };
    if !bytes.is_empty() {
        let _ = salient_engine::StateDict::from_bytes("fuzz.pt", &bytes);
    }
});
