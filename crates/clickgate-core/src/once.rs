//! Click ids asked of their replay object in batches.
//!
//! A signed click that carries its network's click id waits for the replay object's answer
//! (`crate::signing`). One request per click would put a Durable Object round trip, a storage read
//! and a storage write on every such click, and an object serves about a thousand requests a second.
//! So the isolate keeps at most one request out per replay object: a click whose object is busy
//! joins the queue, and the queue goes out as one batch when the request out comes back. Under no
//! load a click goes alone and waits no longer than before; under load, each round trip carries
//! every click that arrived during the previous one. The object answers a batch with one storage
//! read and one write, in order, so a click id twice in one batch is fresh once.
//!
//! The wire form is one question per line, `r/<key> <expires ms>`, and one answer per line,
//! `fresh` or `replayed`, in the same order.

use std::collections::HashMap;

use crate::signing::{replay_step, ReplayAnswer};

/// A batch carries at most this many questions; a longer queue goes out in the next round.
pub const MAX_BATCH: usize = 128;

/// Names a waiting click in this isolate.
pub type Ticket = u64;

/// One request to a replay object: whose questions it carries, in order, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub object: String,
    pub tickets: Vec<Ticket>,
    pub body: String,
}

/// What a click does after asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Nothing was out for the object: send this batch (it holds the click's own question).
    Send(Batch),
    /// A request is out for the object: wait for the batch that carries this question.
    Wait,
}

/// The isolate's questions, per replay object.
#[derive(Debug, Default)]
pub struct Outbox {
    lanes: HashMap<String, Lane>,
}

#[derive(Debug, Default)]
struct Lane {
    /// When the batch out was sent; `None` when nothing is out.
    sent_ms: Option<u64>,
    waiting: Vec<(Ticket, String)>,
}

/// A batch out this long is taken for lost (its click's request was cancelled mid-flight): the
/// next question goes out without it, so one lost request cannot hold an object's queue for good.
/// Clicks wait at most this long for an answer too (the edge's timeout), then the replay store
/// counts as unavailable for them.
pub const LOST_AFTER_MS: u64 = 5_000;

impl Outbox {
    pub fn ask(
        &mut self,
        object: &str,
        ticket: Ticket,
        key: &str,
        expires_ms: u64,
        now_ms: u64,
    ) -> Asked {
        let lane = self.lanes.entry(object.to_owned()).or_default();
        lane.waiting.push((ticket, format!("{key} {expires_ms}")));
        if lane
            .sent_ms
            .is_some_and(|t| now_ms < t.saturating_add(LOST_AFTER_MS))
        {
            return Asked::Wait;
        }
        Asked::Send(take(object, lane, now_ms))
    }

    /// The request out for `object` came back (answered or not): the next batch to send, made of
    /// the questions that arrived meanwhile, or `None` and the object is idle again.
    pub fn returned(&mut self, object: &str, now_ms: u64) -> Option<Batch> {
        let lane = self.lanes.get_mut(object)?;
        if lane.waiting.is_empty() {
            self.lanes.remove(object);
            return None;
        }
        Some(take(object, lane, now_ms))
    }

    /// Questions waiting (not yet sent), over all objects.
    pub fn waiting(&self) -> usize {
        self.lanes.values().map(|l| l.waiting.len()).sum()
    }
}

fn take(object: &str, lane: &mut Lane, now_ms: u64) -> Batch {
    lane.sent_ms = Some(now_ms);
    let n = lane.waiting.len().min(MAX_BATCH);
    let (tickets, lines): (Vec<_>, Vec<_>) = lane.waiting.drain(..n).unzip();
    Batch {
        object: object.to_owned(),
        tickets,
        body: lines.join("\n"),
    }
}

