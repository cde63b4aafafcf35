//! `bot`: the User-Agent's sign of automation, worth the filter's points scaled by how sure the
//! sign is (see [`crate::ua`]).

use crate::filters::{Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::ua::{is_link_preview, signal_of, Grade, Kind, Signal, UserAgent};
use crate::verdict::ReasonCode;

/// What the bot filter does with the two kinds of automation an operator may want through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BotSettings {
    /// Link-preview fetchers are redirected whatever the rule finds, unless this is set
    /// (`"previews": "decline"`): then the bot filter fires on them at `certain`.
    pub decline_previews: bool,
    /// AI browsing agents fire as `ai_agent` (the default) or are let through
    /// (`"ai_agents": "redirect"`).
    pub allow_ai_agents: bool,
}

impl Judge for BotSettings {
    const NAME: &'static str = "bot";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::Bot, ReasonCode::AiAgent];

    fn compile(settings: &mut impl Settings) -> Self {
        BotSettings {
            decline_previews: settings.choice("previews", &[("redirect", false), ("decline", true)]),
            allow_ai_agents: settings.choice("ai_agents", &[("decline", false), ("redirect", true)]),
        }
    }

    fn declines_previews(&self) -> bool {
        self.decline_previews
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let ua = seen.client.user_agent.as_ref();
        Ok(self.signal(ua).map(|signal| Hit {
            code: match signal.kind {
                Kind::Bot => ReasonCode::Bot,
                Kind::AiAgent => ReasonCode::AiAgent,
            },
            matched: signal.describe(),
            value: ua.map_or("", |u| u.as_str()).to_owned(),
            points: points * signal.grade.percent() / 100,
        }))
    }
}

impl BotSettings {
    /// The sign the filter fires on, after its settings: a preview it declines by name is
    /// `certain`, an AI agent it lets through is no sign.
    fn signal(self, ua: Option<&UserAgent>) -> Option<Signal> {
        if self.decline_previews && is_link_preview(ua) {
            let word = ua.map_or("", |u| u.split(['/', ' ']).next().unwrap_or(""));
            return Some(Signal {
                grade: Grade::Certain,
                kind: Kind::Bot,
                token: format!("link preview {word}"),
            });
        }
        signal_of(ua).filter(|s| !(self.allow_ai_agents && s.kind == Kind::AiAgent))
    }
}
