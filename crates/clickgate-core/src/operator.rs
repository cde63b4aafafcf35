//! The operator's API, call by call: an admin request from its credentials to its answer, in the
//! order [`crate::admin`] promises, with every read and write the Worker makes for it asked as a
//! step ([`Ask`]) and answered back. Nothing here waits: the edge carries out each step and hands
//! in what came of it, and the last step is the response with the lines it logs ([`Answered`]).
//!
//! [`admit`] checks the credentials before the body is read (an unauthenticated caller's body is
//! never read); [`Admitted::with_body`] reads the call and opens the config store, which every
//! call needs. Then, by call:
//!
//! - the report: every network's hours, through the directory ([`Ask::Report`]);
//! - explain: the transaction-id key, the token opened, the config in force ([`Ask::Config`]) for
//!   the network's homes, and the click's kept decision from them ([`Ask::Explanation`]);
//! - a block or a lift: the config in force for the network's home, and the change carried to its
//!   object ([`Ask::Operate`]);
//! - the feeds' state as the store holds it ([`Ask::FeedState`]);
//! - the config document read ([`Ask::Document`]), or a new one: the lists it names
//!   ([`Ask::Lists`]), the whole compiled exactly as `clickgate config push` does, and only then
//!   written ([`Ask::Save`]), so a refused document leaves the store, and every isolate, as it was;
//! - the blocklist read ([`Ask::Blocklist`]), and for an addition or a removal, the list changed
//!   and written back whole ([`Ask::SaveBlocklist`]). KV has no compare-and-set: two operators
//!   changing the list at the same moment can each read the old list, and the later write wins,
//!   losing the other's change (each is still logged, and the answer shows the list as written).

use std::sync::Arc;

use crate::admin::{self, Action, AdminCall, AdminRequest, BlocklistCall};
use crate::click::RequestError;
use crate::config::blocklist::{Blocklist, Entry};
use crate::config::{redact, referenced_lists, Config, Secrets, StoredLists};
use crate::flood::FloodBlock;
use crate::http::{self, HttpResponse};
use crate::ip::IpSet;
use crate::isolate::{Answered, Effect};
use crate::log::{fault_line, JsonLine};
use crate::network::home::Home;
use crate::report::{self, Networks, ReportQuery};
use crate::token::{ClickToken, TokenKey};

/// Where an admin call stands: answered, or waiting for the edge to do one thing for it.
#[derive(Debug)]
pub enum AdminStep {
    Done(Answered),
    Ask(Ask),
}

/// What an admin call needs of the outside world next; each is answered by its own method, which
/// gives the next step.
#[derive(Debug)]
pub enum Ask {
    /// The config in force (`None`: none can be loaded).
    Config(ConfigAsk),
    /// The report hours of every network the directory lists.
    Report(ReportAsk),
    /// A click's kept decision, from the first of its network's homes that kept it.
    Explanation(ExplanationAsk),
    /// An operator's block or lift, carried to the network's object.
    Operate(OperateAsk),
    /// The config document as the store holds it.
    Document(DocumentAsk),
    /// The IP lists a new document names, from the store.
    Lists(ListsAsk),
    /// A new document, compiled, written to the store.
    Save(SaveAsk),
    /// The feeds' state as the store holds it.
    FeedState(FeedStateAsk),
    /// The blocklist as the store holds it.
    Blocklist(BlocklistAsk),
    /// The blocklist changed, written to the store.
    SaveBlocklist(SaveBlocklistAsk),
}

/// An admin call whose credentials hold, its body not yet read.
#[derive(Debug)]
pub struct Admitted {
    method: String,
    path: String,
    query: String,
    authorization: Option<String>,
    admin_token: Option<String>,
}

/// Checks the caller's credentials against the `ADMIN_TOKEN` secret before anything else of the
/// request is read. `Err` is the answer, with the fault line a too-short secret is logged with.
pub fn admit(
    method: &str,
    (path, query): (&str, &str),
    authorization: Option<String>,
    admin_token: Option<String>,
) -> Result<Admitted, Answered> {
    match admin::authorize(
        method,
        path,
        authorization.as_deref(),
        admin_token.as_deref(),
    ) {
        Ok(()) => Ok(Admitted {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            authorization,
            admin_token,
        }),
        Err(e) => Err(Answered {
            response: http::admin_error_response(&e),
            effects: e.fault_line().map(Effect::Fault).into_iter().collect(),
        }),
    }
}

