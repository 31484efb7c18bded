//! The command centre's overview (issue 9): where the outbreak stands and what is late, within
//! the user's jurisdiction — cases by classification today and in all, the epidemic curve by
//! onset and by report date (the most recent onset days marked incomplete: those within the
//! 90th percentile of the observed onset-to-report delay), Rt with its interval, the share of
//! new cases found already under a measure, the response clock, open alerts and overdue tasks
//! by unit.

use std::collections::BTreeMap;

use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::Classification;
use chainbreak_store::{AlertFilter, AlertRow};
use jiff::civil::Date;
use serde::Serialize;

use crate::reads::{require, scope_of};
use crate::surveillance::RtWindow;
use crate::{AppError, Deployment};

/// Cases of one classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    pub classification: Classification,
    /// Reported today.
    pub today: u64,
    pub total: u64,
}

/// Daily cases by onset and by report date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Curve {
    pub days: Vec<Date>,
    pub by_onset: Vec<u64>,
    pub by_report: Vec<u64>,
    /// Onset days from this one on are incomplete (cases with those onsets are still being
    /// reported).
    pub incomplete_from: Option<Date>,
    /// The 90th percentile of the onset-to-report delay, in days, it comes from.
    pub delay_days: Option<i64>,
}

/// How one item of the response clock (DESIGN.md §4) is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockShare {
    pub item: String,
    pub limit_hours: u32,
    /// Stopped within the limit.
    pub met: u64,
    /// Stopped late, or past due and not stopped.
    pub late: u64,
    /// Started, not yet due.
    pub running: u64,
}

/// The overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub today: Date,
    pub classifications: Vec<ClassCount>,
    pub curve: Curve,
    /// The latest Rt window, and why there is none when there is none.
    pub rt: Option<RtWindow>,
    pub rt_note: Option<String>,
    /// New cases (reported in the last `recent_days`) and those found already under a measure.
    pub recent_days: u32,
    pub recent_cases: u64,
    pub found_under_measure: u64,
    pub clock: Vec<ClockShare>,
    pub open_alerts: u64,
    /// The most recent open alerts.
    pub alerts: Vec<AlertRow>,
    /// Overdue tasks by the unit they sit at now, most first.
    pub overdue_by_unit: Vec<(String, u64)>,
}

