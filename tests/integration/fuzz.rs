//! Fuzzing of every decoder of repository bytes, on the stable toolchain: a mutation fuzzer
//! seeded with valid encodings of each kind, run for a bounded time (CHRONOFS_FUZZ_SECONDS,
//! 20 s by default, shared by the targets). Mutations flip bits, set interesting values,
//! splice in huge LEB128 varints (counts of 2^60), cut, repeat and insert bytes; for files in
//! an envelope the payload is mutated and the envelope sealed again, so the bytes get past the
//! checksum and into the decoder proper. Every decoder must return, not panic; a decoded value
//! must pass its own validation. A failure prints the seed and the input (hex) to reproduce it
//! (CHRONOFS_FUZZ_SEED).

use std::time::{Duration, Instant};

use std::sync::OnceLock;

use chronofs::crypto::{Crypto, Scheme};
use chronofs::format::bytes::ByteString;
use chronofs::format::codec::{self, Cipher, FileKind, PayloadCipher, Plain};
use chronofs::format::config::{ChunkerParams, Config};
use chronofs::format::crypto::{KEM_CIPHERTEXT_LEN, MasterKey, SessionKey};
use chronofs::format::id::{BlobId, ChunkId, Id, IndexId, PackId, SnapshotId, TreeId};
use chronofs::format::index::{Index, IndexedPack};
use chronofs::format::keyfile::{Kdf, KeyFile};
use chronofs::format::lock::Lock;
use chronofs::format::pack::{self, BlobKind, Compression, PackedBlob};
use chronofs::format::snapshot::{Contents, Snapshot, Summary};
use chronofs::format::tree::{Device, Node, NodeKind, Piece, Timestamp, Tree, Xattr};
use chronofs::repo::blob;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// LEB128 of `v`, as postcard writes lengths and counts.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn mutate(input: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)];
            }
            2 => {
                let huge = [1 << 60, u64::MAX, 1 << 32, u64::from(u32::MAX), 1 << 24];
                let v = varint(huge[rng.below(huge.len())]);
                let at = rng.below(len + 1);
                let cut = rng.below(3).min(len - at);
                input.splice(at..at + cut, v);
            }
            3 => input.truncate(rng.below(len + 1)),
            4 if len > 0 => {
                let from = rng.below(len);
                let n = rng.below(len - from).min(64) + 1;
                let block: Vec<u8> = input[from..from + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, block);
            }
            5 if len > 0 => {
                let from = rng.below(len);
                let n = rng.below(len - from).min(32) + 1;
                input.drain(from..from + n);
            }
            6 => {
                let at = rng.below(len + 1);
                let noise: Vec<u8> = (0..rng.below(16) + 1).map(|_| rng.next() as u8).collect();
                input.splice(at..at, noise);
            }
            _ if len > 8 => {
                // Overwrite a little-endian length field with a huge value.
                let at = rng.below(len - 7);
                input[at..at + 8].copy_from_slice(&(1u64 << (32 + rng.below(31))).to_le_bytes());
            }
            _ => input.push(rng.next() as u8),
        }
    }
}

/// The key the encrypted targets are sealed with.
fn key() -> &'static Crypto {
    static KEY: OnceLock<Crypto> = OnceLock::new();
    KEY.get_or_init(|| Crypto::new(&chronofs::crypto::generate_master_key().unwrap()).unwrap())
}

/// Re-seals a mutated payload in a valid envelope of `kind`, sealed by `cipher`: so mutations
/// of an encrypted file's plaintext reach the decoder behind the authentication.
fn envelope(kind: FileKind, payload: &[u8], cipher: &dyn PayloadCipher) -> Vec<u8> {
    let mut out = codec::seal_with(kind, &(), cipher).unwrap();
    out.truncate(codec::HEADER_LEN);
    let stored = cipher
        .seal_payload(kind, &out[..codec::BOUND_HEADER_LEN], payload.to_vec())
        .unwrap();
    out[16..24].copy_from_slice(&(stored.len() as u64).to_le_bytes());
    out[24..56].copy_from_slice(blake3::hash(&stored).as_bytes());
    out.extend_from_slice(&stored);
    out
}

/// The plaintext payload of an envelope `cipher` sealed.
fn opened(kind: FileKind, sealed: &[u8], cipher: &dyn PayloadCipher) -> Vec<u8> {
    cipher
        .open_payload(
            kind,
            &sealed[..codec::BOUND_HEADER_LEN],
            &sealed[codec::HEADER_LEN..],
        )
        .unwrap()
}

fn id(n: u8) -> Id {
    Id::hash(&[n])
}

