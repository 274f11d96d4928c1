//! The vocabulary of A/B subject tests: phases, metrics, fallbacks, decisions.

/// Which outbox phase a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Test,
    Remainder,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Remainder => "remainder",
        }
    }
}

/// What to do when no variant wins with the required confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    First,
    BestObserved,
}

/// The decision after the test phase.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    pub winner: usize,
    pub method: String,
    pub statistic: f64,
    pub p_value_or_probability: f64,
    pub fallback_used: bool,
}

/// One test-phase message with what happened to it, for the decision.
#[derive(Debug, Clone)]
pub struct TestMessage {
    pub variant: usize,
    pub sent_at: Option<i64>,
    /// (kind, link, at) of each click or open.
    pub events: Vec<(String, Option<i64>, i64)>,
    pub replied: bool,
}

/// What decides an A/B test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AbMetric {
    Clicks,
    Opens,
    Replies,
}

impl AbMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clicks => "clicks",
            Self::Opens => "opens",
            Self::Replies => "replies",
        }
    }
}
