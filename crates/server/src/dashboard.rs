//! The command centre's pages (issue 9): sign-in with the browser-session cookie, and the
//! overview of the user's jurisdiction. A page asked for without a session leads to the
//! sign-in form, and back.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chainbreak_app::accounts;
use chainbreak_app::overview::{self, Overview};
use chainbreak_core::access::User;
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Authenticated, Credential};
use crate::error::ApiError;
use crate::handlers::with_deployment;
use crate::i18n::Lang;
use crate::records::query;
use crate::svg;

/// `?lang=` and, for the sign-in, where to go after.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    lang: Option<String>,
    next: Option<String>,
}

fn lang_of(headers: &HeaderMap, q: &PageQuery) -> Lang {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    Lang::negotiate(q.lang.as_deref(), accept)
}

/// Only a path of this site is a place to go back to.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/dashboard".to_string(),
    }
}

fn page(html: Result<String, askama::Error>, lang: Lang) -> Result<Response, ApiError> {
    let html = html.map_err(|e| ApiError::internal(format_args!("the page failed: {e}")))?;
    Ok(([(header::CONTENT_LANGUAGE, lang.code())], Html(html)).into_response())
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

/// A page for a signed-in user: built from the deployment by `build`, rendered in the
/// negotiated language; without a session, the sign-in form first, then back to `path`.
async fn signed_in<T, F>(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    auth: Result<Authenticated, ApiError>,
    path: &str,
    build: F,
) -> Result<Response, ApiError>
where
    T: Template + Send + 'static,
    F: FnOnce(&mut chainbreak_app::Deployment, &User, Lang) -> Result<T, chainbreak_app::AppError> + Send + 'static,
{
    let q: PageQuery = query(uri)?;
    let lang = lang_of(headers, &q);
    let Ok(Authenticated(user, _)) = auth else {
        return Ok(redirect(&format!("/sign-in?lang={}&next={path}", lang.code())));
    };
    let p = with_deployment(&state.deployment, move |dep| build(dep, &user, lang)).await?;
    page(p.render(), lang)
}

/// A decision posted from a page by the signed-in user: `act` makes it and says what to show
/// (nothing when done, else the refusal), then `show` renders the page again with that.
async fn decided<T, A, S>(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    auth: Result<Authenticated, ApiError>,
    act: A,
    show: S,
) -> Result<Response, ApiError>
where
    T: Template + Send + 'static,
    A: FnOnce(&mut chainbreak_app::Deployment, &User, Lang) -> Result<String, chainbreak_app::AppError>
        + Send
        + 'static,
    S: FnOnce(&chainbreak_app::Deployment, &User, Lang, String) -> Result<T, chainbreak_app::AppError> + Send + 'static,
{
    let q: PageQuery = query(uri)?;
    let lang = lang_of(headers, &q);
    let Authenticated(user, _) = auth?;
    let p = with_deployment(&state.deployment, move |dep| {
        let message = act(dep, &user, lang)?;
        show(dep, &user, lang, message)
    })
    .await?;
    page(p.render(), lang)
}

/// What a decision made on a page says: nothing when done; the refusal (forbidden, absent,
/// not allowed) to show on the page; any other failure is the request's.
fn refusal<T>(done: Result<T, chainbreak_app::AppError>) -> Result<String, chainbreak_app::AppError> {
    match done {
        Ok(_) => Ok(String::new()),
        Err(
            e @ (chainbreak_app::AppError::Forbidden(_)
            | chainbreak_app::AppError::NotFound(_)
            | chainbreak_app::AppError::InvalidArgument { .. }),
        ) => Ok(e.to_string()),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    lang: Lang,
    next: String,
    failed: bool,
}

/// The sign-in form.
pub(crate) async fn sign_in_page(headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let q: PageQuery = query(&uri)?;
    let lang = lang_of(&headers, &q);
    page(SignInPage { lang, next: safe_next(q.next.as_deref()), failed: false }.render(), lang)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    name: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Signs in from the form: the session cookie and back to where the user was going; the form
/// again, saying so, when refused (audited either way).
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<SignInForm>,
) -> Result<Response, ApiError> {
    let q: PageQuery = query(&uri)?;
    let lang = lang_of(&headers, &q);
    let next = safe_next(form.next.as_deref());
    let hours = state.config.session_hours;
    let SignInForm { name, password, .. } = form;
    let opened = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        accounts::start_session(&mut *dep.store, &name, &password, hours, now, "POST /sign-in")
    })
    .await?;
    match opened {
        Ok((token, _, _)) => {
            let cookie = crate::sessions::session_cookie(&token, i64::from(hours) * 3600, state.config.secure_cookies)?;
            let mut to = next;
            if q.lang.is_some() && !to.contains("lang=") {
                to.push_str(if to.contains('?') { "&" } else { "?" });
                to.push_str(&format!("lang={}", lang.code()));
            }
            Ok((StatusCode::SEE_OTHER, [(SET_COOKIE, cookie.to_str().unwrap_or_default().to_string()), (LOCATION, to)])
                .into_response())
        }
        Err(refused) => {
            tracing::info!(reason = %refused, "sign-in refused");
            let mut r = page(SignInPage { lang, next, failed: true }.render(), lang)?;
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(r)
        }
    }
}

