//! The hub's fan-out path: one message to a channel of N connections, serialized once and pushed
//! as shared bytes onto N outbound queues. No sockets: this is the cost the hub adds per delivery
//! before any I/O.
//!
//! `cargo bench -p switchboard --bench hub_fanout`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use switchboard::dialect::Dialect;
use switchboard::dialect::jac::JacDialect;
use switchboard::hub::{
    Connection, ConnectionLimits, Delivery, Hub, QueueBounds, Registration, Target,
};
use switchboard::identity::Identity;
use switchboard::metrics::Metrics;

const CHANNEL: &str = "bench";
/// Deliveries per connection between queue resets: below the default outbound bound of 1024
/// messages, so no connection is ever closed as a slow consumer during a measurement.
const CHUNK: u64 = 512;

struct Fixture {
    hub: Hub,
    conns: Vec<Arc<Connection>>,
    next_id: u64,
}

impl Fixture {
    fn new(n: usize) -> Self {
        let encoders = vec![JacDialect.encoder()];
        let metrics = Metrics::new("bench", encoders.iter().map(|e| e.dialect()), []);
        let hub = Hub::new(
            encoders,
            QueueBounds {
                messages: 1024,
                bytes: 1 << 30,
            },
            ConnectionLimits {
                total: usize::MAX,
                per_user: usize::MAX,
            },
            Arc::new(metrics),
        );
        let mut fixture = Self {
            hub,
            conns: Vec::with_capacity(n),
            next_id: 0,
        };
        fixture.fill(n);
        fixture
    }

    fn fill(&mut self, n: usize) {
        let channel: Arc<str> = Arc::from(CHANNEL);
        for _ in 0..n {
            self.next_id += 1;
            let conn = self
                .hub
                .register(Registration {
                    client_id: Arc::from(format!("bench:{}", self.next_id)),
                    dialect: Hub::dialect_id(0),
                    identity: Identity::public(),
                    channels: vec![channel.clone()],
                    namespace: None,
                    greeting: Vec::new(),
                    shared_client_id: false,
                })
                .expect("fresh client id");
            self.conns.push(conn);
        }
    }

    /// Drop every queued frame by replacing the connections (outside the timed section).
    fn reset(&mut self) {
        let n = self.conns.len();
        for conn in self.conns.drain(..) {
            self.hub.unregister(&conn);
        }
        self.fill(n);
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub_fanout");
    group.measurement_time(Duration::from_secs(5));
    for n in [100usize, 1_000, 10_000] {
        let mut fixture = Fixture::new(n);
        let data = json!({"type": "chat", "data": {"message": "hello, everyone in this channel", "seq": 1}});
        let target = Target::Channels(vec![CHANNEL.to_string()]);
        group.throughput(Throughput::Elements(n as u64));
        // Serialize once (`Delivery::from_json`), then enqueue to every member of the channel.
        group.bench_with_input(BenchmarkId::new("serialize_and_deliver", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let chunk = CHUNK.min(iters - done);
                    let start = Instant::now();
                    for _ in 0..chunk {
                        let delivery = Delivery::from_json(&data).expect("serializable");
                        let reached = fixture.hub.deliver(&target, &delivery);
                        debug_assert_eq!(reached, n);
                        std::hint::black_box(reached);
                    }
                    elapsed += start.elapsed();
                    done += chunk;
                    fixture.reset();
                }
                elapsed
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
