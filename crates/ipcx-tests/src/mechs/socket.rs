//! Sockets: the test listens (the common API's `create`), the peer connects as a client.
//! TCP listens on an ephemeral loopback port, so the address is known only after `bind`.

use std::time::Duration;

use ipcx::address::Address;
use ipcx::socket::{self, Server, ServerOptions};
use ipcx::{BoxReceiver, BoxSender, Wait};

use crate::conformance::{Ctx, Guard, Mech};
use crate::{spawn, ChildGuard, TestDir};

/// A connection-oriented socket kind: `unix:`, `unix-seqpacket:` or `tcp:`.
pub struct Connected {
    name: &'static str,
    scheme: &'static str,
}

/// `unix:/dir/conf.sock` (framed stream).
pub const UNIX: Connected = Connected { name: "unix", scheme: "unix" };
/// `unix-seqpacket:/dir/conf.sock`.
pub const SEQPACKET: Connected = Connected { name: "unix-seqpacket", scheme: "unix-seqpacket" };
/// `tcp:127.0.0.1:PORT`.
pub const TCP: Connected = Connected { name: "tcp", scheme: "tcp" };

impl Connected {
    fn listen(&self, dir: &TestDir) -> socket::Listener {
        let a = if self.scheme == "tcp" {
            "tcp:127.0.0.1:0".to_owned()
        } else {
            format!("{}:{}", self.scheme, dir.join("conf.sock").display())
        };
        socket::listen(&Address::parse(&a).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

impl Mech for Connected {
    fn name(&self) -> &'static str {
        self.name
    }
    fn max_size(&self) -> usize {
        if self.scheme == "unix-seqpacket" {
            socket::DEFAULT_MAX_PACKET
        } else {
            ipcx::frame::DEFAULT_MAX_FRAME
        }
    }
    fn create(&self, _dir: &TestDir) -> (String, Guard) {
        unreachable!("the listener is made in peer_sends/peer_receives")
    }
    fn create_default(&self, dir: &TestDir) -> Result<(String, Guard), &'static str> {
        if self.scheme == "tcp" {
            return Err("a TCP port has no owner or mode: any local user may connect to it");
        }
        let l = self.listen(dir);
        Ok((l.address().to_owned(), Box::new(l)))
    }
    fn open_pair(&self, dir: &TestDir) -> Result<(BoxSender, BoxReceiver, Guard), &'static str> {
        // Connecting succeeds once the listener is bound (the backlog holds the
        // connection); the server accepts it at its first receive.
        let l = self.listen(dir);
        let tx = ipcx::open_sender_with(l.address(), &crate::conformance::open_opts())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        let rx = Server::new(l, ServerOptions { quiet: true, ..Default::default() });
        Ok((tx, Box::new(rx), Box::new(())))
    }
    fn fresh_address(&self, dir: &TestDir) -> Option<String> {
        // TCP: a port is no named object (nothing stays behind when the listener dies).
        (self.scheme != "tcp")
            .then(|| format!("{}:{}", self.scheme, dir.join("conf.sock").display()))
    }
    fn peer_sends(
        &self,
        ctx: &Ctx,
        dir: &TestDir,
        cmd: &str,
        rest: &[&str],
    ) -> (ChildGuard, BoxReceiver, Guard) {
        let l = self.listen(dir);
        let child = spawn(ctx.peer().arg(cmd).arg(l.address()).args(rest));
        let rx = Server::new(l, ServerOptions { quiet: true, ..Default::default() });
        (child, Box::new(rx), Box::new(()))
    }
    fn peer_receives(
        &self,
        ctx: &Ctx,
        dir: &TestDir,
        cmd: &str,
        rest: &[&str],
    ) -> (ChildGuard, BoxSender, Guard) {
        let l = self.listen(dir);
        let child = spawn(ctx.peer().arg(cmd).arg(l.address()).args(rest));
        let tx = l
            .accept_wait(Wait::timeout(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        (child, Box::new(tx), Box::new(l))
    }
}

/// `unix-dgram:/dir/conf.sock`: the receiver binds the name, the sender connects to it.
pub struct Datagram;

impl Mech for Datagram {
    fn name(&self) -> &'static str {
        "unix-dgram"
    }
    fn max_size(&self) -> usize {
        socket::DEFAULT_MAX_PACKET
    }
    fn disconnect(&self) -> Result<(), &'static str> {
        Err("a datagram socket has no connection: a receiver cannot learn that a sender exited (a sender to a closed receiver does get Disconnected, tested in tests/socket.rs)")
    }
    fn create(&self, dir: &TestDir) -> (String, Guard) {
        // The receiving side binds (and later removes) the socket file.
        (format!("unix-dgram:{}", dir.join("conf.sock").display()), Box::new(()))
    }
    fn create_default(&self, dir: &TestDir) -> Result<(String, Guard), &'static str> {
        // The object is the bound socket file: bind it, as a receiver does.
        let addr = format!("unix-dgram:{}", dir.join("default.sock").display());
        let rx = socket::unix::bind_datagram(&Address::parse(&addr).unwrap())
            .unwrap_or_else(|e| panic!("unix-dgram: {e}"));
        Ok((addr, Box::new(rx)))
    }
}
