//! What a Raft entry carries: the effects of one engine transaction (puts with their expiry
//! times, deletions), not the command that made them. Every node applies the same effects, so
//! INCR, SPOP, scripts and expiry replicate deterministically: the leader decided them.

use bytes::Bytes;

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// `key` holds `value` from now on, until `expire_at` (milliseconds since the Unix epoch)
    /// if set.
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// When the key expires, if it does.
        expire_at: Option<u64>,
    },
    /// `key` is gone.
    Delete {
        /// The key.
        key: Bytes,
    },
}

/// The writes of one engine transaction, applied on every node as one transaction (all or
/// none, one record in the data files).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Effects {
    /// The writes, in the order they were made.
    pub ops: Vec<Op>,
    /// What the writer wants every node to have when it applies these writes (the server: the
    /// keyspace events they caused), handed to [`StateMachine::on_apply`]'s hook; opaque here.
    /// Effects merged into one entry have their notes concatenated.
    ///
    /// [`StateMachine::on_apply`]: crate::StateMachine::on_apply
    #[serde(default)]
    pub notes: Bytes,
}

impl Effects {
    /// The effects of an engine transaction, from its
    /// [`staged`](caskdb::Transaction::staged) writes.
    pub fn from_staged(staged: Vec<caskdb::StagedWrite>) -> Effects {
        let ops = staged
            .into_iter()
            .map(|(key, write)| match write {
                Some((value, expire_at)) => Op::Put {
                    key,
                    value,
                    expire_at,
                },
                None => Op::Delete { key },
            })
            .collect();
        Effects {
            ops,
            notes: Bytes::new(),
        }
    }

    /// The keys these writes touch, in order.
    pub fn keys(&self) -> Vec<Bytes> {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put { key, .. } | Op::Delete { key } => key.clone(),
            })
            .collect()
    }

    /// The bytes of their keys and values.
    pub fn bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value, .. } => key.len() + value.len(),
                Op::Delete { key } => key.len(),
            })
            .sum()
    }

    /// Makes these writes in `tx`.
    ///
    /// # Errors
    /// The engine's, for a key or value it refuses or a failed read.
    pub fn apply_to(&self, tx: &mut caskdb::Transaction<'_>) -> caskdb::Result<()> {
        for op in &self.ops {
            match op {
                Op::Put {
                    key,
                    value,
                    expire_at: None,
                } => tx.put(key, value)?,
                Op::Put {
                    key,
                    value,
                    expire_at: Some(at),
                } => tx.put_expiring_at(key, value, *at)?,
                Op::Delete { key } => {
                    tx.delete(key)?;
                }
            }
        }
        Ok(())
    }
}
