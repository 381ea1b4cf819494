//! The status server: `GET /status` (JSON, field names are a contract),
//! `GET /metrics` (Prometheus text format), `GET /healthz`, and chat:
//! `POST /say` and `GET /messages`.

use std::collections::VecDeque;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::{Error, NodeHandle, Snapshot};

/// The `/status` document of a snapshot (the contract of DESIGN.md plus
/// `state`, `addr`, `links`, `uptime_ms` and the full counters).
pub fn status_json(s: &Snapshot, metrics: &crate::MetricsSnapshot) -> Value {
    let neighbours: Vec<Value> = s
        .view
        .neighbours
        .iter()
        .map(|n| {
            json!({
                "id": n.info.id.to_hex(),
                "name": n.info.name,
                "pos": [n.info.pos.x, n.info.pos.y],
                "radius": n.info.radius,
                "enclosing": n.enclosing,
                "aware": n.aware,
                "confirmed": n.confirmed,
                "age_ms": s.age_ms(n),
                "addr": n.info.addr,
            })
        })
        .collect();
    json!({
        "id": s.view.me.id.to_hex(),
        "name": s.view.me.name,
        "addr": s.view.me.addr,
        "pos": [s.view.me.pos.x, s.view.me.pos.y],
        "radius": s.view.me.radius,
        "world": [s.world.width, s.world.height],
        "joined": s.joined(),
        "state": s.view.state,
        "uptime_ms": s.uptime_ms,
        "links": s.links,
        "neighbours": neighbours,
        "stats": {
            "msgs_sent": metrics.msgs_sent,
            "bytes_sent": metrics.bytes_sent,
            "msgs_recv": metrics.msgs_recv,
            "bytes_recv": metrics.bytes_recv,
            "counters": counters(s, metrics),
        },
    })
}

/// The transport's counters and the overlay's, in one JSON object.
fn counters(s: &Snapshot, metrics: &crate::MetricsSnapshot) -> Value {
    let mut all = serde_json::Map::new();
    for (name, _, v) in metrics.fields().into_iter().chain(s.stats.fields()) {
        all.insert(name.to_string(), Value::from(v));
    }
    Value::Object(all)
}

/// The `/metrics` text (Prometheus exposition format 0.0.4).
pub fn metrics_text(s: &Snapshot, metrics: &crate::MetricsSnapshot) -> String {
    let mut out = String::new();
    let gauges = [
        (
            "neighbours",
            "Peers kept by the overlay.",
            s.view.neighbours.len(),
        ),
        (
            "neighbours_enclosing",
            "Kept peers that are Voronoi neighbours.",
            s.view.neighbours.iter().filter(|n| n.enclosing).count(),
        ),
        (
            "neighbours_aware",
            "Kept peers within the awareness radius.",
            s.view.neighbours.iter().filter(|n| n.aware).count(),
        ),
        ("links", "Open QUIC connections.", s.links),
        ("joined", "1 when part of a world.", usize::from(s.joined())),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP peerworld_{name} {help}");
        let _ = writeln!(out, "# TYPE peerworld_{name} gauge");
        let _ = writeln!(out, "peerworld_{name} {v}");
    }
    let _ = writeln!(
        out,
        "# HELP peerworld_radius Awareness radius in world units."
    );
    let _ = writeln!(out, "# TYPE peerworld_radius gauge");
    let _ = writeln!(out, "peerworld_radius {}", s.view.me.radius);
    for (name, help, v) in metrics.fields().into_iter().chain(s.stats.fields()) {
        let _ = writeln!(out, "# HELP peerworld_{name}_total {help}");
        let _ = writeln!(out, "# TYPE peerworld_{name}_total counter");
        let _ = writeln!(out, "peerworld_{name}_total {v}");
    }
    out
}

async fn status(State(node): State<NodeHandle>) -> Response {
    axum::Json(status_json(&node.snapshot(), &node.metrics())).into_response()
}

