//! The kernel's own symbol table (kallsyms), read from the dump's memory:
//! the symbols a session has when there is no vmlinux at all.
//!
//! scripts/kallsyms.c compresses the names with a 256-entry token table:
//! `kallsyms_names` is a run of entries, each a length (one byte, or two
//! when the first has bit 7 set: 6.1's "big symbols") followed by that many
//! token numbers; `kallsyms_token_index[t]` is the offset in
//! `kallsyms_token_table` of token `t`'s NUL-terminated text. The first
//! character of an expanded name is the `nm`-style type letter.
//!
//! Addresses come in three encodings, chosen here by which symbols the
//! kernel exports rather than by version:
//! - `kallsyms_addresses`: absolute `unsigned long`s (no
//!   CONFIG_KALLSYMS_BASE_RELATIVE);
//! - `kallsyms_offsets` + `kallsyms_relative_base`: 32-bit offsets from the
//!   base; with CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86_64 SMP before 6.15) a
//!   non-negative entry is an absolute per-CPU offset and a negative one
//!   means `base - 1 - entry`. Without that option no entry is negative
//!   (the image is far smaller than 2 GiB), so the presence of a negative
//!   entry tells the two apart;
//! - `kallsyms_offsets` alone (newer kernels dropped the base): 32-bit
//!   offsets from each entry's own address (7.x), or from `_text`; the
//!   address VMCOREINFO gives for `_stext` tells which (and places `_text`:
//!   `_stext` minus its own offset).
//!
//! The table addresses come from VMCOREINFO's `SYMBOL(kallsyms_*)` (kernels
//! since 6.0 export them); for older kernels they are found by their
//! shape ([`super::kallsyms_search`]).

use std::collections::HashMap;

/// Longest name the kernel accepts (KSYM_NAME_LEN is 512 since 6.1).
const MAX_NAME_LEN: usize = 512;
/// More symbols than any kernel has: bounds the tables' sizes.
const MAX_SYMS: u32 = 4_000_000;
/// Bytes read at a time while walking `kallsyms_names` (its size is known
/// only once every entry has been walked).
const NAMES_CHUNK: usize = 64 * 1024;

/// Reads the dumped kernel's virtual memory: the [`super::Kernel`] in
/// sessions, a byte buffer in tests.
pub trait KernelMemory {
    fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), String>;
}

impl KernelMemory for super::Kernel {
    fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), String> {
        self.read_virt(&self.kernel_space(), crate::addr::VirtAddr(va), buf)
            .map_err(|e| e.to_string())
    }
}

/// Why the kallsyms tables could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KallsymsError {
    #[error("VMCOREINFO has no SYMBOL({0}) (kernels before 6.0 do not export the kallsyms tables)")]
    NotExported(&'static str),
    #[error("{what} at {va:#x}: {reason}")]
    Read {
        what: &'static str,
        va: u64,
        reason: String,
    },
    #[error("{what} at {va:#x}: {reason}")]
    Malformed {
        what: &'static str,
        va: u64,
        reason: String,
    },
}

