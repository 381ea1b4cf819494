//! World objects on the status server: `POST /objects`,
//! `DELETE /objects/{key}` and `GET /objects?near=X,Y&r=R` (the contract
//! is in docs/PROTOCOL.md, "Node API").

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use peerworld_protocol::Point;
use peerworld_protocol::object::{MAX_OBJECT_TTL_S, ObjectError, ObjectKey, WorldObject};
use serde_json::{Value, json};

use crate::{NewObject, NodeHandle, ObjectCommandError};

/// The object routes, for the status server's router.
pub(crate) fn routes() -> axum::Router<NodeHandle> {
    axum::Router::new()
        .route("/objects", axum::routing::get(list).post(place))
        .route("/objects/{key}", axum::routing::delete(remove))
}

/// Lifetime of an object when the request names none (one hour).
pub const DEFAULT_TTL_S: u32 = 3_600;
/// Colour of an object when the request names none.
const DEFAULT_COLOUR: [u8; 3] = [230, 190, 60];

#[derive(serde::Deserialize)]
struct PlaceBody {
    pos: [f32; 2],
    text: String,
    ttl_s: Option<u32>,
    colour: Option<[u8; 3]>,
}

fn error(code: StatusCode, why: impl ToString) -> Response {
    (code, axum::Json(json!({ "error": why.to_string() }))).into_response()
}

fn refused(e: ObjectCommandError) -> Response {
    match e {
        ObjectCommandError::Refused(ObjectError::Unknown) => error(StatusCode::NOT_FOUND, e),
        ObjectCommandError::Refused(ObjectError::NotAuthor) => error(StatusCode::FORBIDDEN, e),
        ObjectCommandError::Refused(ObjectError::Quota(_)) => {
            error(StatusCode::TOO_MANY_REQUESTS, e)
        }
        ObjectCommandError::Refused(_) => error(StatusCode::BAD_REQUEST, e),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// `POST /objects {"pos": [x, y], "text": "...", "ttl_s": s}` → `200 {"key": "hex"}`.
async fn place(
    State(node): State<NodeHandle>,
    body: Result<axum::Json<PlaceBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match body {
        Ok(axum::Json(b)) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let new = NewObject {
        pos: Point::new(b.pos[0], b.pos[1]),
        text: b.text,
        colour: b.colour.unwrap_or(DEFAULT_COLOUR),
        ttl_s: b.ttl_s.unwrap_or(DEFAULT_TTL_S.min(MAX_OBJECT_TTL_S)),
    };
    match node.place_object(new).await {
        Ok(key) => axum::Json(json!({ "key": key.to_hex() })).into_response(),
        Err(e) => refused(e),
    }
}

/// `DELETE /objects/{key}` → `200 {"removed": "hex"}`; 404 if unknown
/// here, 403 if not ours.
async fn remove(State(node): State<NodeHandle>, Path(key): Path<String>) -> Response {
    let Some(key) = ObjectKey::from_hex(&key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "an object key is 32 hex characters",
        );
    };
    match node.remove_object(key).await {
        Ok(()) => axum::Json(json!({ "removed": key.to_hex() })).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(serde::Deserialize)]
struct Near {
    near: Option<String>,
    r: Option<f32>,
}

/// The JSON of one object (a contract).
pub fn object_json(o: &WorldObject) -> Value {
    json!({
        "key": o.key.to_hex(),
        "pos": [o.pos.x, o.pos.y],
        "text": o.text,
        "colour": o.colour,
        "author": o.author().to_hex(),
        "version": o.version,
    })
}

/// `GET /objects?near=X,Y&r=R` → every live object this node knows within
/// R of the point (default: its own position and radius).
async fn list(
    State(node): State<NodeHandle>,
    query: Result<Query<Near>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let me = node.snapshot().view.me.clone();
    let centre = match q.near.as_deref().map(parse_point) {
        None => me.pos,
        Some(Some(p)) => p,
        Some(None) => return error(StatusCode::BAD_REQUEST, "near must be X,Y (finite numbers)"),
    };
    let r = q.r.unwrap_or(me.radius);
    if !r.is_finite() || r < 0.0 {
        return error(StatusCode::BAD_REQUEST, "r must be a finite number ≥ 0");
    }
    let objects: Vec<Value> = node
        .objects_near(centre, r)
        .iter()
        .map(object_json)
        .collect();
    axum::Json(json!({ "objects": objects })).into_response()
}

pub(crate) fn parse_point(s: &str) -> Option<Point> {
    let (x, y) = s.split_once(',')?;
    let p = Point::new(x.trim().parse().ok()?, y.trim().parse().ok()?);
    p.is_finite().then_some(p)
}
