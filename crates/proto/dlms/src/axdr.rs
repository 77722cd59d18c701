//! A-XDR encoded COSEM `Data` (IEC 62056-6-2 / Blue Book DLMS UA 1000-1 ed. 15 §4.1.5,
//! encoding per IEC 61334-6 A-XDR, `Data ::= CHOICE` of IEC 62056-5-3).
//!
//! Every value starts with its type tag; arrays, structures and strings carry an A-XDR
//! length (same forms as BER: short, `0x81`–`0x83`). Parsing is bounded:
//! * nesting deeper than [`MAX_DEPTH`] is rejected ([`Error::TooDeep`]);
//! * every length is checked against the bytes that are left, and a value holds at most
//!   [`MAX_VALUES`] values ([`Error::TooManyValues`]), so a corrupted length field cannot
//!   make the parser allocate more than that;
//! * unknown tags are an [`Error::UnknownDataType`] naming the tag and its byte offset.
//!
//! Offsets in errors are relative to the buffer handed to [`parse`] / [`parse_at`].
//!
//! # Decoded once, stored flat, viewed borrowed
//! The parser decodes every value once, depth first, into a flat list kept in a
//! [`Scratch`] that the caller reuses from frame to frame, so decoding allocates nothing
//! once the list has grown to the size of the largest frame. What it returns is a view:
//! [`Data`] borrows the input (strings are slices of it) and the list (the elements of an
//! array or structure are an [`Elements`], which iterates over their part of the list).
//! Everything parsed with a `Scratch` lives until it is used for the next parse.

use core::fmt;

use crate::ber;
use crate::datetime::DateTime;
use crate::error::Error;

/// Maximum nesting depth of arrays/structures (push bodies nest at most three levels).
pub const MAX_DEPTH: usize = 16;

/// Maximum number of values (the value itself and everything nested in it) one parse
/// accepts. Push bodies hold a few hundred.
pub const MAX_VALUES: usize = 1 << 16;

/// A-XDR type tags (Blue Book §4.1.5, table "Data types").
pub mod tag {
    /// null-data
    pub const NULL: u8 = 0;
    /// array
    pub const ARRAY: u8 = 1;
    /// structure
    pub const STRUCTURE: u8 = 2;
    /// boolean
    pub const BOOLEAN: u8 = 3;
    /// bit-string
    pub const BIT_STRING: u8 = 4;
    /// double-long (int32)
    pub const INT32: u8 = 5;
    /// double-long-unsigned (uint32)
    pub const UINT32: u8 = 6;
    /// octet-string
    pub const OCTET_STRING: u8 = 9;
    /// visible-string
    pub const VISIBLE_STRING: u8 = 10;
    /// utf8-string
    pub const UTF8_STRING: u8 = 12;
    /// bcd
    pub const BCD: u8 = 13;
    /// integer (int8)
    pub const INT8: u8 = 15;
    /// long (int16)
    pub const INT16: u8 = 16;
    /// unsigned (uint8)
    pub const UINT8: u8 = 17;
    /// long-unsigned (uint16)
    pub const UINT16: u8 = 18;
    /// compact-array
    pub const COMPACT_ARRAY: u8 = 19;
    /// long64 (int64)
    pub const INT64: u8 = 20;
    /// long64-unsigned (uint64)
    pub const UINT64: u8 = 21;
    /// enum
    pub const ENUM: u8 = 22;
    /// float32
    pub const FLOAT32: u8 = 23;
    /// float64
    pub const FLOAT64: u8 = 24;
    /// date-time (12 bytes)
    pub const DATE_TIME: u8 = 25;
    /// date (5 bytes)
    pub const DATE: u8 = 26;
    /// time (4 bytes)
    pub const TIME: u8 = 27;
    /// dont-care
    pub const DONT_CARE: u8 = 255;
}

