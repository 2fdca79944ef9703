//! Builds the payment service from its config: database (with the event tables), broker, the
//! outbox relay, the consumer of `orders.events`, and the gateway worker. `main` and the tests both
//! go through `Application::build`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::events::topics;
use shared::outbox::RelayConfig;
use shared::server::ShutdownHandle;
use shared::{RunningService, ServiceBuilder};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::PaymentConfig;
use crate::gateway::{MockGateway, PaymentGateway};
use crate::saga::PaymentHandler;
use crate::worker::Worker;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<PaymentConfig>,
    pub worker: Worker,
}

pub struct Application {
    service: RunningService,
    pub state: AppState,
}

impl Application {
    pub async fn build(config: PaymentConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let mut infra = ServiceBuilder::new("payment", &config.common)
            .postgres_with_events(&crate::MIGRATOR)
            .kafka()
            .connect()
            .await?;
        let db = infra.db()?;
        let config = Arc::new(config);
        let gateway: Arc<dyn PaymentGateway> = Arc::new(MockGateway::new(
            db.clone(),
            config.mock_timeout_failures,
            Duration::from_millis(config.mock_latency_ms),
            config.mock_failure_rate,
        ));
        let wake = Arc::new(Notify::new());
        let worker = Worker::new(db.clone(), gateway, config.clone(), wake.clone());
        infra.outbox_relay(RelayConfig::default())?;
        infra.consume(
            &config.consumer_group,
            &[topics::ORDERS],
            Arc::new(PaymentHandler { wake }),
        )?;
        if config.worker_enabled {
            let background = worker.clone();
            infra.run_in_background(move |stop| background.run(stop));
        }
        let state = AppState { db, config, worker };
        let service = infra.serve(
            crate::routes::router(state.clone()),
            crate::routes::openapi(),
        )?;
        tracing::info!(addr = %service.addr(), "payment listening");
        Ok(Self { service, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.service.addr()
    }

    pub fn router(&self) -> axum::Router {
        self.service.router()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.service.shutdown_handle()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.service.run_until_stopped().await
    }
}
