//! Click ids asked of their replay object in batches.
//!
//! A signed click that carries its network's click id waits for the replay object's answer
//! (`crate::signing`). One request per click would put a Durable Object round trip, a storage read
//! and a storage write on every such click, and an object serves about a thousand requests a second.
//! So the isolate keeps at most one request out per replay object: a click whose object is busy
//! joins the queue, and the queue goes out as one batch once the request out has come back. Under
//! no load a click goes alone and waits no longer than before; under load, each round trip carries
//! every click that arrived during the previous one. The object answers a batch with one storage
//! read and one write, in order, so a click id twice in one batch is fresh once.
//!
//! The click whose question finds its object idle sends the batch, in its own request's background,
//! and every answer is recorded here; once a batch is back, that same background sends the next
//! ([`Outbox::next_step`]), so all I/O stays in the request that began it. Waiting clicks do no
//! I/O: each is woken when its batch's answers are in, and each stops waiting at its own deadline,
//! counted from its arrival ([`wait_left`]), however long it queued. (Handing the next batch to a
//! waiting click to send ran that click's I/O inside the sender's request, which the runtime refuses
//! under load: "Cannot perform I/O on behalf of a different request".)
//!
//! A network may have its clicks redirected before their ids are checked
//! ([`crate::config::networks::ReplayCheck::AfterRedirect`]). Their questions wait in the same queues, no
//! click waits for them, and they go out in the background: once the oldest has waited
//! [`AFTER_REDIRECT_BATCH_MS`], when the queue is full, or with the next click that does wait. A
//! repeat the store reports is logged ([`Detected`]).
//!
//! Either way the isolate remembers the ids it knows to be in use (answered by the store, or asked
//! after their redirect) until their links expire, bounded: a repeat here is refused at once
//! ([`Asked::Replayed`], [`AskedAfter::Replayed`]), so a link replayed over and over costs one
//! question per isolate.
//!
//! The wire form is one question per line, `r/<key> <expires ms>`, and one answer per line,
//! `fresh` or `replayed`, in the same order ([`super::wire::ObjectRequest::ClickIds`]).

use std::collections::{HashMap, VecDeque};

use crate::log::JsonLine;
use crate::signing::{replay_step, ReplayAnswer};

/// A batch carries at most this many questions; a longer queue goes out in the next round.
pub const MAX_BATCH: usize = 128;

/// Names a waiting click in this isolate.
pub type Ticket = u64;

/// One request to a replay object: whose questions it carries, in order, the uses they ask about
/// (key, expiry), and when it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Questions {
    pub object: String,
    pub tickets: Vec<Ticket>,
    pub uses: Vec<(String, u64)>,
    pub(crate) sent_ms: u64,
}

/// What a click does after asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asked {
    /// This isolate knows the id in use, and that use is still valid: a replay, known here, and
    /// no question is queued.
    Replayed,
    /// Nothing was out for the object: send this batch (it holds the click's own question).
    Send(Questions),
    /// A request is out for the object: wait for the batch that carries this question.
    Wait,
}

/// What a question asked after its click's redirect comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AskedAfter {
    /// This isolate has seen the id in use, and that use is still valid: a replay, known here.
    Replayed,
    /// Queued for the store; the edge carries out the step in the background.
    Queued(Step),
}

/// The background work of an object's queue of after-redirect questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Look again ([`Outbox::wake`]) in this many milliseconds.
    WakeIn(u64),
    /// Send this batch, then ask for the next step ([`Outbox::next_step`]).
    Send(Questions),
}

/// A click id the store had seen in use, asked after its click was redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub network: String,
    pub click_id: String,
}

impl Detected {
    pub fn log_line(&self) -> String {
        JsonLine::new()
            .str("event", "replay_detected")
            .str("level", "warn")
            .str("network", &self.network)
            .str("click_id", &self.click_id)
            .str(
                "detail",
                "a click id used before, redirected before the replay store answered",
            )
            .finish()
    }
}

/// How long an after-redirect question waits for others to go out with it. It bounds how long a
/// replay elsewhere can go unnoticed: this, plus one round trip for the batch ahead of it and one
/// for its own.
pub const AFTER_REDIRECT_BATCH_MS: u64 = 200;

/// How many click ids an isolate remembers using, to refuse a repeat without asking.
pub const REMEMBERED: usize = 32_768;

/// The isolate's questions per replay object, and the answers not yet collected.
#[derive(Debug, Default)]
pub struct Outbox {
    lanes: HashMap<String, Lane>,
    /// Every click still waiting, with its answer once its batch has come back.
    answers: HashMap<Ticket, Option<ReplayAnswer>>,
    /// The after-redirect questions not yet answered, with whose they are.
    after: HashMap<Ticket, Detected>,
    recent: Recent,
}

#[derive(Debug, Default)]
struct Lane {
    /// When the batch out was sent; `None` when nothing is out.
    sent_ms: Option<u64>,
    /// The questions of the batch out.
    out: Vec<Ticket>,
    waiting: Vec<Question>,
    /// When the background's look at this lane is due ([`Step::WakeIn`]). A look that never came
    /// (its request was cancelled) stops counting soon after, so another is armed.
    timer: Option<u64>,
}

#[derive(Debug)]
struct Question {
    ticket: Ticket,
    key: String,
    expires_ms: u64,
    asked_ms: u64,
    /// Asked after the click's redirect: nobody waits for its answer.
    after_redirect: bool,
}

impl Question {
    fn new(ticket: Ticket, key: &str, expires_ms: u64, now_ms: u64, after_redirect: bool) -> Self {
        Question {
            ticket,
            key: key.to_owned(),
            expires_ms,
            asked_ms: now_ms,
            after_redirect,
        }
    }
}

