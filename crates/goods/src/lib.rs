//! The goods engine (issue 10, 物防): imported cold-chain and other high-risk goods.
//!
//! Pure and deterministic. [`Goods`] indexes the batches and their hops once, in compact
//! arrays (a batch is a dense index; its repackings and its transfers are slices), so that a
//! positive sample's trace reads only what it reaches:
//! - [`Goods::downstream`]: the batch, every batch derived from it by repacking (splits and
//!   combinations, however deep, cycles in the records tolerated), and every place any of them
//!   went to — the recall list and the places to seal, each with the dates and the batches that
//!   put it there;
//! - [`Goods::upstream`]: the batches it was repacked from, up to the imported ones, their
//!   plants, and the sibling batches of the same plants;
//! - [`suspensions`]: the profile's supplier rule (1st positive at a plant → suspend 1 week, 2nd
//!   → 1 week, 3rd or more → 4 weeks under the Chinese profiles).

use std::collections::{BTreeMap, HashMap};

use chainbreak_core::model::{GoodsBatch, GoodsHop, HopKind};
use chainbreak_core::profile::ColdChain;
use jiff::civil::Date;
use serde::Serialize;

/// Bad goods records: which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoodsError {
    #[error("batch {0} is listed twice")]
    Duplicate(String),
    #[error("hop {index}: batch {batch} is not a known batch")]
    UnknownBatch { index: usize, batch: String },
    #[error("hop {index}: a repack names the derived batch (`to_batch_id`)")]
    RepackWithoutTarget { index: usize },
    #[error("hop {index}: a transfer names where the goods went (`to_place`)")]
    TransferWithoutPlace { index: usize },
    #[error("batch {batch}: its parent {parent} is not a known batch")]
    UnknownParent { batch: String, parent: String },
}

/// One transfer of a batch to a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transfer {
    from: Option<u32>,
    to: u32,
    date: Date,
}

/// The goods, indexed.
#[derive(Debug, Clone, Default)]
pub struct Goods {
    ids: Vec<String>,
    by_id: HashMap<String, u32>,
    plants: Vec<Option<String>>,
    /// Places by dense index.
    places: Vec<String>,
    /// Repackings: batch → derived batches (CSR), and derived → source batches.
    derived_at: Vec<u32>,
    derived: Vec<u32>,
    sources_at: Vec<u32>,
    sources: Vec<u32>,
    /// Transfers by batch (CSR), by date.
    transfers_at: Vec<u32>,
    transfers: Vec<Transfer>,
    /// Batches by plant.
    by_plant: BTreeMap<String, Vec<u32>>,
    /// Each batch's and each place's rank in id order: answers are sorted by id without
    /// comparing strings.
    batch_rank: Vec<u32>,
    place_rank: Vec<u32>,
}

/// A multiplicative hash for dense `u32` keys (place indexes): the answer's order never
/// depends on it.
#[derive(Default)]
struct U32Hasher(u64);

impl std::hash::Hasher for U32Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type BuildU32 = std::hash::BuildHasherDefault<U32Hasher>;

/// The rank of each id in sorted order.
fn ranks(ids: &[String]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| ids[a as usize].cmp(&ids[b as usize]));
    let mut rank = vec![0u32; ids.len()];
    for (i, &k) in order.iter().enumerate() {
        rank[k as usize] = i as u32;
    }
    rank
}

/// A place a traced batch went to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reached {
    pub place: String,
    /// The traced batches that went there, by id.
    pub batches: Vec<String>,
    pub first: Date,
    pub last: Date,
    /// No reached batch left it again: a last holder (retailer, restaurant, ...).
    pub last_holder: bool,
}

/// A place a trace reached, by dense index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceReach {
    pub place: u32,
    /// The reached batches that were there, in the order reached.
    pub batches: Vec<u32>,
    pub first: Date,
    pub last: Date,
    /// Some reached batch left it.
    pub left: bool,
}

/// What a batch reaches downstream, by dense index ([`Goods::reach`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The batch first, then every batch derived from it, in the order reached.
    pub batches: Vec<u32>,
    /// Every place they went to, in the order first reached.
    pub places: Vec<PlaceReach>,
    /// The hops followed (transfers and repackings).
    pub hops: usize,
}

/// What a positive batch reaches downstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Downstream {
    /// The batch and every batch derived from it, by id: the recall list.
    pub batches: Vec<String>,
    /// Every place they went to, by place: the places to seal and the workers to trace.
    pub places: Vec<Reached>,
    /// The hops followed (transfers and repackings).
    pub hops: usize,
}

/// Where a batch came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upstream {
    /// The batches it was repacked from, however far back, by id.
    pub ancestors: Vec<String>,
    /// The producing plants of the batch and its ancestors.
    pub plants: Vec<String>,
    /// The other batches of those plants, by id.
    pub siblings: Vec<String>,
}

