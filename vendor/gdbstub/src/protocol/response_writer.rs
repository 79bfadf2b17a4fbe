use crate::conn::Connection;
use crate::internal::BeBytes;
use crate::protocol::SpecificIdKind;
use crate::protocol::SpecificThreadId;
#[cfg(feature = "trace-pkt")]
use alloc::string::String;
#[cfg(feature = "trace-pkt")]
use alloc::vec::Vec;
use num_traits::identities::one;
use num_traits::CheckedRem;
use num_traits::PrimInt;

/// Newtype around a Connection error. Having a newtype allows implementing a
/// `From<ResponseWriterError<C>> for crate::Error<T, C>`, which greatly
/// simplifies some of the error handling in the main gdbstub.
#[derive(Debug, Clone)]
pub struct Error<C>(pub C);

/// A wrapper around [`Connection`] that computes the single-byte checksum of
/// incoming / outgoing data.
pub struct ResponseWriter<'a, C: Connection> {
    inner: &'a mut C,
    started: bool,
    checksum: u8,

    rle_enabled: bool,
    rle_char: u8,
    rle_repeat: u8,

    // buffer to log outgoing packets. only allocates if logging is enabled.
    #[cfg(feature = "trace-pkt")]
    msg: Vec<u8>,
}

impl<'a, C: Connection + 'a> ResponseWriter<'a, C> {
    /// Creates a new ResponseWriter
    pub fn new(inner: &'a mut C, rle_enabled: bool) -> Self {
        Self {
            inner,
            started: false,
            checksum: 0,

            rle_enabled,
            rle_char: 0,
            rle_repeat: 0,

            #[cfg(feature = "trace-pkt")]
            msg: Vec::new(),
        }
    }

    /// Consumes self, writing out the final '#' and checksum
    pub fn flush(mut self) -> Result<(), Error<C::Error>> {
        // don't include the '#' in checksum calculation
        let checksum = if self.rle_enabled {
            self.write(b'#')?;
            // (note: even though `self.write` was called, the the '#' char hasn't been
            // added to the checksum, and is just sitting in the RLE buffer)
            self.checksum
        } else {
            let checksum = self.checksum;
            self.write(b'#')?;
            checksum
        };

        self.write_hex(checksum)?;

        // HACK: "write" a dummy char to force an RLE flush
        if self.rle_enabled {
            self.write(0)?;
        }

        #[cfg(feature = "trace-pkt")]
        trace!("--> ${}", String::from_utf8_lossy(&self.msg));

        self.inner.flush().map_err(Error)?;

        Ok(())
    }

    /// Get a mutable reference to the underlying connection.
    /// corestub patch: whether any byte of the reply has been written.
    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn as_conn(&mut self) -> &mut C {
        self.inner
    }

    #[cfg(feature = "trace-pkt")]
    fn trace_byte(&mut self, byte: u8) {
        if self.rle_enabled {
            match self.msg.as_slice() {
                [.., c, b'*'] => {
                    let c = *c;
                    self.msg.pop();
                    for _ in 0..(byte - 29) {
                        self.msg.push(c);
                    }
                }
                _ => self.msg.push(byte),
            }
        } else {
            self.msg.push(byte)
        }
    }

    fn inner_write(&mut self, byte: u8) -> Result<(), Error<C::Error>> {
        #[cfg(feature = "trace-pkt")]
        if log_enabled!(log::Level::Trace) {
            self.trace_byte(byte);
        }

        if !self.started {
            self.started = true;
            self.inner.write(b'$').map_err(Error)?;
        }

        self.checksum = self.checksum.wrapping_add(byte);
        self.inner.write(byte).map_err(Error)
    }

    /// corestub patch: `inner_write` for a slice of already run-length
    /// encoded bytes: one checksum pass and one `Connection::write_all`.
    fn inner_write_all(&mut self, buf: &[u8]) -> Result<(), Error<C::Error>> {
        if buf.is_empty() {
            return Ok(());
        }

        #[cfg(feature = "trace-pkt")]
        if log_enabled!(log::Level::Trace) {
            for &byte in buf {
                self.trace_byte(byte);
            }
        }

        if !self.started {
            self.started = true;
            self.inner.write(b'$').map_err(Error)?;
        }

        self.checksum = buf.iter().fold(self.checksum, |a, &b| a.wrapping_add(b));
        self.inner.write_all(buf).map_err(Error)
    }

    /// corestub patch: what `write` does for each byte of `data`, for a whole
    /// slice: runs of equal bytes are counted at once and merged with the
    /// pending run (`rle_char` x `rle_repeat`), stretches of runs too short
    /// to encode are copied. Stores in `out` the bytes `write` would have
    /// passed to `inner_write` and returns their count; the last run stays
    /// pending, as in `write`. `out` must hold `data.len() + RLE_MAX_FLUSH`
    /// bytes: `write` emits at most as many bytes for a run as it is long,
    /// except for the pending run carried in from before `data`.
    fn rle_encode(&mut self, data: &[u8], out: &mut [u8]) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < data.len() {
            let c = data[i];
            let run = run_len(&data[i..], c);
            i += run;
            n += self.rle_run(c, run, &mut out[n..]);

            // runs shorter than 4 are written as they are: copy them up to
            // the next longer run, or up to the last run (which stays pending)
            let lit_end = match data[i..]
                .windows(4)
                .position(|w| w[0] == w[1] && w[1] == w[2] && w[2] == w[3])
            {
                Some(p) => i + p,
                None => data.len() - run_len_back(&data[i..]),
            };
            if lit_end > i {
                n += rle_flush(self.rle_char, self.rle_repeat, &mut out[n..]);
                self.rle_repeat = 0;
                out[n..n + (lit_end - i)].copy_from_slice(&data[i..lit_end]);
                n += lit_end - i;
                i = lit_end;
            }
        }
        n
    }

    /// corestub patch: `rle_encode` for `run` times `c`.
    fn rle_run(&mut self, c: u8, run: usize, out: &mut [u8]) -> usize {
        let mut n = 0;
        let mut repeat = run;
        if c == self.rle_char {
            repeat += self.rle_repeat as usize;
        } else {
            n += rle_flush(self.rle_char, self.rle_repeat, out);
        }
        // `write` flushes a run when one more byte would not fit
        while repeat > RLE_MAX_REPEAT as usize {
            n += rle_flush(c, RLE_MAX_REPEAT, &mut out[n..]);
            repeat -= RLE_MAX_REPEAT as usize;
        }
        self.rle_char = c;
        self.rle_repeat = repeat as u8;
        n
    }

    fn write(&mut self, byte: u8) -> Result<(), Error<C::Error>> {
        if !self.rle_enabled {
            return self.inner_write(byte);
        }

        const ASCII_FIRST_PRINT: u8 = b' ';
        const ASCII_LAST_PRINT: u8 = b'~';

        // handle RLE
        let rle_printable = (ASCII_FIRST_PRINT - 4 + (self.rle_repeat + 1)) <= ASCII_LAST_PRINT;
        if byte == self.rle_char && rle_printable {
            self.rle_repeat += 1;
            Ok(())
        } else {
            loop {
                match self.rle_repeat {
                    0 => {} // happens once, after the first char is written
                    // RLE doesn't win, just output the byte
                    1 | 2 | 3 => {
                        for _ in 0..self.rle_repeat {
                            self.inner_write(self.rle_char)?
                        }
                    }
                    // RLE would output an invalid char ('#' or '$')
                    7 | 8 => {
                        self.inner_write(self.rle_char)?;
                        self.rle_repeat -= 1;
                        continue;
                    }
                    // RLE wins for repetitions >4
                    _ => {
                        self.inner_write(self.rle_char)?;
                        self.inner_write(b'*')?;
                        self.inner_write(ASCII_FIRST_PRINT - 4 + self.rle_repeat)?;
                    }
                }

                self.rle_char = byte;
                self.rle_repeat = 1;

                break Ok(());
            }
        }
    }

    /// Write an entire string over the connection.
    pub fn write_str(&mut self, s: &str) -> Result<(), Error<C::Error>> {
        for b in s.as_bytes().iter() {
            self.write(*b)?;
        }
        Ok(())
    }

    /// Write a single byte as a hex string (two ascii chars)
    fn write_hex(&mut self, byte: u8) -> Result<(), Error<C::Error>> {
        for &digit in [(byte & 0xf0) >> 4, byte & 0x0f].iter() {
            let c = match digit {
                0..=9 => b'0' + digit,
                10..=15 => b'a' + digit - 10,
                // This match arm is unreachable, but the compiler isn't smart enough to optimize
                // out the branch. As such, using `unreachable!` here would introduce panicking
                // code to `gdbstub`.
                //
                // In this case, it'd be totally reasonable to use
                // `unsafe { core::hint::unreachable_unchecked() }`, but i'll be honest, using some
                // spooky unsafe compiler hints just to eek out a smidge more performance here just
                // isn't worth the cognitive overhead.
                //
                // Moreover, I've played around with this code in godbolt.org, and it turns out that
                // leaving this match arm as `=> digit` ends up generating the _exact same code_ as
                // using `unreachable_unchecked` (at least on x86_64 targets compiled using the
                // latest Rust compiler). YMMV on other platforms.
                _ => digit,
            };
            self.write(c)?;
        }
        Ok(())
    }

    /// Write a byte-buffer as a hex string (i.e: two ascii chars / byte).
    ///
    /// corestub patch: encodes `data` a chunk at a time (table lookup),
    /// run-length encodes each chunk in one pass and hands it to the
    /// connection with one `write_all`, instead of one `write` per hex digit.
    /// The bytes on the wire are the same as from `write_hex` per byte.
    pub fn write_hex_buf(&mut self, data: &[u8]) -> Result<(), Error<C::Error>> {
        const CHUNK: usize = 256;

        let mut hex = [0; 2 * CHUNK];
        let mut rle = [0; 2 * CHUNK + RLE_MAX_FLUSH];
        for chunk in data.chunks(CHUNK) {
            // a chunk of one byte whose two digits are equal (zeroed memory)
            // is one run of one digit: no need to spell it out
            let [hi, lo] = HEX_PAIRS[chunk[0] as usize];
            if self.rle_enabled && hi == lo && run_len(chunk, chunk[0]) == chunk.len() {
                let n = self.rle_run(hi, 2 * chunk.len(), &mut rle);
                self.inner_write_all(&rle[..n])?;
                continue;
            }

            let hex = &mut hex[..2 * chunk.len()];
            for (digits, &b) in hex.chunks_exact_mut(2).zip(chunk) {
                digits.copy_from_slice(&HEX_PAIRS[b as usize]);
            }
            if self.rle_enabled {
                let n = self.rle_encode(hex, &mut rle);
                self.inner_write_all(&rle[..n])?;
            } else {
                self.inner_write_all(hex)?;
            }
        }
        Ok(())
    }

    /// Write data using the binary protocol.
    pub fn write_binary(&mut self, data: &[u8]) -> Result<(), Error<C::Error>> {
        for &b in data.iter() {
            match b {
                b'#' | b'$' | b'}' | b'*' => {
                    self.write(b'}')?;
                    self.write(b ^ 0x20)?
                }
                _ => self.write(b)?,
            }
        }
        Ok(())
    }

    /// corestub patch (PATCHES.md, 9 and 11): `write_binary` for a whole
    /// slice, a chunk at a time in one pass: the bytes up to the next one
    /// that needs an escape or starts a run of 4 or more are copied as they
    /// are (found 8 bytes at a time, [`next_special`]), a run is written as
    /// `rle_flush` writes it, and `#`, `$`, `}` and `*` are sent as `}`
    /// followed by the byte XOR 0x20. Each chunk's output is passed to the
    /// connection with one `write_all`.
    ///
    /// Unlike `write_binary`, the second byte of an escape never starts (or
    /// joins) a run. Both clients expand a run by repeating the byte before
    /// the `*`, but LLDB does it after unescaping (`ExpandRLE` handles `}`
    /// and `*` in one pass), so `}` `\x03` `*` `!` (`#` then four `\x03`
    /// for GDB) is five `#` for LLDB. Runs of unescaped bytes read the same
    /// for both. No run is left pending: a run is ended at each chunk's end
    /// and at each escape (a run cut in two reads the same).
    pub fn write_binary_buf(&mut self, data: &[u8]) -> Result<(), Error<C::Error>> {
        const CHUNK: usize = 4096;

        if !self.rle_enabled {
            return self.write_binary_plain(data);
        }
        let mut out = [0; 2 * CHUNK + RLE_MAX_FLUSH];
        // the run `write` left pending (the `b` of an `x` reply)
        let mut n = rle_flush(self.rle_char, self.rle_repeat, &mut out);
        self.rle_repeat = 0;
        for chunk in data.chunks(CHUNK) {
            n += encode_binary_rle(chunk, &mut out[n..]);
            self.inner_write_all(&out[..n])?;
            n = 0;
        }
        self.inner_write_all(&out[..n])
    }

    /// corestub patch: `write_binary_buf` without run-length encoding.
    fn write_binary_plain(&mut self, data: &[u8]) -> Result<(), Error<C::Error>> {
        let mut rest = data;
        loop {
            let plain = rest
                .iter()
                .position(|&b| needs_binary_escape(b))
                .unwrap_or(rest.len());
            self.inner_write_all(&rest[..plain])?;
            let Some(&b) = rest.get(plain) else {
                return Ok(());
            };
            self.inner_write_all(&[b'}', b ^ 0x20])?;
            rest = &rest[plain + 1..];
        }
    }

    /// Write a number as a big-endian hex string using the most compact
    /// representation possible (i.e: trimming leading zeros).
    pub fn write_num<D: BeBytes + PrimInt>(&mut self, digit: D) -> Result<(), Error<C::Error>> {
        if digit.is_zero() {
            return self.write_hex(0);
        }

        let mut buf = [0; 16];
        // infallible (unless digit is a >128 bit number)
        let len = digit.to_be_bytes(&mut buf).unwrap();
        let buf = &buf[..len];
        for b in buf.iter().copied().skip_while(|&b| b == 0) {
            self.write_hex(b)?
        }
        Ok(())
    }

    /// Write a number as a decimal string, converting every digit to an ascii
    /// char.
    pub fn write_dec<D: PrimInt + CheckedRem>(
        &mut self,
        mut digit: D,
    ) -> Result<(), Error<C::Error>> {
        if digit.is_zero() {
            return self.write(b'0');
        }

        let one: D = one();
        let ten = (one << 3) + (one << 1);
        let mut d = digit;
        let mut pow_10 = one;
        // Get the number of digits in digit
        while d >= ten {
            d = d / ten;
            pow_10 = pow_10 * ten;
        }

        // Write every digit from left to right as an ascii char
        while !pow_10.is_zero() {
            let mut byte = 0;
            // We have a single digit here which uses up to 4 bit
            for i in 0..4 {
                if !((digit / pow_10) & (one << i)).is_zero() {
                    byte += 1 << i;
                }
            }
            self.write(b'0' + byte)?;
            digit = digit % pow_10;
            pow_10 = pow_10 / ten;
        }
        Ok(())
    }

    #[inline]
    fn write_specific_id_kind(&mut self, tid: SpecificIdKind) -> Result<(), Error<C::Error>> {
        match tid {
            SpecificIdKind::All => self.write_str("-1")?,
            SpecificIdKind::WithId(id) => self.write_num(id.get())?,
        };
        Ok(())
    }

    pub fn write_specific_thread_id(
        &mut self,
        tid: SpecificThreadId,
    ) -> Result<(), Error<C::Error>> {
        if let Some(pid) = tid.pid {
            self.write_str("p")?;
            self.write_specific_id_kind(pid)?;
            self.write_str(".")?;
        }
        self.write_specific_id_kind(tid.tid)?;
        Ok(())
    }
}

