//! `rd`: crash's memory display (hex words and ASCII), virtual or physical.

use super::fmt::ascii;
use super::{CmdError, CmdResult, parse_addr, parse_dec, usage};
use crate::addr::{PhysAddr, VirtAddr};
use crate::target::Session;

/// Most units one `rd` prints (crash has no limit; a runaway COUNT must not
/// make the server build a gigabyte of text).
const MAX_UNITS: u64 = 1 << 16;

/// `rd [-p] [-8|-16|-32|-64] ADDR [COUNT]`; the default unit is the
/// kernel's word (`unsigned long`: 8 bytes on x86_64/arm64, 4 on
/// i386/arm), as crash's.
pub(super) fn rd(s: &Session, args: &[&str]) -> CmdResult {
    let k = &s.kernel;
    let word = k.arch.pointer_size() as usize;
    let mut physical = false;
    let mut unit = word;
    let mut pos = Vec::new();
    for &a in args {
        match a {
            "-p" => physical = true,
            "-8" => unit = 1,
            "-16" => unit = 2,
            "-32" => unit = 4,
            "-64" => unit = 8,
            _ if a.starts_with('-') => return usage(format!("unknown option {a}")),
            _ => pos.push(a),
        }
    }
    let (addr, count) = match pos.as_slice() {
        [a] => (parse_addr(k, a)?, 1),
        [a, c] => (parse_addr(k, a)?, parse_dec("COUNT", c)?),
        [] => return usage("an address is needed"),
        _ => return usage("too many arguments"),
    };
    if count == 0 || count > MAX_UNITS {
        return usage(format!("COUNT must be 1..={MAX_UNITS}"));
    }
    if addr % unit as u64 != 0 {
        return usage(format!(
            "address {addr:#x} is not aligned to the {}-bit unit",
            unit * 8
        ));
    }
    let len = count as usize * unit;
    if addr.checked_add(len as u64 - 1).is_none() {
        return usage(format!(
            "{addr:#x} + {len:#x} bytes is past the address space"
        ));
    }
    let mut buf = vec![0u8; len];
    // Read what we can; print those lines, then the error for the rest.
    let (n, err) = if physical {
        let mut done = 0;
        let mut err = None;
        // page by page, so a hole ends the dump where it starts
        while done < len {
            let cur = addr + done as u64;
            let chunk = ((4096 - (cur & 4095)) as usize).min(len - done);
            match k
                .dump
                .memory
                .read_phys(PhysAddr(cur), &mut buf[done..done + chunk])
            {
                Ok(()) => done += chunk,
                Err(e) => {
                    err = Some(format!("physical address {:#x}: {e}", cur));
                    break;
                }
            }
        }
        (done, err)
    } else {
        let (n, e) = k.read_virt_partial(&k.kernel_space(), VirtAddr(addr), &mut buf);
        (n, e.map(|e| e.to_string()))
    };
    let n = n - n % unit;
    if n == 0 {
        return Err(CmdError::Failed(err.unwrap_or_default()));
    }
    let mut out = hex_lines(addr, &buf[..n], unit, 2 * word);
    if let Some(e) = err {
        out.push_str(&format!("rd: {e}\n"));
    }
    Ok(out)
}

/// crash's `rd` lines: 16 bytes a line, the address right-aligned `addr_digits`
/// hex digits wide (the kernel's pointer width), little-endian units of
/// `unit` bytes, then the ASCII column. `bytes` is a whole number of units.
fn hex_lines(addr: u64, bytes: &[u8], unit: usize, addr_digits: usize) -> String {
    let per_line = 16 / unit;
    let mut out = String::new();
    for (li, line) in bytes.chunks(16).enumerate() {
        let at = addr.wrapping_add((li * 16) as u64);
        out.push_str(&format!("{at:addr_digits$x}:  "));
        let mut words = Vec::with_capacity(per_line);
        for w in line.chunks(unit) {
            let mut v = [0u8; 8];
            v[..unit].copy_from_slice(w);
            words.push(format!(
                "{:0width$x}",
                u64::from_le_bytes(v),
                width = unit * 2
            ));
        }
        // pad short last lines so the ASCII column lines up
        let full = per_line * (unit * 2 + 1);
        let text = words.join(" ");
        out.push_str(&format!("{text:<w$}   {}\n", ascii(line), w = full - 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::hex_lines;

    const BYTES: [u8; 20] = *b"\x01\x02\x03\x04\x05\x06\x07\x08Linux ve\xff\0\0\0";

    #[test]
    fn a_32_bit_kernel_word_is_4_bytes_with_8_digit_addresses() {
        assert_eq!(
            hex_lines(0xc1000000, &BYTES, 4, 8),
            "c1000000:  04030201 08070605 756e694c 65762078   ........Linux ve\n\
             c1000010:  000000ff                              ....\n"
        );
    }

    #[test]
    fn a_64_bit_kernel_word_is_8_bytes_with_16_digit_addresses() {
        assert_eq!(
            hex_lines(0xffffffff81000000, &BYTES[..16], 8, 16),
            "ffffffff81000000:  0807060504030201 65762078756e694c   ........Linux ve\n"
        );
    }
}