/// How the table addresses were found (for the tables' own symbols).
#[derive(Clone, Copy, Debug, Default)]
pub struct TableAddrs {
    pub num_syms: u64,
    pub names: u64,
    pub token_table: u64,
    pub token_index: u64,
    pub offsets: Option<u64>,
    pub relative_base: Option<u64>,
    pub addresses: Option<u64>,
    /// A symbol whose runtime address is known independently (`_stext`):
    /// anchors `_text`-relative offsets.
    pub anchor: Option<(&'static str, u64)>,
}

impl TableAddrs {
    /// The tables' addresses from VMCOREINFO's `SYMBOL()` lines.
    pub fn from_vmcoreinfo(vi: &super::VmcoreInfo) -> Result<TableAddrs, KallsymsError> {
        let need = |n: &'static str| vi.symbol(n).ok_or(KallsymsError::NotExported(n));
        let offsets = vi.symbol("kallsyms_offsets");
        let addresses = vi.symbol("kallsyms_addresses");
        if offsets.is_none() && addresses.is_none() {
            return Err(KallsymsError::NotExported("kallsyms_offsets"));
        }
        Ok(TableAddrs {
            num_syms: need("kallsyms_num_syms")?,
            names: need("kallsyms_names")?,
            token_table: need("kallsyms_token_table")?,
            token_index: need("kallsyms_token_index")?,
            offsets,
            relative_base: vi.symbol("kallsyms_relative_base"),
            addresses,
            anchor: vi.symbol("_stext").map(|a| ("_stext", a)),
        })
    }
}

/// The kernel's own VMCOREINFO text in its memory, for dumps whose notes
/// lack it (QEMU `dump-guest-memory` without `-device vmcoreinfo`): the
/// kernel writes it at the start of a zeroed page of its own
/// (`vmcoreinfo_data`, beginning with `OSRELEASE=`). Accepted only with
/// `SYMBOL(needs)` in it (`kallsyms_names`: the tables, 6.0+; `_stext`:
/// where to search for them) and, when the KASLR offset is known, the same
/// `KERNELOFFSET` (a page left by an earlier kernel is not this one's).
pub fn vmcoreinfo_in_memory(
    mem: &dyn crate::dump::PhysicalMemory,
    kaslr_offset: Option<u64>,
    needs: &str,
) -> Option<super::VmcoreInfo> {
    const PAGE: u64 = 4096;
    const PREFIX: &[u8] = b"OSRELEASE=";
    let mut head = [0u8; 10];
    for r in mem.ranges() {
        let mut pa = r.start.0.next_multiple_of(PAGE);
        while pa.checked_add(PAGE).is_some_and(|e| e <= r.end()) {
            let at = crate::addr::PhysAddr(pa);
            pa += PAGE;
            if mem.read_phys(at, &mut head).is_err() || head != PREFIX {
                continue;
            }
            let mut page = vec![0u8; PAGE as usize];
            if mem.read_phys(at, &mut page).is_err() {
                continue;
            }
            let end = page.iter().position(|&c| c == 0).unwrap_or(page.len());
            let Ok(text) = std::str::from_utf8(&page[..end]) else {
                continue;
            };
            let vi = super::VmcoreInfo::parse(text);
            let tables = vi.symbol(needs).is_some();
            let same = kaslr_offset.is_none_or(|k| vi.kernel_offset().unwrap_or(0) == k);
            if tables && same {
                return Some(vi);
            }
        }
    }
    None
}

/// One kallsyms symbol at its runtime address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KSym {
    pub name: String,
    pub addr: u64,
    /// `nm` type letter: `T`/`t` text, `D`/`d` data, `B`/`b` bss,
    /// `R`/`r` read-only, `A`/`a` absolute, `W`/`V` weak, ...
    pub kind: u8,
}

impl KSym {
    pub fn is_text(&self) -> bool {
        matches!(self.kind, b'T' | b't' | b'W' | b'w')
    }
    pub fn is_global(&self) -> bool {
        self.kind.is_ascii_uppercase()
    }
}

/// The decoded table, in the kernel's (address) order.
#[derive(Clone, Debug, Default)]
pub struct Kallsyms {
    pub syms: Vec<KSym>,
    /// Per-CPU symbols are offsets into each CPU's area (absolute-percpu
    /// encoding): they are not in the image.
    pub percpu_absolute: bool,
    by_name: HashMap<String, usize>,
}

impl Kallsyms {
    /// Reads and decodes the tables at `at` from `mem`.
    pub fn read(mem: &dyn KernelMemory, at: &TableAddrs) -> Result<Kallsyms, KallsymsError> {
        let n = read_u32(mem, at.num_syms, "kallsyms_num_syms")?;
        if n == 0 || n > MAX_SYMS {
            return Err(KallsymsError::Malformed {
                what: "kallsyms_num_syms",
                va: at.num_syms,
                reason: format!("{n} symbols (expected 1..{MAX_SYMS})"),
            });
        }
        let tokens = Tokens::read(mem, at.token_table, at.token_index)?;
        let names = read_names(mem, at.names, n as usize, &tokens)?;
        let (addrs, percpu_absolute) = read_addresses(mem, at, &names)?;
        let syms: Vec<KSym> = names
            .into_iter()
            .zip(addrs)
            .map(|((kind, name), addr)| KSym { name, addr, kind })
            .collect();
        check_sorted(&syms, at)?;
        Ok(Kallsyms::from_symbols(syms, percpu_absolute))
    }

