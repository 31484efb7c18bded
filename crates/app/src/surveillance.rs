//! Sentinel feeds watched (issue 7): daily and weekly count series per area, feed and category
//! built from the store's `sentinel` records; aberration detection on them (the profile's
//! `[surveillance]` methods, computed by `chainbreak-detect` as R's `surveillance` does); the
//! review queue of alarms; silent sentinels; and Rt over the store's cases.
//!
//! A day without a report is missing (`None`, R's `NA`), never a zero: a daily series' day is
//! the sum of the reports made that day, or missing when no point of the series reported; a
//! week is the sum of its reported days, or missing when none was reported. A sentinel point
//! whose feed has not reported for more than `surveillance.silent_after_days` is silent, and a
//! detection run raises one `silent_sentinel` alert per silence (keyed by its last report), not
//! one per day.
//!
//! Alarms go to a review queue ranked by how far above the bound they are,
//! `(observed − upperbound) / max(upperbound, 1)`, one item per series and period; a reviewer
//! escalates an item to an `aberration` alert or dismisses it, with a reason.

use std::collections::BTreeMap;

use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::{Classification, SentinelFeed, SentinelRecord};
use chainbreak_core::profile::{DailyMethod, Surveillance, ThresholdMethod, WeeklyMethod};
use chainbreak_detect::{Point, ears, epiestim, farrington};
use chainbreak_store::{AlertKind, ReviewDecision, ReviewItem, ReviewStatus, Scope, SentinelLast};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::Actor;
use crate::{AppError, Deployment};

/// Daily or weekly (ISO weeks, from Monday) periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Daily,
    Weekly,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "daily" => Some(Frequency::Daily),
            "weekly" => Some(Frequency::Weekly),
            _ => None,
        }
    }

    /// The first day of the period holding `d`.
    pub fn period_of(self, d: Date) -> Date {
        match self {
            Frequency::Daily => d,
            Frequency::Weekly => d - i64::from(d.weekday().to_monday_zero_offset()).days(),
        }
    }

    fn step(self) -> i64 {
        match self {
            Frequency::Daily => 1,
            Frequency::Weekly => 7,
        }
    }
}

/// Which series: an area (the record's, else its place's), a feed, a category.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SeriesKey {
    pub area_id: Option<String>,
    pub feed: SentinelFeed,
    pub category: Option<String>,
}

impl SeriesKey {
    /// The series' name in the review queue: `area/feed/category/frequency` (`-` for none).
    pub fn name(&self, f: Frequency) -> String {
        format!(
            "{}/{}/{}/{}",
            self.area_id.as_deref().unwrap_or("-"),
            self.feed,
            self.category.as_deref().unwrap_or("-"),
            f.as_str()
        )
    }
}

/// A count series: the first day of each period and its count (`None`: nothing reported).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counts {
    pub periods: Vec<Date>,
    pub observed: Vec<Option<f64>>,
}

/// The count series of `records`, from each series' first report to the period holding `to`.
pub fn count_series(records: &[SentinelRecord], frequency: Frequency, to: Date) -> BTreeMap<SeriesKey, Counts> {
    let mut sums: BTreeMap<SeriesKey, BTreeMap<Date, f64>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.date <= to) {
        let key = SeriesKey { area_id: r.area_id.clone(), feed: r.feed, category: r.category.clone() };
        *sums.entry(key).or_default().entry(frequency.period_of(r.date)).or_default() += f64::from(r.count);
    }
    let last = frequency.period_of(to);
    sums.into_iter()
        .map(|(key, by_period)| {
            let mut counts = Counts::default();
            let mut p = *by_period.keys().next().expect("a series has a report");
            while p <= last {
                counts.periods.push(p);
                counts.observed.push(by_period.get(&p).copied());
                p += frequency.step().days();
            }
            (key, counts)
        })
        .collect()
}

/// One period of a watched series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub period: Date,
    pub observed: Option<f64>,
    pub expected: Option<f64>,
    pub upperbound: Option<f64>,
    pub alarm: Option<bool>,
}

/// The method's name as the review queue records it.
pub fn method_name(frequency: Frequency, s: &Surveillance) -> String {
    match frequency {
        Frequency::Daily => s.daily.method.as_str().to_string(),
        Frequency::Weekly => format!("{}_{}", s.weekly.method, s.weekly.threshold_method),
    }
}