/// Signs out (the session ends, the cookie is cleared) and shows the sign-in form.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    if let Ok(Authenticated(_, credential)) = auth {
        let token = credential.token().to_string();
        with_deployment(&state.deployment, move |dep| {
            let now = dep.clock.now();
            accounts::end_session(&mut *dep.store, &token, now, "POST /sign-out")
        })
        .await?;
        if let Credential::Session(_) = credential {
            let cleared = crate::sessions::session_cookie("", 0, state.config.secure_cookies)?;
            return Ok((
                StatusCode::SEE_OTHER,
                [(SET_COOKIE, cleared.to_str().unwrap_or_default().to_string()), (LOCATION, "/sign-in".to_string())],
            )
                .into_response());
        }
    }
    Ok(redirect("/sign-in"))
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    lang: Lang,
    who: String,
    today: String,
    classes: Vec<(String, &'static str, u64, u64)>,
    rt: String,
    under_measure: String,
    curve_onset: String,
    curve_report: String,
    incomplete: String,
    clock: Vec<(String, String, String, String, String)>,
    open_alerts: u64,
    alerts: Vec<(String, String, String, String)>,
    overdue: Option<String>,
}

fn overview_page(o: &Overview, user: &User, lang: Lang) -> OverviewPage {
    let who = who(user, lang);
    let rt = match &o.rt {
        Some(w) => match (w.mean, w.quantiles) {
            (Some(mean), Some(q)) => lang.fill(
                "rt_value",
                &[
                    ("mean", format!("{mean:.2}")),
                    ("lo", format!("{:.2}", q[0])),
                    ("hi", format!("{:.2}", q[6])),
                    ("from", w.t_start.to_string()),
                    ("to", w.t_end.to_string()),
                ],
            ),
            (Some(mean), None) => format!("Rt {mean:.2}"),
            _ => lang.t("rt_none").to_string(),
        },
        None => lang.t("rt_none").to_string(),
    };
    let share = if o.recent_cases == 0 {
        "—".to_string()
    } else {
        format!("{:.0}%", 100.0 * o.found_under_measure as f64 / o.recent_cases as f64)
    };
    let under_measure = lang.fill(
        "under_measure_value",
        &[
            ("under", o.found_under_measure.to_string()),
            ("of", o.recent_cases.to_string()),
            ("days", o.recent_days.to_string()),
            ("share", share),
        ],
    );
    let incomplete = match (o.curve.incomplete_from, o.curve.delay_days) {
        (Some(d), Some(days)) => lang.fill("incomplete_note", &[("date", d.to_string()), ("days", days.to_string())]),
        _ => String::new(),
    };
    OverviewPage {
        lang,
        who,
        today: o.today.to_string(),
        classes: o
            .classifications
            .iter()
            .map(|c| {
                let key = format!("class_{}", c.classification.as_str());
                (c.classification.as_str().to_string(), lang.t(&key), c.today, c.total)
            })
            .collect(),
        rt,
        under_measure,
        curve_onset: svg::day_bars(&o.curve.days, &o.curve.by_onset, o.curve.incomplete_from, lang.t("curve_onset")),
        curve_report: svg::day_bars(&o.curve.days, &o.curve.by_report, None, lang.t("curve_report")),
        incomplete,
        clock: o
            .clock
            .iter()
            .map(|c| {
                (
                    c.item.clone(),
                    lang.fill("hours", &[("n", c.limit_hours.to_string())]),
                    c.met.to_string(),
                    c.late.to_string(),
                    c.running.to_string(),
                )
            })
            .collect(),
        open_alerts: o.open_alerts,
        alerts: o
            .alerts
            .iter()
            .map(|a| {
                (a.raised_at.to_string(), a.kind.as_str().to_string(), a.summary.clone(), a.state.as_str().to_string())
            })
            .collect(),
        overdue: (!o.overdue_by_unit.is_empty())
            .then(|| svg::labelled_bars(&o.overdue_by_unit, lang.t("overdue_tasks"), "#b00")),
    }
}

