//! Duplicate persons: merges and unmerges, each audited in the batch that makes it.

use chainbreak_core::model::PersonMerge;
use chainbreak_store::Store;
use jiff::Timestamp;

use crate::AppError;
use crate::accounts::Actor;

/// Merges `duplicate` into `survivor` for `actor` (whose name is kept as the merge's author);
/// the reason goes into the merge record and the audit record.
pub fn merge(
    store: &mut dyn Store,
    survivor: &str,
    duplicate: &str,
    reason: &str,
    actor: &Actor,
    at: Timestamp,
) -> Result<PersonMerge, AppError> {
    let mut batch = store.begin(at)?;
    let merge = batch.merge_persons(survivor, duplicate, reason, &actor.name, at)?;
    let actor = Actor { reason: Some(reason.to_string()), ..actor.clone() };
    batch.append_audit(&actor.audit(at, "person_merge", "person", &format!("{duplicate} into {survivor}")))?;
    batch.commit()?;
    Ok(merge)
}

/// Undoes a merge for `actor`.
pub fn unmerge(store: &mut dyn Store, merge_id: i64, actor: &Actor, at: Timestamp) -> Result<PersonMerge, AppError> {
    let mut batch = store.begin(at)?;
    let merge = batch.unmerge_persons(merge_id, at)?;
    let record = format!("merge {merge_id}: {} from {}", merge.duplicate, merge.survivor);
    batch.append_audit(&actor.audit(at, "person_unmerge", "person", &record))?;
    batch.commit()?;
    Ok(merge)
}
