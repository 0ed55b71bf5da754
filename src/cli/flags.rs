//! Every flag and every tool, defined once. Parsing, `--help`, the man pages and the shell
//! completions are all generated from these tables, so they cannot drift apart.

/// The tools of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Fetch,
    Push,
    Backup,
    Restore,
    Pack,
    Unpack,
}

pub const ALL_TOOLS: [Tool; 6] = [
    Tool::Fetch,
    Tool::Push,
    Tool::Backup,
    Tool::Restore,
    Tool::Pack,
    Tool::Unpack,
];

/// What a flag's value is, for completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    None,
    Path,
    Dir,
    Number,
    Word(&'static [&'static str]),
}

/// One flag, as every tool that takes it presents it.
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's name in help (`DIR`), or `None` for a switch.
    pub value: Option<&'static str>,
    pub kind: ValueKind,
    /// One line for `--help` and completions.
    pub summary: &'static str,
    /// More, for the man page.
    pub detail: &'static str,
    pub tools: &'static [Tool],
    /// Hidden flags work but are not documented (the generators).
    pub hidden: bool,
}

/// The key a parsed flag is stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Output,
    Input,
    Directory,
    PlainHttp,
    Jobs,
    Quiet,
    Help,
    Version,
    Generate,
}

pub struct FlagDef {
    pub key: Key,
    pub flag: Flag,
}

use Tool::*;