fn sample_node(name: &str, kind: NodeKind, size: u64) -> Node {
    Node {
        name: ByteString::from(name),
        kind,
        mode: 0o4755,
        uid: 1000,
        gid: 100,
        user: Some("alice".into()),
        group: None,
        size,
        mtime: Timestamp { secs: -3, nanos: 5 },
        atime: Timestamp::default(),
        ctime: Timestamp {
            secs: 1 << 40,
            nanos: 999_999_999,
        },
        dev: 1,
        ino: 2,
        nlink: 2,
        xattrs: vec![Xattr {
            name: ByteString::from("user.a"),
            value: ByteString(vec![0, 255]),
        }],
    }
}

fn sample_tree() -> Tree {
    Tree {
        entries: vec![
            sample_node("b", NodeKind::BlockDevice(Device { major: 8, minor: 1 }), 0),
            sample_node(
                "d",
                NodeKind::Dir {
                    subtree: TreeId(id(1)),
                },
                0,
            ),
            sample_node(
                "f",
                NodeKind::File {
                    content: vec![
                        Piece::Data {
                            id: ChunkId(id(2)),
                            len: 10,
                        },
                        Piece::Hole { len: 1 << 33 },
                    ],
                },
                10 + (1 << 33),
            ),
            sample_node(
                "l",
                NodeKind::Symlink {
                    target: ByteString::from("../x"),
                },
                4,
            ),
            sample_node("p", NodeKind::Fifo, 0),
        ],
    }
}

/// [`sample_blobs`] as an encrypted repository stores them (plus the cipher's overhead).
fn sealed_blobs() -> Vec<PackedBlob> {
    let mut blobs = sample_blobs();
    let mut offset = 16;
    for b in &mut blobs {
        b.stored_len += chronofs::format::crypto::BLOB_OVERHEAD;
        b.offset = offset;
        offset += b.stored_len;
    }
    blobs
}

fn sample_blobs() -> Vec<PackedBlob> {
    vec![
        PackedBlob {
            id: BlobId(id(3)),
            kind: BlobKind::Data,
            offset: 16,
            stored_len: 5,
            raw_len: 9,
            compression: Compression::Zstd,
        },
        PackedBlob {
            id: BlobId(id(4)),
            kind: BlobKind::Data,
            offset: 21,
            stored_len: 4,
            raw_len: 4,
            compression: Compression::None,
        },
    ]
}

/// One decoder under test: its seeds, whether its bytes live in an envelope (of which kind),
/// and the call.
struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    envelope: Option<FileKind>,
    /// Sealed with [`key`] (format version 2) rather than plaintext.
    sealed: bool,
    decode: fn(&[u8]),
}

