//! A Python pickle reader that never executes anything.
//!
//! Pickles are programs for a small stack machine whose `GLOBAL` + `REDUCE` opcodes call
//! arbitrary Python functions. This reader runs the stack machine but replaces every call with
//! an inert [`Node::Call`] record: `torch._utils._rebuild_tensor_v2(...)` becomes data that
//! [`super::torch`] interprets, and `os.system(...)` becomes data nobody looks at.
//!
//! Objects live in an arena ([`Pickle::nodes`]) and the stack, memo and containers hold ids, so
//! the sharing semantics of Python references (a dict memoized, then filled by `SETITEMS`)
//! are preserved. Every opcode creates at most one node, so memory is linear in the input and
//! bounded by [`MAX_NODES`].

use std::collections::HashMap;

/// Index of a node in [`Pickle::nodes`].
pub type Id = usize;

/// More objects than any real checkpoint pickle holds (a ResNet-50 with optimizer state has
/// about 10⁴); bounds memory on hostile input.
pub const MAX_NODES: usize = 8_000_000;

/// One Python object, as far as a reader that executes nothing can know it.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    None,
    Bool(bool),
    /// Integers up to 128 bits (torch's magic number needs 80).
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    /// A reference to a Python global (`module.name`), never imported.
    Global {
        module: String,
        name: String,
    },
    /// A call that was *not* performed: `callable(*args)`, with the state a later `BUILD` gave it.
    Call {
        callable: Id,
        args: Id,
        state: Option<Id>,
    },
    /// A persistent id (torch uses them to point at tensor storages outside the pickle).
    Persistent(Id),
    /// A value this reader does not represent (e.g. an integer wider than 128 bits).
    Opaque(&'static str),
}

/// A parsed pickle: the object arena and the id of the value `STOP` returned.
#[derive(Debug, Clone)]
pub struct Pickle {
    pub nodes: Vec<Node>,
    pub root: Id,
}

/// Where and why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    /// Byte offset of the opcode at fault, from the start of the pickle.
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for PickleError {}

impl Pickle {
    pub fn get(&self, id: Id) -> &Node {
        &self.nodes[id]
    }

    /// The string a node holds, if it is one.
    pub fn as_str(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self, id: Id) -> Option<i128> {
        match self.get(id) {
            Node::Int(i) => Some(*i),
            Node::Bool(b) => Some(*b as i128),
            _ => None,
        }
    }

    /// Items of a tuple or list.
    pub fn as_seq(&self, id: Id) -> Option<&[Id]> {
        match self.get(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    /// Looks `key` up in a dict node with string keys.
    pub fn dict_get(&self, dict: Id, key: &str) -> Option<Id> {
        match self.get(dict) {
            Node::Dict(items) => items.iter().find(|(k, _)| self.as_str(*k) == Some(key)).map(|(_, v)| *v),
            _ => None,
        }
    }

    /// `(module, name)` of a global node.
    pub fn as_global(&self, id: Id) -> Option<(&str, &str)> {
        match self.get(id) {
            Node::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }
}

/// Parses one pickle from the start of `bytes`, stopping at its `STOP` opcode.
/// Returns the pickle and the number of bytes it occupied (torch's legacy format stores
/// several pickles back to back).
pub fn parse(bytes: &[u8]) -> Result<(Pickle, usize), PickleError> {
    Machine::new(bytes).run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed, for error messages.
    op_start: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            op_start: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError { offset: self.op_start, message: message.into() })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.bytes.len() => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => {
                self.err(format!("the pickle is truncated: needs {n} more bytes, {} left", self.bytes.len() - self.pos))
            }
        }
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
    fn len_u64(&mut self) -> Result<usize, PickleError> {
        let n = self.u64()?;
        usize::try_from(n).or_else(|_| self.err(format!("length {n} does not fit in memory")))
    }

    /// A `\n`-terminated line (text opcodes of protocol 0), without the newline.
    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.bytes[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => self.err("the pickle is truncated inside a text line"),
        }
    }