/// One COSEM data value, borrowing from the parsed bytes and the [`Scratch`] it was parsed
/// with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Data<'a> {
    /// null-data (0) or dont-care (255).
    Null,
    /// array (1); also the decoded elements of a compact-array (19).
    Array(Elements<'a>),
    /// structure (2).
    Structure(Elements<'a>),
    /// boolean (3).
    Bool(bool),
    /// bit-string (4): number of bits and the bytes holding them (MSB first).
    BitString {
        /// Number of bits.
        bits: usize,
        /// The bytes, `ceil(bits / 8)` of them.
        bytes: &'a [u8],
    },
    /// double-long (5).
    Int32(i32),
    /// double-long-unsigned (6).
    Uint32(u32),
    /// octet-string (9).
    OctetString(&'a [u8]),
    /// visible-string (10), raw bytes.
    VisibleString(&'a [u8]),
    /// utf8-string (12), raw bytes.
    Utf8String(&'a [u8]),
    /// bcd (13), the raw byte.
    Bcd(u8),
    /// integer (15).
    Int8(i8),
    /// long (16).
    Int16(i16),
    /// unsigned (17).
    Uint8(u8),
    /// long-unsigned (18).
    Uint16(u16),
    /// long64 (20).
    Int64(i64),
    /// long64-unsigned (21).
    Uint64(u64),
    /// enum (22).
    Enum(u8),
    /// float32 (23).
    Float32(f32),
    /// float64 (24).
    Float64(f64),
    /// date-time (25).
    DateTime(DateTime),
    /// date (26): only the date fields of the [`DateTime`] are set.
    Date(DateTime),
    /// time (27): only the time fields of the [`DateTime`] are set.
    Time(DateTime),
}

impl<'a> Data<'a> {
    /// The integer value of integer-typed data (int8..uint64, enum excluded).
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            Data::Int8(v) => i128::from(v),
            Data::Int16(v) => i128::from(v),
            Data::Int32(v) => i128::from(v),
            Data::Int64(v) => i128::from(v),
            Data::Uint8(v) => i128::from(v),
            Data::Uint16(v) => i128::from(v),
            Data::Uint32(v) => i128::from(v),
            Data::Uint64(v) => i128::from(v),
            _ => return None,
        })
    }

    /// The bytes of an octet-, visible- or utf8-string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Data::OctetString(b) | Data::VisibleString(b) | Data::Utf8String(b) => Some(b),
            _ => None,
        }
    }

    /// The elements of an array or structure.
    pub fn elements(&self) -> Option<Elements<'a>> {
        match *self {
            Data::Array(e) | Data::Structure(e) => Some(e),
            _ => None,
        }
    }

    /// A 6-byte octet-string, read as an OBIS code.
    pub fn as_obis(&self) -> Option<[u8; 6]> {
        match *self {
            Data::OctetString(b) => <[u8; 6]>::try_from(b).ok(),
            _ => None,
        }
    }

    /// The A-XDR type name (`uint32`, `octet-string`, ...), for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Data::Null => "null-data",
            Data::Array(_) => "array",
            Data::Structure(_) => "structure",
            Data::Bool(_) => "boolean",
            Data::BitString { .. } => "bit-string",
            Data::Int32(_) => "int32",
            Data::Uint32(_) => "uint32",
            Data::OctetString(_) => "octet-string",
            Data::VisibleString(_) => "visible-string",
            Data::Utf8String(_) => "utf8-string",
            Data::Bcd(_) => "bcd",
            Data::Int8(_) => "int8",
            Data::Int16(_) => "int16",
            Data::Uint8(_) => "uint8",
            Data::Uint16(_) => "uint16",
            Data::Int64(_) => "int64",
            Data::Uint64(_) => "uint64",
            Data::Enum(_) => "enum",
            Data::Float32(_) => "float32",
            Data::Float64(_) => "float64",
            Data::DateTime(_) => "date-time",
            Data::Date(_) => "date",
            Data::Time(_) => "time",
        }
    }
}

/// Reusable space for decoding: the decrypted APDU ([`crate::decode_apdu`]) and the decoded
/// values ([`parse`], [`crate::parse_notification`]). Keep one per meter: once it has
/// grown to the size of the largest frame, decoding allocates nothing. What a parse returns
/// borrows it until the next parse.
#[derive(Default, Clone)]
pub struct Scratch {
    /// The plaintext of the last ciphered APDU.
    pub(crate) plaintext: Vec<u8>,
    /// The values of the last parse, depth first.
    pub(crate) nodes: Vec<Node>,
}

impl Scratch {
    /// Empty scratch space (allocates nothing until used).
    pub fn new() -> Self {
        Scratch::default()
    }
}

impl fmt::Debug for Scratch {
    /// Sizes only: the plaintext is the meter's data, not for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("plaintext_capacity", &self.plaintext.capacity())
            .field("values_capacity", &self.nodes.capacity())
            .finish()
    }
}

/// One decoded value in the flat list: a [`Data`] with positions in the parsed buffer
/// instead of slices (so that the list has no lifetime and can be reused), and for arrays
/// and structures the number of values nested in them, which follow them in the list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    Null,
    /// `nested`: the values after this one that belong to it (its elements and theirs).
    Array {
        len: usize,
        nested: usize,
    },
    Structure {
        len: usize,
        nested: usize,
    },
    Bool(bool),
    /// The bytes are the `ceil(bits / 8)` at `start`.
    BitString {
        start: usize,
        bits: usize,
    },
    Int32(i32),
    Uint32(u32),
    OctetString {
        start: usize,
        len: usize,
    },
    VisibleString {
        start: usize,
        len: usize,
    },
    Utf8String {
        start: usize,
        len: usize,
    },
    Bcd(u8),
    Int8(i8),
    Int16(i16),
    Uint8(u8),
    Uint16(u16),
    Int64(i64),
    Uint64(u64),
    Enum(u8),
    Float32(f32),
    Float64(f64),
    /// The 12, 5 or 4 bytes at `start`, decoded when viewed.
    DateTime(usize),
    Date(usize),
    Time(usize),
}

/// `len` bytes of `buf` at `start` (empty if out of range, which the parser rules out).
#[inline]
fn bytes_at(buf: &[u8], start: usize, len: usize) -> &[u8] {
    start
        .checked_add(len)
        .and_then(|end| buf.get(start..end))
        .unwrap_or(&[])
}

/// The `N` bytes of `buf` at `start` (zeros if out of range, which the parser rules out).
#[inline]
fn array_at<const N: usize>(buf: &[u8], start: usize) -> [u8; N] {
    <[u8; N]>::try_from(bytes_at(buf, start, N)).unwrap_or([0; N])
}

