//! Structure-aware: a safetensors file from an arbitrary header (tensor names of a ResNet and
//! random ones, dtypes, shapes at the edges, data offsets near-valid or random, `__metadata__`
//! with Salient's keys: salient.view, salient.class_names, salient.normalize.mean/std),
//! arbitrary header padding and length, and a data section of a chosen length. Must return Ok
//! or a clear error, never panic, hang or allocate beyond what the bytes present justify.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone)]
enum TName {
    Conv1Weight,
    FcWeight,
    FcBias,
    Bn1RunningVar,
    Bn1RunningMean,
    Layer1Conv1Weight,
    ModuleConv1Weight,
    ModuleModelConv1Weight,
    ModuleNormalizerNewMean,
    ModuleNormalizerNewStd,
    ModuleAttackerModelFcBias,
    Metadata,
    Empty,
    Other(String),
}

impl TName {
    fn text(&self) -> String {
        match self {
            TName::Conv1Weight => "conv1.weight".into(),
            TName::FcWeight => "fc.weight".into(),
            TName::FcBias => "fc.bias".into(),
            TName::Bn1RunningVar => "bn1.running_var".into(),
            TName::Bn1RunningMean => "bn1.running_mean".into(),
            TName::Layer1Conv1Weight => "layer1.0.conv1.weight".into(),
            TName::ModuleConv1Weight => "module.conv1.weight".into(),
            TName::ModuleModelConv1Weight => "module.model.conv1.weight".into(),
            TName::ModuleNormalizerNewMean => "module.normalizer.new_mean".into(),
            TName::ModuleNormalizerNewStd => "module.normalizer.new_std".into(),
            TName::ModuleAttackerModelFcBias => "module.attacker.model.fc.bias".into(),
            TName::Metadata => "__metadata__".into(),
            TName::Empty => String::new(),
            TName::Other(s) => s.chars().take(40).collect(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum DT {
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
    U64,
    F8E4M3,
    F4,
    C64,
    Lower,
    Unknown,
}

impl DT {
    fn text(self) -> &'static str {
        match self {
            DT::F32 => "F32",
            DT::F64 => "F64",
            DT::F16 => "F16",
            DT::BF16 => "BF16",
            DT::I64 => "I64",
            DT::I32 => "I32",
            DT::I16 => "I16",
            DT::I8 => "I8",
            DT::U8 => "U8",
            DT::Bool => "BOOL",
            DT::U64 => "U64",
            DT::F8E4M3 => "F8_E4M3",
            DT::F4 => "F4",
            DT::C64 => "C64",
            DT::Lower => "f32",
            DT::Unknown => "Q4",
        }
    }

    /// Bits per element as safetensors counts them (4 for F4).
    fn bits(self) -> u64 {
        match self {
            DT::F64 | DT::I64 | DT::U64 | DT::C64 => 64,
            DT::F32 | DT::I32 => 32,
            DT::F16 | DT::BF16 | DT::I16 => 16,
            DT::I8 | DT::U8 | DT::Bool | DT::F8E4M3 => 8,
            DT::F4 => 4,
            DT::Lower | DT::Unknown => 32,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Dim {
    Zero,
    One,
    Three,
    Four,
    Small(u8),
    Medium(u16),
    ElementLimit,
    I32Max,
    U32Max,
    Pow62,
    /// The most elements of this dtype whose size in bits still fits in a u64.
    MaxForDtype,
    U64Max,
    Negative,
    Float,
    Any(u64),
}

impl Dim {
    /// JSON text and value (None when not an unsigned integer).
    fn json(self, dt: DT) -> (String, Option<u64>) {
        let v = match self {
            Dim::Zero => 0,
            Dim::One => 1,
            Dim::Three => 3,
            Dim::Four => 4,
            Dim::Small(v) => v as u64,
            Dim::Medium(v) => v as u64,
            Dim::ElementLimit => 1 << 28,
            Dim::I32Max => i32::MAX as u64,
            Dim::U32Max => u32::MAX as u64,
            Dim::Pow62 => 1 << 62,
            Dim::MaxForDtype => u64::MAX / dt.bits(),
            Dim::U64Max => u64::MAX,
            Dim::Negative => return ("-1".into(), None),
            Dim::Float => return ("1.5".into(), None),
            Dim::Any(v) => v,
        };
        (v.to_string(), Some(v))
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Offsets {
    /// Right after the previous tensor, exactly as long as the shape needs.
    Packed,
    /// Packed, the end moved by a few bytes.
    EndDelta(i8),
    /// Packed, the start moved by a few bytes.
    StartDelta(i8),
    /// Start and end swapped.
    Swapped,
    /// The previous tensor's range again.
    SameAsPrevious,
    Value(u32, u32),
    Huge(u64, u64),
    /// A list of three offsets, or one.
    Three,
    One,
    Missing,
}

#[derive(Arbitrary, Debug, Clone)]
struct Tensor {
    name: TName,
    dtype: DT,
    shape: Vec<Dim>,
    offsets: Offsets,
    /// Fields in another order, or an extra field.
    offsets_first: bool,
    extra_field: bool,
}

#[derive(Arbitrary, Debug, Clone)]
enum MetaKey {
    View,
    ClassNames,
    Mean,
    Std,
    Format,
    Other(String),
}

#[derive(Arbitrary, Debug, Clone)]
enum MetaValue {
    View(u16, u16),
    ViewText(String),
    /// A JSON list of names, as a string.
    ClassNames(Vec<String>),
    /// `n` class names each `len` bytes long.
    ManyClassNames { n: u16, len: u16, control: bool },
    Floats(Vec<f32>),
    ThreeFloats([f32; 3]),
    Text(String),
    /// Not a string: a number or an object, which the metadata map does not allow.
    Number(i64),
    Object,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl MetaValue {
    fn json(&self) -> String {
        match self {
            MetaValue::View(r, c) => json_str(&format!("{r},{c}")),
            MetaValue::ViewText(s) => json_str(&s.chars().take(64).collect::<String>()),
            MetaValue::ClassNames(names) => {
                let names: Vec<String> = names.iter().take(32).map(|n| n.chars().take(300).collect()).collect();
                json_str(&serde_json::to_string(&names).unwrap_or_default())
            }
            MetaValue::ManyClassNames { n, len, control } => {
                let name: String = if *control { "\u{7}".into() } else { "x".repeat((*len % 300) as usize) };
                let list = format!("[{}]", vec![json_str(&name); (*n % 512) as usize].join(","));
                json_str(&list)
            }
            MetaValue::Floats(v) => {
                json_str(&v.iter().take(8).map(|f| f.to_string()).collect::<Vec<_>>().join(","))
            }
            MetaValue::ThreeFloats(v) => json_str(&format!("{},{},{}", v[0], v[1], v[2])),
            MetaValue::Text(s) => json_str(&s.chars().take(128).collect::<String>()),
            MetaValue::Number(v) => v.to_string(),
            MetaValue::Object => "{}".into(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum HeaderLen {
    Actual,
    Delta(i8),
    Value(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum DataLen {
    /// What the offsets describe (when that is at most 1 MiB).
    Exact,
    Delta(i8),
    Value(u16),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Fill {
    Zeros,
    Ones,
    Byte(u8),
    Counting,
}

#[derive(Arbitrary, Debug)]
struct Input {
    tensors: Vec<Tensor>,
    metadata: Option<Vec<(MetaKey, MetaValue)>>,
    metadata_first: bool,
    /// Spaces after the JSON (the format pads headers to 8 bytes with spaces).
    padding: u8,
    /// Bytes appended to the header that are not JSON whitespace.
    junk: Vec<u8>,
    header_len: HeaderLen,
    data_len: DataLen,
    fill: Fill,
}

fn build(input: &Input) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut cursor: u64 = 0;
    let mut previous = (0u64, 0u64);
    for t in input.tensors.iter().take(16) {
        let mut dims = Vec::new();
        let mut elements: Option<u64> = Some(1);
        for d in t.shape.iter().take(6) {
            let (text, v) = d.json(t.dtype);
            dims.push(text);
            elements = match (elements, v) {
                (Some(a), Some(b)) => a.checked_mul(b),
                _ => None,
            };
        }
        let bytes = elements.and_then(|n| n.checked_mul(t.dtype.bits())).map(|b| b.div_ceil(8)).unwrap_or(0);
        let packed = (cursor, cursor.wrapping_add(bytes));
        let offsets = match t.offsets {
            Offsets::Packed => Some(format!("[{},{}]", packed.0, packed.1)),
            Offsets::EndDelta(d) => Some(format!("[{},{}]", packed.0, packed.1.wrapping_add(d as i64 as u64))),
            Offsets::StartDelta(d) => Some(format!("[{},{}]", packed.0.wrapping_add(d as i64 as u64), packed.1)),
            Offsets::Swapped => Some(format!("[{},{}]", packed.1, packed.0)),
            Offsets::SameAsPrevious => Some(format!("[{},{}]", previous.0, previous.1)),
            Offsets::Value(a, b) => Some(format!("[{a},{b}]")),
            Offsets::Huge(a, b) => Some(format!("[{a},{b}]")),
            Offsets::Three => Some(format!("[{},{},{}]", packed.0, packed.1, packed.1)),
            Offsets::One => Some(format!("[{}]", packed.1)),
            Offsets::Missing => None,
        };
        previous = packed;
        cursor = packed.1;
        let mut parts = vec![
            format!("\"dtype\":{}", json_str(t.dtype.text())),
            format!("\"shape\":[{}]", dims.join(",")),
        ];
        if let Some(o) = offsets {
            let o = format!("\"data_offsets\":{o}");
            if t.offsets_first {
                parts.insert(0, o);
            } else {
                parts.push(o);
            }
        }
        if t.extra_field {
            parts.push("\"extra\":1".into());
        }
        fields.push(format!("{}:{{{}}}", json_str(&t.name.text()), parts.join(",")));
    }
    if let Some(meta) = &input.metadata {
        let items: Vec<String> = meta
            .iter()
            .take(8)
            .map(|(k, v)| {
                let key = match k {
                    MetaKey::View => "salient.view".to_owned(),
                    MetaKey::ClassNames => "salient.class_names".to_owned(),
                    MetaKey::Mean => "salient.normalize.mean".to_owned(),
                    MetaKey::Std => "salient.normalize.std".to_owned(),
                    MetaKey::Format => "format".to_owned(),
                    MetaKey::Other(s) => s.chars().take(32).collect(),
                };
                format!("{}:{}", json_str(&key), v.json())
            })
            .collect();
        let m = format!("\"__metadata__\":{{{}}}", items.join(","));
        if input.metadata_first {
            fields.insert(0, m);
        } else {
            fields.push(m);
        }
    }
    let mut header = format!("{{{}}}", fields.join(",")).into_bytes();
    header.extend(std::iter::repeat_n(b' ', input.padding as usize % 64));
    header.extend(input.junk.iter().take(16));
    let data_len = match input.data_len {
        DataLen::Exact if cursor <= 1 << 20 => cursor as usize,
        DataLen::Exact => 0,
        DataLen::Delta(d) => (cursor.min(1 << 20) as i64 + d as i64).max(0) as usize,
        DataLen::Value(v) => v as usize,
    };
    let header_len = match input.header_len {
        HeaderLen::Actual => header.len() as u64,
        HeaderLen::Delta(d) => (header.len() as u64).wrapping_add(d as i64 as u64),
        HeaderLen::Value(v) => v,
    };
    let mut out = header_len.to_le_bytes().to_vec();
    out.extend(header);
    out.extend((0..data_len).map(|i| match input.fill {
        Fill::Zeros => 0,
        // 1.0 as f32 (00 00 80 3f), which is finite in every float dtype.
        Fill::Ones => [0x00, 0x00, 0x80, 0x3f][i % 4],
        Fill::Byte(b) => b,
        Fill::Counting => i as u8,
    }));
    out
}

fuzz_target!(|input: Input| {
    let bytes = build(&input);
    let _ = salient_engine::StateDict::from_bytes("fuzz.safetensors", &bytes);
});
