//! World objects over real QUIC, through the status API.

use std::time::Duration;

use peerworld_node::NodeHandle;
use peerworld_protocol::Point;

use super::{
    RADIUS, WORLD, api, converged, http_get, http_post, http_request, real_time, wait_until,
};

/// Whether `n` lists exactly one object at `at`, with this text and version.
fn lists(n: &NodeHandle, at: Point, text: &str, version: u32) -> bool {
    let found = n.objects_near(at, 1.0);
    found.len() == 1 && found[0].text == text && found[0].version == version
}

#[test]
fn a_sign_placed_through_the_api_is_listed_within_radius_and_outlives_its_author() {
    real_time(|| async {
        let swarm = converged(15, 12).await;
        let nodes = swarm.nodes();
        let author = &nodes[4];
        let bound = api(author).await;
        // Bad input: not JSON, text too long, no lifetime, a position off
        // the number line; each 400, nothing placed.
        let long = format!("{{\"pos\": [1, 2], \"text\": \"{}\"}}", "x".repeat(281));
        for body in [
            &b"sign"[..],
            long.as_bytes(),
            br#"{"pos": [1, 2], "text": "x", "ttl_s": 0}"#,
            br#"{"pos": [1, "a"], "text": "x"}"#,
        ] {
            let (code, answer) = http_post(bound, "/objects", body).await;
            assert_eq!(code, 400, "{answer}");
        }
        let at = author.snapshot().view.me.pos;
        let body = format!(
            "{{\"pos\": [{}, {}], \"text\": \"welcome\", \"ttl_s\": 600}}",
            at.x, at.y
        );
        let (code, answer) = http_post(bound, "/objects", body.as_bytes()).await;
        assert_eq!(code, 200, "{answer}");
        let doc: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let key = doc["key"].as_str().unwrap().to_string();
        assert_eq!(key.len(), 32);
        // Listed at once by the node that placed it (not a tick later).
        let (_, mine) = http_get(bound, &format!("/objects?near={},{}&r=1", at.x, at.y)).await;
        assert!(
            mine.contains(&key),
            "not listed right after placing: {mine}"
        );
        let near: Vec<&NodeHandle> = nodes
            .iter()
            .filter(|n| WORLD.distance(n.snapshot().view.me.pos, at) <= f64::from(RADIUS))
            .collect();
        assert!(near.len() >= 5, "only {} within the radius", near.len());
        let all = wait_until(Duration::from_secs(2), || {
            near.iter().all(|n| lists(n, at, "welcome", 1))
        })
        .await;
        let missing = near.iter().filter(|n| !lists(n, at, "welcome", 1)).count();
        assert!(all, "{missing} of {} do not list it after 2 s", near.len());
        // The API lists it with its author.
        let (code, listed) = http_get(bound, &format!("/objects?near={},{}&r=5", at.x, at.y)).await;
        assert_eq!(code, 200);
        let doc: serde_json::Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(doc["objects"][0]["key"], key.as_str());
        assert_eq!(doc["objects"][0]["author"], author.id().to_hex());
        assert_eq!(doc["objects"][0]["version"], 1);
        // Another node cannot remove it.
        let other = near.iter().find(|n| n.id() != author.id()).unwrap();
        let other_api = api(other).await;
        let (code, answer) =
            http_request(other_api, "DELETE", &format!("/objects/{key}"), b"").await;
        assert_eq!(code, 403, "{answer}");
        let (code, _) = http_request(other_api, "DELETE", "/objects/zz", b"").await;
        assert_eq!(code, 400);
        // The author's process dies: the others still list it.
        author.crash();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let rest: Vec<&&NodeHandle> = near.iter().filter(|n| n.id() != author.id()).collect();
        let still = rest.iter().filter(|n| lists(n, at, "welcome", 1)).count();
        assert_eq!(still, rest.len(), "the sign went with its author");
        swarm.shutdown().await;
    });
}

#[test]
fn the_author_removes_its_sign_everywhere() {
    real_time(|| async {
        let swarm = converged(10, 13).await;
        let nodes = swarm.nodes();
        let author = &nodes[2];
        let at = author.snapshot().view.me.pos;
        let key = author
            .place_object(peerworld_node::NewObject {
                pos: at,
                text: "soon gone".into(),
                colour: [1, 2, 3],
                ttl_s: 600,
            })
            .await
            .unwrap();
        let near: Vec<&NodeHandle> = nodes
            .iter()
            .filter(|n| WORLD.distance(n.snapshot().view.me.pos, at) <= f64::from(RADIUS))
            .collect();
        assert!(
            wait_until(Duration::from_secs(2), || near.iter().all(|n| lists(
                n,
                at,
                "soon gone",
                1
            )))
            .await
        );
        let bound = api(author).await;
        let (code, answer) =
            http_request(bound, "DELETE", &format!("/objects/{}", key.to_hex()), b"").await;
        assert_eq!(code, 200, "{answer}");
        let gone = wait_until(Duration::from_secs(2), || {
            near.iter().all(|n| n.objects_near(at, 1.0).is_empty())
        })
        .await;
        assert!(gone, "still listed after its removal");
        let (code, _) =
            http_request(bound, "DELETE", &format!("/objects/{}", key.to_hex()), b"").await;
        assert_eq!(code, 404);
        swarm.shutdown().await;
    });
}
