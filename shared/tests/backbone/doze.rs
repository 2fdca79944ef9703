//! A dozing consumer (ADR 014): idle, it pauses its partitions and sends no fetches; the next
//! events wake it and are handled once each, in order, also after a rebalance during the doze.

use std::collections::HashMap;
use std::time::Duration;

use shared::consumer::{Doze, EventConsumer};
use uuid::Uuid;

use crate::harness::*;

const WITHIN: Duration = Duration::from_secs(30);

fn dozing_consumer(
    h: &Harness,
    brokers: &str,
    group: &str,
    rec: std::sync::Arc<Recorder>,
) -> EventConsumer {
    dozing_consumer_with(h, brokers, group, rec, Duration::from_secs(3600))
}

/// A dozing consumer whose probes slow down after `deep_after` of dozing.
fn dozing_consumer_with(
    h: &Harness,
    brokers: &str,
    group: &str,
    rec: std::sync::Arc<Recorder>,
    deep_after: Duration,
) -> EventConsumer {
    h.consumer_with(brokers, group, rec, |config| {
        config.doze = Some(Doze {
            after: Duration::from_millis(500),
            first_probe: Duration::from_millis(50),
            max_probe: Duration::from_millis(300),
            deep_after,
        });
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_consumer_stops_fetching_and_the_next_events_wake_it_and_arrive_in_order() {
    let h = Harness::new(3).await;
    let dozer = dozing_consumer(&h, &brokers(), &new_group(), Recorder::new("dozer"));
    // The same consumer without dozing, beside it: what fetching all the time looks like.
    let awake = h.consumer(&brokers(), &new_group(), Recorder::new("awake"));
    let (dozing, fetching) = (dozer.health(), awake.health());
    let consumers = [Running::consumer(dozer), Running::consumer(awake)];
    let relay = Running::relay(h.relay(&brokers()));
    let orders: Vec<Uuid> = (0..12).map(|_| Uuid::now_v7()).collect();
    let mut written: HashMap<String, Vec<Uuid>> = HashMap::new();
    let names = ["dozer", "awake"];
    write_round_and_wait(&h, &orders, &names, &mut written, "before dozing", WITHIN).await;

    wait_until("the idle consumer dozes", WITHIN, || dozing.is_dozing()).await;
    assert!(
        !fetching.is_dozing(),
        "a consumer without doze settings never dozes"
    );
    // Fetch counts come from librdkafka's statistics, one report a second per client: let two
    // reports of the dozing client go by (the first may still count fetches from before the
    // pause), then compare both clients over its next three reports.
    let reports = |n: u64| {
        let (dozing, from) = (dozing.clone(), dozing.stats_reports());
        move || dozing.stats_reports() >= from + n
    };
    wait_until("two statistics reports", WITHIN, reports(2)).await;
    let (d0, a0) = (dozing.fetch_requests(), fetching.fetch_requests());
    wait_until("three more statistics reports", WITHIN, reports(3)).await;
    let (d1, a1) = (dozing.fetch_requests(), fetching.fetch_requests());
    assert!(dozing.is_dozing(), "nothing was written: still dozing");
    assert!(
        a1 - a0 >= 50,
        "the consumer that does not doze kept fetching: {} fetches over the window",
        a1 - a0
    );
    assert!(
        d1 - d0 <= 2,
        "the dozing consumer sent {} fetches over three reports (the other sent {})",
        d1 - d0,
        a1 - a0
    );

    // Several events per order while it dozes (probing every 300 ms by now): all handled, each
    // once, per order in the written order.
    for round in ["woken", "woken again"] {
        for _ in 0..2 {
            for o in &orders {
                let e = h.write(*o).await;
                written.entry(o.to_string()).or_default().push(e.event_id);
            }
        }
        write_round_and_wait(&h, &orders, &names, &mut written, round, WITHIN).await;
        wait_until("dozing again", WITHIN, || dozing.is_dozing()).await;
    }
    relay.stop().await;
    for c in consumers {
        c.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_while_the_group_dozes_takes_its_share_and_nothing_is_lost_or_reordered() {
    // Its own broker, as for the other group test: the shared one's coordinator serves every
    // other test's groups (ADR 003).
    let broker = OwnBroker::start().await;
    let h = Harness::with_brokers(&broker.brokers(), 6).await;
    let group = new_group();
    let first = dozing_consumer(&h, &broker.brokers(), &group, Recorder::new("first"));
    let first_health = first.health();
    let mut running = vec![Running::consumer(first)];
    let relay = Running::relay(h.relay(&broker.brokers()));
    let orders: Vec<Uuid> = (0..24).map(|_| Uuid::now_v7()).collect();
    let mut per_order: HashMap<String, Vec<Uuid>> = HashMap::new();
    for o in &orders {
        let e = h.write(*o).await;
        per_order.entry(o.to_string()).or_default().push(e.event_id);
    }
    let effects = h.wait_for_effects(orders.len(), WITHIN).await;
    assert_eq!(effects.len(), orders.len());
    wait_until("the lone member dozes", WITHIN, || first_health.is_dozing()).await;

    let second = dozing_consumer(&h, &broker.brokers(), &group, Recorder::new("second"));
    let second_health = second.health();
    running.push(Running::consumer(second));
    wait_until("both members hold partitions", WITHIN, || {
        first_health.assigned_partitions() > 0
            && second_health.assigned_partitions() > 0
            && first_health.assigned_partitions() + second_health.assigned_partitions() == 6
    })
    .await;
    wait_until("both members doze", WITHIN, || {
        first_health.is_dozing() && second_health.is_dozing()
    })
    .await;

    for _ in 0..3 {
        for o in &orders {
            let e = h.write(*o).await;
            per_order.entry(o.to_string()).or_default().push(e.event_id);
        }
    }
    let total = orders.len() * 4;
    let effects = h.wait_for_effects(total, WITHIN).await;
    relay.stop().await;
    for c in running {
        c.stop().await;
    }
    assert_eq!(effects.len(), total, "every event handled exactly once");
    let mut seen: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (event, order, _) in &effects {
        seen.entry(order.clone()).or_default().push(*event);
    }
    assert_eq!(seen, per_order, "per order, in the written order");
    let by: std::collections::HashSet<&str> = effects[orders.len()..]
        .iter()
        .map(|e| e.2.as_str())
        .collect();
    assert!(
        by.contains("first") && by.contains("second"),
        "both members handled events after the rebalance: {by:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_event_after_a_quiet_spell_wakes_the_consumer_whichever_partition_it_lands_on() {
    // Six partitions, most of which the consumer has never read from: the probe must see a
    // record on any of them, read or not, committed or not.
    let h = Harness::new(6).await;
    let consumer = dozing_consumer(&h, &brokers(), &new_group(), Recorder::new("dozer"));
    let dozing = consumer.health();
    let running = Running::consumer(consumer);
    let relay = Running::relay(h.relay(&brokers()));
    for round in 1..=10 {
        wait_until("dozing", WITHIN, || dozing.is_dozing()).await;
        // A new order each time: its key lands on any of the six partitions.
        let event = h.write(Uuid::now_v7()).await;
        let effects = h.wait_for_effects(round, WITHIN).await;
        assert_eq!(
            effects.last().map(|e| e.0),
            Some(event.event_id),
            "round {round}: the event written while dozing was handled"
        );
        assert_eq!(effects.len(), round, "each once");
    }
    relay.stop().await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_doze_probes_half_as_often_and_an_event_then_still_wakes_it() {
    let h = Harness::new(3).await;
    let consumer = dozing_consumer_with(
        &h,
        &brokers(),
        &new_group(),
        Recorder::new("dozer"),
        Duration::from_secs(2),
    );
    let dozing = consumer.health();
    let running = Running::consumer(consumer);
    let relay = Running::relay(h.relay(&brokers()));
    for round in 1..=2 {
        let probe = || dozing.probe_interval();
        wait_until("dozing at the short probe cap", WITHIN, || {
            probe() == Some(Duration::from_millis(300))
        })
        .await;
        wait_until("dozing deeply, probes twice as far apart", WITHIN, || {
            probe() == Some(Duration::from_millis(600))
        })
        .await;
        let event = h.write(Uuid::now_v7()).await;
        let effects = h.wait_for_effects(round, WITHIN).await;
        assert_eq!(
            effects.last().map(|e| e.0),
            Some(event.event_id),
            "round {round}: the event written during the deep doze was handled"
        );
        assert_eq!(effects.len(), round, "each once");
        // Woken, it dozes again from the short probes (the second round waits for 300 ms first).
    }
    relay.stop().await;
    running.stop().await;
}
