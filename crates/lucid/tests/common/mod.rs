//! What the binary's tests share: the command and a free port.

use std::process::Command;

/// The `lucid` binary under test, logging warnings only.
pub fn lucid() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lucid"));
    cmd.env("LUCID_LOG", "warn");
    cmd
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