/// Click-id keys used in this isolate, each with when its use expires: a repeat is refused without
/// asking. Bounded, the oldest forgotten first; a forgotten one is still caught by the store.
#[derive(Debug, Default)]
struct Recent {
    until: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl Recent {
    fn holds(&self, key: &str, now_ms: u64) -> bool {
        self.until.get(key).is_some_and(|&t| t >= now_ms)
    }

    fn remember(&mut self, key: &str, expires_ms: u64) {
        match self.until.get_mut(key) {
            Some(t) => *t = (*t).max(expires_ms),
            None => {
                self.until.insert(key.to_owned(), expires_ms);
                self.order.push_back(key.to_owned());
            }
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.until.remove(&oldest);
            }
        }
    }
}

/// A batch out this long is taken for lost (its click's request was cancelled mid-flight): the
/// next question goes out without it, so one lost request cannot hold an object's queue for good.
/// Clicks wait at most this long for an answer too (the edge's timeout), then the replay store
/// counts as unavailable for them.
pub const LOST_AFTER_MS: u64 = 5_000;

/// How much longer a click that asked at `asked_ms` waits for its answer: what is left of
/// [`LOST_AFTER_MS`] from its arrival, so neither queueing nor sending the batch itself extends it.
pub fn wait_left(asked_ms: u64, now_ms: u64) -> u64 {
    asked_ms
        .saturating_add(LOST_AFTER_MS)
        .saturating_sub(now_ms)
}

/// Whether a batch sent, or a click's question asked, at `since_ms` has gone unanswered past
/// [`LOST_AFTER_MS`]: the one rule for the queue moving on and for the click giving up waiting.
pub(crate) fn lost(since_ms: u64, now_ms: u64) -> bool {
    now_ms >= since_ms.saturating_add(LOST_AFTER_MS)
}

impl Outbox {
    pub(crate) fn ask(
        &mut self,
        object: &str,
        ticket: Ticket,
        key: &str,
        expires_ms: u64,
        now_ms: u64,
    ) -> Asked {
        if self.recent.holds(key, now_ms) {
            return Asked::Replayed;
        }
        self.answers.insert(ticket, None);
        let lane = self.lanes.entry(object.to_owned()).or_default();
        lane.waiting
            .push(Question::new(ticket, key, expires_ms, now_ms, false));
        match take_if_idle(object, lane, &mut self.after, now_ms) {
            Some(batch) => Asked::Send(batch),
            None => Asked::Wait,
        }
    }

    /// A click redirected before its id is checked: refused here if this isolate has seen the id
    /// in use, else queued for the store under `who` (for the log, should the store have seen it).
    pub(crate) fn ask_after(
        &mut self,
        object: &str,
        ticket: Ticket,
        key: &str,
        expires_ms: u64,
        now_ms: u64,
        who: Detected,
    ) -> AskedAfter {
        if self.recent.holds(key, now_ms) {
            return AskedAfter::Replayed;
        }
        self.recent.remember(key, expires_ms);
        self.after.insert(ticket, who);
        let lane = self.lanes.entry(object.to_owned()).or_default();
        lane.waiting
            .push(Question::new(ticket, key, expires_ms, now_ms, true));
        AskedAfter::Queued(self.next_step(object, now_ms))
    }

    /// The background timer of an object's queue went off.
    pub fn wake(&mut self, object: &str, now_ms: u64) -> Step {
        if let Some(lane) = self.lanes.get_mut(object) {
            lane.timer = None;
        }
        self.next_step(object, now_ms)
    }

    /// What the background does next for an object's queue: send it when nothing is out and it is
    /// due (full, holding a waiting click's question, or its oldest after-redirect question has
    /// waited long enough), else look again later; one timer per object at a time.
    pub fn next_step(&mut self, object: &str, now_ms: u64) -> Step {
        let Some(lane) = self.lanes.get_mut(object) else {
            return Step::Nothing;
        };
        let Some(oldest) = lane
            .waiting
            .iter()
            .find(|q| q.after_redirect)
            .map(|q| q.asked_ms)
        else {
            // Only waiting clicks' questions, or none: they go out now if nothing is out; if
            // something is, the background that sent it asks again when it is back.
            return take_if_idle(object, lane, &mut self.after, now_ms)
                .map_or(Step::Nothing, Step::Send);
        };
        let due_at = oldest.saturating_add(AFTER_REDIRECT_BATCH_MS);
        let due = now_ms >= due_at
            || lane.waiting.len() >= MAX_BATCH
            || lane.waiting.iter().any(|q| !q.after_redirect);
        if due {
            if let Some(batch) = take_if_idle(object, lane, &mut self.after, now_ms) {
                return Step::Send(batch);
            }
        }
        if lane
            .timer
            .is_some_and(|t| now_ms <= t.saturating_add(AFTER_REDIRECT_BATCH_MS))
        {
            return Step::Nothing;
        }
        // Not due yet: look again when it is. Busy: the background that sent the batch out asks
        // again when it is back, and this look is for a batch a waiting click sent.
        let wait = if due {
            AFTER_REDIRECT_BATCH_MS
        } else {
            due_at - now_ms
        };
        lane.timer = Some(now_ms + wait);
        Step::WakeIn(wait)
    }

