//! The dumped-page bitmaps of a kdump-compressed file, with O(1) rank: the
//! descriptor of a dumped pfn is at index rank(pfn), the number of dumped
//! pfns below it.

/// A bitmap over pfns with O(1) rank (number of set bits below a pfn).
pub(super) struct RankedBitmap {
    words: Vec<u64>,
    nbits: u64,
    /// Set bits before each group of [`RANK_GROUP`] words.
    group_rank: Vec<u64>,
}

const RANK_GROUP: usize = 8;

impl RankedBitmap {
    /// `bytes` is the on-disk bitmap (LSB-first); bits at or past `nbits`
    /// are ignored.
    pub(super) fn new(bytes: &[u8], nbits: u64) -> RankedBitmap {
        let nwords = nbits.div_ceil(64) as usize;
        let mut words: Vec<u64> = (0..nwords)
            .map(|i| {
                let mut w = [0u8; 8];
                let chunk = bytes.get(i * 8..).unwrap_or(&[]);
                let n = chunk.len().min(8);
                w[..n].copy_from_slice(&chunk[..n]);
                u64::from_le_bytes(w)
            })
            .collect();
        if let Some(last) = words.last_mut().filter(|_| !nbits.is_multiple_of(64)) {
            *last &= (1u64 << (nbits % 64)) - 1;
        }
        let mut group_rank = Vec::with_capacity(nwords / RANK_GROUP + 1);
        let mut acc = 0u64;
        for g in words.chunks(RANK_GROUP) {
            group_rank.push(acc);
            acc += g.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        }
        group_rank.push(acc);
        RankedBitmap {
            words,
            nbits,
            group_rank,
        }
    }

    pub(super) fn get(&self, bit: u64) -> bool {
        bit < self.nbits && (self.words[(bit / 64) as usize] >> (bit % 64)) & 1 == 1
    }

    /// Set bits in `[0, bit)`; `bit` may be `nbits`.
    pub(super) fn rank(&self, bit: u64) -> u64 {
        let bit = bit.min(self.nbits);
        let w = (bit / 64) as usize;
        let g = w / RANK_GROUP;
        let mut r = self.group_rank[g];
        for x in &self.words[g * RANK_GROUP..w] {
            r += u64::from(x.count_ones());
        }
        if !bit.is_multiple_of(64) {
            r += u64::from((self.words[w] & ((1u64 << (bit % 64)) - 1)).count_ones());
        }
        r
    }

    /// Runs of set bits as `(first, end)` pfn pairs.
    pub(super) fn runs(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut start: Option<u64> = None;
        for (i, &w) in self.words.iter().enumerate() {
            let base = i as u64 * 64;
            match (w, start) {
                (0, None) | (u64::MAX, Some(_)) => continue,
                _ => {}
            }
            for b in 0..64 {
                let set = (w >> b) & 1 == 1;
                match (set, start) {
                    (true, None) => start = Some(base + b),
                    (false, Some(s)) => {
                        out.push((s, base + b));
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(s) = start {
            out.push((s, self.nbits));
        }
        out
    }
}
