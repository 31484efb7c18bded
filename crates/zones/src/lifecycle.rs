//! Lowering and lifting a zone by the profile's transitions (再调再收).
//!
//! The count: day 0 is the day the zone entered its level, or the day of the latest new
//! infection in it since (when the rule restarts on new cases); the zone is lowered on day
//! `clean_days` if no new infection came on days 1 ..= `clean_days` ("a new case on the last
//! day" restarts the count) and, when the rule asks for one, an all-negative screening round
//! was completed on day `negative_round_on_day` — or, if that day had none, on the first later
//! day with one, no new infection coming before it. Lowered to `low`, the zone is lifted (low
//! is the rest of the county). Dates are local dates of the deployment.

use chainbreak_core::model::ZoneLevel;
use chainbreak_core::profile::{ZoneEntry, ZoneTransition, Zones};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// How a zone reached its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entered {
    Designated,
    Downgraded,
}

/// Where a zone stands: its level, how it got there and on which day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneState {
    pub level: ZoneLevel,
    pub entered: Entered,
    pub since: Date,
}

/// A zone lowered by a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub on: Date,
    pub from: ZoneLevel,
    pub to: ZoneLevel,
    /// Index of the rule in `zones.transitions`.
    pub rule: usize,
    /// Day 0 of the clean days that lowered it.
    pub counted_from: Date,
    /// The all-negative screening round the rule required.
    pub round: Option<Date>,
}

pub(crate) fn add_days(d: Date, n: i64) -> Date {
    d.checked_add(jiff::Span::new().days(n)).expect("dates within jiff's range")
}

/// The rule that lowers a zone in `state`, if any (the profile's check keeps them apart).
pub(crate) fn rule_for<'a>(rules: &'a Zones, state: &ZoneState) -> Option<(usize, &'a ZoneTransition)> {
    rules.transitions.iter().enumerate().find(|(_, t)| {
        t.from == state.level
            && match t.entered {
                ZoneEntry::Any => true,
                ZoneEntry::Designated => state.entered == Entered::Designated,
                ZoneEntry::Downgraded => state.entered == Entered::Downgraded,
            }
    })
}

