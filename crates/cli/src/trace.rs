//! `chainbreak trace`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chainbreak_app::proposals::{RecordedCase, RecordedPerson, RecordedRequest};
use chainbreak_app::trace::{IndexEntry, Rule, TraceReport, TraceRequest, Tracer, case_index};
use chainbreak_app::{AppError, Deployment};
use chainbreak_core::time::Clock;

use super::{TraceArgs, TraceFormat, TraceRule};

/// Ids in a file, one per line; blank lines and `#` comments skipped.
fn ids_in(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect())
}

pub(crate) fn run(args: TraceArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let rule = match args.rule {
        TraceRule::Profile => Rule::Profile,
        TraceRule::VenueOverlap => Rule::VenueOverlap,
    };
    let mut cases = args.cases.clone();
    if let Some(f) = &args.cases_file {
        cases.extend(ids_in(f)?);
    }
    let mut persons = args.persons.clone();
    if let Some(f) = &args.persons_file {
        persons.extend(ids_in(f)?);
    }
    if cases.is_empty() && persons.is_empty() {
        anyhow::bail!(AppError::InvalidArgument {
            argument: "--case/--person",
            message: "give the cases (--case, --cases-file) or index persons (--person, --persons-file) to trace"
                .into()
        });
    }
    if !persons.is_empty() && args.from.is_none() {
        anyhow::bail!(AppError::InvalidArgument {
            argument: "--from",
            message: "index persons are traced from --from (cases from their infectious period)".into()
        });
    }
    let store = chainbreak_app::open(&args.db)?;
    let mut deployment = Deployment::new(Box::new(store), clock)?;
    if let Some(profile) = &args.profile {
        deployment.profile = chainbreak_core::profile::Profile::load(profile).map_err(AppError::from)?;
    }
    let store = &*deployment.store;

    let mut index = case_index(store, &deployment.profile, &deployment.calendar, &cases)?;
    if let Some(from) = args.from {
        for entry in &mut index {
            entry.from = from;
        }
    }
    for person_id in persons {
        index.push(IndexEntry { person_id, from: args.from.expect("checked above"), case_id: None });
    }

    if args.record {
        let recorded = RecordedRequest {
            rule: rule.as_str().to_string(),
            depth: args.depth,
            min_overlap_seconds: args.min_overlap.as_secs(),
            to: args.to,
            cases: cases.iter().map(|c| RecordedCase { case_id: c.clone(), from: args.from }).collect(),
            persons: index
                .iter()
                .filter(|e| e.case_id.is_none())
                .map(|e| RecordedPerson { person_id: e.person_id.clone(), from: e.from })
                .collect(),
        };
        let actor = crate::cli_actor(args.actor.clone(), "trace --record");
        let (report, done) = chainbreak_app::proposals::trace_and_record(&mut deployment, &recorded, &actor)?;
        eprintln!(
            "recorded {} index case(s): {} proposed, {} updated, {} withdrawn, {} flagged for review",
            done.indexes, done.proposed, done.updated, done.withdrawn, done.flagged
        );
        return write_report(&report, args.format);
    }
    let (tracer, stats) = match &args.snapshot {
        Some(path) => {
            let (tracer, stats, stale) = Tracer::load_or_snapshot(store, &deployment.profile, path)?;
            if stale {
                tracer.save_snapshot(path, store, &deployment.profile)?;
            }
            (tracer, stats)
        }
        None => Tracer::load(store, &deployment.profile)?,
    };
    let request = TraceRequest { rule, index, to: args.to, min_overlap: args.min_overlap, depth: args.depth };
    let mut query_seconds = Vec::new();
    let mut phases = Vec::new();
    let mut report = None;
    for _ in 0..args.repeat.max(1) {
        // The last answer is let go first, as a server lets go of each once it is sent.
        drop(report.take());
        let started = Instant::now();
        let (answer, timings) = tracer.trace_timed(&request)?;
        query_seconds.push(started.elapsed().as_secs_f64());
        phases.push(timings);
        report = Some(answer);
    }
    let report = report.expect("ran at least once");
    if args.timings {
        let mut sorted = query_seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let timings = serde_json::json!({
            "load_seconds": stats.load_seconds,
            "load_source": stats.source,
            "index_bytes": stats.index_bytes,
            "scratch_bytes": tracer.scratch_bytes(),
            "visits": stats.visits,
            "dropped": stats.dropped,
            "query_seconds": query_seconds,
            "query_median_seconds": sorted[sorted.len() / 2],
            "query_phases": phases,
        });
        eprintln!("{timings}");
    }
    write_report(&report, args.format)
}

