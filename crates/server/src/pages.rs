//! Server-rendered pages (templates compiled into the binary by askama; no script to build):
//! for now the public page, with no sign-in — the zones in force on a map, the daily counts and
//! the latest bulletin, in Chinese or English, with no personal data and no small count.

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{Html, IntoResponse};
use chainbreak_app::public::{self, Summary};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::ApiError;
use crate::handlers::with_deployment;
use crate::i18n::Lang;
use crate::records::query;
use crate::svg;

/// The public page's options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublicQuery {
    /// `zh-CN` or `en` (default: the browser's language, else Chinese). Pages only.
    lang: Option<String>,
    /// How many complete days of counts (default 14, at most 366).
    days: Option<u32>,
}

struct ZoneLine {
    id: String,
    level: &'static str,
    level_text: &'static str,
    name: String,
    drawn_at: String,
    since: String,
    next_review: String,
}

#[derive(Template)]
#[template(path = "public.html")]
struct PublicPage {
    lang: Lang,
    other: Lang,
    bulletin: String,
    map_svg: Option<String>,
    zones: Vec<ZoneLine>,
    bars: String,
    days: Vec<(String, String, String, String)>,
    totals: (String, String, String),
}

fn render(s: &Summary, map: &public::PublicMap, lang: Lang) -> Result<String, askama::Error> {
    let b = &s.bulletin;
    let bulletin = lang.fill(
        "bulletin_text",
        &[
            ("date", b.date.to_string()),
            ("confirmed", b.confirmed.text()),
            ("asymptomatic", b.asymptomatic.text()),
            ("high", b.high_zones.to_string()),
            ("medium", b.medium_zones.to_string()),
        ],
    );
    let date = |d: Option<jiff::civil::Date>| d.map(|d| d.to_string()).unwrap_or_else(|| "—".into());
    let zones = s
        .zones
        .iter()
        .map(|z| ZoneLine {
            id: z.id.clone(),
            level: z.level.as_str(),
            level_text: lang.t(&format!("level_{}", z.level.as_str())),
            name: z.name.clone().unwrap_or_else(|| z.target_id.clone()),
            drawn_at: z.drawn_at.clone(),
            since: date(z.since),
            next_review: date(z.next_review),
        })
        .collect();
    PublicPage {
        lang,
        other: lang.other(),
        bulletin,
        map_svg: svg::zone_map(map, lang),
        zones,
        bars: svg::daily_bars(&s.days, lang),
        days: s
            .days
            .iter()
            .map(|d| (d.date.to_string(), d.confirmed.text(), d.asymptomatic.text(), d.total.text()))
            .collect(),
        totals: (s.confirmed.text(), s.asymptomatic.text(), s.total.text()),
    }
    .render()
}

/// The public page: no sign-in.
pub(crate) async fn public_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    let q: PublicQuery = query(&uri)?;
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(String::from);
    let lang = Lang::negotiate(q.lang.as_deref(), accept.as_deref());
    let days = q.days.unwrap_or(14);
    let (summary, map) =
        with_deployment(&state.deployment, move |dep| Ok((public::summary(dep, days)?, public::map(dep)?))).await?;
    let html = render(&summary, &map, lang).map_err(|e| ApiError::internal(format_args!("the page failed: {e}")))?;
    Ok(([(header::CONTENT_LANGUAGE, lang.code())], Html(html)))
}

/// The public summary as JSON: daily new cases by report date (counts under 5 as `small`,
/// counts withheld to protect them as `hidden`), the zones in force and the latest bulletin.
#[utoipa::path(get, path = "/api/v1/public/summary", tag = "public", params(PublicQuery),
    responses(
        (status = 200, description = "`{\"today\", \"days\": [{date, confirmed, asymptomatic, total}], \"confirmed\", \
            \"asymptomatic\", \"total\", \"zones\": [public zone], \"bulletin\": {date, confirmed, asymptomatic, \
            high_zones, medium_zones}}`; a count is `{\"shown\": \"count\", \"value\": n}`, `{\"shown\": \"small\"}` \
            (under 5) or `{\"shown\": \"hidden\"}`", body = Object),
    ))]
pub(crate) async fn public_summary(State(state): State<AppState>, uri: Uri) -> Result<Json<Summary>, ApiError> {
    let q: PublicQuery = query(&uri)?;
    let days = q.days.unwrap_or(14);
    Ok(Json(with_deployment(&state.deployment, move |dep| public::summary(dep, days)).await?))
}
