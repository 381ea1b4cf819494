//! `peerworld-node say` and `peerworld-node messages`: a small client of a
//! running node's chat API (`POST /say`, `GET /messages`).

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

pub fn say(a: SayArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({ "text": a.text }).to_string();
    let (code, answer) = request(a.status, "POST", "/say", &body)?;
    if code != 202 {
        bail!("the node refused the line ({code}): {}", answer.trim());
    }
    println!("{}", answer.trim());
    Ok(())
}

pub fn messages(a: MessagesArgs) -> anyhow::Result<()> {
    let (code, answer) = request(a.status, "GET", &format!("/messages?after={}", a.after), "")?;
    if code != 200 {
        bail!("the node answered {code}: {}", answer.trim());
    }
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