impl Admitted {
    /// The call read with its body (up to [`admin::MAX_BODY_BYTES`]), the config store opened
    /// (`Err` says why it cannot be), and the call's first step. `key` is read only to explain a
    /// click; `None` means the secret is missing.
    pub fn with_body(
        self,
        body: Result<String, RequestError>,
        store: impl FnOnce() -> Result<(), String>,
        key: impl FnOnce() -> Option<TokenKey>,
        now_ms: u64,
    ) -> AdminStep {
        let body = match body {
            Ok(body) => body,
            Err(e) => return done(http::error_response(&e, false)),
        };
        let call = AdminCall {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            authorization: self.authorization.as_deref(),
            body: &body,
        };
        let request = match admin::parse(call, self.admin_token.as_deref(), now_ms) {
            Ok(request) => request,
            Err(e) => return done(http::admin_error_response(&e)),
        };
        if let Err(problem) = store() {
            return done(http::admin_unavailable(&problem));
        }
        match request {
            AdminRequest::Page => done(http::admin_page()),
            AdminRequest::Report(query) => AdminStep::Ask(Ask::Report(ReportAsk { query })),
            AdminRequest::Explain(id) => {
                let Some(key) = key() else {
                    return done(http::admin_unavailable("TOKEN_SECRET is not set"));
                };
                match ClickToken::open(&id, &key) {
                    Ok(token) => config_ask(AfterConfig::Explain { id, token }, now_ms),
                    Err(e) => done(http::admin_unknown_transaction(&e.to_string())),
                }
            }
            AdminRequest::Network(action) => config_ask(AfterConfig::Operate(action), now_ms),
            AdminRequest::Feeds => AdminStep::Ask(Ask::FeedState(FeedStateAsk)),
            AdminRequest::Blocklist(call) => AdminStep::Ask(Ask::Blocklist(BlocklistAsk { call })),
            AdminRequest::GetConfig => AdminStep::Ask(Ask::Document(DocumentAsk)),
            AdminRequest::PutConfig(text) => AdminStep::Ask(Ask::Lists(ListsAsk {
                keys: referenced_lists(&text),
                text,
            })),
        }
    }
}

fn done(response: HttpResponse) -> AdminStep {
    AdminStep::Done(Answered {
        response,
        effects: Vec::new(),
    })
}

fn config_ask(then: AfterConfig, now_ms: u64) -> AdminStep {
    AdminStep::Ask(Ask::Config(ConfigAsk { then, now_ms }))
}

/// What a call does with the config in force.
#[derive(Debug)]
enum AfterConfig {
    /// Finds the network's homes of an opened transaction id.
    Explain { id: String, token: ClickToken },
    /// Finds the network's home of a block or lift.
    Operate(Action),
}

#[derive(Debug)]
pub struct ConfigAsk {
    then: AfterConfig,
    now_ms: u64,
}

impl ConfigAsk {
    pub fn answered(self, config: Option<Arc<Config>>) -> AdminStep {
        let Some(config) = config else {
            return done(http::admin_unavailable("no config is loaded"));
        };
        match self.then {
            AfterConfig::Explain { id, token } => {
                let homes = Home::now_and_before(&config, &token.aff_id).to_vec();
                AdminStep::Ask(Ask::Explanation(ExplanationAsk {
                    key: report::explain_key_of(&token),
                    homes,
                    id,
                    token,
                }))
            }
            AfterConfig::Operate(action) => AdminStep::Ask(Ask::Operate(OperateAsk {
                home: Home::of(&config, action.network()),
                action,
                now_ms: self.now_ms,
            })),
        }
    }
}

#[derive(Debug)]
pub struct ReportAsk {
    pub query: ReportQuery,
}

/// Every network's report hours, the long tail folded, and the objects that did not answer.
pub type ReportHours = (Networks, Vec<String>);

impl ReportAsk {
    /// `Err`: the network directory did not answer.
    pub fn answered(self, hours: Result<ReportHours, String>) -> AdminStep {
        match hours {
            Ok((answered, missing)) => done(http::admin_report(&report::aggregate(
                &self.query,
                answered,
                missing,
            ))),
            Err(e) => done(http::admin_unavailable(&format!(
                "the network directory did not answer: {e}"
            ))),
        }
    }
}

#[derive(Debug)]
pub struct ExplanationAsk {
    /// Where the network's state is kept now, then where it was kept before.
    pub homes: Vec<Home>,
    /// The click's explain key.
    pub key: String,
    id: String,
    token: ClickToken,
}

impl ExplanationAsk {
    /// `Ok(None)`: no home kept the click; `Err`: an object did not answer.
    pub fn answered(self, kept: Result<Option<String>, String>) -> AdminStep {
        match kept {
            Ok(kept) => done(http::admin_explain(report::explain_answer(
                &self.id,
                &self.token,
                kept.as_deref(),
            ))),
            Err(e) => done(http::admin_unavailable(&format!(
                "the network's object did not answer: {e}"
            ))),
        }
    }
}

