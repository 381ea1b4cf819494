//! Key records and routes over real QUIC, through the status API.

use std::time::Duration;

use peerworld_node::NodeHandle;
use peerworld_protocol::record::RecordKey;
use peerworld_protocol::{Config, PeerId, Point};

use super::{WORLD, api, converged, http_get, http_request, real_time};

/// The live nodes nearest to `p`, nearest first.
fn nearest(nodes: &[NodeHandle], p: Point) -> Vec<&NodeHandle> {
    let mut live: Vec<&NodeHandle> = nodes.iter().filter(|n| !n.is_closed()).collect();
    live.sort_by(|a, b| {
        let da = WORLD.distance(a.snapshot().view.me.pos, p);
        let db = WORLD.distance(b.snapshot().view.me.pos, p);
        da.total_cmp(&db)
    });
    live
}

#[test]
fn a_record_put_at_one_node_is_read_at_every_other_and_outlives_its_holders_one_by_one() {
    real_time(|| async {
        let swarm = converged(20, 21).await;
        let nodes = swarm.nodes();
        let writer = &nodes[2];
        let bound = api(writer).await;
        // Bad input: too large a value, a lifetime of 0.
        let big = vec![b'x'; 1025];
        let (code, answer) = http_request(bound, "PUT", "/records/big", &big).await;
        assert_eq!(code, 413, "{answer}");
        let (code, answer) = http_request(bound, "PUT", "/records/x?ttl_s=0", b"v").await;
        assert_eq!(code, 400, "{answer}");
        let (code, answer) =
            http_request(bound, "PUT", "/records/the%20greeting?ttl_s=600", b"hello").await;
        assert_eq!(code, 200, "{answer}");
        let stored: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert!(stored["stored"].as_u64().unwrap() >= 2, "{answer}");
        // Every other node reads it; an unknown key is 404.
        for n in nodes.iter().filter(|n| n.id() != writer.id()) {
            let got = n.get_record("the greeting").await.unwrap();
            assert_eq!(got.as_deref(), Some(&b"hello"[..]), "at {}", n.id());
        }
        let (code, body) = http_get(bound, "/records/the%20greeting").await;
        assert_eq!((code, body.as_str()), (200, "hello"));
        let (code, _) = http_get(bound, "/records/nobody%20wrote%20this").await;
        assert_eq!(code, 404);
        // Another writer may not replace it.
        let other = api(&nodes[7]).await;
        let (code, answer) = http_request(other, "PUT", "/records/the%20greeting", b"forged").await;
        assert_eq!(code, 403, "{answer}");
        // A route ends at the owner of its point.
        let (code, answer) = http_get(bound, "/route?to=500,500").await;
        assert_eq!(code, 200, "{answer}");
        let route: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let owner = nearest(nodes, Point::new(500.0, 500.0))[0].id();
        assert_eq!(route["owner"], owner.to_hex(), "{answer}");
        let (code, _) = http_get(bound, "/route?to=5,nowhere").await;
        assert_eq!(code, 400);
        // The holders die one at a time, each after the failure timeout of
        // the last: the record is still read.
        let point = RecordKey::of("the greeting").point(WORLD);
        let wait = Duration::from_millis(Config::default().failure_timeout_ms + 1_000);
        let mut dead: Vec<PeerId> = Vec::new();
        for _ in 0..3 {
            let holder = nearest(nodes, point)
                .into_iter()
                .find(|n| n.id() != writer.id())
                .expect("a live node");
            dead.push(holder.id());
            holder.crash();
            holder.closed().await;
            tokio::time::sleep(wait).await;
        }
        for n in nodes.iter().filter(|n| !dead.contains(&n.id())).step_by(3) {
            let got = n.get_record("the greeting").await.unwrap();
            assert_eq!(
                got.as_deref(),
                Some(&b"hello"[..]),
                "at {} after {dead:?}",
                n.id()
            );
        }
        swarm.shutdown().await;
    });
}