    /// A table from already decoded symbols (tests, other sources).
    pub fn from_symbols(syms: Vec<KSym>, percpu_absolute: bool) -> Kallsyms {
        // first wins: a global and a local of one name (rare) keep the
        // earlier, as kallsyms_lookup_name does
        let mut by_name = HashMap::with_capacity(syms.len());
        for (i, s) in syms.iter().enumerate() {
            by_name.entry(s.name.clone()).or_insert(i);
        }
        Kallsyms {
            syms,
            percpu_absolute,
            by_name,
        }
    }

    /// The runtime address of `name`.
    pub fn addr(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).map(|&i| self.syms[i].addr)
    }
}

/// The kernel sorts kallsyms by address: anything else means a wrong
/// encoding or a damaged table.
fn check_sorted(syms: &[KSym], at: &TableAddrs) -> Result<(), KallsymsError> {
    for (i, w) in syms.windows(2).enumerate() {
        if w[1].addr < w[0].addr {
            return Err(KallsymsError::Malformed {
                what: "kallsyms addresses",
                va: at.offsets.or(at.addresses).unwrap_or(0),
                reason: format!(
                    "not sorted: symbol {} {} at {:#x} follows {} at {:#x}",
                    i + 1,
                    w[1].name,
                    w[1].addr,
                    w[0].name,
                    w[0].addr
                ),
            });
        }
    }
    Ok(())
}

fn read_exact(
    mem: &dyn KernelMemory,
    va: u64,
    len: usize,
    what: &'static str,
) -> Result<Vec<u8>, KallsymsError> {
    let mut buf = vec![0u8; len];
    mem.read(va, &mut buf)
        .map_err(|reason| KallsymsError::Read { what, va, reason })?;
    Ok(buf)
}

fn read_u32(mem: &dyn KernelMemory, va: u64, what: &'static str) -> Result<u32, KallsymsError> {
    let b = read_exact(mem, va, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(mem: &dyn KernelMemory, va: u64, what: &'static str) -> Result<u64, KallsymsError> {
    let b = read_exact(mem, va, 8, what)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(&b);
    Ok(u64::from_le_bytes(a))
}

/// The 256 tokens' texts.
struct Tokens(Vec<Vec<u8>>);

impl Tokens {
    fn read(mem: &dyn KernelMemory, table: u64, index: u64) -> Result<Tokens, KallsymsError> {
        let idx = read_exact(mem, index, 512, "kallsyms_token_index")?;
        let offs: Vec<usize> = idx
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize)
            .collect();
        let max = offs.iter().copied().max().unwrap_or(0);
        // every token ends within MAX_NAME_LEN of its start; the table
        // may end sooner, so read the tail a piece at a time
        let mut bytes = read_exact(mem, table, max, "kallsyms_token_table")?;
        let mut tail = [0u8; 16];
        while !bytes[max..].contains(&0) {
            if bytes.len() >= max + MAX_NAME_LEN {
                return Err(KallsymsError::Malformed {
                    what: "kallsyms_token_table",
                    va: table,
                    reason: format!("token at offset {max} is not NUL-terminated"),
                });
            }
            let va = table
                .checked_add(bytes.len() as u64)
                .ok_or(KallsymsError::Malformed {
                    what: "kallsyms_token_table",
                    va: table,
                    reason: "runs past the end of the address space".into(),
                })?;
            mem.read(va, &mut tail)
                .map_err(|reason| KallsymsError::Read {
                    what: "kallsyms_token_table",
                    va,
                    reason,
                })?;
            bytes.extend_from_slice(&tail);
        }
        let tokens =
            offs.iter()
                .map(|&o| {
                    let rest = &bytes[o..];
                    let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                        KallsymsError::Malformed {
                            what: "kallsyms_token_table",
                            va: table.saturating_add(o as u64),
                            reason: "token is not NUL-terminated".into(),
                        }
                    })?;
                    Ok(rest[..end].to_vec())
                })
                .collect::<Result<_, _>>()?;
        Ok(Tokens(tokens))
    }
}