/// Runs the profile's method over `counts`, monitoring the last `monitor_last` periods (all
/// those the method can when `None`); periods not monitored, or where the method cannot say,
/// have no expected value, bound or alarm. A series too short for the method has none at all.
pub fn detect(
    counts: &Counts,
    frequency: Frequency,
    s: &Surveillance,
    monitor_last: Option<usize>,
) -> Vec<SeriesPoint> {
    let n = counts.observed.len();
    let mut out: Vec<SeriesPoint> = counts
        .periods
        .iter()
        .zip(&counts.observed)
        .map(|(p, o)| SeriesPoint { period: *p, observed: *o, expected: None, upperbound: None, alarm: None })
        .collect();
    let points: Vec<Point> = match frequency {
        Frequency::Daily => {
            let method = match s.daily.method {
                DailyMethod::EarsC1 => ears::Method::C1,
                DailyMethod::EarsC2 => ears::Method::C2,
                DailyMethod::EarsC3 => ears::Method::C3,
            };
            let baseline = s.daily.baseline as usize;
            let first = baseline
                + match method {
                    ears::Method::C1 => 1,
                    ears::Method::C2 => 3,
                    ears::Method::C3 => 5,
                };
            if n < first {
                return out;
            }
            let from = monitor_last.map_or(first, |m| first.max(n.saturating_sub(m) + 1));
            let control = ears::Control {
                method,
                baseline,
                min_sigma: s.daily.min_sigma,
                alpha: Some(s.daily.alpha),
                range: Some((from, n)),
            };
            ears::ears_c(&counts.observed, &control).unwrap_or_default()
        }
        Frequency::Weekly => {
            let threshold = match s.weekly.threshold_method {
                ThresholdMethod::Delta => farrington::ThresholdMethod::Delta,
                ThresholdMethod::NbPlugin => farrington::ThresholdMethod::NbPlugin,
                ThresholdMethod::Muan => farrington::ThresholdMethod::Muan,
            };
            let base = match s.weekly.method {
                WeeklyMethod::Farrington => {
                    farrington::Control { threshold_method: threshold, ..farrington::Control::original() }
                }
                WeeklyMethod::FarringtonNoufaily => farrington::Control::noufaily(threshold),
            };
            let (b, w) = (s.weekly.b as usize, s.weekly.w as usize);
            let first = 52 * b + w + 1;
            if n < first {
                return out;
            }
            let from = monitor_last.map_or(first, |m| first.max(n.saturating_sub(m) + 1));
            let control = farrington::Control { b, w, alpha: s.weekly.alpha, range: Some((from, n)), ..base };
            let dates: Vec<i64> = counts
                .periods
                .iter()
                .map(|d| farrington::days_from_civil(d.year().into(), d.month() as u32, d.day() as u32))
                .collect();
            let series =
                farrington::Series { observed: &counts.observed, freq: 52, dates: Some(&dates), population: None };
            farrington::farrington_flexible(&series, &control)
                .map(|v| v.into_iter().map(|f| f.point).collect())
                .unwrap_or_default()
        }
    };
    for p in points {
        if let Some(o) = out.get_mut(p.t - 1) {
            o.expected = p.expected;
            o.upperbound = p.upperbound;
            o.alarm = p.alarm;
        }
    }
    out
}

/// How far above its bound an alarm is: `(observed − upperbound) / max(upperbound, 1)`.
pub fn score(observed: f64, upperbound: f64) -> f64 {
    (observed - upperbound) / upperbound.max(1.0)
}

/// A watched series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesView {
    pub series: String,
    #[serde(flatten)]
    pub key: SeriesKey,
    pub frequency: Frequency,
    pub method: String,
    pub points: Vec<SeriesPoint>,
}

/// Which series to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesQuery {
    pub area_id: Option<String>,
    pub feed: Option<SentinelFeed>,
    pub category: Option<String>,
    pub frequency: Option<Frequency>,
    /// Show periods from this day (the method still sees the whole series).
    pub from: Option<Date>,
    /// The last day (default: today in the deployment's zone).
    pub to: Option<Date>,
}

fn scope_for(dep: &Deployment, user: Option<&User>, p: Permission) -> Result<Scope, AppError> {
    match user {
        Some(u) => {
            crate::reads::require(u, p)?;
            crate::reads::scope_of(&*dep.store, u)
        }
        None => Ok(Scope::All),
    }
}

