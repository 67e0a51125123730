# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_chronofs_global_optspecs
    string join \n r/repo= q/quiet retry-lock= cache-dir= no-cache password-file= password-command= h/help V/version
end

function __fish_chronofs_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_chronofs_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_chronofs_using_subcommand
    set -l cmd (__fish_chronofs_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c chronofs -n "__fish_chronofs_needs_command" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_needs_command" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_needs_command" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_needs_command" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_needs_command" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_needs_command" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_needs_command" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chronofs -n "__fish_chronofs_needs_command" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "init" -d 'Create a new, empty repository'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "backup" -d 'Back up files and directories (or standard input) as a new snapshot'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "snapshots" -d 'List snapshots'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "ls" -d 'List the files in a snapshot'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "diff" -d 'Show what changed between two snapshots'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "versions" -d 'Show the versions of one path across snapshots'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "find" -d 'Find paths matching a pattern across snapshots'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "restore" -d 'Restore a snapshot, or a path inside one, to a directory'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "check" -d 'Verify the repository\'s integrity'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "cat" -d 'Print a repository object as JSON (for debugging)'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "mount" -d 'Mount the repository read-only: every snapshot a dated directory'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "umount" -d 'Unmount a mounted repository'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "forget" -d 'Remove snapshots by a retention policy (--keep-daily 7 ...) or by name'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "prune" -d 'Delete data no snapshot references, reclaiming space (runs beside backups)'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "copy" -d 'Copy snapshots to another repository (only the data it lacks)'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "unlock" -d 'Revoke and remove stale locks left by processes that are gone or stopped'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "append-only" -d 'Show or set append-only mode (forget and prune refuse while it is on)'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "status" -d 'Is the newest backup of every host recent enough, and did the last prune and checks succeed? (exit 0 yes, 1 no, 2 unreadable)'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "verify" -d 'Restore drill: restore a snapshot to a scratch directory and compare it with the snapshot'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "job" -d 'Run a backup job described by /etc/chronofs/NAME.conf (see chronofs-job(5))'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "key" -d 'Manage the passphrases (key files) of an encrypted repository'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "generate" -d 'Write the man pages or the shell completions (for packaging)'
complete -c chronofs -n "__fish_chronofs_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l compression-level -d 'zstd compression level for stored data (0 = no compression, 1-19)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l chunk-min -d 'Minimum chunk size in bytes' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l chunk-avg -d 'Average chunk size in bytes' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l chunk-max -d 'Maximum chunk size in bytes' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l pack-size -d 'Target pack file size in MiB' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l encryption -d 'Encrypt everything stored (the passphrase comes from CHRONOFS_PASSWORD, --password-file, --password-command, or is asked twice). `none` stores the backups in the clear' -r -f -a "aes256gcmsiv\t'AES-256-GCM-SIV with keyed ids, sessions sealed to an X-Wing key (format version 2)'
none\t'None: anyone who can read the repository reads the backups (format version 1)'"
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l copy-settings-from -d 'Take the chunker parameters and the id key of this encrypted repository, so that copies between the two keep their ids and deduplicate (its passphrase: the --from-password-* options, CHRONOFS_FROM_PASSWORD, or the new one)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l from-password-file -d 'Read the --copy-settings-from repository\'s passphrase from FILE' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l from-password-command -d 'Run CMD (with `sh -c`) for the --copy-settings-from repository\'s passphrase' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l kdf-memory -d 'Argon2id memory per guess (default 128M). Lower it only for tests or tiny machines' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l kdf-time -d 'Argon2id passes (default 3)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l append-only -d 'Make the repository append-only: forget and prune refuse (see README)'
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l group-readable -d 'Let the repository directory\'s group read the backups (directories 0750, files 0640), for a deliberate backup group; by default only the owner can (0700, 0600)'
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chronofs -n "__fish_chronofs_using_subcommand init" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l exclude -d 'Exclude entries matching GLOB (a pattern with `/` matches the absolute path, one without matches names at any depth). Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l exclude-file -d 'Read exclude patterns from FILE, one per line. Repeatable' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l consistent -d 'Make the sources hold still while they are read: `btrfs-snapshot` reads a read-only snapshot of each source\'s btrfs subvolume (deleted after); `freeze` freezes the file system mounted from each block device source while the device is read. The method is recorded in the snapshot' -r -f -a "btrfs-snapshot\t'A read-only btrfs snapshot of each source\'s subvolume, read in its place'
freeze\t'The file system on each block device source frozen while the device is read'"
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l freeze-timeout -d 'Longest time --consistent freeze keeps a file system frozen (writers wait meanwhile); past it the file system is thawed and no snapshot is written' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l tag -d 'Add a tag to the snapshot. Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l host -d 'Host name to record (default: this machine\'s)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l parent -d 'Compare against this snapshot instead of the newest one of the same host and paths' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l stdin-name -d 'File name for --stdin / --stdin-from-command content' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l read-concurrency -d 'Files read at once (more helps on disks that serve many requests in parallel; half of them, at least two, may be files of 1 MiB or more, each read in a buffer of twice the largest chunk: 8 MiB by default)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l time -d 'Record this time as the snapshot\'s time instead of now (importing old backups): RFC 3339 (2026-03-01T10:00:00Z), a dated name (2026-03-01T100000Z), or a local time (2026-03-01 10:00:00)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l pre-exec -d 'Run this shell command before the backup (freeze a file system, take an LVM or btrfs snapshot); if it fails, nothing is backed up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l post-exec -d 'Run this shell command after the backup, whether it worked or not; it finds the outcome in CHRONOFS_BACKUP_STATUS (success, partial or failed), CHRONOFS_BACKUP_EXIT_CODE, CHRONOFS_SNAPSHOT_ID and CHRONOFS_BACKUP_ERROR' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -s x -l one-file-system -d 'Do not cross file system boundaries (mount points are kept as empty directories)'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l read-devices -d 'Back up block devices met inside the given directories as their content (a file of the device\'s size) instead of as device nodes. Block devices named as PATH, or through a symlink such as /dev/vg/root, are always backed up as their content'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l force -d 'Re-read every file, even those unchanged since the parent snapshot'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l stdin -d 'Back up standard input as one file (needs --stdin-name)'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l stdin-from-command -d 'Run PATH... as a command and back up its output; no snapshot is written if it fails'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l json -d 'Print progress (a status object per second) and the summary as JSON lines on stdout, and warnings as JSON objects on stderr'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l no-progress -d 'Do not show the progress line (it is shown only when stderr is a terminal)'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chronofs -n "__fish_chronofs_using_subcommand backup" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l host -d 'Only snapshots of this host. Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l tag -d 'Only snapshots that have all of these tags. Repeatable (any list matches)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l path -d 'Only snapshots of exactly these source paths (absolute; the stdin name for a stream). Repeatable: give every path of the snapshots meant' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l latest -d 'Only the newest N snapshots of each host and source paths' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l json -d 'Print a JSON array instead of a table'
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand snapshots" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -s l -l long -d 'Show type, mode, owner, size and modification time'
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -s 0 -l null -d 'Print each path exactly as stored, followed by a NUL byte (for `xargs -0`)'
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -l json -d 'Print one JSON object per entry (path, type, mode, owner, size, times, link target)'
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand ls" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -l json -d 'Print one JSON object per changed entry, then a summary object'
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand diff" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l host -d 'Only snapshots of this host. Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l tag -d 'Only snapshots that have all of these tags. Repeatable (any list matches)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l path -d 'Only snapshots of exactly these source paths (absolute; the stdin name for a stream). Repeatable: give every path of the snapshots meant' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l json -d 'Print one JSON object per version'
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand versions" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l snapshot -d 'Search only these snapshots (dated names, id prefixes or `latest`; repeatable)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l host -d 'Only snapshots of this host. Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l tag -d 'Only snapshots that have all of these tags. Repeatable (any list matches)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l path -d 'Only snapshots of exactly these source paths (absolute; the stdin name for a stream). Repeatable: give every path of the snapshots meant' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l json -d 'Print one JSON object per path'
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand find" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -s t -l target -d 'Directory to restore into (created if missing). Sources appear under it by their absolute path; with SNAP:PATH, PATH\'s contents go directly into it. A block device or an existing regular file instead: SNAP:PATH names a file (a disk image) that is written onto it whole and read back to verify (needs --overwrite)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l overwrite -d 'Replace entries that already exist in the target (for a device or file target: write over it)'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l sparse -d 'Image restore onto a device that reads as zeros already (new, or discarded): leave the image\'s holes unwritten instead of zeroing them'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l no-space-check -d 'Restore even if the data looks larger than the target\'s free space (for file systems that compress or deduplicate)'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l no-progress -d 'Show no progress bar (it is shown only when stderr is a terminal), and with --json no status objects'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l json -d 'Print progress (a status object per second and one at the end) and the summary as JSON lines on stdout, and warnings as JSON objects on stderr'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand restore" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l read-data-subset -d 'Read only a part of the packs: `N/M` (part N of M), or `P%` (the next of 100/P parts, rotating from run to run, so that the whole repository is read over 100/P runs)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l read-data -d 'Also read every pack, decompress every blob and verify its hash'
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l json -d 'Print the findings as one JSON object on stdout (`message_type` `summary`), after a status object per second while packs are read'
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand check" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chronofs -n "__fish_chronofs_using_subcommand cat" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l cache-size -d 'Memory for decompressed file data, e.g. 64M or 1G' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l threads -d 'Threads serving requests' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l max-inodes -d 'Internal (tests): inodes the kernel may hold before it is asked to drop some' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l log -d 'Where the background process writes errors it meets (default: discarded)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -s f -l foreground -d 'Stay in the foreground; Ctrl-C or SIGTERM unmounts and exits'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l allow-other -d 'Let other users in too (the stored modes and owners still decide what they may read; non-root users need `user_allow_other` in /etc/fuse.conf)'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l keep-xattrs -d 'Keep answering extended-attribute queries even when no snapshot holds extended attributes or ACLs. Without it, a mount by root tells the kernel once that there are none (which makes `ls -l` much faster), and replaces its connection with a new one when a snapshot that holds some arrives (other users\' mounts never tell the kernel)'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l daemon-child -d 'Internal: this is the background process started by `mount`'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand mount" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -s l -l lazy -d 'Detach now even if busy; the kernel finishes once the last file is closed'
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand umount" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s l -l keep-last -d 'Keep the N newest snapshots (`unlimited` keeps all)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s H -l keep-hourly -d 'Keep the newest snapshot of each of the last N hours that have one' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s d -l keep-daily -d 'Keep the newest snapshot of each of the last N days that have one' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s w -l keep-weekly -d 'Keep the newest snapshot of each of the last N ISO weeks that have one' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s m -l keep-monthly -d 'Keep the newest snapshot of each of the last N months that have one' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s y -l keep-yearly -d 'Keep the newest snapshot of each of the last N years that have one' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l keep-within -d 'Keep every snapshot newer than the newest one minus DURATION (e.g. 30d, 6m, 1y2m, 12h; m is months)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l keep-within-hourly -d 'Keep the newest snapshot of each hour within DURATION of the newest snapshot' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l keep-within-daily -d 'Keep the newest snapshot of each day within DURATION' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l keep-within-weekly -d 'Keep the newest snapshot of each week within DURATION' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l keep-within-monthly -d 'Keep the newest snapshot of each month within DURATION' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l keep-within-yearly -d 'Keep the newest snapshot of each year within DURATION' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l keep-tag -d 'Keep snapshots that have all of these tags (comma-separated). Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l host -d 'Only snapshots of this host. Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l tag -d 'Only snapshots that have all of these tags. Repeatable (any list matches)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l path -d 'Only snapshots of exactly these source paths (absolute; the stdin name for a stream). Repeatable: give every path of the snapshots meant' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l group-by -d 'Apply the policy separately to each group of snapshots sharing these fields: a comma-separated subset of host, paths, tags; "" for one group' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l max-unused -d 'With --prune: see `chronofs prune --max-unused`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s n -l dry-run -d 'Only show what would be kept and removed, and why'
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l prune -d 'Run prune afterwards (under the same lock) to reclaim the space'
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l json -d 'Print JSON'
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand forget" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -l max-unused -d 'Unused data to tolerate in partly used packs before repacking them: a share of the repository (10%), a size (500M, 2G), or `unlimited` (never repack)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -s n -l dry-run -d 'Only report what would be deleted and repacked'
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -l json -d 'Print the report as JSON'
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chronofs -n "__fish_chronofs_using_subcommand prune" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l host -d 'Only snapshots of this host. Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l tag -d 'Only snapshots that have all of these tags. Repeatable (any list matches)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l path -d 'Only snapshots of exactly these source paths (absolute; the stdin name for a stream). Repeatable: give every path of the snapshots meant' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l from -d 'Source repository (default: --repo)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l to -d 'Destination repository, a directory or an s3: location (created first with `chronofs init`)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l to-password-file -d 'Read the destination\'s passphrase from FILE (also CHRONOFS_TO_PASSWORD_FILE; or set CHRONOFS_TO_PASSWORD). Without any, the source\'s passphrase is used (or, for a plaintext source, the usual --password-* options and CHRONOFS_PASSWORD)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l to-password-command -d 'Run CMD (with `sh -c`) for the destination\'s passphrase' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l json -d 'Print the report as JSON'
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand copy" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -l remove-all -d 'Remove every lock, also those of processes that may still run (only when you know they do not)'
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand unlock" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chronofs -n "__fish_chronofs_using_subcommand append-only" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l max-age -d 'How old the newest snapshot of each host and source paths may be: 26h, 2d, 90m, 1h30m' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l host -d 'Only snapshots of this host. Repeatable' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l tag -d 'Only snapshots that have all of these tags. Repeatable (any list matches)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l path -d 'Only snapshots of exactly these source paths (absolute; the stdin name for a stream). Repeatable: give every path of the snapshots meant' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l prometheus -d 'Also write node_exporter textfile metrics to FILE (replaced atomically; written even when the repository cannot be read, with chronofs_repository_readable 0)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l json -d 'Print the status as JSON'
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand status" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l scratch -d 'Where to restore (a new directory is made inside it; default: the temp directory)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l keep -d 'Leave the restored copy in place'
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l json -d 'Print the report as JSON'
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand verify" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -l config-dir -d 'Where job files are (also CHRONOFS_CONFIG_DIR)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -f -a "run" -d 'Back up, apply the retention policy, and update the monitoring metrics'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -f -a "verify" -d 'The restore drill: check a rotating part of the data, and restore and compare the newest snapshot'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -f -a "mount" -d 'Mount the job\'s repository at its mount point, in the foreground'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -f -a "schedule" -d 'Write the job\'s schedule as drop-ins of its timers (then `systemctl daemon-reload` and `systemctl enable --now chronofs-backup@NAME.timer chronofs-verify@NAME.timer`)'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -f -a "show" -d 'Check a job file and print the commands it runs'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and not __fish_seen_subcommand_from run verify mount schedule show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -l config-dir -d 'Where job files are (also CHRONOFS_CONFIG_DIR)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -l config-dir -d 'Where job files are (also CHRONOFS_CONFIG_DIR)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -l config-dir -d 'Where job files are (also CHRONOFS_CONFIG_DIR)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from mount" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -l systemd-dir -d 'Where the drop-in directories go' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -l config-dir -d 'Where job files are (also CHRONOFS_CONFIG_DIR)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from schedule" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -l config-dir -d 'Where job files are (also CHRONOFS_CONFIG_DIR)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from help" -f -a "run" -d 'Back up, apply the retention policy, and update the monitoring metrics'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from help" -f -a "verify" -d 'The restore drill: check a rotating part of the data, and restore and compare the newest snapshot'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from help" -f -a "mount" -d 'Mount the job\'s repository at its mount point, in the foreground'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from help" -f -a "schedule" -d 'Write the job\'s schedule as drop-ins of its timers (then `systemctl daemon-reload` and `systemctl enable --now chronofs-backup@NAME.timer chronofs-verify@NAME.timer`)'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from help" -f -a "show" -d 'Check a job file and print the commands it runs'
complete -c chronofs -n "__fish_chronofs_using_subcommand job; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -f -a "list" -d 'List the key files: id, kind, who made them and when'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -f -a "add" -d 'Add a passphrase (a new key file)'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -f -a "remove" -d 'Remove a key file (not the one in use, nor the last full key)'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -f -a "passwd" -d 'Change the passphrase of the key in use'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -l json -d 'Print as JSON'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l new-password-file -d 'Read the new passphrase from FILE (otherwise it is asked twice on the terminal)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l kdf-memory -d 'Argon2id memory per guess (default 128M). Lower it only for tests or tiny machines' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l kdf-time -d 'Argon2id passes (default 3)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l backup-only -d 'A backup-only key: it can add snapshots (with full deduplication) but cannot read any file, tree or snapshot, its own included'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l new-password-file -d 'Read the new passphrase from FILE (otherwise it is asked twice on the terminal)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l kdf-memory -d 'Argon2id memory per guess (default 128M). Lower it only for tests or tiny machines' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l kdf-time -d 'Argon2id passes (default 3)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the key files: id, kind, who made them and when'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a passphrase (a new key file)'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a key file (not the one in use, nor the last full key)'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Change the passphrase of the key in use'
complete -c chronofs -n "__fish_chronofs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -s r -l repo -d 'Repository: a directory, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] for a bucket of an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION or ~/.aws/credentials)' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -l retry-lock -d 'If the repository is locked by another process, keep trying this long (e.g. `30s`, `10m`, `1h`) before giving up' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -l cache-dir -d 'Keep this host\'s local index of every repository here, and the index and snapshot files of object-storage repositories (default ~/.cache/chronofs, or $XDG_CACHE_HOME/chronofs; one directory per repository; every entry checked when read)' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -l password-file -d 'Read the repository\'s passphrase from FILE (also CHRONOFS_PASSWORD_FILE). Without it, --password-command, or CHRONOFS_PASSWORD, chronofs asks on the terminal' -r -F
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -l password-command -d 'Run CMD (with `sh -c`) and use what it prints as the passphrase (also CHRONOFS_PASSWORD_COMMAND), e.g. `pass show backup`' -r
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -s q -l quiet -d 'Print only errors and warnings'
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -l no-cache -d 'Do not cache anything on local disk: every index file is loaded into memory (48 bytes a blob) and those of an object-storage repository downloaded again'
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chronofs -n "__fish_chronofs_using_subcommand generate" -s V -l version -d 'Print version'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "init" -d 'Create a new, empty repository'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "backup" -d 'Back up files and directories (or standard input) as a new snapshot'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "snapshots" -d 'List snapshots'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "ls" -d 'List the files in a snapshot'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "diff" -d 'Show what changed between two snapshots'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "versions" -d 'Show the versions of one path across snapshots'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "find" -d 'Find paths matching a pattern across snapshots'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "restore" -d 'Restore a snapshot, or a path inside one, to a directory'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "check" -d 'Verify the repository\'s integrity'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "cat" -d 'Print a repository object as JSON (for debugging)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "mount" -d 'Mount the repository read-only: every snapshot a dated directory'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "umount" -d 'Unmount a mounted repository'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "forget" -d 'Remove snapshots by a retention policy (--keep-daily 7 ...) or by name'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "prune" -d 'Delete data no snapshot references, reclaiming space (runs beside backups)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "copy" -d 'Copy snapshots to another repository (only the data it lacks)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "unlock" -d 'Revoke and remove stale locks left by processes that are gone or stopped'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "append-only" -d 'Show or set append-only mode (forget and prune refuse while it is on)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "status" -d 'Is the newest backup of every host recent enough, and did the last prune and checks succeed? (exit 0 yes, 1 no, 2 unreadable)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "verify" -d 'Restore drill: restore a snapshot to a scratch directory and compare it with the snapshot'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "job" -d 'Run a backup job described by /etc/chronofs/NAME.conf (see chronofs-job(5))'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "key" -d 'Manage the passphrases (key files) of an encrypted repository'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "generate" -d 'Write the man pages or the shell completions (for packaging)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls diff versions find restore check cat mount umount forget prune copy unlock append-only status verify job key generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from job" -f -a "run" -d 'Back up, apply the retention policy, and update the monitoring metrics'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from job" -f -a "verify" -d 'The restore drill: check a rotating part of the data, and restore and compare the newest snapshot'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from job" -f -a "mount" -d 'Mount the job\'s repository at its mount point, in the foreground'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from job" -f -a "schedule" -d 'Write the job\'s schedule as drop-ins of its timers (then `systemctl daemon-reload` and `systemctl enable --now chronofs-backup@NAME.timer chronofs-verify@NAME.timer`)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from job" -f -a "show" -d 'Check a job file and print the commands it runs'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "list" -d 'List the key files: id, kind, who made them and when'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "add" -d 'Add a passphrase (a new key file)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "remove" -d 'Remove a key file (not the one in use, nor the last full key)'
complete -c chronofs -n "__fish_chronofs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "passwd" -d 'Change the passphrase of the key in use'
