//! Builds the cart service from its config: Redis (the only store), the catalog client, the
//! order-confirmed consumer. `main` and the tests both go through `Application::build`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::events::topics;
use shared::server::ShutdownHandle;
use shared::{RunningService, ServiceBuilder};

use crate::cart::store::CartStore;
use crate::config::CartConfig;
use crate::consumer::OrderConfirmedHandler;
use shared::catalog_client::CatalogClient;

#[derive(Clone)]
pub struct AppState {
    pub store: CartStore,
    pub catalog: CatalogClient,
    pub config: Arc<CartConfig>,
}

pub struct Application {
    service: RunningService,
    pub state: AppState,
}

impl Application {
    pub async fn build(config: CartConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let mut infra = ServiceBuilder::new("cart", &config.common)
            .redis()
            .kafka()
            .connect()
            .await?;
        let redis = infra.redis()?;
        let prefix = redis.key(&[]);
        infra.consume_redis(
            &config.consumer_group,
            &[topics::ORDERS],
            Arc::new(OrderConfirmedHandler {
                prefix: prefix.clone(),
            }),
        )?;
        let state = AppState {
            store: CartStore::new(
                redis.conn(),
                &prefix,
                config.cart_ttl_secs,
                config.max_lines,
                config.max_quantity,
            ),
            catalog: CatalogClient::new(
                "cart",
                &config.catalog_url,
                Duration::from_millis(config.catalog_timeout_ms),
            )?,
            config: Arc::new(config),
        };
        let service = infra.serve(
            crate::routes::router(state.clone()),
            crate::routes::openapi(),
        )?;
        tracing::info!(addr = %service.addr(), "cart listening");
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