fn today(dep: &Deployment) -> Date {
    dep.calendar.day_of(dep.clock.now())
}

fn all_records(dep: &Deployment, scope: &Scope, to: Date) -> Result<Vec<SentinelRecord>, AppError> {
    Ok(dep.store.sentinel_records(scope, Date::MIN, to)?)
}

/// The series of the user's jurisdiction with expected values, bounds and alarms.
pub fn series(dep: &Deployment, user: Option<&User>, q: &SeriesQuery) -> Result<Vec<SeriesView>, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    let to = q.to.unwrap_or_else(|| today(dep));
    let records = all_records(dep, &scope, to)?;
    let s = &dep.profile.surveillance;
    let mut out = Vec::new();
    for frequency in [Frequency::Daily, Frequency::Weekly] {
        if q.frequency.is_some_and(|f| f != frequency) {
            continue;
        }
        for (key, counts) in count_series(&records, frequency, to) {
            if q.area_id.as_ref().is_some_and(|a| key.area_id.as_ref() != Some(a))
                || q.feed.is_some_and(|f| f != key.feed)
                || q.category.as_ref().is_some_and(|c| key.category.as_ref() != Some(c))
            {
                continue;
            }
            let mut points = detect(&counts, frequency, s, None);
            if let Some(from) = q.from {
                points.retain(|p| p.period >= frequency.period_of(from));
            }
            out.push(SeriesView {
                series: key.name(frequency),
                key,
                frequency,
                method: method_name(frequency, s),
                points,
            });
        }
    }
    Ok(out)
}

/// A sentinel point's feed that stopped reporting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilentSentinel {
    #[serde(flatten)]
    pub last: SentinelLast,
    /// Days since the last report.
    pub days_silent: i64,
}

/// The silent sentinels of the user's jurisdiction today.
pub fn silent(dep: &Deployment, user: Option<&User>) -> Result<Vec<SilentSentinel>, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    silent_in(dep, &scope)
}

fn silent_in(dep: &Deployment, scope: &Scope) -> Result<Vec<SilentSentinel>, AppError> {
    let today = today(dep);
    let after = i64::from(dep.profile.surveillance.silent_after_days);
    let mut out = Vec::new();
    for last in dep.store.sentinel_last_reports(scope)? {
        let Ok(date) = last.last_date.parse::<Date>() else { continue };
        let days = (today - date).get_days() as i64;
        if days > after {
            out.push(SilentSentinel { last, days_silent: days });
        }
    }
    Ok(out)
}

/// What a detection run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    pub series: usize,
    /// Alarms in the review window.
    pub alarms: usize,
    /// Of them, new in the review queue (the others were queued by an earlier run).
    pub queued: usize,
    pub silent: usize,
    /// Silent-sentinel alerts raised (one per silence).
    pub silent_alerts: usize,
    /// Quarantine facilities short of rooms in their 7-day forecast: alerts raised
    /// ([`crate::episodes::raise_shortage_alerts`]).
    pub shortage_alerts: usize,
}