    fn utf8(&self, b: &[u8]) -> Result<String, PickleError> {
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => self.err(format!("invalid UTF-8 in a string ({e})")),
        }
    }

    fn push_node(&mut self, node: Node) -> Result<(), PickleError> {
        if self.nodes.len() >= MAX_NODES {
            return self.err(format!("the pickle holds more than {MAX_NODES} objects"));
        }
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
        Ok(())
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        match self.stack.pop() {
            Some(id) => Ok(id),
            None => self.err("stack underflow (malformed pickle)"),
        }
    }

    fn top(&self) -> Result<Id, PickleError> {
        match self.stack.last() {
            Some(id) => Ok(*id),
            None => self.err("stack underflow (malformed pickle)"),
        }
    }

    /// Pops everything above the most recent MARK.
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return self.err("MARK expected but none is set (malformed pickle)");
        };
        if mark > self.stack.len() {
            return self.err("MARK points past the stack (malformed pickle)");
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => self.err(format!("memo key {key} was never stored (malformed pickle)")),
        }
    }

    fn text_u64(&self, line: &[u8]) -> Result<u64, PickleError> {
        match std::str::from_utf8(line).ok().and_then(|s| s.trim().parse().ok()) {
            Some(v) => Ok(v),
            None => self.err("expected a decimal number"),
        }
    }

    fn add_items(&mut self, target: Id, items: Vec<Id>) -> Result<(), PickleError> {
        match &mut self.nodes[target] {
            Node::List(v) | Node::Set(v) => v.extend(items),
            // Appending to an object whose class we did not run (a list subclass): ignored.
            Node::Call { .. } | Node::Opaque(_) => {}
            other => {
                let kind = kind_name(other);
                return self.err(format!("cannot append items to a {kind}"));
            }
        }
        Ok(())
    }

    fn set_items(&mut self, target: Id, items: Vec<Id>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.err("SETITEMS needs key/value pairs");
        }
        match &mut self.nodes[target] {
            Node::Dict(d) => d.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1]))),
            Node::Call { .. } | Node::Opaque(_) => {}
            other => {
                let kind = kind_name(other);
                return self.err(format!("cannot set items on a {kind}"));
            }
        }
        Ok(())
    }

    /// `callable(*args)` without calling: a few constructors of plain containers become the
    /// container (so `SETITEMS` can fill an `OrderedDict`), everything else an inert record.
    fn call(&mut self, callable: Id, args: Id) -> Result<(), PickleError> {
        let empty_args = matches!(&self.nodes[args], Node::Tuple(a) if a.is_empty());
        let node = match &self.nodes[callable] {
            Node::Global { module, name } if empty_args => match (module.as_str(), name.as_str()) {
                ("collections", "OrderedDict") | ("builtins" | "__builtin__", "dict") => Node::Dict(Vec::new()),
                ("builtins" | "__builtin__", "list") => Node::List(Vec::new()),
                ("builtins" | "__builtin__", "set") => Node::Set(Vec::new()),
                _ => Node::Call { callable, args, state: None },
            },
            _ => Node::Call { callable, args, state: None },
        };
        self.push_node(node)
    }

    fn run(mut self) -> Result<(Pickle, usize), PickleError> {
        loop {
            self.op_start = self.pos;
            if self.pos >= self.bytes.len() {
                return self.err("the pickle ends without a STOP opcode (truncated file?)");
            }
            let op = self.u8()?;
            match op {
                // PROTO
                0x80 => {
                    let v = self.u8()?;
                    if v > 5 {
                        return self.err(format!("unsupported pickle protocol {v}"));
                    }
                }
                // FRAME: a length hint only.
                0x95 => {
                    self.u64()?;
                }
                // STOP
                b'.' => {
                    let root = self.pop()?;
                    return Ok((Pickle { nodes: self.nodes, root }, self.pos));
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                b'N' => self.push_node(Node::None)?,
                0x88 => self.push_node(Node::Bool(true))?,
                0x89 => self.push_node(Node::Bool(false))?,
                // BININT, BININT1, BININT2
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push_node(Node::Int(v as i128))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push_node(Node::Int(v as i128))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push_node(Node::Int(v as i128))?
                }
                // LONG1, LONG4: little-endian two's complement
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.push_node(long_from_bytes(b))?
                }
                0x8b => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.push_node(long_from_bytes(b))?
                }
                // INT, LONG (text)
                b'I' | b'L' => {
                    let line = self.line()?;
                    let text = String::from_utf8_lossy(line);
                    let text = text.trim().trim_end_matches('L');
                    let node = match text {
                        "00" => Node::Bool(false),
                        "01" => Node::Bool(true),
                        t => match t.parse::<i128>() {
                            Ok(v) => Node::Int(v),
                            Err(_) if t.bytes().all(|c| c.is_ascii_digit() || c == b'-') => {
                                Node::Opaque("integer wider than 128 bits")
                            }
                            Err(_) => return self.err(format!("invalid integer literal {t:?}")),
                        },
                    };
                    self.push_node(node)?
                }
                // BINFLOAT (big-endian), FLOAT (text)
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().unwrap_or_default());
                    self.push_node(Node::Float(v))?
                }
                b'F' => {
                    let line = self.line()?;
                    match std::str::from_utf8(line).ok().and_then(|s| s.trim().parse().ok()) {
                        Some(v) => self.push_node(Node::Float(v))?,
                        None => return self.err("invalid float literal"),
                    }
                }
                // Strings: BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let s = self.utf8(b)?;
                    self.push_node(Node::Str(s))?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let s = self.utf8(b)?;
                    self.push_node(Node::Str(s))?
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?;
                    let s = self.utf8(b)?;
                    self.push_node(Node::Str(s))?
                }
                // UNICODE (text, raw-unicode-escape)
                b'V' => {
                    let line = self.line()?;
                    let s = raw_unicode_unescape(line);
                    self.push_node(Node::Str(s))?
                }
                // Python 2 byte strings: BINSTRING, SHORT_BINSTRING (read as latin-1 text, as
                // torch's loader does with encoding='latin1'), STRING (text, quoted repr).
                b'T' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    self.push_node(Node::Str(b.iter().map(|&c| c as char).collect()))?
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.push_node(Node::Str(b.iter().map(|&c| c as char).collect()))?
                }
                b'S' => {
                    let line = self.line()?;
                    let s = match line {
                        [q, inner @ .., q2] if (*q == b'\'' || *q == b'"') && q == q2 => {
                            inner.iter().map(|&c| c as char).collect()
                        }
                        _ => return self.err("STRING opcode without quotes"),
                    };
                    self.push_node(Node::Str(s))?
                }
                // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push_node(Node::Bytes(b))?
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push_node(Node::Bytes(b))?
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    let b = self.take(n)?.to_vec();
                    self.push_node(Node::Bytes(b))?
                }
                // Containers
                b']' => self.push_node(Node::List(Vec::new()))?,
                b')' => self.push_node(Node::Tuple(Vec::new()))?,
                b'}' => self.push_node(Node::Dict(Vec::new()))?,
                0x8f => self.push_node(Node::Set(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::List(items))?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return self.err("stack underflow (malformed pickle)");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_node(Node::Tuple(items))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.err("DICT needs key/value pairs");
                    }
                    let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect();
                    self.push_node(Node::Dict(pairs))?
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push_node(Node::Set(items))?
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.add_items(list, vec![item])?
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.add_items(target, items)?
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![key, value])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, items)?
                }
                // Memo: PUT, BINPUT, LONG_BINPUT, MEMOIZE, GET, BINGET, LONG_BINGET
                b'p' => {
                    let line = self.line()?;
                    let k = self.text_u64(line)?;
                    self.memo_put(k)?
                }
                b'q' => {
                    let k = self.u8()? as u64;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.u32()? as u64;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?
                }
                b'g' => {
                    let line = self.line()?;
                    let k = self.text_u64(line)?;
                    self.memo_get(k)?
                }
                b'h' => {
                    let k = self.u8()? as u64;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.u32()? as u64;
                    self.memo_get(k)?
                }
                // GLOBAL (text), STACK_GLOBAL: recorded, never imported.
                b'c' => {
                    let module = String::from_utf8_lossy(self.line()?).into_owned();
                    let name = String::from_utf8_lossy(self.line()?).into_owned();
                    self.push_node(Node::Global { module, name })?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Node::Str(module), Node::Str(name)) = (&self.nodes[module], &self.nodes[name]) else {
                        return self.err("STACK_GLOBAL needs two strings");
                    };
                    let node = Node::Global { module: module.clone(), name: name.clone() };
                    self.push_node(node)?
                }
                // REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST: recorded, never called.
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.call(callable, args)?
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.call(callable, args)?
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return self.err("OBJ without a class");
                    }
                    let callable = items.remove(0);
                    self.push_node(Node::Tuple(items))?;
                    let args = self.pop()?;
                    self.call(callable, args)?
                }
                b'i' => {
                    let module = String::from_utf8_lossy(self.line()?).into_owned();
                    let name = String::from_utf8_lossy(self.line()?).into_owned();
                    let items = self.pop_mark()?;
                    self.push_node(Node::Global { module, name })?;
                    let callable = self.pop()?;
                    self.push_node(Node::Tuple(items))?;
                    let args = self.pop()?;
                    self.call(callable, args)?
                }
                // BUILD: attach state to the object (never runs __setstate__).
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    if let Node::Call { state: s, .. } = &mut self.nodes[target] {
                        *s = Some(state);
                    }
                }
                // PERSID (text), BINPERSID
                b'P' => {
                    let line = self.line()?;
                    let s = String::from_utf8_lossy(line).into_owned();
                    self.push_node(Node::Str(s))?;
                    let id = self.pop()?;
                    self.push_node(Node::Persistent(id))?
                }
                b'Q' => {
                    let id = self.pop()?;
                    self.push_node(Node::Persistent(id))?
                }
                0x82..=0x84 => return self.err("extension-registry opcodes (EXT) are not supported"),
                0x97 | 0x98 => return self.err("out-of-band buffers (pickle protocol 5) are not supported"),
                other => return self.err(format!("unknown opcode 0x{other:02x}: not a pickle, or a corrupt one")),
            }
        }
    }
}