fn targets() -> Vec<Target> {
    let snapshot = Snapshot {
        time_ns: 1_790_000_000_000_000_000,
        hostname: "host".into(),
        username: "user".into(),
        paths: vec![ByteString::from("/home"), ByteString(vec![0xff])],
        tags: vec!["t".into()],
        root: TreeId(id(5)),
        parent: Some(SnapshotId(id(6))),
        program_version: "1".into(),
        stdin: false,
        summary: Summary {
            files_new: 3,
            ..Summary::default()
        },
        contents: Some(Contents {
            xattr_entries: 2,
            acl_entries: 1,
        }),
        commit: Some(chronofs::format::snapshot::Commit {
            writer: chronofs::format::id::WriterId(id(10)),
            basis: 4,
        }),
        consistency: Some(chronofs::format::snapshot::Consistency {
            method: "freeze".into(),
            subjects: vec!["/mnt/data (frozen)".into()],
            held_ns: 1_500_000_000,
        }),
    };
    let index = Index {
        packs: vec![IndexedPack {
            id: PackId(id(7)),
            len: 100,
            blobs: sample_blobs(),
            session: 0,
        }],
        supersedes: vec![IndexId(id(8))],
        sessions: vec![],
        prune: None,
    };
    // What a prune writes: the same with its state (index versions 3 and 4).
    let pruned = |i: &Index| Index {
        prune: Some(chronofs::format::index::PruneState {
            epoch: 5,
            condemned: vec![chronofs::format::index::Condemned {
                pack: PackId(id(11)),
                epoch: 5,
            }],
        }),
        ..i.clone()
    };
    let session = SessionKey(vec![7; KEM_CIPHERTEXT_LEN]);
    let index_v2 = Index {
        sessions: vec![session.clone()],
        packs: vec![IndexedPack {
            blobs: sealed_blobs(),
            ..index.packs[0].clone()
        }],
        ..index.clone()
    };
    let master = chronofs::crypto::generate_master_key().unwrap();
    let key_file = KeyFile {
        created_ns: 1,
        hostname: "h".into(),
        username: "u".into(),
        backup_only: false,
        kdf: Kdf {
            memory_kib: 64,
            time: 1,
            lanes: 1,
        },
        salt: [1; 32],
        nonce: [2; 12],
        wrapped: vec![3; 1400],
        sealed_maker: None,
    };
    let config = Config {
        repo_id: id(9),
        chunker: ChunkerParams::default(),
        compression_level: 3,
        pack_target_size: 32 << 20,
        cipher: "none".into(),
        append_only: false,
        created_ns: 0,
    };
    let lock = Lock {
        mode: chronofs::format::lock::LockMode::Maintenance,
        writer: chronofs::format::id::WriterId(id(12)),
        basis: Some(3),
        hostname: "h".into(),
        username: "u".into(),
        pid: 1,
        process_start: 2,
        time_ns: 3,
        purpose: "prune".into(),
    };
    let payload = |sealed: Vec<u8>| sealed[codec::HEADER_LEN..].to_vec();
    let trailer = pack::encode_trailer(&sample_blobs(), None, &Plain).unwrap();
    let trailer_v2 = pack::encode_trailer(&sealed_blobs(), Some(&session), key()).unwrap();
    let blob_seed = {
        let p = blob::prepare(
            &Scheme::Plain,
            BlobKind::Data,
            &b"compressible ".repeat(40),
            3,
        )
        .unwrap();
        let mut seed = vec![u8::from(p.compression == Compression::Zstd)];
        seed.extend_from_slice(&p.raw_len.to_le_bytes());
        seed.extend_from_slice(&p.stored);
        seed
    };
    vec![
        Target {
            name: "snapshot",
            seeds: vec![payload(snapshot.encode(&Plain).unwrap())],
            envelope: Some(FileKind::Snapshot),
            sealed: false,
            decode: |b| {
                let _ = Snapshot::decode(b, &Plain);
            },
        },
        Target {
            name: "snapshot (encrypted)",
            seeds: vec![opened(
                FileKind::Snapshot,
                &snapshot.encode(key()).unwrap(),
                key(),
            )],
            envelope: Some(FileKind::Snapshot),
            sealed: true,
            decode: |b| {
                let _ = Snapshot::decode(b, key());
            },
        },
        Target {
            name: "index",
            seeds: vec![
                payload(index.encode(&Plain).unwrap()),
                payload(pruned(&index).encode(&Plain).unwrap()),
            ],
            envelope: Some(FileKind::Index),
            sealed: false,
            decode: |b| {
                let _ = Index::decode(b, &Plain);
            },
        },
        Target {
            name: "index (encrypted)",
            seeds: vec![
                opened(FileKind::Index, &index_v2.encode(key()).unwrap(), key()),
                opened(
                    FileKind::Index,
                    &pruned(&index_v2).encode(key()).unwrap(),
                    key(),
                ),
            ],
            envelope: Some(FileKind::Index),
            sealed: true,
            decode: |b| {
                let _ = Index::decode(b, key());
            },
        },
        Target {
            name: "key file",
            seeds: vec![
                payload(key_file.encode().unwrap()),
                payload(
                    KeyFile {
                        hostname: String::new(),
                        username: String::new(),
                        sealed_maker: Some(vec![4; 40]),
                        ..key_file.clone()
                    }
                    .encode()
                    .unwrap(),
                ),
            ],
            envelope: Some(FileKind::Key),
            sealed: false,
            decode: |b| {
                let _ = KeyFile::decode(b);
            },
        },
        Target {
            name: "master key",
            seeds: vec![master.encode().unwrap()],
            envelope: None,
            sealed: false,
            decode: |b| {
                if let Ok(k) = MasterKey::decode(b) {
                    let _ = Crypto::new(&k);
                }
            },
        },
        Target {
            name: "config",
            seeds: vec![payload(config.encode().unwrap())],
            envelope: Some(FileKind::Config),
            sealed: false,
            decode: |b| {
                if let Ok(c) = Config::decode(b) {
                    c.validate().unwrap();
                }
            },
        },
        Target {
            name: "lock",
            seeds: vec![payload(lock.encode(&Plain).unwrap())],
            envelope: Some(FileKind::Lock),
            sealed: false,
            decode: |b| {
                let _ = Lock::decode(b, &Plain);
            },
        },
        Target {
            name: "fence",
            seeds: vec![payload(
                chronofs::format::fence::Fence {
                    time_ns: 1,
                    revoked: vec![(chronofs::format::id::WriterId(id(13)), "backup".into())],
                    accepted: Some(vec![SnapshotId(id(14))]),
                }
                .encode(&Plain)
                .unwrap(),
            )],
            envelope: Some(FileKind::Fence),
            sealed: false,
            decode: |b| {
                let _ = chronofs::format::fence::Fence::decode(b, &Plain);
            },
        },
        Target {
            name: "run record",
            seeds: vec![payload(
                chronofs::format::run::Run {
                    job: chronofs::format::run::Job::CheckReadData,
                    hostname: "h".into(),
                    started_ns: 1,
                    finished_ns: 2,
                    ok: true,
                    outcome: "no errors".into(),
                }
                .encode(&Plain)
                .unwrap(),
            )],
            envelope: Some(FileKind::Run),
            sealed: false,
            decode: |b| {
                let _ = chronofs::format::run::Run::decode(b, &Plain);
            },
        },
        Target {
            name: "pack trailer",
            seeds: vec![payload(
                trailer[..trailer.len() - pack::PACK_FOOTER_LEN].to_vec(),
            )],
            envelope: Some(FileKind::PackTrailer),
            sealed: false,
            decode: |b| {
                let _ = pack::decode_trailer(b, 1 << 20, &Plain);
            },
        },
        Target {
            name: "pack trailer (encrypted)",
            seeds: vec![opened(
                FileKind::PackTrailer,
                &trailer_v2[..trailer_v2.len() - pack::PACK_FOOTER_LEN],
                key(),
            )],
            envelope: Some(FileKind::PackTrailer),
            sealed: true,
            decode: |b| {
                let _ = pack::decode_trailer(b, 1 << 20, key());
            },
        },
        Target {
            name: "pack framing",
            seeds: vec![{
                let mut p = pack::header(Cipher::None, [0; 6]).to_vec();
                p.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
                p.extend_from_slice(&trailer);
                p
            }],
            envelope: None,
            sealed: false,
            decode: |b| {
                let _ = pack::check_header(b);
                if b.len() >= pack::PACK_FOOTER_LEN
                    && let Ok(t) =
                        pack::trailer_len(&b[b.len() - pack::PACK_FOOTER_LEN..], b.len() as u64)
                {
                    let end = b.len() - pack::PACK_FOOTER_LEN;
                    let _ = pack::decode_trailer(&b[end - t..end], (end - t) as u64, &Plain);
                }
            },
        },
        Target {
            name: "tree",
            seeds: vec![sample_tree().encode().unwrap()],
            envelope: None,
            sealed: false,
            decode: |b| {
                if let Ok(t) = Tree::decode(b) {
                    t.validate().unwrap();
                }
            },
        },
        Target {
            name: "blob",
            seeds: vec![blob_seed],
            envelope: None,
            sealed: false,
            decode: |b| {
                // [compression][raw_len u32][stored…], raw_len within a data chunk's limit.
                if b.len() < 5 {
                    return;
                }
                let compression = if b[0] & 1 == 1 {
                    Compression::Zstd
                } else {
                    Compression::None
                };
                let raw_len =
                    u32::from_le_bytes([b[1], b[2], b[3], b[4]]) % (pack::MAX_CHUNK_LEN + 1);
                let id = BlobId(Id::hash(&b[5..]));
                let at = blob::At {
                    kind: BlobKind::Data,
                    session: None,
                    raw_len,
                    compression,
                };
                let _ = blob::unpack(&Scheme::Plain, &id, b[5..].to_vec(), &at);
            },
        },
    ]
}

