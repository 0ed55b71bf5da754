//! Every flag and every tool, defined once. Parsing, `--help`, the man pages and the shell
//! completions are all generated from these tables, so they cannot drift apart.

/// The tools of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Fetch,
    Push,
    Backup,
    Restore,
}

pub const ALL_TOOLS: [Tool; 4] = [Tool::Fetch, Tool::Push, Tool::Backup, Tool::Restore];

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
            value: Some("DIR"),
            kind: ValueKind::Dir,
            summary: "Write one OCI layout per repository under DIR (created if missing).",
            detail: "Each reference goes to DIR/<repository>/, where <repository> is the \
                     repository path without the registry host. Fetching into an existing \
                     layout adds or replaces its tags and reuses blobs already present once \
                     they are verified.",
            tools: &[Fetch],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Output,
        flag: Flag {
            long: "output",
            short: Some('o'),
            value: Some("DIR"),
            kind: ValueKind::Dir,
            summary: "Back up into DIR, an existing directory: one OCI layout per repository.",
            detail: "Each reference goes to DIR/<repository>/, where <repository> is the \
                     repository path without the registry host \
                     (registry.k8s.io/kube-apiserver-arm64:v1.31.0 -> DIR/kube-apiserver-arm64/). \
                     Backing up into an existing backup adds or replaces tags and reuses the \
                     blobs already there once they are verified.",
            tools: &[Backup],
            hidden: false,
        },
    },
    FlagDef {
        key: Key::Input,
        flag: Flag {
            long: "input",
            short: Some('i'),
            value: Some("DIR"),
            kind: ValueKind::Dir,
            summary: "Push every OCI layout found under DIR.",
            detail: "Every directory under DIR, at any depth, that holds an index.json is a \
                     layout, and its path relative to DIR is the repository it is pushed to \
                     under TARGET. Other directories and plain files are ignored. When DIR \
                     itself holds index.json it is a single layout, pushed to TARGET itself, \
                     which must then name a repository.",
            tools: &[Push, Restore],
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
            tools: &[Fetch, Push, Backup, Restore],
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
            tools: &[Fetch, Push, Backup, Restore],
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
            tools: &[Fetch, Push, Backup, Restore],
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
            tools: &[Fetch, Push, Backup, Restore],
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

impl Tool {
    pub fn doc(self) -> ToolDoc {
        match self {
            Fetch => ToolDoc {
                name: "oci-fetch",
                about: "pull images into per-repository OCI layouts",
                usage: "oci-fetch [OPTIONS] --output DIR REF...",
                positionals: &[("REF", REF_DOC)],
                description: "Fetches each REF with its whole graph (for an index, every \
                    platform's manifest; configs; layers of any media type) into an OCI \
                    image layout per repository. Manifests and blobs are stored exactly as \
                    the registry served them, and every byte is checked against its digest \
                    and size before it is renamed into blobs/. Credentials come from the \
                    Docker config file ($DOCKER_CONFIG/config.json, else \
                    ~/.docker/config.json).",
                examples: &[(
                    "oci-fetch -o ./mirror registry.k8s.io/pause:3.9",
                    "Writes ./mirror/pause/ with the tag 3.9 in its index.json.",
                )],
            },
            Push => ToolDoc {
                name: "oci-push",
                about: "push OCI layouts into a registry",
                usage: "oci-push [OPTIONS] --input DIR TARGET",
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
                usage: "oci-backup [OPTIONS] --output DIR REF...",
                positionals: &[("REF", REF_DOC)],
                description: "Backs up each REF into an OCI layout per repository under \
                    the output directory, byte for byte as the registry serves it. It is \
                    oci-fetch with the backup command line. A failing reference is reported \
                    on one line and the others are still backed up; the exit status is then 1.",
                examples: &[(
                    "oci-backup --output ./mirror localhost:5000/team/app:1.0",
                    "Writes ./mirror/team/app/ (an OCI layout, the tag 1.0 in its index.json).",
                )],
            },
            Restore => ToolDoc {
                name: "oci-restore",
                about: "restore a backup into a registry",
                usage: "oci-restore [OPTIONS] --input DIR TARGET",
                positionals: &[("TARGET", TARGET_DOC)],
                description: "Pushes every OCI layout under the input directory to \
                    TARGET/<repository>:<tag>, byte for byte as it was backed up. It is \
                    oci-push with the restore command line.",
                examples: &[(
                    "oci-restore --input ./mirror localhost:15000/my-mirror",
                    "Pushes ./mirror/team/app:1.0 to localhost:15000/my-mirror/team/app:1.0.",
                )],
            },
        }
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