/// The overview of the signed-in user's jurisdiction; the sign-in form first without a session.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    signed_in(&state, &headers, &uri, auth, "/dashboard", |dep, user, lang| {
        Ok(overview_page(&overview::overview(dep, user, 28)?, user, lang))
    })
    .await
}

struct ZoneLine {
    id: String,
    name: String,
    status: &'static str,
    status_text: &'static str,
    widening: bool,
    level: &'static str,
    level_text: &'static str,
    raise: &'static str,
    reasons: Vec<String>,
    /// The zone's history: (day, what, who), oldest first.
    history: Vec<(String, String, String)>,
    since: String,
    next_round: String,
    round_late: bool,
    next_review: String,
    decidable: bool,
}

#[derive(Template)]
#[template(path = "zones.html")]
struct ZonesPage {
    lang: Lang,
    who: String,
    message: String,
    map_svg: Option<String>,
    zones: Vec<ZoneLine>,
    requests: Vec<RequestLine>,
}

/// An open service request as the board and zone pages list it.
struct RequestLine {
    id: String,
    person: String,
    kind: &'static str,
    priority: String,
    priority_text: &'static str,
    state: &'static str,
    due: String,
    overdue: bool,
    owner: String,
    unit: String,
}

/// The open service requests of the user's jurisdiction (the first 100, by id): overdue first,
/// then by deadline.
fn open_requests(
    dep: &chainbreak_app::Deployment,
    user: &User,
    lang: Lang,
) -> Result<Vec<RequestLine>, chainbreak_app::AppError> {
    let filter = chainbreak_store::RequestFilter { open: true, ..Default::default() };
    let mut items = chainbreak_app::requests::list(dep, Some(user), &filter, None, 100)?.items;
    items.sort_by(|a, b| (!a.overdue, a.row.due, &a.row.id).cmp(&(!b.overdue, b.row.due, &b.row.id)));
    Ok(items
        .into_iter()
        .map(|r| RequestLine {
            kind: lang.t(&format!("request_kind_{}", r.row.kind)),
            priority_text: lang.t(&format!("request_priority_{}", r.row.priority)),
            state: lang.t(&format!("request_state_{}", r.row.state)),
            due: r.row.due.to_string(),
            overdue: r.overdue,
            id: r.row.id,
            person: r.row.person_id,
            priority: r.row.priority,
            owner: r.row.owner_unit,
            unit: r.row.unit,
        })
        .collect())
}

fn who(user: &User, lang: Lang) -> String {
    lang.fill(
        "signed_in_as",
        &[("name", user.name.clone()), ("role", user.role.to_string()), ("jurisdiction", user.jurisdiction.clone())],
    )
}