#[test]
fn every_decoder_survives_mutated_input() {
    let seconds: u64 = std::env::var("CHRONOFS_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CHRONOFS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let targets = targets();
    let per_target = Duration::from_secs(seconds) / targets.len() as u32;
    let mut rng = Rng(seed);
    let mut total = 0u64;
    for t in &targets {
        let started = Instant::now();
        let mut corpus: Vec<Vec<u8>> = t.seeds.clone();
        let mut runs = 0u64;
        while started.elapsed() < per_target || runs < 1000 {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut input, &mut rng);
            let cipher: &dyn PayloadCipher = if t.sealed { key() } else { &Plain };
            let bytes = match t.envelope {
                Some(kind) if rng.below(8) != 0 => envelope(kind, &input, cipher),
                Some(kind) => {
                    // Now and then the envelope itself is damaged too.
                    let mut raw = envelope(kind, &input, cipher);
                    mutate(&mut raw, &mut rng);
                    raw
                }
                None => input.clone(),
            };
            let call = std::panic::catch_unwind(|| (t.decode)(&bytes));
            assert!(
                call.is_ok(),
                "decoder `{}` panicked; reproduce with CHRONOFS_FUZZ_SEED={seed}; input: {}",
                t.name,
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            // Keep a few inputs that still decode far enough to be interesting.
            if corpus.len() < 64 && rng.below(16) == 0 {
                corpus.push(input);
            }
            runs += 1;
        }
        total += runs;
        eprintln!("fuzz {}: {runs} inputs", t.name);
    }
    eprintln!("fuzz: {total} inputs in {seconds} s (seed {seed})");
}