/// Every change of a zone from `start` up to and including `until`, given the days of new
/// infections in it and of its all-negative screening rounds (any order, repeats allowed).
pub fn schedule(rules: &Zones, start: ZoneState, infections: &[Date], rounds: &[Date], until: Date) -> Vec<Change> {
    let mut infections = infections.to_vec();
    infections.sort_unstable();
    let mut rounds = rounds.to_vec();
    rounds.sort_unstable();
    // The first infection in (after, upto].
    let infection_in = |after: Date, upto: Date| {
        let i = infections.partition_point(|d| *d <= after);
        infections.get(i).copied().filter(|d| *d <= upto)
    };
    let mut state = start;
    let mut out = Vec::new();
    'zone: while let Some((k, rule)) = rule_for(rules, &state) {
        let mut from = state.since;
        let (on, round) = loop {
            let clean = add_days(from, rule.clean_days as i64);
            let (due, round) = match rule.negative_round_on_day {
                None => (clean, None),
                Some(day) => {
                    let wanted = add_days(from, day as i64);
                    match rounds.get(rounds.partition_point(|d| *d < wanted)) {
                        Some(r) => (clean.max(*r), Some(*r)),
                        // No round yet: the zone waits (unless a new case restarts the count).
                        None => (Date::MAX, None),
                    }
                }
            };
            if rule.restart_on_new_case
                && let Some(x) = infection_in(from, due.min(until))
            {
                from = x;
                continue;
            }
            if due > until {
                break 'zone;
            }
            break (due, round);
        };
        out.push(Change { on, from: state.level, to: rule.to, rule: k, counted_from: from, round });
        if rule.to == ZoneLevel::Low {
            break;
        }
        state = ZoneState { level: rule.to, entered: Entered::Downgraded, since: on };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainbreak_core::profile::Profile;
    use proptest::prelude::*;

    fn day(d: i8) -> Date {
        jiff::civil::date(2022, 4, d)
    }

    fn designated(level: ZoneLevel, d: i8) -> ZoneState {
        ZoneState { level, entered: Entered::Designated, since: day(d) }
    }

    fn ninth() -> Zones {
        Profile::builtin("cn-2022-9th").unwrap().zones
    }

    fn daily_rounds(from: i8, to: i8) -> Vec<Date> {
        (from..=to).map(day).collect()
    }

    #[test]
    fn high_to_medium_on_day_7_then_low_3_days_later() {
        let c = schedule(&ninth(), designated(ZoneLevel::High, 1), &[day(1)], &daily_rounds(1, 30), day(30));
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(
            (c[0].on, c[0].from, c[0].to, c[0].round),
            (day(8), ZoneLevel::High, ZoneLevel::Medium, Some(day(8)))
        );
        assert_eq!((c[1].on, c[1].to, c[1].rule), (day(11), ZoneLevel::Low, 1));
    }

    #[test]
    fn a_new_case_on_the_last_day_restarts_the_count() {
        let c = schedule(&ninth(), designated(ZoneLevel::High, 1), &[day(8)], &daily_rounds(1, 30), day(30));
        assert_eq!((c[0].on, c[0].counted_from), (day(15), day(8)));
        // The boundary: lowered on day 8, not day 7; not yet if we stop the day before.
        let c = schedule(&ninth(), designated(ZoneLevel::High, 1), &[], &daily_rounds(1, 30), day(7));
        assert!(c.is_empty());
        let c = schedule(&ninth(), designated(ZoneLevel::High, 1), &[], &daily_rounds(1, 30), day(8));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn without_the_negative_round_the_zone_waits_for_one() {
        let rounds = [day(3), day(12)];
        let c = schedule(&ninth(), designated(ZoneLevel::High, 1), &[], &rounds, day(30));
        assert_eq!((c[0].on, c[0].round), (day(12), Some(day(12))));
        let c = schedule(&ninth(), designated(ZoneLevel::High, 1), &[], &[day(3)], day(30));
        assert!(c.is_empty());
    }

    #[test]
    fn a_zone_designated_medium_needs_7_clean_days_and_twenty_measures_5() {
        let c = schedule(&ninth(), designated(ZoneLevel::Medium, 1), &[], &[], day(30));
        assert_eq!((c[0].on, c[0].to, c[0].rule), (day(8), ZoneLevel::Low, 2));
        let twenty = Profile::builtin("cn-2022-20-measures").unwrap().zones;
        let c = schedule(&twenty, designated(ZoneLevel::High, 1), &[day(2)], &daily_rounds(1, 30), day(30));
        assert_eq!((c[0].on, c[0].to), (day(7), ZoneLevel::Low));
    }

    /// The rules day by day: the brute-force reading of the same text.
    fn oracle(rules: &Zones, start: ZoneState, infections: &[Date], rounds: &[Date], until: Date) -> Vec<Change> {
        let mut out = Vec::new();
        let mut state = start;
        let mut from = start.since;
        let mut d = start.since;
        while d < until {
            d = add_days(d, 1);
            let Some((k, rule)) = rule_for(rules, &state) else { break };
            if rule.restart_on_new_case && infections.contains(&d) {
                from = d;
                continue;
            }
            let clean = add_days(from, rule.clean_days as i64);
            let round = match rule.negative_round_on_day {
                None => None,
                Some(n) => {
                    let wanted = add_days(from, n as i64);
                    let mut r = wanted;
                    while r <= d && !rounds.contains(&r) {
                        r = add_days(r, 1);
                    }
                    if r > d {
                        continue;
                    }
                    Some(r)
                }
            };
            if d >= clean {
                out.push(Change { on: d, from: state.level, to: rule.to, rule: k, counted_from: from, round });
                if rule.to == ZoneLevel::Low {
                    break;
                }
                state = ZoneState { level: rule.to, entered: Entered::Downgraded, since: d };
                from = d;
            }
        }
        out
    }

    fn rules_strategy() -> impl Strategy<Value = Zones> {
        (1u32..9, proptest::option::of(1u32..9), any::<bool>(), 1u32..6, any::<bool>(), 1u32..9, any::<bool>())
            .prop_map(|(hc, hr, hre, mc, mre, dc, dre)| {
                let mut z = ninth();
                z.transitions[0].clean_days = hc;
                z.transitions[0].negative_round_on_day = hr.map(|r| r.min(hc));
                z.transitions[0].restart_on_new_case = hre;
                z.transitions[1].clean_days = mc;
                z.transitions[1].restart_on_new_case = mre;
                z.transitions[2].clean_days = dc;
                z.transitions[2].restart_on_new_case = dre;
                z
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn schedule_agrees_with_the_rules_read_day_by_day(
            rules in rules_strategy(),
            high in any::<bool>(),
            start in 1i8..5,
            infections in proptest::collection::vec(1i8..29, 0..6),
            rounds in proptest::collection::vec(1i8..29, 0..12),
            until in 1i8..29,
        ) {
            let level = if high { ZoneLevel::High } else { ZoneLevel::Medium };
            let st = designated(level, start);
            let inf: Vec<Date> = infections.into_iter().map(day).collect();
            let rd: Vec<Date> = rounds.into_iter().map(day).collect();
            let until = day(until.max(start));
            prop_assert_eq!(schedule(&rules, st, &inf, &rd, until), oracle(&rules, st, &inf, &rd, until));
        }
    }
}