/// What the zones page shows: the open zones of the user's jurisdiction on the map and in a
/// list, with their reasons, rounds and review, and a commander's confirm and reject.
fn zones_page(
    dep: &chainbreak_app::Deployment,
    user: &User,
    lang: Lang,
    message: String,
) -> Result<ZonesPage, chainbreak_app::AppError> {
    use chainbreak_zones::{Status, Target, Why};
    let (base, zones) = chainbreak_app::zones::map(dep, Some(user))?;
    let level_text = |l: chainbreak_core::model::ZoneLevel| lang.t(&format!("level_{}", l.as_str()));
    let name_of = |t: &Target| -> Result<String, chainbreak_app::AppError> {
        Ok(match t {
            Target::Area(a) => dep.store.area(a)?.map(|a| a.name).unwrap_or_else(|| a.clone()),
            Target::Place(p) => dep.store.place(p)?.and_then(|p| p.name).unwrap_or_else(|| p.clone()),
        })
    };
    let mut lines = Vec::new();
    let mut names = Vec::new();
    for (v, _) in &zones {
        let z = &v.zone;
        let name = name_of(&z.target)?;
        names.push(name.clone());
        let date = |d: Option<jiff::civil::Date>| d.map(|d| d.to_string()).unwrap_or_else(|| "—".into());
        lines.push(ZoneLine {
            id: z.id.clone(),
            name,
            status: z.status.as_str(),
            status_text: lang.t(&format!("status_{}", z.status.as_str())),
            widening: z.widening,
            level: z.level.as_str(),
            level_text: level_text(z.level),
            raise: z.raise.map(level_text).unwrap_or(""),
            reasons: z
                .reasons
                .iter()
                .map(|r| {
                    let key = match r.why {
                        Why::Residence => "why_residence",
                        Why::Unit => "why_unit",
                        Why::Stayed => "why_stayed",
                        Why::County => "why_county",
                        Why::UnknownSource => "why_unknown_source",
                    };
                    lang.fill(key, &[("case", r.case_id.clone()), ("from", r.from.clone())])
                })
                .collect(),
            history: chainbreak_app::zones::show(dep, Some(user), &z.id)?
                .events
                .iter()
                .map(|e| {
                    let what = match &e.action {
                        chainbreak_zones::ZoneAction::Lower { change } => {
                            format!("{} → {}", level_text(change.from), level_text(change.to))
                        }
                        chainbreak_zones::ZoneAction::Round { round } => {
                            format!("{} {}: {}/{}", lang.t("round"), round.on, round.positives, round.tested)
                        }
                        a => lang.t(&format!("event_{}", a.name())).to_string(),
                    };
                    (e.on.to_string(), what, e.actor.clone())
                })
                .collect(),
            since: date(z.since),
            next_round: v.next_round.map(|r| r.on.to_string()).unwrap_or_else(|| "—".into()),
            round_late: v.round_late,
            next_review: date(v.next_review),
            decidable: user.role.may(chainbreak_core::access::Permission::ManageZones)
                && (z.status == Status::Proposed || z.raise.is_some()),
        });
    }
    let shapes: Vec<svg::Shape> = zones
        .iter()
        .zip(&names)
        .map(|((v, g), name)| svg::Shape {
            id: &v.zone.id,
            level: v.zone.level,
            proposed: v.zone.status == Status::Proposed,
            title: format!("{} · {name}", level_text(v.zone.level)),
            geometry: g.as_ref(),
        })
        .collect();
    let map_svg = svg::zones_svg(&base, &shapes, lang);
    let requests = open_requests(dep, user, lang)?;
    Ok(ZonesPage { lang, who: who(user, lang), message, map_svg, zones: lines, requests })
}

/// The command centre's zone page (signed in).
pub(crate) async fn zones(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    signed_in(&state, &headers, &uri, auth, "/zones", |dep, user, lang| zones_page(dep, user, lang, String::new()))
        .await
}

/// A commander's decision from the zone page's form.
#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    decision: String,
    #[serde(default)]
    note: Option<String>,
}

