//! Goods over the store (issue 10, first step, read only): the goods engine
//! ([`chainbreak_goods`]) over the stored batches and hops — a positive batch's recall list,
//! the places to seal and the workers on their staff, and where it came from.

use chainbreak_core::model::StaffMember;
use chainbreak_goods::{Downstream, Goods, Upstream};
use serde::Serialize;

use crate::{AppError, Deployment};

/// A batch traced both ways.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoodsTrace {
    pub batch: String,
    pub downstream: Downstream,
    pub upstream: Upstream,
    /// The staff of every place the goods reached, by place then person: the workers to trace.
    pub workers: Vec<StaffMember>,
}

/// Traces a batch through the stored goods records.
pub fn trace(dep: &Deployment, batch_id: &str) -> Result<GoodsTrace, AppError> {
    let (batches, hops) = dep.store.goods()?;
    let goods = Goods::new(&batches, &hops)
        .map_err(|e| AppError::InvalidArgument { argument: "goods", message: e.to_string() })?;
    let missing = || AppError::NotFound(format!("goods batch `{batch_id}` not found"));
    let downstream = goods.downstream(batch_id).ok_or_else(missing)?;
    let upstream = goods.upstream(batch_id).ok_or_else(missing)?;
    let mut workers = Vec::new();
    for p in &downstream.places {
        workers.extend(dep.store.staff_of(&p.place)?);
    }
    Ok(GoodsTrace { batch: batch_id.to_string(), downstream, upstream, workers })
}
