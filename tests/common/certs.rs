//! Test certificates made with the openssl command: a private CA and a server certificate
//! for `127.0.0.1` and `localhost` signed by it.
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{require_tool, ServerTls};

pub const OPENSSL: &str = "/usr/bin/openssl";

/// A CA and a server certificate in a temp directory (kept alive by this value).
pub struct TestCerts {
    dir: TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCerts {
    pub fn new() -> TestCerts {
        require_tool(OPENSSL, "openssl");
        let dir = tempfile::Builder::new()
            .prefix("ocipipe-certs-")
            .tempdir()
            .expect("temp dir for certificates");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=ocipipe test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.pem",
            ],
        );
        TestCerts { dir }
    }

    /// The CA certificate clients must trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn server_tls(&self) -> ServerTls {
        ServerTls {
            certificate: self.dir.path().join("server.pem"),
            key: self.dir.path().join("server.key"),
            ca: self.ca(),
        }
    }
}
