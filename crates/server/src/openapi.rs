//! The OpenAPI 3.1 document, generated from the code.
//!
//! The request and response types of this crate derive their schemas. The core model's
//! [`Visit`] and [`LabTest`] cannot (the core knows nothing of OpenAPI), so their schemas are
//! written here, field for field, with the vocabularies taken from the core's own constants;
//! a test deserialises the examples of the document to keep the two honest.
//!
//! [`Visit`]: chainbreak_core::model::Visit
//! [`LabTest`]: chainbreak_core::model::LabTest

use std::borrow::Cow;

use chainbreak_core::model::{SubjectKind, TestMethod, TestResult, VisitSource};
use serde_json::json;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::{ErrorBody, ErrorDetail, ErrorLocation};
use crate::{alerts, episodes, goods, handlers, pages, proposals, records, sessions, trace, users, zones};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chainbreak",
        description = "chainbreak outbreak surveillance engine: health, batch ingest, records, users, audit, metrics.\n\n\
            Every endpoint but the operational ones and sign-in needs `Authorization: Bearer <token>` or a session cookie.\n\n\
            Every error answers `{\"error\":{\"code\",\"message\",\"location\"}}` with a stable `code`.",
    ),
    paths(
        handlers::healthz,
        handlers::readyz,
        handlers::metrics,
        handlers::openapi_json,
        handlers::visits_batch,
        handlers::lab_tests_batch,
        sessions::create_session,
        sessions::end_session,
        records::list_persons,
        records::get_person,
        records::list_places,
        records::get_place,
        records::list_cases,
        records::get_case,
        records::list_lab_tests,
        records::get_lab_test,
        records::list_visits,
        trace::trace,
        proposals::list_proposals,
        proposals::get_proposal,
        proposals::decide_proposals,
        episodes::list_episodes,
        episodes::get_episode,
        episodes::open_episode,
        episodes::transition_episode,
        episodes::list_tasks,
        episodes::list_facilities,
        episodes::put_facility,
        episodes::room_disinfected,
        alerts::sentinel_batch,
        alerts::list_alerts,
        alerts::raise_alert,
        alerts::get_alert,
        alerts::transition_alert,
        alerts::list_series,
        alerts::review_queue,
        alerts::decide_review,
        alerts::run_detection,
        alerts::silent_sentinels,
        alerts::rt,
        alerts::case_clock_event,
        zones::list_zones,
        zones::get_zone,
        zones::propose_zones,
        zones::decide_zone,
        zones::zone_round,
        zones::review_zones,
        zones::public_zones,
        goods::goods_batch,
        goods::trace_batch,
        goods::list_responses,
        goods::get_response,
        goods::respond,
        goods::list_suspensions,
        goods::list_requests,
        goods::file_request,
        goods::get_request,
        goods::act_on_request,
        goods::escalate_requests,
        pages::public_summary,
        zones::public_zones_geojson,
        users::list_users,
        users::create_user,
        users::disable_user,
        users::enable_user,
        users::reset_user_password,
        users::issue_token,
        users::revoke_token,
        users::audit,
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorLocation)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Liveness, readiness, metrics and this document (no token needed)"),
        (name = "ingest", description = "Batch ingest, all-or-nothing per request, inside the user's jurisdiction"),
        (name = "sessions", description = "Browser sign-in and sign-out (an HttpOnly session cookie)"),
        (name = "tracing", description = "Contacts of cases, with the evidence for each, and the contact proposals \
            tracers confirm or reject"),
        (name = "closed loop", description = "Measure episodes from proposal to release, with deadlines and tasks; \
            quarantine facilities, rooms, occupancy and forecast"),
        (name = "surveillance", description = "Alerts and their triage, sentinel series with aberration detection, \
            the review queue of alarms, silent sentinels, Rt"),
        (name = "zones", description = "Risk zones: proposed from cases by the profile's rules with their reasons, \
            confirmed or rejected by a commander, screening rounds, lowered and lifted by rule, with their history"),
        (name = "goods", description = "Imported cold-chain and other high-risk goods: a batch traced both ways, \
            the response to each positive sample (recall list, places to seal, the workers proposed a measure with \
            the goods evidence) and the supplier suspension list"),
        (name = "requests", description = "Service requests of residents in controlled zones (medicine, dialysis and \
            other medical care, childbirth, food): deadlines by kind, escalation when late, closed only with an \
            outcome"),
        (name = "public", description = "What the public sees: the zones in force, with no case and no person \
            (no token needed)"),
        (name = "records", description = "Reads of persons, places, cases, lab tests and visits, scoped by the \
            user's jurisdiction; personal data only on request, for roles that may, audited"),
        (name = "admin", description = "User accounts, API tokens and the audit trail"),
    )
)]
pub(crate) struct ApiDoc;

/// The `bearer` security scheme: `Authorization: Bearer <token>`, with an API token issued by
/// `POST /api/v1/users/{name}/tokens` or `chainbreak user token`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API token (`cbt_...`). A missing, unknown, revoked or expired token, or a disabled user, \
                 answers 401 `unauthenticated`; a role without the endpoint's permission answers 403 `forbidden`.",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        let session = ApiKey::Cookie(ApiKeyValue::with_description(
            "chainbreak_session",
            "A browser session, set by `POST /api/v1/sessions` (HttpOnly, SameSite=Strict). Requests that change \
             something must come from the same origin.",
        ));
        components.add_security_scheme("session", SecurityScheme::ApiKey(session));
    }
}

/// The schema of [`chainbreak_core::model::Visit`].
pub(crate) struct VisitSchema;

impl ToSchema for VisitSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Visit")
    }
}

