//! Screening rounds of a zone (DESIGN.md §4 "screening rounds"): area-wide rounds every
//! `interval_days` from the day the zone is in force until `stop_after_clean_rounds`
//! consecutive rounds find no case, then one final round `final_round_after_days` later; a
//! positive round starts the cadence again. Besides the cadence, a lowering rule that asks for
//! an all-negative round on day N of its count makes that day's round due. The caller tracks
//! completion: a round is late when it is not completed within the profile's
//! `round_completion_hours` of the start of its day. Zones no rule lowers (the county's low
//! zone) have no rounds of their own.

use chainbreak_core::profile::{Screening, Zones};
use jiff::civil::Date;
use serde::Serialize;

use crate::lifecycle::{ZoneState, add_days, rule_for};
use crate::zone::Round;

/// Why a round is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundWhy {
    /// The profile's cadence (every `interval_days` until enough clean rounds).
    Cadence,
    /// The final round after the clean ones.
    Final,
    /// The lowering rule's all-negative round on day N of the count.
    Rule,
}

/// The next round a zone needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoundDue {
    pub on: Date,
    pub why: RoundWhy,
}

/// The next round due for a zone in force in `state`, given the days of new infections in it
/// and its completed `rounds` (in day order); `None` when no more rounds are needed.
pub fn next_round(
    screening: &Screening,
    zones: &Zones,
    state: ZoneState,
    infections: &[Date],
    rounds: &[Round],
) -> Option<RoundDue> {
    // Rounds serve zones that can be lowered (not the county's low zone).
    rule_for(zones, &state)?;
    let cadence = if screening.enabled {
        let interval = i64::from(screening.interval_days.unwrap_or(1));
        let stop = screening.stop_after_clean_rounds.unwrap_or(u32::MAX) as usize;
        let final_after = i64::from(screening.final_round_after_days.unwrap_or(0));
        match rounds.last() {
            None => Some(RoundDue { on: state.since, why: RoundWhy::Cadence }),
            Some(last) => {
                let clean = rounds.iter().rev().take_while(|r| r.all_negative()).count();
                if clean < stop {
                    Some(RoundDue { on: add_days(last.on, interval), why: RoundWhy::Cadence })
                } else if clean == stop && final_after > 0 {
                    Some(RoundDue { on: add_days(last.on, final_after), why: RoundWhy::Final })
                } else {
                    None
                }
            }
        }
    } else {
        None
    };
    let rule = rule_for(zones, &state).and_then(|(_, rule)| {
        let n = rule.negative_round_on_day?;
        let counted_from = infections.iter().copied().filter(|d| *d > state.since).max().unwrap_or(state.since);
        let wanted = add_days(counted_from, i64::from(n));
        let done = rounds.iter().any(|r| r.on >= wanted && r.all_negative());
        (!done).then_some(RoundDue { on: wanted, why: RoundWhy::Rule })
    });
    match (cadence, rule) {
        (Some(c), Some(r)) => Some(if r.on < c.on { r } else { c }),
        (c, r) => c.or(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Entered;
    use chainbreak_core::model::ZoneLevel;
    use chainbreak_core::profile::Profile;

    fn day(d: i8) -> Date {
        jiff::civil::date(2022, 4, d)
    }

    fn rounds(days: &[(i8, u32)]) -> Vec<Round> {
        days.iter()
            .map(|&(d, positives)| Round {
                on: day(d),
                tested: 100,
                positives,
                completed_at: jiff::Timestamp::UNIX_EPOCH,
            })
            .collect()
    }

    #[test]
    fn daily_until_three_clean_then_a_final_one_and_the_rule_s_day() {
        let p = Profile::builtin("cn-2022-9th").unwrap();
        let high = ZoneState { level: ZoneLevel::High, entered: Entered::Designated, since: day(1) };
        let due = |r: &[(i8, u32)], inf: &[Date]| next_round(&p.screening, &p.zones, high, inf, &rounds(r));
        assert_eq!(due(&[], &[]), Some(RoundDue { on: day(1), why: RoundWhy::Cadence }));
        assert_eq!(due(&[(1, 0)], &[]).unwrap().on, day(2));
        // A positive round restarts the count of clean ones.
        assert_eq!(due(&[(1, 0), (2, 0), (3, 4)], &[]).unwrap().on, day(4));
        // Three clean: the final round 3 days later.
        assert_eq!(due(&[(1, 0), (2, 0), (3, 0)], &[]), Some(RoundDue { on: day(6), why: RoundWhy::Final }));
        // After the final one, only the rule's round on day 7 of the count (day 8).
        assert_eq!(due(&[(1, 0), (2, 0), (3, 0), (6, 0)], &[]), Some(RoundDue { on: day(8), why: RoundWhy::Rule }));
        // A new case on day 5 moves the rule's round to day 12.
        assert_eq!(due(&[(1, 0), (2, 0), (3, 0), (6, 0)], &[day(5)]).unwrap().on, day(12));
        assert_eq!(due(&[(1, 0), (2, 0), (3, 0), (6, 0), (8, 0)], &[]), None);
        // Without screening rounds in the profile, the rule's round is still due.
        let mut off = p.screening.clone();
        off.enabled = false;
        assert_eq!(next_round(&off, &p.zones, high, &[], &[]).unwrap().on, day(8));
        let low = ZoneState { level: ZoneLevel::Low, ..high };
        assert_eq!(next_round(&p.screening, &p.zones, low, &[], &[]), None);
    }
}