    /// The batch came back with these answers (one per question, in order; the edge passes
    /// `Unavailable` for each when the request failed). The object is idle again: the background
    /// that sent this batch sends the next ([`Outbox::next_step`]). Returns
    /// the after-redirect questions the store had seen.
    pub fn returned(&mut self, batch: &Questions, answers: &[ReplayAnswer]) -> Vec<Detected> {
        let mut detected = Vec::new();
        for ((ticket, answer), (key, expires_ms)) in
            batch.tickets.iter().zip(answers).zip(&batch.uses)
        {
            // An id the store answered for is in use: a repeat here needs no question.
            if matches!(answer, ReplayAnswer::Fresh | ReplayAnswer::Replayed) {
                self.recent.remember(key, *expires_ms);
            }
            if let Some(who) = self.after.remove(ticket) {
                if *answer == ReplayAnswer::Replayed {
                    detected.push(who);
                }
            // A click that gave up waiting has no slot left: its answer is dropped.
            } else if let Some(slot) = self.answers.get_mut(ticket) {
                *slot = Some(*answer);
            }
        }
        if let Some(lane) = self.lanes.get_mut(&batch.object) {
            // A batch taken for lost may come back after the next one went out: that one is
            // still out.
            if lane.sent_ms == Some(batch.sent_ms) {
                lane.sent_ms = None;
                lane.out.clear();
            }
        }
        self.forget_if_done(&batch.object);
        detected
    }

    /// A waiting click's look at its object: the next batch for it to send, when nothing is out
    /// (or what is out is lost) and questions are queued.
    pub fn take_turn(&mut self, object: &str, now_ms: u64) -> Option<Questions> {
        let lane = self.lanes.get_mut(object)?;
        take_if_idle(object, lane, &mut self.after, now_ms)
    }

    /// The click's answer, once its batch is back; the click is forgotten then.
    pub fn answer(&mut self, ticket: Ticket) -> Option<ReplayAnswer> {
        let answer = (*self.answers.get(&ticket)?)?;
        self.answers.remove(&ticket);
        Some(answer)
    }

    /// The click stopped waiting: its question leaves the queue if it has not gone out yet, and a
    /// late answer for it is dropped.
    pub fn give_up(&mut self, object: &str, ticket: Ticket) {
        self.answers.remove(&ticket);
        if let Some(lane) = self.lanes.get_mut(object) {
            lane.waiting.retain(|q| q.ticket != ticket);
        }
        self.forget_if_done(object);
    }

    /// An object with nothing out and nothing queued is dropped, so the outbox holds only objects
    /// in use.
    fn forget_if_done(&mut self, object: &str) {
        if self
            .lanes
            .get(object)
            .is_some_and(|lane| lane.sent_ms.is_none() && lane.waiting.is_empty())
        {
            self.lanes.remove(object);
        }
    }

    /// Questions waiting (not yet sent), over all objects.
    pub fn waiting(&self) -> usize {
        self.lanes.values().map(|l| l.waiting.len()).sum()
    }

    /// Clicks this isolate still holds a place or an answer for.
    pub fn clicks(&self) -> usize {
        self.answers.len()
    }

    /// After-redirect questions not yet answered.
    pub fn unanswered_after(&self) -> usize {
        self.after.len()
    }
}

/// The queue's next batch, when nothing is out for the object (or what is out is lost). The
/// after-redirect questions of a lost batch are forgotten: its answers will not be read.
fn take_if_idle(
    object: &str,
    lane: &mut Lane,
    after: &mut HashMap<Ticket, Detected>,
    now_ms: u64,
) -> Option<Questions> {
    let busy = lane.sent_ms.is_some_and(|t| !lost(t, now_ms));
    if busy || lane.waiting.is_empty() {
        return None;
    }
    for lost in lane.out.drain(..) {
        after.remove(&lost);
    }
    lane.sent_ms = Some(now_ms);
    let n = lane.waiting.len().min(MAX_BATCH);
    let (tickets, uses): (Vec<_>, Vec<_>) = lane
        .waiting
        .drain(..n)
        .map(|q| (q.ticket, (q.key, q.expires_ms)))
        .unzip();
    lane.out.clone_from(&tickets);
    Some(Questions {
        object: object.to_owned(),
        tickets,
        uses,
        sent_ms: now_ms,
    })
}

/// The object's step for one-time uses, in order: `stored` holds when earlier uses of their keys
/// expire. Returns whether each use repeats one still valid, and what to store (each changed key
/// once, with its latest expiry). Click ids in batches and conversion events one at a time are
/// both judged by it.
pub fn uses(
    questions: &[(&str, u64)],
    mut stored: HashMap<String, u64>,
    now_ms: u64,
) -> (Vec<bool>, Vec<(String, u64)>) {
    let mut used = Vec::with_capacity(questions.len());
    let mut changed: Vec<String> = Vec::new();
    for &(key, expires_ms) in questions {
        let before = stored.get(key).copied();
        let (repeat, keep_until) = replay_step(before, expires_ms, now_ms);
        used.push(repeat);
        if before != Some(keep_until) {
            stored.insert(key.to_owned(), keep_until);
            if !changed.iter().any(|k| k == key) {
                changed.push(key.to_owned());
            }
        }
    }
    let writes = changed
        .into_iter()
        .map(|k| {
            let v = stored[&k];
            (k, v)
        })
        .collect();
    (used, writes)
}

/// How long the replay object holds the uses it has answered before it stores them, all together.
/// Storing each batch as it is answered costs a storage commit per batch, and batches are small
/// when an object's clicks are few at a time; held, the uses of every batch answered within this
/// window share one write and one commit. The price, stated in docs/signing.md: a click id answered
/// `fresh` within this window before the object's instance is lost (a crash, a reset, a deploy)
/// is not stored, and a replay of it that reaches the object afterwards is `fresh` again.
pub const STORE_AFTER_MS: u64 = 250;

/// The replay object's answered uses that are not stored yet, by storage key: each with the expiry
/// it is to be stored with. The object answers from these and from what it reads for the rest.
#[derive(Debug, Default)]
pub struct Unstored {
    until: HashMap<String, u64>,
}