/// The view of the first node of `nodes` (a value and, after it, what is nested in it),
/// and the nodes after that value.
#[inline(always)]
fn view<'a>(buf: &'a [u8], nodes: &'a [Node]) -> Option<(Data<'a>, &'a [Node])> {
    let (node, rest) = nodes.split_first()?;
    let data = match *node {
        Node::Null => Data::Null,
        Node::Array { len, nested } | Node::Structure { len, nested } => {
            let (inner, rest) = rest.split_at_checked(nested)?;
            let elements = Elements {
                buf,
                nodes: inner,
                len,
            };
            let data = if matches!(node, Node::Array { .. }) {
                Data::Array(elements)
            } else {
                Data::Structure(elements)
            };
            return Some((data, rest));
        }
        Node::Bool(v) => Data::Bool(v),
        Node::BitString { start, bits } => Data::BitString {
            bits,
            bytes: bytes_at(buf, start, bits.div_ceil(8)),
        },
        Node::Int32(v) => Data::Int32(v),
        Node::Uint32(v) => Data::Uint32(v),
        Node::OctetString { start, len } => Data::OctetString(bytes_at(buf, start, len)),
        Node::VisibleString { start, len } => Data::VisibleString(bytes_at(buf, start, len)),
        Node::Utf8String { start, len } => Data::Utf8String(bytes_at(buf, start, len)),
        Node::Bcd(v) => Data::Bcd(v),
        Node::Int8(v) => Data::Int8(v),
        Node::Int16(v) => Data::Int16(v),
        Node::Uint8(v) => Data::Uint8(v),
        Node::Uint16(v) => Data::Uint16(v),
        Node::Int64(v) => Data::Int64(v),
        Node::Uint64(v) => Data::Uint64(v),
        Node::Enum(v) => Data::Enum(v),
        Node::Float32(v) => Data::Float32(v),
        Node::Float64(v) => Data::Float64(v),
        Node::DateTime(start) => Data::DateTime(DateTime::from_bytes(&array_at(buf, start))),
        Node::Date(start) => Data::Date(DateTime::from_date_bytes(&array_at(buf, start))),
        Node::Time(start) => Data::Time(DateTime::from_time_bytes(&array_at(buf, start))),
    };
    Some((data, rest))
}

/// The elements of an array or structure.
///
/// Iterating is cheap: the elements were decoded when the value was parsed. Two `Elements`
/// are equal when their values are.
#[derive(Clone, Copy)]
pub struct Elements<'a> {
    buf: &'a [u8],
    /// The elements and what is nested in them.
    nodes: &'a [Node],
    len: usize,
}

impl<'a> Elements<'a> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements in order.
    pub fn iter(&self) -> Iter<'a> {
        Iter {
            buf: self.buf,
            nodes: self.nodes,
            remaining: self.len,
        }
    }

    /// The first element.
    pub fn first(&self) -> Option<Data<'a>> {
        self.iter().next()
    }

    /// The element at `index` (stepping over the ones before it).
    pub fn get(&self, index: usize) -> Option<Data<'a>> {
        self.iter().nth(index)
    }

    /// The elements as an array, when there are exactly `N` of them: for matching fixed
    /// shapes such as `{scaler, unit}`.
    pub fn as_array<const N: usize>(&self) -> Option<[Data<'a>; N]> {
        if self.len != N {
            return None;
        }
        let mut out = [Data::Null; N];
        let mut it = self.iter();
        for slot in &mut out {
            *slot = it.next()?;
        }
        Some(out)
    }
}

impl PartialEq for Elements<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Elements<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Elements<'a> {
    type Item = Data<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Elements<'a> {
    type Item = Data<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over [`Elements`]. Cloning it is cheap, which is how look-ahead is done.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    buf: &'a [u8],
    nodes: &'a [Node],
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Data<'a>;

    #[inline(always)]
    fn next(&mut self) -> Option<Data<'a>> {
        self.remaining = self.remaining.checked_sub(1)?;
        match view(self.buf, self.nodes) {
            Some((data, rest)) => {
                self.nodes = rest;
                Some(data)
            }
            // Not reachable: the parser records as many elements as it counts.
            None => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl core::iter::FusedIterator for Iter<'_> {}

/// A bounds-checked cursor; every read reports the offset it failed at.
#[derive(Debug, Clone)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes from `start` up to the current position.
    fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    /// The bytes after the current position.
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos = self.pos.saturating_add(n);
                Ok(s)
            }
            None => Err(Error::DataTruncated {
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, Error> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// An A-XDR length (short form or `0x81`..`0x83`).
    #[inline]
    fn length(&mut self) -> Result<usize, Error> {
        let at = self.pos;
        // The short form, which push bodies use throughout.
        if let Some(&n) = self.buf.get(at).filter(|&&n| n < 0x80) {
            self.pos = self.pos.saturating_add(1);
            return Ok(usize::from(n));
        }
        match ber::read_length(self.buf, at) {
            Ok((len, used)) => {
                self.pos = self.pos.saturating_add(used);
                Ok(len)
            }
            Err(Error::Incomplete { .. }) => Err(Error::DataTruncated {
                offset: at,
                needed: 1,
                available: self.remaining(),
            }),
            Err(_) => Err(Error::InvalidData { offset: at }),
        }
    }

    /// A length that must leave at least `count * min_each` bytes (so that a corrupted
    /// count cannot make the parser loop far beyond the input).
    fn count(&mut self, min_each: usize) -> Result<usize, Error> {
        let at = self.pos;
        let n = self.length()?;
        let needed = n.saturating_mul(min_each);
        if needed > self.remaining() {
            return Err(Error::DataTruncated {
                offset: at,
                needed,
                available: self.remaining(),
            });
        }
        Ok(n)
    }
}

/// Parses one tagged `Data` at the start of `buf`, into `scratch`.
///
/// Returns the value and the number of bytes it occupies. The whole value is checked and
/// decoded, nested elements included.
///
/// # Errors
/// [`Error::UnknownDataType`], [`Error::DataTruncated`], [`Error::TooDeep`],
/// [`Error::TooManyValues`], [`Error::InvalidData`]; offsets relative to `buf`.
pub fn parse<'a>(buf: &'a [u8], scratch: &'a mut Scratch) -> Result<(Data<'a>, usize), Error> {
    parse_at(buf, 0, scratch)
}

