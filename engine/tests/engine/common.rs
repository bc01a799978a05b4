use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Replay};

pub fn opts(sync: SyncMode, segment_size: u64) -> Options {
    Options {
        wal: WalOptions {
            sync,
            segment_size,
            max_record: 4096.min(segment_size as usize / 2),
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::create(dir, opts(SyncMode::Never, 64 << 20)).unwrap()
}

pub fn collect(mut r: Replay) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(x) = r.next_record() {
        let (s, d) = x.unwrap();
        out.push((s, d.to_vec()));
    }
    out
}

pub fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 37) as usize)).into_bytes()
}

/// `sydra --dir DIR ARGS...` with `stdin` fed from a thread (so a large
/// input never deadlocks against a full stdout pipe) and its output.
pub fn sydra_with_input(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    // A child that refuses early closes its end: ignore EPIPE.
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// One raw HTTP/1.1 request; the status and the body.
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Decode chunked framing.
        let mut plain = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + body[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let n =
                usize::from_str_radix(std::str::from_utf8(&body[at..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if n == 0 {
                break;
            }
            plain.extend_from_slice(&body[line_end + 2..line_end + 2 + n]);
            at = line_end + 2 + n + 2;
        }
        body = plain;
    }
    (status, body)
}