fn write_report(report: &TraceReport, format: TraceFormat) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        TraceFormat::Json => {
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        }
        TraceFormat::Csv => write_csv(&mut out, report)?,
        TraceFormat::Table => write_table(&mut out, report)?,
        TraceFormat::Summary => {
            let tiers: Vec<serde_json::Value> = report
                .tiers
                .iter()
                .map(|t| serde_json::json!({"tier": t.tier, "category": t.category, "count": t.count}))
                .collect();
            let summary = serde_json::json!({
                "rule": report.rule,
                "index": report.index.len(),
                "to": report.to,
                "tiers": tiers,
                "links": report.links.len(),
                "hash": report.hash(),
            });
            serde_json::to_writer(&mut out, &summary)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// One row per contact and piece of evidence.
fn write_csv(out: &mut impl Write, report: &TraceReport) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "tier",
        "category",
        "person_id",
        "first_exposure",
        "last_exposure",
        "place_id",
        "group_id",
        "from",
        "to",
        "overlap_minutes",
        "exposed_to",
        "check_out_assumed",
        "trip_id",
        "seat_rule",
        "carriage",
        "seat_row",
        "rows_apart",
        "cell",
        "needs_confirmation",
        "condition",
    ])?;
    let opt = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    for tier in &report.tiers {
        for c in tier.contacts() {
            for e in &c.evidence {
                w.write_record([
                    tier.tier.to_string(),
                    tier.category.to_string(),
                    c.person_id.to_string(),
                    c.first_exposure.to_string(),
                    c.last_exposure.to_string(),
                    e.place_id.as_deref().unwrap_or_default().to_string(),
                    e.group_id.clone().unwrap_or_default(),
                    e.from.to_string(),
                    e.to.to_string(),
                    format!("{:.1}", e.overlap_minutes),
                    e.exposed_to.to_string(),
                    e.check_out_assumed.to_string(),
                    e.trip_id.clone().unwrap_or_default(),
                    e.seat_rule.unwrap_or_default().to_string(),
                    opt(e.carriage),
                    opt(e.seat_row),
                    opt(e.rows_apart),
                    e.cell.clone().unwrap_or_default(),
                    e.needs_confirmation.to_string(),
                    e.condition.clone(),
                ])?;
            }
        }
    }
    w.flush()?;
    Ok(())
}

/// A summary for people: counts, then each contact with their longest piece of evidence.
fn write_table(out: &mut impl Write, report: &TraceReport) -> anyhow::Result<()> {
    let index: Vec<String> = report
        .index
        .iter()
        .map(|e| match &e.case_id {
            Some(case) => format!("{} (case {case}) from {}", e.person_id, e.from),
            None => format!("{} from {}", e.person_id, e.from),
        })
        .collect();
    writeln!(
        out,
        "rule {}: index {}; until {}{}",
        report.rule,
        index.join(", "),
        report.to,
        report.min_overlap_minutes.map(|m| format!("; overlap ≥ {m} min")).unwrap_or_default()
    )?;
    for tier in &report.tiers {
        writeln!(out, "\ntier {} ({}): {} contacts", tier.tier, tier.category, tier.count)?;
        if tier.is_empty() {
            continue;
        }
        writeln!(
            out,
            "{:<20} {:<22} {:<22} {:>9}  longest evidence shown",
            "person", "first exposure", "last exposure", "exposures"
        )?;
        for c in tier.contacts() {
            let best = c.evidence.iter().max_by(|a, b| a.overlap_minutes.total_cmp(&b.overlap_minutes));
            let best = best.map_or(String::new(), |e| {
                format!(
                    "{:.0} min {} with {}{}{}",
                    e.overlap_minutes,
                    match (&e.place_id, &e.group_id, &e.trip_id, &e.cell) {
                        (Some(place), ..) => format!("at {place}"),
                        (None, Some(group), ..) => format!("in group {group}"),
                        (None, None, Some(trip), _) => format!("on trip {trip} ({})", e.seat_rule.unwrap_or_default()),
                        (None, None, None, Some(cell)) => format!("in cell {cell}"),
                        (None, None, None, None) => String::new(),
                    },
                    e.exposed_to,
                    if e.check_out_assumed { " (check-out assumed)" } else { "" },
                    if e.needs_confirmation { format!("; to confirm: {}", e.condition) } else { String::new() }
                )
            });
            writeln!(
                out,
                "{:<20} {:<22} {:<22} {:>9}  {best}",
                c.person_id,
                c.first_exposure.to_string(),
                c.last_exposure.to_string(),
                c.exposures
            )?;
        }
    }
    writeln!(out, "\nhash {}", report.hash())?;
    Ok(())
}
