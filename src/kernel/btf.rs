//! The kernel's BTF type information (`__start_BTF`..`__stop_BTF`,
//! CONFIG_DEBUG_INFO_BTF), parsed zero-copy from a byte buffer.
//!
//! A small parser rather than a crate: the DWARF writer
//! ([`super::btf_dwarf`]) walks every type once in ID order and needs each
//! kind's raw fields (the kind_flag bitfield encoding, enum signedness,
//! DATASEC entries) exactly as the format lays them out
//! (include/uapi/linux/btf.h); the available crates are built around
//! by-name lookups and owned trees, and the format is simple.
//!
//! Every count and offset comes from the dump and is checked against the
//! buffer; a malformed blob is an error naming the byte offset.

/// BTF kinds (`BTF_KIND_*`).
pub mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;
}

const MAGIC: u16 = 0xeb9f;
/// More types than any kernel has: bounds the ID table.
const MAX_TYPES: usize = 4_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BTF at byte {offset}: {reason}")]
pub struct BtfError {
    pub offset: usize,
    pub reason: String,
}

fn bad(offset: usize, reason: impl Into<String>) -> BtfError {
    BtfError {
        offset,
        reason: reason.into(),
    }
}

/// One type record: its common header and the bytes of its kind-specific
/// trailer.
#[derive(Clone, Copy, Debug)]
pub struct Type<'a> {
    pub name_off: u32,
    pub kind: u8,
    pub kind_flag: bool,
    pub vlen: u16,
    /// `size` for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, else the referenced
    /// type's ID.
    pub size_or_type: u32,
    trailer: &'a [u8],
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Type<'a> {
    /// The `i`th 32-bit word of the trailer (0 past its end: the parser
    /// sized every trailer, so this happens only on a kind mismatch).
    pub fn word(&self, i: usize) -> u32 {
        u32_at(self.trailer, 4 * i)
    }

    /// The `i`th trailer record of `words` 32-bit words (members, params,
    /// enumerators, DATASEC entries).
    pub fn record(&self, i: usize, words: usize) -> impl Fn(usize) -> u32 + 'a {
        let t = self.trailer;
        let base = 4 * words * i;
        move |w| u32_at(t, base + 4 * w)
    }
}

/// Bytes of a kind's trailer after the common 12-byte header.
fn trailer_len(kind: u8, vlen: usize) -> Option<usize> {
    Some(match kind {
        kind::INT => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION => vlen.checked_mul(12)?,
        kind::ENUM => vlen.checked_mul(8)?,
        kind::FUNC_PROTO => vlen.checked_mul(8)?,
        kind::VAR => 4,
        kind::DATASEC => vlen.checked_mul(12)?,
        kind::DECL_TAG => 4,
        kind::ENUM64 => vlen.checked_mul(12)?,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        _ => return None,
    })
}

/// A parsed blob: types by ID (ID 0 is `void`, not stored) and the string
/// section.
pub struct Btf<'a> {
    types: Vec<Type<'a>>,
    strings: &'a [u8],
}