#[derive(Debug)]
pub struct OperateAsk {
    pub home: Home,
    pub action: Action,
    now_ms: u64,
}

impl OperateAsk {
    /// `Ok`: the block the object left in force; `Err`: it did not answer (logged as a fault).
    pub fn answered(self, block: Result<Option<FloodBlock>, String>) -> AdminStep {
        match block {
            Ok(block) => done(http::admin_response(
                &self.action,
                block.as_ref(),
                self.now_ms,
            )),
            Err(e) => AdminStep::Done(Answered {
                response: http::admin_unavailable("the network's object did not answer; retry"),
                effects: vec![Effect::Fault(fault_line("admin", &e))],
            }),
        }
    }
}

#[derive(Debug)]
pub struct DocumentAsk;

impl DocumentAsk {
    /// `Ok(None)`: the store holds no document.
    pub fn answered(self, text: Result<Option<String>, String>) -> AdminStep {
        match text {
            // The operator's own document, but never a secret's value: the token that reads it
            // is not the keys of the networks and advertisers.
            Ok(Some(text)) => match redact(&text) {
                Some(shown) => done(http::admin_config(&shown)),
                None => done(http::admin_unavailable(
                    "the document in KV is not JSON; it is not shown, as it may hold secrets",
                )),
            },
            Ok(None) => done(http::admin_config("null")),
            Err(e) => done(http::admin_unavailable(&format!("KV read failed: {e}"))),
        }
    }
}

#[derive(Debug)]
pub struct ListsAsk {
    /// The store keys of the lists the document names.
    pub keys: Vec<String>,
    text: String,
}

impl ListsAsk {
    /// The lists found, each under its key (a missing one is left out: the compile names it);
    /// `Err`: a read failed. The secrets the document names are read from `secrets`, the Worker's.
    pub fn answered(
        self,
        found: Result<Vec<(String, Vec<u8>)>, String>,
        secrets: Secrets,
    ) -> AdminStep {
        let lists: StoredLists = match found {
            // An unreadable list is left out: the compile refuses the document naming it.
            Ok(found) => found
                .into_iter()
                .filter_map(|(key, bytes)| Some((key, IpSet::from_bytes(bytes).ok()?)))
                .collect(),
            Err(e) => return done(http::admin_unavailable(&format!("KV read failed: {e}"))),
        };
        match Config::compile_with(&self.text, &lists, secrets) {
            Ok(config) => AdminStep::Ask(Ask::Save(SaveAsk {
                text: self.text,
                config: Box::new(config),
            })),
            Err(errors) => done(http::admin_config_invalid(&errors)),
        }
    }
}

#[derive(Debug)]
pub struct SaveAsk {
    /// The document, as the operator sent it.
    pub text: String,
    config: Box<Config>,
}

impl SaveAsk {
    /// `Err`: the write failed, and the store holds the document it held.
    pub fn answered(self, written: Result<(), String>) -> AdminStep {
        if let Err(e) = written {
            return done(http::admin_unavailable(&format!("KV write failed: {e}")));
        }
        let line = JsonLine::new()
            .str("event", "config")
            .str("level", "info")
            .str("status", "saved")
            .str("config", &self.config.digest)
            .str("via", "admin")
            .finish();
        AdminStep::Done(Answered {
            response: http::admin_config_saved(&self.config),
            effects: vec![Effect::Log(line)],
        })
    }
}

#[derive(Debug)]
pub struct FeedStateAsk;

impl FeedStateAsk {
    /// The state as stored, `{}` before any feed has run (`Ok(None)`); `Err`: the read failed.
    /// Answered as it is: `clickgate feeds status` reads it with the document's feeds, so the
    /// Worker carries no code to render it.
    pub fn answered(self, text: Result<Option<String>, String>) -> AdminStep {
        match text {
            Ok(text) => done(http::admin_feeds(text.unwrap_or_else(|| "{}".to_owned()))),
            Err(e) => done(http::admin_unavailable(&format!("KV read failed: {e}"))),
        }
    }
}

#[derive(Debug)]
pub struct BlocklistAsk {
    call: BlocklistCall,
}

