//! Who is in the group: members' Raft ids (a node id and an incarnation), their addresses,
//! and the leader's side of a membership change (a node joining, or replacing its own wiped
//! predecessor; a node removed).
//!
//! A node's Raft id is its node id (`--node-id`) in the low 32 bits and its incarnation above:
//! a node whose directory was wiped has lost its vote and its log, so it comes back as a new
//! member (the next incarnation) that replaces the old one, never as the old one.

use std::collections::BTreeSet;

use openraft::{BasicNode, Raft};

use crate::{NodeId, TypeConfig};

/// The Raft id of incarnation `incarnation` of node `node`.
pub fn raft_id(node: u64, incarnation: u64) -> NodeId {
    (incarnation << 32) | (node & 0xffff_ffff)
}

/// The node id (`--node-id`) of Raft id `id`.
pub fn node_of(id: NodeId) -> u64 {
    id & 0xffff_ffff
}

/// The incarnation of Raft id `id`.
pub fn incarnation_of(id: NodeId) -> u64 {
    id >> 32
}

/// Where peers reach a member: the first word of its address (`bus [client]`).
pub fn bus_of(addr: &str) -> &str {
    addr.split_whitespace().next().unwrap_or(addr)
}

/// Where clients reach a member, if its address names it (`bus client`).
pub fn client_of(addr: &str) -> Option<&str> {
    addr.split_whitespace().nth(1)
}

/// Serialises this process's membership changes (`add_voter`, `remove_node`).
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// On the leader: makes `id` (address `addr`) a learner, waits until it caught up (from a
/// snapshot if need be), then makes it a voter in place of `replaces`.
///
/// # Errors
/// openraft's, as text (this node does not lead, a change is already in progress…).
pub async fn add_voter(
    raft: &Raft<TypeConfig>,
    id: NodeId,
    addr: &str,
    replaces: &[NodeId],
) -> Result<(), String> {
    // One membership change at a time: two joins at once would each compute the voters
    // from the same old set, and the second change would undo the first.
    let _one = CHANGES.lock().await;
    tracing::info!(
        "adding node {} (incarnation {}) at {addr} as a learner",
        node_of(id),
        incarnation_of(id)
    );
    raft.add_learner(id, BasicNode::new(addr), true)
        .await
        .map_err(|e| e.to_string())?;
    let mut voters = voters(raft);
    for r in replaces {
        voters.remove(r);
    }
    voters.insert(id);
    raft.change_membership(voters, false)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        "node {} (incarnation {}) is a voter{}",
        node_of(id),
        incarnation_of(id),
        if replaces.is_empty() {
            String::new()
        } else {
            format!(", replacing {replaces:?}")
        }
    );
    Ok(())
}

/// On the leader: removes every incarnation of node `node` from the group.
///
/// # Errors
/// openraft's, as text; or the node is not a member.
pub async fn remove_node(raft: &Raft<TypeConfig>, node: u64) -> Result<(), String> {
    let _one = CHANGES.lock().await;
    let mut voters = voters(raft);
    let before = voters.len();
    voters.retain(|id| node_of(*id) != node);
    if voters.len() == before {
        return Err(format!("node {node} is not a voter of the group"));
    }
    if voters.is_empty() {
        return Err("the group cannot lose its last voter".into());
    }
    raft.change_membership(voters, false)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("node {node} removed from the group");
    Ok(())
}

/// The voters of the current membership.
pub fn voters(raft: &Raft<TypeConfig>) -> BTreeSet<NodeId> {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}
