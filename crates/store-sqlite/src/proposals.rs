//! Contact proposals and the trace requests they were recorded from.

use chainbreak_store::{
    Decision, Proposal, ProposalFilter, ProposalIndex, ProposalStatus, Result, Scope, StoreError, TraceRecord,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::backend;
use crate::read::{opt_ts, ts};
use crate::scope::{SCOPE_CTE, area_param, person_inside};

const PROPOSAL_SELECT: &str = "SELECT pr.id, k.id, ip.id, cp.id, pr.category, pr.tier, pr.first_exposure,
       pr.last_exposure, pr.exposures, pr.evidence, pr.evidence_digest, pr.needs_confirmation, pr.in_result,
       pr.status, pr.decided_by, pr.decided_at, pr.decision_reason, pr.changed_since_decision, pr.created_at,
       pr.updated_at
     FROM proposals pr LEFT JOIN cases k ON k.key = pr.case_key
       JOIN persons ip ON ip.key = pr.index_person JOIN persons cp ON cp.key = pr.contact";

fn proposal_row(r: &Row) -> rusqlite::Result<Proposal> {
    let status: String = r.get(13)?;
    Ok(Proposal {
        id: r.get(0)?,
        index: ProposalIndex { case_id: r.get(1)?, person_id: r.get(2)? },
        contact_id: r.get(3)?,
        category: r.get(4)?,
        tier: r.get(5)?,
        first_exposure: ts(r.get(6)?)?,
        last_exposure: ts(r.get(7)?)?,
        exposures: r.get::<_, i64>(8)? as u64,
        evidence: r.get(9)?,
        evidence_digest: r.get(10)?,
        needs_confirmation: r.get(11)?,
        in_result: r.get(12)?,
        status: ProposalStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                13,
                rusqlite::types::Type::Text,
                format!("unknown proposal status `{status}`").into(),
            )
        })?,
        decided_by: r.get(14)?,
        decided_at: opt_ts(r.get(15)?)?,
        decision_reason: r.get(16)?,
        changed_since_decision: r.get(17)?,
        created_at: ts(r.get(18)?)?,
        updated_at: ts(r.get(19)?)?,
    })
}

