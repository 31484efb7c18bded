//! Who may do what: roles as sets of permissions, and the account model.
//!
//! Every user belongs to a unit and has a jurisdiction (an area): they see and change only
//! records inside that area's subtree, and only what their role permits. The checks live in
//! the application layer; this module only says what each role may do.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::time::{opt_ts, ts};
use crate::vocabulary;

vocabulary!(
    /// A user's role.
    Role {
        Admin = "admin", Commander = "commander", Epidemiologist = "epidemiologist", Tracer = "tracer",
        CommunityWorker = "community_worker", FacilityManager = "facility_manager", Lab = "lab", Viewer = "viewer"
    }
);

vocabulary!(
    /// One thing a role may do.
    Permission {
        /// Read pseudonymous records (persons by id, places, visits, cases, lab tests).
        ReadRecords = "read_records",
        /// Read personal data (names, document numbers, phones): every read is audited.
        ReadPersonalData = "read_personal_data",
        /// Import files and ingest batches of check-ins, trips, pings and other feeds.
        IngestData = "ingest_data",
        /// Ingest lab results.
        IngestLabResults = "ingest_lab_results",
        /// Confirm or reject proposed contacts; merge duplicate persons.
        ConfirmContacts = "confirm_contacts",
        /// Manage measure episodes (notify, transfer, release...).
        ManageEpisodes = "manage_episodes",
        /// Discharge a case from isolation (a clinical decision: facility staff, epidemiologists,
        /// the command).
        DischargeCases = "discharge_cases",
        /// Confirm, widen, narrow and lift risk zones.
        ManageZones = "manage_zones",
        /// Manage quarantine facilities and rooms.
        ManageFacilities = "manage_facilities",
        /// Add, disable and reset users; issue tokens.
        ManageUsers = "manage_users",
        /// Read the audit trail.
        ReadAudit = "read_audit",
        /// Triage alerts (acknowledge, investigate, close), raise them, and decide the review
        /// queue of aberration alarms.
        TriageAlerts = "triage_alerts"
    }
);

impl Role {
    /// What the role may do.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[ReadRecords, ManageUsers, ReadAudit],
            Role::Commander => &[
                ReadRecords,
                ReadPersonalData,
                ConfirmContacts,
                ManageEpisodes,
                DischargeCases,
                ManageZones,
                ReadAudit,
                TriageAlerts,
            ],
            Role::Epidemiologist => &[
                ReadRecords,
                ReadPersonalData,
                IngestData,
                ConfirmContacts,
                ManageEpisodes,
                DischargeCases,
                TriageAlerts,
            ],
            Role::Tracer => &[ReadRecords, ReadPersonalData, IngestData, ConfirmContacts],
            Role::CommunityWorker => &[ReadRecords, ReadPersonalData, ManageEpisodes],
            Role::FacilityManager => &[ReadRecords, ReadPersonalData, ManageEpisodes, DischargeCases, ManageFacilities],
            Role::Lab => &[IngestLabResults],
            Role::Viewer => &[ReadRecords],
        }
    }

    /// Whether the role may do `p`.
    pub fn may(self, p: Permission) -> bool {
        self.permissions().contains(&p)
    }
}

/// A user account (without its password hash, which never leaves the store's accounts
/// table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// The unit the user works for.
    pub unit: String,
    /// The area whose subtree the user may see and change.
    pub jurisdiction: String,
    pub disabled: bool,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
}

/// An API token's description (the token itself is shown once, and stored only hashed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub label: String,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
    #[serde(default, with = "opt_ts")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, with = "opt_ts")]
    pub revoked_at: Option<Timestamp>,
}

/// One audit record: who did what to which record, when, through what, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(with = "ts")]
    pub at: Timestamp,
    /// The user name, or `system` for scheduled work.
    pub actor: String,
    /// What was done: `read_personal_data`, `user_add`, `import`, `purge`...
    pub action: String,
    /// The kind of record (`person`, `user`, `visits`...).
    pub entity: String,
    /// The record's id (pseudonymous for persons).
    pub record: String,
    /// The endpoint or command (`GET /api/v1/persons/P1`, `chainbreak user add`).
    pub via: String,
    /// The case or task in hand, when given.
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_is_a_set_of_distinct_permissions() {
        for role in Role::ALL {
            let p = role.permissions();
            let mut seen = std::collections::HashSet::new();
            assert!(p.iter().all(|x| seen.insert(*x)), "{role} lists a permission twice");
        }
        assert!(Role::Admin.may(Permission::ManageUsers));
        assert!(!Role::Admin.may(Permission::ReadPersonalData), "admins run the system, not the outbreak");
        assert!(!Role::Viewer.may(Permission::ReadPersonalData));
        assert!(Role::Lab.may(Permission::IngestLabResults) && !Role::Lab.may(Permission::ReadRecords));
        // Discharge is clinical: not for community workers, who otherwise move episodes.
        let discharge: Vec<Role> = Role::ALL.iter().copied().filter(|r| r.may(Permission::DischargeCases)).collect();
        assert_eq!(discharge, [Role::Commander, Role::Epidemiologist, Role::FacilityManager]);
        assert!(discharge.iter().all(|r| r.may(Permission::ManageEpisodes)));
        assert!(Permission::ALL.iter().all(|p| Role::ALL.iter().any(|r| r.may(*p))), "every permission is granted");
    }
}