impl BlocklistAsk {
    /// The list as stored (`Ok(None)`: nothing was ever listed); `Err`: the read failed.
    pub fn answered(self, text: Result<Option<String>, String>) -> AdminStep {
        let text = match text {
            Ok(text) => text,
            Err(e) => return done(http::admin_unavailable(&format!("KV read failed: {e}"))),
        };
        // An unreadable list is not written over: what it holds would be lost.
        let mut list = match Blocklist::read(text.as_deref()) {
            Ok(list) => list,
            Err(e) => return done(http::admin_unavailable(&e.detail)),
        };
        let (change, entry) = match self.call {
            BlocklistCall::List => return done(http::admin_blocklist(list.to_json())),
            BlocklistCall::Add(entry) => match list.add(entry.clone()) {
                Ok(()) => ("add", entry),
                Err(e) => {
                    let problem = e.to_string();
                    return done(http::admin_blocklist_refused(
                        409,
                        "blocklist_full",
                        &problem,
                    ));
                }
            },
            BlocklistCall::Remove(asked) => {
                match list.remove(&asked.aff_id, asked.sub_id.as_deref()) {
                    // The removal is logged with who removed it and when.
                    Some(_) => ("remove", asked),
                    None => {
                        let problem = format!("{} is not on the blocklist", asked.listed());
                        return done(http::admin_blocklist_refused(404, "not_listed", &problem));
                    }
                }
            }
        };
        AdminStep::Ask(Ask::SaveBlocklist(SaveBlocklistAsk {
            text: list.to_json(),
            entries: list.entries().len(),
            change,
            entry,
        }))
    }
}

#[derive(Debug)]
pub struct SaveBlocklistAsk {
    /// The whole list, as it is to be stored under [`crate::stored::BLOCKLIST_KEY`].
    pub text: String,
    entries: usize,
    change: &'static str,
    entry: Entry,
}