/// corestub patch: the bytes the binary encoding escapes (`}` + byte ^ 0x20):
/// packet delimiters, the escape itself and the RLE marker.
#[inline]
fn needs_binary_escape(b: u8) -> bool {
    matches!(b, b'#' | b'$' | b'}' | b'*')
}

/// corestub patch: `data` escaped and run-length encoded into `out` (which
/// holds at least `2 * data.len()` bytes: an escape doubles a byte, a run
/// shrinks); returns the count. Every run ends in `data`.
fn encode_binary_rle(data: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < data.len() {
        let special = next_special(data, i);
        out[n..n + (special - i)].copy_from_slice(&data[i..special]);
        n += special - i;
        i = special;
        let Some(&c) = data.get(i) else {
            break;
        };
        if needs_binary_escape(c) {
            out[n..n + 2].copy_from_slice(&[b'}', c ^ 0x20]);
            n += 2;
            i += 1;
            continue;
        }
        let mut run = run_len(&data[i..], c);
        i += run;
        while run > 0 {
            let part = run.min(RLE_MAX_REPEAT as usize);
            // `part` fits a u8: at most RLE_MAX_REPEAT
            n += rle_flush(c, part as u8, &mut out[n..]);
            run -= part;
        }
    }
    n
}

/// corestub patch: the first index from `from` of a byte that needs an
/// escape or starts a run of 4 equal bytes (runs shorter than 4 are copied
/// as they are), or `data.len()`. Looks at 8 bytes at a time, 5 starts per
/// load (a run starting at byte 4 of the load ends at its byte 7).
fn next_special(data: &[u8], from: usize) -> usize {
    const STARTS: u64 = 0x0000_0080_8080_8080; // high bits of bytes 0..=4
    let mut i = from;
    while let Some(bytes) = data.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(bytes);
        let w = u64::from_le_bytes(word);
        let escapes = zero_bytes(w ^ splat(b'#'))
            | zero_bytes(w ^ splat(b'$'))
            | zero_bytes(w ^ splat(b'}'))
            | zero_bytes(w ^ splat(b'*'));
        let same_as_next = zero_bytes(w ^ (w >> 8));
        let runs = same_as_next & (same_as_next >> 8) & (same_as_next >> 16);
        let found = (escapes | runs) & STARTS;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 5;
    }
    while i < data.len() {
        let c = data[i];
        if needs_binary_escape(c) || data.get(i..i + 4) == Some(&[c; 4][..]) {
            return i;
        }
        i += 1;
    }
    data.len()
}