/// The overview of the user's jurisdiction, as of now; the curve over the last `days` days.
pub fn overview(dep: &mut Deployment, user: &User, days: u32) -> Result<Overview, AppError> {
    require(user, Permission::ReadRecords)?;
    let scope = scope_of(&*dep.store, user)?;
    let now = dep.clock.now();
    let today = dep.calendar.day_of(now);
    let days = days.clamp(7, 366);
    let first = today.checked_sub(jiff::Span::new().days(i64::from(days) - 1)).expect("dates in range");
    let dates: Vec<Date> = first.series(jiff::Span::new().days(1)).take(days as usize).collect();
    let index = |d: Date| dates.binary_search(&d).ok();
    let recent_days = 7;
    let recent_from = today.checked_sub(jiff::Span::new().days(recent_days - 1)).expect("dates in range");

    let mut classes: BTreeMap<Classification, (u64, u64)> = BTreeMap::new();
    let (mut by_onset, mut by_report) = (vec![0u64; dates.len()], vec![0u64; dates.len()]);
    // The onset-to-report delays in days, with how many cases have each.
    let mut delays: BTreeMap<i64, u64> = BTreeMap::new();
    let (mut recent_cases, mut found_under_measure) = (0, 0);
    // Counts kept by the store: a few rows per day, whatever the number of cases.
    for c in dep.store.case_counts(&scope)? {
        let e = classes.entry(c.classification).or_default();
        e.1 += c.n;
        if c.reported == today {
            e.0 += c.n;
        }
        if matches!(c.classification, Classification::Excluded) {
            continue;
        }
        if let Some(i) = index(c.reported) {
            by_report[i] += c.n;
        }
        if let Some(onset) = c.onset {
            if let Some(i) = index(onset) {
                by_onset[i] += c.n;
            }
            *delays.entry((c.reported - onset).get_days() as i64).or_default() += c.n;
        }
        if c.reported >= recent_from {
            recent_cases += c.n;
            if c.in_quarantine {
                found_under_measure += c.n;
            }
        }
    }
    // The response clock of the recent cases (those reported in the last `recent_days` days).
    let mut clock: BTreeMap<String, ClockShare> = BTreeMap::new();
    for row in dep.store.clocks_reported_since(&scope, dep.calendar.start_of(recent_from))? {
        let share = clock.entry(row.item.clone()).or_insert_with(|| ClockShare {
            item: row.item.clone(),
            limit_hours: row.limit_hours,
            met: 0,
            late: 0,
            running: 0,
        });
        match (row.due_at, row.stopped_at) {
            (Some(due), Some(stopped)) if stopped <= due => share.met += 1,
            (Some(_), Some(_)) => share.late += 1,
            (Some(due), None) if now > due => share.late += 1,
            (Some(_), None) => share.running += 1,
            // Not started: nothing to count yet.
            (None, _) => {}
        }
    }
    // The 90th percentile (nearest rank) of the delays.
    let cases_with_onset: u64 = delays.values().sum();
    let rank = (cases_with_onset * 9).div_ceil(10).max(1);
    let mut seen = 0;
    let delay_days = delays
        .iter()
        .find(|(_, n)| {
            seen += **n;
            seen >= rank
        })
        .map(|(d, _)| (*d).max(1));
    let incomplete_from =
        delay_days.and_then(|d| today.checked_sub(jiff::Span::new().days(d)).ok()).map(|d| d.max(first));

    let rt_view = crate::surveillance::rt(dep, Some(user), None)?;
    let rt = rt_view.estimates.iter().rev().find(|w| w.mean.is_some()).cloned();

    let open = AlertFilter { open: true, ..Default::default() };
    let mut open_alerts = 0u64;
    let mut alerts = Vec::new();
    let mut after_alert = 0;
    loop {
        let page = crate::alerts::list(dep, Some(user), &open, after_alert, 1000)?;
        open_alerts += page.len() as u64;
        alerts.extend(page.iter().cloned());
        if page.len() < 1000 {
            break;
        }
        after_alert = page.last().map(|a| a.id).unwrap_or(after_alert);
    }
    alerts.sort_by(|a, b| b.raised_at.cmp(&a.raised_at).then(b.id.cmp(&a.id)));
    alerts.truncate(10);

    let mut overdue: BTreeMap<String, u64> = BTreeMap::new();
    for t in crate::episodes::tasks(dep, Some(user), true, None)? {
        *overdue.entry(t.unit).or_default() += 1;
    }
    let mut overdue_by_unit: Vec<(String, u64)> = overdue.into_iter().collect();
    overdue_by_unit.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    Ok(Overview {
        today,
        classifications: classes
            .into_iter()
            .map(|(classification, (today, total))| ClassCount { classification, today, total })
            .collect(),
        curve: Curve { days: dates, by_onset, by_report, incomplete_from, delay_days },
        rt,
        rt_note: rt_view.note,
        recent_days: recent_days as u32,
        recent_cases,
        found_under_measure,
        clock: clock.into_values().collect(),
        open_alerts,
        alerts,
        overdue_by_unit,
    })
}

/// The closed-loop board (issue 9): where the jurisdiction's measures stand.
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    /// Open episodes by state.
    pub by_state: Vec<(String, u64)>,
    /// Open episodes and overdue tasks by owning unit, most overdue first.
    pub by_owner: Vec<(String, u64, u64)>,
    /// Overdue tasks, most overdue first (at most `limit`), and how many there are in all.
    pub overdue: Vec<crate::episodes::TaskView>,
    pub overdue_total: usize,
    pub facilities: Vec<crate::episodes::FacilityView>,
}

/// The board of the user's jurisdiction, as of now, with at most `limit` overdue tasks listed
/// and each facility's forecast over `days` days.
pub fn board(dep: &mut Deployment, user: &User, limit: usize, days: u32) -> Result<Board, AppError> {
    require(user, Permission::ReadRecords)?;
    let scope = scope_of(&*dep.store, user)?;
    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_owner: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    // Counts kept by the store, not a walk over every episode.
    for c in dep.store.episode_counts(&scope)? {
        let Some(state) = chainbreak_core::model::EpisodeState::parse(&c.state) else { continue };
        if chainbreak_closedloop::is_open(state) {
            *by_state.entry(c.state).or_default() += c.n;
            by_owner.entry(c.owner_unit).or_default().0 += c.n;
        }
    }
    let overdue = crate::episodes::tasks(dep, Some(user), true, None)?;
    for t in &overdue {
        by_owner.entry(t.owner_unit.clone()).or_default().1 += 1;
    }
    let mut by_owner: Vec<(String, u64, u64)> = by_owner.into_iter().map(|(o, (n, late))| (o, n, late)).collect();
    by_owner.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    let mut by_state: Vec<(String, u64)> = by_state.into_iter().collect();
    by_state.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let overdue_total = overdue.len();
    Ok(Board {
        by_state,
        by_owner,
        overdue: overdue.into_iter().take(limit).collect(),
        overdue_total,
        facilities: crate::episodes::facility_views(dep, days)?,
    })
}

