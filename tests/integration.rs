//! One integration test binary (one link step); each module tests one area by running the real
//! `chronofs` binary on real temporary directories.

mod integration {
    mod backup_behaviour;
    mod bad_input;
    mod consistent;
    mod corruption;
    mod craft;
    mod crash;
    mod encryption;
    mod exit_codes;
    mod fixtures;
    mod fleet;
    mod fuzz;
    mod history;
    mod hostile;
    mod hostile_repos;
    mod hostile_sealed;
    mod images;
    mod ingest;
    mod local_index;
    mod maintain;
    mod mount;
    mod mount_inodes;
    mod mount_kernel;
    mod mount_long;
    mod mount_xattrs;
    mod operations;
    mod privacy;
    mod progress;
    mod prune_beside;
    mod readme_promises;
    mod recipes;
    mod roundtrip;
    mod s3;
    mod s3_faults;
    mod selection;
    mod snapshot_catalog;
    mod snapshot_sets;
    mod soak;
    mod source_trace;
    mod util;
    mod vfs;
}