/// Runs detection over every series and raises the silent sentinels' alerts (`triage_alerts`;
/// the console and the scheduler may): alarms in the profile's review window go to the review
/// queue, once per series and period. One batch, audited as `detect_run`. Then raises the
/// alerts of quarantine facilities short of rooms in their forecast (a batch of its own).
pub fn run(dep: &mut Deployment, actor: &Actor, user: Option<&User>) -> Result<RunReport, AppError> {
    let scope = scope_for(dep, user, Permission::TriageAlerts)?;
    let today = today(dep);
    let records = all_records(dep, &scope, today)?;
    let s = dep.profile.surveillance.clone();
    let window_start = today - i64::from(s.review_window_days).days();
    let at = dep.clock.now();
    let mut report = RunReport::default();
    let mut items = Vec::new();
    for frequency in [Frequency::Daily, Frequency::Weekly] {
        let monitor = match frequency {
            Frequency::Daily => s.review_window_days as usize + 1,
            Frequency::Weekly => (s.review_window_days as usize).div_ceil(7) + 1,
        };
        for (key, counts) in count_series(&records, frequency, today) {
            report.series += 1;
            for p in detect(&counts, frequency, &s, Some(monitor)) {
                let (Some(true), Some(observed), Some(upperbound)) = (p.alarm, p.observed, p.upperbound) else {
                    continue;
                };
                if p.period < frequency.period_of(window_start) {
                    continue;
                }
                report.alarms += 1;
                items.push(ReviewItem {
                    id: 0,
                    series: key.name(frequency),
                    area_id: key.area_id.clone(),
                    feed: key.feed.as_str().into(),
                    category: key.category.clone(),
                    frequency: frequency.as_str().into(),
                    period: p.period.to_string(),
                    method: method_name(frequency, &s),
                    observed,
                    expected: p.expected,
                    upperbound,
                    score: score(observed, upperbound),
                    status: ReviewStatus::Pending,
                    decided_by: None,
                    decided_at: None,
                    reason: None,
                    alert_id: None,
                    created_at: at,
                });
            }
        }
    }
    let silent = silent_in(dep, &scope)?;
    report.silent = silent.len();
    let mut batch = dep.store.begin(at)?;
    report.queued = batch.queue_review_items(&items)?.iter().flatten().count();
    for q in &silent {
        let l = &q.last;
        let mut row = crate::triggers::new_alert(
            AlertKind::SilentSentinel,
            format!("silent_sentinel:{}:{}:{}", l.place_id, l.feed, l.last_date),
            format!(
                "sentinel {} has not reported {} since {} ({} days)",
                l.place_id, l.feed, l.last_date, q.days_silent
            ),
            at,
        );
        row.place_id = Some(l.place_id.clone());
        row.area_id = l.area_id.clone();
        row.subject = Some(l.place_id.clone());
        row.details = json!({"feed": l.feed, "last_report": l.last_date, "days_silent": q.days_silent}).to_string();
        if crate::alerts::raise_in(&mut *batch, row, actor)?.is_some() {
            report.silent_alerts += 1;
        }
    }
    let record = format!(
        "{} series, {} alarms ({} new in the review queue), {} silent ({} alerts)",
        report.series, report.alarms, report.queued, report.silent, report.silent_alerts
    );
    batch.append_audit(&actor.audit(at, "detect_run", "review_item", &record))?;
    batch.commit()?;
    report.shortage_alerts = crate::episodes::raise_shortage_alerts(dep, actor)?.len();
    Ok(report)
}

/// The review queue of the user's jurisdiction, highest score first.
pub fn review_queue(
    dep: &Deployment,
    user: Option<&User>,
    status: Option<ReviewStatus>,
    limit: usize,
) -> Result<Vec<ReviewItem>, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    Ok(dep.store.review_queue(&scope, status, limit)?)
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Raise an `aberration` alert for it.
    Escalate,
    /// Nothing to do (a reason is required).
    Dismiss,
}

/// Decides a pending review item of the user's jurisdiction (`triage_alerts`), audited
/// (`review_escalate`, `review_dismiss`); escalating raises an `aberration` alert in the same
/// batch. Returns the item as decided.
pub fn decide_review(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    id: i64,
    verdict: Verdict,
    reason: Option<String>,
) -> Result<ReviewItem, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    let not_found = || AppError::NotFound(format!("review item {id} not found"));
    let item = dep.store.review_item(id)?.ok_or_else(not_found)?;
    let inside = match (&scope, &item.area_id) {
        (Scope::All, _) => true,
        (_, Some(area)) => dep.store.in_scope(&scope, chainbreak_store::Entity::Area, &[area.as_str()])?[0],
        (_, None) => false,
    };
    if !inside {
        return Err(not_found());
    }
    if let Some(u) = user {
        crate::reads::require(u, Permission::TriageAlerts)?;
    }
    let reason = reason.filter(|r| !r.trim().is_empty());
    if verdict == Verdict::Dismiss && reason.is_none() {
        return Err(AppError::InvalidArgument { argument: "reason", message: "say why the alarm is dismissed".into() });
    }
    if item.status != ReviewStatus::Pending {
        return Err(AppError::InvalidArgument {
            argument: "id",
            message: format!("review item {id} is {} already; a decision is made once", item.status),
        });
    }
    let at = dep.clock.now();
    let mut batch = dep.store.begin(at)?;
    let (status, alert_id, action) = match verdict {
        Verdict::Dismiss => (ReviewStatus::Dismissed, None, "review_dismiss"),
        Verdict::Escalate => {
            let mut row = crate::triggers::new_alert(
                AlertKind::Aberration,
                format!("aberration:{}:{}", item.series, item.period),
                format!(
                    "{} {} of {}: observed {} above the bound {:.2} ({})",
                    item.frequency, item.period, item.series, item.observed, item.upperbound, item.method
                ),
                at,
            );
            row.area_id = item.area_id.clone();
            row.subject = Some(item.series.clone());
            row.details = json!({"review_item": item.id, "series": item.series, "period": item.period,
                "method": item.method, "observed": item.observed, "expected": item.expected,
                "upperbound": item.upperbound, "score": item.score, "reason": reason})
            .to_string();
            let mut escalating = actor.clone();
            escalating.reason = reason.clone();
            let alert = crate::alerts::raise_in(&mut *batch, row, &escalating)?;
            (ReviewStatus::Escalated, alert, "review_escalate")
        }
    };
    let decision = ReviewDecision { status, actor: actor.name.clone(), reason: reason.clone(), alert_id, at };
    let decided = batch.decide_review_item(id, &decision)?;
    let mut auditing = actor.clone();
    auditing.reason = reason;
    batch.append_audit(&auditing.audit(at, action, "review_item", &id.to_string()))?;
    batch.commit()?;
    Ok(decided)
}

