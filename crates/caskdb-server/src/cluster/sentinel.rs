//! SENTINEL on every node of a group, so that Sentinel-aware clients (redis-py `Sentinel`,
//! ioredis `sentinels:`) find the leader and follow failovers: the group is one monitored
//! master named `caskdb`, the leader is its master, the other nodes its replicas, and every
//! node is also one of its sentinels. (A single node has no SENTINEL command, as Redis.)

use bytes::Bytes;

use super::{Cluster, Role};
use crate::frame::Frame;

/// The name clients give the group's master.
pub const MASTER_NAME: &str = "caskdb";

fn split(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').unwrap_or((addr, "0"))
}

fn fields(pairs: Vec<(&str, String)>) -> Frame {
    Frame::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Frame::bulk(k), Frame::Bulk(Bytes::from(v))))
            .collect(),
    )
}

/// SENTINEL `args[1..]`.
pub fn reply(cluster: &Cluster, args: &[Bytes]) -> Frame {
    let Some(sub) = args.get(1) else {
        return Frame::err("wrong number of arguments for 'sentinel' command");
    };
    let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
    let name_ok = || {
        args.get(2)
            .is_some_and(|n| n.as_ref() == MASTER_NAME.as_bytes())
    };
    let leader = match cluster.role() {
        Role::Leader => Some(cluster.id),
        Role::Follower(l) => Some(l),
        Role::Unknown => None,
    };
    match (sub.as_str(), args.len()) {
        ("get-master-addr-by-name", 3) => {
            match leader
                .and_then(|l| cluster.client_addr(l))
                .filter(|_| name_ok())
            {
                Some(addr) => {
                    let (ip, port) = split(&addr);
                    Frame::Array(vec![
                        Frame::Bulk(Bytes::copy_from_slice(ip.as_bytes())),
                        Frame::Bulk(Bytes::copy_from_slice(port.as_bytes())),
                    ])
                }
                None => Frame::NullArray,
            }
        }
        ("masters", 2) => Frame::Array(master(cluster, leader).into_iter().collect()),
        ("master", 3) if name_ok() => {
            master(cluster, leader).unwrap_or_else(|| Frame::err("No such master with that name"))
        }
        ("replicas" | "slaves", 3) if name_ok() => Frame::Array(
            cluster
                .members
                .iter()
                .filter(|(id, _)| Some(**id) != leader)
                .map(|(id, m)| {
                    let (ip, port) = split(&m.client);
                    let master = leader.and_then(|l| cluster.client_addr(l));
                    let (mip, mport) = master.as_deref().map_or(("?", "0"), split);
                    fields(vec![
                        ("name", m.client.clone()),
                        ("ip", ip.into()),
                        ("port", port.into()),
                        ("runid", format!("node-{id}")),
                        ("flags", "slave".into()),
                        (
                            "master-link-status",
                            if leader.is_some() { "ok" } else { "err" }.into(),
                        ),
                        ("master-host", mip.into()),
                        ("master-port", mport.into()),
                        ("slave-priority", "100".into()),
                    ])
                })
                .collect(),
        ),
        ("sentinels", 3) if name_ok() => Frame::Array(
            cluster
                .members
                .iter()
                .filter(|(id, _)| **id != cluster.id)
                .map(|(id, m)| {
                    let (ip, port) = split(&m.client);
                    fields(vec![
                        ("name", format!("node-{id}")),
                        ("ip", ip.into()),
                        ("port", port.into()),
                        ("runid", format!("node-{id}")),
                        ("flags", "sentinel".into()),
                    ])
                })
                .collect(),
        ),
        ("master" | "replicas" | "slaves" | "sentinels", 3) => {
            Frame::err("No such master with that name")
        }
        ("myid", 2) => Frame::Bulk(Bytes::from(format!("node-{}", cluster.id))),
        _ => Frame::err(format!(
            "Unknown sentinel subcommand '{}'",
            String::from_utf8_lossy(&args[1])
        )),
    }
}

/// SENTINEL MASTER's fields for the group; `None` while no leader is known.
fn master(cluster: &Cluster, leader: Option<u64>) -> Option<Frame> {
    let leader = leader?;
    let addr = cluster.client_addr(leader)?;
    let (ip, port) = split(&addr);
    let n = cluster.members.len();
    Some(fields(vec![
        ("name", MASTER_NAME.into()),
        ("ip", ip.into()),
        ("port", port.into()),
        ("runid", format!("node-{leader}")),
        ("flags", "master".into()),
        ("num-slaves", (n - 1).to_string()),
        ("num-other-sentinels", (n - 1).to_string()),
        ("quorum", (n / 2 + 1).to_string()),
        ("config-epoch", cluster.metrics().current_term.to_string()),
    ]))
}
