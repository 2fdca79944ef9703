//! Logs and traces: JSON (or pretty) logs filtered by `RUST_LOG` or the configured level, and OTLP
//! trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Initialised once by `main`; tests leave
//! logging off unless `TEST_LOG=1`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::CommonConfig;

/// Flushes pending spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

pub fn init(service: &'static str, config: &CommonConfig) -> anyhow::Result<TelemetryGuard> {
    init_with(service, &config.log_format, &config.log_level)
}

pub fn init_with(
    service: &'static str,
    format: &str,
    level: &str,
) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(level))?;
    let fmt_layer = if format == "json" {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        // Colour codes only for a person at a terminal: `make up` writes to log files.
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(terminal)
            .boxed()
    };

    let mut provider = None;
    let otel_layer = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(|e| anyhow::anyhow!("OTLP exporter for {endpoint}: {e}"))?;
            let p = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service)
                        .build(),
                )
                .build();
            let tracer = p.tracer(service);
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            opentelemetry::global::set_tracer_provider(p.clone());
            provider = Some(p);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        _ => None,
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("tracing already initialised: {e}"))?;
    Ok(TelemetryGuard { provider })
}

/// The W3C `traceparent` of the current span, when a trace is being recorded.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// A context whose parent is the given `traceparent` (invalid or absent: an empty context).
pub fn context_from_traceparent(traceparent: Option<&str>) -> opentelemetry::Context {
    use opentelemetry::propagation::TextMapPropagator;
    let mut carrier = std::collections::HashMap::new();
    if let Some(t) = traceparent {
        carrier.insert("traceparent".to_owned(), t.to_owned());
    }
    opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier)
}

/// For tests: logs to the test output when `TEST_LOG=1`, nothing otherwise. Safe to call repeatedly.
pub fn init_for_tests() {
    if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
            )
            .with_test_writer()
            .try_init();
    }
}