/// The keys of an index: its reference (`case:<key>` or `person:<key>`), case and person.
fn index_keys(c: &Connection, index: &ProposalIndex) -> Result<(String, Option<i64>, i64)> {
    let key = |table: &str, field: &'static str, entity: &'static str, id: &str| -> Result<i64> {
        c.prepare_cached(&format!("SELECT key FROM {table} WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(backend)?
            .ok_or_else(|| StoreError::UnknownReference { index: 0, field, entity, value: id.to_string() })
    };
    let person = key("persons", "person_id", "person", &index.person_id)?;
    Ok(match &index.case_id {
        Some(case) => {
            let k = key("cases", "case_id", "case", case)?;
            (format!("case:{k}"), Some(k), person)
        }
        None => (format!("person:{person}"), None, person),
    })
}

pub(crate) fn of_index(c: &Connection, index: &ProposalIndex) -> Result<Vec<Proposal>> {
    let (index_ref, ..) = match index_keys(c, index) {
        Ok(keys) => keys,
        Err(StoreError::UnknownReference { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut s =
        c.prepare_cached(&format!("{PROPOSAL_SELECT} WHERE pr.index_ref = ?1 ORDER BY pr.id")).map_err(backend)?;
    s.query_map([index_ref], proposal_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn by_id(c: &Connection, id: i64) -> Result<Option<Proposal>> {
    c.prepare_cached(&format!("{PROPOSAL_SELECT} WHERE pr.id = ?1"))
        .and_then(|mut s| s.query_row([id], proposal_row).optional())
        .map_err(backend)
}

pub(crate) fn page(
    c: &Connection,
    scope: &Scope,
    filter: &ProposalFilter,
    after: i64,
    limit: usize,
) -> Result<Vec<Proposal>> {
    let mut conditions =
        vec!["pr.id > :after".to_string(), format!("(:area IS NULL OR {})", person_inside("pr.contact"))];
    let mut params: Vec<(&str, Value)> = vec![
        (":area", area_param(c, scope)?),
        (":after", Value::Integer(after)),
        (":limit", Value::Integer(limit as i64)),
    ];
    if let Some(case) = &filter.case_id {
        conditions.push("pr.case_key = (SELECT key FROM cases WHERE id = :case)".into());
        params.push((":case", Value::Text(case.clone())));
    }
    if let Some(status) = filter.status {
        conditions.push("pr.status = :status".into());
        params.push((":status", Value::Text(status.as_str().into())));
    }
    let sql = format!("{SCOPE_CTE} {PROPOSAL_SELECT} WHERE {} ORDER BY pr.id LIMIT :limit", conditions.join(" AND "));
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let params: Vec<(&str, &dyn rusqlite::ToSql)> =
        params.iter().map(|(name, value)| (*name, value as &dyn rusqlite::ToSql)).collect();
    stmt.query_map(params.as_slice(), proposal_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn trace_records(c: &Connection) -> Result<Vec<TraceRecord>> {
    let mut s = c
        .prepare_cached(
            "SELECT k.id, p.id, r.t_from, r.request, r.digest, r.seq, r.recorded_at
             FROM trace_records r LEFT JOIN cases k ON k.key = r.case_key JOIN persons p ON p.key = r.index_person
             ORDER BY r.index_ref",
        )
        .map_err(backend)?;
    s.query_map([], |r| {
        Ok(TraceRecord {
            index: ProposalIndex { case_id: r.get(0)?, person_id: r.get(1)? },
            from: ts(r.get(2)?)?,
            request: r.get(3)?,
            digest: r.get(4)?,
            seq: r.get::<_, i64>(5)? as u64,
            recorded_at: ts(r.get(6)?)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) fn record(c: &Connection, record: &TraceRecord, rows: &[Proposal]) -> Result<Vec<i64>> {
    let (index_ref, case_key, index_person) = index_keys(c, &record.index)?;
    c.prepare_cached(
        "INSERT INTO trace_records(index_ref, case_key, index_person, t_from, request, digest, seq, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(index_ref) DO UPDATE SET case_key = excluded.case_key, index_person = excluded.index_person,
           t_from = excluded.t_from, request = excluded.request, digest = excluded.digest, seq = excluded.seq,
           recorded_at = excluded.recorded_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            index_ref,
            case_key,
            index_person,
            record.from.as_second(),
            record.request,
            record.digest,
            record.seq as i64,
            record.recorded_at.as_second()
        ])
    })
    .map_err(backend)?;
    let mut ids = Vec::with_capacity(rows.len());
    for (i, p) in rows.iter().enumerate() {
        if p.index != record.index {
            return Err(StoreError::Invalid {
                index: i,
                field: "index",
                message: "every proposal of a record belongs to its index".into(),
            });
        }
        let contact: i64 = c
            .prepare_cached("SELECT key FROM persons WHERE id = ?1")
            .and_then(|mut s| s.query_row([&p.contact_id], |r| r.get(0)).optional())
            .map_err(backend)?
            .ok_or_else(|| StoreError::UnknownReference {
                index: i,
                field: "contact_id",
                entity: "person",
                value: p.contact_id.clone(),
            })?;
        let id: i64 = c
            .prepare_cached(
                "INSERT INTO proposals(index_ref, case_key, index_person, contact, category, tier, first_exposure,
                   last_exposure, exposures, evidence, evidence_digest, needs_confirmation, in_result, status,
                   decided_by, decided_at, decision_reason, changed_since_decision, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
                 ON CONFLICT(index_ref, contact, category) DO UPDATE SET case_key = excluded.case_key,
                   index_person = excluded.index_person, tier = excluded.tier,
                   first_exposure = excluded.first_exposure, last_exposure = excluded.last_exposure,
                   exposures = excluded.exposures, evidence = excluded.evidence,
                   evidence_digest = excluded.evidence_digest, needs_confirmation = excluded.needs_confirmation,
                   in_result = excluded.in_result, status = excluded.status, decided_by = excluded.decided_by,
                   decided_at = excluded.decided_at, decision_reason = excluded.decision_reason,
                   changed_since_decision = excluded.changed_since_decision, updated_at = excluded.updated_at
                 RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        index_ref,
                        case_key,
                        index_person,
                        contact,
                        p.category,
                        p.tier,
                        p.first_exposure.as_second(),
                        p.last_exposure.as_second(),
                        p.exposures as i64,
                        p.evidence,
                        p.evidence_digest,
                        p.needs_confirmation,
                        p.in_result,
                        p.status.as_str(),
                        p.decided_by,
                        p.decided_at.map(|t| t.as_second()),
                        p.decision_reason,
                        p.changed_since_decision,
                        p.created_at.as_second(),
                        p.updated_at.as_second()
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(backend)?;
        ids.push(id);
    }
    Ok(ids)
}

pub(crate) fn decide(c: &Connection, ids: &[i64], d: &Decision) -> Result<Vec<Proposal>> {
    if !matches!(d.status, ProposalStatus::Confirmed | ProposalStatus::Rejected) {
        return Err(StoreError::Invalid {
            index: 0,
            field: "status",
            message: format!("a decision confirms or rejects, it does not make a proposal {}", d.status),
        });
    }
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let Some(p) = by_id(c, *id)? else {
            return Err(StoreError::NotFound(format!("proposal {id}")));
        };
        if p.status == ProposalStatus::Withdrawn {
            return Err(StoreError::Invalid {
                index: i,
                field: "ids",
                message: format!("proposal {id} was withdrawn: the contact is no longer in the trace result"),
            });
        }
        c.prepare_cached(
            "UPDATE proposals SET status = ?2, decided_by = ?3, decided_at = ?4, decision_reason = ?5,
               changed_since_decision = 0, updated_at = ?4 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, d.status.as_str(), d.actor, d.at.as_second(), d.reason]))
        .map_err(backend)?;
        out.push(by_id(c, *id)?.expect("updated above"));
    }
    Ok(out)
}