pub const FLAGS: &[FlagDef] = &[
    FlagDef {
        key: Key::Output,
        flag: Flag {
            long: "output",
            short: Some('o'),
            value: Some("DIR|-"),
            kind: ValueKind::Dir,
            summary: "Write one OCI layout per repository under DIR (created if missing), or the layout stream to stdout with '-'.",
            detail: "Each reference goes to DIR/<repository>/, where <repository> is the \
                     repository path without the registry host. Fetching into an existing \
                     layout adds or replaces its tags and reuses blobs already present once \
                     they are verified. With '-' the layouts are written to stdout as the \
                     layout stream: an uncompressed tar of the same tree, small files first \
                     (see LAYOUT STREAM).",
            tools: &[Fetch],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Output,
        flag: Flag {
            long: "output",
            short: Some('o'),
            value: Some("PATH"),
            kind: ValueKind::Path,
            summary: "Back up into PATH: a directory if it is an existing one, else a gzip-compressed tar ('-' for stdout).",
            detail: "An existing directory gets one OCI layout per repository, \
                     DIR/<repository>/, where <repository> is the repository path without \
                     the registry host (registry.k8s.io/kube-apiserver-arm64:v1.31.0 -> \
                     DIR/kube-apiserver-arm64/); backing up into an existing backup adds or \
                     replaces tags and reuses the blobs already there once they are \
                     verified. Any other PATH, whatever its name, is written as a \
                     gzip-compressed tar of the same tree, overwritten if present; the file \
                     appears only when the whole backup succeeded.",
            tools: &[Backup],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Output,
        flag: Flag {
            long: "output",
            short: Some('o'),
            value: Some("FILE"),
            kind: ValueKind::Path,
            summary: "Write the compressed tar to FILE (default: stdout).",
            detail: "FILE appears only when the whole archive was written.",
            tools: &[Pack],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Input,
        flag: Flag {
            long: "input",
            short: Some('i'),
            value: Some("PATH"),
            kind: ValueKind::Path,
            summary: "Push every OCI layout found under PATH, a directory, an archive file, or '-' (stdin).",
            detail: "In a directory, every directory at any depth that holds an index.json \
                     is a layout, and its path relative to PATH is the repository it is \
                     pushed to under TARGET; other directories and plain files are ignored. \
                     When PATH itself holds index.json it is a single layout, pushed to \
                     TARGET itself, which must then name a repository. A file, or '-' for \
                     stdin, is a tar of the same tree, gzip-compressed or not, read in one \
                     pass: blobs are pushed as they arrive, manifests and tags once the \
                     whole archive has been read and checked.",
            tools: &[Push, Restore],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Input,
        flag: Flag {
            long: "input",
            short: Some('i'),
            value: Some("FILE|-"),
            kind: ValueKind::Path,
            summary: "Read references from FILE ('-' for stdin), one per line, instead of the command line.",
            detail: "Blank lines and lines starting with # are skipped, and so is a # comment \
                     after a space; spaces, CR and a leading byte-order mark are trimmed. A bad \
                     line is a usage error naming its line number. A reference listed twice \
                     is fetched once.",
            tools: &[Backup],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Directory,
        flag: Flag {
            long: "directory",
            short: Some('C'),
            value: Some("DIR|-"),
            kind: ValueKind::Dir,
            summary: "Unpack into DIR (default: the current directory), or write the layout stream to stdout with '-'.",
            detail: "Layouts already in DIR get the archive's tags added and keep their \
                     blobs. Nothing is moved into DIR until the whole archive has been read \
                     and checked.",
            tools: &[Unpack],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::PlainHttp,
        flag: Flag {
            long: "plain-http",
            short: None,
            value: None,
            kind: ValueKind::None,
            summary: "Speak plain HTTP to registries instead of HTTPS.",
            detail: "By default registries are reached over HTTPS with certificate checks. \
                     For loopback hosts (localhost, 127.0.0.0/8, [::1]) HTTPS is tried first \
                     and plain HTTP used when the server does not speak TLS, as Docker does. \
                     Extra CA certificates are read from SSL_CERT_FILE.",
            tools: &[Fetch, Push, Backup, Restore],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Jobs,
        flag: Flag {
            long: "jobs",
            short: Some('j'),
            value: Some("N"),
            kind: ValueKind::Number,
            summary: "Transfer up to N blobs at once (default 4).",
            detail: "",
            tools: &[Fetch, Push, Backup, Restore],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Quiet,
        flag: Flag {
            long: "quiet",
            short: Some('q'),
            value: None,
            kind: ValueKind::None,
            summary: "Print errors only.",
            detail: "",
            tools: &ALL_TOOLS,
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Help,
        flag: Flag {
            long: "help",
            short: Some('h'),
            value: None,
            kind: ValueKind::None,
            summary: "Print help and exit.",
            detail: "",
            tools: &ALL_TOOLS,
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Version,
        flag: Flag {
            long: "version",
            short: Some('V'),
            value: None,
            kind: ValueKind::None,
            summary: "Print the version and exit.",
            detail: "",
            tools: &ALL_TOOLS,
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Generate,
        flag: Flag {
            long: "generate",
            short: None,
            value: Some("KIND"),
            kind: ValueKind::Word(&["man", "complete-bash", "complete-zsh", "complete-fish"]),
            summary: "Print a man page or a shell completion script.",
            detail: "",
            tools: &ALL_TOOLS,
            hidden: true,
        },
    },
];

/// What a tool is and how it is called.
pub struct ToolDoc {
    pub name: &'static str,
    pub about: &'static str,
    pub usage: &'static str,
    /// The positional arguments, for help and the man page.
    pub positionals: &'static [(&'static str, &'static str)],
    pub description: &'static str,
    pub examples: &'static [(&'static str, &'static str)],
}

const REF_DOC: &str = "An image reference: HOST[:PORT]/REPOSITORY[:TAG] or \
HOST[:PORT]/REPOSITORY@sha256:HEX (a reference without a host is on Docker Hub; without \
tag or digest it means :latest). A digest-only reference is stored untagged.";

const TARGET_DOC: &str = "The registry to push to, HOST[:PORT], optionally followed by a \
namespace (HOST[:PORT]/NAMESPACE/...) that every repository is pushed under.";

const STREAM_DOC: &str = "The layout stream, which oci-fetch -o - writes and oci-push -i - \
reads, is a tar of the backup tree (<repository>/oci-layout, <repository>/index.json, \
<repository>/blobs/<alg>/<hex>), uncompressed; a backup archive is the same tar, \
gzip-compressed. Writers put every layout's oci-layout, index.json and manifests before the \
blobs, and a blob that is in several repositories is stored once: later copies are hard-link \
entries naming the first. Readers take gzip or plain tar, entries in any order. So \
'oci-fetch -o - REF... | oci-pack -o m.tgz -' is oci-backup -o m.tgz, and \
'oci-unpack -C - m.tgz | oci-push -i - TARGET' (or 'oci-push -i m.tgz TARGET') is \
oci-restore -i m.tgz TARGET. Archives are reproducible: the same content gives the same \
bytes (fixed order, mtime 0, uid/gid 0, no user names, gzip header without time or name).";

impl Tool {
    pub fn doc(self) -> ToolDoc {
        match self {
            Fetch => ToolDoc {
                name: "oci-fetch",
                about: "pull images into per-repository OCI layouts",
                usage: "oci-fetch [OPTIONS] --output DIR|- REF...",
                positionals: &[("REF", REF_DOC)],
                description: "Fetches each REF with its whole graph (for an index, every \
                    platform's manifest; configs; layers of any media type) into an OCI \
                    image layout per repository, or as a layout stream on stdout. Manifests \
                    and blobs are stored exactly as the registry served them, and every byte \
                    is checked against its digest and size before it is renamed into blobs/. \
                    Credentials come from the Docker config file ($DOCKER_CONFIG/config.json, \
                    else ~/.docker/config.json).",
                examples: &[
                    (
                        "oci-fetch -o ./mirror registry.k8s.io/pause:3.9",
                        "Writes ./mirror/pause/ with the tag 3.9 in its index.json.",
                    ),
                    (
                        "oci-fetch -o - localhost:5000/app:1.0 | ssh airgap oci-push -i - registry.local/mirror",
                        "Copies an image through a pipe, without a copy on disk.",
                    ),
                ],
            },
            Push => ToolDoc {
                name: "oci-push",
                about: "push OCI layouts into a registry",
                usage: "oci-push [OPTIONS] --input PATH TARGET",
                positionals: &[("TARGET", TARGET_DOC)],
                description: "Pushes every entry of every layout's index.json: blobs first \
                    (skipping those the registry has, mounting those another repository of \
                    the run already holds), then child manifests, then indexes, then tags. \
                    Tagged entries go under their tags, untagged entries by digest. Every \
                    byte pushed is checked against its digest and size.",
                examples: &[(
                    "oci-push -i ./mirror localhost:5000/mirror",
                    "Pushes ./mirror/team/app to localhost:5000/mirror/team/app.",
                )],
            },
            Backup => ToolDoc {
                name: "oci-backup",
                about: "back up images from registries",
                usage: "oci-backup [OPTIONS] --output PATH (REF... | --input FILE|-)",
                positionals: &[("REF", REF_DOC)],
                description: "Backs up each REF, byte for byte as the registry serves it, \
                    into an OCI layout per repository under the output directory, or into a \
                    gzip-compressed tar of that tree when the output is not an existing \
                    directory. It is oci-fetch, then oci-pack when the output is a file, \
                    streamed without a copy on disk. A failing reference is reported on one \
                    line and the others are still backed up; the exit status is then 1, and \
                    an archive file is not written.",
                examples: &[
                    (
                        "oci-backup --output ./mirror localhost:5000/team/app:1.0",
                        "Writes ./mirror/team/app/ (an OCI layout, the tag 1.0 in its index.json).",
                    ),
                    (
                        "oci-backup --input refs.txt --output mirror.tgz",
                        "Backs up the references listed in refs.txt into mirror.tgz.",
                    ),
                    (
                        "ssh host oci-backup -o - REF... | oci-restore -i - localhost:5000/mirror",
                        "Mirrors images from a remote site in one pipe.",
                    ),
                ],
            },
            Restore => ToolDoc {
                name: "oci-restore",
                about: "restore a backup into a registry",
                usage: "oci-restore [OPTIONS] --input PATH TARGET",
                positionals: &[("TARGET", TARGET_DOC)],
                description: "Pushes every OCI layout of a backup, a directory or a \
                    compressed tar (a file, or '-' for stdin), to TARGET/<repository>:<tag>, \
                    byte for byte as it was backed up. It is oci-unpack (when the input is a \
                    file) then oci-push, streamed in one pass: memory stays bounded whatever \
                    the blob sizes, and no manifest or tag is pushed before everything under \
                    it is in.",
                examples: &[
                    (
                        "oci-restore --input ./mirror localhost:15000/my-mirror",
                        "Pushes ./mirror/team/app:1.0 to localhost:15000/my-mirror/team/app:1.0.",
                    ),
                    (
                        "oci-restore --input - localhost:5000 < mirror.tgz",
                        "Restores an archive read from stdin.",
                    ),
                ],
            },
            Pack => ToolDoc {
                name: "oci-pack",
                about: "pack a backup directory into a compressed tar",
                usage: "oci-pack [OPTIONS] [DIR|-]",
                positionals: &[(
                    "DIR",
                    "The backup directory (default: the current directory); '-' reads a \
                     layout stream from stdin instead.",
                )],
                description: "Writes every OCI layout under DIR as a gzip-compressed tar, \
                    small files first, duplicated blobs once (hard links), every blob \
                    verified against its digest on the way.",
                examples: &[(
                    "oci-pack ./mirror -o mirror.tgz",
                    "Packs the backup directory ./mirror.",
                )],
            },
            Unpack => ToolDoc {
                name: "oci-unpack",
                about: "unpack a compressed tar into a backup directory",
                usage: "oci-unpack [OPTIONS] [FILE]",
                positionals: &[(
                    "FILE",
                    "The archive, gzip-compressed or plain tar (default: stdin).",
                )],
                description: "Unpacks an archive of OCI layouts. Only what a layout holds \
                    is accepted (oci-layout, index.json, blobs/<alg>/<hex>, hard links between \
                    blobs); absolute names, '..', symbolic links, devices and malformed digests \
                    are refused, and every blob is verified against its name.",
                examples: &[(
                    "oci-unpack -C ./mirror mirror.tgz",
                    "Unpacks mirror.tgz into ./mirror.",
                )],
            },
        }
    }

    /// The layout-stream section of the man pages.
    pub fn stream_doc() -> &'static str {
        STREAM_DOC
    }
}

/// The flags `tool` takes, in table order.
pub fn flags_for(tool: Tool) -> impl Iterator<Item = &'static FlagDef> {
    FLAGS.iter().filter(move |d| d.flag.tools.contains(&tool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tool_has_two_flags_with_one_name() {
        for tool in ALL_TOOLS {
            let defs: Vec<_> = flags_for(tool).collect();
            for (i, a) in defs.iter().enumerate() {
                for b in &defs[i + 1..] {
                    assert_ne!(a.flag.long, b.flag.long, "{tool:?}");
                    if a.flag.short.is_some() {
                        assert_ne!(a.flag.short, b.flag.short, "{tool:?}");
                    }
                }
            }
        }
    }
}