/// `kallsyms_names`, read in chunks as it is walked.
struct Chunked<'a> {
    mem: &'a dyn KernelMemory,
    base: u64,
    buf: Vec<u8>,
}

impl Chunked<'_> {
    /// Bytes `pos..pos+len` of the table, reading more as needed.
    fn get(&mut self, pos: usize, len: usize) -> Result<&[u8], KallsymsError> {
        let end = pos
            .checked_add(len)
            .ok_or_else(|| KallsymsError::Malformed {
                what: "kallsyms_names",
                va: self.base,
                reason: format!("entry at byte {pos} overflows"),
            })?;
        while self.buf.len() < end {
            let va = self
                .base
                .checked_add(self.buf.len() as u64)
                .ok_or_else(|| KallsymsError::Malformed {
                    what: "kallsyms_names",
                    va: self.base,
                    reason: "runs past the end of the address space".into(),
                })?;
            // the table may end (and the mapping with it) inside a chunk:
            // fall back to the bytes this entry needs
            let mut chunk = vec![0u8; NAMES_CHUNK];
            if self.mem.read(va, &mut chunk).is_err() {
                chunk.truncate(end - self.buf.len());
                self.mem
                    .read(va, &mut chunk)
                    .map_err(|reason| KallsymsError::Read {
                        what: "kallsyms_names",
                        va,
                        reason,
                    })?;
            }
            self.buf.extend_from_slice(&chunk);
        }
        Ok(&self.buf[pos..end])
    }
}

/// Every entry's type letter and name.
fn read_names(
    mem: &dyn KernelMemory,
    names: u64,
    n: usize,
    tokens: &Tokens,
) -> Result<Vec<(u8, String)>, KallsymsError> {
    let mut table = Chunked {
        mem,
        base: names,
        buf: Vec::new(),
    };
    let mut out = Vec::with_capacity(n);
    let mut pos = 0usize;
    let mut text = Vec::with_capacity(64);
    for i in 0..n {
        let b0 = table.get(pos, 1)?[0];
        let (len, hdr) = if b0 & 0x80 != 0 {
            let b1 = table.get(pos + 1, 1)?[0];
            (usize::from(b0 & 0x7f) | usize::from(b1) << 7, 2)
        } else {
            (usize::from(b0), 1)
        };
        let bad = |reason: String| KallsymsError::Malformed {
            what: "kallsyms_names",
            va: names.saturating_add(pos as u64),
            reason: format!("entry {i}: {reason}"),
        };
        if len == 0 || len > MAX_NAME_LEN {
            return Err(bad(format!("length {len}")));
        }
        text.clear();
        for &t in table.get(pos + hdr, len)? {
            text.extend_from_slice(&tokens.0[usize::from(t)]);
        }
        if text.len() > MAX_NAME_LEN + 1 {
            return Err(bad(format!("name expands to {} bytes", text.len())));
        }
        let (&kind, name) = text.split_first().ok_or_else(|| bad("empty name".into()))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| bad("name is not UTF-8".into()))?
            .to_owned();
        out.push((kind, name));
        pos += hdr + len;
    }
    Ok(out)
}

