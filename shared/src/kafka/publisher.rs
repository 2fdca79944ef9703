//! The producer every relay, DLQ and tool publishes with: librdkafka's producer with a delivery
//! future per record and a polling thread that sleeps while nothing happens.
//!
//! rust-rdkafka's `FutureProducer` polls in 100 ms windows, and each window ends in a busy loop:
//! the time left is handed to librdkafka in whole milliseconds, so the last fraction of a
//! millisecond is spent calling a zero-timeout poll over and over. That was most of an idle
//! service's CPU (docs/adr/014-dozing-consumers.md, "The producers"). Here the window is
//! `POLL_WINDOW`: delivery reports are still handled the moment they arrive (within a window the
//! poll serves each event as it comes); the spin at the end of a window happens once a second
//! instead of ten times.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureRecord, Producer, ProducerContext,
};
use rdkafka::util::Timeout;
use tokio::sync::oneshot;

/// How long one poll of the delivery reports may wait for the next one. Only idle wake-ups
/// depend on it; a producer that is dropped lets its thread go within this time.
pub const POLL_WINDOW: Duration = Duration::from_secs(1);

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// A cheap, cloneable handle: clones share one librdkafka producer and its polling thread.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Handle>,
}

/// The last handle going away tells the polling thread to stop; the thread holds the producer
/// itself, so librdkafka's teardown (it gives up on queued records) runs there, never on an
/// async worker.
struct Handle {
    producer: Arc<BaseProducer<Reports>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The publisher's librdkafka context: hands each delivery report to the future waiting for it.
pub struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<oneshot::Sender<Result<Delivered, KafkaError>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiter: Self::DeliveryOpaque) {
        let report = match result {
            Ok(msg) => Ok(Delivered {
                partition: msg.partition(),
                offset: msg.offset(),
            }),
            Err((e, _)) => Err(e.clone()),
        };
        // The sender gave up waiting (its future was dropped): nobody to tell.
        let _ = waiter.send(report);
    }
}

impl Publisher {
    /// A producer made from `config`, with its polling thread started.
    pub fn create(config: &ClientConfig) -> KafkaResult<Self> {
        let producer: Arc<BaseProducer<Reports>> = Arc::new(config.create_with_context(Reports)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, flag) = (producer.clone(), stop.clone());
        std::thread::Builder::new()
            .name("kafka-publisher".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    polled.poll(POLL_WINDOW);
                }
                // The handle lets go of its reference just after raising the flag: wait for it,
                // so that ours is the last and librdkafka's teardown runs on this thread.
                while Arc::strong_count(&polled) > 1 {
                    polled.poll(Duration::from_millis(10));
                }
            })
            .map_err(|_| KafkaError::ClientCreation("no thread for the producer".into()))?;
        Ok(Self {
            inner: Arc::new(Handle { producer, stop }),
        })
    }

    /// Queue `record` and wait for the broker's acknowledgement (or librdkafka's verdict after
    /// `message.timeout.ms`). While librdkafka's local queue is full, retries for up to
    /// `queue_timeout` before failing with `QueueFull`.
    pub async fn send<K, P>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: impl Into<Timeout>,
    ) -> Result<Delivered, KafkaError>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        let queue_timeout = queue_timeout.into();
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        let mut base = BaseRecord {
            topic: record.topic,
            partition: record.partition,
            payload: record.payload,
            key: record.key,
            timestamp: record.timestamp,
            headers: record.headers,
            delivery_opaque: Box::new(tx),
        };
        loop {
            match self.inner.producer.send(base) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if match queue_timeout {
                        Timeout::Never => true,
                        Timeout::After(t) => started.elapsed() < t,
                    } =>
                {
                    base = back;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
        // librdkafka reports every queued record exactly once, even when the producer is torn
        // down (it purges them), so the sender is never dropped unanswered while we hold a handle.
        rx.await.unwrap_or(Err(KafkaError::Canceled))
    }

    /// The librdkafka client, for its fatal-error state and metadata.
    pub fn client(&self) -> &Client<Reports> {
        self.inner.producer.client()
    }

    /// Wait up to `timeout` for every queued record to be delivered or failed.
    pub fn flush(&self, timeout: impl Into<Timeout>) -> KafkaResult<()> {
        self.inner.producer.flush(timeout)
    }
}
