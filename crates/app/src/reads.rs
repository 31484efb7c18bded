//! Reads behind access control: every read here is for a user, checked against their role and
//! scoped to their jurisdiction, and every read of personal data is audited before the data is
//! handed over.
//!
//! A user whose jurisdiction is at the top of the area tree (an area without a parent) sees
//! everything ([`Scope::All`]); any other user sees the records lying inside their
//! jurisdiction's subtree (where each kind of record lies: [`Scope`]). A single record outside
//! the scope answers exactly as an unknown one (`not_found`), so that its existence does not
//! leak.

use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::{Case, ClassificationChange, Identifier, LabTest, Person, Place};
use chainbreak_store::{Entity, Scope, Store, VisitQuery, VisitRow};
use jiff::Timestamp;
use serde::Serialize;

use crate::AppError;
use crate::accounts::Actor;

/// The page size when none is asked for.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page.
pub const MAX_PAGE: usize = 1000;

/// One page of records and the cursor of the next (absent on the last page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to read the next page.
    pub next: Option<String>,
}

/// A person as a reader sees them: the pseudonymous record, and their identifiers (personal
/// data) only when asked for by a role that may read them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonView {
    #[serde(flatten)]
    pub person: Person,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifiers: Option<Vec<Identifier>>,
}

/// A case with its classification history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    pub case: Case,
    pub history: Vec<ClassificationChange>,
}

/// The records `user` may see.
pub fn scope_of(store: &dyn Store, user: &User) -> Result<Scope, AppError> {
    Ok(match store.area(&user.jurisdiction)? {
        Some(area) if area.parent.is_none() => Scope::All,
        _ => Scope::Within(user.jurisdiction.clone()),
    })
}

/// `Ok` when `user`'s role may do `p`.
pub fn require(user: &User, p: Permission) -> Result<(), AppError> {
    if user.role.may(p) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("the role `{}` may not do this (it needs the permission `{p}`)", user.role)))
    }
}

/// Checks a page size: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
pub fn page_size(limit: Option<usize>) -> Result<usize, AppError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(AppError::InvalidArgument {
            argument: "limit",
            message: format!("{n} is not a page size; ask for 1 to {MAX_PAGE} records"),
        }),
    }
}

fn paged<T>(items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() == limit { items.last().map(cursor) } else { None };
    Page { items, next }
}

/// Fails with `not_found` unless the record exists and lies in the user's scope.
fn visible(store: &dyn Store, user: &User, entity: Entity, id: &str) -> Result<(), AppError> {
    let scope = scope_of(store, user)?;
    if store.in_scope(&scope, entity, &[id])?.first() == Some(&true) {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("{entity} `{id}` not found in your jurisdiction")))
    }
}

/// Reads the identifiers of `persons`, writing one `read_personal_data` audit record per
/// person first (in one batch: if the audit cannot be written, nothing is read).
fn personal_data(
    store: &mut dyn Store,
    user: &User,
    actor: &Actor,
    persons: &[Person],
    at: Timestamp,
) -> Result<Vec<Vec<Identifier>>, AppError> {
    require(user, Permission::ReadPersonalData)?;
    if !persons.is_empty() {
        let mut batch = store.begin(at)?;
        for p in persons {
            batch.append_audit(&actor.audit(at, "read_personal_data", "person", &p.id))?;
        }
        batch.commit()?;
    }
    persons.iter().map(|p| Ok(store.identifiers(&p.id)?)).collect()
}

fn with_identifiers(
    store: &mut dyn Store,
    user: &User,
    actor: &Actor,
    persons: Vec<Person>,
    personal: bool,
    at: Timestamp,
) -> Result<Vec<PersonView>, AppError> {
    if !personal {
        return Ok(persons.into_iter().map(|person| PersonView { person, identifiers: None }).collect());
    }
    let identifiers = personal_data(store, user, actor, &persons, at)?;
    Ok(persons
        .into_iter()
        .zip(identifiers)
        .map(|(person, ids)| PersonView { person, identifiers: Some(ids) })
        .collect())
}

/// A page of the persons in the user's jurisdiction, by id; with `personal`, their
/// identifiers too (audited, one record per person).
pub fn persons(
    store: &mut dyn Store,
    user: &User,
    actor: &Actor,
    after: Option<&str>,
    limit: usize,
    personal: bool,
    at: Timestamp,
) -> Result<Page<PersonView>, AppError> {
    require(user, Permission::ReadRecords)?;
    if personal {
        require(user, Permission::ReadPersonalData)?;
    }
    let scope = scope_of(store, user)?;
    let persons = store.persons_page(&scope, after, limit)?;
    let views = with_identifiers(store, user, actor, persons, personal, at)?;
    Ok(paged(views, limit, |v| v.person.id.clone()))
}