impl SaveBlocklistAsk {
    /// `Err`: the write failed, and the store holds the list it held.
    pub fn answered(self, written: Result<(), String>) -> AdminStep {
        if let Err(e) = written {
            return done(http::admin_unavailable(&format!("KV write failed: {e}")));
        }
        let e = &self.entry;
        let line = JsonLine::new()
            .str("event", "blocklist")
            .str("level", "info")
            .str("action", self.change)
            .str("aff_id", e.aff_id.as_str())
            .opt("sub_id", e.sub_id.as_deref())
            .str("by", &e.by)
            .num("at", e.at_ms)
            .opt("note", e.note.as_deref())
            .finish();
        let body = JsonLine::new()
            .str("action", self.change)
            .raw("entry", &e.to_json())
            .num("entries", self.entries as u64)
            .finish();
        AdminStep::Done(Answered {
            response: http::admin_blocklist(body),
            effects: vec![Effect::Log(line)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::Id;
    use crate::flood::FloodCause;
    use crate::token::TokenVerdict;
    use serde_json::Value;
    use std::cell::Cell;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const TOKEN: &str = "admin-token-admin-token-admin-token";
    /// 2026-06-01T00:00:00Z.
    const T0: u64 = 1_780_272_000_000;
    const CONFIG: &str = r#"{"version": 1,
        "offers": [{"id": "1", "landing_url": "https://x.example/"}],
        "networks": [{"id": "net-7"}]}"#;

    fn config() -> Arc<Config> {
        Arc::new(Config::compile(CONFIG).unwrap())
    }

    fn key() -> TokenKey {
        TokenKey::new(&[4u8; 32]).unwrap()
    }

    fn net7() -> Id {
        Id::parse("net-7").unwrap()
    }

    fn bearer() -> Option<String> {
        Some(format!("Bearer {TOKEN}"))
    }

    /// The call's first step, the store opened and the key at hand; `keys` counts the key's reads.
    fn start(method: &str, target: (&str, &str), body: &str, keys: &Cell<u32>) -> AdminStep {
        let admitted = admit(method, target, bearer(), Some(TOKEN.to_owned())).unwrap();
        let key = || {
            keys.set(keys.get() + 1);
            Some(key())
        };
        admitted.with_body(Ok(body.to_owned()), || Ok(()), key, T0)
    }

    fn first(method: &str, target: (&str, &str), body: &str) -> AdminStep {
        start(method, target, body, &Cell::new(0))
    }

    fn asked(step: AdminStep) -> Ask {
        match step {
            AdminStep::Ask(ask) => ask,
            AdminStep::Done(a) => panic!("answered {} without asking", a.response.status),
        }
    }

    fn answered(step: AdminStep) -> Answered {
        match step {
            AdminStep::Done(answered) => answered,
            AdminStep::Ask(ask) => panic!("asked {ask:?}"),
        }
    }

    fn body(answered: &Answered) -> Value {
        serde_json::from_str(&answered.response.body).unwrap()
    }

    fn a_block() -> FloodBlock {
        FloodBlock {
            until_ms: T0 + 86_400_000,
            cause: FloodCause::Operator,
            detail: "blocked by alice".to_owned(),
        }
    }

    #[test]
    fn the_report_asks_for_the_networks_hours_then_answers() {
        let step = first("GET", ("/admin/report", "group_by=affiliate"), "");
        let Ask::Report(ask) = asked(step) else {
            panic!("the report did not ask for the hours");
        };
        assert_eq!(ask.query.to_hour - ask.query.from_hour, 24);
        let report =
            answered(ask.answered(Ok((Default::default(), vec!["network:net-9".to_owned()]))));
        assert_eq!(report.response.status, 200);
        assert!(report.effects.is_empty(), "{:?}", report.effects);
        assert!(
            report.response.body.contains("network:net-9"),
            "the object that did not answer is named: {}",
            report.response.body
        );
        // The directory down: 503, saying so.
        let Ask::Report(ask) = asked(first("GET", ("/admin/report", ""), "")) else {
            panic!("the report did not ask for the hours");
        };
        let down = answered(ask.answered(Err("timed out".to_owned())));
        assert_eq!(down.response.status, 503);
        assert_eq!(
            body(&down)["error"]["message"],
            "the network directory did not answer: timed out"
        );
    }

    #[test]
    fn a_block_asks_for_the_config_then_the_network_s_object() {
        let step = first(
            "POST",
            ("/admin/networks/net-7/block", ""),
            r#"{"by": "alice"}"#,
        );
        let Ask::Config(ask) = asked(step) else {
            panic!("a block did not ask for the config");
        };
        let Ask::Operate(ask) = asked(ask.answered(Some(config()))) else {
            panic!("a block did not go to the network's object");
        };
        assert_eq!(ask.home, Home::of(&config(), &net7()));
        assert_eq!(
            ask.action,
            Action::Block {
                network: net7(),
                by: "alice".to_owned()
            }
        );
        let block = a_block();
        let done = answered(ask.answered(Ok(Some(block))));
        assert_eq!(done.response.status, 200);
        let answer = body(&done);
        assert_eq!(
            (&answer["action"], &answer["by"], &answer["blocked"]),
            (
                &Value::from("block"),
                &Value::from("alice"),
                &Value::from(true)
            )
        );
        assert_eq!(answer["at"], crate::time::rfc3339_ms(T0));
        assert!(done.effects.is_empty(), "{:?}", done.effects);
    }

    #[test]
    fn an_unblock_the_object_did_not_take_is_a_fault_and_a_503() {
        let unblock = || {
            let step = first(
                "POST",
                ("/admin/networks/net-7/unblock", ""),
                r#"{"by": "bob"}"#,
            );
            let Ask::Config(ask) = asked(step) else {
                panic!("an unblock did not ask for the config");
            };
            match asked(ask.answered(Some(config()))) {
                Ask::Operate(ask) => ask,
                other => panic!("asked {other:?}"),
            }
        };
        let lifted = unblock();
        assert!(matches!(lifted.action, Action::Unblock { ref by, .. } if by == "bob"));
        let done = answered(lifted.answered(Ok(None)));
        assert_eq!(
            (done.response.status, &body(&done)["blocked"]),
            (200, &Value::from(false))
        );
        let failed = answered(unblock().answered(Err("no answer in 5 s".to_owned())));
        assert_eq!(failed.response.status, 503);
        let [Effect::Fault(line)] = failed.effects.as_slice() else {
            panic!("{:?}", failed.effects);
        };
        assert!(line.contains("no answer in 5 s"), "{line}");
        // No config loaded: the object is not asked.
        let step = first(
            "POST",
            ("/admin/networks/net-7/unblock", ""),
            r#"{"by": "bob"}"#,
        );
        let Ask::Config(ask) = asked(step) else {
            panic!("an unblock did not ask for the config");
        };
        let none = answered(ask.answered(None));
        assert_eq!(
            (none.response.status, &body(&none)["error"]["message"]),
            (503, &Value::from("no config is loaded"))
        );
    }

    #[test]
    fn explain_opens_the_token_before_it_asks_for_the_config_and_the_homes() {
        let token = ClickToken {
            issued_ms: T0 - 60_000,
            nonce: [7; crate::token::NONCE_LEN],
            verdict: TokenVerdict::Blocked,
            offer_id: Id::parse("1").unwrap(),
            aff_id: net7(),
            profile: 0,
        };
        let tid = token.seal(&key());
        let keys = Cell::new(0);
        let path = format!("/admin/explain/{tid}");
        let step = start("GET", (&path, ""), "", &keys);
        assert_eq!(keys.get(), 1);
        let Ask::Config(ask) = asked(step) else {
            panic!("explain did not ask for the config");
        };
        let Ask::Explanation(ask) = asked(ask.answered(Some(config()))) else {
            panic!("explain did not ask the network's homes");
        };
        assert_eq!(ask.homes, Home::now_and_before(&config(), &net7()));
        assert_eq!(ask.key, report::explain_key_of(&token));
        let done = answered(ask.answered(Ok(None)));
        assert_eq!(done.response.status, 200);
        assert_eq!(body(&done)["transaction_id"], tid.as_str());
        // A forged id is refused before the config is read.
        let forged = format!("/admin/explain/{tid}x");
        let refused = answered(first("GET", (&forged, ""), ""));
        assert_eq!(refused.response.status, 404);
        // Without the key, 503.
        let admitted = admit("GET", (&path, ""), bearer(), Some(TOKEN.to_owned())).unwrap();
        let keyless = answered(admitted.with_body(Ok(String::new()), || Ok(()), || None, T0));
        assert_eq!(
            body(&keyless)["error"]["message"],
            "TOKEN_SECRET is not set"
        );
    }

    #[test]
    fn the_key_is_read_only_to_explain() {
        let keys = Cell::new(0);
        for (method, path, body) in [
            ("GET", "/admin/report", ""),
            ("GET", "/admin/config", ""),
            ("PUT", "/admin/config", CONFIG),
            ("POST", "/admin/networks/net-7/block", r#"{"by": "a"}"#),
            ("GET", "/admin/", ""),
        ] {
            start(method, (path, ""), body, &keys);
        }
        assert_eq!(keys.get(), 0);
    }

    #[test]
    fn a_new_config_reads_its_lists_compiles_then_saves_and_logs() {
        let Ask::Lists(ask) = asked(first("PUT", ("/admin/config", ""), CONFIG)) else {
            panic!("a new config did not ask for its lists");
        };
        assert!(ask.keys.is_empty(), "{:?}", ask.keys);
        let Ask::Save(ask) = asked(ask.answered(Ok(Vec::new()), Secrets::None)) else {
            panic!("a valid config was not saved");
        };
        assert_eq!(ask.text, CONFIG);
        let saved = answered(ask.answered(Ok(())));
        assert_eq!(saved.response.status, 200);
        assert_eq!(body(&saved)["config"], config().digest.as_str());
        let [Effect::Log(line)] = saved.effects.as_slice() else {
            panic!("{:?}", saved.effects);
        };
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (&line["status"], &line["via"]),
            (&Value::from("saved"), &Value::from("admin"))
        );
        // A failed write logs nothing.
        let Ask::Lists(ask) = asked(first("PUT", ("/admin/config", ""), CONFIG)) else {
            panic!("a new config did not ask for its lists");
        };
        let Ask::Save(ask) = asked(ask.answered(Ok(Vec::new()), Secrets::None)) else {
            panic!("a valid config was not saved");
        };
        let failed = answered(ask.answered(Err("quota".to_owned())));
        assert_eq!(failed.response.status, 503);
        assert!(failed.effects.is_empty(), "{:?}", failed.effects);
    }

    #[test]
    fn a_refused_config_is_never_written() {
        let named = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "lists": {"blocked_ips": {"kv": "iplist/000000000000000000000000"}}}"#;
        let Ask::Lists(ask) = asked(first("PUT", ("/admin/config", ""), named)) else {
            panic!("a new config did not ask for its lists");
        };
        assert_eq!(ask.keys, ["iplist/000000000000000000000000"]);
        // The list is not in the store: the document naming it is refused, not written.
        let refused = answered(ask.answered(Ok(Vec::new()), Secrets::None));
        assert_eq!(refused.response.status, 400);
        assert_eq!(body(&refused)["error"]["code"], "invalid_config");
        // A list that could not be read: 503, nothing compiled.
        let Ask::Lists(ask) = asked(first("PUT", ("/admin/config", ""), CONFIG)) else {
            panic!("a new config did not ask for its lists");
        };
        let unread = answered(ask.answered(Err("list `x`: gone".to_owned()), Secrets::None));
        assert_eq!(unread.response.status, 503);
    }

    #[test]
    fn the_stored_config_is_answered_without_its_secrets() {
        let ask = || {
            let Ask::Document(ask) = asked(first("GET", ("/admin/config", ""), "")) else {
                panic!("the config was not read");
            };
            ask
        };
        let none = answered(ask().answered(Ok(None)));
        assert_eq!(none.response.body, "null");
        // GET /admin/config answered the document as stored, postback and signing secrets in it.
        let stored = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "advertisers": [{"id": "a", "postback_secret": "advertiser-a-postback-secret"}],
            "networks": [{"id": "n", "signing": {"keys": [{"id": "k", "secret": {"secret": "N_KEY"}},
                                                          {"id": "j", "secret": "network-n-signing-secret"}]}}]}"#;
        let shown = answered(ask().answered(Ok(Some(stored.to_owned()))));
        assert_eq!(shown.response.status, 200);
        let doc = body(&shown);
        assert!(
            !shown.response.body.contains("-secret\""),
            "{}",
            shown.response.body
        );
        assert_eq!(
            doc["advertisers"][0]["postback_secret"],
            crate::config::REDACTED
        );
        let keys = &doc["networks"][0]["signing"]["keys"];
        assert_eq!(keys[0]["secret"], serde_json::json!({"secret": "N_KEY"}));
        assert_eq!(keys[1]["secret"], crate::config::REDACTED);
        assert_eq!(doc["offers"][0]["landing_url"], "https://x.example/");
        // A stored text that is not JSON could hold anything: it is not shown.
        let broken = answered(ask().answered(Ok(Some("{\"secret\": \"x".to_owned()))));
        assert_eq!(broken.response.status, 503);
        assert!(
            !broken.response.body.contains("\"x"),
            "{}",
            broken.response.body
        );
    }

    #[test]
    fn a_new_config_reads_the_secrets_it_names_from_the_worker() {
        let named = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "advertisers": [{"id": "a", "postback_secret": {"secret": "A_POSTBACK"}}]}"#;
        let put = || {
            let Ask::Lists(ask) = asked(first("PUT", ("/admin/config", ""), named)) else {
                panic!("a new config did not ask for its lists");
            };
            ask
        };
        let set =
            |name: &str| (name == "A_POSTBACK").then(|| "advertiser-a-postback-secret".to_owned());
        assert!(matches!(
            asked(put().answered(Ok(Vec::new()), Secrets::Read(&set))),
            Ask::Save(_)
        ));
        let unset = answered(put().answered(Ok(Vec::new()), Secrets::Read(&|_| None)));
        assert_eq!(unset.response.status, 400);
        assert_eq!(
            body(&unset)["error"]["problems"][0]["problem"],
            "names the Worker secret `A_POSTBACK`, which is not set (wrangler secret put A_POSTBACK)"
        );
    }

