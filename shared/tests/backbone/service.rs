//! The backbone wired through `ServiceBuilder`, as a service uses it: topics created at start-up,
//! readiness checking the broker, relay and consumer running beside HTTP and stopping with it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use shared::config::{CommonConfig, Profile, Secret};
use shared::events::{topics, EventMeta, OrderConfirmed, SkuQuantity};
use shared::outbox::RelayConfig;
use shared::test_utils::TestDb;
use shared::ServiceBuilder;
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{brokers, Recorder};

async fn place(State(db): State<PgPool>) -> String {
    let order = Uuid::now_v7();
    let mut tx = db.begin().await.unwrap();
    let event = OrderConfirmed {
        order_id: order,
        buyer_id: Uuid::nil(),
        items: vec![SkuQuantity {
            sku_id: Uuid::nil(),
            quantity: 1,
        }],
    };
    let env = shared::outbox::enqueue(&mut tx, "svc", &event, &EventMeta::from_request())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    env.event_id.to_string()
}

#[tokio::test]
async fn a_service_publishes_from_its_outbox_consumes_with_its_inbox_and_stops_cleanly() {
    static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
    let migrator = shared::db::service_migrator(&MIGRATOR).unwrap();
    let db = TestDb::create("svc", &migrator).await.unwrap();
    let mut config = CommonConfig::defaults(Profile::Test, 0, "svc");
    config.database_url = Secret::new(db.url.clone());
    config.kafka_brokers = brokers();
    config.kafka_topic_partitions = 3;
    config.shutdown_grace_secs = 10;
    let mut infra = ServiceBuilder::new("svc", &config)
        .postgres_with_events(&MIGRATOR)
        .kafka()
        .connect()
        .await
        .unwrap();
    let pool = infra.db().unwrap();
    sqlx::query("CREATE TABLE effects (seq bigserial PRIMARY KEY, event_id uuid NOT NULL, aggregate_id text NOT NULL, consumer text NOT NULL, trace_id text)")
        .execute(&pool)
        .await
        .unwrap();
    infra
        .outbox_relay(RelayConfig {
            poll_interval: Duration::from_millis(100),
            ..RelayConfig::default()
        })
        .unwrap();
    let group = format!("svc-{}", Uuid::now_v7());
    infra
        .consume(&group, &[topics::ORDERS], Recorder::new("svc") as Arc<_>)
        .unwrap();
    let service = infra
        .serve(
            Router::new()
                .route("/place", post(place))
                .with_state(pool.clone()),
            utoipa::openapi::OpenApi::default(),
        )
        .unwrap();
    let base = format!("http://{}", service.addr());
    let stop = service.shutdown_handle();
    let running = tokio::spawn(service.run_until_stopped());

    let client = reqwest::Client::new();
    let ready: serde_json::Value = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["kafka"], "ok", "{ready}");
    assert_eq!(ready["checks"]["postgres"], "ok", "{ready}");
    let event_id: Uuid = client
        .post(format!("{base}/place"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    let mut handled = false;
    for _ in 0..300 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM effects WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        if n == 1 {
            handled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(handled, "the event made the whole trip");
    // The effect and its inbox row committed together: one row, for this service's group.
    let inbox: Vec<(String, String)> =
        sqlx::query_as("SELECT consumer_group, event_type FROM inbox WHERE event_id = $1")
            .bind(event_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        inbox,
        vec![(group.clone(), "OrderConfirmed".to_owned())],
        "one inbox row for the service's consumer group"
    );
    let correlation: String =
        sqlx::query_scalar("SELECT envelope->>'correlation_id' FROM outbox WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(correlation, "req-42", "the request id correlates the event");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "outbox_published_total",
        "outbox_backlog",
        "events_consumed_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    stop.shutdown();
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("relay, consumer and server stop within the grace period")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_the_broker_is_down_while_it_is_and_ok_again_once_it_is_back() {
    let mut broker = crate::harness::OwnBroker::start().await;
    let mut config = CommonConfig::defaults(Profile::Test, 0, "svc");
    config.kafka_brokers = broker.brokers();
    config.kafka_topic_partitions = 1;
    let infra = ServiceBuilder::new("svc", &config)
        .kafka()
        .connect()
        .await
        .unwrap();
    let service = infra
        .serve(Router::new(), utoipa::openapi::OpenApi::default())
        .unwrap();
    let url = format!("http://{}/health/ready", service.addr());
    let stop = service.shutdown_handle();
    let running = tokio::spawn(service.run_until_stopped());
    let client = reqwest::Client::new();
    let ready = |want: u16| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            shared::test_utils::eventually(
                &format!("readiness {want}"),
                Duration::from_secs(30),
                || {
                    let (client, url) = (client.clone(), url.clone());
                    async move {
                        let resp = client.get(&url).send().await.ok()?;
                        let status = resp.status().as_u16();
                        let body: serde_json::Value = resp.json().await.ok()?;
                        (status == want).then_some(body)
                    }
                },
            )
            .await
        }
    };
    let up = ready(200).await;
    assert_eq!(up["checks"]["kafka"], "ok", "{up}");
    broker.stop();
    let down = ready(503).await;
    assert_ne!(down["checks"]["kafka"], "ok", "{down}");
    broker.restart().await;
    let back = ready(200).await;
    assert_eq!(back["checks"]["kafka"], "ok", "{back}");
    stop.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(15), running).await;
}
