//! A campaign's run state: whether its workers may start new transactions.

/// `Active` sends; `Paused` starts no new SMTP transaction until resumed; `Cancelled` is
/// final: every row still to be sent became `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Active,
    Paused,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Paused, Self::Cancelled]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}