impl<'a> Btf<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        if b.len() < 24 {
            return Err(bad(
                0,
                format!("{} bytes: shorter than the header", b.len()),
            ));
        }
        let magic = u16::from_le_bytes([b[0], b[1]]);
        if magic != MAGIC {
            return Err(bad(
                0,
                format!("magic {magic:#x}, not {MAGIC:#x} (or big-endian)"),
            ));
        }
        let hdr_len = u32_at(b, 4) as usize;
        let [type_off, type_len, str_off, str_len] = [8, 12, 16, 20].map(|i| u32_at(b, i) as usize);
        let section = |off: usize, len: usize, what: &str| {
            hdr_len
                .checked_add(off)
                .and_then(|s| Some(s..s.checked_add(len)?))
                .filter(|r| r.end <= b.len())
                .ok_or_else(|| {
                    bad(
                        8,
                        format!(
                            "{what} section {off}+{len} past the blob's {} bytes",
                            b.len()
                        ),
                    )
                })
        };
        let tr = section(type_off, type_len, "type")?;
        let sr = section(str_off, str_len, "string")?;
        let strings = &b[sr];
        let mut types = Vec::new();
        let mut pos = tr.start;
        while pos < tr.end {
            if types.len() >= MAX_TYPES {
                return Err(bad(pos, format!("more than {MAX_TYPES} types")));
            }
            let hdr = b
                .get(pos..pos + 12)
                .filter(|_| pos + 12 <= tr.end)
                .ok_or_else(|| bad(pos, "type header runs past the type section"))?;
            let info = u32_at(hdr, 4);
            let k = ((info >> 24) & 0x1f) as u8;
            let vlen = (info & 0xffff) as u16;
            let n = trailer_len(k, vlen.into())
                .ok_or_else(|| bad(pos, format!("type {}: unknown kind {k}", types.len() + 1)))?;
            let end = pos + 12 + n;
            if end > tr.end {
                return Err(bad(
                    pos,
                    format!("type {}: runs past the type section", types.len() + 1),
                ));
            }
            types.push(Type {
                name_off: u32_at(hdr, 0),
                kind: k,
                kind_flag: info >> 31 != 0,
                vlen,
                size_or_type: u32_at(hdr, 8),
                trailer: &b[pos + 12..end],
            });
            pos = end;
        }
        Ok(Btf { types, strings })
    }

    /// Number of type IDs, `void` included (IDs are `0..count()`).
    pub fn count(&self) -> usize {
        self.types.len() + 1
    }

    /// Type `id` (`None` for `void` and IDs past the table).
    pub fn get(&self, id: u32) -> Option<&Type<'a>> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// The members of the struct named `name`: (name, bit offset, bit
    /// size; 0 when not a bitfield).
    pub fn struct_members(&self, name: &str) -> Option<Vec<(&'a str, u32, u32)>> {
        let t = self
            .types
            .iter()
            .find(|t| t.kind == kind::STRUCT && self.str(t.name_off) == name)?;
        Some(
            (0..usize::from(t.vlen))
                .map(|i| {
                    let m = t.record(i, 3);
                    let (bits, off) = if t.kind_flag {
                        (m(2) >> 24, m(2) & 0x00ff_ffff)
                    } else {
                        (0, m(2))
                    };
                    (self.str(m(0)), off, bits)
                })
                .collect(),
        )
    }

    /// The NUL-terminated string at `off` ("" when out of range or not
    /// UTF-8: names are C identifiers).
    pub fn str(&self, off: u32) -> &'a str {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a blob from (name, info, size_or_type, trailer words).
    pub(crate) fn blob(strings: &[u8], types: &[(u32, u32, u32, Vec<u32>)]) -> Vec<u8> {
        let mut t = Vec::new();
        for (name, info, st, words) in types {
            for w in [*name, *info, *st].iter().chain(words) {
                t.extend_from_slice(&w.to_le_bytes());
            }
        }
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(strings);
        b
    }

    pub(crate) fn info(kind: u8, vlen: u16, kflag: bool) -> u32 {
        (u32::from(kflag) << 31) | (u32::from(kind) << 24) | u32::from(vlen)
    }

    #[test]
    fn parses_types_and_names() {
        let strings = b"\0int\0s\0a\0";
        let b = blob(
            strings,
            &[
                (1, info(kind::INT, 0, false), 4, vec![(1 << 24) | 32]),
                (5, info(kind::STRUCT, 1, false), 4, vec![7, 1, 0]),
                (0, info(kind::PTR, 0, false), 2, vec![]),
            ],
        );
        let btf = Btf::parse(&b).unwrap();
        assert_eq!(btf.count(), 4);
        let s = btf.get(2).unwrap();
        assert_eq!(
            (btf.str(s.name_off), s.kind, s.vlen, s.size_or_type),
            ("s", kind::STRUCT, 1, 4)
        );
        let m = s.record(0, 3);
        assert_eq!((btf.str(m(0)), m(1), m(2)), ("a", 1, 0));
        assert!(btf.get(0).is_none() && btf.get(4).is_none());
    }

    #[test]
    fn damaged_blobs_are_errors() {
        assert!(Btf::parse(&[0; 10]).is_err());
        let mut b = blob(
            b"\0",
            &[(0, info(kind::STRUCT, 3, false), 4, vec![0, 0, 0])],
        );
        let e = Btf::parse(&b).err().unwrap();
        assert!(e.reason.contains("runs past"), "{e}");
        b[0] = 0;
        assert!(Btf::parse(&b).err().unwrap().reason.contains("magic"));
        let b = blob(b"\0", &[(0, info(30, 0, false), 0, vec![])]);
        assert!(
            Btf::parse(&b)
                .err()
                .unwrap()
                .reason
                .contains("unknown kind")
        );
    }
}
