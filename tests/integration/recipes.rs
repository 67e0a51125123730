//! The README's database recipe, for real: a PostgreSQL server from Debian's packages (started
//! here, on a socket in the test's directory), a database dumped through
//! `backup --stdin-from-command -- pg_dump`, restored into a second, fresh server, and compared.
//! A failing dump writes no snapshot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::util::assert_ok;
use super::util::{Fixture, have_root, sh};

/// PostgreSQL's programs (the newest installed version).
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL is not installed (apt-get install postgresql; docs/packages.sh test does)",
        )
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("no PostgreSQL server version found")
}

/// A PostgreSQL server of our own, stopped on drop.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    port: u16,
}

impl Server {
    fn start(dir: &Path, name: &str, port: u16) -> Server {
        let bin = pg_bin();
        let data = dir.join(name);
        let socket = dir.join(format!("{name}-socket"));
        for d in [&data, &socket] {
            fs::create_dir(d).unwrap();
            sh(&format!("chown postgres: '{}'", d.display()));
        }
        sh(&format!(
            "runuser -u postgres -- '{}' -D '{}' --auth=trust -U postgres >/dev/null",
            bin.join("initdb").display(),
            data.display()
        ));
        sh(&format!(
            "runuser -u postgres -- '{}' -D '{}' -l '{}/server.log' -w -o \
             \"-c listen_addresses='' -k '{}' -p {port}\" start >/dev/null",
            bin.join("pg_ctl").display(),
            data.display(),
            data.display(),
            socket.display()
        ));
        Server {
            bin,
            data,
            socket,
            port,
        }
    }

    /// A command of PostgreSQL's, as the postgres user, connected to this server.
    fn cmd(&self, program: &str, args: &str) -> String {
        format!(
            "runuser -u postgres -- '{}' -h '{}' -p {} -U postgres {args}",
            self.bin.join(program).display(),
            self.socket.display(),
            self.port
        )
    }

    fn sql(&self, db: &str, sql: &str) {
        sh(&self.cmd(
            "psql",
            &format!("-q -v ON_ERROR_STOP=1 -d {db} -c \"{sql}\""),
        ));
    }

    /// A plain dump of `db`, without the random key of its `\restrict` lines (pg_dump
    /// 15.14 and later), so that two dumps of equal databases are equal.
    fn dump(&self, db: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(self.cmd("pg_dump", db))
            .output()
            .unwrap();
        assert_ok(&out);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "runuser -u postgres -- '{}' -D '{}' -m fast -w stop >/dev/null 2>&1",
                self.bin.join("pg_ctl").display(),
                self.data.display()
            ))
            .status();
    }
}

#[test]
fn pg_dump_through_stdin_from_command_restores_into_a_fresh_server() {
    if !have_root("pg_dump_through_stdin_from_command_restores_into_a_fresh_server (runs postgres)")
    {
        return;
    }
    let f = Fixture::new();
    // PostgreSQL runs as its own user: it must reach the test's directory.
    sh(&format!("chmod 755 '{}'", f.dir.path().display()));
    let port = 20_000 + u16::try_from(std::process::id() % 20_000).unwrap();
    let first = Server::start(f.dir.path(), "pg-first", port);
    first.sql("postgres", "CREATE DATABASE appdb");
    first.sql(
        "appdb",
        "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, \
         amount numeric(12,2), placed timestamptz, details jsonb, blob bytea); \
         INSERT INTO orders (customer, amount, placed, details, blob) \
         SELECT 'customer ' || i, i * 1.25, '2026-01-01'::timestamptz + i * interval '1 minute', \
         jsonb_build_object('n', i, 'tags', jsonb_build_array('a', i % 7)), \
         decode(md5(i::text), 'hex') FROM generate_series(1, 20000) i; \
         CREATE INDEX ON orders (customer); \
         CREATE VIEW big AS SELECT * FROM orders WHERE amount > 100",
    );

    // The recipe: chronofs runs the dump and keeps its output as one file.
    let dump = first.cmd("pg_dump", "appdb");
    f.ok(&[
        "backup",
        "--stdin-from-command",
        "--stdin-name",
        "appdb.sql",
        "--",
        "sh",
        "-c",
        &dump,
    ]);
    // A dump that fails writes no snapshot.
    let failing = first.cmd("pg_dump", "no_such_database");
    let err = f.fails(
        &[
            "backup",
            "--stdin-from-command",
            "--stdin-name",
            "other.sql",
            "--",
            "sh",
            "-c",
            &failing,
        ],
        1,
    );
    assert!(err.contains("failed"), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&f.ok(&["snapshots", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Restore the dump and load it into a fresh server.
    let target = f.path("restored");
    f.ok(&[
        "restore",
        "latest:/appdb.sql",
        "--target",
        target.to_str().unwrap(),
    ]);
    let second = Server::start(f.dir.path(), "pg-second", port + 1);
    second.sql("postgres", "CREATE DATABASE appdb");
    sh(&format!(
        "{} < '{}' >/dev/null",
        second.cmd("psql", "-q -v ON_ERROR_STOP=1 -d appdb"),
        target.join("appdb.sql").display()
    ));
    // The same database: the same dump, byte for byte.
    let (a, b) = (first.dump("appdb"), second.dump("appdb"));
    assert!(a.len() > 1 << 20, "a real dump: {} bytes", a.len());
    if a != b {
        fs::write(f.path("a.sql"), &a).unwrap();
        fs::write(f.path("b.sql"), &b).unwrap();
        let out = Command::new("diff")
            .arg(f.path("a.sql"))
            .arg(f.path("b.sql"))
            .output()
            .unwrap();
        let diff: String = String::from_utf8_lossy(&out.stdout)
            .chars()
            .take(2000)
            .collect();
        panic!("the restored database differs from the original:\n{diff}");
    }
}