impl Unstored {
    /// The keys of `questions` the object must read from storage: those it does not hold.
    pub fn to_read(&self, questions: &[(&str, u64)]) -> Vec<String> {
        questions
            .iter()
            .filter(|(k, _)| !self.until.contains_key(*k))
            .map(|(k, _)| (*k).to_owned())
            .collect()
    }

    /// Answers `questions` in order (`true`: a replay) from `stored`, what storage held for the
    /// keys [`Unstored::to_read`] named, and from the uses held here, which are newer; holds what
    /// changed. Returns the answers, and whether the object is to store what it holds
    /// [`STORE_AFTER_MS`] from now: true when nothing was held before, so one store is scheduled at a
    /// time.
    pub fn answer(
        &mut self,
        questions: &[(&str, u64)],
        mut stored: HashMap<String, u64>,
        now_ms: u64,
    ) -> (Vec<bool>, bool) {
        for (key, _) in questions {
            if let Some(&t) = self.until.get(*key) {
                stored.insert((*key).to_owned(), t);
            }
        }
        let (used, writes) = uses(questions, stored, now_ms);
        let schedule = self.until.is_empty() && !writes.is_empty();
        for (key, t) in writes {
            self.until.insert(key, t);
        }
        (used, schedule)
    }

    /// Everything held, to store now; nothing is held after.
    pub fn take(&mut self) -> HashMap<String, u64> {
        std::mem::take(&mut self.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::home::Space;
    use crate::network::wire::{
        encode_click_id_answers, parse_click_id_answers, ObjectRequest, WireError, METHOD,
    };
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The body the isolate sends for a batch of questions.
    fn body_of(batch: &Questions) -> String {
        let request = ObjectRequest::ClickIds {
            space: Space::Whole,
            uses: batch.uses.clone(),
        };
        request.encode().2
    }

    /// The uses the object reads from a `/replay` body.
    fn read(body: &str) -> Result<Vec<(String, u64)>, WireError> {
        match ObjectRequest::parse(METHOD, "/replay", "", body)? {
            ObjectRequest::ClickIds { uses, .. } => Ok(uses),
            other => panic!("not click ids: {other:?}"),
        }
    }

    fn borrowed(uses: &[(String, u64)]) -> Vec<(&str, u64)> {
        uses.iter().map(|(k, e)| (k.as_str(), *e)).collect()
    }

    const NOW: u64 = 1_800_000_000_000;

    use ReplayAnswer::{Fresh, Replayed, Unavailable};

    fn sent(asked: Asked) -> Questions {
        match asked {
            Asked::Send(batch) => batch,
            other => panic!("expected the click to send, not {other:?}"),
        }
    }

    #[test]
    fn a_lone_question_goes_out_at_once_and_the_object_idles_after() {
        let mut out = Outbox::default();
        let batch = sent(out.ask("replay:net-7:3", 1, "r/a", NOW + 10, NOW));
        assert_eq!(batch.tickets, vec![1]);
        assert_eq!(body_of(&batch), format!("r/a {}", NOW + 10));
        assert_eq!(out.answer(1), None, "no answer before the batch is back");
        out.returned(&batch, &[Fresh]);
        assert_eq!(out.answer(1), Some(Fresh));
        assert_eq!((out.waiting(), out.clicks()), (0, 0), "nothing is kept");
        // Idle again: the next question goes out by itself.
        assert!(matches!(
            out.ask("replay:net-7:3", 2, "r/b", NOW, NOW),
            Asked::Send(_)
        ));
    }

    #[test]
    fn questions_arriving_during_a_round_trip_go_out_together_with_the_first_click_to_look() {
        let mut out = Outbox::default();
        let first = sent(out.ask("o", 1, "r/a", NOW, NOW));
        for t in 2..=5 {
            assert_eq!(out.ask("o", t, "r/x", NOW, NOW), Asked::Wait);
        }
        // Another object is not held up by this one.
        assert!(matches!(out.ask("p", 9, "r/z", NOW, NOW), Asked::Send(_)));
        assert_eq!(out.take_turn("o", NOW), None, "busy while a batch is out");
        out.returned(&first, &[Replayed]);
        assert_eq!(out.answer(1), Some(Replayed));
        assert_eq!(out.answer(3), None);
        let next = out.take_turn("o", NOW + 1).expect("the queue goes out");
        assert_eq!(next.tickets, vec![2, 3, 4, 5]);
        assert_eq!(body_of(&next).lines().count(), 4);
        // One batch out at a time: the other waiting clicks find nothing to send.
        assert_eq!(out.take_turn("o", NOW + 1), None);
        assert_eq!(out.ask("o", 6, "r/y", NOW, NOW + 1), Asked::Wait);
        out.returned(&next, &[Fresh, Fresh, Replayed, Unavailable]);
        assert_eq!(
            [2, 3, 4, 5].map(|t| out.answer(t)),
            [Some(Fresh), Some(Fresh), Some(Replayed), Some(Unavailable)]
        );
        let last = out
            .take_turn("o", NOW + 2)
            .expect("the click that came meanwhile");
        assert_eq!(last.tickets, vec![6]);
        out.returned(&last, &[Fresh]);
        assert_eq!(out.take_turn("o", NOW + 2), None);
    }

    #[test]
    fn a_batch_out_too_long_is_taken_for_lost_and_the_queue_goes_out_without_it() {
        let mut out = Outbox::default();
        let lost = sent(out.ask("o", 1, "r/a", NOW, NOW));
        assert_eq!(
            out.ask("o", 2, "r/b", NOW, NOW + LOST_AFTER_MS - 1),
            Asked::Wait
        );
        let batch = sent(out.ask("o", 3, "r/c", NOW, NOW + LOST_AFTER_MS));
        assert_eq!(batch.tickets, vec![2, 3]);
        // The lost one coming back late does not free the object while the new one is out.
        out.returned(&lost, &[Fresh]);
        assert_eq!(
            out.ask("o", 4, "r/d", NOW, NOW + LOST_AFTER_MS),
            Asked::Wait
        );
    }

    #[test]
    fn a_clicks_wait_counts_from_its_arrival_not_from_its_batchs_send() {
        // Regression: the click that sent a batch waited a full deadline from the send, however
        // long it had queued: with a hanging object, clicks waited 6 to 10 s against 5.
        assert_eq!(wait_left(NOW, NOW), LOST_AFTER_MS);
        assert_eq!(wait_left(NOW, NOW + 3_000), LOST_AFTER_MS - 3_000);
        assert_eq!(wait_left(NOW, NOW + LOST_AFTER_MS), 0);
        assert_eq!(wait_left(NOW, NOW + 60_000), 0, "past it, no wait at all");
        assert_eq!(
            wait_left(u64::MAX - 1, u64::MAX),
            0,
            "no overflow near the end of time"
        );
        // A click queued behind a batch for 3 s, then sending the next, waits 2 s more at most,
        // and the deadline and the rule for giving up agree to the millisecond.
        let mut out = Outbox::default();
        let first = sent(out.ask("o", 1, "r/a", NOW, NOW));
        assert_eq!(out.ask("o", 2, "r/b", NOW, NOW + 10), Asked::Wait);
        out.returned(&first, &[Fresh]);
        let Step::Send(next) = out.next_step("o", NOW + 3_010) else {
            panic!("the queued question goes out with the background that sent the first")
        };
        assert_eq!(next.tickets, vec![2]);
        let left = wait_left(NOW + 10, next.sent_ms);
        assert_eq!(left, 2_000);
        assert!(!lost(NOW + 10, next.sent_ms + left - 1));
        assert!(lost(NOW + 10, next.sent_ms + left));
    }

    #[test]
    fn the_background_that_sent_a_batch_sends_the_waiting_clicks_next_one() {
        // Waiting clicks no longer look again on timers: the sender's background carries the
        // queue, one batch out at a time.
        let mut out = Outbox::default();
        let first = sent(out.ask("o", 1, "r/a", NOW, NOW));
        for t in 2..=4 {
            assert_eq!(out.ask("o", t, "r/x", NOW, NOW), Asked::Wait);
        }
        assert_eq!(
            out.next_step("o", NOW),
            Step::Nothing,
            "busy while a batch is out"
        );
        out.returned(&first, &[Fresh]);
        let Step::Send(next) = out.next_step("o", NOW + 1) else {
            panic!("the queue goes out")
        };
        assert_eq!(next.tickets, vec![2, 3, 4]);
        out.returned(&next, &[Fresh, Replayed, Fresh]);
        assert_eq!(out.next_step("o", NOW + 2), Step::Nothing, "nothing left");
        assert_eq!(out.answer(3), Some(Replayed));
    }

    #[test]
    fn a_wait_is_lost_from_lost_after_ms_on_and_never_by_overflow() {
        assert!(!lost(NOW, NOW + LOST_AFTER_MS - 1));
        assert!(lost(NOW, NOW + LOST_AFTER_MS));
        // A send time near the end of time is not lost at once by the sum wrapping round.
        assert!(!lost(u64::MAX - 1, u64::MAX - 1));
    }

    #[test]
    fn a_click_that_gives_up_leaves_the_queue_and_its_late_answer_is_dropped() {
        let mut out = Outbox::default();
        let first = sent(out.ask("o", 1, "r/a", NOW, NOW));
        out.ask("o", 2, "r/b", NOW, NOW);
        out.ask("o", 3, "r/c", NOW, NOW);
        out.give_up("o", 1);
        out.give_up("o", 2);
        out.returned(&first, &[Fresh]);
        assert_eq!(out.answer(1), None);
        assert_eq!(out.take_turn("o", NOW).map(|b| b.tickets), Some(vec![3]));
        assert_eq!(out.clicks(), 1, "only the click still waiting is held");
    }

    #[test]
    fn a_long_queue_goes_out_in_bounded_batches() {
        let mut out = Outbox::default();
        let first = sent(out.ask("o", 0, "r/a", NOW, NOW));
        for t in 1..=(MAX_BATCH as u64 + 10) {
            out.ask("o", t, "r/a", NOW, NOW);
        }
        out.returned(&first, &[Fresh]);
        let second = out.take_turn("o", NOW).unwrap();
        assert_eq!(second.tickets.len(), MAX_BATCH);
        out.returned(&second, &[Fresh; MAX_BATCH]);
        let third = out.take_turn("o", NOW).unwrap();
        assert_eq!(third.tickets.len(), 10);
        out.returned(&third, &[Fresh; 10]);
        assert_eq!(out.take_turn("o", NOW), None);
    }

    #[test]
    fn the_object_answers_a_batch_in_order_and_a_repeat_is_fresh_once() {
        let mut stored = HashMap::new();
        stored.insert("r/old".to_owned(), NOW + 5);
        stored.insert("r/expired".to_owned(), NOW - 1);
        let body = format!(
            "r/new {}\nr/old {}\nr/new {}\nr/expired {}",
            NOW + 10,
            NOW + 50,
            NOW + 20,
            NOW + 30
        );
        let questions = read(&body).unwrap();
        let (used, mut writes) = uses(&borrowed(&questions), stored, NOW);
        let answers = encode_click_id_answers(&used);
        assert_eq!(answers, "fresh\nreplayed\nreplayed\nfresh");
        writes.sort();
        // Each key once, with the latest expiry any of its uses asked for.
        assert_eq!(
            writes,
            vec![
                ("r/expired".to_owned(), NOW + 30),
                ("r/new".to_owned(), NOW + 20),
                ("r/old".to_owned(), NOW + 50),
            ]
        );
        assert_eq!(
            parse_click_id_answers(&answers, 4).unwrap(),
            vec![
                ReplayAnswer::Fresh,
                ReplayAnswer::Replayed,
                ReplayAnswer::Replayed,
                ReplayAnswer::Fresh
            ]
        );
    }

    #[test]
    fn a_use_that_changes_nothing_is_not_written_again() {
        let mut stored = HashMap::new();
        stored.insert("r/a".to_owned(), NOW + 50);
        let (used, writes) = uses(&[("r/a", NOW + 10)], stored, NOW);
        assert_eq!(encode_click_id_answers(&used), "replayed");
        assert!(writes.is_empty());
    }

    /// The object's storage as a test sees it: what was stored, by key.
    fn read_from(storage: &HashMap<String, u64>, keys: Vec<String>) -> HashMap<String, u64> {
        keys.into_iter()
            .filter_map(|k| Some((k.clone(), *storage.get(&k)?)))
            .collect()
    }

    /// One batch answered by an object holding `held` over `storage`.
    fn answer_batch(
        held: &mut Unstored,
        storage: &HashMap<String, u64>,
        batch: &[(&str, u64)],
        now_ms: u64,
    ) -> (Vec<bool>, bool) {
        let stored = read_from(storage, held.to_read(batch));
        held.answer(batch, stored, now_ms)
    }

    #[test]
    fn the_object_answers_from_the_uses_it_holds_and_stores_them_all_at_once() {
        let mut storage = HashMap::new();
        storage.insert("r/old".to_owned(), NOW + 50);
        let mut held = Unstored::default();
        let first = [("r/a", NOW + 10), ("r/old", NOW + 10)];
        assert_eq!(
            answer_batch(&mut held, &storage, &first, NOW),
            (vec![false, true], true),
            "the first use held schedules the store"
        );
        // Not stored yet, and still a replay: the object answers from what it holds.
        let second = [("r/a", NOW + 90), ("r/b", NOW + 20)];
        assert_eq!(held.to_read(&second), vec!["r/b".to_owned()]);
        assert_eq!(
            answer_batch(&mut held, &storage, &second, NOW + 1),
            (vec![true, false], false),
            "a store is already scheduled"
        );
        let mut stored: Vec<_> = held.take().into_iter().collect();
        stored.sort();
        assert_eq!(
            stored,
            vec![("r/a".to_owned(), NOW + 90), ("r/b".to_owned(), NOW + 20)],
            "each key once, with its latest expiry; the unchanged one is not written"
        );
        storage.extend(stored);
        assert_eq!(
            answer_batch(&mut held, &storage, &[("r/b", NOW + 20)], NOW + 2),
            (vec![true], false),
            "stored, then read back"
        );
        assert!(
            held.take().is_empty(),
            "a replay that changes nothing holds nothing"
        );
        assert_eq!(
            answer_batch(&mut held, &storage, &[("r/c", NOW + 20)], NOW + 3),
            (vec![false], true),
            "once all is stored, the next use held schedules a store again"
        );
    }

    /// What an object's crash lets through: the uses it answered and held, not the stored ones.
    #[test]
    fn a_crash_loses_only_the_uses_answered_since_the_last_store() {
        let mut storage = HashMap::new();
        let mut held = Unstored::default();
        answer_batch(&mut held, &storage, &[("r/stored", NOW + 60_000)], NOW);
        storage.extend(held.take());
        answer_batch(&mut held, &storage, &[("r/held", NOW + 60_000)], NOW + 100);
        // The instance is lost before its store: a new one starts from storage alone.
        drop(held);
        let mut after = Unstored::default();
        let (used, _) = answer_batch(
            &mut after,
            &storage,
            &[("r/stored", NOW + 60_000), ("r/held", NOW + 60_000)],
            NOW + 200,
        );
        assert_eq!(
            used,
            vec![true, false],
            "the stored id stays a replay; the one answered in the window before the crash is \
             fresh once more, and only once"
        );
        let (again, _) = answer_batch(&mut after, &storage, &[("r/held", NOW + 60_000)], NOW + 201);
        assert_eq!(again, vec![true]);
    }

    #[test]
    fn what_the_isolate_sends_is_what_the_object_reads() {
        let mut out = Outbox::default();
        let first = sent(out.ask("o", 1, "r/a", NOW, NOW));
        out.ask("o", 2, "r/b", NOW + 7, NOW);
        out.ask("o", 3, "r/a", NOW + 9, NOW);
        out.returned(&first, &[Fresh]);
        let batch = out.take_turn("o", NOW).unwrap();
        assert_eq!(
            read(&body_of(&batch)).unwrap(),
            vec![("r/b".to_owned(), NOW + 7), ("r/a".to_owned(), NOW + 9)]
        );
    }

    fn who(click_id: &str) -> Detected {
        Detected {
            network: "net-7".into(),
            click_id: click_id.into(),
        }
    }

    fn queued(asked: AskedAfter) -> Step {
        match asked {
            AskedAfter::Queued(step) => step,
            AskedAfter::Replayed => panic!("expected the question to be queued"),
        }
    }

    #[test]
    fn questions_asked_after_the_redirect_wait_for_others_then_go_out_together() {
        let mut out = Outbox::default();
        let first = out.ask_after("o", 1, "r/a", NOW + 60_000, NOW, who("a"));
        assert_eq!(queued(first), Step::WakeIn(AFTER_REDIRECT_BATCH_MS));
        // One timer per object: the second question rides on the first one's.
        assert_eq!(
            queued(out.ask_after("o", 2, "r/b", NOW + 60_000, NOW + 50, who("b"))),
            Step::Nothing
        );
        assert_eq!(out.wake("o", NOW + 150), Step::WakeIn(50), "not due yet");
        let Step::Send(batch) = out.wake("o", NOW + AFTER_REDIRECT_BATCH_MS) else {
            panic!("due: the queue goes out");
        };
        assert_eq!(batch.tickets, vec![1, 2]);
        assert_eq!(
            out.next_step("o", NOW + 300),
            Step::Nothing,
            "nothing queued"
        );
        // The store had seen `b`: the isolate hears whose it was, and keeps nothing.
        assert_eq!(out.returned(&batch, &[Fresh, Replayed]), vec![who("b")]);
        assert_eq!(
            (out.unanswered_after(), out.waiting(), out.clicks()),
            (0, 0, 0)
        );
        assert!(who("b").log_line().contains(r#""event":"replay_detected""#));
    }

    #[test]
    fn a_repeat_in_this_isolate_is_refused_without_asking_until_its_use_expires() {
        let mut out = Outbox::default();
        queued(out.ask_after("o", 1, "r/a", NOW + 1_000, NOW, who("a")));
        assert_eq!(
            out.ask_after("o", 2, "r/a", NOW + 1_000, NOW + 10, who("a")),
            AskedAfter::Replayed
        );
        assert_eq!(out.waiting(), 1, "the repeat is not asked");
        queued(out.ask_after("o", 3, "r/a", NOW + 9_000, NOW + 1_001, who("a")));
    }

    #[test]
    fn a_waiting_click_takes_the_after_redirect_questions_with_it() {
        let mut out = Outbox::default();
        queued(out.ask_after("o", 1, "r/a", NOW + 60_000, NOW, who("a")));
        let batch = sent(out.ask("o", 2, "r/b", NOW + 60_000, NOW + 5));
        assert_eq!(batch.tickets, vec![1, 2]);
        assert_eq!(out.returned(&batch, &[Replayed, Fresh]), vec![who("a")]);
        assert_eq!(out.answer(2), Some(Fresh));
        // The timer armed for the first question finds nothing to do.
        assert_eq!(out.wake("o", NOW + AFTER_REDIRECT_BATCH_MS), Step::Nothing);
    }

    #[test]
    fn a_full_queue_goes_out_before_its_time_and_one_batch_is_out_at_a_time() {
        let mut out = Outbox::default();
        let mut last = Step::Nothing;
        for t in 0..MAX_BATCH as u64 {
            last = queued(out.ask_after("o", t, &format!("r/{t}"), NOW + 60_000, NOW, who("x")));
        }
        let Step::Send(full) = last else {
            panic!("a full queue goes out at once");
        };
        assert_eq!(full.tickets.len(), MAX_BATCH);
        // Busy: a question asked now is not sent beside the batch out. The timer the first
        // question armed is still to go off; when it does, it looks again later.
        let t = MAX_BATCH as u64;
        let late = NOW + AFTER_REDIRECT_BATCH_MS;
        assert_eq!(
            queued(out.ask_after("o", t, "r/next", NOW + 60_000, late, who("n"))),
            Step::Nothing
        );
        assert_eq!(out.wake("o", late), Step::WakeIn(AFTER_REDIRECT_BATCH_MS));
        out.returned(&full, &[Fresh; MAX_BATCH]);
        assert_eq!(
            out.next_step("o", late),
            Step::Nothing,
            "back, but the question is young"
        );
        let due = late + AFTER_REDIRECT_BATCH_MS;
        assert!(matches!(out.next_step("o", due), Step::Send(b) if b.tickets == vec![t]));
    }

    #[test]
    fn the_after_redirect_questions_of_a_lost_batch_are_not_kept() {
        let mut out = Outbox::default();
        for t in 0..MAX_BATCH as u64 {
            out.ask_after("o", t, &format!("r/{t}"), NOW + 60_000, NOW, who("x"));
        }
        assert_eq!(out.unanswered_after(), MAX_BATCH);
        queued(out.ask_after("o", 999, "r/late", NOW + 60_000, NOW + 1, who("late")));
        let Step::Send(next) = out.wake("o", NOW + LOST_AFTER_MS) else {
            panic!("the batch out is taken for lost and the queue goes out");
        };
        assert_eq!(next.tickets, vec![999]);
        assert_eq!(
            out.unanswered_after(),
            1,
            "only the question out now is kept"
        );
    }

    #[test]
    fn an_id_the_store_answered_for_is_known_here_and_one_it_could_not_is_not() {
        let mut out = Outbox::default();
        let batch = sent(out.ask("o", 1, "r/a", NOW + 1_000, NOW));
        assert_eq!(
            out.ask("o", 2, "r/a", NOW + 1_000, NOW),
            Asked::Wait,
            "not before the answer"
        );
        out.ask("o", 3, "r/b", NOW + 1_000, NOW);
        out.returned(&batch, &[Fresh]);
        assert_eq!(
            out.ask("o", 4, "r/a", NOW + 1_000, NOW + 1_000),
            Asked::Replayed
        );
        assert_eq!(out.waiting(), 2, "the repeat is not queued");
        let next = out.take_turn("o", NOW).unwrap();
        out.returned(&next, &[Replayed, Unavailable]);
        assert_eq!(out.answer(2), Some(Replayed));
        assert!(
            matches!(out.ask("o", 5, "r/b", NOW + 1_000, NOW + 1), Asked::Send(_)),
            "the store did not answer: ask again"
        );
        assert_eq!(
            out.ask("o", 6, "r/a", NOW + 9_000, NOW + 1_001),
            Asked::Wait,
            "its use has expired"
        );
    }

    #[test]
    fn the_isolate_remembers_a_bounded_number_of_ids() {
        let mut recent = Recent::default();
        for n in 0..=REMEMBERED {
            recent.remember(&format!("r/{n}"), NOW + 10);
        }
        assert_eq!(recent.until.len(), REMEMBERED);
        assert!(!recent.holds("r/0", NOW), "the oldest is forgotten first");
        assert!(recent.holds(&format!("r/{REMEMBERED}"), NOW));
        recent.remember("r/1", NOW + 99);
        assert!(
            recent.holds("r/1", NOW + 99),
            "a later use keeps the later expiry"
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // However questions (waited for or asked after the redirect), returns, looks,
            // background wakes and give-ups interleave, each question is sent once, in the order
            // asked, an object never has two batches out, every click that kept waiting is
            // answered, and nothing is kept at the end.
            #[test]
            fn every_question_is_sent_once_in_order_and_answered(
                steps in proptest::collection::vec((0u8..3, 0u8..6), 1..300),
            ) {
                let mut out = Outbox::default();
                let mut in_flight: [Option<Questions>; 3] = [None, None, None];
                let mut sent: Vec<Vec<Ticket>> = vec![Vec::new(); 3];
                let mut asked: Vec<(usize, Ticket)> = Vec::new();
                let mut asked_after: Vec<Ticket> = Vec::new();
                let mut gave_up: Vec<Ticket> = Vec::new();
                let mut next_ticket = 0;
                let mut now = NOW;
                let send = |i: usize, batch: Questions, in_flight: &mut [Option<Questions>; 3], sent: &mut Vec<Vec<Ticket>>| {
                    sent[i].extend(batch.tickets.iter().copied());
                    in_flight[i] = Some(batch);
                };
                for (o, action) in steps {
                    let name = format!("o{o}");
                    let i = o as usize;
                    let step = match action {
                        0 => {
                            next_ticket += 1;
                            asked.push((i, next_ticket));
                            // Each id once: a repeat is answered at once (tested above).
                            let key = format!("r/{next_ticket}");
                            match out.ask(&name, next_ticket, &key, NOW, now) {
                                Asked::Send(b) => Step::Send(b),
                                Asked::Wait => Step::Nothing,
                                Asked::Replayed => {
                                    return Err(TestCaseError::fail("a new id refused"))
                                }
                            }
                        }
                        1 => {
                            if let Some(b) = in_flight[i].take() {
                                out.returned(&b, &vec![ReplayAnswer::Fresh; b.tickets.len()]);
                            }
                            out.next_step(&name, now)
                        }
                        2 => out.take_turn(&name, now).map_or(Step::Nothing, Step::Send),
                        3 => {
                            let waiting = asked.iter().rev().find(|(j, t)| {
                                *j == i && !gave_up.contains(t) && out.answers.get(t) == Some(&None)
                            });
                            if let Some(&(_, t)) = waiting {
                                out.give_up(&name, t);
                                gave_up.push(t);
                            }
                            Step::Nothing
                        }
                        4 => {
                            next_ticket += 1;
                            asked_after.push(next_ticket);
                            let key = format!("r/{next_ticket}");
                            match out.ask_after(&name, next_ticket, &key, NOW + 60_000, now, Detected { network: "n".into(), click_id: key.clone() }) {
                                AskedAfter::Queued(step) => step,
                                AskedAfter::Replayed => return Err(TestCaseError::fail("a new id refused")),
                            }
                        }
                        _ => {
                            now += 10;
                            out.wake(&name, now)
                        }
                    };
                    if let Step::Send(b) = step {
                        prop_assert!(in_flight[i].is_none(), "two batches out");
                        send(i, b, &mut in_flight, &mut sent);
                    }
                }
                // Drain: return what is out, let waiting clicks take their turns, and let the
                // background send what is left once it is due.
                for (i, name) in ["o0", "o1", "o2"].iter().enumerate() {
                    loop {
                        if let Some(b) = in_flight[i].take() {
                            out.returned(&b, &vec![ReplayAnswer::Fresh; b.tickets.len()]);
                        }
                        // Only a click still waiting takes a turn; the rest is the background's.
                        let waiting = asked.iter().any(|(j, t)| {
                            *j == i && !gave_up.contains(t) && out.answers.get(t) == Some(&None)
                        });
                        let turn = if waiting { out.take_turn(name, now) } else { None };
                        let next = turn.or_else(|| {
                            match out.wake(name, now + AFTER_REDIRECT_BATCH_MS) {
                                Step::Send(b) => Some(b),
                                _ => None,
                            }
                        });
                        match next {
                            Some(b) => send(i, b, &mut in_flight, &mut sent),
                            None => break,
                        }
                    }
                }
                for s in &sent {
                    prop_assert!(s.windows(2).all(|w| w[0] < w[1]), "out of order");
                }
                let mut all: Vec<Ticket> = sent.concat();
                all.sort_unstable();
                let before = all.len();
                all.dedup();
                prop_assert_eq!(before, all.len(), "a question sent twice");
                for (_, t) in &asked {
                    if gave_up.contains(t) {
                        prop_assert_eq!(out.answer(*t), None);
                    } else {
                        prop_assert!(all.contains(t), "a question never sent");
                        prop_assert_eq!(out.answer(*t), Some(ReplayAnswer::Fresh));
                    }
                }
                for t in &asked_after {
                    prop_assert!(all.contains(t), "an after-redirect question never sent");
                }
                prop_assert_eq!(out.clicks(), 0, "nothing is kept after every click is done");
                prop_assert_eq!(out.unanswered_after(), 0);
                prop_assert_eq!(out.waiting(), 0);
            }
        }
    }
}
