//! Counter-based seeding: one independent PCG stream per (seed, purpose, a, b), so that a
//! person's day is drawn the same whichever thread draws it and in whatever order.

use rand_pcg::Pcg64Mcg;

/// Purposes of random streams; each gets its own stream.
#[derive(Clone, Copy)]
#[repr(u64)]
pub(crate) enum Stream {
    Places = 2,
    Persons = 3,
    Head = 4,
    Plan = 5,
    Pings = 7,
    History = 9,
    Transmit = 10,
    Observe = 11,
    Goods = 12,
    Seeding = 13,
    Exposure = 14,
}

/// SplitMix64's finaliser: a bijective mixer with good avalanche.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream for (seed, purpose, a, b).
/// The generator of every stream.
pub(crate) type Pcg = Pcg64Mcg;

pub(crate) fn rng(seed: u64, stream: Stream, a: u64, b: u64) -> Pcg64Mcg {
    let h1 = mix(seed ^ mix((stream as u64) ^ mix(a ^ mix(b))));
    let h2 = mix(h1 ^ 0xD1B5_4A32_D192_ED03);
    Pcg64Mcg::new(((h1 as u128) << 64) | h2 as u128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    const PINNED: u64 = 12_964_626_550_148_925_149;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| 0).scan(rng(1, Stream::Plan, 2, 3), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).map(|_| 0).scan(rng(1, Stream::Plan, 2, 3), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..4).map(|_| 0).scan(rng(1, Stream::Plan, 3, 2), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // The stream is pinned: a change of generator or seeding would change every output.
        assert_eq!(rng(7, Stream::Places, 0, 0).next_u64(), PINNED);
    }
}
