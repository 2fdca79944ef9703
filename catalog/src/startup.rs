//! Builds the catalog service from its config: database (with the event tables), broker, the
//! product cache, the outbox relay and the inventory consumer. `main` and the tests both go
//! through `Application::build`.

use std::net::SocketAddr;
use std::sync::Arc;

use shared::events::topics;
use shared::outbox::RelayConfig;
use shared::server::ShutdownHandle;
use shared::{RunningService, ServiceBuilder};
use sqlx::PgPool;

use crate::cache::ProductCache;
use crate::config::CatalogConfig;
use crate::inventory::handler::InventoryHandler;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub cache: ProductCache,
    pub config: Arc<CatalogConfig>,
}

pub struct Application {
    service: RunningService,
    pub state: AppState,
}

impl Application {
    pub async fn build(config: CatalogConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let mut infra = ServiceBuilder::new("catalog", &config.common)
            .postgres_with_events(&crate::MIGRATOR)
            .kafka()
            .connect()
            .await?;
        // Redis is optional for the catalog: without it, reads come from Postgres.
        let cache = if config.cache_enabled {
            ProductCache::new(
                config.common.redis_url.expose(),
                &config.common.redis_prefix,
                config.cache_ttl_secs,
            )?
        } else {
            ProductCache::disabled()
        };
        let db = infra.db()?;
        infra.outbox_relay(RelayConfig::default())?;
        if config.inventory_consumer_enabled {
            infra.consume(
                &config.consumer_group,
                &[topics::ORDERS],
                Arc::new(InventoryHandler {
                    db: db.clone(),
                    cache: cache.clone(),
                }),
            )?;
        }
        let state = AppState {
            db,
            cache,
            config: Arc::new(config),
        };
        let service = infra.serve(
            crate::routes::router(state.clone()),
            crate::routes::openapi(),
        )?;
        tracing::info!(addr = %service.addr(), "catalog listening");
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