/// Parses one tagged `Data` starting at `offset` of `buf`, into `scratch`; returns the value
/// and the offset one past it. Error offsets are relative to `buf`.
///
/// # Errors
/// As [`parse`].
pub fn parse_at<'a>(
    buf: &'a [u8],
    offset: usize,
    scratch: &'a mut Scratch,
) -> Result<(Data<'a>, usize), Error> {
    parse_into(buf, offset, &mut scratch.nodes)
}

/// [`parse_at`] with the value list alone (so that the caller can hold the rest of its
/// [`Scratch`]).
pub(crate) fn parse_into<'a>(
    buf: &'a [u8],
    offset: usize,
    nodes: &'a mut Vec<Node>,
) -> Result<(Data<'a>, usize), Error> {
    nodes.clear();
    let mut r = Reader { buf, pos: offset };
    tagged(&mut r, 0, nodes)?;
    let nodes: &'a Vec<Node> = nodes;
    // The parser pushed exactly one value, with everything nested in it.
    let (data, _) = view(buf, nodes).ok_or(Error::InvalidData { offset })?;
    Ok((data, r.pos))
}

/// Appends `node`, unless the list is full.
#[inline]
fn push(out: &mut Vec<Node>, node: Node, at: usize) -> Result<(), Error> {
    if out.len() >= MAX_VALUES {
        return Err(Error::TooManyValues {
            offset: at,
            limit: MAX_VALUES,
        });
    }
    out.push(node);
    Ok(())
}

/// Reserves the place of an array or structure whose elements follow; [`close`] fills it in.
fn open(out: &mut Vec<Node>, at: usize) -> Result<usize, Error> {
    let index = out.len();
    push(out, Node::Null, at)?;
    Ok(index)
}

/// Fills in the array or structure (`tag`) [`open`] reserved at `index`, now that its
/// elements (everything after it) are in the list.
fn close(out: &mut [Node], index: usize, tag: u8, len: usize) {
    let nested = out.len().saturating_sub(index).saturating_sub(1);
    if let Some(slot) = out.get_mut(index) {
        *slot = if tag == tag::ARRAY {
            Node::Array { len, nested }
        } else {
            Node::Structure { len, nested }
        };
    }
}

#[inline(always)]
fn tagged(r: &mut Reader<'_>, depth: usize, out: &mut Vec<Node>) -> Result<(), Error> {
    let at = r.pos;
    let t = r.u8()?;
    untagged(r, t, at, depth, out)
}

/// The value of type `t` whose tag was at `at` (the value bytes start at `r.pos`).
///
/// Inlined, so that the elements of an array or structure are decoded in the loop of
/// [`compound`]; only arrays and structures recurse.
#[inline(always)]
fn untagged(
    r: &mut Reader<'_>,
    t: u8,
    at: usize,
    depth: usize,
    out: &mut Vec<Node>,
) -> Result<(), Error> {
    match t {
        tag::ARRAY | tag::STRUCTURE => compound(r, t, at, depth, out),
        tag::COMPACT_ARRAY => {
            if depth >= MAX_DEPTH {
                return Err(Error::TooDeep { offset: at });
            }
            compact_array(r, depth, out)
        }
        _ => {
            let node = simple(r, t, at)?;
            push(out, node, at)
        }
    }
}

/// An array or structure (`t`) whose tag was at `at`: its elements, then its node before
/// them.
#[inline(never)]
fn compound(
    r: &mut Reader<'_>,
    t: u8,
    at: usize,
    depth: usize,
    out: &mut Vec<Node>,
) -> Result<(), Error> {
    if depth >= MAX_DEPTH {
        return Err(Error::TooDeep { offset: at });
    }
    let len = r.count(1)?;
    let index = open(out, at)?;
    for _ in 0..len {
        tagged(r, depth.saturating_add(1), out)?;
    }
    close(out, index, t, len);
    Ok(())
}

