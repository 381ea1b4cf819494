//! `peerworld-node say|messages|objects|place|remove|put|get`: a small
//! client of a running node's API (`POST /say`, `GET /messages`,
//! `GET /objects`, `POST /objects`, `DELETE /objects/{key}`,
//! `PUT /records/{key}`, `GET /records/{key}`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

/// `say` arguments.
#[derive(Args, Debug)]
pub struct SayArgs {
    /// The node's status address (its `run --status`).
    #[arg(long)]
    status: SocketAddr,
    /// The line (at most 280 bytes).
    text: String,
}

/// `messages` arguments.
#[derive(Args, Debug)]
pub struct MessagesArgs {
    /// The node's status address (its `run --status`).
    #[arg(long)]
    status: SocketAddr,
    /// Only the lines numbered above this.
    #[arg(long, default_value_t = 0)]
    after: u64,
}

/// Sends one request and returns the status code and body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot reach the node's status server at {addr}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .context("the status server sent no HTTP response")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("the status server sent no status code")?;
    Ok((code, body.to_string()))
}

/// One request; the body if the node answered `ok`, else why not.
fn call(
    addr: SocketAddr,
    (method, path, body): (&str, &str, &str),
    ok: u16,
    refused: &str,
) -> anyhow::Result<String> {
    let (code, answer) = request(addr, method, path, body)?;
    if code != ok {
        bail!("{refused} ({code}): {}", answer.trim());
    }
    Ok(answer)
}

pub fn say(a: SayArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({ "text": a.text }).to_string();
    let answer = call(
        a.status,
        ("POST", "/say", &body),
        202,
        "the node refused the line",
    )?;
    println!("{}", answer.trim());
    Ok(())
}

pub fn messages(a: MessagesArgs) -> anyhow::Result<()> {
    let path = format!("/messages?after={}", a.after);
    let answer = call(a.status, ("GET", &path, ""), 200, "the node answered")?;
    let doc: serde_json::Value = serde_json::from_str(&answer).context("not JSON")?;
    for line in doc["messages"].as_array().into_iter().flatten() {
        let name = line["name"].as_str().filter(|n| !n.is_empty());
        let from = line["from"].as_str().unwrap_or("").get(..8).unwrap_or("");
        println!(
            "{:>5} {:>8} {}: {}",
            line["seq"],
            format!("{}s", line["age_ms"].as_u64().unwrap_or(0) / 1000),
            name.unwrap_or(from),
            line["text"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `objects` arguments.
#[derive(Args, Debug)]
pub struct ObjectsArgs {
    /// The node's status address (its `run --status`).
    #[arg(long)]
    status: SocketAddr,
    /// Centre of the search, `X,Y` (default: the node's position).
    #[arg(long)]
    near: Option<String>,
    /// Radius of the search (default: the node's radius).
    #[arg(long)]
    r: Option<f32>,
}

/// `place` arguments.
#[derive(Args, Debug)]
pub struct PlaceArgs {
    /// The node's status address (its `run --status`).
    #[arg(long)]
    status: SocketAddr,
    /// Where, `X,Y`.
    #[arg(long)]
    pos: String,
    /// Lifetime in seconds (at most 86 400).
    #[arg(long, default_value_t = crate_ttl())]
    ttl_s: u32,
    /// The sign's text (at most 280 bytes).
    text: String,
}

const fn crate_ttl() -> u32 {
    peerworld_node::status_objects::DEFAULT_TTL_S
}

/// `remove` arguments.
#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The node's status address (its `run --status`).
    #[arg(long)]
    status: SocketAddr,
    /// The object's key (32 hex characters, as `place` printed it).
    key: String,
}

fn xy(s: &str) -> anyhow::Result<[f32; 2]> {
    let (x, y) = s.split_once(',').context("a point is X,Y")?;
    let p = [x.trim().parse()?, y.trim().parse()?];
    if !p.iter().all(|v: &f32| v.is_finite()) {
        bail!("a point must be finite");
    }
    Ok(p)
}

pub fn objects(a: ObjectsArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(near) = &a.near {
        let [x, y] = xy(near)?;
        query.push(format!("near={x},{y}"));
    }
    if let Some(r) = a.r {
        query.push(format!("r={r}"));
    }
    let path = format!("/objects?{}", query.join("&"));
    let answer = call(a.status, ("GET", &path, ""), 200, "the node answered")?;
    let doc: serde_json::Value = serde_json::from_str(&answer).context("not JSON")?;
    for o in doc["objects"].as_array().into_iter().flatten() {
        println!(
            "{} v{:<3} ({:>7.1}, {:>7.1}) by {}: {}",
            o["key"].as_str().unwrap_or(""),
            o["version"],
            o["pos"][0].as_f64().unwrap_or(0.0),
            o["pos"][1].as_f64().unwrap_or(0.0),
            o["author"].as_str().unwrap_or("").get(..8).unwrap_or(""),
            o["text"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub fn place(a: PlaceArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({ "pos": xy(&a.pos)?, "text": a.text, "ttl_s": a.ttl_s });
    let answer = call(
        a.status,
        ("POST", "/objects", &body.to_string()),
        200,
        "the node refused the object",
    )?;
    println!("{}", answer.trim());
    Ok(())
}

pub fn remove(a: RemoveArgs) -> anyhow::Result<()> {
    let path = format!("/objects/{}", a.key);
    let answer = call(a.status, ("DELETE", &path, ""), 200, "the node refused")?;
    println!("{}", answer.trim());
    Ok(())
}

/// `put` arguments.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// The node's status address (its `run --status`).
    #[arg(long)]
    status: SocketAddr,
    /// Lifetime in seconds (at most 86 400).
    #[arg(long, default_value_t = peerworld_node::status_records::DEFAULT_RECORD_TTL_S)]
    ttl_s: u32,
    /// The record's key (any text up to 128 bytes).
    key: String,
    /// The value (at most 1 KiB).
    value: String,
}

/// `get` arguments.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The node's status address (its `run --status`).
    #[arg(long)]
    status: SocketAddr,
    /// The record's key.
    key: String,
}

/// `key` as one URL path segment (every byte but unreserved ones escaped).
fn path_segment(key: &str) -> String {
    key.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn put(a: PutArgs) -> anyhow::Result<()> {
    let path = format!("/records/{}?ttl_s={}", path_segment(&a.key), a.ttl_s);
    let answer = call(
        a.status,
        ("PUT", &path, &a.value),
        200,
        "the record was not stored",
    )?;
    println!("{}", answer.trim());
    Ok(())
}

pub fn get(a: GetArgs) -> anyhow::Result<()> {
    let path = format!("/records/{}", path_segment(&a.key));
    let answer = call(a.status, ("GET", &path, ""), 200, "no value")?;
    println!("{answer}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn keys_are_escaped_into_one_path_segment() {
        assert_eq!(path_segment("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(path_segment("é"), "%C3%A9");
    }
}