/// corestub patch: `b` in every byte of a word.
#[inline]
fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// corestub patch: the high bit of each byte of `w` that is zero (exact:
/// no carry crosses a byte).
#[inline]
fn zero_bytes(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7)
}

/// corestub patch: the two lowercase hex digits of every byte.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = [HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    table
};

/// corestub patch: how many bytes at the start of `data` equal `c`, compared
/// 16 at a time (zeroed memory, and its hex, is long runs).
#[inline]
fn run_len(data: &[u8], c: u8) -> usize {
    const BLOCK: usize = 16;
    let mut n = 0;
    while let Some(block) = data.get(n..n + BLOCK) {
        if block != [c; BLOCK] {
            break;
        }
        n += BLOCK;
    }
    n + data[n..].iter().take_while(|&&b| b == c).count()
}

/// corestub patch: the length of the run `data` ends with.
fn run_len_back(data: &[u8]) -> usize {
    match data.last() {
        Some(&c) => data.iter().rev().take_while(|&&b| b == c).count(),
        None => 0,
    }
}

/// corestub patch: the longest run `write` keeps pending: one more equal
/// byte would make the repeat count past `~` (`' ' - 4 + repeat`).
const RLE_MAX_REPEAT: u8 = b'~' - (b' ' - 4);

/// corestub patch: the most bytes `rle_flush` emits (`c c c*"` for 8).
const RLE_MAX_FLUSH: usize = 5;