impl PartialSchema for VisitSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "A person at a place from `t_in` until `t_out` (unknown when the person did not check out).",
            ))
            .property("person_id", string("The person's pseudonymous id."))
            .required("person_id")
            .property("place_id", string("The place's id."))
            .required("place_id")
            .property("t_in", instant("Arrival.", false))
            .required("t_in")
            .property("t_out", instant("Departure; absent, null or empty when unknown.", true))
            .property(
                "source",
                vocabulary(VisitSource::ALL.iter().map(|v| v.as_str()), "Where the record came from.", false)
                    .default(Some(json!(VisitSource::VenueCode.as_str()))),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([json!({
                "person_id": "P000123",
                "place_id": "L0042",
                "t_in": "2022-03-02T08:00:00Z",
                "t_out": 1646210400,
                "source": "venue_code"
            })])
            .into()
    }
}

/// The schema of [`chainbreak_core::model::LabTest`].
pub(crate) struct LabTestSchema;

impl ToSchema for LabTestSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LabTest")
    }
}

impl PartialSchema for LabTestSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("A lab test of a person, a goods batch or an environment sample; single or pooled."))
            .property("id", string("The test's id (a test with a known id is replaced)."))
            .required("id")
            .property(
                "subject_kind",
                vocabulary(SubjectKind::ALL.iter().map(|v| v.as_str()), "What the sample was taken from.", false),
            )
            .required("subject_kind")
            .property(
                "subject_id",
                string(
                    "Person id (a registered person), goods batch id, or environment sample description / place id.",
                ),
            )
            .required("subject_id")
            .property(
                "pool_id",
                nullable_string("The pool this sample was tested in (pooled testing); absent for a single test."),
            )
            .property("method", vocabulary(TestMethod::ALL.iter().map(|v| v.as_str()), "Test method.", false))
            .required("method")
            .property("result", vocabulary(TestResult::ALL.iter().map(|v| v.as_str()), "Test result.", false))
            .required("result")
            .property(
                "ct",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
                    .description(Some("Cycle threshold (PCR).")),
            )
            .property("sampled_at", instant("When the sample was taken.", false))
            .required("sampled_at")
            .property("reported_at", instant("When the result was reported; not before `sampled_at`.", true))
            .property("lab_id", nullable_string("The testing lab or sampling site (a registered place id)."))
            .property("variant", nullable_string("Variant, when sequenced."))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([json!({
                "id": "T0001",
                "subject_kind": "person",
                "subject_id": "P000123",
                "method": "pcr",
                "result": "positive",
                "ct": 28.5,
                "sampled_at": "2022-03-02T08:00:00Z",
                "reported_at": 1646240400
            })])
            .into()
    }
}

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description))
}

fn nullable_string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])).description(Some(description))
}

fn vocabulary<'a>(values: impl Iterator<Item = &'a str>, description: &str, nullable: bool) -> ObjectBuilder {
    let ty = if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { SchemaType::new(Type::String) };
    ObjectBuilder::new().schema_type(ty).enum_values(Some(values)).description(Some(description))
}

/// An instant as the core reads it: integer Unix seconds or an RFC 3339 string.
fn instant(description: &str, nullable: bool) -> Schema {
    let mut one_of = OneOfBuilder::new()
        .description(Some(format!("{description} Integer Unix seconds or an RFC 3339 instant.")))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some("Unix seconds")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("RFC 3339, e.g. 2022-03-02T08:00:00Z")),
        );
    if nullable {
        one_of = one_of.item(ObjectBuilder::new().schema_type(Type::Null));
    }
    one_of.into()
}

#[cfg(test)]
mod tests {
    use chainbreak_core::model::{LabTest, Visit};

    use super::*;

    fn example(schema: RefOr<Schema>) -> serde_json::Value {
        let json = serde_json::to_value(schema).unwrap();
        json["examples"][0].clone()
    }

    #[test]
    fn examples_are_what_the_core_reads() {
        let v: Visit = serde_json::from_value(example(VisitSchema::schema())).unwrap();
        assert_eq!(v.t_out.unwrap().as_second(), 1_646_210_400);
        let t: LabTest = serde_json::from_value(example(LabTestSchema::schema())).unwrap();
        assert_eq!(t.ct, Some(28.5));
    }

    #[test]
    fn schemas_name_every_field_the_core_knows() {
        // Serialise a full record and compare its keys with the schema's properties.
        let v = Visit {
            person_id: "P".into(),
            place_id: "L".into(),
            t_in: jiff::Timestamp::UNIX_EPOCH,
            t_out: Some(jiff::Timestamp::UNIX_EPOCH),
            source: VisitSource::Ping,
        };
        let t = LabTest {
            id: "T".into(),
            subject_kind: SubjectKind::Person,
            subject_id: "P".into(),
            pool_id: Some("X".into()),
            method: TestMethod::Pcr,
            result: TestResult::Positive,
            ct: Some(30.0),
            sampled_at: jiff::Timestamp::UNIX_EPOCH,
            reported_at: Some(jiff::Timestamp::UNIX_EPOCH),
            lab_id: Some("L".into()),
            variant: Some("BA.2".into()),
        };
        for (record, schema) in [
            (serde_json::to_value(v).unwrap(), VisitSchema::schema()),
            (serde_json::to_value(t).unwrap(), LabTestSchema::schema()),
        ] {
            let schema = serde_json::to_value(schema).unwrap();
            let mut fields: Vec<&String> = record.as_object().unwrap().keys().collect();
            let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
            fields.sort();
            props.sort();
            assert_eq!(fields, props);
        }
    }
}