/// Confirms or rejects a zone from the zone page, then shows the page again (with the refusal,
/// when refused: a rejection without a note, a zone outside the jurisdiction...).
pub(crate) async fn decide_zone(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Path(id): axum::extract::Path<String>,
    auth: Result<Authenticated, ApiError>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, ApiError> {
    let note = crate::body::given(form.note);
    let decision = match (form.decision.as_str(), note.clone()) {
        ("confirm", note) => Some(chainbreak_app::zones::Decision::Confirm { note }),
        ("reject", Some(note)) => Some(chainbreak_app::zones::Decision::Reject { note }),
        _ => None,
    };
    let act = move |dep: &mut chainbreak_app::Deployment, user: &User, lang: Lang| match decision {
        None => Ok(lang.t("note").to_string()),
        Some(d) => {
            let mut actor = crate::auth::actor(user, "POST /zones/{id}/decision");
            actor.reason = note;
            let owner = user.unit.clone();
            refusal(chainbreak_app::zones::decide(dep, &actor, Some(user), &id, d, &owner))
        }
    };
    decided(&state, &headers, &uri, auth, act, zones_page).await
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    lang: Lang,
    who: String,
    by_state: String,
    by_owner: Vec<(String, u64, u64)>,
    overdue_title: String,
    overdue: Vec<(String, String, String, String, String)>,
    facilities: Vec<(String, usize, usize, usize, usize, String)>,
    requests: Vec<RequestLine>,
}

/// The closed-loop board (signed in): open measures by state and owner, overdue tasks first,
/// facilities with their occupancy and rooms forecast.
pub(crate) async fn board(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    signed_in(&state, &headers, &uri, auth, "/board", |dep, user, lang| {
        let requests = open_requests(dep, user, lang)?;
        Ok(board_page(&overview::board(dep, user, 100, 7)?, user, lang, requests))
    })
    .await
}

fn board_page(b: &overview::Board, user: &User, lang: Lang, requests: Vec<RequestLine>) -> BoardPage {
    let state_name = |s: &str| {
        let key = format!("state_{s}");
        match lang.t(&key) {
            "" => s.to_string(),
            t => t.to_string(),
        }
    };
    let by_state: Vec<(String, u64)> = b.by_state.iter().map(|(s, n)| (state_name(s), *n)).collect();
    BoardPage {
        lang,
        who: who(user, lang),
        by_state: svg::labelled_bars(&by_state, lang.t("open_by_state"), "#3b6ea5"),
        by_owner: b.by_owner.clone(),
        overdue_title: lang.fill("overdue_list", &[("n", b.overdue_total.to_string())]),
        overdue: b
            .overdue
            .iter()
            .map(|t| {
                (
                    t.episode_id.clone(),
                    format!("{}{}", t.task.kind, t.task.day.map(|d| format!(" ({d})")).unwrap_or_default()),
                    t.task.due.to_string(),
                    t.owner_unit.clone(),
                    t.unit.clone(),
                )
            })
            .collect(),
        facilities: b
            .facilities
            .iter()
            .map(|f| {
                let o = &f.occupancy;
                (f.name.clone(), o.rooms, o.occupied, o.to_disinfect, o.people, svg::forecast(&f.forecast))
            })
            .collect(),
        requests,
    }
}

#[derive(Template)]
#[template(path = "cases.html")]
struct CasesPage {
    lang: Lang,
    who: String,
    cases: Vec<(String, &'static str, String, String, String)>,
    /// The list's own query (sort, order, classification) for the next page's link.
    current: String,
    sort: &'static str,
    order: &'static str,
    /// Each column's link: (sort, the query that sorts by it, the arrow shown when sorted).
    sorts: Vec<(&'static str, String, &'static str)>,
    classes: Vec<(&'static str, &'static str, bool)>,
    next: Option<String>,
}

/// `?lang=`, the list's order and filter, and the cursor.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    lang: Option<String>,
    after: Option<String>,
    /// `id`, `reported`, `onset` or `classification`.
    sort: Option<String>,
    /// `asc` or `desc`.
    order: Option<String>,
    classification: Option<String>,
}

fn class_text(lang: Lang, c: chainbreak_core::model::Classification) -> &'static str {
    lang.t(&format!("class_{}", c.as_str()))
}

fn bad_query(message: String) -> ApiError {
    ApiError::new(chainbreak_core::ErrorCode::InvalidArgument, message)
}

/// The cases of the user's jurisdiction, a page at a time (keyset), filtered by classification
/// and sorted by id, report, onset or classification, either way.
pub(crate) async fn cases(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    use chainbreak_core::model::Classification;
    use chainbreak_store::{CaseQuery, CaseSort};
    let q: ListQuery = query(&uri)?;
    let lang = lang_of(&headers, &PageQuery { lang: q.lang.clone(), next: None });
    let Ok(Authenticated(user, _)) = auth else {
        return Ok(redirect(&format!("/sign-in?lang={}&next=/cases", lang.code())));
    };
    let sort = match q.sort.as_deref() {
        None | Some("") => CaseSort::Reported,
        Some(s) => CaseSort::parse(s)
            .ok_or_else(|| bad_query(format!("sort: `{s}` is not one of {}", CaseSort::expected())))?,
    };
    let descending = match q.order.as_deref() {
        None | Some("") => sort == CaseSort::Reported,
        Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(bad_query(format!("order: `{o}` is not asc or desc"))),
    };
    let classification =
        match q.classification.as_deref() {
            None | Some("") => None,
            Some(c) => Some(Classification::parse(c).ok_or_else(|| {
                bad_query(format!("classification: `{c}` is not one of {}", Classification::expected()))
            })?),
        };
    let query_of = CaseQuery { classification, sort, descending };
    let u = user.clone();
    let after = q.after.clone();
    let cq = query_of.clone();
    let page_of = with_deployment(&state.deployment, move |dep| {
        chainbreak_app::reads::cases_sorted(&*dep.store, &u, &cq, after.as_deref(), 100)
    })
    .await?;
    let date = |d: Option<jiff::civil::Date>| d.map(|d| d.to_string()).unwrap_or_else(|| "—".into());
    let class_param = classification.map(|c| format!("&classification={}", c.as_str())).unwrap_or_default();
    let current = format!(
        "lang={}&sort={}&order={}{class_param}",
        lang.code(),
        sort.as_str(),
        if descending { "desc" } else { "asc" }
    );
    let sorts = [CaseSort::Id, CaseSort::Classification, CaseSort::Onset, CaseSort::Reported]
        .into_iter()
        .map(|s| {
            let (order, arrow) = if s == sort {
                (if descending { "asc" } else { "desc" }, if descending { " ▼" } else { " ▲" })
            } else {
                ("asc", "")
            };
            (s.as_str(), format!("lang={}&sort={}&order={order}{class_param}", lang.code(), s.as_str()), arrow)
        })
        .collect();
    let classes =
        [Classification::Confirmed, Classification::Asymptomatic, Classification::Suspected, Classification::Excluded]
            .into_iter()
            .map(|c| (c.as_str(), class_text(lang, c), classification == Some(c)))
            .collect();
    let p = CasesPage {
        lang,
        who: who(&user, lang),
        cases: page_of
            .items
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    class_text(lang, c.classification),
                    date(c.onset),
                    c.reported_at.to_string(),
                    c.detection.map(|d| d.as_str().to_string()).unwrap_or_default(),
                )
            })
            .collect(),
        current,
        sort: sort.as_str(),
        order: if descending { "desc" } else { "asc" },
        sorts,
        classes,
        next: page_of
            .next
            .map(|n| serde_urlencoded::to_string([("after", n)]).map_err(|e| ApiError::internal(format_args!("{e}"))))
            .transpose()?,
    };
    page(p.render(), lang)
}

