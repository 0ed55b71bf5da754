//! A bearer-token server for `auth.token` registries: runs `tests/support/token_server.py`
//! (the real distribution token protocol, RS256 with an x5c chain) for one user.
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::{require_tool, RegistryAuth};

pub const PYTHON: &str = "/usr/bin/python3";
/// The `iss` claim the script signs with.
pub const TOKEN_ISSUER: &str = "ocipipe-test-issuer";
/// The `service` the test registries announce.
pub const TOKEN_SERVICE: &str = "ocipipe-test-registry";

pub struct TokenServer {
    child: Child,
    port: u16,
    dir: TempDir,
    user: String,
    pass: String,
}

impl TokenServer {
    /// Starts the server for `user`/`pass`; returns once it listens.
    pub fn start(user: &str, pass: &str) -> TokenServer {
        require_tool(PYTHON, "python3");
        let dir = tempfile::Builder::new()
            .prefix("ocipipe-token-")
            .tempdir()
            .expect("temp dir for the token server");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/token_server.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg(dir.path())
            .args([user, pass])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn token_server.py");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("token server stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the token server's port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "token_server.py did not print its port (got {line:?}); is python3-cryptography \
                 installed? (`make deps`)"
            )
        });
        TokenServer {
            child,
            port,
            dir,
            user: user.to_string(),
            pass: pass.to_string(),
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The registry configuration that trusts this server's tokens.
    pub fn registry_auth(&self) -> RegistryAuth {
        RegistryAuth::Token {
            realm: self.realm(),
            service: TOKEN_SERVICE.to_string(),
            issuer: TOKEN_ISSUER.to_string(),
            rootcertbundle: self.dir.path().join("cert.pem"),
            user: self.user.clone(),
            pass: self.pass.clone(),
        }
    }

    /// Every request the server saw, one line each: `GET PATH auth=yes|no`.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
