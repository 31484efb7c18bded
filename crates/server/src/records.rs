//! Reads of records, scoped by jurisdiction and role (`chainbreak_app::reads`): pages of
//! persons, places, cases, lab tests and visits, and single records.
//!
//! Pages are keyset-paginated: each answers `{"items": [...], "next": cursor|null}`; pass
//! `next` as `after` for the following page. A record outside the user's jurisdiction answers
//! 404 `not_found`, as an unknown one does. Identifiers (personal data) come only with
//! `personal=true`, only for roles with `read_personal_data`, and each person so read leaves an
//! audit record naming the user, the endpoint and the `reason` given.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use chainbreak_app::AppError;
use chainbreak_app::accounts::Actor;
use chainbreak_app::reads::{self, CaseView, Page, PersonView};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::{Case, LabTest, Place};
use chainbreak_store::{Store, VisitQuery, VisitRow};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;

/// Paging of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    /// The `next` of the previous page.
    pub(crate) after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    pub(crate) limit: Option<usize>,
}

/// Paging of a list of persons, and personal data.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonsQuery {
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
    /// Include each person's identifiers (personal data; needs `read_personal_data`; audited).
    #[serde(default)]
    personal: bool,
    /// Why personal data is read: the case or task in hand (goes into the audit record).
    reason: Option<String>,
}

/// Personal data of one person.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonQuery {
    /// Include the person's identifiers (personal data; needs `read_personal_data`; audited).
    #[serde(default)]
    personal: bool,
    /// Why personal data is read: the case or task in hand (goes into the audit record).
    reason: Option<String>,
}

/// Which visits, and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct VisitsQuery {
    /// Visits of this person (and of the persons merged into them).
    person: Option<String>,
    /// Visits at this place.
    place: Option<String>,
    /// Check-in at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// Check-in before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

pub(crate) fn query<T: serde::de::DeserializeOwned + Default>(uri: &Uri) -> Result<T, ApiError> {
    if uri.query().is_none() {
        return Ok(T::default());
    }
    Query::<T>::try_from_uri(uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))
}

pub(crate) fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))
}

/// A store read of one page for a user.
type ListFn<T> = fn(&dyn Store, &User, Option<&str>, usize) -> Result<Page<T>, AppError>;

/// A store read of one record for a user.
type GetFn<T> = fn(&dyn Store, &User, &str) -> Result<T, AppError>;

/// A page of records (`?after=&limit=`) for a user who may read records.
async fn list<T: Send + 'static>(
    state: AppState,
    auth: Authenticated,
    uri: Uri,
    read: ListFn<T>,
) -> Result<Json<Page<T>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: PageQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let page =
        with_deployment(&state.deployment, move |dep| read(&*dep.store, &user, q.after.as_deref(), limit)).await?;
    Ok(Json(page))
}

/// One record by the id in the path, for a user who may read records.
async fn get<T: Send + 'static>(
    state: AppState,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    read: GetFn<T>,
) -> Result<Json<T>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| read(&*dep.store, &user, &id)).await?))
}

fn actor(user: &User, via: &str, reason: Option<String>) -> Actor {
    Actor { name: user.name.clone(), via: via.to_string(), reason: reason.filter(|r| !r.trim().is_empty()) }
}

/// Lists the persons of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/persons", tag = "records", security(("bearer" = []), ("session" = [])),
    params(PersonsQuery),
    responses(
        (status = 200, description = "`{\"items\": [person...], \"next\": cursor|null}`, by id; a person has \
            `id`, `residence`, `birth_year`, `sex`, `occupation`, and `identifiers` (kind, value) with `personal=true`",
            body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records, or personal data", body = ErrorBody),
    ))]
pub(crate) async fn list_persons(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<PersonView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: PersonsQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let actor = actor(&user, "GET /api/v1/persons", q.reason);
    let page = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        reads::persons(&mut *dep.store, &user, &actor, q.after.as_deref(), limit, q.personal, now)
    })
    .await?;
    Ok(Json(page))
}

/// One person of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/persons/{id}", tag = "records", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The person's pseudonymous id"), PersonQuery),
    responses(
        (status = 200, description = "The person (`identifiers` with `personal=true`)", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records, or personal data", body = ErrorBody),
        (status = 404, description = "`not_found`: no such person in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_person(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<PersonView>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    let q: PersonQuery = query(&uri)?;
    let actor = actor(&user, "GET /api/v1/persons/{id}", q.reason);
    let view = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        reads::person(&mut *dep.store, &user, &actor, &id, q.personal, now)
    })
    .await?;
    Ok(Json(view))
}

/// Lists the places of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/places", tag = "records", security(("bearer" = []), ("session" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "`{\"items\": [place...], \"next\": cursor|null}`, by id; fields as in the \
            places file (FORMATS.md)", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_places(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<Place>>, ApiError> {
    list(state, auth, uri, reads::places).await
}

/// One place of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/places/{id}", tag = "records", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The place's id")),
    responses(
        (status = 200, description = "The place", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such place in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_place(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Place>, ApiError> {
    get(state, auth, path, reads::place).await
}

/// Lists the cases of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/cases", tag = "records", security(("bearer" = []), ("session" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "`{\"items\": [case...], \"next\": cursor|null}`, by id; fields as in the \
            cases file (FORMATS.md)", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_cases(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<Case>>, ApiError> {
    list(state, auth, uri, reads::cases).await
}

/// One case of the user's jurisdiction, with its classification history.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "records", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The case's id")),
    responses(
        (status = 200, description = "The case and its `history` of classifications", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such case in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_case(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<CaseView>, ApiError> {
    get(state, auth, path, reads::case).await
}

/// Lists the lab tests of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/lab-tests", tag = "records", security(("bearer" = []), ("session" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "`{\"items\": [lab test...], \"next\": cursor|null}`, by id; fields as in \
            the lab tests file (FORMATS.md)", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_lab_tests(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<LabTest>>, ApiError> {
    list(state, auth, uri, reads::lab_tests).await
}

/// One lab test of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/lab-tests/{id}", tag = "records", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The lab test's id")),
    responses(
        (status = 200, description = "The lab test", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such lab test in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_lab_test(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<LabTest>, ApiError> {
    get(state, auth, path, reads::lab_test).await
}

/// Lists visits of the user's jurisdiction (by their place or their person).
#[utoipa::path(get, path = "/api/v1/visits", tag = "records", security(("bearer" = []), ("session" = [])),
    params(VisitsQuery),
    responses(
        (status = 200, description = "`{\"items\": [visit...], \"next\": cursor|null}` in arrival order; a visit \
            has `row`, `person_id`, `place_id`, `t_in`, `t_out`, `source`", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_visits(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<VisitRow>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: VisitsQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let VisitsQuery { person, place, from, to, after, .. } = q;
    let filter = VisitQuery { person, place, from, to };
    let page = with_deployment(&state.deployment, move |dep| {
        reads::visits(&*dep.store, &user, &filter, after.as_deref(), limit)
    })
    .await?;
    Ok(Json(page))
}
