//! Groups (households, classes, teams, gatherings): who shares one with whom.
//!
//! A group has a kind (the caller's code for it), an optional time span (a gathering) and its
//! members as survivor keys. [`Groups::hits`] gives, for sources with a window start, every
//! other member of their groups of a kind the caller counts, over the part of the window the
//! group covers.

use rustc_hash::FxHashMap;

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The caller's code for the group's kind.
    pub kind: u8,
    /// When the group met (Unix seconds), for gatherings; open when absent.
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Members as survivor keys, each once.
    pub members: Vec<u32>,
}

/// A person sharing `group` with `source`, from `from` to `to` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupHit {
    pub person: u32,
    pub from: i64,
    pub to: i64,
    pub group: u32,
    pub source: u32,
}

/// Every group, and each person's.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: Vec<Group>,
    of: FxHashMap<u32, Vec<u32>>,
}

impl Groups {
    /// Adds `person` to group number `group` (numbers are dense, in order: a new number opens
    /// the next group with the given kind and span).
    pub fn add_member(&mut self, group: u32, kind: u8, start: Option<i64>, end: Option<i64>, person: u32) {
        while self.groups.len() <= group as usize {
            self.groups.push(Group { kind, start, end, members: Vec::new() });
        }
        let members = &mut self.groups[group as usize].members;
        if !members.contains(&person) {
            members.push(person);
            self.of.entry(person).or_default().push(group);
        }
    }

    pub fn get(&self, group: u32) -> Option<&Group> {
        self.groups.get(group as usize)
    }

    /// The other members of the sources' groups whose kind `counts`, not `excluded`, each over
    /// the source's window `[from, to)` cut to the group's span (a group whose span misses the
    /// window gives nobody); sorted.
    pub fn hits(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        counts: impl Fn(u8) -> bool,
        excluded: &[bool],
    ) -> Vec<GroupHit> {
        let mut hits = Vec::new();
        for &(source, from) in sources {
            for &g in self.of.get(&source).into_iter().flatten() {
                let group = &self.groups[g as usize];
                if !counts(group.kind) {
                    continue;
                }
                let (start, end) = (group.start.unwrap_or(from).max(from), group.end.unwrap_or(to).min(to));
                if end < start {
                    continue;
                }
                for &m in &group.members {
                    if m != source && !excluded.get(m as usize).copied().unwrap_or(false) {
                        hits.push(GroupHit { person: m, from: start, to: end, group: g, source });
                    }
                }
            }
        }
        hits.sort_unstable();
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_counted_groups_within_the_window() {
        let mut g = Groups::default();
        // Group 0: a household (kind 0) of 1, 2, 3; group 1: a gathering (kind 3) of 1 and 4 on
        // [100, 200); group 2: a team (kind 2) of 1 and 5.
        for p in [1, 2, 3, 2] {
            g.add_member(0, 0, None, None, p);
        }
        g.add_member(1, 3, Some(100), Some(200), 1);
        g.add_member(1, 3, Some(100), Some(200), 4);
        g.add_member(2, 2, None, None, 1);
        g.add_member(2, 2, None, None, 5);
        let counted = |k: u8| k != 2; // teams do not count
        let mut excluded = vec![false; 6];
        excluded[3] = true;
        let hits = g.hits(&[(1, 150)], 1000, counted, &excluded);
        let seen: Vec<(u32, i64, i64, u32)> = hits.iter().map(|h| (h.person, h.from, h.to, h.group)).collect();
        assert_eq!(seen, [(2, 150, 1000, 0), (4, 150, 200, 1)], "3 excluded, 5 only in a team, 1 is the source");
        assert!(g.hits(&[(1, 300)], 1000, counted, &excluded).iter().all(|h| h.group != 1), "the gathering was over");
        assert_eq!(g.get(0).unwrap().members, [1, 2, 3], "each member once");
    }
}