/// The value of the simple (not compound) type `t` whose tag was at `at`.
#[inline(always)]
fn simple(r: &mut Reader<'_>, t: u8, at: usize) -> Result<Node, Error> {
    Ok(match t {
        tag::NULL | tag::DONT_CARE => Node::Null,
        tag::BOOLEAN => Node::Bool(r.u8()? != 0),
        tag::BIT_STRING => {
            let bits = r.length()?;
            let start = r.pos;
            r.take(bits.div_ceil(8))?;
            Node::BitString { start, bits }
        }
        tag::INT32 => Node::Int32(i32::from_be_bytes(r.array()?)),
        tag::UINT32 => Node::Uint32(u32::from_be_bytes(r.array()?)),
        tag::OCTET_STRING | tag::VISIBLE_STRING | tag::UTF8_STRING => {
            let len = r.length()?;
            let start = r.pos;
            r.take(len)?;
            match t {
                tag::OCTET_STRING => Node::OctetString { start, len },
                tag::VISIBLE_STRING => Node::VisibleString { start, len },
                _ => Node::Utf8String { start, len },
            }
        }
        tag::BCD => Node::Bcd(r.u8()?),
        tag::INT8 => Node::Int8(i8::from_be_bytes(r.array()?)),
        tag::INT16 => Node::Int16(i16::from_be_bytes(r.array()?)),
        tag::UINT8 => Node::Uint8(r.u8()?),
        tag::UINT16 => Node::Uint16(u16::from_be_bytes(r.array()?)),
        tag::INT64 => Node::Int64(i64::from_be_bytes(r.array()?)),
        tag::UINT64 => Node::Uint64(u64::from_be_bytes(r.array()?)),
        tag::ENUM => Node::Enum(r.u8()?),
        tag::FLOAT32 => Node::Float32(f32::from_be_bytes(r.array()?)),
        tag::FLOAT64 => Node::Float64(f64::from_be_bytes(r.array()?)),
        tag::DATE_TIME => {
            let start = r.pos;
            r.take(12)?;
            Node::DateTime(start)
        }
        tag::DATE => {
            let start = r.pos;
            r.take(5)?;
            Node::Date(start)
        }
        tag::TIME => {
            let start = r.pos;
            r.take(4)?;
            Node::Time(start)
        }
        other => {
            return Err(Error::UnknownDataType {
                tag: other,
                offset: at,
            })
        }
    })
}

/// Tags of the non-compound types [`untagged`] decodes.
fn is_simple_type(t: u8) -> bool {
    matches!(t, 0 | 3..=6 | 9 | 10 | 12 | 13 | 15..=18 | 20..=27 | 255)
}

/// Checks a compact-array's type description (Blue Book §4.1.5, `TypeDescription`):
/// `array` is followed by a 2-byte count and the element's description, `structure` by an
/// A-XDR length and that many field descriptions, a simple type is its tag alone.
fn skip_description(r: &mut Reader<'_>, depth: usize) -> Result<(), Error> {
    let at = r.pos;
    if depth >= MAX_DEPTH {
        return Err(Error::TooDeep { offset: at });
    }
    match r.u8()? {
        tag::ARRAY => {
            r.array::<2>()?;
            skip_description(r, depth.saturating_add(1))
        }
        tag::STRUCTURE => {
            let n = r.count(1)?;
            for _ in 0..n {
                skip_description(r, depth.saturating_add(1))?;
            }
            Ok(())
        }
        tag::COMPACT_ARRAY => Err(Error::InvalidData { offset: at }),
        t if is_simple_type(t) => Ok(()),
        other => Err(Error::UnknownDataType {
            tag: other,
            offset: at,
        }),
    }
}

/// The first type description of `descs` (already checked) and the ones after it.
fn split_description(descs: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let mut d = Reader { buf: descs, pos: 0 };
    skip_description(&mut d, 0)?;
    Ok((d.since(0), d.rest()))
}

/// Decodes one untagged element of the type `desc` (a checked type description) starts
/// with.
fn described(
    r: &mut Reader<'_>,
    desc: &[u8],
    depth: usize,
    out: &mut Vec<Node>,
) -> Result<(), Error> {
    let at = r.pos;
    if depth >= MAX_DEPTH {
        return Err(Error::TooDeep { offset: at });
    }
    let mut d = Reader { buf: desc, pos: 0 };
    // The description was checked with `skip_description`; reading it cannot fail.
    let unreadable = |_| Error::InvalidData { offset: at };
    match d.u8().map_err(unreadable)? {
        tag::ARRAY => {
            let count = usize::from(u16::from_be_bytes(d.array().map_err(unreadable)?));
            let element = d.rest();
            // A bound on the loop below: zero-width elements (an array of empty structures)
            // would otherwise let a corrupted count spin without consuming input.
            if count > r.remaining() {
                return Err(Error::DataTruncated {
                    offset: at,
                    needed: count,
                    available: r.remaining(),
                });
            }
            let index = open(out, at)?;
            for _ in 0..count {
                described(r, element, depth.saturating_add(1), out)?;
            }
            close(out, index, tag::ARRAY, count);
            Ok(())
        }
        tag::STRUCTURE => {
            let len = d.length().map_err(unreadable)?;
            let mut fields = d.rest();
            let index = open(out, at)?;
            for _ in 0..len {
                let (field, next) = split_description(fields).map_err(unreadable)?;
                described(r, field, depth.saturating_add(1), out)?;
                fields = next;
            }
            close(out, index, tag::STRUCTURE, len);
            Ok(())
        }
        t if is_simple_type(t) => untagged(r, t, at, depth, out),
        _ => Err(Error::InvalidData { offset: at }),
    }
}