/// One window's Rt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtWindow {
    pub t_start: Date,
    pub t_end: Date,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// 2.5%, 5%, 25%, 50%, 75%, 95%, 97.5%.
    pub quantiles: Option<[f64; 7]>,
}

/// Rt over the cases of the user's jurisdiction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtView {
    pub si_mean: f64,
    pub si_sd: f64,
    pub window_days: u32,
    /// Daily counts by onset (or, without one, the day of sampling, else of report).
    pub days: Vec<Date>,
    pub local: Vec<f64>,
    pub imported: Vec<f64>,
    pub estimates: Vec<RtWindow>,
    /// Why there is no estimate, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Daily counts of local and imported cases from `first` to `last`, from (day, imported, how many).
pub fn incidence(days: &[(Date, bool, u64)], first: Date, last: Date) -> (Vec<Date>, Vec<f64>, Vec<f64>) {
    let n = ((last - first).get_days().max(-1) + 1) as usize;
    let (mut dates, mut local, mut imported) = (Vec::with_capacity(n), vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        dates.push(first + (i as i64).days());
    }
    for (d, is_imported, count) in days {
        let i = (*d - first).get_days();
        if i < 0 || i as usize >= n {
            continue;
        }
        if *is_imported {
            imported[i as usize] += *count as f64;
        } else {
            local[i as usize] += *count as f64;
        }
    }
    (dates, local, imported)
}

