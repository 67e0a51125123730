//! The names of a hardlinked file as the walk meets them: the first name's content is read
//! once and shared by every later name of the same inode, as long as the inode has not
//! changed in between (see [`files`](super::files)).

use crate::format::tree::{Piece, Timestamp};

use super::pipeline::Slot;

/// What identifies one file among the names that share its inode.
pub(super) type Version = (u64, Timestamp, Timestamp);

/// Content of a hardlinked file, by (dev, ino): read once, shared by every name.
pub(super) struct Link {
    /// Size, mtime and ctime of the first name; a name that differs is another file.
    pub(super) version: Version,
    pub(super) state: LinkState,
}

pub(super) enum LinkState {
    /// Read (or reused); every further name gets this.
    Known(Vec<Piece>),
    /// Being read; these names wait for it (slot, whether the parent had a file there).
    Reading(Vec<(Slot, bool)>),
}
