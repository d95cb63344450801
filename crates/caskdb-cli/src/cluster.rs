//! `caskdb cluster status`: the replicated group as one node knows it, then each member's own
//! view (role, term, applied index), as a table. It talks RESP to the nodes' client ports.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;

/// How long one node may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// `INFO replication` of the node at `addr`, as its `field:value` lines.
fn info(addr: &str, password: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
    let sock: std::net::SocketAddr = addr.parse().with_context(|| format!("address {addr}"))?;
    let mut s = TcpStream::connect_timeout(&sock, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let mut r = BufReader::new(s.try_clone()?);
    if let Some(p) = password {
        s.write_all(&request(&["AUTH", p]))?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        anyhow::ensure!(line.starts_with('+'), "AUTH: {}", line.trim_end());
    }
    s.write_all(&request(&["INFO", "replication"]))?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    let len: usize = line
        .strip_prefix('$')
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("unexpected reply: {}", line.trim_end()))?;
    let mut body = vec![0; len + 2];
    r.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body[..len])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn field<'a>(info: &'a [(String, String)], name: &str) -> &'a str {
    info.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Prints the group that the node at `addr` belongs to.
///
/// # Errors
/// The node cannot be reached, or is not in a replicated group.
pub fn status(addr: &str, password: Option<&str>, out: &mut impl Write) -> anyhow::Result<()> {
    let first = info(addr, password).with_context(|| format!("asking {addr}"))?;
    let members: Vec<(String, String)> = first
        .iter()
        .filter_map(|(k, v)| {
            let id = k.strip_prefix("raft_member")?;
            let client = v.strip_prefix("client=")?.split(',').next()?;
            Some((id.to_string(), client.to_string()))
        })
        .collect();
    anyhow::ensure!(
        !members.is_empty(),
        "{addr} is not in a replicated group (no --node-id/--cluster)"
    );
    writeln!(
        out,
        "{:<4} {:<22} {:<8} {:>6} {:>10} {:>10} {:<6}",
        "id", "address", "role", "term", "applied", "last log", "leader"
    )?;
    for (id, client) in members {
        match info(&client, password) {
            Ok(i) => {
                let role = match field(&i, "role") {
                    "master" => "leader",
                    _ if field(&i, "raft_leader_id").is_empty() => "no leader",
                    _ => "follower",
                };
                writeln!(
                    out,
                    "{:<4} {:<22} {:<8} {:>6} {:>10} {:>10} {:<6}",
                    id,
                    client,
                    role,
                    field(&i, "raft_term"),
                    field(&i, "raft_applied_index"),
                    field(&i, "raft_last_log_index"),
                    field(&i, "raft_leader_id"),
                )?;
            }
            Err(e) => writeln!(out, "{id:<4} {client:<22} unreachable ({e})")?,
        }
    }
    Ok(())
}