/// Compressed rows from (row, value) pairs over `rows` rows.
fn csr<T: Copy>(rows: usize, mut pairs: Vec<(u32, T)>, key: impl Fn(&T) -> (u32, Date)) -> (Vec<u32>, Vec<T>) {
    pairs.sort_by_key(|(r, v)| (*r, key(v)));
    let mut at = vec![0u32; rows + 1];
    for (r, _) in &pairs {
        at[*r as usize + 1] += 1;
    }
    for i in 0..rows {
        at[i + 1] += at[i];
    }
    (at, pairs.into_iter().map(|(_, v)| v).collect())
}

impl Goods {
    /// Indexes `batches` and `hops` (every hop's batch known; a repack names its derived batch,
    /// a transfer its destination; a batch's `parent_batch_id` is a repacking too).
    pub fn new(batches: &[GoodsBatch], hops: &[GoodsHop]) -> Result<Goods, GoodsError> {
        let mut g = Goods::default();
        for b in batches {
            if g.by_id.insert(b.id.clone(), g.ids.len() as u32).is_some() {
                return Err(GoodsError::Duplicate(b.id.clone()));
            }
            g.ids.push(b.id.clone());
            g.plants.push(b.plant.clone());
        }
        let mut place_index: HashMap<String, u32> = HashMap::new();
        let mut place = |g: &mut Goods, p: &str| -> u32 {
            if let Some(&k) = place_index.get(p) {
                return k;
            }
            g.places.push(p.to_string());
            let k = (g.places.len() - 1) as u32;
            place_index.insert(p.to_string(), k);
            k
        };
        let batch = |g: &Goods, index: usize, id: &str| {
            g.by_id.get(id).copied().ok_or_else(|| GoodsError::UnknownBatch { index, batch: id.to_string() })
        };
        let mut repacks: Vec<(u32, u32)> = Vec::new();
        let mut transfers: Vec<(u32, Transfer)> = Vec::new();
        for (i, h) in hops.iter().enumerate() {
            let b = batch(&g, i, &h.batch_id)?;
            match h.kind {
                HopKind::Repack => {
                    let to = h.to_batch_id.as_deref().ok_or(GoodsError::RepackWithoutTarget { index: i })?;
                    repacks.push((b, batch(&g, i, to)?));
                }
                HopKind::Transfer => {
                    let to = h.to_place.as_deref().ok_or(GoodsError::TransferWithoutPlace { index: i })?;
                    let to = place(&mut g, to);
                    let from = h.from_place.as_deref().map(|f| place(&mut g, f));
                    transfers.push((b, Transfer { from, to, date: h.date }));
                }
            }
        }
        for (k, b) in batches.iter().enumerate() {
            if let Some(parent) = &b.parent_batch_id {
                let p = g
                    .by_id
                    .get(parent)
                    .copied()
                    .ok_or_else(|| GoodsError::UnknownParent { batch: b.id.clone(), parent: parent.clone() })?;
                repacks.push((p, k as u32));
            }
        }
        repacks.sort_unstable();
        repacks.dedup();
        let n = g.ids.len();
        let no_date = Date::MIN;
        (g.derived_at, g.derived) = csr(n, repacks.clone(), |_| (0, no_date));
        (g.sources_at, g.sources) = csr(n, repacks.iter().map(|&(a, b)| (b, a)).collect(), |_| (0, no_date));
        (g.transfers_at, g.transfers) = csr(n, transfers, |t| (t.to, t.date));
        for (k, p) in g.plants.iter().enumerate() {
            if let Some(p) = p {
                g.by_plant.entry(p.clone()).or_default().push(k as u32);
            }
        }
        g.batch_rank = ranks(&g.ids);
        g.place_rank = ranks(&g.places);
        Ok(g)
    }

