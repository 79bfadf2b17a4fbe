//! VMCOREINFO: the KEY=VALUE text the kernel exports for dump tools.
//!
//! Value syntax differs by key family, and getting it wrong is a classic
//! bug: SYMBOL(x) and KERNELOFFSET are hex without 0x; NUMBER(x), OFFSET,
//! SIZE, LENGTH and CRASHTIME are decimal, and NUMBER(phys_base) is signed.

use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct VmcoreInfo {
    entries: HashMap<String, String>,
    /// Keys in file order, for `info` output.
    order: Vec<String>,
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

fn parse_dec(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok().map(|v| v as i64);
    }
    s.parse::<i64>()
        .ok()
        .or_else(|| s.parse::<u64>().ok().map(|v| v as i64))
}

/// A GNU build-id as VMCOREINFO writes it: non-empty, even-length hex.
pub fn is_build_id(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl VmcoreInfo {
    /// Parses the note text. Malformed lines are skipped, never fatal.
    pub fn parse(text: &str) -> Self {
        let mut v = VmcoreInfo::default();
        for line in text.lines() {
            let Some((k, val)) = line.split_once('=') else {
                continue;
            };
            if k.is_empty() {
                continue;
            }
            if v.entries.insert(k.to_string(), val.to_string()).is_none() {
                v.order.push(k.to_string());
            }
        }
        v
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.order
            .iter()
            .map(|k| (k.as_str(), self.entries[k].as_str()))
    }

    /// `SYMBOL(name)`: a (KASLR-relocated) virtual address, hex.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        parse_hex(self.get(&format!("SYMBOL({name})"))?)
    }

    /// `NUMBER(name)`: signed decimal (hex if written 0x..).
    pub fn number(&self, name: &str) -> Option<i64> {
        parse_dec(self.get(&format!("NUMBER({name})"))?)
    }

    /// `OFFSET(struct.member)`, decimal.
    pub fn offset(&self, name: &str) -> Option<u64> {
        parse_dec(self.get(&format!("OFFSET({name})"))?).map(|v| v as u64)
    }

    /// `SIZE(struct)`, decimal.
    pub fn size(&self, name: &str) -> Option<u64> {
        parse_dec(self.get(&format!("SIZE({name})"))?).map(|v| v as u64)
    }

    /// `LENGTH(array)`, decimal.
    pub fn length(&self, name: &str) -> Option<u64> {
        parse_dec(self.get(&format!("LENGTH({name})"))?).map(|v| v as u64)
    }

    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `BUILD-ID`: the kernel's GNU build-id, lowercase or uppercase hex of
    /// even length. A value that is not one (damaged dump) is `None`: it
    /// names no file, and [`VmcoreInfo::bad_build_id`] says why.
    pub fn build_id(&self) -> Option<&str> {
        self.get("BUILD-ID").filter(|v| is_build_id(v))
    }

    /// A warning for a `BUILD-ID` that is present but not hex, so the
    /// caller can say it was ignored.
    pub fn bad_build_id(&self) -> Option<String> {
        let v = self.get("BUILD-ID").filter(|v| !is_build_id(v))?;
        Some(format!(
            "VMCOREINFO BUILD-ID {:?} is not an even-length hex string; ignored",
            v.escape_debug().to_string()
        ))
    }

    pub fn page_size(&self) -> Option<u64> {
        parse_dec(self.get("PAGESIZE")?).map(|v| v as u64)
    }

    /// KASLR offset (hex), 0 when absent.
    pub fn kernel_offset(&self) -> Option<u64> {
        parse_hex(self.get("KERNELOFFSET")?)
    }

    /// Seconds since the epoch when the crash kernel took over.
    pub fn crash_time(&self) -> Option<i64> {
        parse_dec(self.get("CRASHTIME")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_syntax_per_key_family() {
        let v = VmcoreInfo::parse(
            "OSRELEASE=6.1.0-56-cloud-amd64\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff98a10000\n\
             NUMBER(phys_base)=-278921216\nNUMBER(pgtable_l5_enabled)=0\nOFFSET(list_head.next)=0\n\
             KERNELOFFSET=16000000\nCRASHTIME=1763765155\nbroken line\n=x\n",
        );
        assert_eq!(v.symbol("init_top_pgt"), Some(0xffffffff98a10000));
        assert_eq!(v.number("phys_base"), Some(-0x10a00000));
        assert_eq!(v.number("pgtable_l5_enabled"), Some(0));
        assert_eq!(v.offset("list_head.next"), Some(0));
        assert_eq!(v.kernel_offset(), Some(0x16000000));
        assert_eq!(v.page_size(), Some(4096));
        assert_eq!(v.osrelease(), Some("6.1.0-56-cloud-amd64"));
        assert_eq!(v.crash_time(), Some(1763765155));
        assert_eq!(v.symbol("nope"), None);
    }

    #[test]
    fn build_id_must_be_even_length_hex() {
        let ok = VmcoreInfo::parse("BUILD-ID=3B0aff\n");
        assert_eq!(ok.build_id(), Some("3B0aff"));
        assert_eq!(ok.bad_build_id(), None);
        for bad in ["3b\u{e9}0a", "\u{e9}", "3b0", "xyz0", ""] {
            let v = VmcoreInfo::parse(&format!("BUILD-ID={bad}\n"));
            assert_eq!(v.build_id(), None, "{bad:?}");
            let w = v.bad_build_id().expect("a warning");
            assert!(w.contains("BUILD-ID") && w.contains("ignored"), "{w}");
        }
        assert_eq!(VmcoreInfo::parse("OSRELEASE=6.1\n").bad_build_id(), None);
    }
}
