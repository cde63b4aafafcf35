//! A sign of automation the header shows: how sure it is, what kind, and the word that showed it.

/// How sure a sign of automation is. Only `Certain` reaches a `high` probability on its own; the
/// bot filter's points are scaled by [`Grade::percent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grade {
    /// No User-Agent, a program's form with no known device or app, an engine older than its OS.
    Weak,
    /// A URL or an e-mail address in the header, `compatible;` without a browser.
    Likely,
    /// A self-declared crawler, HTTP library, headless browser, monitor, AI agent or an injection
    /// payload.
    Certain,
}

impl Grade {
    pub fn name(self) -> &'static str {
        match self {
            Grade::Weak => "weak",
            Grade::Likely => "likely",
            Grade::Certain => "certain",
        }
    }

    /// The share of the bot filter's points a sign of this grade adds: with the default 100
    /// points, 30 (`low`), 60 (`medium`) and 100 (`high`).
    pub(crate) fn percent(self) -> u32 {
        match self {
            Grade::Weak => 30,
            Grade::Likely => 60,
            Grade::Certain => 100,
        }
    }
}

/// What kind of automation a sign points to; each is its own reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bot,
    /// A browsing agent acting for a person (ChatGPT-User, Devin, Manus, ...).
    AiAgent,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Bot => "bot",
            Kind::AiAgent => "ai_agent",
        }
    }
}

/// One sign of automation: its grade, its kind and the word of the header that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub grade: Grade,
    pub kind: Kind,
    pub token: String,
}

impl Signal {
    pub(super) fn new(grade: Grade, kind: Kind, token: impl Into<String>) -> Signal {
        Signal {
            grade,
            kind,
            token: token.into(),
        }
    }

    /// A click that sent no User-Agent at all.
    pub(crate) fn no_user_agent() -> Signal {
        Signal::new(Grade::Weak, Kind::Bot, "(no user agent)")
    }

    /// `certain: Googlebot`: what the decision log shows as the reason's `matched`.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.grade.name(), self.token)
    }
}