async fn metrics(State(node): State<NodeHandle>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_text(&node.snapshot(), &node.metrics()),
    )
        .into_response()
}

/// `POST /say` body.
#[derive(serde::Deserialize)]
struct SayBody {
    text: String,
}

/// `POST /say {"text": "..."}` → `202 {"id": "..."}`; 400 for a body that is
/// not such JSON or a line that is empty or too long, 429 when speaking too
/// fast, 503 once stopped. Refusals count in `chat_refused`.
async fn say(
    State(node): State<NodeHandle>,
    body: Result<axum::Json<SayBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let refused = |code: StatusCode, why: String| {
        crate::Metrics::add(&node.metrics_counters().chat_refused, 1);
        (code, axum::Json(json!({ "error": why }))).into_response()
    };
    let text = match body {
        Ok(axum::Json(b)) => b.text,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match node.say(&text).await {
        Ok(id) => (StatusCode::ACCEPTED, axum::Json(json!({ "id": id }))).into_response(),
        Err(crate::SayError::Refused(e @ peerworld_protocol::AreaError::RateLimited)) => {
            refused(StatusCode::TOO_MANY_REQUESTS, e.to_string())
        }
        Err(crate::SayError::Refused(e)) => refused(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `GET /messages` query.
#[derive(serde::Deserialize)]
struct After {
    after: Option<u64>,
}

/// `GET /messages?after=SEQ` → the chat lines heard after SEQ, oldest first.
async fn messages(
    State(node): State<NodeHandle>,
    query: Result<axum::extract::Query<After>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let after = match query {
        Ok(q) => q.after.unwrap_or(0),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": e.body_text() })),
            )
                .into_response();
        }
    };
    let lines: Vec<Value> = node
        .messages(after)
        .into_iter()
        .map(|l| {
            json!({
                "seq": l.seq,
                "from": l.from.to_hex(),
                "name": l.name,
                "pos": [l.pos.x, l.pos.y],
                "text": l.text,
                "age_ms": l.at.elapsed().as_millis() as u64,
            })
        })
        .collect();
    axum::Json(json!({ "messages": lines })).into_response()
}

async fn healthz(State(node): State<NodeHandle>) -> Response {
    if node.is_closed() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopped\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

/// Most status connections open at once: when full, the oldest is closed
/// to make room (a slow or idle client cannot lock operators out).
pub const MAX_CONNECTIONS: usize = 128;
/// A request's headers must arrive within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No status connection lives longer than this.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds `addr` and serves the node's status until it stops. Returns the
/// bound address. At most [`MAX_CONNECTIONS`] connections are served at
/// once (the oldest makes room), each with [`HEADER_TIMEOUT`] for its
/// headers and [`CONNECTION_TIMEOUT`] in all.
pub async fn serve(addr: SocketAddr, node: NodeHandle) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/say", axum::routing::post(say))
        .route("/messages", get(messages))
        .merge(crate::status_objects::routes())
        .merge(crate::status_records::routes())
        .layer(axum::extract::DefaultBodyLimit::max(4096))
        .with_state(node.clone());
    tokio::spawn(async move {
        // Oldest first: the one to close when full, and all at the end.
        let mut live: VecDeque<JoinHandle<()>> = VecDeque::new();
        loop {
            let accepted = tokio::select! {
                _ = node.closed() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some.
                    tracing::warn!(error = %e, "status server cannot accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            live.retain(|h| !h.is_finished());
            while live.len() >= MAX_CONNECTIONS {
                if let Some(oldest) = live.pop_front() {
                    oldest.abort();
                }
            }
            live.push_back(tokio::spawn(serve_connection(stream, app.clone())));
        }
        live.iter().for_each(JoinHandle::abort);
    });
    Ok(bound)
}

async fn serve_connection(stream: tokio::net::TcpStream, app: Router) {
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
}
