//! The rules of DESIGN.md as checks: who may receive a campaign ([`eligibility`], with the
//! register-expiry rule); whom its segment is for ([`audience`]); the pre-flight `check` over config, audience, content and
//! approval ([`check`]); footer variants for review and approval ([`review`]); and the gate
//! every rendered message passes before it may be handed to a transport ([`gate`]). It
//! inspects and reports; it never sends anything.

pub mod audience;
pub mod check;
pub mod eligibility;
mod gate;
pub mod review;

pub use crate::model::{Finding, Severity};
pub use audience::{audience_scope, current_scope, segment_findings};
pub use check::{CheckReport, Depth, check_campaign, insecure_link_findings};
pub use eligibility::{
    Blocker, ContactFacts, Eligibility, Exclusion, eligibility, exclusion, expired_registers,
    register_expiry,
};
pub use gate::{Gate, GateError, GatedMessage, gate, gate_confirmation};
pub use review::{FooterVariant, VariantKey, footer_variants};