fn kind_name(node: &Node) -> &'static str {
    match node {
        Node::None => "None",
        Node::Bool(_) => "bool",
        Node::Int(_) => "int",
        Node::Float(_) => "float",
        Node::Str(_) => "str",
        Node::Bytes(_) => "bytes",
        Node::List(_) => "list",
        Node::Tuple(_) => "tuple",
        Node::Dict(_) => "dict",
        Node::Set(_) => "set",
        Node::Global { .. } => "global",
        Node::Call { .. } => "object",
        Node::Persistent(_) => "persistent id",
        Node::Opaque(_) => "value",
    }
}

/// Python's `int.from_bytes(b, 'little', signed=True)`.
fn long_from_bytes(b: &[u8]) -> Node {
    if b.is_empty() {
        return Node::Int(0);
    }
    if b.len() > 16 {
        return Node::Opaque("integer wider than 128 bits");
    }
    let negative = b[b.len() - 1] & 0x80 != 0;
    let mut buf = [if negative { 0xff } else { 0 }; 16];
    buf[..b.len()].copy_from_slice(b);
    Node::Int(i128::from_le_bytes(buf))
}

/// Decodes Python's raw-unicode-escape: bytes are latin-1, except `\uXXXX` and `\UXXXXXXXX`.
fn raw_unicode_unescape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let width = match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        let escaped = (width > 0)
            .then(|| b.get(i + 2..i + 2 + width))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match escaped {
            Some(c) => {
                out.push(c);
                i += 2 + width;
            }
            None => {
                out.push(b[i] as char);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(bytes: &[u8]) -> (Pickle, Node) {
        let (p, _) = parse(bytes).expect("parses");
        let n = p.get(p.root).clone();
        (p, n)
    }

    #[test]
    fn reads_protocol2_dict_with_shared_reference() {
        // pickle.dumps({'a': [1, 2], 'b': 'x'}, protocol=2)
        let bytes =
            b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02eX\x01\x00\x00\x00bq\x03X\x01\x00\x00\x00xq\x04u.";
        let (p, node) = root(bytes);
        let Node::Dict(items) = node else { panic!("not a dict") };
        assert_eq!(items.len(), 2);
        let a = p.dict_get(p.root, "a").unwrap();
        assert_eq!(p.as_seq(a).unwrap().len(), 2);
        assert_eq!(p.as_str(p.dict_get(p.root, "b").unwrap()), Some("x"));
    }

    #[test]
    fn torch_magic_number_is_an_80_bit_long() {
        // pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
        let bytes = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";
        let (_, node) = root(bytes);
        assert_eq!(node, Node::Int(0x1950a86a20f9469cfc6c));
    }

    #[test]
    fn reduce_is_recorded_not_called() {
        // pickle.dumps(os.system('echo pwned')) as an attacker would write it (protocol 0).
        let bytes = b"cos\nsystem\n(S'echo pwned'\ntR.";
        let (p, node) = root(bytes);
        let Node::Call { callable, .. } = node else { panic!("not a call") };
        assert_eq!(p.as_global(callable), Some(("os", "system")));
    }

    #[test]
    fn malformed_input_is_an_error_with_offset() {
        assert_eq!(parse(b"\x80\x02K").unwrap_err().offset, 2);
        assert!(parse(b"\x80\x02e.").unwrap_err().message.contains("MARK"));
        assert!(parse(b"\x00garbage").unwrap_err().message.contains("unknown opcode 0x00"));
        assert!(parse(b"").unwrap_err().message.contains("STOP"));
        assert!(parse(b"\x80\x02h\x05.").unwrap_err().message.contains("memo"));
        // BINUNICODE claiming 4 GiB.
        assert!(parse(b"X\xff\xff\xff\xff").unwrap_err().message.contains("truncated"));
    }

    #[test]
    fn ordered_dict_is_filled_by_setitems() {
        // pickle.dumps(OrderedDict(a=1), protocol=2)
        let bytes = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00aq\x02K\x01s.";
        let (p, _) = root(bytes);
        assert_eq!(p.as_int(p.dict_get(p.root, "a").unwrap()), Some(1));
    }
}