    fn row<'a, T>(at: &[u32], values: &'a [T], b: u32) -> &'a [T] {
        &values[at[b as usize] as usize..at[b as usize + 1] as usize]
    }

    /// Batches reachable from `b` along `at`/`values` (itself included), in discovery order.
    fn walk(&self, b: u32, at: &[u32], values: &[u32]) -> Vec<u32> {
        let mut seen = vec![false; self.ids.len()];
        let mut out = vec![b];
        seen[b as usize] = true;
        let mut k = 0;
        while k < out.len() {
            for &d in Self::row(at, values, out[k]) {
                if !seen[d as usize] {
                    seen[d as usize] = true;
                    out.push(d);
                }
            }
            k += 1;
        }
        out
    }

    /// What a batch reaches downstream, by dense index (the trace itself, before ids are
    /// spelled out: what the benchmark times); `None` for an unknown batch.
    pub fn reach(&self, batch_id: &str) -> Option<Reach> {
        let b = *self.by_id.get(batch_id)?;
        let batches = self.walk(b, &self.derived_at, &self.derived);
        let mut hops = batches.len() - 1;
        let mut slot: HashMap<u32, usize, BuildU32> = HashMap::with_capacity_and_hasher(64, BuildU32::default());
        let mut places: Vec<PlaceReach> = Vec::new();
        let mut note = |place: u32, r: u32, date: Date, left: bool| {
            let k = *slot.entry(place).or_insert_with(|| {
                places.push(PlaceReach { place, batches: Vec::new(), first: date, last: date, left: false });
                places.len() - 1
            });
            let e = &mut places[k];
            // A batch's transfers are read together: it is the last one pushed if it is there.
            if e.batches.last() != Some(&r) {
                e.batches.push(r);
            }
            e.first = e.first.min(date);
            e.last = e.last.max(date);
            e.left |= left;
        };
        for &r in &batches {
            for t in Self::row(&self.transfers_at, &self.transfers, r) {
                hops += 1;
                note(t.to, r, t.date, false);
                // The place it left held it too, and is no last holder.
                if let Some(from) = t.from {
                    note(from, r, t.date, true);
                }
            }
        }
        Some(Reach { batches, places, hops })
    }

    /// Everything a batch reaches downstream, by id; `None` for an unknown batch.
    pub fn downstream(&self, batch_id: &str) -> Option<Downstream> {
        let Reach { mut batches, mut places, hops } = self.reach(batch_id)?;
        let by_id = |bs: &mut Vec<u32>| -> Vec<String> {
            bs.sort_unstable_by_key(|&b| self.batch_rank[b as usize]);
            bs.iter().map(|&b| self.ids[b as usize].clone()).collect()
        };
        let batches = by_id(&mut batches);
        places.sort_unstable_by_key(|e| self.place_rank[e.place as usize]);
        let places: Vec<Reached> = places
            .into_iter()
            .map(|mut p| Reached {
                place: self.places[p.place as usize].clone(),
                batches: by_id(&mut p.batches),
                first: p.first,
                last: p.last,
                last_holder: !p.left,
            })
            .collect();
        Some(Downstream { batches, places, hops })
    }

    /// Where a batch came from; `None` for an unknown batch.
    pub fn upstream(&self, batch_id: &str) -> Option<Upstream> {
        let b = *self.by_id.get(batch_id)?;
        let line = self.walk(b, &self.sources_at, &self.sources);
        let mut ancestors: Vec<String> = line[1..].iter().map(|&a| self.ids[a as usize].clone()).collect();
        ancestors.sort();
        let mut plants: Vec<String> = line.iter().filter_map(|&a| self.plants[a as usize].clone()).collect();
        plants.sort();
        plants.dedup();
        let mut siblings: Vec<String> = plants
            .iter()
            .flat_map(|p| self.by_plant[p].iter())
            .filter(|s| !line.contains(s))
            .map(|&s| self.ids[s as usize].clone())
            .collect();
        siblings.sort();
        siblings.dedup();
        Some(Upstream { ancestors, plants, siblings })
    }
}

impl Goods {
    /// The batches that were transferred to `place` on a day in `from..=to`, by id: what an
    /// environment sample's positive there puts under suspicion.
    pub fn held_at(&self, place: &str, from: Date, to: Date) -> Vec<String> {
        let Some(p) = self.places.iter().position(|x| x == place) else { return Vec::new() };
        let mut out: Vec<String> = (0..self.ids.len())
            .filter(|&b| {
                Self::row(&self.transfers_at, &self.transfers, b as u32)
                    .iter()
                    .any(|t| t.to as usize == p && from <= t.date && t.date <= to)
            })
            .map(|b| self.ids[b].clone())
            .collect();
        out.sort();
        out
    }
}

/// A plant's imports suspended by the supplier rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspension {
    pub plant: String,
    /// The how-many-th positive at the plant it follows (1-based).
    pub nth: u32,
    pub from: Date,
    /// The first day imports are allowed again.
    pub until: Date,
}

/// The suspensions the profile's rule gives for positive samples at foreign plants, as (plant,
/// day of the positive), any order: the nth positive at a plant suspends it from that day for
/// the rule's weeks for the nth (the last entry for every later one). Each suspension, by plant
/// then day.
pub fn suspensions(rules: &ColdChain, positives: &[(String, Date)]) -> Vec<Suspension> {
    let mut sorted = positives.to_vec();
    sorted.sort();
    let mut nth: BTreeMap<&str, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for (plant, day) in &sorted {
        let n = nth.entry(plant.as_str()).or_default();
        *n += 1;
        if let Some(weeks) = rules.suspension_weeks(*n) {
            let until = day.checked_add(jiff::Span::new().weeks(i64::from(weeks))).unwrap_or(Date::MAX);
            out.push(Suspension { plant: plant.clone(), nth: *n, from: *day, until });
        }
    }
    out
}

/// Whether a plant's imports are suspended on `day`.
pub fn suspended(suspensions: &[Suspension], plant: &str, day: Date) -> bool {
    suspensions.iter().any(|s| s.plant == plant && s.from <= day && day < s.until)
}
