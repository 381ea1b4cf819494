//! `peerworld-node run` as separate processes on 127.0.0.1, one behaviour per
//! test: flags, the environment and a TOML file configure them; they join and
//! agree through `/status`; a SIGKILLed one is dropped by the others;
//! restarted with its key file it has the same id; SIGTERM makes each leave
//! and exit 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tests pick free ports by binding and releasing them, so two tests
/// running at once could pick the same one: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn status(port: u16) -> Option<serde_json::Value> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    tcp.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).ok()?;
    serde_json::from_str(raw.split_once("\r\n\r\n")?.1).ok()
}

/// The ids a node keeps and has heard from itself.
fn kept(port: u16) -> Vec<String> {
    status(port).map_or_else(Vec::new, |v| {
        v["neighbours"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["confirmed"] == true)
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect()
    })
}

fn wait_for(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ok()
}

struct Node {
    child: Child,
    status: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[String], env: &[(&str, String)], status: u16) -> Node {
    spawn_with(
        Command::new(env!("CARGO_BIN_EXE_peerworld-node")),
        args,
        env,
        status,
    )
}

/// [`spawn`], with `cmd` running the binary (through a wrapper such as
/// `prlimit`).
fn spawn_with(mut cmd: Command, args: &[String], env: &[(&str, String)], status: u16) -> Node {
    cmd.arg("run")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let node = Node {
        child: cmd.spawn().unwrap(),
        status,
    };
    assert!(
        wait_for(Duration::from_secs(10), || status_of(&node).is_some()),
        "node with {args:?} never served /status"
    );
    node
}

fn status_of(node: &Node) -> Option<serde_json::Value> {
    status(node.status)
}

fn id_of(node: &Node) -> String {
    status_of(node).unwrap()["id"].as_str().unwrap().to_string()
}

