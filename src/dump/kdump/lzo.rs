//! LZO1X pages of kdump-compressed files (`makedumpfile -l`).
//!
//! Our own decoder (about 100 lines, bounds-checked, no allocation): the
//! Rust LZO crates allocate per call or have no output bound, and the one
//! that is both safe and bounded is GPL.

/// A minimal LZO1X decompressor into a fixed buffer: no allocation, every
/// access bounds-checked. Written from the kernel's prose description of the
/// stream (Documentation/staging/lzo.rst). Returns the bytes written.
pub fn lzo1x_decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, &'static str> {
    struct In<'a> {
        s: &'a [u8],
        p: usize,
    }
    impl In<'_> {
        fn byte(&mut self) -> Result<usize, &'static str> {
            let b = *self.s.get(self.p).ok_or("input overrun")?;
            self.p += 1;
            Ok(b as usize)
        }
        /// The variable-length extension of a zero length field.
        fn ext(&mut self, base: usize) -> Result<usize, &'static str> {
            let mut n = base;
            loop {
                match self.byte()? {
                    0 => n = n.checked_add(255).ok_or("length overflow")?,
                    b => return n.checked_add(b).ok_or("length overflow"),
                }
            }
        }
        fn le16(&mut self) -> Result<usize, &'static str> {
            Ok(self.byte()? | (self.byte()? << 8))
        }
    }
    let mut i = In { s: src, p: 0 };
    let mut op = 0usize;
    let copy_lit =
        |i: &mut In, op: &mut usize, dst: &mut [u8], n: usize| -> Result<(), &'static str> {
            let from =
                i.s.get(i.p..i.p.checked_add(n).ok_or("input overrun")?)
                    .ok_or("input overrun")?;
            let to = dst
                .get_mut(*op..op.checked_add(n).ok_or("output overrun")?)
                .ok_or("output overrun")?;
            to.copy_from_slice(from);
            i.p += n;
            *op += n;
            Ok(())
        };
    let copy_match =
        |op: &mut usize, dst: &mut [u8], dist: usize, n: usize| -> Result<(), &'static str> {
            if dist > *op {
                return Err("lookbehind overrun");
            }
            let end = op
                .checked_add(n)
                .filter(|&e| e <= dst.len())
                .ok_or("output overrun")?;
            let from = *op - dist;
            if dist >= n {
                dst.copy_within(from..from + n, *op);
            } else {
                for k in 0..n {
                    dst[*op + k] = dst[from + k];
                }
            }
            *op = end;
            Ok(())
        };
    let mut state;
    let first = *src.first().ok_or("empty input")? as usize;
    if first > 17 {
        i.p = 1;
        let n = first - 17;
        copy_lit(&mut i, &mut op, dst, n)?;
        state = n.min(4);
    } else {
        state = 0;
    }
    loop {
        let t = i.byte()?;
        let (dist, len);
        if t < 16 {
            match state {
                0 => {
                    let n = if t == 0 { i.ext(15)? } else { t };
                    copy_lit(&mut i, &mut op, dst, n + 3)?;
                    state = 4;
                    continue;
                }
                1..=3 => {
                    dist = (i.byte()? << 2) + (t >> 2) + 1;
                    len = 2;
                }
                _ => {
                    dist = (i.byte()? << 2) + (t >> 2) + 2049;
                    len = 3;
                }
            }
            state = t & 3;
        } else if t < 32 {
            let n = if t & 7 == 0 { i.ext(7)? } else { t & 7 };
            let d = i.le16()?;
            let distance = 16384 + ((t & 8) << 11) + (d >> 2);
            if distance == 16384 {
                if i.p != src.len() {
                    return Err("trailing bytes after the end marker");
                }
                return Ok(op);
            }
            dist = distance;
            len = n + 2;
            state = d & 3;
        } else if t < 64 {
            let n = if t & 31 == 0 { i.ext(31)? } else { t & 31 };
            let d = i.le16()?;
            dist = (d >> 2) + 1;
            len = n + 2;
            state = d & 3;
        } else if t < 128 {
            dist = (i.byte()? << 3) + ((t >> 2) & 7) + 1;
            len = 3 + ((t >> 5) & 1);
            state = t & 3;
        } else {
            dist = (i.byte()? << 3) + ((t >> 2) & 7) + 1;
            len = 5 + ((t >> 5) & 3);
            state = t & 3;
        }
        copy_match(&mut op, dst, dist, len)?;
        copy_lit(&mut i, &mut op, dst, state)?;
    }
}