struct ContactLine {
    id: i64,
    tier: u8,
    category: String,
    person: String,
    first: String,
    last: String,
    evidence: String,
    status: &'static str,
    decidable: bool,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    lang: Lang,
    who: String,
    id: String,
    message: String,
    fields: Vec<(&'static str, String)>,
    episodes: Vec<(String, String, &'static str, String)>,
    trail: Option<String>,
    contacts: Vec<ContactLine>,
}

/// One piece of evidence in words: where (place, group or trip) and how long.
fn evidence_text(e: &serde_json::Value) -> String {
    let first = match e {
        serde_json::Value::Array(items) => items.first(),
        other => Some(other),
    };
    let Some(e) = first else { return String::new() };
    let at = ["place_id", "group_id", "trip_id", "cell"].iter().find_map(|k| e[*k].as_str()).unwrap_or("");
    match e["overlap_minutes"].as_f64() {
        Some(m) if m > 0.0 => format!("{at} · {m:.0} min"),
        _ => at.to_string(),
    }
}

fn case_page(
    dep: &chainbreak_app::Deployment,
    user: &User,
    id: &str,
    lang: Lang,
    message: String,
) -> Result<CasePage, chainbreak_app::AppError> {
    let f = overview::case_file(dep, user, id)?;
    let c = &f.case.case;
    let opt = |s: Option<String>| s.unwrap_or_else(|| "—".into());
    let fields = vec![
        (lang.t("person"), c.person_id.clone()),
        (lang.t("classification"), class_text(lang, c.classification).to_string()),
        (lang.t("onset"), opt(c.onset.map(|d| d.to_string()))),
        (lang.t("sampled"), opt(c.sampled_at.map(|t| t.to_string()))),
        (lang.t("reported"), c.reported_at.to_string()),
        (lang.t("detection"), opt(c.detection.map(|d| d.as_str().to_string()))),
        (lang.t("infector"), opt(c.infector_case_id.clone())),
    ];
    let tz = dep.calendar.time_zone();
    let mut stays = Vec::new();
    for v in &f.trail {
        let kind = dep.store.place(&v.place_id)?.map(|p| p.kind);
        let dwell =
            kind.map_or(dep.profile.open_visits.default_dwell_minutes, |k| dep.profile.open_visits.dwell_minutes(k));
        let end = v.t_out.unwrap_or(v.t_in + jiff::SignedDuration::from_mins(i64::from(dwell)));
        let (zin, zout) = (v.t_in.to_zoned(tz.clone()), end.to_zoned(tz.clone()));
        let hours = |z: &jiff::Zoned| f64::from(z.hour()) + f64::from(z.minute()) / 60.0;
        let to_hour = if zout.date() == zin.date() { hours(&zout) } else { 24.0 };
        stays.push(svg::TrailStay {
            day: zin.date(),
            from_hour: hours(&zin),
            to_hour,
            place: v.place_id.clone(),
            open: v.t_out.is_none(),
        });
    }
    let may_decide = user.role.may(chainbreak_core::access::Permission::ConfirmContacts);
    let mut contacts: Vec<ContactLine> = f
        .proposals
        .iter()
        .map(|p| ContactLine {
            id: p.proposal.id,
            tier: p.proposal.tier,
            category: p.proposal.category.clone(),
            person: p.proposal.contact_id.clone(),
            first: p.proposal.first_exposure.to_string(),
            last: p.proposal.last_exposure.to_string(),
            evidence: evidence_text(&p.evidence),
            status: p.proposal.status.as_str(),
            decidable: may_decide && p.proposal.status == chainbreak_store::ProposalStatus::Proposed,
        })
        .collect();
    contacts.sort_by(|a, b| (a.tier, &a.category, &a.person).cmp(&(b.tier, &b.category, &b.person)));
    Ok(CasePage {
        lang,
        who: who(user, lang),
        id: id.to_string(),
        message,
        fields,
        episodes: f
            .episodes
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    e.category.clone(),
                    lang.t(&format!("state_{}", e.state.as_str())),
                    e.deadline.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
                )
            })
            .collect(),
        trail: svg::trail(&stays, lang.t("trail")),
        contacts,
    })
}

