//! Deterministic mutation of real inputs: a seeded xorshift generator and the byte
//! mutators the hostile-input corpus applies (bit flips, truncation, splices,
//! insertions, deletions). Seeded, so a failing input is rebuilt from the seed the
//! test prints instead of being lost with the run.

/// A small deterministic generator (xorshift64).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point: it would only ever yield zeros.
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Printable ASCII, for tokens and strings that must survive a URL or a header.
    pub fn ascii(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }
}

/// The mutations, by the name a failure report shows.
pub const KINDS: [&str; 7] = [
    "bitflip",
    "byteset",
    "truncate",
    "splice",
    "insert",
    "delete",
    "duplicate",
];

/// One mutation of `sample` (`donor` feeds splices), named by what was done.
pub fn mutate(rng: &mut XorShift, sample: &[u8], donor: &[u8]) -> (String, Vec<u8>) {
    let mut out = sample.to_vec();
    if out.is_empty() {
        let n = 1 + rng.below(64);
        return ("random".into(), rng.bytes(n));
    }
    let kind = KINDS[rng.below(KINDS.len())];
    match kind {
        "bitflip" => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
        }
        "byteset" => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(out.len());
                out[at] = rng.next_u64() as u8;
            }
        }
        "truncate" => out.truncate(rng.below(out.len())),
        "splice" => {
            let cut = rng.below(out.len());
            let from = rng.below(donor.len().max(1));
            out.truncate(cut);
            out.extend_from_slice(donor.get(from..).unwrap_or_default());
        }
        "insert" => {
            let at = rng.below(out.len() + 1);
            let n = 1 + rng.below(16);
            let bytes = rng.bytes(n);
            out.splice(at..at, bytes);
        }
        "delete" => {
            let at = rng.below(out.len());
            let n = 1 + rng.below(16);
            out.drain(at..(at + n).min(out.len()));
        }
        _ => {
            // duplicate: a chunk of the input repeated in place.
            let at = rng.below(out.len());
            let n = 1 + rng.below(64);
            let chunk = out[at..(at + n).min(out.len())].to_vec();
            out.splice(at..at, chunk);
        }
    }
    (kind.into(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutants() {
        let sample = b"<plist><dict><key>UDID</key><string>x</string></dict></plist>";
        let run = |seed| {
            let mut rng = XorShift::new(seed);
            (0..50)
                .map(|_| mutate(&mut rng, sample, b"donor").1)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