/// compact-array (19): `contents-description TypeDescription, array-contents OCTET STRING`;
/// the contents are untagged elements of the described type, as many as fit.
fn compact_array(r: &mut Reader<'_>, depth: usize, out: &mut Vec<Node>) -> Result<(), Error> {
    let desc_start = r.pos;
    skip_description(r, depth.saturating_add(1))?;
    let desc = r.since(desc_start);
    let len = r.length()?;
    let start = r.pos;
    let contents = r.take(len)?;
    // The contents are parsed in a reader over the whole buffer, limited to their end, so
    // error offsets (and the positions of strings) stay relative to the caller's buffer.
    let limit = start.saturating_add(contents.len());
    let mut inner = Reader {
        buf: r.buf.get(..limit).unwrap_or(&[]),
        pos: start,
    };
    let index = open(out, desc_start)?;
    let mut count = 0usize;
    while inner.remaining() > 0 {
        let before = inner.pos;
        described(&mut inner, desc, depth.saturating_add(1), out)?;
        if inner.pos == before {
            // Zero-width element types (null-data) would loop forever.
            return Err(Error::InvalidData { offset: before });
        }
        count = count.saturating_add(1);
    }
    close(out, index, tag::ARRAY, count);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    use super::*;

    /// Parses all of `bytes`. The scratch space is leaked so that the value can be
    /// returned: a few bytes per call, for the length of the test run.
    fn p(bytes: &[u8]) -> Result<Data<'_>, Error> {
        let scratch = Box::leak(Box::new(Scratch::new()));
        let (d, used) = parse(bytes, scratch)?;
        assert_eq!(used, bytes.len(), "consumed");
        Ok(d)
    }

    /// The elements of an array or structure, collected.
    fn items(d: Data<'_>) -> Vec<Data<'_>> {
        let e = d.elements().unwrap();
        let v: Vec<Data> = e.iter().collect();
        assert_eq!(v.len(), e.len(), "len() is the number iterated");
        v
    }

    #[test]
    fn parses_every_fixed_size_type() {
        assert_eq!(p(&[0x00]).unwrap(), Data::Null);
        assert_eq!(p(&[0xFF]).unwrap(), Data::Null);
        assert_eq!(p(&[0x03, 0x01]).unwrap(), Data::Bool(true));
        assert_eq!(p(&[0x05, 0xFF, 0xFF, 0xFF, 0xFE]).unwrap(), Data::Int32(-2));
        assert_eq!(
            p(&[0x06, 0x00, 0x00, 0x32, 0x89]).unwrap(),
            Data::Uint32(12937)
        );
        assert_eq!(p(&[0x0D, 0x12]).unwrap(), Data::Bcd(0x12));
        assert_eq!(p(&[0x0F, 0xFD]).unwrap(), Data::Int8(-3));
        assert_eq!(p(&[0x10, 0x03, 0x33]).unwrap(), Data::Int16(819));
        assert_eq!(p(&[0x10, 0xFF, 0xFE]).unwrap(), Data::Int16(-2));
        assert_eq!(p(&[0x11, 0xFE]).unwrap(), Data::Uint8(254));
        assert_eq!(p(&[0x12, 0x09, 0x21]).unwrap(), Data::Uint16(2337));
        assert_eq!(
            p(&[0x14, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap(),
            Data::Int64(-1)
        );
        assert_eq!(
            p(&[0x15, 0, 0, 0, 0, 0, 0x0D, 0x27, 0x67]).unwrap(),
            Data::Uint64(862_055)
        );
        assert_eq!(p(&[0x16, 0x1E]).unwrap(), Data::Enum(30));
        assert_eq!(p(&[0x17, 0x3F, 0xC0, 0, 0]).unwrap(), Data::Float32(1.5));
        assert_eq!(
            p(&[0x18, 0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18]).unwrap(),
            Data::Float64(core::f64::consts::PI)
        );
    }

    #[test]
    fn parses_date_time_date_and_time_types() {
        let d = p(&[
            0x19, 0x07, 0xE5, 0x09, 0x1B, 0x01, 0x09, 0x2F, 0x0F, 0x00, 0xFF, 0x88, 0x80,
        ])
        .unwrap();
        let Data::DateTime(dt) = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second),
            (Some(2021), Some(9), Some(27), Some(9), Some(47), Some(15))
        );
        assert_eq!(dt.offset_minutes_east(), Some(120));
        let Data::Date(d) = p(&[0x1A, 0x07, 0xE5, 0x03, 0x19, 0x04]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (d.year, d.month, d.day, d.weekday, d.hour),
            (Some(2021), Some(3), Some(25), Some(4), None)
        );
        let Data::Time(t) = p(&[0x1B, 0x13, 0x01, 0x0E, 0x00]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.year, t.hour, t.minute, t.second, t.hundredths),
            (None, Some(19), Some(1), Some(14), Some(0))
        );
    }

    #[test]
    fn parses_strings_and_bit_strings() {
        assert_eq!(
            p(&[0x09, 0x02, 0xAB, 0xCD]).unwrap(),
            Data::OctetString(&[0xAB, 0xCD])
        );
        assert_eq!(p(&[0x09, 0x00]).unwrap(), Data::OctetString(&[]));
        assert_eq!(
            p(&[0x0A, 0x03, b'a', b'b', b'c']).unwrap(),
            Data::VisibleString(b"abc")
        );
        assert_eq!(
            p(&[0x0C, 0x02, 0xC3, 0xA4]).unwrap(),
            Data::Utf8String("ä".as_bytes())
        );
        assert_eq!(
            p(&[0x04, 0x0A, 0xFF, 0xC0]).unwrap(),
            Data::BitString {
                bits: 10,
                bytes: &[0xFF, 0xC0]
            }
        );
        let mut long = vec![0x09, 0x81, 0x80];
        long.extend_from_slice(&[0x55; 0x80]);
        assert_eq!(p(&long).unwrap(), Data::OctetString(&[0x55; 0x80]));
    }

    #[test]
    fn parses_nested_structures_and_arrays() {
        // {OBIS, uint16, {scaler -1, unit V}} as KSM-West sends it.
        let bytes = [
            0x02, 0x03, 0x09, 0x06, 1, 0, 32, 7, 0, 255, 0x12, 0x09, 0x04, 0x02, 0x02, 0x0F, 0xFF,
            0x16, 0x23,
        ];
        let d = p(&bytes).unwrap();
        assert!(matches!(d, Data::Structure(_)));
        let v = items(d);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], Data::OctetString(&[1, 0, 32, 7, 0, 255]));
        assert_eq!(v[1], Data::Uint16(2308));
        assert!(matches!(v[2], Data::Structure(_)));
        assert_eq!(items(v[2]), [Data::Int8(-1), Data::Enum(0x23)]);
        assert_eq!(
            d.elements().unwrap().as_array::<3>().unwrap()[2],
            v[2],
            "as_array agrees with iter"
        );
        assert!(d.elements().unwrap().as_array::<2>().is_none());
        assert_eq!(d.elements().unwrap().get(1), Some(Data::Uint16(2308)));
        assert_eq!(d.elements().unwrap().get(3), None);
        let empty = p(&[0x01, 0x00]).unwrap();
        assert!(matches!(empty, Data::Array(e) if e.is_empty() && e.first().is_none()));
    }

    #[test]
    fn parses_a_compact_array_of_structures() {
        // compact-array of {uint16, int8}: 2 elements.
        let bytes = [
            0x13, 0x02, 0x02, 0x12, 0x0F, 0x06, 0x00, 0x01, 0xFF, 0x00, 0x02, 0x01,
        ];
        let v = items(p(&bytes).unwrap());
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|d| matches!(d, Data::Structure(_))));
        assert_eq!(items(v[0]), [Data::Uint16(1), Data::Int8(-1)]);
        assert_eq!(items(v[1]), [Data::Uint16(2), Data::Int8(1)]);
        // The same values tagged compare equal to the compact encoding.
        let tagged = [
            0x01, 0x02, 0x02, 0x02, 0x12, 0x00, 0x01, 0x0F, 0xFF, 0x02, 0x02, 0x12, 0x00, 0x02,
            0x0F, 0x01,
        ];
        assert_eq!(p(&tagged).unwrap(), p(&bytes).unwrap());
        // compact-array of array[2] of uint8.
        let bytes = [0x13, 0x01, 0x00, 0x02, 0x11, 0x04, 1, 2, 3, 4];
        let v = items(p(&bytes).unwrap());
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|d| matches!(d, Data::Array(_))));
        assert_eq!(items(v[0]), [Data::Uint8(1), Data::Uint8(2)]);
        assert_eq!(items(v[1]), [Data::Uint8(3), Data::Uint8(4)]);
        // octet-strings inside keep their own length.
        let bytes = [0x13, 0x09, 0x05, 0x02, 0xAA, 0xBB, 0x01, 0xCC];
        assert_eq!(
            items(p(&bytes).unwrap()),
            [Data::OctetString(&[0xAA, 0xBB]), Data::OctetString(&[0xCC])]
        );
        // compact-array of {array[2] of uint8, octet-string}: descriptions nest.
        let bytes = [
            0x13, 0x02, 0x02, 0x01, 0x00, 0x02, 0x11, 0x09, 0x04, 7, 8, 0x01, 0xEE,
        ];
        let v = items(p(&bytes).unwrap());
        assert_eq!(v.len(), 1);
        let fields = items(v[0]);
        assert_eq!(items(fields[0]), [Data::Uint8(7), Data::Uint8(8)]);
        assert_eq!(fields[1], Data::OctetString(&[0xEE]));
        assert_eq!(
            format!("{:?}", v[0]),
            "Structure([Array([Uint8(7), Uint8(8)]), OctetString([238])])"
        );
        // Zero-width elements: {array[2] of {}, visible-string} twice. The first element
        // is one byte long, shorter than its array's count.
        let bytes = [
            0x13, 0x02, 0x02, 0x01, 0x00, 0x02, 0x02, 0x00, 0x0A, 0x03, 0x00, 0x01, b'x',
        ];
        let v = items(p(&bytes).unwrap());
        assert_eq!(v.len(), 2);
        let first = items(v[0]);
        assert_eq!(first.len(), 2);
        assert_eq!(items(first[0]).len(), 2);
        assert_eq!(first[1], Data::VisibleString(b""));
        assert_eq!(items(v[1])[1], Data::VisibleString(b"x"));
    }

    #[test]
    fn compact_array_errors_are_reported_not_panicked() {
        // Zero-width element type.
        assert!(matches!(
            p(&[0x13, 0x00, 0x01, 0xAA]),
            Err(Error::InvalidData { .. })
        ));
        // Unknown element type at offset 1.
        assert_eq!(
            p(&[0x13, 0x07, 0x00]),
            Err(Error::UnknownDataType { tag: 7, offset: 1 })
        );
        // Element runs past the contents.
        assert!(matches!(
            p(&[0x13, 0x12, 0x03, 0x00, 0x01, 0x02]),
            Err(Error::DataTruncated { .. })
        ));
    }

    #[test]
    fn unknown_tag_names_tag_and_offset() {
        let bytes = [0x02, 0x02, 0x11, 0x01, 0x07, 0x00];
        assert_eq!(
            parse(&bytes, &mut Scratch::new()),
            Err(Error::UnknownDataType {
                tag: 0x07,
                offset: 4
            })
        );
        assert_eq!(
            parse_at(&[0xAA, 0xAA, 0x30], 2, &mut Scratch::new()),
            Err(Error::UnknownDataType {
                tag: 0x30,
                offset: 2
            })
        );
    }

    #[test]
    fn truncated_values_report_where_and_how_much() {
        assert_eq!(
            parse(&[0x06, 0x00, 0x01], &mut Scratch::new()),
            Err(Error::DataTruncated {
                offset: 1,
                needed: 4,
                available: 2
            })
        );
        assert!(matches!(
            parse(&[0x09, 0x05, 1, 2], &mut Scratch::new()),
            Err(Error::DataTruncated { offset: 2, .. })
        ));
        assert!(matches!(
            parse(&[], &mut Scratch::new()),
            Err(Error::DataTruncated { offset: 0, .. })
        ));
        assert!(matches!(
            parse(&[0x09], &mut Scratch::new()),
            Err(Error::DataTruncated { offset: 1, .. })
        ));
        assert!(matches!(
            parse(&[0x09, 0x80], &mut Scratch::new()),
            Err(Error::InvalidData { offset: 1 })
        ));
    }

    #[test]
    fn huge_counts_fail_before_allocating() {
        assert!(matches!(
            parse(&[0x01, 0x83, 0xFF, 0xFF, 0xFF, 0x00], &mut Scratch::new()),
            Err(Error::DataTruncated { offset: 1, .. })
        ));
        assert!(matches!(
            parse(&[0x09, 0x83, 0xFF, 0xFF, 0xFF, 0x00], &mut Scratch::new()),
            Err(Error::DataTruncated { .. })
        ));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x02, 0x01]);
        }
        deep.push(0x00);
        assert!(matches!(
            parse(&deep, &mut Scratch::new()),
            Err(Error::TooDeep { .. })
        ));
        let mut ok = Vec::new();
        for _ in 0..MAX_DEPTH {
            ok.extend_from_slice(&[0x01, 0x01]);
        }
        ok.push(0x00);
        assert!(parse(&ok, &mut Scratch::new()).is_ok());
    }

    #[test]
    fn values_beyond_the_limit_are_an_error_not_an_allocation() {
        // compact-array of array[257] of array[257] of {}: 66,307 values in 257 bytes.
        let mut bytes = vec![0x13, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02, 0x00];
        bytes.extend_from_slice(&[0x82, 0x01, 0x01]);
        bytes.extend_from_slice(&[0; 257]);
        let mut s = Scratch::new();
        assert!(matches!(
            parse(&bytes, &mut s),
            Err(Error::TooManyValues {
                limit: MAX_VALUES,
                ..
            })
        ));
        assert!(s.nodes.len() <= MAX_VALUES);
    }

    #[test]
    fn one_scratch_serves_parse_after_parse() {
        let mut s = Scratch::new();
        let first = [
            0x02, 0x03, 0x09, 0x06, 1, 0, 32, 7, 0, 255, 0x12, 0x09, 0x04, 0x02, 0x02, 0x0F, 0xFF,
            0x16, 0x23,
        ];
        let (d, _) = parse(&first, &mut s).unwrap();
        assert_eq!(items(d).len(), 3);
        let capacity = s.nodes.capacity();
        let (d, used) = parse(&[0x02, 0x01, 0x11, 0x05], &mut s).unwrap();
        assert_eq!((items(d), used), (vec![Data::Uint8(5)], 4));
        assert_eq!(s.nodes.capacity(), capacity, "no new allocation");
        // An error leaves the scratch usable.
        assert!(parse(&[0x02, 0x02, 0x11], &mut s).is_err());
        let (d, _) = parse(&first, &mut s).unwrap();
        assert_eq!(d.elements().unwrap().get(1), Some(Data::Uint16(2308)));
        assert!(format!("{s:?}").starts_with("Scratch {"));
    }

    #[test]
    fn every_prefix_of_a_value_is_an_error_never_a_panic() {
        let bytes = [
            0x02, 0x03, 0x09, 0x06, 1, 0, 32, 7, 0, 255, 0x12, 0x09, 0x04, 0x02, 0x02, 0x0F, 0xFF,
            0x16, 0x23,
        ];
        for n in 0..bytes.len() {
            assert!(parse(&bytes[..n], &mut Scratch::new()).is_err());
        }
    }

    #[test]
    fn helpers_expose_integers_strings_and_obis() {
        assert_eq!(
            Data::Uint64(u64::MAX).as_integer(),
            Some(i128::from(u64::MAX))
        );
        assert_eq!(Data::Enum(1).as_integer(), None);
        assert_eq!(
            Data::OctetString(&[1, 0, 1, 8, 0, 255]).as_obis(),
            Some([1, 0, 1, 8, 0, 255])
        );
        assert_eq!(Data::OctetString(&[1, 0]).as_obis(), None);
        assert_eq!(Data::VisibleString(b"x").as_bytes(), Some(&b"x"[..]));
        assert_eq!(Data::Uint32(1).type_name(), "uint32");
    }
}