/// corestub patch: the bytes `write` emits for a finished run of `repeat`
/// times `c` (the `loop` in `write`), stored at the start of `out`; returns
/// their count.
#[inline]
fn rle_flush(c: u8, mut repeat: u8, out: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        match repeat {
            0 => {}
            // RLE doesn't win, just output the byte
            1..=3 => {
                for _ in 0..repeat {
                    out[n] = c;
                    n += 1;
                }
            }
            // RLE would output an invalid char ('#' or '$')
            7 | 8 => {
                out[n] = c;
                n += 1;
                repeat -= 1;
                continue;
            }
            // RLE wins for repetitions >4
            _ => {
                out[n..n + 3].copy_from_slice(&[c, b'*', b' ' - 4 + repeat]);
                n += 3;
            }
        }
        return n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A mock connection that captures all written bytes
    struct MockConnection {
        data: Vec<u8>,
    }

    impl MockConnection {
        fn new() -> Self {
            Self { data: Vec::new() }
        }
    }

    impl Connection for MockConnection {
        type Error = ();

        fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
            self.data.push(byte);
            Ok(())
        }

        fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
            self.data.extend_from_slice(buf);
            Ok(())
        }

        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    /// Check that packet body (between '$' and '#') contains no '$' or '#'.
    fn assert_no_special_chars_in_body(data: &[u8]) {
        let hash_pos = data.iter().rposition(|&b| b == b'#').unwrap();
        for &byte in &data[1..hash_pos] {
            assert!(
                byte != b'$' && byte != b'#',
                "found {:?} in packet body",
                byte as char
            );
        }
    }

    /// corestub patch: one packet written by `write_hex_buf` (`fast`) or by
    /// the per-byte path (`write_hex` per byte), after `prefix` (which
    /// leaves a run pending).
    fn hex_packet(rle: bool, prefix: &str, data: &[u8], fast: bool) -> (Vec<u8>, bool) {
        let mut conn = MockConnection::new();
        let mut writer = ResponseWriter::new(&mut conn, rle);
        writer.write_str(prefix).unwrap();
        if fast {
            writer.write_hex_buf(data).unwrap();
        } else {
            for &b in data {
                writer.write_hex(b).unwrap();
            }
        }
        let started = writer.is_started();
        writer.flush().unwrap();
        (conn.data, started)
    }

    /// corestub patch: the bulk `write_hex_buf` puts the same bytes (and so
    /// the same checksum) on the wire as the per-byte path, with and without
    /// RLE: runs of every length around the RLE limits (4, 7/8, 98), runs
    /// crossing the encoder's 256-byte chunks, uniform chunks (which skip
    /// spelling out the digits), runs merging with a pending run from an
    /// earlier write, and pseudo-random data.
    #[test]
    fn write_hex_buf_matches_per_byte_path() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        inputs.push(Vec::new());
        for len in 0..300 {
            inputs.push(alloc::vec![0; len]);
            inputs.push(alloc::vec![0x11; len]);
        }
        for len in [250, 255, 256, 257, 300, 511, 512, 513, 1000, 5000] {
            let mut v = alloc::vec![0xab; len];
            v.resize(v.len() + len, 0);
            inputs.push(v);
        }
        // uniform chunks next to chunks ending or starting with the same digit
        for (a, b) in [(0x10, 0x00), (0x00, 0x01), (0xff, 0xff), (0x00, 0x11)] {
            for len in [255, 256, 257, 512] {
                let mut v = alloc::vec![a; len];
                v.resize(v.len() + len, b);
                v.resize(v.len() + len, 0);
                inputs.push(v);
            }
        }
        let mut x: u32 = 12345;
        for len in [1, 2, 3, 100, 256, 257, 4096, 65536] {
            let mut v = Vec::new();
            for i in 0..len {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                let r = (x >> 16) as u8;
                // random bytes, zeros, and random `0`/`1` digits (runs of
                // every length)
                v.push(match (i / 97) % 3 {
                    0 => r,
                    1 => 0,
                    _ => r & 0x11,
                });
            }
            inputs.push(v);
        }
        let prefixes = ["", "0", "00", "000000", "0000000", "aaaaaaaa", "x"];
        for rle in [false, true] {
            for prefix in prefixes {
                for data in &inputs {
                    let fast = hex_packet(rle, prefix, data, true);
                    let slow = hex_packet(rle, prefix, data, false);
                    assert!(
                        fast == slow,
                        "rle={} prefix={:?} len={}",
                        rle,
                        prefix,
                        data.len()
                    );
                    assert_no_special_chars_in_body(&fast.0);
                }
            }
        }
        // long runs really are run-length encoded: 0x00 x 256 is 512 x `0`: 5 x 98 ("0*~") + 22 ("0*2")
        let (pkt, _) = hex_packet(true, "", &[0; 256], true);
        assert_eq!(pkt, b"$0*~0*~0*~0*~0*~0*2#c4");
    }

    /// corestub patch: the body of one packet `write_binary_buf` wrote after
    /// `prefix`, decoded as GDB decodes it (runs expanded first, then
    /// escapes) and as LLDB does (both in one pass, a run repeating the last
    /// decoded byte); both must agree.
    fn binary_packet_decoded(rle: bool, prefix: &str, data: &[u8]) -> Vec<u8> {
        let mut conn = MockConnection::new();
        let mut writer = ResponseWriter::new(&mut conn, rle);
        writer.write_str(prefix).unwrap();
        writer.write_binary_buf(data).unwrap();
        writer.flush().unwrap();
        let wire = conn.data;
        assert_no_special_chars_in_body(&wire);
        let hash = wire.len() - 3;
        let body = &wire[1..hash];
        let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        assert_eq!(&wire[hash + 1..], alloc::format!("{:02x}", sum).as_bytes());
        let mut raw: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'*' {
                let last = *raw.last().unwrap();
                raw.extend(core::iter::repeat_n(last, (body[i + 1] - 29) as usize));
                i += 2;
            } else {
                raw.push(body[i]);
                i += 1;
            }
        }
        let mut gdb = Vec::new();
        let mut it = raw.into_iter();
        while let Some(b) = it.next() {
            gdb.push(if b == b'}' {
                it.next().unwrap() ^ 0x20
            } else {
                b
            });
        }
        let mut lldb: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'*' => {
                    let last = *lldb.last().unwrap();
                    lldb.extend(core::iter::repeat_n(last, (body[i + 1] - 29) as usize));
                    i += 2;
                }
                b'}' => {
                    lldb.push(body[i + 1] ^ 0x20);
                    i += 2;
                }
                b => {
                    lldb.push(b);
                    i += 1;
                }
            }
        }
        assert_eq!(gdb, lldb, "GDB and LLDB decode differently");
        gdb
    }

    /// corestub patch: `write_binary_buf` round-trips every input, RLE on
    /// and off: runs of every length (around 4, 7/8 and the 98 limit) of
    /// plain and escaped bytes, at every offset around the 8-byte scan and
    /// the 4096-byte chunks, after a pending run, and pseudo-random data.
    #[test]
    fn write_binary_buf_round_trips() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for c in [0u8, 0x41, b'#', b'$', b'}', b'*', b'b', 0x03] {
            for len in 0..210 {
                for lead in 0..9 {
                    let mut v: Vec<u8> = (0..lead).map(|i| 0x60 + i as u8).collect();
                    v.extend(core::iter::repeat_n(c, len));
                    v.push(0x5a);
                    inputs.push(v);
                }
            }
        }
        for at in [4090, 4093, 4095, 4096, 4097, 8190] {
            let mut v: Vec<u8> = (0..at).map(|i| (i % 251) as u8 | 0x80).collect();
            v.extend(core::iter::repeat_n(0, 200));
            v.extend((0..300).map(|i| (i % 7) as u8));
            inputs.push(v);
        }
        let mut x: u32 = 99;
        for len in [1, 7, 100, 4096, 10000, 65536] {
            let mut v = Vec::new();
            for i in 0..len {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                let r = (x >> 16) as u8;
                v.push(match (i / 61) % 4 {
                    0 => r,
                    1 => 0,
                    2 => b"#$}*\x03\0"[(r % 6) as usize],
                    _ => r & 0x3,
                });
            }
            inputs.push(v);
        }
        for rle in [false, true] {
            for prefix in ["", "b", "bbbbb", "x"] {
                for data in &inputs {
                    let got = binary_packet_decoded(rle, prefix, data);
                    let mut want = prefix.as_bytes().to_vec();
                    want.extend_from_slice(data);
                    assert!(
                        got == want,
                        "rle={} prefix={:?} len={}",
                        rle,
                        prefix,
                        data.len()
                    );
                }
            }
        }
        // zeroed memory is runs: 4096 zeros are 41 runs of 98 and one of 78,
        // 3 bytes each, between `$` and `#xx`
        let mut conn = MockConnection::new();
        let mut writer = ResponseWriter::new(&mut conn, true);
        writer.write_binary_buf(&[0; 4096]).unwrap();
        writer.flush().unwrap();
        assert_eq!(conn.data.len(), 1 + 42 * 3 + 3);
    }

    /// RLE must not produce '#' in packet body.
    #[test]
    fn rle_avoids_hash() {
        let mut conn = MockConnection::new();
        let mut writer = ResponseWriter::new(&mut conn, true);
        writer.write_str("0000000").unwrap();
        writer.flush().unwrap();
        assert_no_special_chars_in_body(&conn.data);
    }

    /// RLE must not produce '$' in packet body.
    #[test]
    fn rle_avoids_dollar() {
        let mut conn = MockConnection::new();
        let mut writer = ResponseWriter::new(&mut conn, true);
        writer.write_str("00000000").unwrap();
        writer.flush().unwrap();
        assert_no_special_chars_in_body(&conn.data);
    }
}
