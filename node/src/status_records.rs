//! Key records and routes on the status server: `PUT /records/{key}`
//! (body: the value, `?ttl_s=`), `GET /records/{key}` and
//! `GET /route?to=X,Y` (the contract is in docs/PROTOCOL.md, "Node API").

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use peerworld_protocol::object::ObjectError;
use peerworld_protocol::record::{MAX_RECORD_NAME, MAX_RECORD_VALUE};
use serde_json::json;

use crate::{NodeHandle, RecordError};

/// The record and route routes, for the status server's router.
pub(crate) fn routes() -> axum::Router<NodeHandle> {
    axum::Router::new()
        .route("/records/{key}", axum::routing::get(get).put(put))
        .route("/route", axum::routing::get(route))
}

/// Lifetime of a record when the request names none (one hour).
pub const DEFAULT_RECORD_TTL_S: u32 = 3_600;

fn error(code: StatusCode, why: impl ToString) -> Response {
    (code, axum::Json(json!({ "error": why.to_string() }))).into_response()
}

fn refused(e: RecordError) -> Response {
    let code = match &e {
        RecordError::Invalid(ObjectError::ValueTooLong(_)) => StatusCode::PAYLOAD_TOO_LARGE,
        RecordError::Invalid(ObjectError::NoSigner) => StatusCode::SERVICE_UNAVAILABLE,
        RecordError::Invalid(_) => StatusCode::BAD_REQUEST,
        RecordError::NotYours => StatusCode::FORBIDDEN,
        RecordError::NoAnswer => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(code, e)
}

/// A 400 for a key that is empty or too long.
fn bad_key(key: &str) -> Option<Response> {
    (key.is_empty() || key.len() > MAX_RECORD_NAME).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            format!("a record key is 1 to {MAX_RECORD_NAME} bytes"),
        )
    })
}

#[derive(serde::Deserialize)]
struct Ttl {
    ttl_s: Option<u32>,
}

/// `PUT /records/{key}?ttl_s=S` with the value as body → `200 {"stored": n}`;
/// 413 beyond 1 KiB, 403 if the key is another writer's, 504 without an
/// answer.
async fn put(
    State(node): State<NodeHandle>,
    Path(key): Path<String>,
    query: Result<Query<Ttl>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    let ttl_s = match query {
        Ok(Query(t)) => t.ttl_s.unwrap_or(DEFAULT_RECORD_TTL_S),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if body.len() > MAX_RECORD_VALUE {
        return refused(RecordError::Invalid(ObjectError::ValueTooLong(body.len())));
    }
    match node.put_record(&key, body.to_vec(), ttl_s).await {
        Ok(n) => axum::Json(json!({ "stored": n })).into_response(),
        Err(e) => refused(e),
    }
}

/// `GET /records/{key}` → the value (`application/octet-stream`), or 404.
async fn get(State(node): State<NodeHandle>, Path(key): Path<String>) -> Response {
    if let Some(r) = bad_key(&key) {
        return r;
    }
    match node.get_record(&key).await {
        Ok(Some(value)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            value,
        )
            .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no record under this key"),
        Err(e) => refused(e),
    }
}

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

/// `GET /route?to=X,Y` → `{"hops": n, "owner": "hex"}`.
async fn route(
    State(node): State<NodeHandle>,
    query: Result<Query<To>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let to = match query {
        Ok(Query(q)) => q.to,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(p) = crate::status_objects::parse_point(&to) else {
        return error(StatusCode::BAD_REQUEST, "to must be X,Y (finite numbers)");
    };
    match node.route(p).await {
        Ok((hops, owner)) => {
            axum::Json(json!({ "hops": hops, "owner": owner.to_hex() })).into_response()
        }
        Err(e) => refused(e),
    }
}