/// A case as an epidemiologist reads it (issue 9 "case page"): the record, the activity trail
/// (流调轨迹) over its infectious window, the contacts proposed with their evidence, and the
/// person's measures.
#[derive(Debug, Clone, Serialize)]
pub struct CaseFile {
    pub case: crate::reads::CaseView,
    /// The start of the infectious window (the profile's look-back); none when the case has no
    /// dates to count from.
    pub window_from: Option<jiff::Timestamp>,
    pub trail: Vec<chainbreak_core::model::Visit>,
    pub proposals: Vec<crate::proposals::ProposalView>,
    pub episodes: Vec<chainbreak_store::EpisodeRow>,
}

/// The case file of a case in the user's jurisdiction.
pub fn case_file(dep: &Deployment, user: &User, id: &str) -> Result<CaseFile, AppError> {
    let case = crate::reads::case(&*dep.store, user, id)?;
    let window_from = match crate::trace::case_index(&*dep.store, &dep.profile, &dep.calendar, &[id.to_string()]) {
        Ok(entries) => entries.first().map(|e| e.from),
        Err(AppError::InvalidArgument { .. }) => None,
        Err(e) => return Err(e),
    };
    let trail = match window_from {
        Some(from) => dep.store.visits_of_person(&case.case.person_id, from, case.case.reported_at)?,
        None => Vec::new(),
    };
    let scope = scope_of(&*dep.store, user)?;
    let mut proposals = Vec::new();
    let mut after: Option<String> = None;
    let filter = chainbreak_store::ProposalFilter { case_id: Some(id.to_string()), status: None };
    loop {
        let page = crate::proposals::list_within(&*dep.store, &scope, &filter, after.as_deref(), 1000)?;
        proposals.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let episodes = crate::episodes::list(
        dep,
        Some(user),
        &chainbreak_store::EpisodeFilter { person_id: Some(case.case.person_id.clone()), ..Default::default() },
        None,
        1000,
    )?;
    Ok(CaseFile { case, window_from, trail, proposals, episodes })
}

/// A transmission chain's node: a case, the case that infected it (as the records say) and its
/// depth in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainNode {
    pub case_id: String,
    pub classification: Classification,
    pub infector: Option<String>,
    pub reported: Date,
}

/// The transmission chains of the user's jurisdiction among its `limit` most recently reported
/// cases (excluded cases left out), with the case that infected each when the records name one
/// among them (a forest: the roots are cases of unknown source, or whose source is outside the
/// jurisdiction or older), ordered by report date then id; and whether older cases were left
/// out. One read by the report-time index, whatever the number of cases.
pub fn chains(dep: &Deployment, user: &User, limit: usize) -> Result<(Vec<ChainNode>, bool), AppError> {
    require(user, Permission::ReadRecords)?;
    let scope = scope_of(&*dep.store, user)?;
    let query = chainbreak_store::CaseQuery {
        classification: None,
        sort: chainbreak_store::CaseSort::Reported,
        descending: true,
    };
    let mut cases = dep.store.cases_sorted(&scope, &query, None, limit + 1)?;
    let truncated = cases.len() > limit;
    cases.truncate(limit);
    let mut nodes: Vec<ChainNode> = cases
        .into_iter()
        .filter(|c| c.classification != Classification::Excluded)
        .map(|c| ChainNode {
            reported: dep.calendar.day_of(c.reported_at),
            case_id: c.id,
            classification: c.classification,
            infector: c.infector_case_id,
        })
        .collect();
    let known: std::collections::BTreeSet<String> = nodes.iter().map(|n| n.case_id.clone()).collect();
    for n in &mut nodes {
        // A source outside the jurisdiction (or excluded) leaves the case a root here; a case
        // naming itself too.
        if n.infector.as_ref().is_some_and(|i| !known.contains(i) || *i == n.case_id) {
            n.infector = None;
        }
    }
    nodes.sort_by(|a, b| (a.reported, &a.case_id).cmp(&(b.reported, &b.case_id)));
    Ok((nodes, truncated))
}