/// Every entry's runtime address, and whether per-CPU entries are
/// absolute offsets.
fn read_addresses(
    mem: &dyn KernelMemory,
    at: &TableAddrs,
    names: &[(u8, String)],
) -> Result<(Vec<u64>, bool), KallsymsError> {
    let n = names.len();
    if let Some(va) = at.addresses {
        let b = read_exact(mem, va, n * 8, "kallsyms_addresses")?;
        let v = b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        return Ok((v, false));
    }
    let va = at
        .offsets
        .ok_or(KallsymsError::NotExported("kallsyms_offsets"))?;
    let b = read_exact(mem, va, n * 4, "kallsyms_offsets")?;
    let offs: Vec<i32> = b
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let overflow = |i: usize| KallsymsError::Malformed {
        what: "kallsyms_offsets",
        va: va.saturating_add(4 * i as u64),
        reason: format!("entry {i} ({}) overflows the base", offs[i]),
    };
    if let Some(rb) = at.relative_base {
        let base = read_u64(mem, rb, "kallsyms_relative_base")?;
        let absolute_percpu = offs.iter().any(|&o| o < 0);
        let v = offs
            .iter()
            .enumerate()
            .map(|(i, &o)| match (absolute_percpu, o >= 0) {
                (true, true) => Ok(o as u64),
                (true, false) => base
                    .checked_sub(1)
                    .and_then(|b| b.checked_add((-(i64::from(o))) as u64))
                    .ok_or_else(|| overflow(i)),
                (false, _) => base
                    .checked_add(u64::from(o as u32))
                    .ok_or_else(|| overflow(i)),
            })
            .collect::<Result<_, _>>()?;
        return Ok((v, absolute_percpu));
    }
    // no base: offsets from each entry's own address, or from _text;
    // a symbol known by address (VMCOREINFO's _stext) tells which
    let (anchor, anchor_addr) = at.anchor.ok_or(KallsymsError::NotExported("_stext"))?;
    let i =
        names
            .iter()
            .position(|(_, n)| n == anchor)
            .ok_or_else(|| KallsymsError::Malformed {
                what: "kallsyms_names",
                va: at.names,
                reason: format!("no {anchor} entry to place the base-less offsets"),
            })?;
    let place_relative = |i: usize| {
        va.checked_add(4 * i as u64)
            .and_then(|p| p.checked_add_signed(i64::from(offs[i])))
    };
    if place_relative(i) == Some(anchor_addr) {
        let v = (0..offs.len())
            .map(|i| place_relative(i).ok_or_else(|| overflow(i)))
            .collect::<Result<_, _>>()?;
        return Ok((v, false));
    }
    let text = anchor_addr
        .checked_sub(u64::from(offs[i] as u32))
        .ok_or_else(|| overflow(i))?;
    let v = offs
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            text.checked_add(u64::from(o as u32))
                .ok_or_else(|| overflow(i))
        })
        .collect::<Result<_, _>>()?;
    Ok((v, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory that is one buffer at `base`.
    struct Flat {
        base: u64,
        bytes: Vec<u8>,
    }

    impl KernelMemory for Flat {
        fn read(&self, va: u64, buf: &mut [u8]) -> Result<(), String> {
            let start = va.checked_sub(self.base).ok_or("below the buffer")? as usize;
            let src = self
                .bytes
                .get(start..start + buf.len())
                .ok_or("past the buffer")?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    /// Builds tables for `syms` (type letter + name, offset) with one token
    /// per byte plus token 0xff = "ab", base-relative.
    fn tables(syms: &[(&str, i32)], base: u64) -> (Flat, TableAddrs) {
        let mem_base = 0xffff_0000_0000_0000u64;
        let mut bytes = vec![0u8; 0x4000];
        let put =
            |bytes: &mut Vec<u8>, at: usize, b: &[u8]| bytes[at..at + b.len()].copy_from_slice(b);
        // token table at 0x100: token t = [t] (for printable bytes), 0xff = "ab"
        let mut table = Vec::new();
        let mut index = Vec::new();
        for t in 0..=255u8 {
            index.extend_from_slice(&(table.len() as u16).to_le_bytes());
            if t == 0xff {
                table.extend_from_slice(b"ab\0");
            } else {
                table.extend_from_slice(&[t, 0]);
            }
        }
        put(&mut bytes, 0x100, &table);
        put(&mut bytes, 0x800, &index);
        let mut names = Vec::new();
        for (name, _) in syms {
            let enc: Vec<u8> = name
                .replace("ab", "\u{ff}")
                .chars()
                .map(|c| c as u32 as u8)
                .collect();
            names.push(enc.len() as u8);
            names.extend_from_slice(&enc);
        }
        put(&mut bytes, 0x1000, &names);
        for (i, (_, o)) in syms.iter().enumerate() {
            put(&mut bytes, 0x3000 + 4 * i, &o.to_le_bytes());
        }
        put(&mut bytes, 0x3f00, &base.to_le_bytes());
        put(&mut bytes, 0x3f08, &(syms.len() as u32).to_le_bytes());
        let at = TableAddrs {
            num_syms: mem_base + 0x3f08,
            names: mem_base + 0x1000,
            token_table: mem_base + 0x100,
            token_index: mem_base + 0x800,
            offsets: Some(mem_base + 0x3000),
            relative_base: Some(mem_base + 0x3f00),
            addresses: None,
            anchor: None,
        };
        (
            Flat {
                base: mem_base,
                bytes,
            },
            at,
        )
    }

    #[test]
    fn decodes_names_tokens_and_relative_offsets() {
        let (mem, at) = tables(
            &[("T_stext", 0), ("tabc", 0x10), ("Dab_data", 0x2000)],
            0xffff_8000,
        );
        let k = Kallsyms::read(&mem, &at).unwrap();
        assert!(!k.percpu_absolute);
        let got: Vec<_> = k
            .syms
            .iter()
            .map(|s| (s.kind, s.name.as_str(), s.addr))
            .collect();
        assert_eq!(
            got,
            [
                (b'T', "_stext", 0xffff_8000),
                (b't', "abc", 0xffff_8010),
                (b'D', "ab_data", 0xffff_a000)
            ]
        );
        assert_eq!(k.addr("abc"), Some(0xffff_8010));
    }

    #[test]
    fn negative_offsets_mean_absolute_percpu() {
        let base = 0xffff_ffff_8100_0000u64;
        let (mem, at) = tables(&[("Dpcpu", 0x40), ("T_text", -1), ("Tf", -0x11)], base);
        let k = Kallsyms::read(&mem, &at).unwrap();
        assert!(k.percpu_absolute);
        let addrs: Vec<_> = k.syms.iter().map(|s| s.addr).collect();
        assert_eq!(addrs, [0x40, base, base + 0x10]);
    }

    #[test]
    fn text_relative_offsets_are_anchored_by_stext() {
        let (mem, mut at) = tables(&[("T_text", 0), ("T_stext", 0x1_0000)], 0);
        at.relative_base = None;
        at.anchor = Some(("_stext", 0xffff_a000_0001_0000));
        let k = Kallsyms::read(&mem, &at).unwrap();
        assert_eq!(k.addr("_text"), Some(0xffff_a000_0000_0000));
    }

    #[test]
    fn place_relative_offsets_are_told_by_the_anchor() {
        // entry i at 0xffff000000003000 + 4i holds target - its own address
        let own = |i: i64| 0xffff_0000_0000_3000u64 as i64 + 4 * i;
        let target = 0xffff_0000_0000_1000u64 as i64;
        let (mem, mut at) = tables(
            &[
                ("T_text", (target - own(0)) as i32),
                ("T_stext", (target - own(1)) as i32),
                ("Tf", (target + 0x10 - own(2)) as i32),
            ],
            0,
        );
        at.relative_base = None;
        at.anchor = Some(("_stext", target as u64));
        let k = Kallsyms::read(&mem, &at).unwrap();
        assert_eq!(k.addr("_text"), Some(target as u64));
        assert_eq!(k.addr("f"), Some(target as u64 + 0x10));
    }

    #[test]
    fn damaged_tables_are_errors_naming_the_address() {
        // unsorted addresses
        let (mem, at) = tables(&[("Ta", 0x20), ("Tb", 0x10)], 0x1000);
        let e = Kallsyms::read(&mem, &at).unwrap_err().to_string();
        assert!(
            e.contains("not sorted") && e.contains("0xffff000000003000"),
            "{e}"
        );
        // a symbol count past the table: the names run off the buffer
        let (mut mem, at) = tables(&[("Ta", 0)], 0x1000);
        mem.bytes[0x3f08..0x3f0c].copy_from_slice(&3_000_000u32.to_le_bytes());
        let e = Kallsyms::read(&mem, &at).unwrap_err().to_string();
        assert!(e.contains("kallsyms_names"), "{e}");
        // zero symbols
        let (mut mem, at) = tables(&[("Ta", 0)], 0x1000);
        mem.bytes[0x3f08..0x3f0c].copy_from_slice(&0u32.to_le_bytes());
        let e = Kallsyms::read(&mem, &at).unwrap_err().to_string();
        assert!(e.contains("0 symbols"), "{e}");
    }
}
