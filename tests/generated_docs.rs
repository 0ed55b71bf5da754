//! The committed man pages and completion scripts are exactly what the flag table
//! generates: run `make generate` after changing a flag.

use std::path::Path;
use std::process::Command;

fn generated(bin: &str, kind: &str) -> String {
    let out = Command::new(bin)
        .args(["--generate", kind])
        .output()
        .expect("run the tool");
    assert!(out.status.success(), "{bin} --generate {kind}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn committed_man_pages_and_completions_match_the_flag_definitions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tools = [
        ("oci-fetch", env!("CARGO_BIN_EXE_oci-fetch")),
        ("oci-push", env!("CARGO_BIN_EXE_oci-push")),
        ("oci-backup", env!("CARGO_BIN_EXE_oci-backup")),
        ("oci-restore", env!("CARGO_BIN_EXE_oci-restore")),
    ];
    for (name, bin) in tools {
        for (kind, file) in [
            ("man", format!("man/{name}.1")),
            ("complete-bash", format!("completions/bash/{name}")),
            ("complete-zsh", format!("completions/zsh/_{name}")),
            ("complete-fish", format!("completions/fish/{name}.fish")),
        ] {
            let committed =
                std::fs::read_to_string(root.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                committed,
                generated(bin, kind),
                "{file} is stale: run `make generate`"
            );
        }
    }
}