/// EpiEstim's `estimate_R` (parametric serial interval of the profile, sliding windows of
/// `surveillance.rt_window_days`) on the daily counts of the non-excluded cases of the user's
/// jurisdiction by onset, from the first case to `to` (default today).
pub fn rt(dep: &Deployment, user: Option<&User>, to: Option<Date>) -> Result<RtView, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    let s = &dep.profile.surveillance;
    let to = to.unwrap_or_else(|| today(dep));
    // Counts kept by the store: the cases by the day they count from (onset, else sampling, else
    // report) and whether imported.
    let mut days: Vec<(Date, bool, u64)> = Vec::new();
    for c in dep.store.case_counts(&scope)? {
        if c.classification != Classification::Excluded {
            days.push((c.epi_day, c.imported, c.n));
        }
    }
    let mut view = RtView {
        si_mean: s.serial_interval_mean_days,
        si_sd: s.serial_interval_sd_days,
        window_days: s.rt_window_days,
        days: vec![],
        local: vec![],
        imported: vec![],
        estimates: vec![],
        note: None,
    };
    let Some(first) = days.iter().map(|(d, _, _)| *d).filter(|d| *d <= to).min() else {
        view.note = Some("no cases".into());
        return Ok(view);
    };
    let (dates, local, imported) = incidence(&days, first, to);
    let t = dates.len();
    let w = s.rt_window_days as usize;
    view.days = dates;
    view.local = local.clone();
    view.imported = imported.clone();
    if t < w + 1 {
        view.note = Some(format!("{t} days of cases; a window of {w} days needs at least {}", w + 1));
        return Ok(view);
    }
    let mut config = epiestim::Config::new(epiestim::SerialInterval::Parametric {
        mean: s.serial_interval_mean_days,
        sd: s.serial_interval_sd_days,
    });
    config.windows = Some((2..=t + 1 - w).map(|start| (start, start + w - 1)).collect());
    let incid = epiestim::Incidence {
        local: local.into_iter().map(Some).collect(),
        imported: imported.into_iter().map(Some).collect(),
    };
    match epiestim::estimate_r(&incid, &config) {
        Ok(out) => {
            view.estimates = out
                .estimates
                .iter()
                .map(|e| RtWindow {
                    t_start: view.days[e.t_start - 1],
                    t_end: view.days[e.t_end - 1],
                    mean: e.mean,
                    std: e.sd,
                    quantiles: e.quantiles,
                })
                .collect()
        }
        Err(e) => view.note = Some(e.to_string()),
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(date: &str, count: u32, category: Option<&str>) -> SentinelRecord {
        SentinelRecord {
            place_id: "L1".into(),
            area_id: Some("D1".into()),
            feed: SentinelFeed::Pharmacy,
            date: date.parse().unwrap(),
            category: category.map(Into::into),
            count,
            positives: None,
        }
    }

    #[test]
    fn a_missing_report_is_not_a_zero() {
        let records = [rec("2022-03-01", 3, None), rec("2022-03-03", 0, None), rec("2022-03-03", 2, None)];
        let series = count_series(&records, Frequency::Daily, "2022-03-04".parse().unwrap());
        let counts = series.values().next().unwrap();
        assert_eq!(counts.observed, [Some(3.0), None, Some(2.0), None]);
        assert_eq!(counts.periods[0].to_string(), "2022-03-01");
    }

    #[test]
    fn weeks_start_on_monday_and_categories_are_series_of_their_own() {
        // 2022-03-06 is a Sunday, 2022-03-07 a Monday.
        let records = [rec("2022-03-06", 1, None), rec("2022-03-07", 2, None), rec("2022-03-08", 3, Some("cough"))];
        let series = count_series(&records, Frequency::Weekly, "2022-03-21".parse().unwrap());
        assert_eq!(series.len(), 2);
        let plain = &series[&SeriesKey { area_id: Some("D1".into()), feed: SentinelFeed::Pharmacy, category: None }];
        let periods: Vec<String> = plain.periods.iter().map(|d| d.to_string()).collect();
        assert_eq!(periods, ["2022-02-28", "2022-03-07", "2022-03-14", "2022-03-21"]);
        assert_eq!(plain.observed, [Some(1.0), Some(2.0), None, None]);
    }

    #[test]
    fn ears_runs_on_daily_series_with_gaps_and_scores_rank_by_excess() {
        let profile = chainbreak_core::profile::Profile::builtin("cn-2022-9th").unwrap();
        let mut records: Vec<SentinelRecord> =
            (1..=20).map(|d| rec(&format!("2022-03-{d:02}"), 10 + d % 3, None)).collect();
        records.push(rec("2022-03-21", 60, None));
        records.retain(|r| r.date.to_string() != "2022-03-05");
        let series = count_series(&records, Frequency::Daily, "2022-03-21".parse().unwrap());
        let points = detect(series.values().next().unwrap(), Frequency::Daily, &profile.surveillance, None);
        assert_eq!(points.len(), 21);
        let last = points.last().unwrap();
        assert_eq!(last.alarm, Some(true), "{last:?}");
        assert!(points[..9].iter().all(|p| p.upperbound.is_none()), "before the baseline nothing is said");
        assert_eq!(points[4].observed, None);
        assert_eq!((score(20.0, 10.0), score(3.0, 0.5)), (1.0, 2.5), "a bound under 1 counts as 1");
    }

    #[test]
    fn incidence_counts_local_and_imported_by_day() {
        let d = |s: &str| -> Date { s.parse().unwrap() };
        let (dates, local, imported) = incidence(
            &[
                (d("2022-03-01"), false, 1),
                (d("2022-03-03"), true, 1),
                (d("2022-03-03"), false, 2),
                (d("2022-03-09"), false, 1),
            ],
            d("2022-03-01"),
            d("2022-03-04"),
        );
        assert_eq!(dates.len(), 4);
        assert_eq!(local, [1.0, 0.0, 2.0, 0.0]);
        assert_eq!(imported, [0.0, 0.0, 1.0, 0.0]);
    }
}