/// The object's answer to a batch of `n` questions, in order. A short, long or garbled answer is a
/// fault for the whole batch: no click is told it is fresh on a guess.
pub fn parse_answers(text: &str, n: usize) -> Result<Vec<ReplayAnswer>, String> {
    let answers = text
        .lines()
        .map(|line| match line {
            "fresh" => Ok(ReplayAnswer::Fresh),
            "replayed" => Ok(ReplayAnswer::Replayed),
            other => Err(format!("unexpected answer `{other}`")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if answers.len() != n {
        return Err(format!("{} answers for {n} questions", answers.len()));
    }
    Ok(answers)
}

/// The object's side: parses a batch's body into `(key, expires_ms)` questions. The one-question
/// form of earlier versions, `r/<key>\n<expires ms>`, is read too: while a deploy rolls out, old
/// isolates still send it, and the one-line answer is the same.
pub fn parse_questions(body: &str) -> Result<Vec<(&str, u64)>, String> {
    if let Some((key, Ok(expires_ms))) = body
        .split_once('\n')
        .filter(|(k, _)| k.starts_with("r/") && !k.contains(' '))
        .map(|(k, e)| (k, e.parse::<u64>()))
    {
        return Ok(vec![(key, expires_ms)]);
    }
    let questions = body
        .lines()
        .map(|line| {
            line.split_once(' ')
                .filter(|(k, _)| k.starts_with("r/"))
                .and_then(|(k, e)| Some((k, e.parse::<u64>().ok()?)))
                .ok_or_else(|| format!("expected `r/<key> <expires ms>`, got `{line}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if questions.is_empty() || questions.len() > MAX_BATCH {
        return Err(format!(
            "a batch holds 1 to {MAX_BATCH} questions, not {}",
            questions.len()
        ));
    }
    Ok(questions)
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

/// A batch's answer body: `fresh` or `replayed` per question, in order.
pub fn answer_body(used: &[bool]) -> String {
    let lines: Vec<&str> = used
        .iter()
        .map(|&u| if u { "replayed" } else { "fresh" })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_lone_question_goes_out_at_once_and_the_object_idles_after() {
        let mut out = Outbox::default();
        let Asked::Send(batch) = out.ask("replay:net-7:3", 1, "r/a", NOW + 10, NOW) else {
            panic!("nothing was out, so the click sends");
        };
        assert_eq!(batch.tickets, vec![1]);
        assert_eq!(batch.body, format!("r/a {}", NOW + 10));
        assert_eq!(out.returned("replay:net-7:3", NOW), None);
        assert_eq!(out.waiting(), 0);
        // Idle again: the next question goes out by itself.
        assert!(matches!(
            out.ask("replay:net-7:3", 2, "r/b", NOW, NOW),
            Asked::Send(_)
        ));
    }

    #[test]
    fn questions_arriving_during_a_round_trip_go_out_together_next() {
        let mut out = Outbox::default();
        assert!(matches!(out.ask("o", 1, "r/a", NOW, NOW), Asked::Send(_)));
        for t in 2..=5 {
            assert_eq!(out.ask("o", t, "r/x", NOW, NOW), Asked::Wait);
        }
        // Another object is not held up by this one.
        assert!(matches!(out.ask("p", 9, "r/z", NOW, NOW), Asked::Send(_)));
        assert_eq!(out.waiting(), 4);
        let next = out.returned("o", NOW).expect("the queue goes out");
        assert_eq!(next.tickets, vec![2, 3, 4, 5]);
        assert_eq!(next.body.lines().count(), 4);
        // Still busy while that batch is out.
        assert_eq!(out.ask("o", 6, "r/y", NOW, NOW), Asked::Wait);
        assert_eq!(out.returned("o", NOW).map(|b| b.tickets), Some(vec![6]));
        assert_eq!(out.returned("o", NOW), None);
    }

    #[test]
    fn a_batch_out_too_long_is_taken_for_lost_and_the_queue_goes_out_without_it() {
        let mut out = Outbox::default();
        assert!(matches!(out.ask("o", 1, "r/a", NOW, NOW), Asked::Send(_)));
        assert_eq!(
            out.ask("o", 2, "r/b", NOW, NOW + LOST_AFTER_MS - 1),
            Asked::Wait
        );
        let Asked::Send(batch) = out.ask("o", 3, "r/c", NOW, NOW + LOST_AFTER_MS) else {
            panic!("the lost batch must not hold the queue");
        };
        assert_eq!(batch.tickets, vec![2, 3]);
    }

    #[test]
    fn a_long_queue_goes_out_in_bounded_batches() {
        let mut out = Outbox::default();
        assert!(matches!(out.ask("o", 0, "r/a", NOW, NOW), Asked::Send(_)));
        for t in 1..=(MAX_BATCH as u64 + 10) {
            out.ask("o", t, "r/a", NOW, NOW);
        }
        assert_eq!(
            out.returned("o", NOW).map(|b| b.tickets.len()),
            Some(MAX_BATCH)
        );
        assert_eq!(out.returned("o", NOW).map(|b| b.tickets.len()), Some(10));
        assert_eq!(out.returned("o", NOW), None);
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
        let questions = parse_questions(&body).unwrap();
        let (used, mut writes) = uses(&questions, stored, NOW);
        let answers = answer_body(&used);
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
            parse_answers(&answers, 4).unwrap(),
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
        assert_eq!(answer_body(&used), "replayed");
        assert!(writes.is_empty());
    }

    #[test]
    fn bad_batches_and_bad_answers_are_refused() {
        assert!(parse_questions("").is_err());
        assert!(parse_questions("r/a").is_err());
        assert!(parse_questions("x/a 12").is_err());
        assert!(parse_questions("r/a soon").is_err());
        let too_many = vec!["r/a 1"; MAX_BATCH + 1].join("\n");
        assert!(parse_questions(&too_many).is_err());
        assert!(parse_answers("fresh", 2).is_err());
        assert!(parse_answers("fresh\nmaybe", 2).is_err());
        assert!(parse_answers("fresh\nfresh\nfresh", 2).is_err());
    }

    #[test]
    fn the_one_question_form_of_earlier_isolates_is_still_answered() {
        let body = format!("r/a\n{}", NOW + 3);
        let questions = parse_questions(&body).unwrap();
        assert_eq!(questions, vec![("r/a", NOW + 3)]);
        assert_eq!(
            answer_body(&uses(&questions, HashMap::new(), NOW).0),
            "fresh"
        );
    }

    #[test]
    fn what_the_isolate_sends_is_what_the_object_reads() {
        let mut out = Outbox::default();
        out.ask("o", 1, "r/a", NOW, NOW);
        out.ask("o", 2, "r/b", NOW + 7, NOW);
        out.ask("o", 3, "r/a", NOW + 9, NOW);
        let batch = out.returned("o", NOW).unwrap();
        assert_eq!(
            parse_questions(&batch.body).unwrap(),
            vec![("r/b", NOW + 7), ("r/a", NOW + 9)]
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // However questions interleave with returns, each is sent exactly once, in the
            // order asked, and an object is never sent two batches at once.
            #[test]
            fn every_question_is_sent_once_in_order(
                steps in proptest::collection::vec((0u8..3, any::<bool>()), 1..300),
            ) {
                let mut out = Outbox::default();
                let mut busy = [false; 3];
                let mut sent: Vec<Vec<Ticket>> = vec![Vec::new(); 3];
                let mut next_ticket = 0;
                for (o, is_return) in steps {
                    let name = format!("o{o}");
                    let i = o as usize;
                    if is_return {
                        if !busy[i] { continue; }
                        match out.returned(&name, NOW) {
                            Some(b) => sent[i].extend(b.tickets),
                            None => busy[i] = false,
                        }
                    } else {
                        next_ticket += 1;
                        match out.ask(&name, next_ticket, "r/k", NOW, NOW) {
                            Asked::Send(b) => {
                                prop_assert!(!busy[i], "two batches out for one object");
                                busy[i] = true;
                                sent[i].extend(b.tickets);
                            }
                            Asked::Wait => prop_assert!(busy[i]),
                        }
                    }
                }
                for (i, name) in ["o0", "o1", "o2"].iter().enumerate() {
                    while let Some(b) = out.returned(name, NOW) {
                        sent[i].extend(b.tickets);
                    }
                }
                let mut all: Vec<Ticket> = sent.concat();
                all.sort_unstable();
                prop_assert_eq!(all, (1..=next_ticket).collect::<Vec<_>>());
                for s in &sent {
                    prop_assert!(s.windows(2).all(|w| w[0] < w[1]));
                }
            }

            #[test]
            fn question_parsing_never_panics(body in ".{0,200}") {
                let _ = parse_questions(&body);
                let _ = parse_answers(&body, 3);
            }
        }
    }
}