fn sigterm_exits_zero(mut node: Node) {
    let pid = node.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let t0 = Instant::now();
    loop {
        if let Some(code) = node.child.try_wait().unwrap() {
            assert!(code.success(), "exit after SIGTERM: {code:?}");
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "no exit within 8 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

fn write_config(path: &Path, bootstrap: u16) {
    std::fs::write(
        path,
        format!(
            "bootstrap = [\"127.0.0.1:{bootstrap}\"]\npos = [480.0, 560.0]\nname = \"gamma\"\nradius = 300.0\nworld = [1000.0, 1000.0]\n"
        ),
    )
    .unwrap();
}

/// Three processes: `alpha` from flags, `beta` from the environment, `gamma`
/// from a TOML file with a key file and a flag that beats the file.
struct Three {
    _dir: TempDir,
    seed: Node,
    beta: Node,
    gamma: Node,
    gamma_args: Vec<String>,
    key: std::path::PathBuf,
    ids: [String; 3],
}

/// A folder removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn three(tag: &str) -> Three {
    let dir = std::env::temp_dir().join(format!("pw-run-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (p0, p1, p2) = (free_udp_port(), free_udp_port(), free_udp_port());
    let (s0, s1, s2) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let seed = spawn(
        &[
            s("--listen"),
            format!("127.0.0.1:{p0}"),
            s("--status"),
            format!("127.0.0.1:{s0}"),
            s("--world=1000,1000"),
            s("--radius=300"),
            s("--pos=500,500"),
            s("--name=alpha"),
        ],
        &[],
        s0,
    );
    let beta = spawn(
        &[],
        &[
            ("PEERWORLD_LISTEN", format!("127.0.0.1:{p1}")),
            ("PEERWORLD_STATUS", format!("127.0.0.1:{s1}")),
            ("PEERWORLD_BOOTSTRAP", format!("127.0.0.1:{p0}")),
            ("PEERWORLD_WORLD", s("1000,1000")),
            ("PEERWORLD_RADIUS", s("300")),
            ("PEERWORLD_POS", s("560,470")),
            ("PEERWORLD_NAME", s("beta")),
        ],
        s1,
    );
    let config = dir.join("gamma.toml");
    write_config(&config, p0);
    let key = dir.join("gamma.key");
    let gamma_args = vec![
        s("--config"),
        config.display().to_string(),
        s("--identity"),
        key.display().to_string(),
        s("--listen"),
        format!("127.0.0.1:{p2}"),
        s("--status"),
        format!("127.0.0.1:{s2}"),
        s("--name=gamma-flag"),
    ];
    let gamma = spawn(&gamma_args, &[], s2);
    let ids = [id_of(&seed), id_of(&beta), id_of(&gamma)];
    Three {
        _dir: TempDir(dir),
        seed,
        beta,
        gamma,
        gamma_args,
        key,
        ids,
    }
}

impl Three {
    fn all_know_all(&self) -> bool {
        let nodes = [&self.seed, &self.beta, &self.gamma];
        nodes.iter().enumerate().all(|(i, n)| {
            let k = kept(n.status);
            self.ids
                .iter()
                .enumerate()
                .all(|(j, id)| i == j || k.contains(id))
        })
    }

    fn settled(tag: &str) -> Self {
        let t = three(tag);
        assert!(
            wait_for(Duration::from_secs(20), || t.all_know_all()),
            "the three did not come to know each other"
        );
        t
    }
}

#[test]
fn flags_beat_the_environment_and_a_toml_file_configures_run() {
    let _serial = serial();
    let t = three("config");
    let v = status_of(&t.gamma).unwrap();
    assert_eq!(v["name"], "gamma-flag", "a flag must beat the file");
    assert_eq!(v["radius"].as_f64(), Some(300.0), "from the file");
    assert_eq!(v["world"][0].as_f64(), Some(1000.0), "from the file");
    assert_eq!(v["pos"][0].as_f64(), Some(480.0), "from the file");
    let b = status_of(&t.beta).unwrap();
    assert_eq!(b["pos"][0].as_f64(), Some(560.0), "from the environment");
    assert_eq!(b["name"], "beta", "from the environment");
}

#[test]
fn three_run_processes_come_to_know_each_other_through_one_seed() {
    let _serial = serial();
    let t = Three::settled("agree");
    for n in [&t.seed, &t.beta, &t.gamma] {
        assert_eq!(status_of(n).unwrap()["state"], "joined");
    }
}

#[test]
fn say_through_one_process_and_list_the_line_at_another() {
    let _serial = serial();
    let t = Three::settled("chat");
    let bin = env!("CARGO_BIN_EXE_peerworld-node");
    let say = Command::new(bin)
        .args([
            "say",
            "--status",
            &format!("127.0.0.1:{}", t.beta.status),
            "good morning",
        ])
        .output()
        .unwrap();
    assert!(
        say.status.success(),
        "{}",
        String::from_utf8_lossy(&say.stderr)
    );
    assert!(String::from_utf8_lossy(&say.stdout).contains("\"id\""));
    let listed = || {
        let out = Command::new(bin)
            .args([
                "messages",
                "--status",
                &format!("127.0.0.1:{}", t.gamma.status),
            ])
            .output()
            .unwrap();
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("beta: good morning")
    };
    assert!(
        wait_for(Duration::from_secs(3), listed),
        "gamma never listed the line"
    );
    // A line too long is refused with the node's reason, and a non-zero exit.
    let long = "x".repeat(300);
    let refused = Command::new(bin)
        .args([
            "say",
            "--status",
            &format!("127.0.0.1:{}", t.beta.status),
            &long,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("280"));
}

#[test]
fn a_sigkilled_process_is_dropped_by_the_others_within_the_failure_timeout() {
    let _serial = serial();
    let Three {
        seed,
        beta,
        gamma,
        ids,
        ..
    } = Three::settled("kill");
    let gamma_id = ids[2].clone();
    drop(gamma); // SIGKILL
    assert!(
        wait_for(Duration::from_secs(8), || {
            !kept(seed.status).contains(&gamma_id) && !kept(beta.status).contains(&gamma_id)
        }),
        "a SIGKILLed node is still kept"
    );
}

#[test]
fn a_process_restarted_with_its_key_file_keeps_its_id_and_is_taken_back() {
    let _serial = serial();
    let mut t = Three::settled("restart");
    let gamma_id = t.ids[2].clone();
    let gamma_status = t.gamma.status;
    let placeholder = spawn_nothing();
    drop(std::mem::replace(&mut t.gamma, placeholder));
    assert!(
        wait_for(Duration::from_secs(8), || !kept(t.seed.status)
            .contains(&gamma_id)),
        "the killed node is still kept"
    );
    let gamma = spawn(&t.gamma_args, &[], gamma_status);
    assert_eq!(id_of(&gamma), gamma_id, "the restarted node has another id");
    assert!(
        wait_for(Duration::from_secs(20), || kept(t.seed.status)
            .contains(&gamma_id)),
        "the restarted node was not taken back"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&t.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
}

#[test]
fn sigterm_makes_each_process_say_goodbye_and_exit_zero() {
    let _serial = serial();
    let Three {
        seed,
        beta,
        gamma,
        ids,
        ..
    } = Three::settled("term");
    // The others hear the goodbye at once (long before the failure timeout).
    let beta_id = ids[1].clone();
    sigterm_exits_zero(beta);
    assert!(
        wait_for(Duration::from_millis(1500), || !kept(seed.status)
            .contains(&beta_id)),
        "the goodbye was not heard"
    );
    sigterm_exits_zero(gamma);
    sigterm_exits_zero(seed);
}

/// A finished child standing in for a killed node.
fn spawn_nothing() -> Node {
    let mut child = Command::new("true").spawn().unwrap();
    let _ = child.wait();
    Node { child, status: 0 }
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let _serial = serial();
    let out = Command::new(env!("CARGO_BIN_EXE_peerworld-node"))
        .args(["run", "--listen", "127.0.0.1:0", "--bootstrap", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bootstrap") && err.contains("HOST:PORT"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_peerworld-node"))
        .args(["run", "--world", "0,5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("world"));
}

#[test]
fn the_status_server_still_answers_under_two_thousand_idle_connections() {
    // The node may open 256 files. Idle connections that never send a
    // header once held a descriptor each for ever: 2 000 of them left no
    // room to accept an operator's `/healthz`.
    let _serial = serial();
    let (port, status_port) = (free_udp_port(), free_tcp_port());
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=256:256")
        .arg(env!("CARGO_BIN_EXE_peerworld-node"));
    let _node = spawn_with(
        cmd,
        &[
            s("--listen"),
            format!("127.0.0.1:{port}"),
            s("--status"),
            format!("127.0.0.1:{status_port}"),
        ],
        &[],
        status_port,
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], status_port));
    let t0 = Instant::now();
    let idle: Vec<TcpStream> = (0..2_000)
        .take_while(|_| t0.elapsed() < Duration::from_secs(20))
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok())
        .collect();
    assert!(
        idle.len() >= 1_000,
        "only {} connections opened",
        idle.len()
    );
    let healthz = || {
        let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut raw = String::new();
        tcp.read_to_string(&mut raw).ok()?;
        Some(raw)
    };
    let answer = healthz();
    assert!(
        answer
            .as_deref()
            .is_some_and(|r| r.starts_with("HTTP/1.1 200")),
        "{answer:?} with {} idle connections",
        idle.len()
    );
}

#[test]
fn swarm_reports_how_many_nodes_joined_and_the_summed_counters_beside_the_invariants() {
    let _serial = serial();
    let out = Command::new(env!("CARGO_BIN_EXE_peerworld-node"))
        .args([
            "swarm",
            "--peers",
            "6",
            "--duration",
            "2",
            "--settle",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["peers"], 6);
    assert_eq!(report["joined"], 6, "{report}");
    assert!(
        report["join_s"].as_f64().is_some_and(|s| s > 0.0),
        "{report}"
    );
    assert_eq!(report["components_max"], 1, "{report}");
    assert!(
        report["consistency"].as_f64().is_some_and(|c| c >= 0.99),
        "{report}"
    );
    // The summed counters cover the same window as the rates.
    let sent = report["transport"]["msgs_sent"].as_f64().unwrap();
    let node_secs = 6.0 * report["duration_s"].as_f64().unwrap();
    let rate = report["msgs_per_peer_per_s"].as_f64().unwrap();
    assert!(sent > 0.0, "{report}");
    assert!((sent / node_secs - rate).abs() < 1e-6 * rate, "{report}");
    assert!(report["overlay"]["discover_records"].is_u64(), "{report}");
    // Six bots at the default 30 units/s keep their pace on any machine.
    assert!(
        report["walked_per_s"]
            .as_f64()
            .is_some_and(|w| (20.0..=36.0).contains(&w)),
        "{report}"
    );
}
