//! Builds the order service from its config: database (with the event tables), broker, the outbox
//! relay, the saga consumer and the payment-deadline sweeper. `main` and the tests both go through
//! `Application::build`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::catalog_client::CatalogClient;
use shared::events::topics;
use shared::outbox::RelayConfig;
use shared::server::ShutdownHandle;
use shared::{RunningService, ServiceBuilder};
use sqlx::PgPool;

use crate::cart_client::CartClient;
use crate::config::OrderConfig;
use crate::deadline::DeadlineSweeper;
use crate::saga::SagaHandler;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub catalog: CatalogClient,
    pub cart: CartClient,
    pub config: Arc<OrderConfig>,
    pub admission: Arc<crate::orders::admission::Admission>,
}

pub struct Application {
    service: RunningService,
    pub state: AppState,
}

impl Application {
    pub async fn build(config: OrderConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let mut infra = ServiceBuilder::new("order", &config.common)
            .postgres_with_events(&crate::MIGRATOR)
            .kafka()
            .connect()
            .await?;
        let db = infra.db()?;
        infra.outbox_relay(RelayConfig::default())?;
        infra.consume(
            &config.consumer_group,
            &[topics::CATALOG, topics::PAYMENTS],
            Arc::new(SagaHandler),
        )?;
        let sweeper = DeadlineSweeper::new(
            db.clone(),
            config.deadline_sweep_batch,
            Duration::from_millis(config.deadline_sweep_interval_ms),
        );
        infra.run_in_background(move |stop| sweeper.run(stop));
        let state = AppState {
            db,
            catalog: CatalogClient::new(
                "order",
                &config.catalog_url,
                Duration::from_millis(config.catalog_timeout_ms),
            )?,
            cart: CartClient::new(
                &config.cart_url,
                Duration::from_millis(config.cart_timeout_ms),
            )?,
            admission: Arc::new(crate::orders::admission::Admission::new(
                config.max_orders_in_flight,
                Duration::from_millis(config.admission_refresh_ms),
            )),
            config: Arc::new(config),
        };
        let service = infra.serve(
            crate::routes::router(state.clone()),
            crate::routes::openapi(),
        )?;
        tracing::info!(addr = %service.addr(), "order listening");
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