/// One person of the user's jurisdiction; with `personal`, their identifiers too (audited).
pub fn person(
    store: &mut dyn Store,
    user: &User,
    actor: &Actor,
    id: &str,
    personal: bool,
    at: Timestamp,
) -> Result<PersonView, AppError> {
    require(user, Permission::ReadRecords)?;
    if personal {
        require(user, Permission::ReadPersonalData)?;
    }
    visible(store, user, Entity::Person, id)?;
    let person = store.person(id)?.ok_or_else(|| AppError::NotFound(format!("person `{id}` not found")))?;
    let mut views = with_identifiers(store, user, actor, vec![person], personal, at)?;
    Ok(views.remove(0))
}

/// A page of the places in the user's jurisdiction, by id.
pub fn places(store: &dyn Store, user: &User, after: Option<&str>, limit: usize) -> Result<Page<Place>, AppError> {
    require(user, Permission::ReadRecords)?;
    let scope = scope_of(store, user)?;
    Ok(paged(store.places_page(&scope, after, limit)?, limit, |p| p.id.clone()))
}

/// One place of the user's jurisdiction.
pub fn place(store: &dyn Store, user: &User, id: &str) -> Result<Place, AppError> {
    require(user, Permission::ReadRecords)?;
    visible(store, user, Entity::Place, id)?;
    store.place(id)?.ok_or_else(|| AppError::NotFound(format!("place `{id}` not found")))
}

/// A page of the cases of the user's jurisdiction, by id.
pub fn cases(store: &dyn Store, user: &User, after: Option<&str>, limit: usize) -> Result<Page<Case>, AppError> {
    require(user, Permission::ReadRecords)?;
    let scope = scope_of(store, user)?;
    Ok(paged(store.cases_page(&scope, after, limit)?, limit, |c| c.id.clone()))
}

/// A page of the cases of the user's jurisdiction in `query`'s order, after the cursor (the
/// `next` of the previous page: the last row's sort value and id, `value|id`).
pub fn cases_sorted(
    store: &dyn Store,
    user: &User,
    query: &chainbreak_store::CaseQuery,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<Case>, AppError> {
    require(user, Permission::ReadRecords)?;
    let scope = scope_of(store, user)?;
    let after = match after {
        None => None,
        Some(cursor) => Some(cursor.split_once('|').ok_or_else(|| AppError::InvalidArgument {
            argument: "after",
            message: format!("`{cursor}` is not a case list cursor (the `next` of the previous page)"),
        })?),
    };
    let items = store.cases_sorted(&scope, query, after, limit)?;
    let next = if items.len() == limit { items.last().map(|c| format!("{}|{}", query.key_of(c), c.id)) } else { None };
    Ok(Page { items, next })
}

/// One case of the user's jurisdiction, with its classification history.
pub fn case(store: &dyn Store, user: &User, id: &str) -> Result<CaseView, AppError> {
    require(user, Permission::ReadRecords)?;
    visible(store, user, Entity::Case, id)?;
    let case = store.case(id)?.ok_or_else(|| AppError::NotFound(format!("case `{id}` not found")))?;
    Ok(CaseView { history: store.case_history(id)?, case })
}

/// A page of the lab tests of the user's jurisdiction, by id.
pub fn lab_tests(store: &dyn Store, user: &User, after: Option<&str>, limit: usize) -> Result<Page<LabTest>, AppError> {
    require(user, Permission::ReadRecords)?;
    let scope = scope_of(store, user)?;
    Ok(paged(store.lab_tests_page(&scope, after, limit)?, limit, |t| t.id.clone()))
}

/// One lab test of the user's jurisdiction.
pub fn lab_test(store: &dyn Store, user: &User, id: &str) -> Result<LabTest, AppError> {
    require(user, Permission::ReadRecords)?;
    visible(store, user, Entity::LabTest, id)?;
    store.lab_test(id)?.ok_or_else(|| AppError::NotFound(format!("lab test `{id}` not found")))
}

/// A page of the visits of the user's jurisdiction matching `query`, by row id (the cursor).
pub fn visits(
    store: &dyn Store,
    user: &User,
    query: &VisitQuery,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<VisitRow>, AppError> {
    require(user, Permission::ReadRecords)?;
    let after_row = match after {
        None => 0,
        Some(s) => s.parse::<i64>().map_err(|_| AppError::InvalidArgument {
            argument: "after",
            message: format!("`{s}` is not a visit cursor (the `next` of the previous page)"),
        })?,
    };
    let scope = scope_of(store, user)?;
    Ok(paged(store.visits_page(&scope, query, after_row, limit)?, limit, |v| v.row.to_string()))
}