/// A case of the user's jurisdiction: its record, measures, trail and contacts.
pub(crate) async fn case(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Path(id): axum::extract::Path<String>,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    signed_in(&state, &headers, &uri, auth, "/cases", move |dep, user, lang| {
        case_page(dep, user, &id, lang, String::new())
    })
    .await
}

/// A tracer's decision on a proposed contact, from the case page.
#[derive(Deserialize)]
pub(crate) struct ProposalForm {
    proposal: i64,
    decision: String,
    #[serde(default)]
    note: Option<String>,
}

/// Confirms (opening the contact's measure) or rejects a proposed contact, then shows the case
/// again, with the refusal when refused.
pub(crate) async fn decide_proposal(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Path(id): axum::extract::Path<String>,
    auth: Result<Authenticated, ApiError>,
    Form(form): Form<ProposalForm>,
) -> Result<Response, ApiError> {
    let note = crate::body::given(form.note);
    let verdict = match form.decision.as_str() {
        "confirm" => Some(chainbreak_app::proposals::Verdict::Confirm),
        "reject" => Some(chainbreak_app::proposals::Verdict::Reject),
        _ => None,
    };
    let act = move |dep: &mut chainbreak_app::Deployment, user: &User, _: Lang| match verdict {
        None => Ok(String::new()),
        Some(v) => {
            let mut actor = crate::auth::actor(user, "POST /cases/{id}/proposals");
            actor.reason = note.clone();
            let owner = user.unit.clone();
            refusal(chainbreak_app::proposals::decide_and_open(
                dep,
                Some(user),
                &actor,
                &[form.proposal],
                v,
                note.as_deref(),
                &owner,
            ))
        }
    };
    let show = move |dep: &chainbreak_app::Deployment, user: &User, lang: Lang, message: String| {
        case_page(dep, user, &id, lang, message)
    };
    decided(&state, &headers, &uri, auth, act, show).await
}

#[derive(Template)]
#[template(path = "surveillance.html")]
struct SurveillancePage {
    lang: Lang,
    who: String,
    message: String,
    may_triage: bool,
    queue: Vec<(i64, String, String, String, String, String)>,
    series: Vec<(String, String)>,
    silent: Vec<(String, String, String, i64)>,
}