    #[test]
    fn credentials_come_first_and_the_store_after_the_call_is_read() {
        let refused =
            admit("GET", ("/admin/report", ""), None, Some(TOKEN.to_owned())).unwrap_err();
        assert_eq!(refused.response.status, 401);
        assert!(refused.effects.is_empty(), "{:?}", refused.effects);
        // A secret too short to trust turns the API off and tells the operator.
        let weak = admit(
            "GET",
            ("/admin/report", ""),
            bearer(),
            Some("short".to_owned()),
        )
        .unwrap_err();
        assert_eq!(weak.response.status, 503);
        assert!(
            matches!(weak.effects.as_slice(), [Effect::Fault(line)] if line.contains("ADMIN_TOKEN"))
        );
        // A malformed call is answered before the store is opened; a good one needs it.
        let no_store = || Err("binding CLICKGATE_CONFIG: missing".to_owned());
        let admitted = || {
            admit(
                "POST",
                ("/admin/networks/net-7/block", ""),
                bearer(),
                Some(TOKEN.to_owned()),
            )
            .unwrap()
        };
        let bad = admitted().with_body(Ok("{}".to_owned()), no_store, || None, T0);
        assert_eq!(answered(bad).response.status, 400);
        let good = admitted().with_body(Ok(r#"{"by": "a"}"#.to_owned()), no_store, || None, T0);
        let good = answered(good);
        assert_eq!(
            (good.response.status, &body(&good)["error"]["message"]),
            (503, &Value::from("binding CLICKGATE_CONFIG: missing"))
        );
        // A body past the limit is refused as the click path refuses one.
        let too_large = RequestError::BodyTooLarge {
            limit: admin::MAX_BODY_BYTES,
        };
        let big = admitted().with_body(Err(too_large), || Ok(()), || None, T0);
        assert_eq!(answered(big).response.status, 413);
    }

    #[test]
    fn the_feeds_state_is_answered_as_the_store_holds_it() {
        let asked = || {
            let Ask::FeedState(ask) = asked(first("GET", ("/admin/feeds", ""), "")) else {
                panic!("the feeds did not ask for their state");
            };
            ask
        };
        let stored = r#"{"fraud_ips":{"url":"https://l.example/a.txt","tried_at":1}}"#;
        let answer = answered(asked().answered(Ok(Some(stored.to_owned()))));
        assert_eq!(
            (answer.response.status, answer.response.body.as_str()),
            (200, stored)
        );
        let never = answered(asked().answered(Ok(None)));
        assert_eq!(
            (never.response.status, never.response.body.as_str()),
            (200, "{}")
        );
        let failed = answered(asked().answered(Err("timeout".into())));
        assert_eq!(failed.response.status, 503);
        assert!(matches!(
            admin::parse(
                AdminCall {
                    method: "POST",
                    path: "/admin/feeds",
                    query: "",
                    authorization: bearer().as_deref(),
                    body: "",
                },
                Some(TOKEN),
                T0
            ),
            Err(admin::AdminError::MethodNotAllowed("GET"))
        ));
    }

    /// A blocklist call's read step.
    fn blocklist_read(target: &str, body: &str) -> BlocklistAsk {
        let Ask::Blocklist(ask) = asked(first("POST", (target, ""), body)) else {
            panic!("the blocklist was not read");
        };
        ask
    }

    #[test]
    fn a_blocklist_addition_reads_the_list_then_writes_it_whole_and_logs_who() {
        let add = r#"{"aff_id": "net-7", "sub_id": "s1", "by": "alice", "note": "fraud"}"#;
        let Ask::SaveBlocklist(save) =
            asked(blocklist_read("/admin/blocklist", add).answered(Ok(None)))
        else {
            panic!("the addition was not written");
        };
        let stored = Blocklist::read(Some(&save.text)).unwrap();
        let [entry] = stored.entries() else {
            panic!("{}", save.text)
        };
        assert_eq!((entry.by.as_str(), entry.at_ms), ("alice", T0));
        let text = save.text.clone();
        let saved = answered(save.answered(Ok(())));
        assert_eq!(saved.response.status, 200);
        assert_eq!(body(&saved)["entry"]["sub_id"], "s1");
        assert_eq!(body(&saved)["entries"], 1);
        let [Effect::Log(line)] = saved.effects.as_slice() else {
            panic!("{:?}", saved.effects);
        };
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (&line["event"], &line["action"], &line["by"]),
            (
                &Value::from("blocklist"),
                &Value::from("add"),
                &Value::from("alice")
            )
        );
        // The list is answered as stored.
        let Ask::Blocklist(list) = asked(first("GET", ("/admin/blocklist", ""), "")) else {
            panic!("the list was not read");
        };
        let listed = answered(list.answered(Ok(Some(text.clone()))));
        assert_eq!(
            (listed.response.status, listed.response.body.as_str()),
            (200, text.as_str())
        );
        // A failed write logs nothing.
        let Ask::SaveBlocklist(save) =
            asked(blocklist_read("/admin/blocklist", add).answered(Ok(None)))
        else {
            panic!("the addition was not written");
        };
        let failed = answered(save.answered(Err("quota".into())));
        assert_eq!(failed.response.status, 503);
        assert!(failed.effects.is_empty());
    }

    #[test]
    fn a_blocklist_removal_writes_only_when_the_entry_was_listed() {
        let stored = r#"{"entries":[{"aff_id":"net-7","by":"alice","at":1},{"aff_id":"net-7","sub_id":"s1","by":"alice","at":1}]}"#;
        let remove = r#"{"aff_id": "net-7", "by": "bob"}"#;
        let Ask::SaveBlocklist(save) = asked(
            blocklist_read("/admin/blocklist/remove", remove).answered(Ok(Some(stored.into()))),
        ) else {
            panic!("the removal was not written");
        };
        let left = Blocklist::read(Some(&save.text)).unwrap();
        assert_eq!(left.entries().len(), 1);
        assert_eq!(left.entries()[0].sub_id.as_deref(), Some("s1"));
        let saved = answered(save.answered(Ok(())));
        let [Effect::Log(line)] = saved.effects.as_slice() else {
            panic!("{:?}", saved.effects);
        };
        assert!(
            line.contains(r#""action":"remove""#) && line.contains(r#""by":"bob""#),
            "{line}"
        );
        let missing =
            answered(blocklist_read("/admin/blocklist/remove", remove).answered(Ok(None)));
        assert_eq!(missing.response.status, 404);
        assert_eq!(body(&missing)["error"]["code"], "not_listed");
    }

    #[test]
    fn an_unreadable_or_full_blocklist_is_never_written_over() {
        let add = r#"{"aff_id": "net-7", "by": "alice"}"#;
        for (stored, status) in [
            (Ok(Some("{broken".to_owned())), 503),
            (Err("timeout".to_owned()), 503),
        ] {
            let refused = answered(blocklist_read("/admin/blocklist", add).answered(stored));
            assert_eq!(refused.response.status, status);
            assert!(refused.effects.is_empty());
        }
        let full: Vec<String> = (0..crate::config::blocklist::MAX_ENTRIES)
            .map(|i| format!(r#"{{"aff_id":"a{i}","by":"x","at":1}}"#))
            .collect();
        let full = format!(r#"{{"entries":[{}]}}"#, full.join(","));
        let refused = answered(blocklist_read("/admin/blocklist", add).answered(Ok(Some(full))));
        assert_eq!(refused.response.status, 409);
        assert_eq!(body(&refused)["error"]["code"], "blocklist_full");
    }
}
