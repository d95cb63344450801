//! The points of a merge at which a test can stop it, as a crash would (see
//! `Options::merge_hook`, behind the `testing` feature).

/// A step of a merge, in the order a merge reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeStep {
    /// The active file was sealed and the output ids reserved.
    Started,
    /// A chunk of records was copied into the current output file.
    Copied,
    /// An output file was trimmed and fsynced under its temporary name.
    OutputSynced,
    /// The output file was renamed into place and its hint written.
    OutputInPlace,
    /// A chunk of index entries was switched to an output file.
    Switched,
    /// One old file was deleted.
    Deleted,
    /// Everything is done.
    Finished,
}

#[cfg(feature = "testing")]
impl MergeStep {
    /// Every step, in the order a merge reaches them.
    pub const ALL: [MergeStep; 7] = [
        MergeStep::Started,
        MergeStep::Copied,
        MergeStep::OutputSynced,
        MergeStep::OutputInPlace,
        MergeStep::Switched,
        MergeStep::Deleted,
        MergeStep::Finished,
    ];
}