fn surveillance_page(
    dep: &chainbreak_app::Deployment,
    user: &User,
    lang: Lang,
    message: String,
) -> Result<SurveillancePage, chainbreak_app::AppError> {
    use chainbreak_app::surveillance as s;
    let today = dep.calendar.day_of(dep.clock.now());
    let from = today.checked_sub(jiff::Span::new().weeks(8)).ok();
    let q = s::SeriesQuery { frequency: Some(s::Frequency::Daily), from, ..Default::default() };
    let mut series = s::series(dep, Some(user), &q)?;
    // Series with alarms first, then the busiest; at most twelve.
    let alarms = |v: &s::SeriesView| v.points.iter().filter(|p| p.alarm == Some(true)).count();
    let total = |v: &s::SeriesView| v.points.iter().filter_map(|p| p.observed).sum::<f64>();
    series.sort_by(|a, b| alarms(b).cmp(&alarms(a)).then(total(b).total_cmp(&total(a))).then(a.series.cmp(&b.series)));
    series.truncate(12);
    let queue = s::review_queue(dep, Some(user), Some(chainbreak_store::ReviewStatus::Pending), 50)?;
    let silent = s::silent(dep, Some(user))?;
    Ok(SurveillancePage {
        lang,
        who: who(user, lang),
        message,
        may_triage: user.role.may(chainbreak_core::access::Permission::TriageAlerts),
        queue: queue
            .iter()
            .map(|r| {
                (
                    r.id,
                    format!("{:.2}", r.score),
                    r.series.clone(),
                    r.period.clone(),
                    format!("{}", r.observed),
                    format!("{:.1}", r.upperbound),
                )
            })
            .collect(),
        series: series.iter().map(|v| (v.series.clone(), svg::series(&v.points, &v.series))).collect(),
        silent: silent
            .iter()
            .map(|x| (x.last.place_id.clone(), x.last.feed.clone(), x.last.last_date.clone(), x.days_silent))
            .collect(),
    })
}

/// Surveillance (signed in): the ranked alarm queue with escalate and dismiss, the sentinel
/// series with their bounds and alarms, the silent sentinels.
pub(crate) async fn surveillance(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    signed_in(&state, &headers, &uri, auth, "/surveillance", |dep, user, lang| {
        surveillance_page(dep, user, lang, String::new())
    })
    .await
}

/// A reviewer's decision on an alarm.
#[derive(Deserialize)]
pub(crate) struct ReviewForm {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Escalates (an alert) or dismisses (with a reason) an alarm from the surveillance page.
pub(crate) async fn decide_review(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::extract::Path(id): axum::extract::Path<i64>,
    auth: Result<Authenticated, ApiError>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, ApiError> {
    let reason = crate::body::given(form.reason);
    let verdict = match form.decision.as_str() {
        "escalate" => Some(chainbreak_app::surveillance::Verdict::Escalate),
        "dismiss" => Some(chainbreak_app::surveillance::Verdict::Dismiss),
        _ => None,
    };
    let act = move |dep: &mut chainbreak_app::Deployment, user: &User, _: Lang| match verdict {
        None => Ok(String::new()),
        Some(v) => {
            chainbreak_app::reads::require(user, chainbreak_core::access::Permission::TriageAlerts)?;
            let actor = crate::auth::actor(user, "POST /surveillance/review/{id}");
            refusal(chainbreak_app::surveillance::decide_review(dep, &actor, Some(user), id, v, reason))
        }
    };
    decided(&state, &headers, &uri, auth, act, surveillance_page).await
}

#[derive(Template)]
#[template(path = "chains.html")]
struct ChainsPage {
    lang: Lang,
    who: String,
    summary: String,
    svg: String,
}

/// `?lang=` and the chain to open.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChainsQuery {
    lang: Option<String>,
    expand: Option<String>,
}

/// Chains larger than this are drawn as one node until opened.
const COLLAPSE_OVER: usize = 200;

/// The chains page draws the chains among this many most recently reported cases.
const CHAIN_CASES: usize = 10_000;

/// The transmission chains of the user's jurisdiction as a forest (signed in).
pub(crate) async fn chains(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    auth: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    let q: ChainsQuery = query(&uri)?;
    let lang = lang_of(&headers, &PageQuery { lang: q.lang.clone(), next: None });
    let Ok(Authenticated(user, _)) = auth else {
        return Ok(redirect(&format!("/sign-in?lang={}&next=/chains", lang.code())));
    };
    let u = user.clone();
    let (nodes, truncated) =
        with_deployment(&state.deployment, move |dep| overview::chains(dep, &u, CHAIN_CASES)).await?;
    let (svg, (chains, largest, singles)) = svg::chain_forest(&nodes, q.expand.as_deref(), COLLAPSE_OVER, lang);
    let mut summary = lang.fill(
        "chains_summary",
        &[("chains", chains.to_string()), ("largest", largest.to_string()), ("singles", singles.to_string())],
    );
    if truncated {
        summary.push(' ');
        summary.push_str(&lang.fill("chains_recent", &[("cases", CHAIN_CASES.to_string())]));
    }
    page(ChainsPage { lang, who: who(&user, lang), summary, svg }.render(), lang)
}
